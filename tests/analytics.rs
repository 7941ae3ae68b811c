//! The arithmetic of every analytic, through the real pipeline: a SQLite file in a temporary
//! directory, reports submitted through `Ingestor::submit` with a fixed clock, answers read
//! through `QueryService`. The catalog and the unit tree are small ones written below, so that
//! every expected number can be worked out by hand (and is, in the test, next to its assertion).

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone, Utc};
use std::sync::{Arc, Mutex};
use tonghop::analytics::{AnalyticsError, IndicatorTable, Scope};
use tonghop::domain::period::date;
use tonghop::domain::{
    Catalog, DateWindow, DraftValue, PeriodId, PeriodType, Receipt, ReceiptStatus, ReportDraft,
    UnitTree, ValidationLimits,
};
use tonghop::ingest::Ingestor;
use tonghop::query::{QueryError, QueryService};
use tonghop::store::{self, StoreOptions};

/// Monthly data sets under both calendars, plus a six-monthly and a yearly one for alignment.
const CATALOG: &str = r#"
[[indicators]]
code = "received"
name_vi = "Hồ sơ tiếp nhận"
name_en = "Dossiers received"
unit_of_measure = "hồ sơ"
value_type = "integer"
aggregation = "sum"
max_value = 1000000.0
ranking = { direction = "higher_is_better", weight = 1, per_capita = true }

[[indicators]]
code = "resolved"
name_vi = "Hồ sơ đã giải quyết"
name_en = "Dossiers resolved"
unit_of_measure = "hồ sơ"
value_type = "integer"
aggregation = "sum"
max_value = 1000000.0

[[indicators]]
code = "on_time"
name_vi = "Hồ sơ giải quyết đúng hạn"
name_en = "Dossiers resolved on time"
unit_of_measure = "hồ sơ"
value_type = "integer"
aggregation = "sum"
max_value = 1000000.0

[[indicators]]
code = "models"
name_vi = "Mô hình đã đăng ký"
name_en = "Models registered to date"
unit_of_measure = "mô hình"
value_type = "integer"
aggregation = "last"
max_value = 100000.0

[[indicators]]
code = "crowd"
name_vi = "Đoàn đông người lớn nhất"
name_en = "Largest crowd"
unit_of_measure = "người"
value_type = "integer"
aggregation = "max"
max_value = 100000.0

[[rules]]
code = "on_time_within_resolved"
left = ["on_time"]
comparison = "le"
right = ["resolved"]
description_vi = "Đúng hạn không vượt quá đã giải quyết"
description_en = "on time cannot exceed resolved"

[[derived]]
code = "on_time_rate"
name_vi = "Tỷ lệ đúng hạn"
name_en = "On-time rate"
unit_of_measure = "%"
numerator = "on_time"
denominator = "resolved"
factor = 100.0
ranking = { direction = "higher_is_better", weight = 2 }

[[data_sets]]
code = "M"
name_vi = "Báo cáo tháng (tháng dương lịch)"
name_en = "Monthly report (calendar months)"
period_type = "monthly"
calendar = "months"
grace_days = 5
reporting_levels = ["district"]
indicators = [
  { indicator = "received" },
  { indicator = "resolved" },
  { indicator = "on_time" },
  { indicator = "models" },
  { indicator = "crowd" },
]

[[data_sets]]
code = "D9"
name_vi = "Báo cáo tháng (Nghị định 09)"
name_en = "Monthly report (Decree 09)"
period_type = "monthly"
calendar = "decree09"
grace_days = 5
reporting_levels = ["district"]
indicators = [
  { indicator = "received" },
  { indicator = "resolved" },
  { indicator = "on_time" },
  { indicator = "models" },
  { indicator = "crowd" },
]

[[data_sets]]
code = "H"
name_vi = "Báo cáo 6 tháng"
name_en = "Six-monthly report"
period_type = "six_monthly"
calendar = "months"
grace_days = 10
reporting_levels = ["district"]
indicators = [{ indicator = "received" }, { indicator = "resolved" }, { indicator = "on_time" }]

[[data_sets]]
code = "Y"
name_vi = "Báo cáo năm"
name_en = "Yearly report"
period_type = "yearly"
calendar = "months"
grace_days = 15
reporting_levels = ["district"]
indicators = [{ indicator = "received" }, { indicator = "resolved" }, { indicator = "on_time" }]
"#;

/// Province P and three districts of round populations.
const UNITS: &str = r#"
[[units]]
code = "P"
name = "Tỉnh P"
level = "province"
population = 70000

[[units]]
code = "A"
name = "Huyện A"
parent = "P"
level = "district"
population = 10000

[[units]]
code = "B"
name = "Huyện B"
parent = "P"
level = "district"
population = 20000

[[units]]
code = "C"
name = "Huyện C"
parent = "P"
level = "district"
population = 40000
"#;

/// The same province with a fourth district D.
const UNITS_WITH_D: &str = r#"
[[units]]
code = "P"
name = "Tỉnh P"
level = "province"
population = 100000

[[units]]
code = "A"
name = "Huyện A"
parent = "P"
level = "district"
population = 10000

[[units]]
code = "B"
name = "Huyện B"
parent = "P"
level = "district"
population = 20000

[[units]]
code = "C"
name = "Huyện C"
parent = "P"
level = "district"
population = 40000

[[units]]
code = "D"
name = "Huyện D"
parent = "P"
level = "district"
population = 30000
"#;

const TOLERANCE: f64 = 1e-9;

/// A UTC instant.
fn utc(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, h, m, s)
        .single()
        .expect("valid UTC time")
}

/// 23:59:59 Vietnam time (UTC+7) on `day`, as a UTC instant.
fn vietnam_end_of_day(day: NaiveDate) -> DateTime<Utc> {
    let vietnam = FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    vietnam
        .from_local_datetime(&day.and_hms_opt(23, 59, 59).expect("valid time"))
        .single()
        .expect("a fixed offset maps every local time once")
        .with_timezone(&Utc)
}

fn period(raw: &str) -> PeriodId {
    PeriodId::parse(raw).expect("valid period")
}

fn scope(data_set: &str, period_id: &str, node: &str) -> Scope {
    Scope {
        data_set: data_set.into(),
        period: period(period_id),
        node: node.into(),
        indicators: Vec::new(),
    }
}

fn scope_of(data_set: &str, period_id: &str, node: &str, indicators: &[&str]) -> Scope {
    Scope {
        indicators: indicators.iter().map(|i| (*i).to_string()).collect(),
        ..scope(data_set, period_id, node)
    }
}

fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: no value, expected {expected}"));
    assert!(
        (actual - expected).abs() < TOLERANCE,
        "{what}: got {actual}, expected {expected}"
    );
}

/// A unit's value (not the total) of one indicator.
fn unit_value(table: &IndicatorTable, unit: &str, indicator: &str) -> Option<f64> {
    table
        .rows
        .iter()
        .find(|r| !r.is_total && r.unit.as_str() == unit && r.indicator.as_str() == indicator)
        .unwrap_or_else(|| panic!("no row for {unit} / {indicator}"))
        .value
}

fn total_value(table: &IndicatorTable, indicator: &str) -> Option<f64> {
    table
        .total(indicator)
        .unwrap_or_else(|| panic!("no total row for {indicator}"))
        .value
}

/// One aggregator (ingest + query) over a fresh SQLite file, with a clock the test sets.
struct Pipeline {
    _dir: tempfile::TempDir,
    ingestor: Ingestor,
    query: QueryService,
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl Pipeline {
    async fn start() -> Pipeline {
        Pipeline::with_units(UNITS).await
    }

    async fn with_units(units: &str) -> Pipeline {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("analytics.db").display());
        let store = store::open(&url, &StoreOptions::default())
            .await
            .expect("SQLite store opens");
        let catalog = Arc::new(Catalog::from_toml(CATALOG).expect("test catalog is valid"));
        let units = Arc::new(UnitTree::from_toml(units).expect("test units are valid"));
        // Well after every period used below, unless a test sets it.
        let now = Arc::new(Mutex::new(utc(2020, 3, 1, 0, 0, 0)));
        let clock = now.clone();
        let ingestor = Ingestor::new(
            catalog.clone(),
            units.clone(),
            store.clone(),
            ValidationLimits::default(),
        )
        .with_clock(Arc::new(move || *clock.lock().expect("clock lock")));
        let query = QueryService::load(store, catalog, units)
            .await
            .expect("read model loads");
        Pipeline {
            _dir: dir,
            ingestor,
            query,
            now,
        }
    }

    fn set_clock(&self, t: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = t;
    }

    async fn submit(
        &self,
        submission_id: &str,
        unit: &str,
        data_set: &str,
        period_id: &str,
        values: &[(&str, f64)],
    ) -> Receipt {
        let draft = ReportDraft {
            submission_id: submission_id.into(),
            unit_code: unit.into(),
            data_set: data_set.into(),
            period: period_id.into(),
            values: values
                .iter()
                .map(|(indicator, value)| DraftValue {
                    indicator: (*indicator).into(),
                    value: *value,
                    comment: String::new(),
                })
                .collect(),
            prepared_by: "Nguyễn Văn An".into(),
            ..ReportDraft::default()
        };
        self.ingestor
            .submit(draft)
            .await
            .unwrap_or_else(|e| panic!("{submission_id} should be accepted: {e:?}"))
    }

    async fn submit_at(
        &self,
        at: DateTime<Utc>,
        submission_id: &str,
        unit: &str,
        data_set: &str,
        period_id: &str,
        values: &[(&str, f64)],
    ) -> Receipt {
        self.set_clock(at);
        self.submit(submission_id, unit, data_set, period_id, values)
            .await
    }

    async fn indicators(&self, data_set: &str, period_id: &str, node: &str) -> IndicatorTable {
        self.query
            .indicators(scope(data_set, period_id, node))
            .await
            .expect("indicators")
    }
}

// 1 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn quarter_sums_flows_takes_last_month_of_stocks_and_max_of_peaks() {
    let p = Pipeline::start().await;
    // (unit, month, received, models, crowd)
    let data = [
        ("A", 7, 10.0, 5.0, 100.0),
        ("A", 8, 20.0, 9.0, 300.0),
        ("A", 9, 30.0, 7.0, 200.0),
        ("B", 7, 1.0, 2.0, 50.0),
        ("B", 8, 2.0, 3.0, 40.0),
        ("B", 9, 3.0, 4.0, 60.0),
        ("C", 7, 100.0, 20.0, 500.0),
        ("C", 8, 200.0, 10.0, 900.0),
        ("C", 9, 300.0, 15.0, 700.0),
    ];
    for (unit, month, received, models, crowd) in data {
        let period_id = format!("2019{month:02}");
        p.submit(
            &format!("{unit}-{period_id}"),
            unit,
            "M",
            &period_id,
            &[("received", received), ("models", models), ("crowd", crowd)],
        )
        .await;
    }
    let q3 = p.indicators("M", "2019Q3", "P").await;

    // Flow: July + August + September.
    assert_close(
        unit_value(&q3, "A", "received"),
        10.0 + 20.0 + 30.0,
        "A received",
    );
    assert_close(
        unit_value(&q3, "B", "received"),
        1.0 + 2.0 + 3.0,
        "B received",
    );
    assert_close(
        unit_value(&q3, "C", "received"),
        100.0 + 200.0 + 300.0,
        "C received",
    );
    // Stock: September's value, although August's was larger for A (9) and C (20 in July).
    assert_close(unit_value(&q3, "A", "models"), 7.0, "A models = September");
    assert_close(unit_value(&q3, "B", "models"), 4.0, "B models = September");
    assert_close(unit_value(&q3, "C", "models"), 15.0, "C models = September");
    // Peak: the largest month.
    assert_close(
        unit_value(&q3, "A", "crowd"),
        300.0,
        "A crowd = max(100, 300, 200)",
    );
    assert_close(
        unit_value(&q3, "B", "crowd"),
        60.0,
        "B crowd = max(50, 40, 60)",
    );
    assert_close(
        unit_value(&q3, "C", "crowd"),
        900.0,
        "C crowd = max(500, 900, 700)",
    );

    // Province: flows and stocks summed over districts, the max of the maxima.
    assert_close(
        total_value(&q3, "received"),
        60.0 + 6.0 + 600.0,
        "Σ received",
    );
    assert_close(
        total_value(&q3, "models"),
        7.0 + 4.0 + 15.0,
        "Σ September models",
    );
    assert_close(total_value(&q3, "crowd"), 900.0, "max(300, 60, 900)");
    let total = q3.total("received").expect("total row");
    assert_eq!(
        (total.reports_received, total.reports_expected),
        (9, 3 * 3),
        "3 districts × 3 months, all in"
    );

    // August on its own does hold the larger stock for A: the quarter really took September.
    let august = p.indicators("M", "201908", "P").await;
    assert_close(
        unit_value(&august, "A", "models"),
        9.0,
        "A models in August",
    );
}

// 2 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn province_rate_is_the_ratio_of_sums_not_the_mean_of_district_rates() {
    let p = Pipeline::start().await;
    // A is small and fast, C is big and slow.
    p.submit(
        "A-201909",
        "A",
        "M",
        "201909",
        &[("resolved", 10.0), ("on_time", 9.0)],
    )
    .await;
    p.submit(
        "B-201909",
        "B",
        "M",
        "201909",
        &[("resolved", 100.0), ("on_time", 80.0)],
    )
    .await;
    p.submit(
        "C-201909",
        "C",
        "M",
        "201909",
        &[("resolved", 1000.0), ("on_time", 500.0)],
    )
    .await;
    let t = p.indicators("M", "201909", "P").await;

    let rate_a = 9.0 / 10.0 * 100.0; // 90 %
    let rate_b = 80.0 / 100.0 * 100.0; // 80 %
    let rate_c = 500.0 / 1000.0 * 100.0; // 50 %
    assert_close(unit_value(&t, "A", "on_time_rate"), rate_a, "A rate");
    assert_close(unit_value(&t, "B", "on_time_rate"), rate_b, "B rate");
    assert_close(unit_value(&t, "C", "on_time_rate"), rate_c, "C rate");

    // Σ on time ÷ Σ resolved × 100 = 589 ÷ 1110 × 100 ≈ 53.06 %.
    let ratio_of_sums = (9.0 + 80.0 + 500.0) / (10.0 + 100.0 + 1000.0) * 100.0;
    // The mean of the district rates would be (90 + 80 + 50) ÷ 3 ≈ 73.33 %.
    let mean_of_ratios = (rate_a + rate_b + rate_c) / 3.0;
    let province = total_value(&t, "on_time_rate");
    assert_close(province, ratio_of_sums, "province rate = ratio of sums");
    assert!(
        (ratio_of_sums - mean_of_ratios).abs() > 1.0,
        "the two definitions differ here: {ratio_of_sums} vs {mean_of_ratios}"
    );
    let province = province.expect("province rate");
    assert!(
        (province - mean_of_ratios).abs() > 1.0,
        "the province rate {province} must not be the mean of district rates {mean_of_ratios}"
    );
    let row = t.total("on_time_rate").expect("total row");
    assert!(row.derived && row.is_total && row.reason.is_none());
}

// 3 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_correction_replaces_the_earlier_revision_and_the_total_follows() {
    let p = Pipeline::start().await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 10.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 20.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 40.0)])
        .await;
    let before = p.indicators("M", "201909", "P").await;
    assert_close(unit_value(&before, "A", "received"), 10.0, "A before");
    assert_close(
        total_value(&before, "received"),
        10.0 + 20.0 + 40.0,
        "total before",
    );

    // A corrects its report: a new submission id for the same unit, data set and period.
    let correction = p
        .submit("A-201909-r2", "A", "M", "201909", &[("received", 15.0)])
        .await;
    assert_eq!(correction.revision, 2);
    assert_eq!(correction.status, ReceiptStatus::Revision);

    let applied = p.query.refresh().await.expect("refresh");
    assert_eq!(applied.reports_replaced, 1, "{applied:?}");
    assert_eq!(applied.reports_added, 0, "not a reload: {applied:?}");
    assert_eq!(applied.stale_revisions_ignored, 0, "{applied:?}");
    assert_eq!(applied.values, 1, "the correction's one value: {applied:?}");

    let after = p.indicators("M", "201909", "P").await;
    assert_close(unit_value(&after, "A", "received"), 15.0, "A corrected");
    assert_close(unit_value(&after, "B", "received"), 20.0, "B untouched");
    assert_close(
        total_value(&after, "received"),
        15.0 + 20.0 + 40.0,
        "total after",
    );
    let a = after.value("A", "received").expect("A row");
    assert_eq!(a.reports_received, 1, "a revision is still one report");
    let total = after.total("received").expect("total row");
    assert_eq!((total.reports_received, total.reports_expected), (3, 3));
}

// 4 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_district_that_never_reports_is_missing_and_left_out_of_the_total() {
    let p = Pipeline::start().await;
    // A and B report July to September; C never does.
    for month in 7..=9 {
        let period_id = format!("2019{month:02}");
        let m = f64::from(month);
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[("received", m), ("resolved", 10.0), ("on_time", 8.0)],
        )
        .await;
        p.submit(
            &format!("B-{period_id}"),
            "B",
            "M",
            &period_id,
            &[
                ("received", 10.0 * m),
                ("resolved", 20.0),
                ("on_time", 20.0),
            ],
        )
        .await;
    }
    let t = p.indicators("M", "2019Q3", "P").await;

    for indicator in [
        "received",
        "resolved",
        "on_time",
        "models",
        "crowd",
        "on_time_rate",
    ] {
        let row = t
            .rows
            .iter()
            .find(|r| !r.is_total && r.unit.as_str() == "C" && r.indicator.as_str() == indicator)
            .expect("C has a row for every indicator");
        assert_eq!(row.value, None, "C {indicator}");
        assert_eq!(
            row.reason.as_deref(),
            Some("no report received"),
            "C {indicator}"
        );
        assert_eq!((row.reports_received, row.reports_expected), (0, 3));
    }
    // Total = A + B only: received (7 + 8 + 9) + 10 × (7 + 8 + 9) = 24 + 240.
    assert_close(
        total_value(&t, "received"),
        24.0 + 240.0,
        "Σ received of A and B",
    );
    // Rate over what was received: (3 × 8 + 3 × 20) ÷ (3 × 10 + 3 × 20) × 100.
    assert_close(
        total_value(&t, "on_time_rate"),
        (3.0 * 8.0 + 3.0 * 20.0) / (3.0 * 10.0 + 3.0 * 20.0) * 100.0,
        "rate of A and B",
    );
    let total = t.total("received").expect("total row");
    // 2 districts × 3 months received out of 3 districts × 3 months expected.
    assert_eq!(
        (total.reports_received, total.reports_expected),
        (2 * 3, 3 * 3)
    );
    assert!(total.reports_received < total.reports_expected);
    let a = t.value("A", "received").expect("A row");
    assert_eq!((a.reports_received, a.reports_expected), (3, 3));
}

/// Extra: a district asked about as the node is counted alone; its neighbours' reports are no
/// part of its "reports received".
#[tokio::test]
async fn a_district_node_counts_only_its_own_reports() {
    let p = Pipeline::start().await;
    for unit in ["A", "B", "C"] {
        p.submit(
            &format!("{unit}-201909"),
            unit,
            "M",
            "201909",
            &[("received", 1.0)],
        )
        .await;
    }
    let t = p.indicators("M", "201909", "A").await;
    let total = t.total("received").expect("total row");
    assert_close(total.value, 1.0, "A's own value");
    // One unit (A) × one month: 1 received of 1 expected; B's and C's reports are not A's.
    assert_eq!((total.reports_received, total.reports_expected), (1, 1));
}

// 5 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_zero_denominator_gives_no_rate_with_a_reason_never_nan() {
    let p = Pipeline::start().await;
    p.submit(
        "A-201909",
        "A",
        "M",
        "201909",
        &[("received", 5.0), ("resolved", 0.0), ("on_time", 0.0)],
    )
    .await;
    p.submit(
        "B-201909",
        "B",
        "M",
        "201909",
        &[("received", 7.0), ("resolved", 10.0), ("on_time", 8.0)],
    )
    .await;
    let t = p.indicators("M", "201909", "P").await;
    let a = t.value("A", "on_time_rate").expect("A rate row");
    assert_eq!(a.value, None, "0 ÷ 0 has no value");
    let reason = a.reason.as_deref().expect("a reason is given");
    assert!(
        reason.contains("denominator") && reason.contains("resolved"),
        "{reason}"
    );
    // The province is fine: (0 + 8) ÷ (0 + 10) × 100.
    assert_close(
        total_value(&t, "on_time_rate"),
        (0.0 + 8.0) / (0.0 + 10.0) * 100.0,
        "P",
    );

    // With A alone as the node, the total has the zero denominator too.
    let only_a = p.indicators("M", "201909", "A").await;
    let total = only_a.total("on_time_rate").expect("A total");
    assert_eq!(total.value, None);
    let reason = total.reason.as_deref().expect("a reason is given");
    assert!(reason.contains("denominator"), "{reason}");

    for row in t.rows.iter().chain(&only_a.rows) {
        if let Some(v) = row.value {
            assert!(v.is_finite(), "{} {}: {v}", row.unit, row.indicator);
        }
    }
}

// 6 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn tied_districts_share_the_best_rank_and_a_silent_one_is_last() {
    let p = Pipeline::with_units(UNITS_WITH_D).await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 50.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 50.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 30.0)])
        .await;
    // D sends nothing.
    let table = p
        .query
        .ranking(scope_of("M", "201909", "P", &["received"]), false)
        .await
        .expect("ranking");
    assert_eq!(table.indicators.len(), 1);
    let received = &table.indicators[0];
    assert_eq!(received.indicator.as_str(), "received");
    assert!(!received.per_capita, "raw totals were asked for");
    let entries: Vec<(&str, Option<f64>, u32, bool)> = received
        .entries
        .iter()
        .map(|e| (e.unit.as_str(), e.value, e.rank, e.missing))
        .collect();
    assert_eq!(
        entries,
        [
            ("A", Some(50.0), 1, false),
            ("B", Some(50.0), 1, false),
            // Two units ahead of C: rank 3, not 2.
            ("C", Some(30.0), 3, false),
            // After the 3 units with a value.
            ("D", None, 4, true),
        ]
    );
    // Composite on `received` alone: A and B (100 each) tie at the top.
    let a = table.composite.iter().find(|c| c.unit.as_str() == "A");
    let b = table.composite.iter().find(|c| c.unit.as_str() == "B");
    let (a, b) = (a.expect("A ranked"), b.expect("B ranked"));
    assert_eq!((a.rank, b.rank), (1, 1));
    assert_close(Some(a.score), 100.0, "A's composite");
    assert_close(Some(b.score), 100.0, "B's composite");
}

// 7 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn per_capita_ranking_divides_by_population_and_reverses_the_raw_order() {
    let p = Pipeline::start().await;
    // Populations: A 10,000, B 20,000, C 40,000.
    p.submit("A-201909", "A", "M", "201909", &[("received", 30.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 40.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 60.0)])
        .await;
    let order = |table: &tonghop::analytics::RankingTable| -> Vec<(String, Option<f64>, u32)> {
        table
            .indicators
            .iter()
            .find(|i| i.indicator.as_str() == "received")
            .expect("received is ranked")
            .entries
            .iter()
            .map(|e| (e.unit.to_string(), e.value, e.rank))
            .collect()
    };

    let raw = p
        .query
        .ranking(scope("M", "201909", "P"), false)
        .await
        .expect("raw ranking");
    // Raw totals: C 60 > B 40 > A 30.
    assert_eq!(
        order(&raw),
        [
            ("C".to_string(), Some(60.0), 1),
            ("B".to_string(), Some(40.0), 2),
            ("A".to_string(), Some(30.0), 3),
        ]
    );

    let per_capita = p
        .query
        .ranking(scope("M", "201909", "P"), true)
        .await
        .expect("per-capita ranking");
    let received = per_capita
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "received")
        .expect("received");
    assert!(received.per_capita);
    let a = 30.0 / 10_000.0 * 10_000.0; // 30 per 10,000
    let b = 40.0 / 20_000.0 * 10_000.0; // 20 per 10,000
    let c = 60.0 / 40_000.0 * 10_000.0; // 15 per 10,000
    let got = order(&per_capita);
    let units: Vec<(&str, u32)> = got.iter().map(|(u, _, r)| (u.as_str(), *r)).collect();
    assert_eq!(
        units,
        [("A", 1), ("B", 2), ("C", 3)],
        "the order is reversed"
    );
    assert_close(got[0].1, a, "A per 10,000");
    assert_close(got[1].1, b, "B per 10,000");
    assert_close(got[2].1, c, "C per 10,000");
    // The on-time rate is not a per-capita indicator, whatever the request says.
    let rate = per_capita
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "on_time_rate")
        .expect("rate is ranked");
    assert!(!rate.per_capita);
}

// 8 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn composite_score_is_the_weighted_mean_of_normalised_scores_with_rank_change() {
    let p = Pipeline::start().await;
    // (unit, period, received, resolved, on time); populations A 10,000, B 20,000, C 40,000.
    let data = [
        ("A", "201908", 20.0, 10.0, 10.0),
        ("B", "201908", 60.0, 20.0, 15.0),
        ("C", "201908", 40.0, 40.0, 20.0),
        ("A", "201909", 10.0, 10.0, 5.0),
        ("B", "201909", 40.0, 20.0, 18.0),
        ("C", "201909", 160.0, 40.0, 30.0),
    ];
    for (unit, period_id, received, resolved, on_time) in data {
        p.submit(
            &format!("{unit}-{period_id}"),
            unit,
            "M",
            period_id,
            &[
                ("received", received),
                ("resolved", resolved),
                ("on_time", on_time),
            ],
        )
        .await;
    }
    // Weights: received 1 (per 10,000 inhabitants), on-time rate 2; total weight 3.
    // Normalised score: (v − min) ÷ (max − min) × 100 (both higher-is-better).
    let norm = |v: f64, min: f64, max: f64| (v - min) / (max - min) * 100.0;
    let composite =
        |received_score: f64, rate_score: f64| (1.0 * received_score + 2.0 * rate_score) / 3.0;

    // August. received per 10,000: A 20 ÷ 10,000 × 10,000 = 20, B 60 ÷ 20,000 × 10,000 = 30,
    // C 40 ÷ 40,000 × 10,000 = 10. Rates: A 10/10 = 100 %, B 15/20 = 75 %, C 20/40 = 50 %.
    let aug_a = composite(norm(20.0, 10.0, 30.0), norm(100.0, 50.0, 100.0)); // (50 + 200) ÷ 3
    let aug_b = composite(norm(30.0, 10.0, 30.0), norm(75.0, 50.0, 100.0)); // (100 + 100) ÷ 3
    let aug_c = composite(norm(10.0, 10.0, 30.0), norm(50.0, 50.0, 100.0)); // 0
    // August ranks: A 83.3 → 1, B 66.7 → 2, C 0 → 3.
    let august = p
        .query
        .ranking(scope("M", "201908", "P"), true)
        .await
        .expect("August ranking");
    let aug: Vec<(&str, u32, Option<i32>)> = august
        .composite
        .iter()
        .map(|c| (c.unit.as_str(), c.rank, c.rank_change))
        .collect();
    assert_eq!(
        aug,
        [("A", 1, None), ("B", 2, None), ("C", 3, None)],
        "no July data: no rank change"
    );
    for (c, expected) in august.composite.iter().zip([aug_a, aug_b, aug_c]) {
        assert_close(Some(c.score), expected, &format!("August {}", c.unit));
    }

    // September. received per 10,000: A 10, B 40 ÷ 20,000 × 10,000 = 20,
    // C 160 ÷ 40,000 × 10,000 = 40. Rates: A 5/10 = 50 %, B 18/20 = 90 %, C 30/40 = 75 %.
    let sep_a = composite(norm(10.0, 10.0, 40.0), norm(50.0, 50.0, 90.0)); // 0
    let sep_b = composite(norm(20.0, 10.0, 40.0), norm(90.0, 50.0, 90.0)); // (33.3 + 200) ÷ 3
    let sep_c = composite(norm(40.0, 10.0, 40.0), norm(75.0, 50.0, 90.0)); // (100 + 125) ÷ 3
    assert!(sep_b > sep_c && sep_c > sep_a, "B 77.8 > C 75 > A 0");
    let september = p
        .query
        .ranking(scope("M", "201909", "P"), true)
        .await
        .expect("September ranking");
    assert_eq!(september.previous_period, "201908");
    let sep: Vec<(&str, u32, Option<u32>, Option<i32>)> = september
        .composite
        .iter()
        .map(|c| (c.unit.as_str(), c.rank, c.previous_rank, c.rank_change))
        .collect();
    // rank_change = previous rank − current rank: B 2 − 1 = +1, C 3 − 2 = +1, A 1 − 3 = −2.
    assert_eq!(
        sep,
        [
            ("B", 1, Some(2), Some(2 - 1)),
            ("C", 2, Some(3), Some(3 - 2)),
            ("A", 3, Some(1), Some(1 - 3)),
        ]
    );
    for (c, expected) in september.composite.iter().zip([sep_b, sep_c, sep_a]) {
        assert_close(Some(c.score), expected, &format!("September {}", c.unit));
    }
    // The per-indicator ranks behind it.
    let rate = september
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "on_time_rate")
        .expect("rate ranked");
    assert_eq!(rate.weight, 2.0);
    let rate_order: Vec<(&str, u32)> = rate
        .entries
        .iter()
        .map(|e| (e.unit.as_str(), e.rank))
        .collect();
    assert_eq!(rate_order, [("B", 1), ("C", 2), ("A", 3)]);
}

// 9 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn completeness_counts_missing_and_late_reports_and_late_corrections_apart() {
    let p = Pipeline::start().await;
    let values = [("received", 1.0)];
    // On time: each month's report on the 2nd of the next month, 09:00 in Vietnam (02:00 UTC).
    for (unit, month) in [
        ("A", 7),
        ("A", 8),
        ("A", 9),
        ("B", 7),
        ("B", 8),
        ("C", 7),
        ("C", 8),
    ] {
        let period_id = format!("2019{month:02}");
        let receipt = p
            .submit_at(
                utc(2019, month + 1, 2, 2, 0, 0),
                &format!("{unit}-{period_id}"),
                unit,
                "M",
                &period_id,
                &values,
            )
            .await;
        assert!(receipt.on_time, "{unit} {period_id}");
    }
    // September's deadline: 30 Sep + 5 grace days = 5 Oct 2019, 23:59:59 UTC+7 = 16:59:59 UTC.
    let september_deadline = vietnam_end_of_day(date(2019, 9, 30) + Days::new(5));
    assert_eq!(september_deadline, utc(2019, 10, 5, 16, 59, 59));
    // B's September report arrives on 8 Oct, 10:00 in Vietnam: late.
    let b_sent = utc(2019, 10, 8, 3, 0, 0);
    let late = p
        .submit_at(b_sent, "B-201909", "B", "M", "201909", &values)
        .await;
    assert!(!late.on_time);
    assert_eq!(late.deadline, september_deadline);
    // C never sends September.
    // A corrects July on 20 Aug, after July's deadline (31 Jul + 5 = 5 Aug, 23:59:59 UTC+7).
    let july_deadline = vietnam_end_of_day(date(2019, 7, 31) + Days::new(5));
    let correction_sent = utc(2019, 8, 20, 2, 0, 0);
    assert!(correction_sent > july_deadline);
    let correction = p
        .submit_at(
            correction_sent,
            "A-201907-r2",
            "A",
            "M",
            "201907",
            &[("received", 2.0)],
        )
        .await;
    assert_eq!(correction.revision, 2);
    assert!(!correction.on_time, "the correction itself came late");

    let c = p
        .query
        .completeness(scope("M", "2019Q3", "P"))
        .await
        .expect("completeness");
    assert_eq!(c.periods, ["201907", "201908", "201909"]);
    // 3 districts × 3 months expected; 3 + 3 + 2 received; B's September late.
    let expected = 3 * 3;
    let received = 3 + 3 + 2;
    let late_count = 1;
    let on_time = received - late_count;
    assert_eq!(c.total.expected, expected);
    assert_eq!(c.total.received, received);
    assert_eq!(c.total.on_time, on_time);
    assert_eq!(c.total.late, late_count);
    assert_eq!(
        c.total.corrected_after_deadline, 1,
        "A's July correction is counted apart"
    );
    assert_close(
        c.total.completeness(),
        f64::from(received) / f64::from(expected) * 100.0,
        "completeness 8 ÷ 9",
    );
    assert_close(
        c.total.timeliness(),
        f64::from(on_time) / f64::from(expected) * 100.0,
        "timeliness 7 ÷ 9",
    );

    let counts = |unit: &str| {
        let u = c
            .units
            .iter()
            .find(|u| u.unit.as_str() == unit)
            .expect("unit row");
        let k = &u.counts;
        (
            k.expected,
            k.received,
            k.on_time,
            k.late,
            k.corrected_after_deadline,
        )
    };
    // (expected, received, on time, late, corrected after deadline)
    assert_eq!(
        counts("A"),
        (3, 3, 3, 0, 1),
        "A's late correction keeps July on time"
    );
    assert_eq!(counts("B"), (3, 3, 2, 1, 0));
    assert_eq!(counts("C"), (3, 2, 2, 0, 0));

    let missing: Vec<(&str, &str)> = c
        .missing
        .iter()
        .map(|(u, per)| (u.as_str(), per.as_str()))
        .collect();
    assert_eq!(missing, [("C", "201909")]);
    assert_eq!(c.late.len(), 1);
    let l = &c.late[0];
    assert_eq!((l.unit.as_str(), l.period.as_str()), ("B", "201909"));
    assert_eq!(l.received_at, b_sent);
    assert_eq!(l.deadline, september_deadline);
    // 5 Oct 16:59:59 UTC → 8 Oct 03:00:00 UTC = 2 days 10 h 0 min 1 s, rounded up to 3 days.
    let late_by = 2 * 86_400 + 10 * 3_600 + 1;
    assert_eq!((b_sent - september_deadline).num_seconds(), late_by);
    let days_late = (late_by + 86_400 - 1) / 86_400;
    assert_eq!(days_late, 3);
    assert_eq!(l.days_late, days_late);
    assert_close(
        c.units
            .iter()
            .find(|u| u.unit.as_str() == "B")
            .and_then(|u| u.counts.timeliness()),
        2.0 / 3.0 * 100.0,
        "B's timeliness",
    );
}

// 10 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn decree09_and_calendar_months_give_different_windows_deadlines_and_lateness() {
    let p = Pipeline::start().await;
    let values = [("received", 12.0), ("resolved", 10.0), ("on_time", 9.0)];
    // Sent on 25 Sep 2019, 10:00 in Vietnam (03:00 UTC).
    let sent = utc(2019, 9, 25, 3, 0, 0);
    let months = p
        .submit_at(sent, "A-M-201909", "A", "M", "201909", &values)
        .await;
    let decree = p
        .submit_at(sent, "A-D9-201909", "A", "D9", "201909", &values)
        .await;

    // Windows: calendar September 1–30 Sep; Decree 09 September 15 Aug–14 Sep.
    assert_eq!(
        months.window,
        DateWindow {
            start: date(2019, 9, 1),
            end: date(2019, 9, 30),
        }
    );
    assert_eq!(
        decree.window,
        DateWindow {
            start: date(2019, 8, 15),
            end: date(2019, 9, 14),
        }
    );
    // Deadlines: window end + 5 grace days, 23:59:59 UTC+7 (= 16:59:59 UTC).
    let months_deadline = vietnam_end_of_day(date(2019, 9, 30) + Days::new(5)); // 5 Oct
    let decree_deadline = vietnam_end_of_day(date(2019, 9, 14) + Days::new(5)); // 19 Sep
    assert_eq!(months_deadline, utc(2019, 10, 5, 16, 59, 59));
    assert_eq!(decree_deadline, utc(2019, 9, 19, 16, 59, 59));
    assert_eq!(months.deadline, months_deadline);
    assert_eq!(decree.deadline, decree_deadline);
    // 25 Sep is before 5 Oct but after 19 Sep.
    assert!(months.on_time, "on time under calendar months");
    assert!(!decree.on_time, "late under Decree 09");

    // At the deadline second is on time; one second later is late.
    let at_deadline = p
        .submit_at(decree_deadline, "B-D9-201909", "B", "D9", "201909", &values)
        .await;
    assert!(at_deadline.on_time);
    let just_after = p
        .submit_at(
            decree_deadline + chrono::Duration::seconds(1),
            "C-D9-201909",
            "C",
            "D9",
            "201909",
            &values,
        )
        .await;
    assert!(!just_after.on_time);

    // Completeness classifies A accordingly in each data set.
    let m = p
        .query
        .completeness(scope("M", "201909", "P"))
        .await
        .expect("M completeness");
    let a_m = m.units.iter().find(|u| u.unit.as_str() == "A").expect("A");
    assert_eq!((a_m.counts.on_time, a_m.counts.late), (1, 0));
    assert!(m.late.is_empty());
    let d9 = p
        .query
        .completeness(scope("D9", "201909", "P"))
        .await
        .expect("D9 completeness");
    let late: Vec<(&str, i64)> = d9
        .late
        .iter()
        .map(|l| (l.unit.as_str(), l.days_late))
        .collect();
    // A: 19 Sep 16:59:59 UTC → 25 Sep 03:00:00 UTC = 5 days 10 h 0 min 1 s → 6 days.
    // C: 1 second → 1 day.
    let a_late_by = 5 * 86_400 + 10 * 3_600 + 1;
    assert_eq!((sent - decree_deadline).num_seconds(), a_late_by);
    assert_eq!(late, [("A", (a_late_by + 86_399) / 86_400), ("C", 1)]);
    assert_eq!(
        (d9.total.on_time, d9.total.late),
        (1, 2),
        "B on time, A and C late"
    );

    // The figures themselves are the same in both data sets.
    let tm = p.indicators("M", "201909", "A").await;
    let td = p.indicators("D9", "201909", "A").await;
    assert_close(
        unit_value(&tm, "A", "on_time_rate"),
        9.0 / 10.0 * 100.0,
        "M rate",
    );
    assert_close(
        unit_value(&td, "A", "on_time_rate"),
        9.0 / 10.0 * 100.0,
        "D9 rate",
    );
}

// 11 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn trend_compares_with_the_previous_period_and_the_same_period_a_year_before() {
    let p = Pipeline::start().await;
    p.submit("A-201809", "A", "M", "201809", &[("received", 40.0)])
        .await;
    p.submit("A-201908", "A", "M", "201908", &[("received", 50.0)])
        .await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 60.0)])
        .await;
    p.submit("B-201908", "B", "M", "201908", &[("received", 0.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 5.0)])
        .await;
    // C sends nothing.
    let t = p
        .query
        .trend(scope_of("M", "201909", "P", &["received"]))
        .await
        .expect("trend");
    assert_eq!(
        (t.previous_period.as_str(), t.year_before_period.as_str()),
        ("201908", "201809")
    );
    let row = |unit: &str, is_total: bool| {
        t.rows
            .iter()
            .find(|r| r.unit.as_str() == unit && r.is_total == is_total)
            .unwrap_or_else(|| panic!("row for {unit}"))
    };

    // A: 60 vs 50 last month (+10, +10 ÷ 50 × 100 = +20 %), vs 40 a year before (+20, +50 %).
    let a = row("A", false);
    assert_close(a.value, 60.0, "A now");
    assert_close(a.previous, 50.0, "A previous");
    assert_close(a.change, 60.0 - 50.0, "A change");
    assert_close(a.change_pct, (60.0 - 50.0) / 50.0 * 100.0, "A change %");
    assert_close(a.year_before, 40.0, "A year before");
    assert_close(a.change_yoy, 60.0 - 40.0, "A change yoy");
    assert_close(
        a.change_yoy_pct,
        (60.0 - 40.0) / 40.0 * 100.0,
        "A change yoy %",
    );

    // B: 5 vs 0: a change of 5 but no percentage of a zero base; nothing a year before.
    let b = row("B", false);
    assert_close(b.change, 5.0 - 0.0, "B change");
    assert_eq!(b.previous, Some(0.0));
    assert_eq!(b.change_pct, None, "base 0: no percentage");
    assert_eq!(
        (b.year_before, b.change_yoy, b.change_yoy_pct),
        (None, None, None)
    );

    // C: nothing at all.
    let c = row("C", false);
    assert_eq!(
        (c.value, c.previous, c.change, c.change_pct),
        (None, None, None, None)
    );

    // Province: 60 + 5 = 65 vs 50 + 0 = 50 (+15, +30 %), vs 40 (+25, +62.5 %).
    let total = row("P", true);
    assert_close(total.value, 60.0 + 5.0, "P now");
    assert_close(total.previous, 50.0 + 0.0, "P previous");
    assert_close(total.change, 65.0 - 50.0, "P change");
    assert_close(total.change_pct, (65.0 - 50.0) / 50.0 * 100.0, "P change %");
    assert_close(total.year_before, 40.0, "P year before");
    assert_close(total.change_yoy, 65.0 - 40.0, "P change yoy");
    assert_close(
        total.change_yoy_pct,
        (65.0 - 40.0) / 40.0 * 100.0,
        "P change yoy %",
    );
}

// 12 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_report_acknowledged_after_load_is_in_the_very_next_answer() {
    let p = Pipeline::start().await;
    // The read model was loaded from an empty store.
    let before = p.indicators("M", "201909", "P").await;
    assert_eq!(total_value(&before, "received"), None);

    let receipt = p
        .submit("A-201909", "A", "M", "201909", &[("received", 7.0)])
        .await;
    assert_eq!(receipt.status, ReceiptStatus::New);
    // No sleep, no refresh call.
    let after = p.indicators("M", "201909", "P").await;
    assert_close(total_value(&after, "received"), 7.0, "A's report is in");

    p.submit("B-201909", "B", "M", "201909", &[("received", 3.0)])
        .await;
    p.submit("A-201909-r2", "A", "M", "201909", &[("received", 8.0)])
        .await;
    let again = p.indicators("M", "201909", "P").await;
    assert_close(
        total_value(&again, "received"),
        8.0 + 3.0,
        "B's report and A's correction",
    );
}

// 13 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn series_totals_equal_the_indicator_totals_of_each_period() {
    let p = Pipeline::start().await;
    // 2019, month m: A received m, models 100 − m, crowd m², resolved 12, on time m;
    //                B received 10m, models m, crowd 50, resolved 10, on time 10.
    for month in 1..=12u32 {
        let period_id = format!("2019{month:02}");
        let m = f64::from(month);
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[
                ("received", m),
                ("models", 100.0 - m),
                ("crowd", m * m),
                ("resolved", 12.0),
                ("on_time", m),
            ],
        )
        .await;
        p.submit(
            &format!("B-{period_id}"),
            "B",
            "M",
            &period_id,
            &[
                ("received", 10.0 * m),
                ("models", m),
                ("crowd", 50.0),
                ("resolved", 10.0),
                ("on_time", 10.0),
            ],
        )
        .await;
    }
    // 2018, January to June: only A, received 5, models 50, crowd 10, resolved 12, on time 6.
    for month in 1..=6u32 {
        let period_id = format!("2018{month:02}");
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[
                ("received", 5.0),
                ("models", 50.0),
                ("crowd", 10.0),
                ("resolved", 12.0),
                ("on_time", 6.0),
            ],
        )
        .await;
    }

    // Every period of each series has the totals `indicators` gives for that period alone.
    let months_2019: Vec<String> = (1..=12).map(|m| format!("2019{m:02}")).collect();
    let as_strings = |ids: &[&str]| ids.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    for (first, through, expected_periods) in [
        ("2018", "2019", as_strings(&["2018", "2019"])),
        (
            "2019Q1",
            "2019Q4",
            as_strings(&["2019Q1", "2019Q2", "2019Q3", "2019Q4"]),
        ),
        ("201901", "201912", months_2019),
    ] {
        let series = p
            .query
            .series(scope("M", first, "P"), period(through))
            .await
            .expect("series");
        assert_eq!(series.periods, expected_periods);
        for (i, per) in series.periods.iter().enumerate() {
            let table = p.indicators("M", per, "P").await;
            for (j, indicator) in series.indicators.iter().enumerate() {
                let from_series = series.values[i][j];
                let from_table = total_value(&table, indicator.as_str());
                match (from_series, from_table) {
                    (Some(s), Some(t)) => {
                        assert!((s - t).abs() < TOLERANCE, "{per} {indicator}: {s} vs {t}")
                    }
                    (s, t) => assert_eq!(s, t, "{per} {indicator}"),
                }
            }
        }
    }

    // And by hand, on the yearly series.
    let yearly = p
        .query
        .series(scope("M", "2018", "P"), period("2019"))
        .await
        .expect("yearly series");
    let col = |code: &str| {
        yearly
            .indicators
            .iter()
            .position(|i| i.as_str() == code)
            .unwrap_or_else(|| panic!("{code} column"))
    };
    let sum_m: f64 = (1..=12).map(f64::from).sum(); // 78
    // 2018: received 6 × 5; models 50 (June); crowd 10; rate 6 × 6 ÷ (6 × 12) × 100.
    assert_close(
        yearly.values[0][col("received")],
        6.0 * 5.0,
        "2018 received",
    );
    assert_close(yearly.values[0][col("models")], 50.0, "2018 models");
    assert_close(yearly.values[0][col("crowd")], 10.0, "2018 crowd");
    assert_close(
        yearly.values[0][col("on_time_rate")],
        (6.0 * 6.0) / (6.0 * 12.0) * 100.0,
        "2018 rate",
    );
    // 2019: received Σ(m + 10m) = 11 × 78; models A's December (100 − 12) + B's (12);
    // crowd max(12², 50); rate (Σm + 12 × 10) ÷ (12 × 12 + 12 × 10) × 100.
    assert_close(
        yearly.values[1][col("received")],
        11.0 * sum_m,
        "2019 received",
    );
    assert_close(
        yearly.values[1][col("models")],
        (100.0 - 12.0) + 12.0,
        "2019 models",
    );
    assert_close(yearly.values[1][col("crowd")], 144.0, "2019 crowd");
    assert_close(
        yearly.values[1][col("on_time_rate")],
        (sum_m + 12.0 * 10.0) / (12.0 * 12.0 + 12.0 * 10.0) * 100.0,
        "2019 rate",
    );
    // Third quarter of 2019: received 11 × (7 + 8 + 9).
    let quarterly = p
        .query
        .series(
            scope_of("M", "2019Q1", "P", &["received"]),
            period("2019Q4"),
        )
        .await
        .expect("quarterly series");
    assert_close(
        quarterly.values[2][0],
        11.0 * (7.0 + 8.0 + 9.0),
        "2019Q3 received",
    );
}

// 14 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_period_not_made_of_whole_data_set_periods_is_refused_naming_the_data_set() {
    let p = Pipeline::start().await;
    p.submit(
        "A-2019S1",
        "A",
        "H",
        "2019S1",
        &[("received", 100.0), ("resolved", 10.0), ("on_time", 5.0)],
    )
    .await;
    p.submit(
        "A-2018",
        "A",
        "Y",
        "2018",
        &[("received", 300.0), ("resolved", 10.0), ("on_time", 5.0)],
    )
    .await;

    for (data_set, period_type) in [("H", PeriodType::SixMonthly), ("Y", PeriodType::Yearly)] {
        let err = p
            .query
            .indicators(scope(data_set, "2019Q3", "P"))
            .await
            .expect_err("a quarter is not made of whole periods of this data set");
        match &err {
            QueryError::Invalid(AnalyticsError::PeriodNotAligned {
                period: got_period,
                data_set: got_data_set,
                period_type: got_type,
            }) => {
                assert_eq!(got_period, "2019Q3");
                assert_eq!(got_data_set, data_set);
                assert_eq!(*got_type, period_type);
            }
            other => panic!("expected PeriodNotAligned, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("data set {data_set}")),
            "{message}"
        );
        // The other analytics refuse it the same way.
        let ranking = p.query.ranking(scope(data_set, "2019Q3", "P"), false).await;
        assert!(
            matches!(
                ranking,
                Err(QueryError::Invalid(AnalyticsError::PeriodNotAligned { .. }))
            ),
            "{ranking:?}"
        );
        let completeness = p.query.completeness(scope(data_set, "2019Q3", "P")).await;
        assert!(
            matches!(
                completeness,
                Err(QueryError::Invalid(AnalyticsError::PeriodNotAligned { .. }))
            ),
            "{completeness:?}"
        );
    }
    // Nine months are not a half year either.
    let err = p
        .query
        .indicators(scope("H", "2019N9", "P"))
        .await
        .expect_err("2019N9 against six-monthly");
    assert!(err.to_string().contains("data set H"), "{err}");

    // A whole period of the data set is fine.
    let h = p.indicators("H", "2019S1", "P").await;
    assert_close(unit_value(&h, "A", "received"), 100.0, "A 2019S1");
    let y = p.indicators("Y", "2018", "P").await;
    assert_close(unit_value(&y, "A", "received"), 300.0, "A 2018");
}
