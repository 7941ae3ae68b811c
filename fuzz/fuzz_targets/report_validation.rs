//! `validate` on reports built from arbitrary bytes (via `arbitrary`), against the embedded
//! catalog and the example units. Codes, periods and numbers are drawn either from what the
//! catalog knows (so reports get deep enough to pass) or as raw strings and floats (so they
//! break every rule in every way). Invariants:
//!
//! - never panics, and gives the same answer twice;
//! - Ok ⇒ the values are sorted by indicator without repeats, finite, non-negative (no -0.0),
//!   within their sanity bound and whole where the indicator counts; the report says what the
//!   draft said; the content hash is stable (same draft, values in another order, another
//!   submission id or client time, -0.0 for 0.0: same hash);
//! - Err ⇒ at least one violation, each with a field and a stable rule name, and an echoed
//!   value that is shortened, never the whole input.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, Days, NaiveDate};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tonghop::domain::validation::validate;
use tonghop::domain::{
    Catalog, DraftValue, Narrative, ReportDraft, UnitTree, ValidationLimits, ValueType,
};

static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::embedded().expect("the embedded catalog loads"));
static UNITS: LazyLock<UnitTree> =
    LazyLock::new(|| UnitTree::example().expect("the example units load"));

const PERIODS: &[&str] = &[
    "201909", "201912", "202001", "2019Q3", "2019Q4", "2019S1", "2019S2", "2019N9", "2019", "1990",
    "199001", "2100", "210012", "2100Q4",
];
const SUBMISSION_IDS: &[&str] = &["fuzz", "bs03:DVCQ_THANG:201909:r1", "a.b-c_d:e"];
const TEXTS: &[&str] = &[
    "Tổ chức 02 buổi tiếp công dân định kỳ.",
    "Dòng một\r\nDòng hai\n\tthụt lề",
    "Nguyễn Văn An",
    "'; DROP TABLE submissions; --",
    "\u{202e}\u{200b}",
];

/// A code: one the catalog or unit tree knows, or anything.
#[derive(Debug, Arbitrary)]
enum Code {
    Known(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Number {
    Whole(u32),
    Tenths(u16),
    Special(u8),
    Raw(f64),
}

#[derive(Debug, Arbitrary)]
enum Text {
    Empty,
    Known(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct Value {
    indicator: Code,
    value: Number,
    comment: Text,
}

#[derive(Debug, Arbitrary)]
struct Input {
    submission_id: Code,
    unit: Code,
    data_set: Code,
    period: Code,
    /// Start from every indicator of the data set at 0 (which every consistency rule allows).
    complete: bool,
    values: Vec<Value>,
    results: Text,
    shortcomings: Text,
    proposals: Text,
    prepared_by: Text,
    /// Days after 1 January 1990 of the day the report arrives.
    today: u16,
    /// Tighter limits than the defaults, to reach them with small inputs.
    limits: Option<(u8, u8, u8)>,
    client_time: Option<i32>,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn code(c: &Code, known: &[&str]) -> String {
    match c {
        Code::Known(i) => pick(known, *i).to_owned(),
        Code::Raw(s) => s.clone(),
    }
}

fn text(t: &Text) -> String {
    match t {
        Text::Empty => String::new(),
        Text::Known(i) => pick(TEXTS, *i).to_owned(),
        Text::Raw(s) => s.clone(),
    }
}

fn number(n: &Number) -> f64 {
    match *n {
        Number::Whole(v) => f64::from(v),
        Number::Tenths(v) => f64::from(v) / 10.0,
        Number::Special(i) => [
            0.0,
            -0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e15,
            0.5,
        ][usize::from(i) % 10],
        Number::Raw(v) => v,
    }
}

fn build(input: &Input) -> (ReportDraft, ValidationLimits, NaiveDate) {
    let catalog = &*CATALOG;
    let units: Vec<&str> = UNITS.all().iter().map(|u| u.code.as_str()).collect();
    let data_sets: Vec<&str> = catalog
        .data_sets()
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    let indicators: Vec<&str> = catalog
        .indicators()
        .iter()
        .map(|i| i.code.as_str())
        .collect();

    let data_set = code(&input.data_set, &data_sets);
    let mut values: Vec<DraftValue> = match catalog.data_set(&data_set) {
        Some(ds) if input.complete => ds
            .indicators
            .iter()
            .map(|i| DraftValue {
                indicator: i.indicator.to_string(),
                value: 0.0,
                comment: String::new(),
            })
            .collect(),
        _ => Vec::new(),
    };
    // Bounded so one input stays fast; the limit on values is 500 by default.
    for v in input.values.iter().take(600) {
        let indicator = code(&v.indicator, &indicators);
        let value = number(&v.value);
        let comment = text(&v.comment);
        match values.iter_mut().find(|d| d.indicator == indicator) {
            // A known indicator changes the value already there (no duplicate).
            Some(existing) if matches!(v.indicator, Code::Known(_)) => {
                existing.value = value;
                existing.comment = comment;
            }
            _ => values.push(DraftValue {
                indicator,
                value,
                comment,
            }),
        }
    }
    let draft = ReportDraft {
        submission_id: code(&input.submission_id, SUBMISSION_IDS),
        unit_code: code(&input.unit, &units),
        data_set,
        period: code(&input.period, PERIODS),
        values,
        narrative: Narrative {
            results: text(&input.results),
            shortcomings: text(&input.shortcomings),
            proposals: text(&input.proposals),
        },
        prepared_by: text(&input.prepared_by),
        client_time: input
            .client_time
            .and_then(|s| DateTime::from_timestamp(i64::from(s), 0)),
    };
    let limits = match input.limits {
        None => ValidationLimits::default(),
        Some((text, short, values)) => ValidationLimits {
            max_text_chars: usize::from(text),
            max_short_text_chars: usize::from(short),
            max_values: usize::from(values),
        },
    };
    let today = NaiveDate::from_ymd_opt(1990, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(u64::from(input.today))))
        .expect("within chrono's range");
    (draft, limits, today)
}

fuzz_target!(|input: Input| {
    let (draft, limits, today) = build(&input);
    let catalog = &*CATALOG;
    let units = &*UNITS;
    let first = validate(&draft, catalog, units, &limits, today);
    let second = validate(&draft, catalog, units, &limits, today);

    match (first, second) {
        (Ok(checked), Ok(again)) => {
            let report = &checked.report;
            assert_eq!(report, &again.report, "deterministic");
            assert_eq!(report.submission_id.as_str(), draft.submission_id);
            assert_eq!(report.unit.as_str(), draft.unit_code);
            assert_eq!(report.data_set.as_str(), draft.data_set);
            assert_eq!(report.period.to_string(), draft.period);
            assert_eq!(report.narrative, draft.narrative);
            assert_eq!(report.prepared_by, draft.prepared_by);
            assert_eq!(report.values.len(), draft.values.len(), "every value kept");
            assert!(report.values.len() <= limits.max_values);
            assert!(
                report
                    .values
                    .windows(2)
                    .all(|w| w[0].indicator < w[1].indicator),
                "values sorted without repeats: {:?}",
                report.values
            );
            for v in &report.values {
                let ind = catalog.indicator(&v.indicator).expect("known indicator");
                assert!(v.value.is_finite(), "{v:?}");
                assert!(v.value >= 0.0 && !v.value.is_sign_negative(), "{v:?}");
                assert!(v.value <= ind.max_value, "{v:?} over {}", ind.max_value);
                if ind.value_type == ValueType::Integer {
                    assert_eq!(v.value.fract(), 0.0, "{v:?}");
                }
            }
            assert!(checked.window.start <= today, "not a future period");
            assert!(checked.window.start <= checked.window.end);
            assert!(checked.deadline.date_naive() >= checked.window.end);

            // Content hash: stable, and blind to value order, submission id, client time and
            // the sign of zero.
            let hash = report.content_hash();
            assert_eq!(hash.len(), 64);
            assert_eq!(hash, again.report.content_hash());
            let mut other = draft.clone();
            other.values.reverse();
            other.submission_id = "fuzz.other-id".into();
            other.client_time = None;
            for v in &mut other.values {
                if v.value == 0.0 {
                    v.value = -v.value;
                }
            }
            let shuffled = validate(&other, catalog, units, &limits, today)
                .unwrap_or_else(|v| panic!("the same report reordered is refused: {v:?}"));
            assert_eq!(
                shuffled.report.content_hash(),
                hash,
                "content hash is stable"
            );
        }
        (Err(violations), Err(again)) => {
            assert_eq!(violations, again, "deterministic");
            assert!(
                !violations.is_empty(),
                "an Err lists at least one violation"
            );
            for v in &violations {
                assert!(!v.field.is_empty(), "{v:?}");
                assert!(!v.rule.is_empty(), "{v:?}");
                assert!(
                    v.rule
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
                    "stable rule name: {v:?}"
                );
                assert!(!v.description.is_empty(), "{v:?}");
                // 80 characters and "… (N characters)".
                assert!(
                    v.value.chars().count() <= 110,
                    "echoed value not shortened: {v:?}"
                );
            }
        }
        (first, second) => panic!("different answers: {first:?} then {second:?}"),
    }
});
