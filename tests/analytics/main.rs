//! The arithmetic of every analytic, through the real pipeline: a SQLite file in a temporary
//! directory, reports submitted through `Ingestor::submit` with a fixed clock, answers read
//! through `QueryService`. The catalog and the unit tree are small ones written below, so that
//! every expected number can be worked out by hand (and is, in the test, next to its assertion).
//! This file holds that catalog, the unit trees and the pipeline; the tests are in the modules
//! below, one per kind of analytic.

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

mod completeness;
mod over_time;
mod ranking;
mod rollup;

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
