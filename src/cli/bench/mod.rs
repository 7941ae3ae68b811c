//! `tonghop bench`: reproducible benchmarks that print their figures and a ratio against a
//! baseline measured in the same run, so the analytics' speed claims can be checked on any
//! machine with one command (see docs/BENCHMARKS.md).
//!
//! `bench analytics` generates a synthetic catalog, unit tree and reports (seeded, so every
//! run sees the same numbers), bulk-loads them into SQLite and PostgreSQL, loads the read
//! model, and times: (a) a province's indicators and composite ranking for a year, (b) a
//! national ten-year rollup, (c) the same answers in SQL on the same store, checked number by
//! number against the polars ones, and (d) how soon a report sent through the real ingest
//! path shows up in an answer.

use super::table::{Table, number};
use super::{AnalyticsBenchArgs, BenchArgs, BenchKind};
use crate::analytics::{IndicatorTable, RankingTable, Scope, SeriesTable};
use crate::domain::catalog::Direction;
use crate::domain::period::deadline;
use crate::domain::{
    Calendar, Catalog, DraftValue, Narrative, PeriodId, ReportDraft, ReportingUnit, UnitCode,
    UnitTree, ValidationLimits,
};
use crate::ingest::Ingestor;
use crate::query::QueryService;
use crate::store::bench::{
    BaselineDerived, BaselineRanked, BaselineSpec, BulkLoad, BulkLoaded, BulkReport, ProvinceRow,
    ProvinceRowKind, SeriesRow, TempPgDatabase, bulk_load,
};
use crate::store::{self, Store, StoreOptions};
use anyhow::{Context, anyhow, bail};
use chrono::{Duration as Days, NaiveTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        BenchKind::Analytics(args) => analytics(args).await,
        BenchKind::Ingest(args) => super::bench_ingest::run(args).await,
    }
}

const DATA_SET: &str = "BENCH_THANG";
/// The province scenario's data ends with this year, which is the year queried.
const PROVINCE_YEAR: i32 = 2025;
/// The national scenario's data ends with this year.
const NATIONAL_LAST_YEAR: i32 = 2024;
/// Relative tolerance between SQL and polars numbers: the two add floats in different orders.
const TOLERANCE: f64 = 1e-6;
/// Below this, two numbers are equal whatever their ratio (0 against 1e-15 after rounding).
const ABSOLUTE_FLOOR: f64 = 1e-9;
/// The indicator the freshness trials change.
const FRESH_INDICATOR: &str = "tiep_cong_dan";
/// How long a freshness trial waits for its report before declaring the read model stale.
const FRESH_PATIENCE: Duration = Duration::from_secs(30);

const TARGET_PROVINCE: Duration = Duration::from_millis(50);
const TARGET_NATIONAL: Duration = Duration::from_secs(2);
const TARGET_FRESH: Duration = Duration::from_millis(100);

/// One indicator of the synthetic catalog. The generator writes values in this order.
struct IndicatorSpec {
    code: &'static str,
    name_vi: &'static str,
    name_en: &'static str,
    unit: &'static str,
    integer: bool,
    aggregation: &'static str,
    max_value: f64,
    ranking: Option<&'static str>,
}

const fn spec(
    code: &'static str,
    name_vi: &'static str,
    name_en: &'static str,
    unit: &'static str,
    aggregation: &'static str,
    max_value: f64,
    ranking: Option<&'static str>,
) -> IndicatorSpec {
    IndicatorSpec {
        code,
        name_vi,
        name_en,
        unit,
        integer: true,
        aggregation,
        max_value,
        ranking,
    }
}

/// Twenty indicators shaped like the dân vận chính quyền catalog: mostly flows (sum), two
/// stocks (last), one peak (max); five ranked, one of them with weight 0 (ranked on its own,
/// left out of the composite) and one where lower is better.
const INDICATORS: [IndicatorSpec; 20] = [
    spec(
        "tiep_cong_dan",
        "Lượt tiếp công dân",
        "Citizen reception sessions",
        "lượt",
        "sum",
        10_000.0,
        Some(r#"{ direction = "higher_is_better", weight = 1.0, per_capita = true }"#),
    ),
    spec(
        "don_tiep_nhan",
        "Đơn thư tiếp nhận",
        "Petitions received",
        "đơn",
        "sum",
        10_000.0,
        None,
    ),
    spec(
        "don_thuoc_tham_quyen",
        "Đơn thuộc thẩm quyền",
        "Petitions within jurisdiction",
        "đơn",
        "sum",
        10_000.0,
        None,
    ),
    spec(
        "don_da_giai_quyet",
        "Đơn đã giải quyết",
        "Petitions resolved",
        "đơn",
        "sum",
        10_000.0,
        None,
    ),
    spec(
        "vu_viec_tiep_nhan",
        "Vụ việc tiếp nhận",
        "Cases received",
        "vụ việc",
        "sum",
        10_000.0,
        None,
    ),
    spec(
        "vu_viec_giai_quyet",
        "Vụ việc đã giải quyết",
        "Cases resolved",
        "vụ việc",
        "sum",
        10_000.0,
        None,
    ),
    spec(
        "hs_tiep_nhan",
        "Hồ sơ thủ tục hành chính tiếp nhận",
        "Administrative dossiers received",
        "hồ sơ",
        "sum",
        1_000_000.0,
        None,
    ),
    spec(
        "hs_giai_quyet",
        "Hồ sơ đã giải quyết",
        "Dossiers resolved",
        "hồ sơ",
        "sum",
        1_000_000.0,
        None,
    ),
    spec(
        "hs_dung_han",
        "Hồ sơ giải quyết đúng hạn",
        "Dossiers resolved on time",
        "hồ sơ",
        "sum",
        1_000_000.0,
        None,
    ),
    spec(
        "doi_thoai",
        "Cuộc đối thoại với nhân dân",
        "Dialogues with citizens",
        "cuộc",
        "sum",
        1_000.0,
        Some(r#"{ direction = "higher_is_better", weight = 1.0, per_capita = true }"#),
    ),
    spec(
        "hoi_nghi_tuyen_truyen",
        "Hội nghị tuyên truyền pháp luật",
        "Legal-awareness conferences",
        "hội nghị",
        "sum",
        1_000.0,
        None,
    ),
    spec(
        "nguoi_tham_du",
        "Lượt người tham dự",
        "Conference attendees",
        "lượt người",
        "sum",
        1_000_000.0,
        None,
    ),
    spec(
        "tai_lieu_phat_hanh",
        "Tài liệu phát hành",
        "Leaflets distributed",
        "bản",
        "sum",
        1_000_000.0,
        None,
    ),
    spec(
        "von_huy_dong",
        "Vốn huy động",
        "Funds mobilised",
        "đồng",
        "sum",
        10_000_000_000_000.0,
        Some(r#"{ direction = "higher_is_better", weight = 1.0, per_capita = true }"#),
    ),
    IndicatorSpec {
        integer: false,
        ..spec(
            "dat_hien",
            "Đất hiến",
            "Land donated",
            "m²",
            "sum",
            1_000_000.0,
            None,
        )
    },
    spec(
        "tro_giup_phap_ly",
        "Lượt trợ giúp pháp lý",
        "Legal-aid sessions",
        "lượt",
        "sum",
        10_000.0,
        Some(r#"{ direction = "higher_is_better", weight = 0.0 }"#),
    ),
    spec(
        "khieu_nai_dong_nguoi",
        "Vụ khiếu nại đông người",
        "Mass complaints",
        "vụ",
        "sum",
        1_000.0,
        Some(r#"{ direction = "lower_is_better", weight = 1.0, per_capita = true }"#),
    ),
    spec(
        "mo_hinh_dang_ky",
        "Mô hình dân vận khéo đăng ký",
        "Skilled-mobilisation models registered",
        "mô hình",
        "last",
        100_000.0,
        None,
    ),
    spec(
        "mo_hinh_cong_nhan",
        "Mô hình dân vận khéo được công nhận",
        "Skilled-mobilisation models recognised",
        "mô hình",
        "last",
        100_000.0,
        None,
    ),
    spec(
        "doan_dong_nguoi_lon_nhat",
        "Đoàn đông người lớn nhất",
        "Largest delegation",
        "người",
        "max",
        10_000.0,
        None,
    ),
];

/// (code, name_vi, name_en, numerator, denominator, ranking): rates, weighted in the composite.
const DERIVED: [(&str, &str, &str, &str, &str, &str); 3] = [
    (
        "ty_le_dung_han",
        "Tỷ lệ hồ sơ giải quyết đúng hạn",
        "Dossiers resolved on time",
        "hs_dung_han",
        "hs_giai_quyet",
        r#"{ direction = "higher_is_better", weight = 2.0 }"#,
    ),
    (
        "ty_le_giai_quyet_don",
        "Tỷ lệ giải quyết đơn thuộc thẩm quyền",
        "Petitions resolved",
        "don_da_giai_quyet",
        "don_thuoc_tham_quyen",
        r#"{ direction = "higher_is_better", weight = 1.0 }"#,
    ),
    (
        "ty_le_mo_hinh_cong_nhan",
        "Tỷ lệ mô hình được công nhận",
        "Models recognised",
        "mo_hinh_cong_nhan",
        "mo_hinh_dang_ky",
        r#"{ direction = "higher_is_better", weight = 0.5 }"#,
    ),
];

/// The synthetic catalog as TOML, so it goes through the same checks as a real one.
fn catalog_toml() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "[[data_sets]]\ncode = \"{DATA_SET}\"\nname_vi = \"Báo cáo tháng (dữ liệu benchmark)\"\n\
         name_en = \"Monthly report (benchmark data)\"\nperiod_type = \"monthly\"\n\
         calendar = \"months\"\ngrace_days = 5\nreporting_levels = [\"district\"]\nindicators = ["
    );
    for i in &INDICATORS {
        let _ = writeln!(out, "  {{ indicator = \"{}\" }},", i.code);
    }
    out.push_str("]\n");
    for i in &INDICATORS {
        let _ = writeln!(
            out,
            "\n[[indicators]]\ncode = \"{}\"\nname_vi = \"{}\"\nname_en = \"{}\"\n\
             unit_of_measure = \"{}\"\nvalue_type = \"{}\"\naggregation = \"{}\"\n\
             max_value = {:?}",
            i.code,
            i.name_vi,
            i.name_en,
            i.unit,
            if i.integer { "integer" } else { "decimal" },
            i.aggregation,
            i.max_value
        );
        if let Some(ranking) = i.ranking {
            let _ = writeln!(out, "ranking = {ranking}");
        }
    }
    for (code, name_vi, name_en, numerator, denominator, ranking) in DERIVED {
        let _ = writeln!(
            out,
            "\n[[derived]]\ncode = \"{code}\"\nname_vi = \"{name_vi}\"\nname_en = \"{name_en}\"\n\
             unit_of_measure = \"%\"\nnumerator = \"{numerator}\"\n\
             denominator = \"{denominator}\"\nfactor = 100.0\nranking = {ranking}"
        );
    }
    out
}

fn unit(
    code: &str,
    name: String,
    parent: Option<&str>,
    level: &str,
    population: u64,
) -> anyhow::Result<ReportingUnit> {
    Ok(ReportingUnit {
        code: UnitCode::parse(code).map_err(|e| anyhow!("unit code {code:?} {e}"))?,
        name,
        parent: parent
            .map(|p| UnitCode::parse(p).map_err(|e| anyhow!("unit code {p:?} {e}")))
            .transpose()?,
        level: level.to_owned(),
        population,
    })
}

fn district_population(rng: &mut StdRng) -> u64 {
    rng.random_range(40_000..=400_000)
}

/// A province of `districts` districts.
fn province_tree(districts: usize, seed: u64) -> anyhow::Result<UnitTree> {
    let mut rng = StdRng::seed_from_u64(seed);
    let populations: Vec<u64> = (0..districts)
        .map(|_| district_population(&mut rng))
        .collect();
    let mut units = vec![unit(
        "TINH",
        "Tỉnh Benchmark".into(),
        None,
        "province",
        populations.iter().sum(),
    )?];
    for (i, population) in populations.iter().enumerate() {
        units.push(unit(
            &format!("H{:05}", i + 1),
            format!("Huyện {}", i + 1),
            Some("TINH"),
            "district",
            *population,
        )?);
    }
    Ok(UnitTree::build(units)?)
}

/// A country of `provinces` provinces sharing `districts` districts round-robin.
fn national_tree(districts: usize, provinces: usize, seed: u64) -> anyhow::Result<UnitTree> {
    let mut rng = StdRng::seed_from_u64(seed);
    let populations: Vec<u64> = (0..districts)
        .map(|_| district_population(&mut rng))
        .collect();
    let mut province_population = vec![0u64; provinces];
    for (i, population) in populations.iter().enumerate() {
        province_population[i % provinces] += population;
    }
    let mut units = vec![unit(
        "VN",
        "Toàn quốc".into(),
        None,
        "nation",
        populations.iter().sum(),
    )?];
    for (p, population) in province_population.iter().enumerate() {
        units.push(unit(
            &format!("T{:02}", p + 1),
            format!("Tỉnh {}", p + 1),
            Some("VN"),
            "province",
            *population,
        )?);
    }
    for (i, population) in populations.iter().enumerate() {
        units.push(unit(
            &format!("H{:05}", i + 1),
            format!("Huyện {}", i + 1),
            Some(&format!("T{:02}", i % provinces + 1)),
            "district",
            *population,
        )?);
    }
    Ok(UnitTree::build(units)?)
}

/// `count` months ending with December of `last_year`.
fn months_ending(last_year: i32, count: u32) -> Vec<PeriodId> {
    let end = last_year * 12 + 11;
    let start = end - count as i32 + 1;
    (start..=end)
        .map(|m| PeriodId::Month {
            year: m.div_euclid(12),
            month: m.rem_euclid(12) as u32 + 1,
        })
        .collect()
}

/// Deterministic monthly reports for every reporting unit, month after month (the order in
/// which they would arrive), with magnitudes of a Vietnamese district.
struct Synthetic {
    rng: StdRng,
    units: Vec<(String, u64)>,
    /// Per unit: size (population ÷ 100,000) and how well it performs (0.7–1.3).
    size: Vec<f64>,
    quality: Vec<f64>,
    /// Per unit: models registered and recognised so far (stocks).
    models: Vec<(f64, f64)>,
    months: Vec<PeriodId>,
    month: usize,
    next_unit: usize,
}

impl Synthetic {
    fn new(seed: u64, units: &[(String, u64)], months: &[PeriodId]) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_DA7A);
        let size: Vec<f64> = units.iter().map(|(_, p)| *p as f64 / 100_000.0).collect();
        let quality: Vec<f64> = units.iter().map(|_| rng.random_range(0.7..1.3)).collect();
        let models = size
            .iter()
            .map(|s| {
                let registered = (40.0 * s * rng.random_range(0.5..1.5)).round().max(1.0);
                (registered, (registered * 0.4).round())
            })
            .collect();
        Synthetic {
            rng,
            units: units.to_vec(),
            size,
            quality,
            models,
            months: months.to_vec(),
            month: 0,
            next_unit: 0,
        }
    }

    fn total_reports(&self) -> u64 {
        (self.units.len() * self.months.len()) as u64
    }

    fn next_report(&mut self) -> Option<BulkReport> {
        if self.next_unit == self.units.len() {
            self.next_unit = 0;
            self.month += 1;
        }
        let period = *self.months.get(self.month)?;
        let u = self.next_unit;
        self.next_unit += 1;
        let (f, q) = (self.size[u], self.quality[u]);
        let rng = &mut self.rng;
        let around = |rng: &mut StdRng, mean: f64| (mean * rng.random_range(0.6..1.4)).round();
        let tiep_cong_dan = around(rng, 8.0 * f * q);
        let don_tiep_nhan = around(rng, 12.0 * f).max(1.0);
        let don_thuoc = (don_tiep_nhan * rng.random_range(0.5..0.9))
            .round()
            .max(1.0);
        let don_giai_quyet = (don_thuoc * rng.random_range(0.6..1.0) * q.min(1.0)).round();
        let vu_viec = around(rng, 5.0 * f);
        let vu_viec_giai_quyet = (vu_viec * rng.random_range(0.5..1.0)).round();
        let hs_tiep_nhan = around(rng, 1_500.0 * f).max(1.0);
        let hs_giai_quyet = (hs_tiep_nhan * rng.random_range(0.85..1.0))
            .round()
            .max(1.0);
        let hs_dung_han = (hs_giai_quyet * rng.random_range(0.8..1.0) * q.min(1.0)).round();
        let doi_thoai = rng.random_range(0..=(3.0 * f * q).ceil() as u32) as f64;
        let hoi_nghi = around(rng, 2.0 * f);
        let nguoi_tham_du = hoi_nghi * rng.random_range(60..200) as f64;
        let tai_lieu = around(rng, 300.0 * f);
        let von_huy_dong = around(rng, 1_500.0 * f * q) * 1_000_000.0;
        // Quarter square metres: decimal, yet exact in binary, like most surveyed areas.
        let dat_hien = (400.0 * f * rng.random_range(0.0..2.0) * 4.0).round() / 4.0;
        let tro_giup = around(rng, 30.0 * f);
        let khieu_nai = rng.random_range(0..=((2.0 / q) as u32)) as f64;
        let doan_lon_nhat = if khieu_nai > 0.0 {
            rng.random_range(5..=60) as f64
        } else {
            0.0
        };
        let (registered, recognised) = &mut self.models[u];
        *registered += rng.random_range(0..=3) as f64;
        *recognised = (*recognised + rng.random_range(0..=2) as f64).min(*registered);
        let values = [
            tiep_cong_dan,
            don_tiep_nhan,
            don_thuoc,
            don_giai_quyet,
            vu_viec,
            vu_viec_giai_quyet,
            hs_tiep_nhan,
            hs_giai_quyet,
            hs_dung_han,
            doi_thoai,
            hoi_nghi,
            nguoi_tham_du,
            tai_lieu,
            von_huy_dong,
            dat_hien,
            tro_giup,
            khieu_nai,
            *registered,
            *recognised,
            doan_lon_nhat,
        ];
        let window = period.window(Calendar::Months);
        let received_at = window
            .end
            .and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default())
            .and_utc()
            + Days::days(rng.random_range(0..9))
            + Days::minutes(rng.random_range(0..600));
        let deadline = deadline(window.end, 5);
        Some(BulkReport {
            unit: self.units[u].0.clone(),
            period: period.to_string(),
            received_at,
            deadline,
            on_time: received_at <= deadline,
            window,
            values: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u16, *v))
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Province,
    National,
}

/// One data set size with its tree and the question asked of it.
struct Scenario {
    kind: Kind,
    catalog: Arc<Catalog>,
    units: Arc<UnitTree>,
    /// Reporting units under the root: (code, population).
    reporting: Vec<(String, u64)>,
    months: Vec<PeriodId>,
    seed: u64,
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Province => "province",
            Kind::National => "national",
        }
    }

    fn values(&self) -> u64 {
        (self.reporting.len() * self.months.len() * INDICATORS.len()) as u64
    }

    fn root(&self) -> String {
        self.units.root().code.to_string()
    }

    fn first_year(&self) -> i32 {
        self.months.first().map_or(PROVINCE_YEAR, PeriodId::year)
    }

    fn last_year(&self) -> i32 {
        self.months.last().map_or(PROVINCE_YEAR, PeriodId::year)
    }

    fn new(
        kind: Kind,
        catalog: Arc<Catalog>,
        units: UnitTree,
        months: Vec<PeriodId>,
        seed: u64,
    ) -> Self {
        let reporting = units
            .subtree(&units.root().code)
            .into_iter()
            .filter(|u| u.level == "district")
            .map(|u| (u.code.to_string(), u.population))
            .collect();
        Scenario {
            kind,
            catalog,
            units: Arc::new(units),
            reporting,
            months,
            seed,
        }
    }

    /// The catalog and the unit tree as the SQL baseline's reference tables.
    fn baseline_spec(&self) -> anyhow::Result<BaselineSpec> {
        let catalog = &self.catalog;
        let data_set = catalog
            .data_set(DATA_SET)
            .context("the synthetic catalog lacks its data set")?;
        let mut spec = BaselineSpec {
            units: self.reporting.clone(),
            ..BaselineSpec::default()
        };
        for item in &data_set.indicators {
            let indicator = catalog
                .indicator(&item.indicator)
                .context("the synthetic catalog lacks an indicator")?;
            spec.indicators
                .push((indicator.code.to_string(), indicator.aggregation));
            if let Some(r) = &indicator.ranking {
                spec.ranked.push(BaselineRanked {
                    code: indicator.code.to_string(),
                    higher_is_better: r.direction == Direction::HigherIsBetter,
                    weight: r.weight,
                    // The benchmark ranks per capita, as `tonghop query ranking` does by default.
                    per_capita: r.per_capita,
                });
            }
        }
        for d in catalog.derived() {
            if data_set.indicator(&d.numerator).is_none()
                || data_set.indicator(&d.denominator).is_none()
            {
                continue;
            }
            spec.derived.push(BaselineDerived {
                code: d.code.to_string(),
                numerator: d.numerator.to_string(),
                denominator: d.denominator.to_string(),
                factor: d.factor,
            });
            if let Some(r) = &d.ranking {
                spec.ranked.push(BaselineRanked {
                    code: d.code.to_string(),
                    higher_is_better: r.direction == Direction::HigherIsBetter,
                    weight: r.weight,
                    per_capita: r.per_capita,
                });
            }
        }
        Ok(spec)
    }
}

/// Numbers compared between SQL and polars, and what differed.
#[derive(Debug, Default, Clone)]
struct Agreement {
    compared: usize,
    mismatches: usize,
    examples: Vec<String>,
}

impl Agreement {
    fn agrees(&self) -> bool {
        self.mismatches == 0 && self.compared > 0
    }
}

/// Everything measured on one scenario and one backend.
#[derive(Debug, Default)]
struct Figures {
    loaded: BulkLoaded,
    load: Option<Duration>,
    cold: Option<Duration>,
    /// Province: indicators, ranking and both, per run.
    indicators: Vec<Duration>,
    ranking: Vec<Duration>,
    polars: Vec<Duration>,
    sql: Vec<Duration>,
    agreement: Option<Agreement>,
    fresh: Vec<Duration>,
    submit: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

fn median(times: &[Duration]) -> Option<Duration> {
    percentile(times, 0.5)
}

/// Nearest-rank percentile.
fn percentile(times: &[Duration], p: f64) -> Option<Duration> {
    if times.is_empty() {
        return None;
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn show(d: Option<Duration>) -> String {
    match d {
        None => "–".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1e3;
            if ms < 10.0 {
                format!("{ms:.2} ms")
            } else if ms < 1_000.0 {
                format!("{ms:.1} ms")
            } else {
                format!("{:.2} s", ms / 1e3)
            }
        }
    }
}

fn ratio(sql: Option<Duration>, polars: Option<Duration>) -> Option<f64> {
    match (sql, polars) {
        (Some(s), Some(p)) if p > Duration::ZERO => Some(s.as_secs_f64() / p.as_secs_f64()),
        _ => None,
    }
}

/// Lets the kernel restart the peak-RSS counter, so each scenario reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn check_args(args: &AnalyticsBenchArgs) -> anyhow::Result<()> {
    // Periods before 1990 are refused by the domain; keep the first month after it.
    let max_months = ((NATIONAL_LAST_YEAR - 1991) * 12) as u32;
    if args.province_units == 0 || args.national_units == 0 || args.national_provinces == 0 {
        bail!("--province-units, --national-units and --national-provinces must be at least 1");
    }
    if args.national_provinces > 99 || args.national_provinces > args.national_units {
        bail!("--national-provinces must be at most 99 and at most --national-units");
    }
    if args.province_units > 99_999 || args.national_units > 99_999 {
        bail!("at most 99,999 units per scenario");
    }
    for (name, months) in [
        ("--province-months", args.province_months),
        ("--national-months", args.national_months),
    ] {
        if months == 0 || months > max_months {
            bail!("{name} must be between 1 and {max_months}");
        }
    }
    if args.runs == 0 || args.national_runs == 0 || args.sql_runs == 0 {
        bail!("--runs, --national-runs and --sql-runs must be at least 1");
    }
    Ok(())
}

async fn analytics(args: AnalyticsBenchArgs) -> anyhow::Result<ExitCode> {
    check_args(&args)?;
    let catalog = Arc::new(Catalog::from_toml(&catalog_toml()).context("synthetic catalog")?);
    let (data_dir, _temp_dir) = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let mut backends = vec![Backend::Sqlite];
    if !args.skip_postgres {
        backends.push(Backend::Postgres);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tonghop bench analytics: {} cores, seed {}, SQLite files in {}{}",
        cores,
        args.seed,
        data_dir.display(),
        if args.skip_postgres {
            String::new()
        } else {
            format!(", PostgreSQL via {}", store::redact_url(&args.postgres_url))
        }
    );

    let mut scenarios = vec![Scenario::new(
        Kind::Province,
        catalog.clone(),
        province_tree(args.province_units, args.seed)?,
        months_ending(PROVINCE_YEAR, args.province_months),
        args.seed,
    )];
    if !args.skip_national {
        scenarios.push(Scenario::new(
            Kind::National,
            catalog.clone(),
            national_tree(args.national_units, args.national_provinces, args.seed)?,
            months_ending(NATIONAL_LAST_YEAR, args.national_months),
            args.seed,
        ));
    }

    let mut results: Vec<(Kind, Backend, Figures)> = Vec::new();
    for scenario in &scenarios {
        eprintln!(
            "{}: {} reporting units × {} months × {} indicators = {} values",
            scenario.name(),
            number(scenario.reporting.len() as f64, 0, true),
            scenario.months.len(),
            INDICATORS.len(),
            number(scenario.values() as f64, 0, true)
        );
        for &backend in &backends {
            let figures = run_backend(scenario, backend, &args, &data_dir)
                .await
                .with_context(|| format!("{} on {}", scenario.name(), backend.label()))?;
            results.push((scenario.kind, backend, figures));
        }
    }
    let disagreements = report(&scenarios, &backends, &results, &args);
    if disagreements > 0 {
        eprintln!(
            "ERROR: the SQL and polars answers disagree on {disagreements} number(s); see above"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a SQLite database and its WAL and shared-memory files, if present.
fn remove_sqlite_files(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
        }
    }
    Ok(())
}

async fn run_backend(
    scenario: &Scenario,
    backend: Backend,
    args: &AnalyticsBenchArgs,
    data_dir: &Path,
) -> anyhow::Result<Figures> {
    reset_peak_rss();
    match backend {
        Backend::Sqlite => {
            let path = data_dir.join(format!("{}.db", scenario.name()));
            remove_sqlite_files(&path)?;
            measure(
                scenario,
                backend,
                &format!("sqlite://{}", path.display()),
                args,
            )
            .await
        }
        Backend::Postgres => {
            let db = TempPgDatabase::create(&args.postgres_url)
                .await
                .with_context(|| {
                    format!(
                        "cannot create a database through {} (use --skip-postgres to run \
                         without PostgreSQL)",
                        store::redact_url(&args.postgres_url)
                    )
                })?;
            let url = db.url.clone();
            let name = db.name.clone();
            let result = measure(scenario, backend, &url, args).await;
            // Dropped on every path, errors included: a 2 GB database left behind by a failed
            // run would be a nasty surprise.
            if let Err(e) = db.drop_now().await {
                eprintln!("warning: could not drop the benchmark database {name}: {e}");
            }
            result
        }
    }
}

/// Prints load progress on stderr every 10 %.
fn progress_printer(label: String, total: u64, started: Instant) -> impl FnMut(u64) + Send {
    let mut shown = 0;
    move |done| {
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth > shown {
            shown = tenth;
            eprintln!(
                "  {label}: {:>3} % ({} of {} reports) after {:.1} s",
                tenth * 10,
                number(done as f64, 0, true),
                number(total as f64, 0, true),
                started.elapsed().as_secs_f64()
            );
        }
    }
}

async fn measure(
    scenario: &Scenario,
    backend: Backend,
    url: &str,
    args: &AnalyticsBenchArgs,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let label = format!("{} → {}", scenario.name(), backend.label());

    let codes: Vec<String> = INDICATORS.iter().map(|i| i.code.to_owned()).collect();
    let mut synthetic = Synthetic::new(scenario.seed, &scenario.reporting, &scenario.months);
    let total = synthetic.total_reports();
    let started = Instant::now();
    let mut next = || synthetic.next_report();
    let mut progress = progress_printer(label.clone(), total, started);
    figures.loaded = bulk_load(
        url,
        BulkLoad {
            data_set: DATA_SET,
            indicators: &codes,
        },
        &mut next,
        &mut progress,
    )
    .await
    .context("bulk load")?;
    figures.load = Some(started.elapsed());

    let store = store::open(url, &StoreOptions::default()).await?;
    eprintln!("  {label}: loading the read model");
    let started = Instant::now();
    let query = QueryService::load(
        store.clone(),
        scenario.catalog.clone(),
        scenario.units.clone(),
    )
    .await?;
    figures.cold = Some(started.elapsed());

    let mut baseline = crate::store::bench::Baseline::connect(url).await?;
    baseline.prepare(&scenario.baseline_spec()?).await?;
    let outcome = match scenario.kind {
        Kind::Province => {
            province(
                scenario,
                &query,
                &mut baseline,
                &store,
                args,
                &mut figures,
                &label,
            )
            .await
        }
        Kind::National => {
            national(
                scenario,
                &query,
                &mut baseline,
                &store,
                args,
                &mut figures,
                &label,
            )
            .await
        }
    };
    let _ = baseline.close().await;
    drop(query);
    store.close().await;
    outcome?;
    figures.peak_rss_kib = peak_rss_kib();
    Ok(figures)
}

fn year_scope(scenario: &Scenario, year: i32) -> Scope {
    Scope {
        data_set: DATA_SET.into(),
        period: PeriodId::Year { year },
        node: scenario.root(),
        indicators: Vec::new(),
    }
}

async fn province(
    scenario: &Scenario,
    query: &QueryService,
    baseline: &mut crate::store::bench::Baseline,
    store: &Arc<dyn Store>,
    args: &AnalyticsBenchArgs,
    figures: &mut Figures,
    label: &str,
) -> anyhow::Result<()> {
    let scope = year_scope(scenario, PROVINCE_YEAR);
    eprintln!("  {label}: (a) indicators and ranking, {} runs", args.runs);
    // The warm-up run's answers are the ones checked against SQL.
    let table = query.indicators(scope.clone()).await?;
    let ranking = query.ranking(scope.clone(), true).await?;
    for _ in 0..args.runs {
        let started = Instant::now();
        let t = query.indicators(scope.clone()).await?;
        let middle = Instant::now();
        let r = query.ranking(scope.clone(), true).await?;
        let done = Instant::now();
        figures.indicators.push(middle - started);
        figures.ranking.push(done - middle);
        figures.polars.push(done - started);
        std::hint::black_box((t, r));
    }

    eprintln!("  {label}: (c) the same in SQL, {} runs", args.sql_runs);
    let (first, last) = (format!("{PROVINCE_YEAR}01"), format!("{PROVINCE_YEAR}12"));
    let rows = baseline.province(DATA_SET, &first, &last).await?;
    for _ in 0..args.sql_runs {
        let started = Instant::now();
        let again = baseline.province(DATA_SET, &first, &last).await?;
        figures.sql.push(started.elapsed());
        std::hint::black_box(again);
    }
    figures.agreement = Some(compare(
        &province_from_polars(&table, &ranking),
        &province_from_sql(&rows),
    ));

    if args.freshness_trials > 0 {
        eprintln!(
            "  {label}: (d) freshness, {} reports through the ingest path",
            args.freshness_trials
        );
        freshness(
            scenario,
            query,
            store,
            args.freshness_trials,
            figures,
            |_| scope.clone(),
        )
        .await?;
    }
    Ok(())
}

async fn national(
    scenario: &Scenario,
    query: &QueryService,
    baseline: &mut crate::store::bench::Baseline,
    store: &Arc<dyn Store>,
    args: &AnalyticsBenchArgs,
    figures: &mut Figures,
    label: &str,
) -> anyhow::Result<()> {
    let scope = year_scope(scenario, scenario.first_year());
    let through = PeriodId::Year {
        year: scenario.last_year(),
    };
    eprintln!(
        "  {label}: (b) yearly national totals, {} runs",
        args.national_runs
    );
    let mut answer: Option<SeriesTable> = None;
    for _ in 0..args.national_runs {
        let started = Instant::now();
        let table = query.series(scope.clone(), through).await?;
        figures.polars.push(started.elapsed());
        answer.get_or_insert(table);
    }
    let answer = answer.context("no national run")?;

    eprintln!(
        "  {label}: (c) the same in SQL, {} run(s)",
        args.national_sql_runs
    );
    let (first, last) = (
        format!("{}01", scenario.first_year()),
        format!("{}12", scenario.last_year()),
    );
    let mut rows: Option<Vec<SeriesRow>> = None;
    for _ in 0..args.national_sql_runs.max(1) {
        let started = Instant::now();
        let answer = baseline.series(DATA_SET, &first, &last).await?;
        figures.sql.push(started.elapsed());
        rows.get_or_insert(answer);
    }
    let rows = rows.context("no national SQL run")?;
    figures.agreement = Some(compare(
        &series_from_polars(&answer),
        &series_from_sql(&rows),
    ));

    // Freshness at national size: the read model holds every value, so a revision costs a
    // filter over all of them. Fewer trials; the province figure is the headline one.
    let trials = args.freshness_trials.min(5);
    if trials > 0 {
        eprintln!("  {label}: (d) freshness at national size, {trials} reports");
        let units = scenario.units.clone();
        let month = scenario.months.last().copied().context("no months")?;
        freshness(scenario, query, store, trials, figures, |code| Scope {
            data_set: DATA_SET.into(),
            period: month,
            node: units
                .find(code)
                .and_then(|u| u.parent.as_ref())
                .map_or_else(|| units.root().code.to_string(), |p| p.to_string()),
            indicators: Vec::new(),
        })
        .await?;
    }
    Ok(())
}

/// Sends revisions of stored reports through `Ingestor::submit` and times, from each
/// acknowledgement, how long until an answer of the query service contains the new value.
async fn freshness(
    scenario: &Scenario,
    query: &QueryService,
    store: &Arc<dyn Store>,
    trials: usize,
    figures: &mut Figures,
    scope_for: impl Fn(&str) -> Scope,
) -> anyhow::Result<()> {
    let ingestor = Ingestor::new(
        scenario.catalog.clone(),
        scenario.units.clone(),
        store.clone(),
        ValidationLimits::default(),
    );
    let period = scenario.months.last().copied().context("no months")?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    for trial in 0..trials {
        // Spread the trials over the units (7919 is prime, so they do not repeat early).
        let unit = &scenario.reporting[(trial * 7919) % scenario.reporting.len()].0;
        let scope = scope_for(unit);
        let stored = store
            .latest(unit, DATA_SET, &period.to_string())
            .await?
            .with_context(|| format!("no stored report of {unit} for {period}"))?;
        let old = stored
            .report
            .value(FRESH_INDICATOR)
            .context("stored report lacks the freshness indicator")?;
        let new = old + 1.0 + trial as f64;
        let before = query
            .indicators(scope.clone())
            .await?
            .value(unit, FRESH_INDICATOR)
            .and_then(|r| r.value)
            .context("the unit has no value before the trial")?;
        let expected = before - old + new;
        let draft = ReportDraft {
            submission_id: format!("bench-fresh-{nonce}-{trial}"),
            unit_code: unit.clone(),
            data_set: DATA_SET.into(),
            period: period.to_string(),
            values: stored
                .report
                .values
                .iter()
                .map(|v| DraftValue {
                    indicator: v.indicator.to_string(),
                    value: if v.indicator.as_str() == FRESH_INDICATOR {
                        new
                    } else {
                        v.value
                    },
                    comment: String::new(),
                })
                .collect(),
            narrative: Narrative {
                results: "Benchmark revision".into(),
                ..Narrative::default()
            },
            prepared_by: "tonghop bench".into(),
            client_time: None,
        };
        let sent = Instant::now();
        ingestor
            .submit(draft)
            .await
            .context("a freshness report was refused")?;
        let acknowledged = Instant::now();
        loop {
            let answer = query.indicators(scope.clone()).await?;
            let seen = answer.value(unit, FRESH_INDICATOR).and_then(|r| r.value);
            if seen == Some(expected) {
                break;
            }
            if acknowledged.elapsed() > FRESH_PATIENCE {
                bail!(
                    "a report acknowledged {} s ago is still not in the answer ({seen:?}, \
                     expected {expected})",
                    FRESH_PATIENCE.as_secs()
                );
            }
        }
        figures.fresh.push(acknowledged.elapsed());
        figures.submit.push(acknowledged - sent);
    }
    Ok(())
}

/// What a number in an answer is: its kind, unit (`None` for totals) and indicator.
type Key = (u8, Option<String>, Option<String>);
/// A value and, for rankings, a rank.
type Cell = (Option<f64>, Option<i64>);

const K_UNIT: u8 = 0;
const K_TOTAL: u8 = 1;
const K_RANK: u8 = 2;
const K_COMPOSITE: u8 = 3;
const K_YEAR: u8 = 4;

fn province_from_polars(table: &IndicatorTable, ranking: &RankingTable) -> BTreeMap<Key, Cell> {
    let mut out = BTreeMap::new();
    for row in &table.rows {
        let key = if row.is_total {
            (K_TOTAL, None, Some(row.indicator.to_string()))
        } else {
            (
                K_UNIT,
                Some(row.unit.to_string()),
                Some(row.indicator.to_string()),
            )
        };
        out.insert(key, (row.value, None));
    }
    for indicator in &ranking.indicators {
        for entry in &indicator.entries {
            out.insert(
                (
                    K_RANK,
                    Some(entry.unit.to_string()),
                    Some(indicator.indicator.to_string()),
                ),
                (entry.value, Some(i64::from(entry.rank))),
            );
        }
    }
    for entry in &ranking.composite {
        out.insert(
            (K_COMPOSITE, Some(entry.unit.to_string()), None),
            (Some(entry.score), Some(i64::from(entry.rank))),
        );
    }
    out
}

fn province_from_sql(rows: &[ProvinceRow]) -> BTreeMap<Key, Cell> {
    rows.iter()
        .map(|r| {
            let kind = match r.kind {
                ProvinceRowKind::UnitValue => K_UNIT,
                ProvinceRowKind::Total => K_TOTAL,
                ProvinceRowKind::IndicatorRank => K_RANK,
                ProvinceRowKind::Composite => K_COMPOSITE,
            };
            (
                (kind, r.unit.clone(), r.indicator.clone()),
                (r.value, r.rank),
            )
        })
        .collect()
}

fn series_from_polars(table: &SeriesTable) -> BTreeMap<Key, Cell> {
    let mut out = BTreeMap::new();
    for (p, period) in table.periods.iter().enumerate() {
        for (i, indicator) in table.indicators.iter().enumerate() {
            let value = table
                .values
                .get(p)
                .and_then(|row| row.get(i))
                .copied()
                .flatten();
            out.insert(
                (K_YEAR, Some(period.clone()), Some(indicator.to_string())),
                (value, None),
            );
        }
    }
    out
}

fn series_from_sql(rows: &[SeriesRow]) -> BTreeMap<Key, Cell> {
    rows.iter()
        .map(|r| {
            (
                (K_YEAR, Some(r.year.clone()), Some(r.indicator.clone())),
                (r.value, None),
            )
        })
        .collect()
}

fn close_enough(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= (TOLERANCE * a.abs().max(b.abs())).max(ABSOLUTE_FLOOR)
}

/// Every key of either answer: values within the tolerance (or both missing), ranks equal.
fn compare(polars: &BTreeMap<Key, Cell>, sql: &BTreeMap<Key, Cell>) -> Agreement {
    let mut agreement = Agreement::default();
    let none: Cell = (None, None);
    let keys: std::collections::BTreeSet<&Key> = polars.keys().chain(sql.keys()).collect();
    for key in keys {
        let p = polars.get(key).unwrap_or(&none);
        let s = sql.get(key).unwrap_or(&none);
        let values_agree = match (p.0, s.0) {
            (Some(a), Some(b)) => close_enough(a, b),
            (None, None) => true,
            _ => false,
        };
        agreement.compared += usize::from(p.0.is_some()) + usize::from(p.1.is_some());
        if !values_agree || p.1 != s.1 {
            agreement.mismatches += 1;
            if agreement.examples.len() < 10 {
                agreement
                    .examples
                    .push(format!("{key:?}: polars {p:?}, SQL {s:?}"));
            }
        }
    }
    agreement
}

/// A check that a timing of `pick` stays under `limit`.
fn under(
    limit: Duration,
    pick: fn(&Figures) -> Option<Duration>,
) -> impl Fn(&Figures) -> Option<bool> {
    move |f| pick(f).map(|d| d < limit)
}

/// How a line of the results table shows one backend's figures.
type CellFn<'a> = &'a dyn Fn(&Figures) -> String;
/// A line's target, and whether one backend's figures meet it (`None`: not measured).
type Target<'a> = Option<(&'a str, &'a dyn Fn(&Figures) -> Option<bool>)>;

/// One line of the results table.
struct Line {
    figure: String,
    cells: Vec<String>,
    target: String,
    met: Option<bool>,
}

/// Prints the results table and the summary; returns how many numbers disagreed.
fn report(
    scenarios: &[Scenario],
    backends: &[Backend],
    results: &[(Kind, Backend, Figures)],
    args: &AnalyticsBenchArgs,
) -> usize {
    let get = |kind: Kind, backend: Backend| {
        results
            .iter()
            .find(|(k, b, _)| *k == kind && *b == backend)
            .map(|(_, _, f)| f)
    };
    let mut lines: Vec<Line> = Vec::new();
    let mut targets: Vec<(String, bool)> = Vec::new();
    let mut ratios: Vec<String> = Vec::new();
    let mut disagreements = 0;
    let mut compared = 0;
    let mut line = |figure: &str, cell: CellFn<'_>, kind: Kind, target: Target<'_>| {
        let figures: Vec<Option<&Figures>> = backends.iter().map(|b| get(kind, *b)).collect();
        let cells = figures
            .iter()
            .map(|f| f.map_or_else(|| "–".to_owned(), cell))
            .collect();
        let (target_text, met) = match target {
            Some((text, check)) => {
                let verdicts: Vec<Option<bool>> =
                    figures.iter().map(|f| f.and_then(check)).collect();
                let met = if verdicts.iter().all(Option::is_none) {
                    None
                } else {
                    Some(verdicts.iter().all(|v| v.unwrap_or(true)))
                };
                (text.to_owned(), met)
            }
            None => (String::new(), None),
        };
        lines.push(Line {
            figure: figure.to_owned(),
            cells,
            target: target_text,
            met,
        });
    };
    for scenario in scenarios {
        let kind = scenario.kind;
        let name = scenario.name();
        let size = format!(
            "{} units × {} months × {} indicators = {} values",
            number(scenario.reporting.len() as f64, 0, true),
            scenario.months.len(),
            INDICATORS.len(),
            number(scenario.values() as f64, 0, true)
        );
        line(&format!("{name}: {size}"), &|_| String::new(), kind, None);
        line(
            "  data generation + bulk load",
            &|f| show(f.load),
            kind,
            None,
        );
        line("  read model cold load", &|f| show(f.cold), kind, None);
        match kind {
            Kind::Province => {
                line(
                    "  (a) indicators, warm, median",
                    &|f| show(median(&f.indicators)),
                    kind,
                    None,
                );
                line(
                    "  (a) composite ranking, warm, median",
                    &|f| show(median(&f.ranking)),
                    kind,
                    None,
                );
                let median_ok = under(TARGET_PROVINCE, |f| median(&f.polars));
                line(
                    &format!("  (a) indicators + ranking, median of {}", args.runs),
                    &|f| show(median(&f.polars)),
                    kind,
                    Some(("< 50 ms", &median_ok)),
                );
                let p95_ok = under(TARGET_PROVINCE, |f| percentile(&f.polars, 0.95));
                line(
                    "  (a) indicators + ranking, p95",
                    &|f| show(percentile(&f.polars, 0.95)),
                    kind,
                    Some(("< 50 ms", &p95_ok)),
                );
                line(
                    &format!("  (c) same answers in SQL, median of {}", args.sql_runs),
                    &|f| show(median(&f.sql)),
                    kind,
                    None,
                );
            }
            Kind::National => {
                let median_ok = under(TARGET_NATIONAL, |f| median(&f.polars));
                line(
                    &format!(
                        "  (b) yearly totals {}–{}, median of {}",
                        scenario.first_year(),
                        scenario.last_year(),
                        args.national_runs
                    ),
                    &|f| show(median(&f.polars)),
                    kind,
                    Some(("< 2 s", &median_ok)),
                );
                line(
                    &format!(
                        "  (c) same answers in SQL, median of {}",
                        args.national_sql_runs.max(1)
                    ),
                    &|f| show(median(&f.sql)),
                    kind,
                    None,
                );
            }
        }
        line(
            "  (c) SQL time ÷ polars time",
            &|f| {
                ratio(median(&f.sql), median(&f.polars))
                    .map_or_else(|| "–".into(), |r| format!("{r:.1}×"))
            },
            kind,
            None,
        );
        line(
            "  (c) SQL and polars answers",
            &|f| match &f.agreement {
                Some(a) if a.agrees() => {
                    format!("agree ({} numbers)", number(a.compared as f64, 0, true))
                }
                Some(a) => format!("DISAGREE ({} of {})", a.mismatches, a.compared),
                None => "–".into(),
            },
            kind,
            None,
        );
        let fresh_ok = under(TARGET_FRESH, |f| median(&f.fresh));
        line(
            "  (d) freshness, ack → answer, median",
            &|f| show(median(&f.fresh)),
            kind,
            Some(("< 100 ms", &fresh_ok)),
        );
        line(
            "  (d) freshness, ack → answer, p95",
            &|f| show(percentile(&f.fresh, 0.95)),
            kind,
            None,
        );
        line(
            "  (d) ingest, submit → ack, median",
            &|f| show(median(&f.submit)),
            kind,
            None,
        );
        line(
            "  peak RSS",
            &|f| {
                f.peak_rss_kib.map_or_else(
                    || "–".into(),
                    |k| format!("{} MiB", number(k as f64 / 1024.0, 0, true)),
                )
            },
            kind,
            None,
        );
    }
    for (kind, backend, figures) in results {
        let scenario = match kind {
            Kind::Province => "province",
            Kind::National => "national",
        };
        if let Some(r) = ratio(median(&figures.sql), median(&figures.polars)) {
            ratios.push(format!("{scenario} {r:.0}× ({})", backend.label()));
        }
        if let Some(a) = &figures.agreement {
            compared += a.compared;
            disagreements += a.mismatches;
            if a.compared == 0 {
                // Nothing compared means the check itself failed: count it as a disagreement.
                disagreements += 1;
            }
            for example in &a.examples {
                eprintln!("MISMATCH {scenario} on {}: {example}", backend.label());
            }
        }
    }

    let mut headers = vec!["Figure"];
    headers.extend(backends.iter().map(|b| b.label()));
    headers.extend(["Target", "Met"]);
    let mut right = vec![false];
    right.extend(backends.iter().map(|_| true));
    right.extend([false, false]);
    let mut table = Table::new(&headers, &right);
    for l in &lines {
        let mut cells = vec![l.figure.clone()];
        cells.extend(l.cells.iter().cloned());
        cells.push(l.target.clone());
        cells.push(match l.met {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => String::new(),
        });
        if let Some(met) = l.met {
            targets.push((l.figure.trim().to_owned(), met));
        }
        table.row(cells);
    }
    println!();
    print!("{}", table.render());
    let met = targets.iter().filter(|(_, m)| *m).count();
    let missed: Vec<&str> = targets
        .iter()
        .filter(|(_, m)| !*m)
        .map(|(f, _)| f.as_str())
        .collect();
    println!();
    println!(
        "Summary: {met} of {} targets met{}; SQL and polars answers {}; SQL ÷ polars: {}.",
        targets.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" (missed: {})", missed.join("; "))
        },
        if disagreements == 0 {
            format!("agree ({} numbers)", number(compared as f64, 0, true))
        } else {
            format!("DISAGREE on {disagreements}")
        },
        if ratios.is_empty() {
            "–".to_owned()
        } else {
            ratios.join(", ")
        }
    );
    disagreements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_catalog_is_valid() {
        let catalog = Catalog::from_toml(&catalog_toml()).expect("valid catalog");
        let data_set = catalog.data_set(DATA_SET).expect("data set");
        assert_eq!(data_set.indicators.len(), 20);
        assert_eq!(catalog.derived().len(), 3);
    }

    #[test]
    fn months_end_in_december() {
        let months = months_ending(2024, 120);
        assert_eq!(months.len(), 120);
        assert_eq!(months[0].to_string(), "201501");
        assert_eq!(months[119].to_string(), "202412");
    }

    #[test]
    fn generated_reports_pass_validation() {
        let catalog = Catalog::from_toml(&catalog_toml()).expect("valid catalog");
        let tree = province_tree(5, 1).expect("tree");
        let scenario = Scenario::new(
            Kind::Province,
            Arc::new(catalog.clone()),
            tree.clone(),
            months_ending(2025, 12),
            1,
        );
        let mut synthetic = Synthetic::new(1, &scenario.reporting, &scenario.months);
        assert_eq!(synthetic.total_reports(), 60);
        let mut n = 0;
        while let Some(report) = synthetic.next_report() {
            n += 1;
            let draft = ReportDraft {
                submission_id: format!("t{n}"),
                unit_code: report.unit.clone(),
                data_set: DATA_SET.into(),
                period: report.period.clone(),
                values: report
                    .values
                    .iter()
                    .map(|(i, v)| DraftValue {
                        indicator: INDICATORS[usize::from(*i)].code.into(),
                        value: *v,
                        comment: String::new(),
                    })
                    .collect(),
                ..ReportDraft::default()
            };
            let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
            crate::domain::validation::validate(
                &draft,
                &catalog,
                &tree,
                &ValidationLimits::default(),
                today,
            )
            .unwrap_or_else(|v| panic!("{draft:?}: {v:?}"));
        }
        assert_eq!(n, 60);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(median(&times), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&times, 0.95), Some(Duration::from_millis(19)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn comparison_tolerates_rounding_only() {
        let key: Key = (K_TOTAL, None, Some("a".into()));
        let polars = BTreeMap::from([(key.clone(), (Some(1.0), None))]);
        let close = BTreeMap::from([(key.clone(), (Some(1.0 + 1e-9), None))]);
        let far = BTreeMap::from([(key, (Some(1.001), None))]);
        assert!(compare(&polars, &close).agrees());
        assert!(!compare(&polars, &far).agrees());
        assert!(!compare(&polars, &BTreeMap::new()).agrees());
    }
}
