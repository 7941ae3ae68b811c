//! The district agent against a real aggregator over real gRPC: `tonghop serve` as a separate
//! process that is started late, SIGKILLed and restarted; the agent in-process or as its own
//! process, SIGKILLed mid-send. After each run the aggregator's store must hold every report
//! exactly once (one revision each) and the agent's outbox must show all of them sent.

mod common;

use common::{Backend, spawn_app, valid_report};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonghop::agent::settings::ReportLayer;
use tonghop::agent::{Agent, AgentLayer, AgentSettings, EntryState, Outbox};
use tonghop::domain::PeriodId;

const BIN: &str = env!("CARGO_BIN_EXE_tonghop");
const UNIT: &str = "BS03";
const DATA_SET: &str = "DVCQ_THANG";

/// A port nobody listens on right now, to start (and restart) an aggregator on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// `tonghop serve` as a child process on a fixed port and SQLite file, so it can be killed and
/// started again on the same address and data.
struct Aggregator {
    child: Option<Child>,
    port: u16,
    database_url: String,
    log: PathBuf,
}

impl Aggregator {
    fn new(dir: &Path) -> Self {
        Aggregator {
            child: None,
            port: free_port(),
            database_url: format!("sqlite://{}", dir.join("province.db").display()),
            log: dir.join("serve.log"),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log file");
        let child = Command::new(BIN)
            // Plaintext on loopback; mutual TLS is the security tests' subject.
            .args([
                "serve",
                "--insecure",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .args(["--database-url", &self.database_url])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tonghop serve");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "aggregator exited ({exited:?}); log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "aggregator did not listen within 60 s; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            sigkill(child);
        }
    }

    /// Revisions per period of this unit's data set, read from the aggregator's own store.
    async fn revisions(&self, periods: &[String]) -> Vec<usize> {
        let store = tonghop::store::open(&self.database_url, &Default::default())
            .await
            .expect("open the aggregator's store");
        let mut out = Vec::new();
        for p in periods {
            let revisions = store.revisions(UNIT, DATA_SET, p).await.expect("read");
            out.push(revisions.len());
        }
        store.close().await;
        out
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn sigkill(mut child: Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    let _ = child.wait();
}

/// `count` monthly periods from `first`, as identifiers.
fn months(first: &str, count: usize) -> Vec<String> {
    let mut p = PeriodId::parse(first).expect("period");
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(p.to_string());
        p = tonghop::agent::schedule::next_period(&p).expect("next");
    }
    out
}

/// A valid monthly report as the district's CSV export writes it; `tweak` changes figures.
fn write_csv(folder: &Path, period: &str, tweak: &[(&str, f64)]) {
    let mut report = valid_report("", UNIT, period);
    for (indicator, value) in tweak {
        common::set_value(&mut report, indicator, *value);
    }
    let mut text = String::from("indicator,value\n");
    for v in &report.values {
        text.push_str(&format!("{},{}\n", v.indicator, v.value));
    }
    std::fs::write(folder.join(format!("{DATA_SET}-{period}.csv")), text).expect("write csv");
}

fn folder_report(folder: &Path, first_period: &str) -> ReportLayer {
    ReportLayer {
        data_set: DATA_SET.into(),
        first_period: first_period.into(),
        folder: Some(folder.to_owned()),
        settle_seconds: Some(0.0),
        sql: None,
        send_after_days: None,
        at: None,
    }
}

/// Quick retries and passes, so a test waits milliseconds where production waits seconds.
fn settings(dir: &Path, endpoint: &str, report: ReportLayer) -> AgentSettings {
    AgentSettings::from_layer(AgentLayer {
        endpoint: Some(endpoint.into()),
        unit: Some(UNIT.into()),
        outbox: Some(dir.join("outbox.db")),
        poll_interval_seconds: Some(0.5),
        retry_initial_seconds: Some(0.05),
        retry_max_seconds: Some(0.4),
        reports: vec![report],
        ..AgentLayer::default()
    })
    .expect("valid settings")
}

/// The same settings as a file, for the agent as a separate process.
fn settings_file(dir: &Path, endpoint: &str, folder: &Path, first_period: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "endpoint = {endpoint:?}\nunit = {UNIT:?}\noutbox = {:?}\npoll_interval_seconds = 0.5\n\
         retry_initial_seconds = 0.05\nretry_max_seconds = 0.4\n\n[[reports]]\n\
         data_set = {DATA_SET:?}\nfirst_period = {first_period:?}\nfolder = {:?}\n\
         settle_seconds = 0\n",
        dir.join("outbox.db").display().to_string(),
        folder.display().to_string(),
    );
    std::fs::write(&path, text).expect("write settings");
    path
}

/// Runs the agent in this process until the returned sender is used (or dropped).
fn spawn_agent(
    agent: Agent,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Agent>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let mut agent = agent;
        agent
            .run_until(async move {
                let _ = stopped.await;
            })
            .await
            .expect("agent runs");
        agent
    });
    (stop, handle)
}

/// (queued, sent, rejected, superseded) of an outbox, read through its own connection.
async fn counts(path: &Path) -> [i64; 4] {
    let outbox = Outbox::open(path, UNIT).await.expect("open outbox");
    let counts = outbox.counts().await.expect("counts");
    outbox.close().await;
    counts
}

/// Polls the outbox until `done` holds, at most `limit`.
async fn wait_for(path: &Path, limit: Duration, what: &str, done: impl Fn([i64; 4]) -> bool) {
    let started = Instant::now();
    loop {
        let c = counts(path).await;
        if done(c) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not reached within {limit:?}; outbox (queued, sent, rejected, superseded) = \
             {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregator_down_at_start_then_up_everything_delivered_once() {
    common::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    let periods = months("201901", 12);
    for p in &periods {
        write_csv(&folder, p, &[]);
    }
    let mut aggregator = Aggregator::new(dir.path());
    let s = settings(
        dir.path(),
        &aggregator.endpoint(),
        folder_report(&folder, "201901"),
    );
    let outbox = s.outbox.clone();
    let (stop, handle) = spawn_agent(Agent::new(s).await.expect("agent"));

    // Down: everything is committed to the outbox and waits.
    wait_for(&outbox, Duration::from_secs(20), "12 queued", |c| {
        c[0] == 12
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(counts(&outbox).await[1], 0, "nothing can be sent yet");

    let started = Instant::now();
    aggregator.start();
    wait_for(&outbox, Duration::from_secs(30), "12 sent", |c| c[1] == 12).await;
    eprintln!(
        "delivered 12 reports {:?} after the aggregator came up",
        started.elapsed()
    );
    let _ = stop.send(());
    let agent = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("agent stops")
        .expect("agent task");

    assert_eq!(aggregator.revisions(&periods).await, vec![1; 12]);
    let sent = agent
        .outbox()
        .in_state(EntryState::Sent)
        .await
        .expect("read");
    assert!(
        sent.iter()
            .all(|e| e.sent.as_ref().is_some_and(|s| s.revision == 1))
    );
    // While the link was down the reports waited together behind one backoff, not each on
    // its own.
    let tried_while_down: u32 = sent.iter().map(|e| e.attempts - 1).sum();
    assert!(
        tried_while_down >= 2,
        "attempts while down: {tried_while_down}"
    );
    agent.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregator_sigkilled_and_restarted_mid_run_of_200_reports() {
    common::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    // January 2003 to August 2019: 200 monthly reports.
    let periods = months("200301", 200);
    assert_eq!(periods.last().map(String::as_str), Some("201908"));
    for p in &periods {
        write_csv(&folder, p, &[]);
    }
    let mut aggregator = Aggregator::new(dir.path());
    aggregator.start();
    let s = settings(
        dir.path(),
        &aggregator.endpoint(),
        folder_report(&folder, "200301"),
    );
    let outbox = s.outbox.clone();
    let started = Instant::now();
    let (stop, handle) = spawn_agent(Agent::new(s).await.expect("agent"));

    wait_for(&outbox, Duration::from_secs(30), "40 sent", |c| c[1] >= 40).await;
    aggregator.kill();
    let at_kill = counts(&outbox).await;
    eprintln!("aggregator killed with {} of 200 sent", at_kill[1]);
    assert!(at_kill[1] < 200, "the kill must land mid-run: {at_kill:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    aggregator.start();
    wait_for(&outbox, Duration::from_secs(60), "200 sent", |c| {
        c[1] == 200
    })
    .await;
    eprintln!(
        "200 reports delivered in {:?} across the kill",
        started.elapsed()
    );
    let _ = stop.send(());
    let agent = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("agent stops")
        .expect("agent task");

    assert_eq!(
        aggregator.revisions(&periods).await,
        vec![1; 200],
        "every report exactly once"
    );
    assert_eq!(counts(&outbox).await, [0, 200, 0, 0]);
    let sent = agent
        .outbox()
        .in_state(EntryState::Sent)
        .await
        .expect("read");
    assert!(
        sent.iter()
            .all(|e| e.sent.as_ref().is_some_and(|s| s.revision == 1))
    );
    agent.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_sigkilled_mid_send_and_restarted_loses_and_duplicates_nothing() {
    common::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    let periods = months("200301", 200);
    for p in &periods {
        write_csv(&folder, p, &[]);
    }
    let mut aggregator = Aggregator::new(dir.path());
    aggregator.start();
    let config = settings_file(dir.path(), &aggregator.endpoint(), &folder, "200301");
    let outbox = dir.path().join("outbox.db");

    let agent = Command::new(BIN)
        .args(["agent", "run", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tonghop agent run");
    // The outbox file appears when the agent starts; wait for sending to be under way.
    let started = Instant::now();
    while !outbox.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "agent never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(&outbox, Duration::from_secs(30), "30 sent", |c| c[1] >= 30).await;
    sigkill(agent);
    let at_kill = counts(&outbox).await;
    let stored: usize = aggregator.revisions(&periods).await.iter().sum();
    eprintln!(
        "agent killed: outbox {at_kill:?}, aggregator holds {stored} (acknowledged but not yet \
         marked: {})",
        stored as i64 - at_kill[1]
    );
    assert!(at_kill[1] < 200, "the kill must land mid-run: {at_kill:?}");

    let restarted = Command::new(BIN)
        .args(["agent", "run", "--once", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tonghop agent run --once");
    let stdout = String::from_utf8_lossy(&restarted.stdout);
    assert!(
        restarted.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    assert!(
        stdout.contains("0 queued, 200 sent, 0 rejected"),
        "{stdout}"
    );
    assert_eq!(aggregator.revisions(&periods).await, vec![1; 200]);
    assert_eq!(counts(&outbox).await, [0, 200, 0, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_report_keeps_its_reasons_and_blocks_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
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
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
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
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
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

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_running_agent_cleanly_with_reports_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    write_csv(&folder, "201909", &[]);
    // Nobody listens: the report waits in the outbox, retried with backoff.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let config = settings_file(dir.path(), &endpoint, &folder, "201909");
    let outbox = dir.path().join("outbox.db");
    let mut agent = Command::new(BIN)
        .args(["agent", "run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tonghop agent run");
    let started = Instant::now();
    while !outbox.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "agent never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(&outbox, Duration::from_secs(20), "1 queued", |c| c[0] == 1).await;
    let pid = agent.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM")
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = agent.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "agent did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    assert_eq!(
        counts(&outbox).await,
        [1, 0, 0, 0],
        "the report is kept for later"
    );
}
