//! Rolling up: flows, stocks and maxima over time, rates as ratios of sums, corrections, missing districts, a district as the node, zero denominators.

use super::*;

#[tokio::test]
async fn quarter_sums_flows_takes_last_month_of_stocks_and_max_of_peaks() {
    let p = Pipeline::start().await;
    // (unit, month, received, models, crowd)
    let data = [
        ("A", 7, 10.0, 5.0, 100.0),
        ("A", 8, 20.0, 9.0, 300.0),
        ("A", 9, 30.0, 7.0, 200.0),
        ("B", 7, 1.0, 2.0, 50.0),
        ("B", 8, 2.0, 3.0, 40.0),
        ("B", 9, 3.0, 4.0, 60.0),
        ("C", 7, 100.0, 20.0, 500.0),
        ("C", 8, 200.0, 10.0, 900.0),
        ("C", 9, 300.0, 15.0, 700.0),
    ];
    for (unit, month, received, models, crowd) in data {
        let period_id = format!("2019{month:02}");
        p.submit(
            &format!("{unit}-{period_id}"),
            unit,
            "M",
            &period_id,
            &[("received", received), ("models", models), ("crowd", crowd)],
        )
        .await;
    }
    let q3 = p.indicators("M", "2019Q3", "P").await;

    // Flow: July + August + September.
    assert_close(
        unit_value(&q3, "A", "received"),
        10.0 + 20.0 + 30.0,
        "A received",
    );
    assert_close(
        unit_value(&q3, "B", "received"),
        1.0 + 2.0 + 3.0,
        "B received",
    );
    assert_close(
        unit_value(&q3, "C", "received"),
        100.0 + 200.0 + 300.0,
        "C received",
    );
    // Stock: September's value, although August's was larger for A (9) and C (20 in July).
    assert_close(unit_value(&q3, "A", "models"), 7.0, "A models = September");
    assert_close(unit_value(&q3, "B", "models"), 4.0, "B models = September");
    assert_close(unit_value(&q3, "C", "models"), 15.0, "C models = September");
    // Peak: the largest month.
    assert_close(
        unit_value(&q3, "A", "crowd"),
        300.0,
        "A crowd = max(100, 300, 200)",
    );
    assert_close(
        unit_value(&q3, "B", "crowd"),
        60.0,
        "B crowd = max(50, 40, 60)",
    );
    assert_close(
        unit_value(&q3, "C", "crowd"),
        900.0,
        "C crowd = max(500, 900, 700)",
    );

    // Province: flows and stocks summed over districts, the max of the maxima.
    assert_close(
        total_value(&q3, "received"),
        60.0 + 6.0 + 600.0,
        "Σ received",
    );
    assert_close(
        total_value(&q3, "models"),
        7.0 + 4.0 + 15.0,
        "Σ September models",
    );
    assert_close(total_value(&q3, "crowd"), 900.0, "max(300, 60, 900)");
    let total = q3.total("received").expect("total row");
    assert_eq!(
        (total.reports_received, total.reports_expected),
        (9, 3 * 3),
        "3 districts × 3 months, all in"
    );

    // August on its own does hold the larger stock for A: the quarter really took September.
    let august = p.indicators("M", "201908", "P").await;
    assert_close(
        unit_value(&august, "A", "models"),
        9.0,
        "A models in August",
    );
}

// 2 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn province_rate_is_the_ratio_of_sums_not_the_mean_of_district_rates() {
    let p = Pipeline::start().await;
    // A is small and fast, C is big and slow.
    p.submit(
        "A-201909",
        "A",
        "M",
        "201909",
        &[("resolved", 10.0), ("on_time", 9.0)],
    )
    .await;
    p.submit(
        "B-201909",
        "B",
        "M",
        "201909",
        &[("resolved", 100.0), ("on_time", 80.0)],
    )
    .await;
    p.submit(
        "C-201909",
        "C",
        "M",
        "201909",
        &[("resolved", 1000.0), ("on_time", 500.0)],
    )
    .await;
    let t = p.indicators("M", "201909", "P").await;

    let rate_a = 9.0 / 10.0 * 100.0; // 90 %
    let rate_b = 80.0 / 100.0 * 100.0; // 80 %
    let rate_c = 500.0 / 1000.0 * 100.0; // 50 %
    assert_close(unit_value(&t, "A", "on_time_rate"), rate_a, "A rate");
    assert_close(unit_value(&t, "B", "on_time_rate"), rate_b, "B rate");
    assert_close(unit_value(&t, "C", "on_time_rate"), rate_c, "C rate");

    // Σ on time ÷ Σ resolved × 100 = 589 ÷ 1110 × 100 ≈ 53.06 %.
    let ratio_of_sums = (9.0 + 80.0 + 500.0) / (10.0 + 100.0 + 1000.0) * 100.0;
    // The mean of the district rates would be (90 + 80 + 50) ÷ 3 ≈ 73.33 %.
    let mean_of_ratios = (rate_a + rate_b + rate_c) / 3.0;
    let province = total_value(&t, "on_time_rate");
    assert_close(province, ratio_of_sums, "province rate = ratio of sums");
    assert!(
        (ratio_of_sums - mean_of_ratios).abs() > 1.0,
        "the two definitions differ here: {ratio_of_sums} vs {mean_of_ratios}"
    );
    let province = province.expect("province rate");
    assert!(
        (province - mean_of_ratios).abs() > 1.0,
        "the province rate {province} must not be the mean of district rates {mean_of_ratios}"
    );
    let row = t.total("on_time_rate").expect("total row");
    assert!(row.derived && row.is_total && row.reason.is_none());
}

// 3 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_correction_replaces_the_earlier_revision_and_the_total_follows() {
    let p = Pipeline::start().await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 10.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 20.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 40.0)])
        .await;
    let before = p.indicators("M", "201909", "P").await;
    assert_close(unit_value(&before, "A", "received"), 10.0, "A before");
    assert_close(
        total_value(&before, "received"),
        10.0 + 20.0 + 40.0,
        "total before",
    );

    // A corrects its report: a new submission id for the same unit, data set and period.
    let correction = p
        .submit("A-201909-r2", "A", "M", "201909", &[("received", 15.0)])
        .await;
    assert_eq!(correction.revision, 2);
    assert_eq!(correction.status, ReceiptStatus::Revision);

    let applied = p.query.refresh().await.expect("refresh");
    assert_eq!(applied.reports_replaced, 1, "{applied:?}");
    assert_eq!(applied.reports_added, 0, "not a reload: {applied:?}");
    assert_eq!(applied.stale_revisions_ignored, 0, "{applied:?}");
    assert_eq!(applied.values, 1, "the correction's one value: {applied:?}");

    let after = p.indicators("M", "201909", "P").await;
    assert_close(unit_value(&after, "A", "received"), 15.0, "A corrected");
    assert_close(unit_value(&after, "B", "received"), 20.0, "B untouched");
    assert_close(
        total_value(&after, "received"),
        15.0 + 20.0 + 40.0,
        "total after",
    );
    let a = after.value("A", "received").expect("A row");
    assert_eq!(a.reports_received, 1, "a revision is still one report");
    let total = after.total("received").expect("total row");
    assert_eq!((total.reports_received, total.reports_expected), (3, 3));
}

// 4 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_district_that_never_reports_is_missing_and_left_out_of_the_total() {
    let p = Pipeline::start().await;
    // A and B report July to September; C never does.
    for month in 7..=9 {
        let period_id = format!("2019{month:02}");
        let m = f64::from(month);
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[("received", m), ("resolved", 10.0), ("on_time", 8.0)],
        )
        .await;
        p.submit(
            &format!("B-{period_id}"),
            "B",
            "M",
            &period_id,
            &[
                ("received", 10.0 * m),
                ("resolved", 20.0),
                ("on_time", 20.0),
            ],
        )
        .await;
    }
    let t = p.indicators("M", "2019Q3", "P").await;

    for indicator in [
        "received",
        "resolved",
        "on_time",
        "models",
        "crowd",
        "on_time_rate",
    ] {
        let row = t
            .rows
            .iter()
            .find(|r| !r.is_total && r.unit.as_str() == "C" && r.indicator.as_str() == indicator)
            .expect("C has a row for every indicator");
        assert_eq!(row.value, None, "C {indicator}");
        assert_eq!(
            row.reason.as_deref(),
            Some("no report received"),
            "C {indicator}"
        );
        assert_eq!((row.reports_received, row.reports_expected), (0, 3));
    }
    // Total = A + B only: received (7 + 8 + 9) + 10 × (7 + 8 + 9) = 24 + 240.
    assert_close(
        total_value(&t, "received"),
        24.0 + 240.0,
        "Σ received of A and B",
    );
    // Rate over what was received: (3 × 8 + 3 × 20) ÷ (3 × 10 + 3 × 20) × 100.
    assert_close(
        total_value(&t, "on_time_rate"),
        (3.0 * 8.0 + 3.0 * 20.0) / (3.0 * 10.0 + 3.0 * 20.0) * 100.0,
        "rate of A and B",
    );
    let total = t.total("received").expect("total row");
    // 2 districts × 3 months received out of 3 districts × 3 months expected.
    assert_eq!(
        (total.reports_received, total.reports_expected),
        (2 * 3, 3 * 3)
    );
    assert!(total.reports_received < total.reports_expected);
    let a = t.value("A", "received").expect("A row");
    assert_eq!((a.reports_received, a.reports_expected), (3, 3));
}

/// Extra: a district asked about as the node is counted alone; its neighbours' reports are no
/// part of its "reports received".
#[tokio::test]
async fn a_district_node_counts_only_its_own_reports() {
    let p = Pipeline::start().await;
    for unit in ["A", "B", "C"] {
        p.submit(
            &format!("{unit}-201909"),
            unit,
            "M",
            "201909",
            &[("received", 1.0)],
        )
        .await;
    }
    let t = p.indicators("M", "201909", "A").await;
    let total = t.total("received").expect("total row");
    assert_close(total.value, 1.0, "A's own value");
    // One unit (A) × one month: 1 received of 1 expected; B's and C's reports are not A's.
    assert_eq!((total.reports_received, total.reports_expected), (1, 1));
}

// 5 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_zero_denominator_gives_no_rate_with_a_reason_never_nan() {
    let p = Pipeline::start().await;
    p.submit(
        "A-201909",
        "A",
        "M",
        "201909",
        &[("received", 5.0), ("resolved", 0.0), ("on_time", 0.0)],
    )
    .await;
    p.submit(
        "B-201909",
        "B",
        "M",
        "201909",
        &[("received", 7.0), ("resolved", 10.0), ("on_time", 8.0)],
    )
    .await;
    let t = p.indicators("M", "201909", "P").await;
    let a = t.value("A", "on_time_rate").expect("A rate row");
    assert_eq!(a.value, None, "0 ÷ 0 has no value");
    let reason = a.reason.as_deref().expect("a reason is given");
    assert!(
        reason.contains("denominator") && reason.contains("resolved"),
        "{reason}"
    );
    // The province is fine: (0 + 8) ÷ (0 + 10) × 100.
    assert_close(
        total_value(&t, "on_time_rate"),
        (0.0 + 8.0) / (0.0 + 10.0) * 100.0,
        "P",
    );

    // With A alone as the node, the total has the zero denominator too.
    let only_a = p.indicators("M", "201909", "A").await;
    let total = only_a.total("on_time_rate").expect("A total");
    assert_eq!(total.value, None);
    let reason = total.reason.as_deref().expect("a reason is given");
    assert!(reason.contains("denominator"), "{reason}");

    for row in t.rows.iter().chain(&only_a.rows) {
        if let Some(v) = row.value {
            assert!(v.is_finite(), "{} {}: {v}", row.unit, row.indicator);
        }
    }
}

// 6 ------------------------------------------------------------------------------------------
