//! The yearly review: its numbers are the analytics answers (checked by parsing its CSV
//! tables), it is stored as a version with its change counter, a missed scheduled run is caught
//! up at start, and two schedulers on one PostgreSQL database run it once.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{Backend, TestDb, set_value, spawn_app_with, valid_report};
use std::collections::HashMap;
use std::sync::Arc;
use tonghop::analytics::Scope;
use tonghop::domain::PeriodId;
use tonghop::ingest::Clock;
use tonghop::query::QueryService;
use tonghop::review::Reviewer;
use tonghop::review::schedule::{ReviewSchedule, run_due};
use tonghop::store::{self, StoreOptions};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid time")
}

fn clock(t: DateTime<Utc>) -> Option<Clock> {
    Some(Arc::new(move || t))
}

fn parse_csv(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(s: &str) -> Option<f64> {
    (!s.is_empty()).then(|| s.parse().expect("a number in the CSV"))
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Land donated in the report of district `d` (0 for BS01) for `month` of `year`: tenths and
/// quarters, which f64 adds to slightly different totals in different orders.
fn land(d: usize, year: i32, month: u32) -> f64 {
    const PARTS: [f64; 5] = [0.1, 0.7, 0.2, 320.5, 120.25];
    PARTS[(d * 24 + (year - 2018) as usize * 12 + month as usize) % 5]
}

/// The same reports stored in two orders (districts push concurrently, so arrival order is
/// never the same twice) give the same review tables, byte for byte: the totals are settled
/// before anything is derived from them (`analytics/settle.rs`).
#[tokio::test]
async fn the_review_tables_do_not_depend_on_the_order_reports_arrived_in() {
    let mut reports = Vec::new();
    for (d, unit) in ["BS01", "BS02", "BS03"].iter().enumerate() {
        for year in [2018, 2019] {
            for month in 1..=12 {
                let period = format!("{year}{month:02}");
                let mut r = valid_report(&format!("{unit}-{period}"), unit, &period);
                set_value(&mut r, "dat_hien", land(d, year, month));
                reports.push(r);
            }
        }
    }
    let (mut tables, mut answers) = (Vec::new(), Vec::new());
    for order in ["as listed", "reversed"] {
        let app = spawn_app_with(Backend::Sqlite, |s| s, clock(at(2020, 1, 10, 2))).await;
        let mut client = app.client().await;
        let in_order: Vec<_> = if order == "reversed" {
            reports.iter().rev().collect()
        } else {
            reports.iter().collect()
        };
        for r in in_order {
            client.submit(r).await.expect("seed report");
        }
        let year = Scope {
            data_set: "DVCQ_THANG".into(),
            period: PeriodId::parse("2019").expect("period"),
            node: String::new(),
            indicators: Vec::new(),
        };
        answers.push(client.trend(&year).await.expect("trend").answer.rows);
        let meta = client
            .generate_review(2019, "", "vi")
            .await
            .expect("review generated");
        tables.push(client.review(meta.id).await.expect("fetched").tables);
    }
    // The analytics answers themselves, not only their 15-digit CSV: every total, change and
    // rate the same f64 (the CSV's rounding alone would hide a difference in the last bits).
    assert_eq!(answers[0].len(), answers[1].len());
    for (a, b) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(a, b, "the trend row differs between the two arrival orders");
    }
    assert!(!tables[0].is_empty());
    for (name, text) in &tables[0] {
        let other = tables[1].get(name).expect("the same tables");
        // The first line that differs, rather than two whole tables.
        let differing = text.lines().zip(other.lines()).find(|(a, b)| a != b);
        assert_eq!(
            differing, None,
            "{name} differs between the two arrival orders"
        );
        assert_eq!(text, other, "{name}");
    }
    assert_eq!(tables[0].len(), tables[1].len());
    // And the total is the one worked out by hand. A cycle of PARTS is 0.1 + 0.7 + 0.2 +
    // 320.5 + 120.25 = 441.75. In 2019 district d's months 1-12 take indices d × 24 + 13 to
    // d × 24 + 24: two whole cycles each (883.5), plus what is left over.
    //   BS01: indices 13-24 (≡ 3, 4, 0, …): two cycles + PARTS[3] + PARTS[4] = 883.5 + 440.75
    //   BS02: indices 37-48 (≡ 2, 3, 4, …): two cycles + PARTS[2] + PARTS[3] = 883.5 + 320.7
    //   BS03: indices 61-72 (≡ 1, 2, 3, …): two cycles + PARTS[1] + PARTS[2] = 883.5 + 0.9
    // 1324.25 + 1204.2 + 884.4 = 3412.85.
    let totals = parse_csv(&tables[0]["totals.csv"]);
    let land_total = totals
        .iter()
        .find(|r| r["indicator"] == "dat_hien")
        .expect("dat_hien in the totals");
    assert_eq!(land_total["value"], "3412.85");
}

#[tokio::test]
async fn every_number_in_the_review_is_the_analytics_answer() {
    // All reports arrive on 2020-01-10: on time for nothing in 2019 but still complete data.
    let app = spawn_app_with(Backend::Sqlite, |s| s, clock(at(2020, 1, 10, 2))).await;
    let mut client = app.client().await;
    for (d, unit) in ["BS01", "BS02", "BS03", "BS04"].iter().enumerate() {
        for year in [2018, 2019] {
            for month in 1..=12 {
                // BS04 stops reporting after June 2019: missing months and a zero on-time rate.
                if *unit == "BS04" && year == 2019 && month > 6 {
                    continue;
                }
                let period = format!("{year}{month:02}");
                let mut r = valid_report(&format!("{unit}-{period}"), unit, &period);
                let resolved = 100.0 * (d as f64 + 1.0) + f64::from(month) + f64::from(year - 2018);
                set_value(&mut r, "hs_giai_quyet", resolved);
                set_value(&mut r, "hs_dung_han", resolved - f64::from(month));
                set_value(&mut r, "hs_tiep_nhan", resolved + 5.0);
                set_value(&mut r, "tiep_cong_dan", f64::from(d as u32 + month));
                client.submit(&r).await.expect("seed report");
            }
        }
    }
    // A correction, so the review has a revision to mention.
    let mut fix = valid_report("BS02-201903-fix", "BS02", "201903");
    set_value(&mut fix, "hs_giai_quyet", 500.0);
    set_value(&mut fix, "hs_dung_han", 480.0);
    client.submit(&fix).await.expect("correction");
    let counter = app.store.change_counter().await.expect("counter");

    let meta = client
        .generate_review(2019, "", "vi")
        .await
        .expect("review generated");
    assert_eq!(meta.year, 2019);
    assert_eq!(meta.trigger, "on_demand");
    assert_eq!(
        meta.change_counter, counter,
        "records the data it was built from"
    );
    let review = client.review(meta.id).await.expect("fetched");
    let year = Scope {
        data_set: "DVCQ_THANG".into(),
        period: PeriodId::parse("2019").expect("period"),
        node: String::new(),
        indicators: Vec::new(),
    };

    // Totals and the change against 2018.
    let trend = client.trend(&year).await.expect("trend").answer;
    let totals = parse_csv(&review.tables["totals.csv"]);
    assert_eq!(
        totals.len(),
        trend.rows.iter().filter(|r| r.is_total).count()
    );
    for row in &totals {
        let t = trend
            .rows
            .iter()
            .find(|r| r.is_total && r.indicator.as_str() == row["indicator"])
            .expect("indicator in analytics");
        assert!(close(num(&row["value"]), t.value), "{row:?} vs {t:?}");
        assert!(close(num(&row["previous_year"]), t.year_before), "{row:?}");
        assert!(close(num(&row["change_pct"]), t.change_yoy_pct), "{row:?}");
    }
    // By hand for one: 2019 dossiers resolved = Σ units Σ months (100(d+1) + m + 1) with BS04
    // only January-June, and BS02 March replaced by 500.
    let by_hand: f64 = (0..4)
        .flat_map(|d| {
            let months = if d == 3 { 6 } else { 12 };
            (1..=months).map(move |m| {
                if d == 1 && m == 3 {
                    500.0
                } else {
                    100.0 * (d as f64 + 1.0) + f64::from(m) + 1.0
                }
            })
        })
        .sum();
    let resolved = totals
        .iter()
        .find(|r| r["indicator"] == "hs_giai_quyet")
        .and_then(|r| num(&r["value"]));
    assert_eq!(resolved, Some(by_hand));

    // Composite ranking.
    let ranking = client.ranking(&year, None).await.expect("ranking").answer;
    let csv_ranking = parse_csv(&review.tables["ranking.csv"]);
    assert_eq!(csv_ranking.len(), ranking.composite.len());
    for (row, entry) in csv_ranking.iter().zip(&ranking.composite) {
        assert_eq!(row["unit"], entry.unit.as_str());
        assert_eq!(row["rank"], entry.rank.to_string());
        assert!(close(num(&row["score"]), Some(entry.score)));
        assert_eq!(
            row["rank_change"],
            entry.rank_change.map(|c| c.to_string()).unwrap_or_default()
        );
    }

    // Reporting discipline.
    let completeness = client
        .completeness(&year)
        .await
        .expect("completeness")
        .answer;
    let csv_c = parse_csv(&review.tables["completeness.csv"]);
    let total = csv_c.last().expect("total row");
    assert_eq!(total["unit"], "BS");
    assert_eq!(total["expected"], completeness.total.expected.to_string());
    assert_eq!(total["received"], completeness.total.received.to_string());
    assert_eq!(total["on_time"], completeness.total.on_time.to_string());
    // 10 districts × 12 months expected; 3 × 12 + 6 received.
    assert_eq!(
        (completeness.total.expected, completeness.total.received),
        (120, 42)
    );
    let missing = parse_csv(&review.tables["missing.csv"]);
    assert_eq!(missing.len(), completeness.missing.len());

    // Appendix and the monthly series against per-month analytics.
    let units = parse_csv(&review.tables["units.csv"]);
    let by_unit = client.indicators(&year).await.expect("indicators").answer;
    for row in units.iter().take(200) {
        let a = by_unit
            .value(&row["unit"], &row["indicator"])
            .expect("cell in analytics");
        assert!(close(num(&row["value"]), a.value), "{row:?}");
    }
    let monthly = parse_csv(&review.tables["monthly.csv"]);
    for month in ["201901", "201906", "201912"] {
        let answer = client
            .indicators(&Scope {
                period: PeriodId::parse(month).expect("month"),
                ..year.clone()
            })
            .await
            .expect("month")
            .answer;
        for row in monthly.iter().filter(|r| r["period"] == month) {
            let t = answer.total(&row["indicator"]).expect("total");
            assert!(close(num(&row["value"]), t.value), "{row:?}");
        }
    }

    // The text: Vietnamese title, numbers in Vietnamese format, charts in the HTML.
    assert!(
        review
            .markdown
            .starts_with("# BÁO CÁO TỔNG KẾT CÔNG TÁC DÂN VẬN CHÍNH QUYỀN NĂM 2019")
    );
    assert!(review.markdown.contains("từ 15/12/2018 đến 14/12/2019"));
    let formatted = tonghop::format::number(by_hand, 0, false);
    assert!(
        review.markdown.contains(&formatted),
        "{formatted} in the Markdown"
    );
    assert!(review.markdown.contains("BS02") || review.markdown.contains("Thị xã Phú An"));
    assert_eq!(
        review.html.matches("<svg").count(),
        2,
        "score bars and monthly rates"
    );
    assert!(review.html.contains("<html lang=\"vi\">"));

    // Versions are kept: a second generation is a new, listed version.
    let again = client
        .generate_review(2019, "", "en")
        .await
        .expect("english");
    assert!(again.id > meta.id);
    let english = client.review(again.id).await.expect("fetched");
    assert!(
        english
            .markdown
            .contains("REVIEW OF THE GOVERNMENT MASS-MOBILISATION WORK OF 2019")
    );
    let listed = client.reviews(Some(2019)).await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![again.id, meta.id]
    );
    app.stop().await;
}

async fn reviewer_on(url: &str, now: DateTime<Utc>) -> Reviewer {
    let store = store::open(url, &StoreOptions::default())
        .await
        .expect("store");
    let catalog = Arc::new(tonghop::domain::Catalog::embedded().expect("catalog"));
    let units = Arc::new(tonghop::domain::UnitTree::example().expect("units"));
    let query = QueryService::load(store, catalog, units)
        .await
        .expect("read model");
    Reviewer::new(query, "DVCQ_THANG").with_clock(Arc::new(move || now))
}

#[tokio::test]
async fn a_missed_scheduled_review_is_caught_up_at_start_and_only_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    // The server was down on 20 Dec 2019 07:00 (+07:00); it starts on 5 Jan 2020.
    let reviewer = reviewer_on(&db.url, at(2020, 1, 5, 1)).await;
    let schedule = ReviewSchedule::parse("0 0 7 20 12 *").expect("cron");
    let meta = run_due(&reviewer, &schedule, "test-1", reviewer.now())
        .await
        .expect("runs")
        .expect("the missed run is caught up");
    assert_eq!((meta.year, meta.trigger.as_str()), (2019, "schedule"));
    let again = run_due(&reviewer, &schedule, "test-1", reviewer.now())
        .await
        .expect("runs");
    assert!(again.is_none(), "already done");
    let jobs = reviewer.store().review_jobs().await.expect("jobs");
    assert_eq!(
        jobs,
        vec![("2019-12-20T07:00:00+07:00".to_string(), Some(meta.id))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_postgres_database_review_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let now = at(2019, 12, 20, 1); // 08:00 in Vietnam, an hour after the occurrence
    let first = reviewer_on(&db.url, now).await;
    let second = reviewer_on(&db.url, now).await;
    let schedule = ReviewSchedule::parse("0 0 7 20 12 *").expect("cron");
    let (a, b) = tokio::join!(
        run_due(&first, &schedule, "aggregator-a", now),
        run_due(&second, &schedule, "aggregator-b", now)
    );
    let ran: Vec<_> = [a.expect("a"), b.expect("b")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ran.len(), 1, "exactly one scheduler generated the review");
    let reviews = first.store().reviews(None).await.expect("list");
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].year, 2019);
    let jobs = second.store().review_jobs().await.expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, Some(reviews[0].id));
}
