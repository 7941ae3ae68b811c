//! What the aggregator refuses and what a district corrects: reasons kept, nothing blocked, one new
//! revision per change.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn rejected_report_keeps_its_reasons_and_blocks_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (dir, folder) = workspace();
    write_csv(&folder, "201907", &[]);
    // More dossiers resolved on time than resolved: the aggregator refuses it.
    write_csv(&folder, "201908", &[("hs_dung_han", 9999.0)]);
    write_csv(&folder, "201909", &[]);
    let s = settings(dir.path(), &app.endpoint, folder_report(&folder, "201907"));
    let mut agent = Agent::new(s).await.expect("agent");

    let (collected, sent) = agent.run_once().await.expect("run");
    assert_eq!(collected.queued, 3, "{collected:?}");
    assert_eq!((sent.sent, sent.rejected), (2, 1), "{sent:?}");
    let rejected = agent
        .outbox()
        .in_state(EntryState::Rejected)
        .await
        .expect("read");
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(r.period, "201908");
    let why = r.rejection.as_ref().expect("reasons kept");
    assert_eq!(why.code, "InvalidArgument");
    assert!(
        why.violations
            .iter()
            .any(|v| v.rule.contains("on_time_within_resolved")),
        "{why:?}"
    );

    // Not retried on its own, and nothing else is held back.
    let (_, again) = agent.run_once().await.expect("run");
    assert_eq!((again.sent, again.rejected, again.retrying), (0, 0, 0));
    let still = agent
        .outbox()
        .get(r.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((still.state, still.attempts), (EntryState::Rejected, 1));
    agent.close().await;

    // The operator sees the reasons, readable, with what to do.
    let config = settings_file(dir.path(), &app.endpoint, &folder, "201907");
    let status = Command::new(BIN)
        .args(["agent", "status", "--config"])
        .arg(&config)
        .output()
        .expect("agent status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("0 queued, 2 sent, 1 rejected"), "{text}");
    assert!(
        text.contains(&format!("#{} DVCQ_THANG 201908  InvalidArgument", r.id)),
        "{text}"
    );
    assert!(
        text.contains("[consistency.on_time_within_resolved]"),
        "{text}"
    );
    assert!(
        text.contains(&format!("tonghop agent resend {}", r.id)),
        "{text}"
    );
    assert!(text.contains("Next due"), "{text}");

    // Fixed at the source: `resend` queues the new figures, one run delivers them.
    write_csv(&folder, "201908", &[]);
    let resend = Command::new(BIN)
        .args(["agent", "resend", &r.id.to_string(), "--config"])
        .arg(&config)
        .output()
        .expect("agent resend");
    let text = String::from_utf8_lossy(&resend.stdout);
    assert!(resend.status.success(), "{text}");
    assert!(text.contains("queued as a new entry"), "{text}");
    let mut agent = Agent::new(settings(
        dir.path(),
        &app.endpoint,
        folder_report(&folder, "201907"),
    ))
    .await
    .expect("agent");
    let (_, fixed) = agent.run_once().await.expect("run");
    assert_eq!((fixed.sent, fixed.rejected), (1, 0));
    let history = agent
        .outbox()
        .history(DATA_SET, "201908")
        .await
        .expect("read");
    let states: Vec<_> = history.iter().map(|e| e.state).collect();
    assert_eq!(states, [EntryState::Rejected, EntryState::Sent]);
    agent.close().await;
    let revisions = app
        .store
        .revisions(UNIT, DATA_SET, "201908")
        .await
        .expect("read");
    assert_eq!(revisions.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_source_after_delivery_is_one_new_revision() {
    let app = spawn_app(Backend::Sqlite).await;
    let (dir, folder) = workspace();
    write_csv(&folder, "201909", &[]);
    let s = settings(dir.path(), &app.endpoint, folder_report(&folder, "201909"));
    let mut agent = Agent::new(s).await.expect("agent");
    let (_, first) = agent.run_once().await.expect("run");
    assert_eq!(first.sent, 1);
    agent.close().await;

    // A new default author in the settings is not new figures: nothing is sent again.
    let mut s = settings(dir.path(), &app.endpoint, folder_report(&folder, "201909"));
    s.prepared_by = "Văn phòng UBND huyện".into();
    let mut agent = Agent::new(s).await.expect("agent");
    let (collected, _) = agent.run_once().await.expect("run");
    assert_eq!((collected.queued, collected.corrections), (0, 0));

    // The district corrects a figure, in a TOML file this time (the CSV goes away).
    std::fs::remove_file(folder.join("DVCQ_THANG-201909.csv")).expect("rm");
    let mut corrected = valid_report("", UNIT, "201909");
    common::set_value(&mut corrected, "tiep_cong_dan", 3.0);
    let mut toml = String::from("prepared_by = \"Nguyễn Văn An\"\n[values]\n");
    for v in &corrected.values {
        toml.push_str(&format!("{} = {}\n", v.indicator, v.value));
    }
    std::fs::write(folder.join("DVCQ_THANG-201909.toml"), toml).expect("write");
    for _ in 0..3 {
        agent.run_once().await.expect("run");
    }
    let history = agent
        .outbox()
        .history(DATA_SET, "201909")
        .await
        .expect("read");
    assert_eq!(history.len(), 2, "one correction, however many passes");
    assert_eq!(history[1].sent.as_ref().map(|s| s.revision), Some(2));
    agent.close().await;

    let revisions = app
        .store
        .revisions(UNIT, DATA_SET, "201909")
        .await
        .expect("read");
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[1].report.value("tiep_cong_dan"), Some(3.0));
    app.stop().await;
}

#[test]
fn once_without_an_aggregator_keeps_reports_queued_and_says_retry_later() {
    let (dir, folder) = workspace();
    write_csv(&folder, "201909", &[]);
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let config = settings_file(dir.path(), &endpoint, &folder, "201909");
    let out = Command::new(BIN)
        .args(["agent", "run", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("agent run --once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("report due"), "{stderr}");
    assert!(
        stderr.contains("retrying") && stderr.contains("retry_in_s"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 queued, 0 sent"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
