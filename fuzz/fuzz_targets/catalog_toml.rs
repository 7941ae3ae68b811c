//! `Catalog::from_toml` on arbitrary text. The catalog is configuration a province edits by
//! hand: loading it must never panic, and a catalog that loads must be usable as it is: every
//! code it mentions resolves, and every data set can take a report (window, deadline and
//! validation of a report that gives each of its indicators) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tonghop::domain::period::{self, MAX_YEAR, MIN_YEAR};
use tonghop::domain::validation::{required_indicators, validate};
use tonghop::domain::{
    Catalog, DraftValue, PeriodId, PeriodType, ReportDraft, UnitTree, ValidationLimits,
};

fn period_of(kind: PeriodType, year: i32) -> PeriodId {
    match kind {
        PeriodType::Monthly => PeriodId::Month { year, month: 12 },
        PeriodType::Quarterly => PeriodId::Quarter { year, quarter: 4 },
        PeriodType::SixMonthly => PeriodId::Half { year, half: 2 },
        PeriodType::NineMonthly => PeriodId::NineMonths { year },
        PeriodType::Yearly => PeriodId::Year { year },
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(catalog) = Catalog::from_toml(text) else {
        return;
    };

    for ind in catalog.indicators() {
        let found = catalog.indicator(&ind.code).expect("indexed indicator");
        assert_eq!(found.code, ind.code);
        assert!(
            ind.max_value.is_finite() && ind.max_value > 0.0,
            "{}",
            ind.code
        );
    }
    for rule in catalog.rules() {
        assert!(
            !rule.left.is_empty() && !rule.right.is_empty(),
            "{}",
            rule.code
        );
        for code in rule.left.iter().chain(&rule.right) {
            assert!(
                catalog.indicator(code).is_some(),
                "rule {} names {code}",
                rule.code
            );
        }
    }
    for d in catalog.derived() {
        assert!(
            catalog.indicator(&d.code).is_none(),
            "derived {} clashes",
            d.code
        );
        assert!(catalog.indicator(&d.numerator).is_some());
        assert!(catalog.indicator(&d.denominator).is_some());
        assert!(d.factor.is_finite() && d.factor > 0.0);
    }

    let units = UnitTree::example().expect("the example units load");
    for ds in catalog.data_sets() {
        let found = catalog
            .data_set(ds.code.as_str())
            .expect("data set by code");
        assert_eq!(found.code, ds.code);
        assert!(!ds.indicators.is_empty() && !ds.reporting_levels.is_empty());
        for item in &ds.indicators {
            assert!(catalog.indicator(&item.indicator).is_some());
            assert!(ds.indicator(&item.indicator).is_some());
        }
        let required = required_indicators(&catalog, ds.code.as_str());
        assert!(required.len() <= ds.indicators.len());

        // The first and the last period the aggregator accepts: their deadlines exist.
        for year in [MIN_YEAR, MAX_YEAR] {
            let p = period_of(ds.period_type, year);
            let window = p.window(ds.calendar);
            let due = period::deadline(window.end, ds.grace_days);
            assert!(due.date_naive() >= window.end, "{}: {p} due {due}", ds.code);
        }

        // A report giving every indicator of the data set, from a unit of the first level
        // that reports it (or of a level the example units do not have).
        let unit = units
            .all()
            .iter()
            .find(|u| ds.reporting_levels.contains(&u.level))
            .unwrap_or(units.root());
        let draft = ReportDraft {
            submission_id: "fuzz:catalog".into(),
            unit_code: unit.code.to_string(),
            data_set: ds.code.to_string(),
            period: period_of(ds.period_type, 2019).to_string(),
            values: ds
                .indicators
                .iter()
                .map(|i| DraftValue {
                    indicator: i.indicator.to_string(),
                    value: 1.0,
                    comment: String::new(),
                })
                .collect(),
            ..ReportDraft::default()
        };
        let today = period::date(2100, 12, 31);
        match validate(
            &draft,
            &catalog,
            &units,
            &ValidationLimits::default(),
            today,
        ) {
            Ok(checked) => {
                assert_eq!(checked.report.values.len(), ds.indicators.len());
                assert!(!checked.report.content_hash().is_empty());
            }
            Err(violations) => assert!(!violations.is_empty()),
        }
    }
});
