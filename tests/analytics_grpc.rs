//! Analytics over a real socket: the AnalyticsService answers, its errors, freshness right
//! after an acknowledgement, the export stream and `tonghop query` as a user runs it.
//! (The arithmetic of each analytic is tested in depth in `tests/analytics/`.)

mod common;

use common::{Backend, TestApp, set_value, spawn_app, valid_report};
use tonghop::analytics::Scope;
use tonghop::domain::PeriodId;
use tonghop::grpc::client::AggregatorClient;
use tonic::Code;

fn scope(data_set: &str, period: &str, node: &str) -> Scope {
    Scope {
        data_set: data_set.into(),
        period: PeriodId::parse(period).expect("valid period"),
        node: node.into(),
        indicators: Vec::new(),
    }
}

/// BS01, BS02 and BS03 report July to September 2019; dossiers resolved and on time differ
/// per district and month so that sums and ratios are easy to follow.
async fn seeded() -> (TestApp, AggregatorClient) {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    for (d, unit) in ["BS01", "BS02", "BS03"].iter().enumerate() {
        for month in 7..=9 {
            let period = format!("2019{month:02}");
            let mut r = valid_report(&format!("{unit}-{period}"), unit, &period);
            // resolved = 100 × (district number) + month; on time = resolved − month.
            let resolved = 100.0 * (d as f64 + 1.0) + f64::from(month);
            set_value(&mut r, "hs_tiep_nhan", resolved + 10.0);
            set_value(&mut r, "hs_giai_quyet", resolved);
            set_value(&mut r, "hs_dung_han", resolved - f64::from(month));
            client.submit(&r).await.expect("seed report accepted");
        }
    }
    (app, client)
}

#[tokio::test]
async fn indicators_over_grpc_are_ratios_of_sums() {
    let (app, mut client) = seeded().await;
    let answer = client
        .indicators(&scope("DVCQ_THANG", "2019Q3", ""))
        .await
        .expect("indicators");
    let t = &answer.answer;
    assert_eq!(t.node.as_str(), "BS", "empty unit means the root");
    // Σ resolved over 3 districts × 3 months: (100+200+300)×3 + (7+8+9)×3 = 1800 + 72 = 1872.
    let resolved = t
        .total("hs_giai_quyet")
        .and_then(|r| r.value)
        .expect("total");
    assert_eq!(resolved, 1872.0);
    // Σ on time = 1872 − (7+8+9)×3 = 1872 − 72 = 1800; rate = 1800 ÷ 1872 × 100.
    let rate = t
        .total("ty_le_dung_han")
        .and_then(|r| r.value)
        .expect("rate");
    assert!((rate - 1800.0 / 1872.0 * 100.0).abs() < 1e-9, "{rate}");
    // BS01 alone: resolved 300 + 24 = 324, on time 300.
    let bs01 = t
        .value("BS01", "ty_le_dung_han")
        .and_then(|r| r.value)
        .expect("BS01");
    assert!((bs01 - 300.0 / 324.0 * 100.0).abs() < 1e-9);
    // 10 districts × 3 months expected, 9 received; BS04 has nothing and says so.
    let total = t.total("hs_giai_quyet").expect("total row");
    assert_eq!((total.reports_received, total.reports_expected), (9, 30));
    let bs04 = t.value("BS04", "hs_giai_quyet").expect("BS04 row");
    assert_eq!(bs04.value, None);
    assert_eq!(bs04.reason.as_deref(), Some("no report received"));
    // Labels travel with the answer.
    assert_eq!(
        answer.labels.indicator_name("hs_giai_quyet", false),
        "Hồ sơ đã giải quyết"
    );
    assert_eq!(answer.labels.unit_name("BS03"), "Huyện Đông Hòa");
    app.stop().await;
}

#[tokio::test]
async fn a_report_is_in_the_very_next_answer() {
    let (app, mut client) = seeded().await;
    let before = client
        .indicators(&scope("DVCQ_THANG", "201909", "BS04"))
        .await
        .expect("indicators");
    assert_eq!(
        before.answer.total("tiep_cong_dan").and_then(|r| r.value),
        None
    );
    let mut r = valid_report("BS04-201909", "BS04", "201909");
    set_value(&mut r, "tiep_cong_dan", 6.0);
    client.submit(&r).await.expect("accepted");
    // No sleep, no refresh call: the receipt came after commit, the query sees the commit.
    let after = client
        .indicators(&scope("DVCQ_THANG", "201909", "BS04"))
        .await
        .expect("indicators");
    assert_eq!(
        after.answer.total("tiep_cong_dan").and_then(|r| r.value),
        Some(6.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn ranking_completeness_trend_and_export() {
    let (app, mut client) = seeded().await;
    let q3 = scope("DVCQ_THANG", "2019Q3", "");

    let ranking = client.ranking(&q3, None).await.expect("ranking");
    assert_eq!(
        ranking.answer.composite.len(),
        10,
        "every district is ranked"
    );
    assert_eq!(ranking.answer.previous_period, "2019Q2");
    let on_time = ranking
        .answer
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "ty_le_dung_han")
        .expect("on-time rate is ranked");
    // BS03's rate 900/972 beats BS02's 600/672 beats BS01's 300/324; the rest are missing.
    let order: Vec<&str> = on_time
        .entries
        .iter()
        .take(3)
        .map(|e| e.unit.as_str())
        .collect();
    assert_eq!(order, ["BS03", "BS02", "BS01"]);
    assert!(
        on_time.entries[3..]
            .iter()
            .all(|e| e.missing && e.rank == 4)
    );

    let completeness = client.completeness(&q3).await.expect("completeness");
    let c = &completeness.answer;
    assert_eq!((c.total.expected, c.total.received), (30, 9));
    assert_eq!(c.missing.len(), 21, "7 districts × 3 months");
    assert_eq!(c.periods, ["201907", "201908", "201909"]);

    let trend = client
        .trend(&scope("DVCQ_THANG", "201909", "BS01"))
        .await
        .expect("trend");
    let row = trend
        .answer
        .rows
        .iter()
        .find(|r| r.is_total && r.indicator.as_str() == "hs_giai_quyet")
        .expect("row");
    // September 109 against August 108: +1, +1/108 × 100 %.
    assert_eq!(
        (row.value, row.previous, row.change),
        (Some(109.0), Some(108.0), Some(1.0))
    );
    assert!((row.change_pct.expect("pct") - 100.0 / 108.0).abs() < 1e-9);
    assert_eq!(row.year_before, None, "nothing for September 2018");

    let export = client
        .export(&scope("DVCQ_THANG", "201907", ""), "201909")
        .await
        .expect("export");
    // 9 reports × 21 values each.
    assert_eq!(export.len(), 9 * 21);
    assert!(export.iter().all(|r| r.revision == 1));
    app.stop().await;
}

#[tokio::test]
async fn bad_queries_are_named() {
    let (app, mut client) = seeded().await;
    let unknown = client
        .indicators(&scope("DVCQ_THANG", "2019", "XX01"))
        .await
        .expect_err("unknown unit");
    assert_eq!(unknown.code, Code::NotFound);
    let unaligned = client
        .indicators(&scope("DVCQ_NAM", "2019Q3", ""))
        .await
        .expect_err("a quarter of a yearly data set");
    assert_eq!(unaligned.code, Code::InvalidArgument);
    assert_eq!(unaligned.violations[0].rule, "period_not_whole");
    assert!(unaligned.violations[0].description.contains("DVCQ_NAM"));
    let mut wrong = scope("DVCQ_THANG", "2019", "");
    wrong.indicators = vec!["tiep_dan".into()];
    let unknown_indicator = client.indicators(&wrong).await.expect_err("typo");
    assert_eq!(unknown_indicator.violations[0].rule, "unknown_indicator");
    app.stop().await;
}

// Multi-threaded: the server keeps serving while this thread waits on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_command_prints_tables_and_csv() {
    let (app, _client) = seeded().await;
    let bin = env!("CARGO_BIN_EXE_tonghop");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .args(["--endpoint", &app.endpoint])
            .env("NO_COLOR", "1")
            .output()
            .expect("run tonghop query")
    };
    let table = run(&["query", "indicators", "--period", "2019Q3"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(text.contains("Hồ sơ đã giải quyết"), "{text}");
    assert!(
        text.contains("1.872"),
        "Vietnamese thousands separator: {text}"
    );
    let english = run(&["query", "indicators", "--period", "2019Q3", "--lang", "en"]);
    let text = String::from_utf8_lossy(&english.stdout);
    assert!(
        text.contains("Dossiers resolved") && text.contains("1,872"),
        "{text}"
    );
    let csv = run(&[
        "query",
        "indicators",
        "--period",
        "2019Q3",
        "--format",
        "csv",
    ]);
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.starts_with("unit,is_total,indicator,value"), "{text}");
    assert!(text.contains("BS,true,hs_giai_quyet,1872,"), "{text}");
    let completeness = run(&["query", "completeness", "--period", "2019Q3"]);
    let text = String::from_utf8_lossy(&completeness.stdout);
    assert!(text.contains("Chưa nộp"), "{text}");
    let bad = run(&["query", "ranking", "--period", "2019Q3", "--unit", "XX"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NotFound"));
    app.stop().await;
}
