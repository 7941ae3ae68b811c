//! The agent over mutual TLS, with certificates made by `certs::init` as `tonghop certs init`
//! makes them: a district presenting its own certificate delivers; one presenting another
//! district's certificate is refused (PERMISSION_DENIED), and the agent marks the report
//! rejected instead of retrying it forever.

mod common;

use common::{Backend, spawn_app_secured, valid_report};
use std::path::Path;
use tonghop::agent::settings::ReportLayer;
use tonghop::agent::settings::TlsLayer;
use tonghop::agent::{Agent, AgentLayer, AgentSettings, EntryState, Resent};
use tonghop::domain::UnitTree;
use tonghop::grpc::{ServerOptions, TlsFiles};
use tonghop::security::certs::init;

fn write_csv(folder: &Path, period: &str) {
    let mut text = String::from("indicator,value\n");
    for v in valid_report("", "BS03", period).values {
        text.push_str(&format!("{},{}\n", v.indicator, v.value));
    }
    std::fs::write(folder.join(format!("DVCQ_THANG-{period}.csv")), text).expect("write csv");
}

fn settings(dir: &Path, endpoint: &str, pki: &Path, cert_of: &str) -> AgentSettings {
    AgentSettings::from_layer(AgentLayer {
        endpoint: Some(endpoint.into()),
        unit: Some("BS03".into()),
        outbox: Some(dir.join("outbox.db")),
        retry_initial_seconds: Some(0.05),
        retry_max_seconds: Some(0.4),
        tls: TlsLayer {
            ca: Some(pki.join("ca.pem")),
            cert: Some(pki.join("units").join(format!("{cert_of}.pem"))),
            key: Some(pki.join("units").join(format!("{cert_of}-key.pem"))),
        },
        reports: vec![ReportLayer {
            data_set: "DVCQ_THANG".into(),
            first_period: "201909".into(),
            folder: Some(dir.join("drop")),
            settle_seconds: Some(0.0),
            sql: None,
            send_after_days: None,
            at: None,
        }],
        ..AgentLayer::default()
    })
    .expect("valid settings")
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_delivers_over_mutual_tls_and_a_wrong_certificate_is_rejected_not_retried() {
    let pki = tempfile::tempdir().expect("tempdir");
    let units = UnitTree::example().expect("units");
    init(&units, pki.path(), &["127.0.0.1".into()], 30).expect("certs init");
    let app = spawn_app_secured(
        Backend::Sqlite,
        |s| s,
        None,
        Some(ServerOptions {
            tls: Some(TlsFiles {
                ca: pki.path().join("ca.pem"),
                cert: pki.path().join("server.pem"),
                key: pki.path().join("server-key.pem"),
            }),
            ..ServerOptions::insecure()
        }),
    )
    .await;
    assert!(app.endpoint.starts_with("https://"), "{}", app.endpoint);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("drop")).expect("mkdir");
    write_csv(&dir.path().join("drop"), "201909");

    // BS04's certificate cannot submit BS03's report: refused once, kept with the reason.
    let mut wrong = Agent::new(settings(dir.path(), &app.endpoint, pki.path(), "BS04"))
        .await
        .expect("agent");
    let (_, sent) = wrong.run_once().await.expect("run");
    assert_eq!(
        (sent.sent, sent.rejected, sent.retrying),
        (0, 1, 0),
        "{sent:?}"
    );
    let rejected = wrong
        .outbox()
        .in_state(EntryState::Rejected)
        .await
        .expect("read");
    let why = rejected[0].rejection.as_ref().expect("reason kept");
    assert_eq!(why.code, "PermissionDenied", "{why:?}");
    wrong.close().await;

    // The district installs its own certificate. The rejected report stays rejected (same
    // figures, nothing for the agent to notice) until the operator resends it.
    let mut right = Agent::new(settings(dir.path(), &app.endpoint, pki.path(), "BS03"))
        .await
        .expect("agent");
    let (_, sent) = right.run_once().await.expect("run");
    assert_eq!(
        (sent.sent, sent.rejected, sent.retrying),
        (0, 0, 0),
        "{sent:?}"
    );
    let id = rejected[0].id;
    match right.resend(&id.to_string()).await.expect("resend") {
        Resent::Requeued(e) => {
            assert_eq!(
                e.submission_id, rejected[0].submission_id,
                "nothing stored under it"
            )
        }
        other => panic!("expected a re-queue, got {other:?}"),
    }
    let (_, sent) = right.run_once().await.expect("run");
    assert_eq!((sent.sent, sent.rejected), (1, 0), "{sent:?}");
    assert!(matches!(
        right.resend(&id.to_string()).await.expect("resend"),
        Resent::AlreadySent(_)
    ));
    right.close().await;
    let stored = app
        .store
        .revisions("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    app.stop().await;
}
