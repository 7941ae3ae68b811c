//! The tests: every family of cases rejected with the store unchanged, every problem of a
//! report reported at once, a batch with one bad report, and valid values at the limits.

use super::cases::*;
use super::*;

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
