//! Mutual TLS and authorisation with real certificates made in the test: who gets in, who may
//! do what, and the rate limit's answer.

mod common;

use common::{Backend, TestApp, spawn_app_secured, valid_report};
use std::path::Path;
use tonghop::analytics::Scope;
use tonghop::domain::{PeriodId, UnitCode, UnitTree};
use tonghop::grpc::client::{AggregatorClient, ClientTls};
use tonghop::grpc::{ServerOptions, TlsFiles};
use tonghop::security::certs::{Authority, init};
use tonghop::security::rate::RateLimit;
use tonghop::security::{Policy, Principal};
use tonic::Code;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let units = UnitTree::example().expect("units");
        init(
            &units,
            dir.path(),
            &["localhost".into(), "127.0.0.1".into()],
            30,
        )
        .expect("certs init");
        Pki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn client(&self, name: &str) -> ClientTls {
        let (cert, key) = if name == "analyst" || name == "admin" {
            (
                self.path().join(format!("{name}.pem")),
                self.path().join(format!("{name}-key.pem")),
            )
        } else {
            (
                self.path().join("units").join(format!("{name}.pem")),
                self.path().join("units").join(format!("{name}-key.pem")),
            )
        };
        ClientTls {
            ca: self.path().join("ca.pem"),
            cert,
            key,
        }
    }

    fn server_options(&self, policy: Policy, rate_limit: Option<RateLimit>) -> ServerOptions {
        ServerOptions {
            tls: Some(TlsFiles {
                ca: self.path().join("ca.pem"),
                cert: self.path().join("server.pem"),
                key: self.path().join("server-key.pem"),
            }),
            policy,
            rate_limit,
            ..ServerOptions::insecure()
        }
    }
}

async fn secured(pki: &Pki, policy: Policy, rate_limit: Option<RateLimit>) -> TestApp {
    spawn_app_secured(
        Backend::Sqlite,
        |s| s,
        None,
        Some(pki.server_options(policy, rate_limit)),
    )
    .await
}

async fn as_(app: &TestApp, tls: &ClientTls) -> AggregatorClient {
    AggregatorClient::connect_with(&app.endpoint, Some(tls))
        .await
        .expect("a certificate from the province CA connects")
}

/// A call from a client that must not get in: either the connection or the call fails.
async fn refused(app: &TestApp, tls: &ClientTls) -> String {
    match AggregatorClient::connect_with(&app.endpoint, Some(tls)).await {
        Err(e) => format!("{e:#}"),
        Ok(mut client) => match client.submit(&valid_report("x-1", "BS03", "201909")).await {
            Ok(receipt) => panic!("an untrusted client was served: {receipt:?}"),
            Err(f) => {
                assert_ne!(
                    f.code,
                    Code::PermissionDenied,
                    "refused by a handler, not TLS"
                );
                assert_ne!(f.code, Code::InvalidArgument, "reached validation: {f:?}");
                f.message
            }
        },
    }
}

#[tokio::test]
async fn a_district_submits_its_own_report_and_nobody_elses() {
    let pki = Pki::new();
    let app = secured(&pki, Policy::default(), None).await;
    let mut bs03 = as_(&app, &pki.client("BS03")).await;
    bs03.submit(&valid_report("own", "BS03", "201909"))
        .await
        .expect("own report accepted");

    let before = app.store.dump().await.expect("dump");
    let denied = bs03
        .submit(&valid_report("other", "BS04", "201909"))
        .await
        .expect_err("another district's report");
    assert_eq!(denied.code, Code::PermissionDenied);
    assert_eq!(denied.message, "unit:BS03 may not submit a report for BS04");
    assert!(!denied.retryable);
    assert_eq!(
        app.store.dump().await.expect("dump"),
        before,
        "nothing stored"
    );

    // In a batch, the foreign report is refused on its own and the own one goes through.
    let results = bs03
        .submit_batch(&[
            valid_report("own-2", "BS03", "201910"),
            valid_report("other-2", "BS04", "201910"),
        ])
        .await
        .expect("batch answered");
    assert!(results[0].is_ok());
    let refused = results[1].as_ref().expect_err("foreign report in batch");
    assert_eq!(refused.code, Code::PermissionDenied);
    assert!(
        app.store
            .latest("BS04", "DVCQ_THANG", "201910")
            .await
            .expect("read")
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn analysts_read_but_do_not_submit_and_admins_do_everything() {
    let pki = Pki::new();
    let app = secured(&pki, Policy::default(), None).await;
    let mut analyst = as_(&app, &pki.client("analyst")).await;
    let denied = analyst
        .submit(&valid_report("a-1", "BS03", "201909"))
        .await
        .expect_err("analysts do not submit");
    assert_eq!(denied.code, Code::PermissionDenied);
    assert!(denied.message.starts_with("role:analyst may not submit"));
    let scope = Scope {
        data_set: "DVCQ_THANG".into(),
        period: PeriodId::parse("2019").expect("period"),
        node: String::new(),
        indicators: Vec::new(),
    };
    analyst
        .indicators(&scope)
        .await
        .expect("analysts read analytics");
    analyst.data_sets().await.expect("and the catalog");

    let mut admin = as_(&app, &pki.client("admin")).await;
    admin
        .submit(&valid_report("admin-1", "BS05", "201909"))
        .await
        .expect("an administrator may submit for any unit");
    app.stop().await;
}

#[tokio::test]
async fn a_unit_reads_only_its_own_values_when_the_policy_says_so() {
    let pki = Pki::new();
    let closed = Policy {
        units_may_read_others: false,
        ..Policy::default()
    };
    let app = secured(&pki, closed, None).await;
    let mut bs03 = as_(&app, &pki.client("BS03")).await;
    let scope = |node: &str| Scope {
        data_set: "DVCQ_THANG".into(),
        period: PeriodId::parse("2019").expect("period"),
        node: node.into(),
        indicators: Vec::new(),
    };
    bs03.indicators(&scope("BS03")).await.expect("own values");
    for other in ["BS04", "BS"] {
        let denied = bs03
            .indicators(&scope(other))
            .await
            .expect_err("others' values");
        assert_eq!(denied.code, Code::PermissionDenied, "{other}");
        assert_eq!(
            denied.message,
            format!("unit:BS03 may not read analytics of {other}")
        );
        let export = bs03
            .export(&scope(other), "2019")
            .await
            .expect_err("export of others' raw values");
        assert_eq!(export.code, Code::PermissionDenied);
    }
    app.stop().await;

    // With the default (open) policy the published figures are readable by every unit.
    let app = secured(&pki, Policy::default(), None).await;
    let mut bs03 = as_(&app, &pki.client("BS03")).await;
    bs03.indicators(&scope("BS04")).await.expect("open policy");
    app.stop().await;
}

#[tokio::test]
async fn strangers_expired_and_anonymous_clients_never_reach_a_handler() {
    let pki = Pki::new();
    let app = secured(&pki, Policy::default(), None).await;
    let before = app.store.dump().await.expect("dump");

    // A certificate from another CA, for a real unit code.
    let stranger_dir = tempfile::tempdir().expect("tmp");
    let other_ca = Authority::create("another province", 30).expect("ca");
    let code = UnitCode::parse("BS03").expect("code");
    let (cert, key) = other_ca
        .client(&Principal::Unit(code.clone()), 30)
        .expect("issue")
        .write(stranger_dir.path(), "BS03")
        .expect("write");
    let stranger = ClientTls {
        ca: pki.path().join("ca.pem"),
        cert,
        key,
    };
    let why = refused(&app, &stranger).await;
    assert!(!why.is_empty());

    // An expired certificate from the right CA.
    let ca = Authority::load(pki.path()).expect("load CA");
    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = ca
        .client_valid(
            &Principal::Unit(code),
            (
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            ),
        )
        .expect("issue expired")
        .write(stranger_dir.path(), "expired")
        .expect("write");
    let expired = ClientTls {
        ca: pki.path().join("ca.pem"),
        cert,
        key,
    };
    let why = refused(&app, &expired).await;
    assert!(!why.is_empty());

    // No certificate at all: TLS with the CA only, then plaintext.
    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone())
        .expect("endpoint")
        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(
                std::fs::read(pki.path().join("ca.pem")).expect("ca"),
            ),
        ))
        .expect("tls config");
    let anonymous = match channel.connect().await {
        Err(_) => true,
        Ok(channel) => {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_err()
        }
    };
    assert!(anonymous, "a client without a certificate is refused");
    let plaintext = app.endpoint.replacen("https://", "http://", 1);
    match AggregatorClient::connect(&plaintext).await {
        Err(_) => {}
        Ok(mut client) => {
            client
                .submit(&valid_report("plain", "BS03", "201909"))
                .await
                .expect_err("plaintext against a TLS server");
        }
    }

    assert_eq!(
        app.store.dump().await.expect("dump"),
        before,
        "nothing stored"
    );
    // And the server still serves its own.
    let mut bs03 = as_(&app, &pki.client("BS03")).await;
    bs03.submit(&valid_report("after", "BS03", "201909"))
        .await
        .expect("served after the refusals");
    app.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_unavailable_with_retry_info() {
    let pki = Pki::new();
    // A burst of 3, then one call every 2 seconds.
    let limit = RateLimit {
        per_second: 0.5,
        burst: 3,
    };
    let app = secured(&pki, Policy::default(), Some(limit)).await;
    let mut bs03 = as_(&app, &pki.client("BS03")).await;
    for _ in 0..3 {
        bs03.data_sets().await.expect("within the burst");
    }
    let limited = bs03.data_sets().await.expect_err("over the limit");
    assert_eq!(limited.code, Code::Unavailable);
    assert!(limited.retryable, "UNAVAILABLE is retryable");
    let wait = limited.retry_after.expect("RetryInfo given");
    // The bucket is empty: the next token comes within 1 ÷ 0.5 = 2 s.
    assert!(
        wait.as_secs_f64() > 0.0 && wait.as_secs_f64() <= 2.0,
        "{wait:?}"
    );
    // Another principal has its own budget.
    let mut bs04 = as_(&app, &pki.client("BS04")).await;
    bs04.data_sets()
        .await
        .expect("BS04 is not limited by BS03's calls");
    app.stop().await;
}
