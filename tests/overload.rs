//! Past its concurrency limit the server sheds load with UNAVAILABLE and RetryInfo (not
//! RESOURCE_EXHAUSTED without it), and clients that honour the delay get everything stored
//! exactly once.

mod common;

use common::{Backend, spawn_app_secured, valid_report};
use std::future::Future;
use std::time::{Duration, Instant};
use tonghop::domain::{Receipt, ReportDraft};
use tonghop::grpc::ServerOptions;
use tonghop::grpc::client::{AggregatorClient, SubmitFailure};
use tonghop::grpc::lean_client::LeanSubmitClient;
use tonic::Code;

/// A client that submits reports: tonic's (the agent's, `tonghop submit`'s) or the one
/// `bench ingest`'s simulated units use, whose 4× pass relies on the same shedding.
trait Submits: Send + 'static {
    fn submit_report(
        &mut self,
        report: &ReportDraft,
    ) -> impl Future<Output = Result<Receipt, SubmitFailure>> + Send;
}

impl Submits for AggregatorClient {
    fn submit_report(
        &mut self,
        report: &ReportDraft,
    ) -> impl Future<Output = Result<Receipt, SubmitFailure>> + Send {
        self.submit(report)
    }
}

impl Submits for LeanSubmitClient {
    fn submit_report(
        &mut self,
        report: &ReportDraft,
    ) -> impl Future<Output = Result<Receipt, SubmitFailure>> + Send {
        self.submit(report)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_four_times_the_limit_calls_are_shed_with_retry_info_and_nothing_is_lost() {
    four_times_the_limit(async |endpoint: String| {
        AggregatorClient::connect(&endpoint).await.expect("connect")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmarks_own_client_is_shed_and_retried_as_tonics_is() {
    four_times_the_limit(async |endpoint: String| {
        LeanSubmitClient::connect(&endpoint).await.expect("connect")
    })
    .await;
}

async fn four_times_the_limit<C: Submits>(connect: impl AsyncFn(String) -> C) {
    const LIMIT: usize = 4;
    const CLIENTS: usize = 4 * LIMIT;
    const REPORTS_EACH: usize = 12;
    let app = spawn_app_secured(
        Backend::Sqlite,
        |s| s,
        None,
        Some(ServerOptions {
            max_concurrent_calls: LIMIT,
            ..ServerOptions::insecure()
        }),
    )
    .await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = connect(app.endpoint.clone()).await;
        tasks.push(tokio::spawn(async move {
            let (mut shed, mut other) = (0usize, Vec::new());
            for r in 0..REPORTS_EACH {
                let unit = format!("BS{:02}", c % 10 + 1);
                let period = format!("{}{:02}", 2000 + c, r + 1);
                let report = valid_report(&format!("load-{c}-{r}"), &unit, &period);
                // Retry as an agent does: only retryable answers, after the server's delay.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match client.submit_report(&report).await {
                        Ok(_) => break,
                        Err(f) if f.code == Code::Unavailable && Instant::now() < deadline => {
                            assert!(f.retryable, "shed calls are retryable: {f:?}");
                            let wait = f.retry_after.expect("RetryInfo on every shed call");
                            shed += 1;
                            tokio::time::sleep(wait).await;
                        }
                        Err(f) => {
                            other.push(format!("{f:?}"));
                            break;
                        }
                    }
                }
            }
            (shed, other)
        }));
    }
    let mut shed = 0;
    for t in tasks {
        let (s, other) = t.await.expect("client task");
        assert!(other.is_empty(), "non-retryable failures: {other:?}");
        shed += s;
    }
    // 16 clients × 12 reports, each stored exactly once however often it was shed.
    let expected = (CLIENTS * REPORTS_EACH) as i64;
    assert_eq!(app.store.change_counter().await.expect("counter"), expected);
    assert!(
        shed > 0,
        "with 16 clients on a limit of 4 some calls must be shed"
    );
    eprintln!(
        "{expected} reports stored, {shed} calls shed and retried, in {:?}",
        started.elapsed()
    );
    app.stop().await;
}
