//! End-to-end tests of report validation over the real gRPC socket and a real SQLite file.
//!
//! Every rule of `domain::validation` is broken at least once, one way at a time, starting from
//! a complete valid report. Each rejection must come back as INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming the field, the stable rule name and the offending value or
//! indicator, and must leave the store exactly as it was: same dump, same change counter, same
//! bytes in the SQLite file and its WAL.
//!
//! This file holds the harness (the starting report, how a case is built and checked); the
//! broken reports, by family of rules, are in `cases`, and the tests in `rules`.

mod cases;
#[path = "../common/mod.rs"]
mod common;
mod rules;

use common::*;
use tonghop::config::Settings;
use tonghop::domain::{DraftValue, ReceiptStatus, ReportDraft, ValidationLimits, Violation};
use tonghop::grpc::client::{AggregatorClient, SubmitFailure};

/// Every stable rule name `domain::validation` can produce (consistency rules one per catalog
/// rule code).
const ALL_RULES: &[&str] = &[
    "invalid_code",
    "unknown_unit",
    "unknown_data_set",
    "unit_not_expected",
    "period_malformed",
    "period_type_mismatch",
    "period_in_future",
    "too_many_values",
    "duplicate_indicator",
    "unknown_indicator",
    "not_finite",
    "negative_value",
    "fractional_value",
    "over_sanity_bound",
    "required_indicator_missing",
    "consistency.petitions_split",
    "consistency.cases_split",
    "consistency.cases_not_above_petitions",
    "consistency.recognised_within_registered",
    "consistency.exemplary_within_recognised",
    "consistency.registered_split",
    "consistency.on_time_within_resolved",
    "text_too_long",
    "control_character",
];

/// The unit and period rejected reports claim to be for (a district, a closed month).
const UNIT: &str = "BS02";
const PERIOD: &str = "201909";

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// The valid report every case starts from.
fn base() -> ReportDraft {
    valid_report("base", UNIT, PERIOD)
}

/// Position of `indicator` in the valid report (mutations that change a value keep it there).
fn index_of(indicator: &str) -> usize {
    base()
        .values
        .iter()
        .position(|v| v.indicator == indicator)
        .unwrap_or_else(|| panic!("{indicator} is part of valid_report"))
}

/// `values[i].value` of an indicator of the valid report.
fn value_field(indicator: &str) -> String {
    format!("values[{}].value", index_of(indicator))
}

/// `values[i].<part>` of an indicator of the valid report.
fn field_of(indicator: &str, part: &str) -> String {
    format!("values[{}].{part}", index_of(indicator))
}

/// The field of a value appended after those of the valid report.
fn appended_field(suffix: &str) -> String {
    format!("values[{}].{suffix}", base().values.len())
}

fn push_value(draft: &mut ReportDraft, indicator: &str, value: f64) {
    draft.values.push(DraftValue {
        indicator: indicator.into(),
        value,
        comment: String::new(),
    });
}

fn limits() -> ValidationLimits {
    ValidationLimits::default()
}

/// A text of `chars` characters, each of them three bytes long in UTF-8, so a limit counted in
/// bytes instead of characters would show.
fn long_text(chars: usize) -> String {
    "ệ".repeat(chars)
}

/// Starts an aggregator and stores one valid report, so later comparisons are made against a
/// store that is not empty.
async fn app_with_one_report() -> (TestApp, AggregatorClient, StoreState) {
    seed(spawn_app(Backend::Sqlite).await).await
}

async fn seed(app: TestApp) -> (TestApp, AggregatorClient, StoreState) {
    let mut client = app.client().await;
    let receipt = client
        .submit(&valid_report("seed:BS01:201909", "BS01", PERIOD))
        .await
        .expect("the seed report is valid and accepted");
    assert_eq!(
        receipt.status,
        ReceiptStatus::New,
        "seed receipt: {receipt:?}"
    );
    let state = store_state(&app).await;
    assert_eq!(state.change_counter, 1, "one revision stored by the seed");
    assert!(
        state.dump.contains("seed:BS01:201909"),
        "dump shows the seed:\n{}",
        state.dump
    );
    (app, client, state)
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {} [{}] {}", v.field, v.rule, v.description))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One way of breaking the valid report and what the aggregator must say about it.
struct Case {
    name: &'static str,
    mutate: fn(&mut ReportDraft),
    field: String,
    rule: &'static str,
    /// Substrings the violation's description must contain (value, indicator, limit...).
    mentions: Vec<String>,
    /// Whether this must be the only violation (the mutation breaks one rule only).
    alone: bool,
}

fn case(
    name: &'static str,
    mutate: fn(&mut ReportDraft),
    field: impl Into<String>,
    rule: &'static str,
    mentions: &[&str],
) -> Case {
    Case {
        name,
        mutate,
        field: field.into(),
        rule,
        mentions: mentions.iter().map(|m| (*m).to_owned()).collect(),
        alone: true,
    }
}

impl Case {
    fn not_alone(mut self) -> Self {
        self.alone = false;
        self
    }

    fn mentioning(mut self, more: impl IntoIterator<Item = String>) -> Self {
        self.mentions.extend(more);
        self
    }

    fn draft(&self, n: usize) -> ReportDraft {
        let mut draft = base();
        draft.submission_id = format!("reject:{UNIT}:{PERIOD}:{n}");
        (self.mutate)(&mut draft);
        draft
    }

    /// Every problem with the failure, empty when it is what the case expects.
    fn check(&self, failure: &SubmitFailure) -> Vec<String> {
        let mut problems = Vec::new();
        if failure.code != tonic::Code::InvalidArgument {
            problems.push(format!(
                "code {:?} instead of InvalidArgument ({})",
                failure.code, failure.message
            ));
        }
        if failure.retryable {
            problems.push("an invalid report is marked retryable".into());
        }
        let matching: Vec<&Violation> = failure
            .violations
            .iter()
            .filter(|v| v.field == self.field && v.rule == self.rule)
            .collect();
        match matching.first() {
            None => problems.push(format!(
                "no violation with field {:?} and rule {:?}; got:\n{}",
                self.field,
                self.rule,
                describe(&failure.violations)
            )),
            Some(v) => {
                for mention in &self.mentions {
                    if !v.description.contains(mention.as_str()) {
                        problems.push(format!(
                            "description of {} [{}] does not mention {mention:?}: {:?}",
                            v.field, v.rule, v.description
                        ));
                    }
                }
                if !v.description.contains("(value: ") {
                    problems.push(format!(
                        "description does not echo the value: {:?}",
                        v.description
                    ));
                }
            }
        }
        if self.alone && failure.violations.len() != 1 {
            problems.push(format!(
                "expected this violation alone, got {}:\n{}",
                failure.violations.len(),
                describe(&failure.violations)
            ));
        }
        // A long list is cut in the error details (an HTTP/2 trailer has a size limit); the
        // last entry then says how many more there were, and the message gives the full count.
        let listed = match failure.violations.last() {
            Some(v) if v.rule == "more_violations" => {
                let more: usize = v
                    .description
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if more == 0 {
                    problems.push(format!("truncation entry without a count: {v:?}"));
                }
                failure.violations.len() - 1 + more
            }
            _ => failure.violations.len(),
        };
        let count = format!("{listed} problem(s)");
        if !failure.message.contains(&count) {
            problems.push(format!(
                "message {:?} does not say {count:?}",
                failure.message
            ));
        }
        problems
    }
}

/// Submits every case on one aggregator; each must be rejected as described and change
/// nothing in the store. Reports all failing cases at once.
async fn assert_all_rejected(cases: Vec<Case>) {
    assert_all_rejected_on(spawn_app(Backend::Sqlite).await, cases).await;
}

async fn assert_all_rejected_on(app: TestApp, cases: Vec<Case>) {
    let (app, mut client, before) = seed(app).await;
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let draft = case.draft(n);
        match client.submit(&draft).await {
            Ok(receipt) => failures.push(format!("{}: accepted with {receipt:?}", case.name)),
            Err(failure) => {
                for problem in case.check(&failure) {
                    failures.push(format!("{}: {problem}", case.name));
                }
            }
        }
        let after = store_state(&app).await;
        if after.change_counter != before.change_counter {
            failures.push(format!(
                "{}: change counter moved from {} to {}",
                case.name, before.change_counter, after.change_counter
            ));
        }
        if after.dump != before.dump {
            failures.push(format!(
                "{}: store dump changed\nbefore:\n{}\nafter:\n{}",
                case.name, before.dump, after.dump
            ));
        }
        if after.file_digest != before.file_digest {
            failures.push(format!("{}: SQLite file bytes changed", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}
