//! Checks a `ReportDraft` against the catalog and the unit tree, once, at the edge. Every
//! problem is collected (a district clerk fixing a report wants the whole list, not one error
//! per round trip), each naming the field, the value received and the rule broken.

use super::CodeMap;
use super::catalog::{Catalog, Comparison, ValueType};
use super::codes::{DataSetCode, IndicatorCode, SubmissionId, UnitCode};
use super::period::{self, DateWindow, PeriodId};
use super::report::{DataValue, Narrative, Report, ReportDraft};
use super::units::UnitTree;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashSet;

/// One broken rule. `rule` is a stable name clients may match on; `description` is for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub field: String,
    pub value: String,
    pub rule: String,
    pub description: String,
}

impl Violation {
    fn new(
        field: impl Into<String>,
        value: impl AsRef<str>,
        rule: &str,
        description: String,
    ) -> Self {
        Violation {
            field: field.into(),
            value: shorten(value.as_ref()),
            rule: rule.to_owned(),
            description,
        }
    }
}

/// Values echoed back in errors are cut, so a 1 MB string does not come back as a 1 MB error.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head}… ({} characters)", value.chars().count())
    }
}

/// Size limits on what a report may carry, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ValidationLimits {
    /// Characters per narrative section.
    pub max_text_chars: usize,
    /// Characters in a value's comment or in `prepared_by`.
    pub max_short_text_chars: usize,
    /// Values in one report.
    pub max_values: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            max_text_chars: 20_000,
            max_short_text_chars: 500,
            max_values: 500,
        }
    }
}

/// A report that passed, with what the receipt needs to say about it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub report: Report,
    pub window: DateWindow,
    pub deadline: DateTime<Utc>,
    pub warnings: Vec<String>,
}

/// Checks everything and returns either the typed report or every violation found.
/// `today` is the Vietnamese calendar date at reception (a report for a period that has not
/// started yet is refused).
pub fn validate(
    draft: &ReportDraft,
    catalog: &Catalog,
    units: &UnitTree,
    limits: &ValidationLimits,
    today: NaiveDate,
) -> Result<Checked, Vec<Violation>> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();

    let submission_id = match SubmissionId::parse(&draft.submission_id) {
        Ok(id) => Some(id),
        Err(e) => {
            out.push(Violation::new(
                "submission_id",
                &draft.submission_id,
                "invalid_code",
                format!("submission id {e}"),
            ));
            None
        }
    };

    let unit = match UnitCode::parse(&draft.unit_code) {
        Err(e) => {
            out.push(Violation::new(
                "unit_code",
                &draft.unit_code,
                "invalid_code",
                format!("unit code {e}"),
            ));
            None
        }
        Ok(code) => match units.get(&code) {
            Some(unit) => Some(unit),
            None => {
                out.push(Violation::new(
                    "unit_code",
                    &draft.unit_code,
                    "unknown_unit",
                    format!("no reporting unit {code} in the unit tree"),
                ));
                None
            }
        },
    };

    let data_set = match DataSetCode::parse(&draft.data_set) {
        Err(e) => {
            out.push(Violation::new(
                "data_set",
                &draft.data_set,
                "invalid_code",
                format!("data set code {e}"),
            ));
            None
        }
        Ok(code) => match catalog.data_set(code.as_str()) {
            Some(ds) => Some(ds),
            None => {
                let known: Vec<&str> = catalog
                    .data_sets()
                    .iter()
                    .map(|d| d.code.as_str())
                    .collect();
                out.push(Violation::new(
                    "data_set",
                    &draft.data_set,
                    "unknown_data_set",
                    format!(
                        "no data set {code} in the catalog (known: {})",
                        known.join(", ")
                    ),
                ));
                None
            }
        },
    };

    if let (Some(unit), Some(ds)) = (unit, data_set)
        && !ds.reporting_levels.contains(&unit.level)
    {
        out.push(Violation::new(
            "unit_code",
            &draft.unit_code,
            "unit_not_expected",
            format!(
                "unit {} is a {}; data set {} is reported by level {}",
                unit.code,
                unit.level,
                ds.code,
                ds.reporting_levels.join(", ")
            ),
        ));
    }

    let mut window_and_deadline = None;
    let period = match PeriodId::parse(&draft.period) {
        Err(e) => {
            out.push(Violation::new(
                "period",
                &draft.period,
                "period_malformed",
                format!("period {:?} {e}", shorten(&draft.period)),
            ));
            None
        }
        Ok(p) => {
            if let Some(ds) = data_set {
                if p.period_type() != ds.period_type {
                    out.push(Violation::new(
                        "period",
                        &draft.period,
                        "period_type_mismatch",
                        format!(
                            "period {p} is {}; data set {} takes {} periods such as {}",
                            p.period_type(),
                            ds.code,
                            ds.period_type,
                            ds.period_type.example()
                        ),
                    ));
                } else {
                    let window = p.window(ds.calendar);
                    if window.start > today {
                        out.push(Violation::new(
                            "period",
                            &draft.period,
                            "period_in_future",
                            format!(
                                "period {p} starts on {} ({} calendar); today is {today}",
                                window.start,
                                ds.calendar.as_str()
                            ),
                        ));
                    } else if window.end >= today {
                        warnings.push(format!(
                            "period {p} has not closed yet: its data window ends on {}",
                            window.end
                        ));
                    }
                    window_and_deadline =
                        Some((window, period::deadline(window.end, ds.grace_days)));
                }
            }
            Some(p)
        }
    };

    // Past the limit the values are not looked at one by one: the answer would be hundreds of
    // violations about a report that is wrong as a whole.
    let too_many_values = draft.values.len() > limits.max_values;
    if too_many_values {
        out.push(Violation::new(
            "values",
            draft.values.len().to_string(),
            "too_many_values",
            format!(
                "report has {} values; at most {} are accepted",
                draft.values.len(),
                limits.max_values
            ),
        ));
    }
    let checked_values = if too_many_values {
        &[][..]
    } else {
        &draft.values[..]
    };

    // Index of the first occurrence of each indicator, for consistency rules and duplicates,
    // keyed by the code as sent (a code that parses is exactly that text), so no key is copied.
    let mut seen: CodeMap<&str, usize> = CodeMap::default();
    let mut values = Vec::with_capacity(draft.values.len());
    for (i, raw) in checked_values.iter().enumerate() {
        // Field names are spelled out only for a problem: a valid report of 20 values would
        // otherwise format some 80 strings nobody reads, on the ingest hot path.
        let field = || format!("values[{i}]");
        let code = match IndicatorCode::parse(&raw.indicator) {
            Ok(code) => code,
            Err(e) => {
                out.push(Violation::new(
                    format!("{}.indicator", field()),
                    &raw.indicator,
                    "invalid_code",
                    format!("indicator code {e}"),
                ));
                continue;
            }
        };
        if let Some(first) = seen.get(raw.indicator.as_str()) {
            out.push(Violation::new(
                format!("{}.indicator", field()),
                &raw.indicator,
                "duplicate_indicator",
                format!("indicator {code} is already given at values[{first}]"),
            ));
            continue;
        }
        seen.insert(raw.indicator.as_str(), i);
        let indicator = catalog.indicator(&code);
        let in_data_set = data_set.is_none_or(|ds| ds.indicator(&code).is_some());
        let Some(indicator) = indicator.filter(|_| in_data_set) else {
            let description = match (indicator, data_set) {
                (Some(_), Some(ds)) => {
                    format!("indicator {code} is not part of data set {}", ds.code)
                }
                _ => format!("no indicator {code} in the catalog"),
            };
            out.push(Violation::new(
                format!("{}.indicator", field()),
                &raw.indicator,
                "unknown_indicator",
                description,
            ));
            continue;
        };
        let value = raw.value;
        let problem = if !value.is_finite() {
            Some(("not_finite", format!("{code} must be a finite number")))
        } else if value < 0.0 {
            Some(("negative_value", format!("{code} must not be negative")))
        } else if indicator.value_type == ValueType::Integer && value.fract() != 0.0 {
            Some((
                "fractional_value",
                format!("{code} is counted in whole {}", indicator.unit_of_measure),
            ))
        } else if value > indicator.max_value {
            Some((
                "over_sanity_bound",
                format!(
                    "{code} is above its sanity bound of {} {}: check for a typing error",
                    indicator.max_value, indicator.unit_of_measure
                ),
            ))
        } else {
            None
        };
        if let Some((rule, description)) = problem {
            out.push(Violation::new(
                format!("{}.value", field()),
                value.to_string(),
                rule,
                description,
            ));
            continue;
        }
        if !raw.comment.is_empty() {
            check_text(
                &mut out,
                &format!("{}.comment", field()),
                &raw.comment,
                limits.max_short_text_chars,
            );
        }
        values.push(DataValue {
            indicator: code,
            // -0.0 and 0.0 are the same count; keep one spelling so content hashes agree.
            value: if value == 0.0 { 0.0 } else { value },
            comment: (!raw.comment.is_empty()).then(|| raw.comment.clone()),
        });
    }

    if let Some(ds) = data_set.filter(|_| !too_many_values) {
        let missing: Vec<&str> = ds
            .indicators
            .iter()
            .filter(|i| i.required && !seen.contains_key(i.indicator.as_str()))
            .map(|i| i.indicator.as_str())
            .collect();
        for code in missing {
            out.push(Violation::new(
                "values",
                "",
                "required_indicator_missing",
                format!("data set {} requires indicator {code}", ds.code),
            ));
        }
    }

    // Consistency rules compare values that are themselves valid; a rule touching an invalid
    // or absent value is skipped (the value's own violation says what is wrong with it).
    {
        let by_code: CodeMap<&str, f64> = values
            .iter()
            .map(|v| (v.indicator.as_str(), v.value))
            .collect();
        for rule in catalog.rules() {
            let sum = |side: &[IndicatorCode]| -> Option<f64> {
                side.iter().map(|c| by_code.get(c.as_str()).copied()).sum()
            };
            let (Some(left), Some(right)) = (sum(&rule.left), sum(&rule.right)) else {
                continue;
            };
            let holds = match rule.comparison {
                Comparison::Le => left <= right,
                Comparison::Eq => left == right,
            };
            if !holds {
                let first = &rule.left[0];
                let index = seen.get(first.as_str()).copied().unwrap_or(0);
                let names = |side: &[IndicatorCode]| {
                    side.iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(" + ")
                };
                let sign = match rule.comparison {
                    Comparison::Le => "≤",
                    Comparison::Eq => "=",
                };
                out.push(Violation::new(
                    format!("values[{index}].value"),
                    format!(
                        "{} = {left} vs {} = {right}",
                        names(&rule.left),
                        names(&rule.right)
                    ),
                    &format!("consistency.{}", rule.code),
                    format!(
                        "{} {sign} {} must hold: {}",
                        names(&rule.left),
                        names(&rule.right),
                        rule.description_en
                    ),
                ));
            }
        }
    }

    check_text(
        &mut out,
        "narrative.results",
        &draft.narrative.results,
        limits.max_text_chars,
    );
    check_text(
        &mut out,
        "narrative.shortcomings",
        &draft.narrative.shortcomings,
        limits.max_text_chars,
    );
    check_text(
        &mut out,
        "narrative.proposals",
        &draft.narrative.proposals,
        limits.max_text_chars,
    );
    check_text(
        &mut out,
        "prepared_by",
        &draft.prepared_by,
        limits.max_short_text_chars,
    );

    match (submission_id, unit, data_set, period, window_and_deadline) {
        (Some(submission_id), Some(unit), Some(ds), Some(period), Some((window, deadline)))
            if out.is_empty() =>
        {
            values.sort_by(|a, b| a.indicator.cmp(&b.indicator));
            Ok(Checked {
                report: Report {
                    submission_id,
                    unit: unit.code.clone(),
                    data_set: ds.code.clone(),
                    period,
                    values,
                    narrative: Narrative {
                        results: draft.narrative.results.clone(),
                        shortcomings: draft.narrative.shortcomings.clone(),
                        proposals: draft.narrative.proposals.clone(),
                    },
                    prepared_by: draft.prepared_by.clone(),
                    client_time: draft.client_time,
                },
                window,
                deadline,
                warnings,
            })
        }
        _ => {
            // Every path that leaves a part missing pushed a violation for it.
            debug_assert!(!out.is_empty());
            Err(out)
        }
    }
}

fn check_text(out: &mut Vec<Violation>, field: &str, text: &str, max_chars: usize) {
    let len = text.chars().count();
    if len > max_chars {
        out.push(Violation::new(
            field,
            text,
            "text_too_long",
            format!("{field} has {len} characters; at most {max_chars} are accepted"),
        ));
    }
    // Line breaks and tabs belong in a narrative; other control characters are corruption
    // (or an attempt to forge log lines) and are refused.
    // Bidirectional overrides and isolates (U+202A-E, U+2066-9) are format characters, not
    // controls, but they make text display as something other than what it says.
    if let Some(c) = text.chars().find(|c| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }) {
        out.push(Violation::new(
            field,
            text,
            "control_character",
            format!(
                "{field} contains the control character U+{:04X}",
                u32::from(c)
            ),
        ));
    }
}

/// The set of indicator codes a report must carry, for documentation and clients.
pub fn required_indicators<'a>(catalog: &'a Catalog, data_set: &str) -> HashSet<&'a str> {
    catalog
        .data_set(data_set)
        .map(|ds| {
            ds.indicators
                .iter()
                .filter(|i| i.required)
                .map(|i| i.indicator.as_str())
                .collect()
        })
        .unwrap_or_default()
}
