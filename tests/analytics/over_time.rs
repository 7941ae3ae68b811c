//! Over time: trends against the previous period and the year before, freshness after load, series, and periods that do not align with a data set.

use super::*;

#[tokio::test]
async fn trend_compares_with_the_previous_period_and_the_same_period_a_year_before() {
    let p = Pipeline::start().await;
    p.submit("A-201809", "A", "M", "201809", &[("received", 40.0)])
        .await;
    p.submit("A-201908", "A", "M", "201908", &[("received", 50.0)])
        .await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 60.0)])
        .await;
    p.submit("B-201908", "B", "M", "201908", &[("received", 0.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 5.0)])
        .await;
    // C sends nothing.
    let t = p
        .query
        .trend(scope_of("M", "201909", "P", &["received"]))
        .await
        .expect("trend");
    assert_eq!(
        (t.previous_period.as_str(), t.year_before_period.as_str()),
        ("201908", "201809")
    );
    let row = |unit: &str, is_total: bool| {
        t.rows
            .iter()
            .find(|r| r.unit.as_str() == unit && r.is_total == is_total)
            .unwrap_or_else(|| panic!("row for {unit}"))
    };

    // A: 60 vs 50 last month (+10, +10 ÷ 50 × 100 = +20 %), vs 40 a year before (+20, +50 %).
    let a = row("A", false);
    assert_close(a.value, 60.0, "A now");
    assert_close(a.previous, 50.0, "A previous");
    assert_close(a.change, 60.0 - 50.0, "A change");
    assert_close(a.change_pct, (60.0 - 50.0) / 50.0 * 100.0, "A change %");
    assert_close(a.year_before, 40.0, "A year before");
    assert_close(a.change_yoy, 60.0 - 40.0, "A change yoy");
    assert_close(
        a.change_yoy_pct,
        (60.0 - 40.0) / 40.0 * 100.0,
        "A change yoy %",
    );

    // B: 5 vs 0: a change of 5 but no percentage of a zero base; nothing a year before.
    let b = row("B", false);
    assert_close(b.change, 5.0 - 0.0, "B change");
    assert_eq!(b.previous, Some(0.0));
    assert_eq!(b.change_pct, None, "base 0: no percentage");
    assert_eq!(
        (b.year_before, b.change_yoy, b.change_yoy_pct),
        (None, None, None)
    );

    // C: nothing at all.
    let c = row("C", false);
    assert_eq!(
        (c.value, c.previous, c.change, c.change_pct),
        (None, None, None, None)
    );

    // Province: 60 + 5 = 65 vs 50 + 0 = 50 (+15, +30 %), vs 40 (+25, +62.5 %).
    let total = row("P", true);
    assert_close(total.value, 60.0 + 5.0, "P now");
    assert_close(total.previous, 50.0 + 0.0, "P previous");
    assert_close(total.change, 65.0 - 50.0, "P change");
    assert_close(total.change_pct, (65.0 - 50.0) / 50.0 * 100.0, "P change %");
    assert_close(total.year_before, 40.0, "P year before");
    assert_close(total.change_yoy, 65.0 - 40.0, "P change yoy");
    assert_close(
        total.change_yoy_pct,
        (65.0 - 40.0) / 40.0 * 100.0,
        "P change yoy %",
    );
}

// 12 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_report_acknowledged_after_load_is_in_the_very_next_answer() {
    let p = Pipeline::start().await;
    // The read model was loaded from an empty store.
    let before = p.indicators("M", "201909", "P").await;
    assert_eq!(total_value(&before, "received"), None);

    let receipt = p
        .submit("A-201909", "A", "M", "201909", &[("received", 7.0)])
        .await;
    assert_eq!(receipt.status, ReceiptStatus::New);
    // No sleep, no refresh call.
    let after = p.indicators("M", "201909", "P").await;
    assert_close(total_value(&after, "received"), 7.0, "A's report is in");

    p.submit("B-201909", "B", "M", "201909", &[("received", 3.0)])
        .await;
    p.submit("A-201909-r2", "A", "M", "201909", &[("received", 8.0)])
        .await;
    let again = p.indicators("M", "201909", "P").await;
    assert_close(
        total_value(&again, "received"),
        8.0 + 3.0,
        "B's report and A's correction",
    );
}

// 13 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn series_totals_equal_the_indicator_totals_of_each_period() {
    let p = Pipeline::start().await;
    // 2019, month m: A received m, models 100 − m, crowd m², resolved 12, on time m;
    //                B received 10m, models m, crowd 50, resolved 10, on time 10.
    for month in 1..=12u32 {
        let period_id = format!("2019{month:02}");
        let m = f64::from(month);
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[
                ("received", m),
                ("models", 100.0 - m),
                ("crowd", m * m),
                ("resolved", 12.0),
                ("on_time", m),
            ],
        )
        .await;
        p.submit(
            &format!("B-{period_id}"),
            "B",
            "M",
            &period_id,
            &[
                ("received", 10.0 * m),
                ("models", m),
                ("crowd", 50.0),
                ("resolved", 10.0),
                ("on_time", 10.0),
            ],
        )
        .await;
    }
    // 2018, January to June: only A, received 5, models 50, crowd 10, resolved 12, on time 6.
    for month in 1..=6u32 {
        let period_id = format!("2018{month:02}");
        p.submit(
            &format!("A-{period_id}"),
            "A",
            "M",
            &period_id,
            &[
                ("received", 5.0),
                ("models", 50.0),
                ("crowd", 10.0),
                ("resolved", 12.0),
                ("on_time", 6.0),
            ],
        )
        .await;
    }

    // Every period of each series has the totals `indicators` gives for that period alone.
    let months_2019: Vec<String> = (1..=12).map(|m| format!("2019{m:02}")).collect();
    let as_strings = |ids: &[&str]| ids.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    for (first, through, expected_periods) in [
        ("2018", "2019", as_strings(&["2018", "2019"])),
        (
            "2019Q1",
            "2019Q4",
            as_strings(&["2019Q1", "2019Q2", "2019Q3", "2019Q4"]),
        ),
        ("201901", "201912", months_2019),
    ] {
        let series = p
            .query
            .series(scope("M", first, "P"), period(through))
            .await
            .expect("series");
        assert_eq!(series.periods, expected_periods);
        for (i, per) in series.periods.iter().enumerate() {
            let table = p.indicators("M", per, "P").await;
            for (j, indicator) in series.indicators.iter().enumerate() {
                let from_series = series.values[i][j];
                let from_table = total_value(&table, indicator.as_str());
                match (from_series, from_table) {
                    (Some(s), Some(t)) => {
                        assert!((s - t).abs() < TOLERANCE, "{per} {indicator}: {s} vs {t}")
                    }
                    (s, t) => assert_eq!(s, t, "{per} {indicator}"),
                }
            }
        }
    }

    // And by hand, on the yearly series.
    let yearly = p
        .query
        .series(scope("M", "2018", "P"), period("2019"))
        .await
        .expect("yearly series");
    let col = |code: &str| {
        yearly
            .indicators
            .iter()
            .position(|i| i.as_str() == code)
            .unwrap_or_else(|| panic!("{code} column"))
    };
    let sum_m: f64 = (1..=12).map(f64::from).sum(); // 78
    // 2018: received 6 × 5; models 50 (June); crowd 10; rate 6 × 6 ÷ (6 × 12) × 100.
    assert_close(
        yearly.values[0][col("received")],
        6.0 * 5.0,
        "2018 received",
    );
    assert_close(yearly.values[0][col("models")], 50.0, "2018 models");
    assert_close(yearly.values[0][col("crowd")], 10.0, "2018 crowd");
    assert_close(
        yearly.values[0][col("on_time_rate")],
        (6.0 * 6.0) / (6.0 * 12.0) * 100.0,
        "2018 rate",
    );
    // 2019: received Σ(m + 10m) = 11 × 78; models A's December (100 − 12) + B's (12);
    // crowd max(12², 50); rate (Σm + 12 × 10) ÷ (12 × 12 + 12 × 10) × 100.
    assert_close(
        yearly.values[1][col("received")],
        11.0 * sum_m,
        "2019 received",
    );
    assert_close(
        yearly.values[1][col("models")],
        (100.0 - 12.0) + 12.0,
        "2019 models",
    );
    assert_close(yearly.values[1][col("crowd")], 144.0, "2019 crowd");
    assert_close(
        yearly.values[1][col("on_time_rate")],
        (sum_m + 12.0 * 10.0) / (12.0 * 12.0 + 12.0 * 10.0) * 100.0,
        "2019 rate",
    );
    // Third quarter of 2019: received 11 × (7 + 8 + 9).
    let quarterly = p
        .query
        .series(
            scope_of("M", "2019Q1", "P", &["received"]),
            period("2019Q4"),
        )
        .await
        .expect("quarterly series");
    assert_close(
        quarterly.values[2][0],
        11.0 * (7.0 + 8.0 + 9.0),
        "2019Q3 received",
    );
}

// 14 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_period_not_made_of_whole_data_set_periods_is_refused_naming_the_data_set() {
    let p = Pipeline::start().await;
    p.submit(
        "A-2019S1",
        "A",
        "H",
        "2019S1",
        &[("received", 100.0), ("resolved", 10.0), ("on_time", 5.0)],
    )
    .await;
    p.submit(
        "A-2018",
        "A",
        "Y",
        "2018",
        &[("received", 300.0), ("resolved", 10.0), ("on_time", 5.0)],
    )
    .await;

    for (data_set, period_type) in [("H", PeriodType::SixMonthly), ("Y", PeriodType::Yearly)] {
        let err = p
            .query
            .indicators(scope(data_set, "2019Q3", "P"))
            .await
            .expect_err("a quarter is not made of whole periods of this data set");
        match &err {
            QueryError::Invalid(AnalyticsError::PeriodNotAligned {
                period: got_period,
                data_set: got_data_set,
                period_type: got_type,
            }) => {
                assert_eq!(got_period, "2019Q3");
                assert_eq!(got_data_set, data_set);
                assert_eq!(*got_type, period_type);
            }
            other => panic!("expected PeriodNotAligned, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("data set {data_set}")),
            "{message}"
        );
        // The other analytics refuse it the same way.
        let ranking = p.query.ranking(scope(data_set, "2019Q3", "P"), false).await;
        assert!(
            matches!(
                ranking,
                Err(QueryError::Invalid(AnalyticsError::PeriodNotAligned { .. }))
            ),
            "{ranking:?}"
        );
        let completeness = p.query.completeness(scope(data_set, "2019Q3", "P")).await;
        assert!(
            matches!(
                completeness,
                Err(QueryError::Invalid(AnalyticsError::PeriodNotAligned { .. }))
            ),
            "{completeness:?}"
        );
    }
    // Nine months are not a half year either.
    let err = p
        .query
        .indicators(scope("H", "2019N9", "P"))
        .await
        .expect_err("2019N9 against six-monthly");
    assert!(err.to_string().contains("data set H"), "{err}");

    // A whole period of the data set is fine.
    let h = p.indicators("H", "2019S1", "P").await;
    assert_close(unit_value(&h, "A", "received"), 100.0, "A 2019S1");
    let y = p.indicators("Y", "2018", "P").await;
    assert_close(unit_value(&y, "A", "received"), 300.0, "A 2018");
}
