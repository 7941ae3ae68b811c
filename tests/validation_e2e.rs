//! End-to-end tests of report validation over the real gRPC socket and a real SQLite file.
//!
//! Every rule of `domain::validation` is broken at least once, one way at a time, starting from
//! a complete valid report. Each rejection must come back as INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming the field, the stable rule name and the offending value or
//! indicator, and must leave the store exactly as it was: same dump, same change counter, same
//! bytes in the SQLite file and its WAL.

mod common;

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

// ------------------------------------------------------------------------------------------
// The cases, by family
// ------------------------------------------------------------------------------------------

fn identity_cases() -> Vec<Case> {
    vec![
        case(
            "submission id with a space",
            |d| d.submission_id = "bs02 sept".into(),
            "submission_id",
            "invalid_code",
            &["bs02 sept", "' '"],
        ),
        case(
            "empty submission id",
            |d| d.submission_id = String::new(),
            "submission_id",
            "invalid_code",
            &["empty"],
        ),
        case(
            "unit code with a quote",
            |d| d.unit_code = "BS02'--".into(),
            "unit_code",
            "invalid_code",
            &["BS02'--"],
        ),
        case(
            "unknown unit",
            |d| d.unit_code = "XX99".into(),
            "unit_code",
            "unknown_unit",
            &["XX99"],
        ),
        case(
            "province reporting a district data set",
            |d| d.unit_code = "BS".into(),
            "unit_code",
            "unit_not_expected",
            &["BS", "province", "district", "DVCQ_THANG"],
        ),
        case(
            "data set code with a space",
            |d| d.data_set = "DVCQ THANG".into(),
            "data_set",
            "invalid_code",
            &["DVCQ THANG"],
        ),
        case(
            "unknown data set",
            |d| d.data_set = "NOPE".into(),
            "data_set",
            "unknown_data_set",
            // Names the code received and lists the ones that exist.
            &["NOPE", "DVCQ_THANG", "DVCQ_NAM", "MOT_CUA_THANG"],
        ),
    ]
}

fn period_cases() -> Vec<Case> {
    vec![
        case(
            "period with a dash",
            |d| d.period = "2019-09".into(),
            "period",
            "period_malformed",
            &["2019-09"],
        ),
        case(
            "month 13",
            |d| d.period = "201913".into(),
            "period",
            "period_malformed",
            &["201913", "13"],
        ),
        case(
            "empty period",
            |d| d.period = String::new(),
            "period",
            "period_malformed",
            &["(value: \"\")"],
        ),
        case(
            "quarter for a monthly data set",
            |d| d.period = "2019Q3".into(),
            "period",
            "period_type_mismatch",
            &["2019Q3", "monthly", "quarterly", "DVCQ_THANG"],
        ),
        case(
            "year for a monthly data set",
            |d| d.period = "2019".into(),
            "period",
            "period_type_mismatch",
            &["2019", "yearly", "monthly"],
        ),
        case(
            "period far in the future",
            |d| d.period = "209912".into(),
            "period",
            "period_in_future",
            &["209912"],
        ),
    ]
}

fn value_cases() -> Vec<Case> {
    let first_cong_dan = format!("values[{}]", index_of("tiep_cong_dan"));
    vec![
        case(
            "duplicate indicator",
            |d| push_value(d, "tiep_cong_dan", 2.0),
            appended_field("indicator"),
            "duplicate_indicator",
            &["tiep_cong_dan"],
        )
        // Points at the first occurrence.
        .mentioning([first_cong_dan]),
        case(
            "unknown indicator",
            |d| push_value(d, "tiep_dan", 1.0),
            appended_field("indicator"),
            "unknown_indicator",
            &["tiep_dan"],
        ),
        case(
            "indicator code with a slash",
            |d| push_value(d, "../tiep_dan", 1.0),
            appended_field("indicator"),
            "invalid_code",
            &["../tiep_dan", "'/'"],
        ),
        case(
            "indicators of another data set",
            |d| d.data_set = "MOT_CUA_THANG".into(),
            field_of("tiep_cong_dan", "indicator"),
            "unknown_indicator",
            &["tiep_cong_dan", "not part of data set MOT_CUA_THANG"],
        )
        // Every DVCQ-only indicator is named, not just the first.
        .not_alone(),
        case(
            "NaN",
            |d| set_value(d, "tiep_cong_dan", f64::NAN),
            value_field("tiep_cong_dan"),
            "not_finite",
            &["tiep_cong_dan", "NaN"],
        ),
        case(
            "plus infinity",
            |d| set_value(d, "hs_tiep_nhan", f64::INFINITY),
            value_field("hs_tiep_nhan"),
            "not_finite",
            &["hs_tiep_nhan", "inf"],
        ),
        case(
            "minus infinity",
            |d| set_value(d, "dat_hien", f64::NEG_INFINITY),
            value_field("dat_hien"),
            "not_finite",
            &["dat_hien", "-inf"],
        ),
        case(
            "negative count",
            |d| set_value(d, "tiep_cong_dan", -1.0),
            value_field("tiep_cong_dan"),
            "negative_value",
            &["tiep_cong_dan", "\"-1\""],
        ),
        case(
            "negative decimal",
            |d| set_value(d, "dat_hien", -0.5),
            value_field("dat_hien"),
            "negative_value",
            &["dat_hien", "\"-0.5\""],
        ),
        case(
            "fractional count",
            |d| set_value(d, "tiep_cong_dan", 2.5),
            value_field("tiep_cong_dan"),
            "fractional_value",
            &["tiep_cong_dan", "\"2.5\""],
        ),
        case(
            "fractional đồng",
            |d| set_value(d, "von_huy_dong", 35_000_000_000.5),
            value_field("von_huy_dong"),
            "fractional_value",
            &["von_huy_dong", "35000000000.5"],
        ),
        case(
            "over the sanity bound",
            |d| set_value(d, "hs_tiep_nhan", 5_000_000.0),
            value_field("hs_tiep_nhan"),
            "over_sanity_bound",
            // The value and the bound it broke.
            &["hs_tiep_nhan", "\"5000000\"", "1000000"],
        ),
        case(
            "just over the sanity bound",
            |d| set_value(d, "doi_thoai", 1001.0),
            appended_field("value"),
            "over_sanity_bound",
            &["doi_thoai", "\"1001\"", "1000"],
        ),
        case(
            "required indicator missing",
            |d| d.values.retain(|v| v.indicator != "hs_dung_han"),
            "values",
            "required_indicator_missing",
            &["hs_dung_han", "DVCQ_THANG"],
        ),
    ]
}

/// Reports so big that the aggregator has many violations to return at once.
fn many_violations_cases() -> Vec<Case> {
    vec![
        case(
            "more values than allowed",
            |d| {
                // The 23 indicators of the data set cannot fill more than 500 slots without
                // repeats: the repeats are named too, but the count must be.
                let max = limits().max_values;
                while d.values.len() <= max {
                    push_value(d, "tiep_cong_dan", 2.0);
                }
            },
            "values",
            "too_many_values",
            &[],
        )
        .mentioning([
            format!("{} values", limits().max_values + 1),
            format!("at most {}", limits().max_values),
        ])
        .not_alone(),
        case(
            "two hundred unknown indicators, under the value limit",
            |d| {
                for n in 0..200 {
                    push_value(d, &format!("chi_tieu_{n}"), 1.0);
                }
            },
            appended_field("indicator"),
            "unknown_indicator",
            &["chi_tieu_0"],
        )
        .not_alone(),
    ]
}

/// `too_many_values` on its own: an aggregator whose limit is the size of the valid report,
/// sent one valid value more.
fn too_many_values_case(max_values: usize) -> Case {
    case(
        "one value over a lowered limit",
        |d| push_value(d, "doi_thoai", 3.0),
        "values",
        "too_many_values",
        &[],
    )
    .mentioning([
        format!("{} values", max_values + 1),
        format!("at most {max_values}"),
    ])
}

fn consistency_cases() -> Vec<Case> {
    vec![
        case(
            "petitions split exceeds petitions received",
            // 3 in jurisdiction + 2 forwarded > 4 received.
            |d| set_value(d, "don_tiep_nhan", 4.0),
            value_field("don_thuoc_tham_quyen"),
            "consistency.petitions_split",
            &["don_thuoc_tham_quyen + don_chuyen", "don_tiep_nhan"],
        ),
        case(
            "cases split exceeds cases received",
            // 2 in jurisdiction + 2 forwarded > 3 received (and 3 cases ≤ 5 petitions).
            |d| set_value(d, "vu_viec_tiep_nhan", 3.0),
            value_field("vu_viec_thuoc_tham_quyen"),
            "consistency.cases_split",
            &[
                "vu_viec_thuoc_tham_quyen + vu_viec_chuyen",
                "vu_viec_tiep_nhan",
            ],
        ),
        case(
            "more cases than petitions",
            // 6 cases > 5 petitions (and 2 + 2 ≤ 6).
            |d| set_value(d, "vu_viec_tiep_nhan", 6.0),
            value_field("vu_viec_tiep_nhan"),
            "consistency.cases_not_above_petitions",
            &["vu_viec_tiep_nhan", "don_tiep_nhan"],
        ),
        case(
            "more models recognised than registered",
            // 111 recognised > 110 registered.
            |d| set_value(d, "mo_hinh_cong_nhan", 111.0),
            value_field("mo_hinh_cong_nhan"),
            "consistency.recognised_within_registered",
            &["mo_hinh_cong_nhan", "mo_hinh_dang_ky"],
        ),
        case(
            "more exemplary models than recognised",
            // 32 exemplary > 31 recognised.
            |d| set_value(d, "mo_hinh_tieu_bieu", 32.0),
            value_field("mo_hinh_tieu_bieu"),
            "consistency.exemplary_within_recognised",
            &["mo_hinh_tieu_bieu", "mo_hinh_cong_nhan"],
        ),
        case(
            "registered split does not add up",
            // 74 collective + 35 individual = 109 ≠ 110 registered.
            |d| set_value(d, "mo_hinh_dang_ky_ca_nhan", 35.0),
            value_field("mo_hinh_dang_ky_tap_the"),
            "consistency.registered_split",
            &[
                "mo_hinh_dang_ky_tap_the + mo_hinh_dang_ky_ca_nhan",
                "mo_hinh_dang_ky",
            ],
        ),
        case(
            "registered split above the total",
            |d| set_value(d, "mo_hinh_dang_ky_ca_nhan", 37.0),
            value_field("mo_hinh_dang_ky_tap_the"),
            "consistency.registered_split",
            &[
                "mo_hinh_dang_ky_tap_the + mo_hinh_dang_ky_ca_nhan",
                "mo_hinh_dang_ky",
            ],
        ),
        case(
            "more dossiers on time than resolved",
            // 2589 on time > 2588 resolved.
            |d| set_value(d, "hs_dung_han", 2589.0),
            value_field("hs_dung_han"),
            "consistency.on_time_within_resolved",
            &["hs_dung_han", "hs_giai_quyet"],
        ),
    ]
}

fn text_cases() -> Vec<Case> {
    let text_max = limits().max_text_chars;
    let short_max = limits().max_short_text_chars;
    let over_text = [
        format!("{} characters", text_max + 1),
        format!("at most {text_max}"),
    ];
    let over_short = [
        format!("{} characters", short_max + 1),
        format!("at most {short_max}"),
    ];
    vec![
        case(
            "results over the limit",
            |d| d.narrative.results = long_text(limits().max_text_chars + 1),
            "narrative.results",
            "text_too_long",
            &["narrative.results"],
        )
        .mentioning(over_text.clone()),
        case(
            "shortcomings over the limit",
            |d| d.narrative.shortcomings = long_text(limits().max_text_chars + 1),
            "narrative.shortcomings",
            "text_too_long",
            &["narrative.shortcomings"],
        )
        .mentioning(over_text.clone()),
        case(
            "proposals over the limit",
            |d| d.narrative.proposals = long_text(limits().max_text_chars + 1),
            "narrative.proposals",
            "text_too_long",
            &["narrative.proposals"],
        )
        .mentioning(over_text),
        case(
            "prepared_by over the limit",
            |d| d.prepared_by = long_text(limits().max_short_text_chars + 1),
            "prepared_by",
            "text_too_long",
            &["prepared_by"],
        )
        .mentioning(over_short.clone()),
        case(
            "value comment over the limit",
            |d| {
                let i = index_of("tiep_cong_dan");
                d.values[i].comment = long_text(limits().max_short_text_chars + 1);
            },
            field_of("tiep_cong_dan", "comment"),
            "text_too_long",
            &[],
        )
        .mentioning(over_short),
        case(
            "bell in the results",
            |d| d.narrative.results = "Tổ chức 02 buổi\u{0007} tiếp công dân.".into(),
            "narrative.results",
            "control_character",
            &["U+0007"],
        ),
        case(
            "escape sequence in prepared_by",
            |d| d.prepared_by = "Nguyễn Văn An\u{001b}[2J".into(),
            "prepared_by",
            "control_character",
            &["U+001B"],
        ),
        case(
            "NUL in the proposals",
            |d| d.narrative.proposals = "Đề nghị\u{0000}".into(),
            "narrative.proposals",
            "control_character",
            &["U+0000"],
        ),
        case(
            "C1 control in a comment",
            |d| {
                let i = index_of("hs_tiep_nhan");
                d.values[i].comment = "một cửa\u{0085}".into();
            },
            field_of("hs_tiep_nhan", "comment"),
            "control_character",
            &["U+0085"],
        ),
    ]
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

/// The tables name every rule of the validator, so no rule goes untested.
#[test]
fn every_rule_has_a_case() {
    let covered: Vec<&str> = [
        identity_cases(),
        period_cases(),
        value_cases(),
        consistency_cases(),
        text_cases(),
        many_violations_cases(),
        vec![too_many_values_case(1)],
    ]
    .into_iter()
    .flatten()
    .map(|c| c.rule)
    .collect();
    let missing: Vec<&&str> = ALL_RULES.iter().filter(|r| !covered.contains(r)).collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
    let unknown: Vec<&&str> = covered.iter().filter(|r| !ALL_RULES.contains(r)).collect();
    assert!(
        unknown.is_empty(),
        "cases for rules that do not exist: {unknown:?}"
    );
}

/// Every base draft the tables start from is itself valid: a case fails because of its
/// mutation, not because of the starting point.
#[tokio::test]
async fn the_starting_report_is_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let mut draft = base();
    draft.submission_id = "base:BS02:201909".into();
    let receipt = client
        .submit(&draft)
        .await
        .expect("the base report is valid");
    assert_eq!(receipt.status, ReceiptStatus::New);
    assert_eq!(receipt.revision, 1);
    app.stop().await;
}

#[tokio::test]
async fn identity_rules_reject_and_change_nothing() {
    assert_all_rejected(identity_cases()).await;
}

#[tokio::test]
async fn period_rules_reject_and_change_nothing() {
    assert_all_rejected(period_cases()).await;
}

#[tokio::test]
async fn value_rules_reject_and_change_nothing() {
    assert_all_rejected(value_cases()).await;
}

#[tokio::test]
async fn consistency_rules_reject_and_change_nothing() {
    assert_all_rejected(consistency_cases()).await;
}

#[tokio::test]
async fn text_rules_reject_and_change_nothing() {
    assert_all_rejected(text_cases()).await;
}

#[tokio::test]
async fn too_many_values_is_reported_against_the_configured_limit() {
    // The valid report fits exactly; one more (valid) value is one too many.
    let max_values = base().values.len();
    let app = spawn_app_with(
        Backend::Sqlite,
        |s| Settings {
            limits: ValidationLimits {
                max_values,
                ..s.limits
            },
            ..s
        },
        None,
    )
    .await;
    assert_all_rejected_on(app, vec![too_many_values_case(max_values)]).await;
}

/// Over the default limit of 500 values, and with 200 unknown indicators under it, the
/// rejection must still arrive as INVALID_ARGUMENT naming the problem.
#[tokio::test]
async fn reports_with_many_problems_are_still_rejected_with_their_violations() {
    assert_all_rejected(many_violations_cases()).await;
}

/// A clerk gets the whole list of problems in one answer, not one per round trip.
#[tokio::test]
async fn every_problem_of_a_report_is_reported_at_once() {
    let (app, mut client, before) = app_with_one_report().await;
    let mut draft = base();
    draft.submission_id = "many-problems:BS02".into();
    draft.period = "2019-09".into();
    set_value(&mut draft, "tiep_cong_dan", -1.0);
    push_value(&mut draft, "tiep_dan", 3.0);
    draft.values.retain(|v| v.indicator != "hs_dung_han");
    draft.narrative.shortcomings = "trễ hạn\u{0007}".into();
    let unknown_at = draft
        .values
        .iter()
        .position(|v| v.indicator == "tiep_dan")
        .expect("tiep_dan was pushed");
    let negative_at = draft
        .values
        .iter()
        .position(|v| v.indicator == "tiep_cong_dan")
        .expect("tiep_cong_dan is in the report");

    let failure = client
        .submit(&draft)
        .await
        .expect_err("a report with five problems is refused");
    assert_eq!(failure.code, tonic::Code::InvalidArgument, "{failure}");
    assert!(!failure.retryable);
    let expected: [(String, &str, &str); 5] = [
        ("period".into(), "period_malformed", "2019-09"),
        (
            format!("values[{negative_at}].value"),
            "negative_value",
            "tiep_cong_dan",
        ),
        (
            format!("values[{unknown_at}].indicator"),
            "unknown_indicator",
            "tiep_dan",
        ),
        ("values".into(), "required_indicator_missing", "hs_dung_han"),
        (
            "narrative.shortcomings".into(),
            "control_character",
            "U+0007",
        ),
    ];
    for (field, rule, mention) in &expected {
        let found = failure
            .violations
            .iter()
            .find(|v| &v.field == field && v.rule == *rule)
            .unwrap_or_else(|| {
                panic!(
                    "no {rule} on {field}; got:\n{}",
                    describe(&failure.violations)
                )
            });
        assert!(
            found.description.contains(mention),
            "{rule} on {field} does not mention {mention:?}: {:?}",
            found.description
        );
    }
    assert_eq!(
        failure.violations.len(),
        expected.len(),
        "exactly the problems planted:\n{}",
        describe(&failure.violations)
    );
    assert!(
        failure
            .message
            .contains(&format!("{} problem(s)", expected.len())),
        "message: {}",
        failure.message
    );
    assert_eq!(
        store_state(&app).await,
        before,
        "a rejected report changes nothing"
    );
    app.stop().await;
}

/// In a batch each report stands on its own: the bad one is refused with its violations (value
/// included), the good ones around it are stored.
#[tokio::test]
async fn a_batch_stores_the_good_reports_and_refuses_the_bad_one() {
    let (app, mut client, before) = app_with_one_report().await;
    let good1 = valid_report("batch:BS03:201909", "BS03", PERIOD);
    let mut bad = valid_report("batch:BS04:201909", "BS04", PERIOD);
    let negative = -7.0_f64;
    set_value(&mut bad, "tiep_cong_dan", negative);
    push_value(&mut bad, "tiep_dan", 1.0);
    let good2 = valid_report("batch:BS05:201910", "BS05", "201910");

    let results = client
        .submit_batch(&[good1.clone(), bad.clone(), good2.clone()])
        .await
        .expect("the batch call itself succeeds");
    assert_eq!(results.len(), 3, "one result per report: {results:?}");

    for (result, draft) in [(&results[0], &good1), (&results[2], &good2)] {
        let receipt = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{} is valid: {e:?}", draft.submission_id));
        assert_eq!(receipt.submission_id.as_str(), draft.submission_id);
        assert_eq!(receipt.status, ReceiptStatus::New);
        assert_eq!(receipt.revision, 1);
    }

    let failure = results[1].as_ref().expect_err("the bad report is refused");
    assert_eq!(failure.code, tonic::Code::InvalidArgument, "{failure}");
    assert!(!failure.retryable);
    let negative_field = format!("values[{}].value", index_of("tiep_cong_dan"));
    let neg = failure
        .violations
        .iter()
        .find(|v| v.field == negative_field && v.rule == "negative_value")
        .unwrap_or_else(|| panic!("negative value named:\n{}", describe(&failure.violations)));
    assert_eq!(
        neg.value,
        negative.to_string(),
        "batch violations carry the value"
    );
    assert!(
        neg.description.contains("tiep_cong_dan"),
        "{:?}",
        neg.description
    );
    let unknown_field = format!("values[{}].indicator", bad.values.len() - 1);
    let unknown = failure
        .violations
        .iter()
        .find(|v| v.field == unknown_field && v.rule == "unknown_indicator")
        .unwrap_or_else(|| {
            panic!(
                "unknown indicator named:\n{}",
                describe(&failure.violations)
            )
        });
    assert_eq!(
        unknown.value, "tiep_dan",
        "batch violations carry the value"
    );
    assert_eq!(
        failure.violations.len(),
        2,
        "{}",
        describe(&failure.violations)
    );

    let stored1 = app.stored("BS03", "DVCQ_THANG", PERIOD).await;
    assert_eq!(stored1.report.submission_id.as_str(), good1.submission_id);
    assert_eq!(stored1.report.value("hs_dung_han"), Some(2512.0));
    let stored2 = app.stored("BS05", "DVCQ_THANG", "201910").await;
    assert_eq!(stored2.report.submission_id.as_str(), good2.submission_id);
    assert!(
        app.store
            .latest("BS04", "DVCQ_THANG", PERIOD)
            .await
            .expect("read BS04")
            .is_none(),
        "the bad report is not stored"
    );
    let after = store_state(&app).await;
    assert_eq!(
        after.change_counter,
        before.change_counter + 2,
        "two revisions written"
    );
    assert!(
        !after.dump.contains(&bad.submission_id),
        "dump:\n{}",
        after.dump
    );
    app.stop().await;
}

/// Positive controls: the rules refuse what they should and no more.
#[tokio::test]
async fn decimals_large_amounts_and_values_at_the_limits_are_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;

    // A decimal area on a decimal indicator, 35 billion đồng on an integer one.
    let area = 32_000.5_f64;
    let amount = 35_000_000_000.0_f64;
    let mut draft = valid_report("accept:BS06:201909", "BS06", PERIOD);
    set_value(&mut draft, "dat_hien", area);
    set_value(&mut draft, "von_huy_dong", amount);
    let receipt = client
        .submit(&draft)
        .await
        .expect("decimal area and 35 billion đồng are valid");
    assert_eq!(receipt.status, ReceiptStatus::New);
    let stored = app.stored("BS06", "DVCQ_THANG", PERIOD).await;
    assert_eq!(stored.report.value("dat_hien"), Some(area));
    assert_eq!(stored.report.value("von_huy_dong"), Some(amount));

    // Everything exactly at its limit, plus line breaks and tabs (not control characters for
    // a narrative), zero counts and an optional indicator at its sanity bound.
    let limits = limits();
    let mut edge = valid_report("accept:BS07:201909", "BS07", PERIOD);
    set_value(&mut edge, "hs_tiep_nhan", 1_000_000.0);
    set_value(&mut edge, "tiep_cong_dan", 0.0);
    set_value(&mut edge, "dat_hien", 0.25);
    push_value(&mut edge, "doi_thoai", 1000.0);
    edge.narrative.results = long_text(limits.max_text_chars);
    edge.narrative.shortcomings = "Dòng một\r\nDòng hai\n\tthụt lề".into();
    edge.prepared_by = long_text(limits.max_short_text_chars);
    edge.values[0].comment = long_text(limits.max_short_text_chars);
    let receipt = client
        .submit(&edge)
        .await
        .expect("values at their limits are valid");
    assert_eq!(receipt.status, ReceiptStatus::New);
    let stored = app.stored("BS07", "DVCQ_THANG", PERIOD).await;
    assert_eq!(stored.report.value("hs_tiep_nhan"), Some(1_000_000.0));
    assert_eq!(stored.report.value("doi_thoai"), Some(1000.0));
    assert_eq!(stored.report.value("dat_hien"), Some(0.25));
    assert_eq!(
        stored.report.narrative.results.chars().count(),
        limits.max_text_chars
    );
    assert_eq!(stored.report.prepared_by, edge.prepared_by);

    // A period that has started but not closed is accepted (with a warning, not a violation).
    let today = tonghop::domain::period::vietnam_today(chrono::Utc::now());
    let current = today.format("%Y%m").to_string();
    // A calendar month is open from its first day (the data set with plain calendar months).
    let mut open = valid_report("accept:BS08:current", "BS08", &current);
    open.data_set = "MOT_CUA_THANG".into();
    open.values.retain(|v| v.indicator.starts_with("hs_"));
    let receipt = client
        .submit(&open)
        .await
        .expect("the current month may be reported");
    assert_eq!(receipt.status, ReceiptStatus::New);
    assert!(
        !receipt.warnings.is_empty(),
        "an open period is flagged: {receipt:?}"
    );
    assert_eq!(app.store.change_counter().await.expect("counter"), 3);
    app.stop().await;
}
