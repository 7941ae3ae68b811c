//! The synthetic province: its catalog is valid, its months end in December, and its reports
//! pass validation.

// The reporting units come from a scenario, as in a run, so the test sees what is loaded.
use super::super::{Kind, Scenario};
use super::*;
use crate::domain::{Catalog, DraftValue, ReportDraft, ValidationLimits};
use std::sync::Arc;

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
