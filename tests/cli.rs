//! The command line as a user runs it: `tonghop serve` as a separate process (on PostgreSQL,
//! the production store), `tonghop submit` against it, SIGTERM, and `tonghop demo`.

mod common;

use common::serve::{self, BIN, Server};
use common::{Backend, TestDb};
use std::path::Path;
use std::process::Command;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/binh-son")
        .join(name)
        .display()
        .to_string()
}

fn submit(endpoint: &str, file: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["submit", file, "--endpoint", endpoint])
        .env("NO_COLOR", "1")
        .output()
        .expect("run tonghop submit")
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_to_serve_on_postgres_then_duplicate_then_sigterm() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut server = Server::start(serve::insecure("127.0.0.1:0", &db.url));
    let endpoint = server.endpoint();

    let first = submit(&endpoint, &example("report-BS03-201909.toml"));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("accepted: BS03 DVCQ_THANG 201909 revision 1 (new)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("data window    2019-08-15 to 2019-09-14"),
        "{stdout}"
    );

    let second = submit(&endpoint, &example("report-BS03-201909.toml"));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(stdout.contains("revision 1 (duplicate)"), "{stdout}");

    // The JSON example carries its own submission id: a new revision of the same report.
    let third = submit(&endpoint, &example("report-BS03-201909.json"));
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert!(stdout.contains("revision 2 (revision)"), "{stdout}");

    // A broken report: exit code 1 and every violation listed.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "unit_code = \"BS03\"\ndata_set = \"DVCQ_THANG\"\nperiod = \"201913\"\n\
         [values]\ntiep_cong_dan = -1\n",
    )
    .expect("write");
    let rejected = submit(&endpoint, &bad.display().to_string());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert_eq!(rejected.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[period_malformed]"), "{stderr}");
    assert!(stderr.contains("[negative_value]"), "{stderr}");
    assert!(stderr.contains("[required_indicator_missing]"), "{stderr}");

    // Stored in PostgreSQL: two revisions, no more.
    let store = tonghop::store::open(&db.url, &Default::default())
        .await
        .expect("open the same database");
    let revisions = store
        .revisions("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    assert_eq!(revisions.len(), 2);
    store.close().await;

    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
}

#[test]
fn submit_without_a_server_says_so() {
    let out = submit("http://127.0.0.1:9", &example("report-BS03-201909.toml"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the aggregator"), "{stderr}");
}

#[test]
fn demo_runs_a_year_and_reports_what_happened() {
    let review_dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .args(["demo", "--review-out"])
        .arg(review_dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run tonghop demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 10 districts × (12 months + 1 year) = 130 district-periods; the script leaves one
    // (BS10, October) unfixed, so 129 arrive.
    assert!(
        stdout.contains("129 of 130 district-periods received"),
        "{stdout}"
    );
    assert!(stdout.contains("recognised as duplicate"), "{stdout}");
    assert!(stdout.contains("stored as revision 2"), "{stdout}");
    assert!(stdout.contains("on_time = false"), "{stdout}");
    // It ends with the province's indicators, the composite ranking and the written review.
    assert!(stdout.contains("Hồ sơ đã giải quyết"), "{stdout}");
    assert!(stdout.contains("Xếp hạng tổng hợp"), "{stdout}");
    let review = review_dir.path().join("review-2019-BS-vi-v1.md");
    let text = std::fs::read_to_string(&review).expect("review written where it says");
    assert!(stdout.contains(&review.display().to_string()), "{stdout}");
    assert!(
        text.contains("Ngày: 20/12/2019"),
        "dated on the simulated clock"
    );
    assert!(review_dir.path().join("review-2019-BS-vi-v1.html").exists());
}

#[test]
fn serve_refuses_to_start_without_tls_unless_insecure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", dir.path().join("t.db").display()))
        .env("NO_COLOR", "1")
        .output()
        .expect("run tonghop serve");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no TLS configured"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn certs_init_then_serve_and_submit_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    let init = Command::new(BIN)
        .args(["certs", "init", "--out"])
        .arg(&pki)
        .output()
        .expect("run tonghop certs init");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(String::from_utf8_lossy(&init.stdout).contains("wrote 30 files"));

    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut command = serve::command();
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", &db, "--tls-ca"])
        .arg(pki.join("ca.pem"))
        .arg("--tls-cert")
        .arg(pki.join("server.pem"))
        .arg("--tls-key")
        .arg(pki.join("server-key.pem"));
    let mut server = Server::start(command);
    let endpoint = format!("https://{}", server.addr);
    let submit_as = |unit: &str| {
        Command::new(BIN)
            .args([
                "submit",
                &example("report-BS03-201909.toml"),
                "--endpoint",
                &endpoint,
            ])
            .arg("--ca")
            .arg(pki.join("ca.pem"))
            .arg("--cert")
            .arg(pki.join("units").join(format!("{unit}.pem")))
            .arg("--key")
            .arg(pki.join("units").join(format!("{unit}-key.pem")))
            .env("NO_COLOR", "1")
            .output()
            .expect("run tonghop submit")
    };
    let own = submit_as("BS03");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert!(String::from_utf8_lossy(&own.stdout).contains("revision 1 (new)"));
    // BS04's certificate cannot send BS03's report.
    let foreign = submit_as("BS04");
    assert_eq!(foreign.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&foreign.stderr);
    assert!(
        stderr.contains("unit:BS04 may not submit a report for BS03"),
        "{stderr}"
    );
    assert!(server.terminate().success());
}

/// More reports per unit than there are past months to give them would fail midway, after
/// the bare-store pass, with a validation error about the future; it is refused up front.
#[test]
fn bench_ingest_refuses_more_reports_than_past_months() {
    let output = Command::new(BIN)
        .args(["bench", "ingest", "--skip-postgres", "--reports", "301"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run tonghop bench ingest");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--reports") && stderr.contains("301") && stderr.contains("1..=300"),
        "{stderr}"
    );
    assert!(!stderr.contains("bare store"), "{stderr}");
}

/// A service's log goes to a journal or a container's log, not a terminal: no colour codes in
/// it even when the environment does not say `NO_COLOR`, so its lines read and grep as text.
#[test]
fn a_server_logging_to_a_pipe_writes_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut command = serve::insecure("127.0.0.1:0", &db);
    command.env_remove("NO_COLOR");
    // With colour codes in the log this already fails: `Server::start` reads the address
    // from `addr=` in the log and never finds it, so it gives up after its timeout.
    let mut server = Server::start(command);
    assert!(server.terminate().success());
    let log = server.log_text();
    // The start-up lines are there (the plaintext warning, the address) …
    assert!(log.contains("plaintext gRPC"), "{log}");
    assert!(log.contains("aggregator listening"), "{log}");
    // … and not one escape character among them.
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

/// `systemctl stop` during a start: a SIGTERM that arrives while the server is still opening
/// its store must stop it once it is up (exit 0, "sigterm received"), not kill it, which it
/// did while the handler was installed only once serving began. The signal goes as soon as
/// the server has logged its first line, before it listens.
#[test]
fn a_sigterm_during_start_up_stops_the_server_rather_than_killing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let starting = Server::spawn(serve::insecure("127.0.0.1:0", &db));
    let waited = std::time::Instant::now();
    let first = loop {
        let log = starting.server().log_text();
        if let Some(line) = log.lines().next() {
            break line.to_owned();
        }
        assert!(waited.elapsed().as_secs() < 60, "the server logged nothing");
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert!(
        !first.contains("aggregator listening"),
        "the signal should go before the server listens: {first}"
    );
    assert!(starting.server().signal("TERM").success());
    // Killed, it would never log its address and this waits out the harness's timeout.
    let mut server = starting.listening();
    let status = server.wait().expect("wait for the server");
    // The log is read on another thread: give it the last lines the process wrote.
    let waited = std::time::Instant::now();
    while !server.log_text().contains("sigterm received") && waited.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let log = server.log_text();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("sigterm received"), "{log}");
}
