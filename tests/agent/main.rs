//! The district agent against a real aggregator over real gRPC: `tonghop serve` as a separate
//! process that is started late, SIGKILLed and restarted; the agent in-process or as its own
//! process, SIGKILLed mid-send. After each run the aggregator's store must hold every report
//! exactly once (one revision each) and the agent's outbox must show all of them sent.
//! This file holds the aggregator process, the agent's settings and the outbox counts; the tests
//! are in `faults` (kills, restarts, an aggregator late or gone) and `outcomes` (rejections and
//! corrections).

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod outcomes;

use common::{Backend, spawn_app, valid_report};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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

/// SIGTERM, as `systemctl stop` sends it; then waits up to `limit` for the agent to end and
/// returns how it ended and how long that took after the signal.
async fn sigterm_and_wait(agent: &mut Child, limit: Duration) -> (ExitStatus, Duration) {
    let pid = agent.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM")
            .success()
    );
    let signalled = Instant::now();
    loop {
        if let Some(status) = agent.try_wait().expect("wait") {
            return (status, signalled.elapsed());
        }
        assert!(
            signalled.elapsed() < limit,
            "agent did not stop on SIGTERM within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// A temporary directory holding the agent's drop folder, `drop/`, still empty.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    (dir, folder)
}

/// `tonghop agent run --config config` as its own process, returned once it has started: its
/// outbox file, `outbox`, appears then.
async fn start_agent_process(config: &Path, outbox: &Path) -> Child {
    let agent = Command::new(BIN)
        .args(["agent", "run", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
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
    agent
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
