//! End-to-end over a real socket: submit, duplicate, revision, ALREADY_EXISTS, deadlines,
//! transport limits, catalog discovery, health, reflection and graceful shutdown.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{Backend, set_value, spawn_app, spawn_app_with, valid_report};
use std::sync::Arc;
use tonghop::domain::ReceiptStatus;
use tonghop::domain::period::date;
use tonghop::grpc::lean_client::LeanSubmitClient;
use tonic::Code;

fn fixed_clock(t: DateTime<Utc>) -> Option<tonghop::ingest::Clock> {
    Some(Arc::new(move || t))
}

async fn submit_duplicate_revision_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = app.client().await;

    let first = client
        .submit(&valid_report("BS03-201909-a", "BS03", "201909"))
        .await
        .expect("a valid report is accepted");
    assert_eq!((first.revision, first.status), (1, ReceiptStatus::New));
    // Decree 09 window of September 2019: 15 Aug → 14 Sep; deadline 14 Sep + 5 grace days,
    // 23:59:59 in Vietnam = 16:59:59 UTC on 19 Sep.
    assert_eq!(first.window.start, date(2019, 8, 15));
    assert_eq!(first.window.end, date(2019, 9, 14));
    assert_eq!(first.deadline.to_rfc3339(), "2019-09-19T16:59:59+00:00");
    assert!(!first.on_time, "sent years after the deadline");

    // A retry after a lost acknowledgement: the original receipt, nothing written.
    let counter = app.store.change_counter().await.expect("counter");
    let again = client
        .submit(&valid_report("BS03-201909-a", "BS03", "201909"))
        .await
        .expect("duplicate is answered, not refused");
    assert_eq!(
        (again.revision, again.status),
        (1, ReceiptStatus::Duplicate)
    );
    assert_eq!(again.received_at, first.received_at);
    assert_eq!(app.store.change_counter().await.expect("counter"), counter);

    // A correction under a new submission id is revision 2, and analytics read it.
    let mut corrected = valid_report("BS03-201909-b", "BS03", "201909");
    set_value(&mut corrected, "hs_dung_han", 2500.0);
    let second = client
        .submit(&corrected)
        .await
        .expect("correction accepted");
    assert_eq!(
        (second.revision, second.status),
        (2, ReceiptStatus::Revision)
    );
    let latest = app.stored("BS03", "DVCQ_THANG", "201909").await;
    assert_eq!(latest.report.value("hs_dung_han"), Some(2500.0));

    // The same id with other content is refused and changes nothing.
    let before = app.store.dump().await.expect("dump");
    let mut reused = valid_report("BS03-201909-a", "BS03", "201909");
    set_value(&mut reused, "tiep_cong_dan", 9.0);
    let refused = client.submit(&reused).await.expect_err("id reuse refused");
    assert_eq!(refused.code, Code::AlreadyExists);
    assert!(!refused.retryable);
    assert!(
        refused.message.contains("BS03-201909-a"),
        "{}",
        refused.message
    );
    assert_eq!(app.store.dump().await.expect("dump"), before);
    app.stop().await;
}

#[tokio::test]
async fn submit_duplicate_revision_conflict_on_sqlite() {
    submit_duplicate_revision_conflict(Backend::Sqlite).await;
}

#[tokio::test]
async fn submit_duplicate_revision_conflict_on_postgres() {
    submit_duplicate_revision_conflict(Backend::Postgres).await;
}

/// `bench ingest`'s simulated units speak HTTP/2 themselves (`grpc::lean_client`), so its figures
/// mean something only if the server answers them exactly as it answers tonic's client. Every
/// outcome a unit can meet, through both clients against the same server, compared.
#[tokio::test]
async fn the_benchmarks_own_client_is_answered_as_tonics_client_is() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut tonic = app.client().await;
    let mut lean = LeanSubmitClient::connect(&app.endpoint)
        .await
        .expect("connect the benchmark's client");

    // Stored: the receipt says what tonic's says for the same kind of report, and the store
    // holds the report as sent.
    let sent = valid_report("lean-BS03", "BS03", "201909");
    let by_lean = lean.submit(&sent).await.expect("accepted");
    let by_tonic = tonic
        .submit(&valid_report("tonic-BS04", "BS04", "201909"))
        .await
        .expect("accepted");
    assert_eq!(by_lean.submission_id.as_str(), "lean-BS03");
    assert_eq!((by_lean.revision, by_lean.status), (1, ReceiptStatus::New));
    assert_eq!(
        (by_lean.window, by_lean.deadline, by_lean.on_time),
        (by_tonic.window, by_tonic.deadline, by_tonic.on_time)
    );
    let stored = app.stored("BS03", "DVCQ_THANG", "201909").await;
    assert_eq!(stored.report.submission_id.as_str(), "lean-BS03");
    assert_eq!(stored.report.values.len(), sent.values.len());
    assert_eq!(stored.report.value("dat_hien"), Some(32_000.5));
    assert_eq!(stored.report.prepared_by, sent.prepared_by);

    // A resend of tonic's report through the benchmark's client: the original receipt.
    let counter = app.store.change_counter().await.expect("counter");
    let again = lean
        .submit(&valid_report("tonic-BS04", "BS04", "201909"))
        .await
        .expect("a duplicate is answered");
    assert_eq!(
        (again.revision, again.status),
        (1, ReceiptStatus::Duplicate)
    );
    assert_eq!(again.received_at, by_tonic.received_at);

    // Refusals: the same code, message, violations and retry advice through both clients.
    let mut reused = valid_report("lean-BS03", "BS03", "201909");
    set_value(&mut reused, "tiep_cong_dan", 9.0);
    let mut broken = valid_report("broken", "BS05", "201909");
    // More cases settled on time than settled at all breaks a catalog rule.
    set_value(&mut broken, "hs_dung_han", 9_999.0);
    for refused in [&reused, &broken] {
        let through_lean = lean.submit(refused).await.expect_err("refused");
        let through_tonic = tonic.submit(refused).await.expect_err("refused");
        assert_eq!(through_lean.code, through_tonic.code);
        assert_eq!(through_lean.message, through_tonic.message);
        assert_eq!(through_lean.violations, through_tonic.violations);
        assert_eq!(
            (through_lean.retryable, through_lean.retry_after),
            (false, None)
        );
        assert!(!through_tonic.retryable);
    }
    let refused_broken = lean.submit(&broken).await.expect_err("refused");
    assert_eq!(refused_broken.code, Code::InvalidArgument);
    assert!(
        refused_broken
            .violations
            .iter()
            .any(|v| v.rule == "consistency.on_time_within_resolved"),
        "{:?}",
        refused_broken.violations
    );
    assert_eq!(
        lean.submit(&reused).await.expect_err("refused").code,
        Code::AlreadyExists
    );
    // Nothing refused was written.
    assert_eq!(app.store.change_counter().await.expect("counter"), counter);
    app.stop().await;
}

#[tokio::test]
async fn on_time_and_late_follow_the_deadline() {
    // 19 Sep 2019 23:59:59 +07:00 is the last on-time second for September.
    let last_second = Utc
        .with_ymd_and_hms(2019, 9, 19, 16, 59, 59)
        .single()
        .expect("valid");
    let app = spawn_app_with(Backend::Sqlite, |s| s, fixed_clock(last_second)).await;
    let mut client = app.client().await;
    let receipt = client
        .submit(&valid_report("on-time", "BS01", "201909"))
        .await
        .expect("accepted");
    assert!(receipt.on_time);
    assert!(receipt.warnings.is_empty(), "{:?}", receipt.warnings);
    app.stop().await;

    let one_second_late = last_second + chrono::Duration::seconds(1);
    let app = spawn_app_with(Backend::Sqlite, |s| s, fixed_clock(one_second_late)).await;
    let mut client = app.client().await;
    let receipt = client
        .submit(&valid_report("late", "BS01", "201909"))
        .await
        .expect("a late report is still accepted");
    assert!(!receipt.on_time);
    app.stop().await;
}

#[tokio::test]
async fn a_period_still_open_is_accepted_with_a_warning() {
    // On 10 Sep 2019 the September window (to 14 Sep) is still open.
    let during = Utc
        .with_ymd_and_hms(2019, 9, 10, 2, 0, 0)
        .single()
        .expect("valid");
    let app = spawn_app_with(Backend::Sqlite, |s| s, fixed_clock(during)).await;
    let mut client = app.client().await;
    let receipt = client
        .submit(&valid_report("early", "BS02", "201909"))
        .await
        .expect("accepted");
    assert_eq!(receipt.warnings.len(), 1);
    assert!(
        receipt.warnings[0].contains("2019-09-14"),
        "{:?}",
        receipt.warnings
    );
    // October's window starts on 15 Sep: on 10 Sep it is in the future.
    let refused = client
        .submit(&valid_report("too-early", "BS02", "201910"))
        .await
        .expect_err("future period refused");
    assert_eq!(refused.code, Code::InvalidArgument);
    assert_eq!(refused.violations[0].rule, "period_in_future");
    app.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_by_the_transport() {
    let app = spawn_app_with(
        Backend::Sqlite,
        |mut s| {
            s.max_message_bytes = 64 * 1024;
            s
        },
        None,
    )
    .await;
    let mut client = app.client().await;
    client
        .submit(&valid_report("small", "BS01", "201909"))
        .await
        .expect("a normal report fits");
    let before = app.store.dump().await.expect("dump");
    let mut huge = valid_report("huge", "BS01", "201910");
    huge.narrative.results = "a".repeat(100 * 1024);
    let refused = client.submit(&huge).await.expect_err("over the limit");
    assert!(
        matches!(refused.code, Code::OutOfRange | Code::ResourceExhausted),
        "refused by the transport: {refused:?}"
    );
    assert!(refused.message.contains("65536"), "{}", refused.message);
    assert_eq!(app.store.dump().await.expect("dump"), before);
    // The server is still up and answering.
    client
        .submit(&valid_report("after", "BS01", "201911"))
        .await
        .expect("still serving");
    app.stop().await;
}

#[tokio::test]
async fn catalog_tells_a_district_what_to_send() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let data_sets = client.data_sets().await.expect("list data sets");
    let monthly = data_sets
        .iter()
        .find(|d| d.code == "DVCQ_THANG")
        .expect("monthly data set listed");
    assert_eq!(monthly.period_type, "PERIOD_TYPE_MONTHLY");
    assert!(
        monthly
            .indicators
            .contains(&("hs_dung_han".to_string(), true))
    );
    assert!(
        monthly
            .indicators
            .contains(&("dat_hien".to_string(), false))
    );

    let all = client.units("").await.expect("all units");
    // The example province and its ten districts.
    assert_eq!(all.len(), 11);
    let one = client.units("BS03").await.expect("one district");
    assert_eq!(
        one,
        vec![("BS03".into(), "BS".into(), "district".into(), 126_804)]
    );
    let missing = client.units("XX").await.expect_err("unknown root");
    assert_eq!(missing.code, Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let app = spawn_app(Backend::Sqlite).await;
    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "tonghop.v1.IngestService", "tonghop.v1.CatalogService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("stream")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "tonghop.v1.IngestService",
        "tonghop.v1.CatalogService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_acknowledges_only_committed_reports() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.client().await;
    let mut calls = Vec::new();
    for i in 1..=40 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            let unit = format!("BS{:02}", i % 10 + 1);
            let period = format!("2019{:02}", i % 12 + 1);
            let id = format!("shutdown-{i}");
            (
                unit.clone(),
                period.clone(),
                client.submit(&valid_report(&id, &unit, &period)).await,
            )
        }));
    }
    tokio::task::yield_now().await;
    let store = app.store.clone();
    app.server.shutdown().await.expect("clean shutdown");
    let mut acknowledged = 0;
    for call in calls {
        let (unit, period, outcome) = call.await.expect("task");
        if let Ok(receipt) = outcome {
            acknowledged += 1;
            let stored = store
                .revisions(&unit, "DVCQ_THANG", &period)
                .await
                .expect("read");
            assert!(
                stored
                    .iter()
                    .any(|r| r.report.submission_id == receipt.submission_id),
                "acknowledged {} must be stored",
                receipt.submission_id
            );
        }
    }
    let counter = store.change_counter().await.expect("counter");
    assert_eq!(
        counter, acknowledged,
        "every stored revision was acknowledged and vice versa"
    );
    store.close().await;
}

/// A batch's reports go to the store together and are answered in the order sent; a batch that
/// names one report twice, or one submission id twice, is decided in the order sent too.
async fn a_batch_is_answered_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = app.client().await;

    // 2 units × 12 months of 2019: 24 distinct reports.
    let distinct: Vec<_> = ["BS03", "BS05"]
        .iter()
        .flat_map(|unit| {
            (1..=12).map(move |month| {
                let period = format!("2019{month:02}");
                valid_report(&format!("batch-{unit}-{period}"), unit, &period)
            })
        })
        .collect();
    let results = client.submit_batch(&distinct).await.expect("batch call");
    assert_eq!(results.len(), 24);
    for (result, draft) in results.iter().zip(&distinct) {
        let receipt = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{} is valid: {e:?}", draft.submission_id));
        assert_eq!(receipt.submission_id.as_str(), draft.submission_id);
        assert_eq!((receipt.revision, receipt.status), (1, ReceiptStatus::New));
    }
    let june = app.stored("BS05", "DVCQ_THANG", "201906").await;
    assert_eq!(june.report.submission_id.as_str(), "batch-BS05-201906");

    // One report twice (a correction after the original), then the original's id again.
    let original = valid_report("repeat-1", "BS03", "202001");
    let mut correction = valid_report("repeat-2", "BS03", "202001");
    set_value(&mut correction, "hs_dung_han", 2500.0);
    let results = client
        .submit_batch(&[original.clone(), correction, original])
        .await
        .expect("batch call");
    let answers: Vec<_> = results
        .iter()
        .map(|r| {
            let receipt = r.as_ref().expect("each report is valid");
            (
                receipt.submission_id.to_string(),
                receipt.revision,
                receipt.status,
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("repeat-1".to_owned(), 1, ReceiptStatus::New),
            ("repeat-2".to_owned(), 2, ReceiptStatus::Revision),
            ("repeat-1".to_owned(), 1, ReceiptStatus::Duplicate),
        ]
    );
    let latest = app.stored("BS03", "DVCQ_THANG", "202001").await;
    assert_eq!(latest.revision, 2);
    assert_eq!(latest.report.value("hs_dung_han"), Some(2500.0));
    app.stop().await;
}

#[tokio::test]
async fn a_batch_is_answered_in_order_on_sqlite() {
    a_batch_is_answered_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_batch_is_answered_in_order_on_postgres() {
    a_batch_is_answered_in_order(Backend::Postgres).await;
}
