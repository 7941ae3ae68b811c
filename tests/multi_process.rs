//! Beyond one machine (deploy/README.md, "Scaling"): several `tonghop serve` processes behind a
//! gRPC load balancer, sharing one PostgreSQL database. What makes that work is proved here with
//! two real processes of the built binary on one database of their own:
//!
//! - they may start together on an empty database (migrations run once, under sqlx's lock);
//! - a report is stored once whichever process receives it: revisions of one report get
//!   distinct numbers across processes, and a resend to the other process is a duplicate;
//! - each process's analytics (its own in-memory read model) sees every report, including one
//!   acknowledged by the other process a moment before the query.
//!
//! The shipped deployment settings files are also checked here against the settings code, so a
//! renamed key breaks this test rather than a province's service.

mod common;

use common::serve::{self, Server, Starting};
use common::{Backend, TestDb, set_value, valid_report};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonghop::analytics::Scope;
use tonghop::domain::{PeriodId, ReceiptStatus};

/// Starts `n` `tonghop serve --insecure` processes at once on the same database, so that they
/// race on its migrations.
fn start_together(database_url: &str, n: usize) -> Vec<Server> {
    let starting: Vec<Starting> = (0..n)
        .map(|_| Server::spawn(serve::insecure("127.0.0.1:0", database_url)))
        .collect();
    starting.into_iter().map(Starting::listening).collect()
}

/// SIGTERM, as systemd and Docker stop it: the process must end cleanly.
fn terminate(mut server: Server) {
    let status = server.terminate();
    assert!(
        status.success(),
        "clean stop: {status:?}\n{}",
        server.log_text()
    );
}

fn scope(period: &str) -> Scope {
    Scope {
        data_set: "DVCQ_THANG".into(),
        period: PeriodId::parse(period).expect("valid period"),
        node: String::new(),
        indicators: Vec::new(),
    }
}

const DISTRICTS: [&str; 10] = [
    "BS01", "BS02", "BS03", "BS04", "BS05", "BS06", "BS07", "BS08", "BS09", "BS10",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_see_every_report() {
    let db = TestDb::new(Backend::Postgres).await;
    let servers = start_together(&db.url, 2);
    for server in &servers {
        assert!(
            server.log_text().contains("store ready"),
            "{}",
            server.log_text()
        );
    }
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(server.client().await);
    }

    // September 2019: each district's report goes to one of the two processes, as a load
    // balancer would spread them; district i reports i citizen receptions.
    let mut expected_receptions: HashMap<&str, f64> = HashMap::new();
    let mut sends = Vec::new();
    for (i, unit) in DISTRICTS.iter().enumerate() {
        let mut report = valid_report(&format!("{unit}-201909"), unit, "201909");
        set_value(&mut report, "tiep_cong_dan", (i + 1) as f64);
        expected_receptions.insert(unit, (i + 1) as f64);
        let mut client = clients[i % 2].clone();
        sends.push(tokio::spawn(async move { client.submit(&report).await }));
    }
    for send in sends {
        let receipt = send.await.expect("task").expect("accepted");
        assert_eq!((receipt.revision, receipt.status), (1, ReceiptStatus::New));
    }

    // BS01's report went to process 0; its correction arrives at process 1 and is revision 2.
    let mut correction = valid_report("BS01-201909-correction", "BS01", "201909");
    set_value(&mut correction, "tiep_cong_dan", 100.0);
    let receipt = clients[1].submit(&correction).await.expect("accepted");
    assert_eq!(
        (receipt.revision, receipt.status),
        (2, ReceiptStatus::Revision)
    );
    expected_receptions.insert("BS01", 100.0);

    // A resend of BS02's report (stored by process 1) to process 0 after a lost
    // acknowledgement: the original receipt, nothing written.
    let mut resend = valid_report("BS02-201909", "BS02", "201909");
    set_value(&mut resend, "tiep_cong_dan", 2.0);
    let receipt = clients[0].submit(&resend).await.expect("duplicate");
    assert_eq!(
        (receipt.revision, receipt.status),
        (1, ReceiptStatus::Duplicate)
    );

    // Eight revisions of one report sent at once through both processes: the row lock in the
    // shared database gives them eight distinct numbers.
    let mut sends = Vec::new();
    for n in 0..8 {
        let mut report = valid_report(&format!("BS03-201908-{n}"), "BS03", "201908");
        set_value(&mut report, "tiep_cong_dan", f64::from(n));
        let mut client = clients[n as usize % 2].clone();
        sends.push(tokio::spawn(async move { client.submit(&report).await }));
    }
    let mut revisions = Vec::new();
    for send in sends {
        revisions.push(send.await.expect("task").expect("accepted").revision);
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=8).collect::<Vec<u32>>());

    // Every process's analytics see every report, whichever process stored it.
    let total: f64 = expected_receptions.values().sum();
    for (k, client) in clients.iter_mut().enumerate() {
        let answer = client
            .indicators(&scope("201909"))
            .await
            .expect("indicators");
        let row = answer
            .answer
            .total("tiep_cong_dan")
            .expect("total row")
            .clone();
        assert_eq!(
            (row.reports_received, row.reports_expected),
            (10, 10),
            "process {k} counts all ten reports"
        );
        assert_eq!(
            row.value,
            Some(total),
            "process {k}: latest revisions summed"
        );
        let completeness = client
            .completeness(&scope("201909"))
            .await
            .expect("completeness");
        let c = &completeness.answer;
        assert_eq!(
            (c.total.expected, c.total.received),
            (10, 10),
            "process {k}"
        );
        assert!(c.missing.is_empty(), "process {k}: {:?}", c.missing);
        let august = client
            .completeness(&scope("201908"))
            .await
            .expect("completeness");
        assert_eq!(
            august.answer.total.received, 1,
            "process {k}: one report, 8 revisions"
        );
    }

    // Freshness across processes: acknowledged by one, in the other's very next answer.
    let october = valid_report("BS04-201910", "BS04", "201910");
    clients[0].submit(&october).await.expect("accepted");
    let seen = clients[1]
        .completeness(&scope("201910"))
        .await
        .expect("completeness");
    assert_eq!(seen.answer.total.received, 1, "no sleep, no refresh call");

    for server in servers {
        terminate(server);
    }
}

/// Both processes run the default review schedule (20 December 07:00, Asia/Ho_Chi_Minh) and
/// both start after its last occurrence, so both try to catch it up at start: one `review_jobs`
/// row per occurrence lets exactly one of them generate the review, and both serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_review_runs_once_across_processes() {
    let db = TestDb::new(Backend::Postgres).await;
    let servers = start_together(&db.url, 2);
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(server.client().await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let reviews = loop {
        let listed = clients[0].reviews(None).await.expect("list reviews");
        if !listed.is_empty() {
            break listed;
        }
        assert!(Instant::now() < deadline, "no scheduled review within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Give the slower process time to try too; it must find the run taken.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = clients[0].reviews(None).await.expect("list");
    let second = clients[1].reviews(None).await.expect("list");
    assert_eq!(first.len(), 1, "one review for one occurrence: {first:?}");
    assert_eq!(first, second, "both processes serve the same version");
    assert_eq!(first[0].trigger, "schedule");
    assert_eq!(first[0].id, reviews[0].id);
    let taken: usize = servers
        .iter()
        .map(|s| s.log_text().matches("scheduled review written").count())
        .sum();
    assert_eq!(taken, 1, "exactly one process wrote it");
    for server in servers {
        terminate(server);
    }
}

fn deploy_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// The settings files in deploy/ are read by the same code as a province's: a key renamed in
/// `src/config.rs` or `src/agent/settings.rs` must be renamed there too.
#[test]
fn deploy_settings_files_are_accepted() {
    use tonghop::agent::{AgentLayer, AgentSettings};
    use tonghop::config::{Settings, SettingsLayer};

    // systemd: PostgreSQL over its Unix socket with peer authentication, mutual TLS.
    let s = Settings::resolve(
        Some(&deploy_file("systemd/tonghop.toml")),
        |_| None,
        SettingsLayer::default(),
    )
    .expect("deploy/systemd/tonghop.toml");
    assert_eq!(s.listen.to_string(), "0.0.0.0:50051");
    let options = s.server_options().expect("TLS configured, not insecure");
    assert!(options.tls.is_some());
    let socket: sqlx::postgres::PgConnectOptions = s.database_url.parse().expect("a PG URL");
    assert_eq!(
        socket.get_socket(),
        Some(&PathBuf::from("/run/postgresql")),
        "the Unix socket, not TCP"
    );
    // tonghop.env's TONGHOP_DATABASE_URL wins over the file (a database on another machine).
    let remote = "postgres://tonghop:secret@db.tinh.internal:5432/tonghop";
    let s = Settings::resolve(
        Some(&deploy_file("systemd/tonghop.toml")),
        |k| (k == "TONGHOP_DATABASE_URL").then(|| remote.to_string()),
        SettingsLayer::default(),
    )
    .expect("with tonghop.env");
    assert_eq!(s.database_url, remote);

    // The container image: the URL comes from compose.yaml's environment.
    let s = Settings::resolve(
        Some(&deploy_file("container/tonghop.toml")),
        |k| (k == "TONGHOP_DATABASE_URL").then(|| "postgres://tonghop:x@postgres/tonghop".into()),
        SettingsLayer::default(),
    )
    .expect("deploy/container/tonghop.toml");
    assert!(s.server_options().expect("TLS").tls.is_some());
    assert_eq!(s.listen.to_string(), "0.0.0.0:50051");

    // The district agent under systemd.
    let a = AgentSettings::resolve(
        Some(&deploy_file("systemd/agent.toml")),
        |_| None,
        AgentLayer::default(),
    )
    .expect("deploy/systemd/agent.toml");
    assert!(a.tls.is_some());
    assert!(
        a.outbox.starts_with("/var/lib/tonghop-agent"),
        "in StateDirectory"
    );
    assert!(!a.reports.is_empty());

    // The agents of compose.yaml: unit and certificate from the environment.
    let env: HashMap<&str, &str> = [
        ("TONGHOP_AGENT_UNIT", "BS01"),
        ("TONGHOP_AGENT_TLS_CERT", "/etc/tonghop/pki/units/BS01.pem"),
        (
            "TONGHOP_AGENT_TLS_KEY",
            "/etc/tonghop/pki/units/BS01-key.pem",
        ),
    ]
    .into();
    let a = AgentSettings::resolve(
        Some(&deploy_file("container/agent.toml")),
        |k| env.get(k).map(|v| v.to_string()),
        AgentLayer::default(),
    )
    .expect("deploy/container/agent.toml");
    assert_eq!(a.unit, "BS01");
    let tls = a.tls.expect("TLS from file and environment");
    assert_eq!(tls.ca, PathBuf::from("/etc/tonghop/pki/ca.pem"));
    assert_eq!(
        tls.key,
        PathBuf::from("/etc/tonghop/pki/units/BS01-key.pem")
    );
}
