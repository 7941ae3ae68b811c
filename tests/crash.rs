//! The crash test of the load-and-faults issue, in its short form (run by `.ci/run`): clients
//! submit concurrently, the server is killed with SIGKILL mid-load and restarted on the same
//! SQLite file. Every submission acknowledged before the kill is there exactly once, the
//! clients' retries fill in the rest, and the final count is exact.

mod common;

use common::serve::{self, Server};
use common::valid_report;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonghop::grpc::client::AggregatorClient;

const CLIENTS: usize = 8;
const REPORTS_EACH: usize = 40;

/// `tonghop serve --insecure` on a fixed address (the clients keep it across the restart),
/// returning once it listens; the review schedule off, so that no catch-up review at start runs
/// during the load.
fn serve(db: &str, addr: &str) -> Server {
    let mut command = serve::insecure(addr, db);
    command.env("TONGHOP_REVIEW_SCHEDULE", "");
    Server::start(command)
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_report_and_counts_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let addr = free_address();
    let endpoint = format!("http://{addr}");
    let mut server = serve(&db, &addr);

    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let acknowledged = acknowledged.clone();
        let endpoint = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = AggregatorClient::connect_lazy(&endpoint).expect("endpoint");
            let deadline = Instant::now() + Duration::from_secs(120);
            for r in 0..REPORTS_EACH {
                let unit = format!("BS{:02}", c % 10 + 1);
                let period = format!("{}{:02}", 1990 + c, r % 12 + 1);
                let id = format!("crash-{c}-{r}");
                // One unit per client and month: reports with r ≥ 12 are later revisions.
                let mut report = valid_report(&id, &unit, &period);
                common::set_value(&mut report, "tiep_cong_dan", r as f64);
                loop {
                    match client.submit(&report).await {
                        Ok(_) => {
                            acknowledged.lock().expect("lock").insert(id.clone());
                            break;
                        }
                        // The server is down or restarting: a client retries, as agents do.
                        Err(_) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("{id} never delivered: {e:?}"),
                    }
                }
            }
        }));
    }

    // Kill once a third of the load is in, mid-flight.
    let started = Instant::now();
    while acknowledged.lock().expect("lock").len() < CLIENTS * REPORTS_EACH / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "load did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_kill: HashSet<String> = acknowledged.lock().expect("lock").clone();
    assert!(server.signal("KILL").success());
    let _ = server.wait();

    // Every acknowledgement given before the kill survived it.
    let store = tonghop::store::open(&db, &Default::default())
        .await
        .expect("open after the crash");
    for id in &before_kill {
        let parts: Vec<&str> = id.split('-').collect();
        let (c, r): (usize, usize) = (
            parts[1].parse().expect("client"),
            parts[2].parse().expect("report"),
        );
        let unit = format!("BS{:02}", c % 10 + 1);
        let period = format!("{}{:02}", 1990 + c, r % 12 + 1);
        let revisions = store
            .revisions(&unit, "DVCQ_THANG", &period)
            .await
            .expect("read");
        let copies = revisions
            .iter()
            .filter(|rev| rev.report.submission_id.as_str() == id)
            .count();
        assert_eq!(
            copies, 1,
            "{id} acknowledged before the kill must be stored once"
        );
    }
    store.close().await;

    let mut server = serve(&db, &addr);
    for t in tasks {
        t.await.expect("client finished");
    }
    let store = tonghop::store::open(&db, &Default::default())
        .await
        .expect("open");
    // 8 clients × 40 submissions, each stored once: the change counter counts revisions.
    let total = (CLIENTS * REPORTS_EACH) as i64;
    assert_eq!(store.change_counter().await.expect("counter"), total);
    assert_eq!(acknowledged.lock().expect("lock").len() as i64, total);
    // And no report has more revisions than submissions sent for it: 40 submissions over 12
    // months make months 1-4 four revisions and the others three.
    for c in 0..CLIENTS {
        for month in 1..=12 {
            let unit = format!("BS{:02}", c % 10 + 1);
            let period = format!("{}{month:02}", 1990 + c);
            let n = store
                .revisions(&unit, "DVCQ_THANG", &period)
                .await
                .expect("read")
                .len();
            let expected = if month <= REPORTS_EACH % 12 { 4 } else { 3 };
            assert_eq!(n, expected, "{unit} {period}");
        }
    }
    eprintln!(
        "{} acknowledged before SIGKILL, all present once; {total} stored at the end",
        before_kill.len()
    );
    store.close().await;
    let _ = server.signal("TERM");
    let _ = server.wait();
}
