//! The benchmark's data: a catalog, unit trees and monthly reports generated from a seed, kept
//! apart from the timing code so that what is measured can be read (and tested) on its own,
//! and so that every run, on any machine, loads the same numbers.

use crate::domain::period::deadline;
use crate::domain::{Calendar, PeriodId, ReportingUnit, UnitCode, UnitTree};
use crate::store::bench::BulkReport;
use anyhow::anyhow;
use chrono::{Duration as Days, NaiveTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;

/// The synthetic catalog's one data set, which every generated report belongs to.
pub(super) const DATA_SET: &str = "BENCH_THANG";

/// One indicator of the synthetic catalog. The generator writes values in this order.
pub(super) struct IndicatorSpec {
    pub(super) code: &'static str,
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
pub(super) const INDICATORS: [IndicatorSpec; 20] = [
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
pub(super) fn catalog_toml() -> String {
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
pub(super) fn province_tree(districts: usize, seed: u64) -> anyhow::Result<UnitTree> {
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
pub(super) fn national_tree(
    districts: usize,
    provinces: usize,
    seed: u64,
) -> anyhow::Result<UnitTree> {
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
pub(super) fn months_ending(last_year: i32, count: u32) -> Vec<PeriodId> {
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
pub(super) struct Synthetic {
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
    pub(super) fn new(seed: u64, units: &[(String, u64)], months: &[PeriodId]) -> Self {
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

    pub(super) fn total_reports(&self) -> u64 {
        (self.units.len() * self.months.len()) as u64
    }

    pub(super) fn next_report(&mut self) -> Option<BulkReport> {
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

#[cfg(test)]
mod tests;
