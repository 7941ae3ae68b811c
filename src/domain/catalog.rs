//! The catalog: which data sets exist, which indicators they carry, how each indicator is
//! validated, aggregated and ranked. It is data (TOML), not code, so a province can change its
//! reporting regime without a new release; the *dân vận chính quyền* catalog ships embedded.

use super::CodeMap;
use super::codes::{DataSetCode, IndicatorCode};
use super::period::{Calendar, PeriodType};
use serde::Deserialize;
use std::collections::HashSet;

/// A report more than a year late is not "late", it is a catalog typo.
pub const MAX_GRACE_DAYS: u32 = 366;

/// The default catalog for government mass-mobilisation reporting, compiled into the binary.
pub const DEFAULT_CATALOG_TOML: &str = include_str!("default_catalog.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Counts and whole đồng: no fractions.
    Integer,
    /// Areas, lengths: fractions allowed.
    Decimal,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
        }
    }
}

/// How values of one indicator combine over time and over units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Flows (dossiers received): add up.
    Sum,
    /// Stocks (models registered to date): the latest value in the period.
    Last,
    /// Peaks: the largest value.
    Max,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Last => "last",
            Aggregation::Max => "max",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// How an indicator takes part in district rankings.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ranking {
    pub direction: Direction,
    /// Weight in the composite score; 0 ranks the indicator on its own but leaves it out.
    #[serde(default = "one")]
    pub weight: f64,
    /// Rank per 10,000 inhabitants rather than the raw total (fair between unequal districts).
    #[serde(default)]
    pub per_capita: bool,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub code: IndicatorCode,
    pub name_vi: String,
    pub name_en: String,
    /// Unit of measure as printed in Vietnamese reports ("lượt", "đồng", "m²").
    pub unit_of_measure: String,
    pub value_type: ValueType,
    pub aggregation: Aggregation,
    /// Values above this are refused as typing errors.
    pub max_value: f64,
    #[serde(default)]
    pub ranking: Option<Ranking>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSetIndicator {
    pub indicator: IndicatorCode,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSet {
    pub code: DataSetCode,
    pub name_vi: String,
    pub name_en: String,
    pub period_type: PeriodType,
    pub calendar: Calendar,
    /// Days after the window's last day before a report counts as late.
    pub grace_days: u32,
    /// Unit levels expected to send this data set (completeness counts them).
    pub reporting_levels: Vec<String>,
    pub indicators: Vec<DataSetIndicator>,
}

impl DataSet {
    pub fn indicator(&self, code: &IndicatorCode) -> Option<&DataSetIndicator> {
        self.indicators.iter().find(|i| &i.indicator == code)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Σ left ≤ Σ right
    Le,
    /// Σ left = Σ right
    Eq,
}

/// A consistency rule inside one report, e.g. in-jurisdiction + forwarded ≤ received.
/// Checked only when every indicator it names is present in the report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyRule {
    pub code: String,
    pub left: Vec<IndicatorCode>,
    pub comparison: Comparison,
    pub right: Vec<IndicatorCode>,
    pub description_vi: String,
    pub description_en: String,
}

/// numerator ÷ denominator × factor, computed from aggregated components, never submitted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedIndicator {
    pub code: IndicatorCode,
    pub name_vi: String,
    pub name_en: String,
    pub unit_of_measure: String,
    pub numerator: IndicatorCode,
    pub denominator: IndicatorCode,
    pub factor: f64,
    #[serde(default)]
    pub ranking: Option<Ranking>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    data_sets: Vec<DataSet>,
    #[serde(default)]
    indicators: Vec<Indicator>,
    #[serde(default)]
    rules: Vec<ConsistencyRule>,
    #[serde(default)]
    derived: Vec<DerivedIndicator>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("catalog: {0}")]
    Inconsistent(String),
}

/// A checked catalog: every code it mentions exists, every code is unique.
#[derive(Debug, Clone)]
pub struct Catalog {
    data_sets: Vec<DataSet>,
    indicators: Vec<Indicator>,
    rules: Vec<ConsistencyRule>,
    derived: Vec<DerivedIndicator>,
    indicator_index: CodeMap<IndicatorCode, usize>,
}

impl Catalog {
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::from_toml(DEFAULT_CATALOG_TOML)
    }

    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        Self::check(file)
    }

    fn check(file: CatalogFile) -> Result<Self, CatalogError> {
        let bad = |msg: String| Err(CatalogError::Inconsistent(msg));
        let mut indicator_index = CodeMap::default();
        for (i, ind) in file.indicators.iter().enumerate() {
            if indicator_index.insert(ind.code.clone(), i).is_some() {
                return bad(format!("indicator {} is defined twice", ind.code));
            }
            if !(ind.max_value.is_finite() && ind.max_value > 0.0) {
                return bad(format!(
                    "indicator {} has max_value {}; it must be a positive number",
                    ind.code, ind.max_value
                ));
            }
            check_ranking(&ind.code, ind.ranking.as_ref())?;
        }
        let mut seen = HashSet::new();
        for ds in &file.data_sets {
            if !seen.insert(ds.code.clone()) {
                return bad(format!("data set {} is defined twice", ds.code));
            }
            if ds.indicators.is_empty() {
                return bad(format!("data set {} lists no indicators", ds.code));
            }
            if ds.grace_days > MAX_GRACE_DAYS {
                return bad(format!(
                    "data set {} has grace_days {}; at most {MAX_GRACE_DAYS} are accepted",
                    ds.code, ds.grace_days
                ));
            }
            if ds.reporting_levels.is_empty() {
                return bad(format!("data set {} names no reporting_levels", ds.code));
            }
            let mut in_set = HashSet::new();
            for item in &ds.indicators {
                if !indicator_index.contains_key(&item.indicator) {
                    return bad(format!(
                        "data set {} lists indicator {}, which is not defined",
                        ds.code, item.indicator
                    ));
                }
                if !in_set.insert(item.indicator.clone()) {
                    return bad(format!(
                        "data set {} lists indicator {} twice",
                        ds.code, item.indicator
                    ));
                }
            }
        }
        let mut rule_codes = HashSet::new();
        for rule in &file.rules {
            if !rule_codes.insert(rule.code.clone()) {
                return bad(format!("rule {} is defined twice", rule.code));
            }
            if rule.left.is_empty() || rule.right.is_empty() {
                return bad(format!("rule {} needs indicators on both sides", rule.code));
            }
            for code in rule.left.iter().chain(&rule.right) {
                if !indicator_index.contains_key(code) {
                    return bad(format!(
                        "rule {} names indicator {code}, which is not defined",
                        rule.code
                    ));
                }
            }
        }
        for d in &file.derived {
            if indicator_index.contains_key(&d.code) || !seen_derived(&file.derived, &d.code) {
                return bad(format!(
                    "derived indicator {} clashes with another indicator code",
                    d.code
                ));
            }
            for part in [&d.numerator, &d.denominator] {
                if !indicator_index.contains_key(part) {
                    return bad(format!(
                        "derived indicator {} uses {part}, which is not defined",
                        d.code
                    ));
                }
            }
            if !(d.factor.is_finite() && d.factor > 0.0) {
                return bad(format!(
                    "derived indicator {} has factor {}",
                    d.code, d.factor
                ));
            }
            check_ranking(&d.code, d.ranking.as_ref())?;
        }
        Ok(Catalog {
            data_sets: file.data_sets,
            indicators: file.indicators,
            rules: file.rules,
            derived: file.derived,
            indicator_index,
        })
    }

    pub fn data_sets(&self) -> &[DataSet] {
        &self.data_sets
    }

    pub fn data_set(&self, code: &str) -> Option<&DataSet> {
        self.data_sets.iter().find(|d| d.code.as_str() == code)
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    pub fn indicator(&self, code: &IndicatorCode) -> Option<&Indicator> {
        self.indicator_index.get(code).map(|&i| &self.indicators[i])
    }

    pub fn rules(&self) -> &[ConsistencyRule] {
        &self.rules
    }

    pub fn derived(&self) -> &[DerivedIndicator] {
        &self.derived
    }
}

/// True when `code` occurs exactly once among the derived indicators.
fn seen_derived(derived: &[DerivedIndicator], code: &IndicatorCode) -> bool {
    derived.iter().filter(|d| &d.code == code).count() == 1
}

fn check_ranking(code: &IndicatorCode, ranking: Option<&Ranking>) -> Result<(), CatalogError> {
    match ranking {
        Some(r) if !(r.weight.is_finite() && r.weight >= 0.0) => {
            Err(CatalogError::Inconsistent(format!(
                "indicator {code} has ranking weight {}; it must be ≥ 0",
                r.weight
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_loads_and_covers_the_domain_table() {
        let catalog = Catalog::embedded().expect("embedded catalog is valid");
        // One indicator per row of DOMAIN.md's table (and a few the rules need).
        for code in [
            "tiep_cong_dan",
            "don_tiep_nhan",
            "vu_viec_tiep_nhan",
            "don_thuoc_tham_quyen",
            "vu_viec_thuoc_tham_quyen",
            "don_chuyen",
            "vu_viec_chuyen",
            "hs_tiep_nhan",
            "hs_giai_quyet",
            "hs_dung_han",
            "doi_thoai",
            "hoi_nghi_tuyen_truyen",
            "nguoi_tham_du",
            "tai_lieu_phat_hanh",
            "mo_hinh_dang_ky",
            "mo_hinh_cong_nhan",
            "mo_hinh_tieu_bieu",
            "von_huy_dong",
            "dat_hien",
            "tro_giup_phap_ly",
        ] {
            let code = IndicatorCode::parse(code).expect("valid code");
            assert!(catalog.indicator(&code).is_some(), "{code} missing");
        }
        let monthly = catalog.data_set("DVCQ_THANG").expect("monthly data set");
        assert_eq!(monthly.period_type, PeriodType::Monthly);
        assert_eq!(monthly.calendar, Calendar::Decree09);
        assert!(
            catalog
                .derived()
                .iter()
                .any(|d| d.code.as_str() == "ty_le_dung_han")
        );
    }

    #[test]
    fn unknown_indicator_in_a_data_set_is_named() {
        let text = r#"
            [[indicators]]
            code = "a"
            name_vi = "A"
            name_en = "A"
            unit_of_measure = "lượt"
            value_type = "integer"
            aggregation = "sum"
            max_value = 10.0

            [[data_sets]]
            code = "DS"
            name_vi = "DS"
            name_en = "DS"
            period_type = "monthly"
            calendar = "months"
            grace_days = 3
            reporting_levels = ["district"]
            indicators = [{ indicator = "a" }, { indicator = "b" }]
        "#;
        let err = Catalog::from_toml(text).expect_err("b is not defined");
        assert!(err.to_string().contains("indicator b"), "{err}");
    }

    #[test]
    fn bad_toml_is_a_syntax_error() {
        let err = Catalog::from_toml("[[indicators]\ncode=").expect_err("broken");
        assert!(matches!(err, CatalogError::Syntax(_)));
    }
}
