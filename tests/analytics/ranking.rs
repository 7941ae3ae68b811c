//! Rankings: ties, per-capita ranking, the composite score and its rank change.

use super::*;

#[tokio::test]
async fn tied_districts_share_the_best_rank_and_a_silent_one_is_last() {
    let p = Pipeline::with_units(UNITS_WITH_D).await;
    p.submit("A-201909", "A", "M", "201909", &[("received", 50.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 50.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 30.0)])
        .await;
    // D sends nothing.
    let table = p
        .query
        .ranking(scope_of("M", "201909", "P", &["received"]), false)
        .await
        .expect("ranking");
    assert_eq!(table.indicators.len(), 1);
    let received = &table.indicators[0];
    assert_eq!(received.indicator.as_str(), "received");
    assert!(!received.per_capita, "raw totals were asked for");
    let entries: Vec<(&str, Option<f64>, u32, bool)> = received
        .entries
        .iter()
        .map(|e| (e.unit.as_str(), e.value, e.rank, e.missing))
        .collect();
    assert_eq!(
        entries,
        [
            ("A", Some(50.0), 1, false),
            ("B", Some(50.0), 1, false),
            // Two units ahead of C: rank 3, not 2.
            ("C", Some(30.0), 3, false),
            // After the 3 units with a value.
            ("D", None, 4, true),
        ]
    );
    // Composite on `received` alone: A and B (100 each) tie at the top.
    let a = table.composite.iter().find(|c| c.unit.as_str() == "A");
    let b = table.composite.iter().find(|c| c.unit.as_str() == "B");
    let (a, b) = (a.expect("A ranked"), b.expect("B ranked"));
    assert_eq!((a.rank, b.rank), (1, 1));
    assert_close(Some(a.score), 100.0, "A's composite");
    assert_close(Some(b.score), 100.0, "B's composite");
}

// 7 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn per_capita_ranking_divides_by_population_and_reverses_the_raw_order() {
    let p = Pipeline::start().await;
    // Populations: A 10,000, B 20,000, C 40,000.
    p.submit("A-201909", "A", "M", "201909", &[("received", 30.0)])
        .await;
    p.submit("B-201909", "B", "M", "201909", &[("received", 40.0)])
        .await;
    p.submit("C-201909", "C", "M", "201909", &[("received", 60.0)])
        .await;
    let order = |table: &tonghop::analytics::RankingTable| -> Vec<(String, Option<f64>, u32)> {
        table
            .indicators
            .iter()
            .find(|i| i.indicator.as_str() == "received")
            .expect("received is ranked")
            .entries
            .iter()
            .map(|e| (e.unit.to_string(), e.value, e.rank))
            .collect()
    };

    let raw = p
        .query
        .ranking(scope("M", "201909", "P"), false)
        .await
        .expect("raw ranking");
    // Raw totals: C 60 > B 40 > A 30.
    assert_eq!(
        order(&raw),
        [
            ("C".to_string(), Some(60.0), 1),
            ("B".to_string(), Some(40.0), 2),
            ("A".to_string(), Some(30.0), 3),
        ]
    );

    let per_capita = p
        .query
        .ranking(scope("M", "201909", "P"), true)
        .await
        .expect("per-capita ranking");
    let received = per_capita
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "received")
        .expect("received");
    assert!(received.per_capita);
    let a = 30.0 / 10_000.0 * 10_000.0; // 30 per 10,000
    let b = 40.0 / 20_000.0 * 10_000.0; // 20 per 10,000
    let c = 60.0 / 40_000.0 * 10_000.0; // 15 per 10,000
    let got = order(&per_capita);
    let units: Vec<(&str, u32)> = got.iter().map(|(u, _, r)| (u.as_str(), *r)).collect();
    assert_eq!(
        units,
        [("A", 1), ("B", 2), ("C", 3)],
        "the order is reversed"
    );
    assert_close(got[0].1, a, "A per 10,000");
    assert_close(got[1].1, b, "B per 10,000");
    assert_close(got[2].1, c, "C per 10,000");
    // The on-time rate is not a per-capita indicator, whatever the request says.
    let rate = per_capita
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "on_time_rate")
        .expect("rate is ranked");
    assert!(!rate.per_capita);
}

// 8 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn composite_score_is_the_weighted_mean_of_normalised_scores_with_rank_change() {
    let p = Pipeline::start().await;
    // (unit, period, received, resolved, on time); populations A 10,000, B 20,000, C 40,000.
    let data = [
        ("A", "201908", 20.0, 10.0, 10.0),
        ("B", "201908", 60.0, 20.0, 15.0),
        ("C", "201908", 40.0, 40.0, 20.0),
        ("A", "201909", 10.0, 10.0, 5.0),
        ("B", "201909", 40.0, 20.0, 18.0),
        ("C", "201909", 160.0, 40.0, 30.0),
    ];
    for (unit, period_id, received, resolved, on_time) in data {
        p.submit(
            &format!("{unit}-{period_id}"),
            unit,
            "M",
            period_id,
            &[
                ("received", received),
                ("resolved", resolved),
                ("on_time", on_time),
            ],
        )
        .await;
    }
    // Weights: received 1 (per 10,000 inhabitants), on-time rate 2; total weight 3.
    // Normalised score: (v − min) ÷ (max − min) × 100 (both higher-is-better).
    let norm = |v: f64, min: f64, max: f64| (v - min) / (max - min) * 100.0;
    let composite =
        |received_score: f64, rate_score: f64| (1.0 * received_score + 2.0 * rate_score) / 3.0;

    // August. received per 10,000: A 20 ÷ 10,000 × 10,000 = 20, B 60 ÷ 20,000 × 10,000 = 30,
    // C 40 ÷ 40,000 × 10,000 = 10. Rates: A 10/10 = 100 %, B 15/20 = 75 %, C 20/40 = 50 %.
    let aug_a = composite(norm(20.0, 10.0, 30.0), norm(100.0, 50.0, 100.0)); // (50 + 200) ÷ 3
    let aug_b = composite(norm(30.0, 10.0, 30.0), norm(75.0, 50.0, 100.0)); // (100 + 100) ÷ 3
    let aug_c = composite(norm(10.0, 10.0, 30.0), norm(50.0, 50.0, 100.0)); // 0
    // August ranks: A 83.3 → 1, B 66.7 → 2, C 0 → 3.
    let august = p
        .query
        .ranking(scope("M", "201908", "P"), true)
        .await
        .expect("August ranking");
    let aug: Vec<(&str, u32, Option<i32>)> = august
        .composite
        .iter()
        .map(|c| (c.unit.as_str(), c.rank, c.rank_change))
        .collect();
    assert_eq!(
        aug,
        [("A", 1, None), ("B", 2, None), ("C", 3, None)],
        "no July data: no rank change"
    );
    for (c, expected) in august.composite.iter().zip([aug_a, aug_b, aug_c]) {
        assert_close(Some(c.score), expected, &format!("August {}", c.unit));
    }

    // September. received per 10,000: A 10, B 40 ÷ 20,000 × 10,000 = 20,
    // C 160 ÷ 40,000 × 10,000 = 40. Rates: A 5/10 = 50 %, B 18/20 = 90 %, C 30/40 = 75 %.
    let sep_a = composite(norm(10.0, 10.0, 40.0), norm(50.0, 50.0, 90.0)); // 0
    let sep_b = composite(norm(20.0, 10.0, 40.0), norm(90.0, 50.0, 90.0)); // (33.3 + 200) ÷ 3
    let sep_c = composite(norm(40.0, 10.0, 40.0), norm(75.0, 50.0, 90.0)); // (100 + 125) ÷ 3
    assert!(sep_b > sep_c && sep_c > sep_a, "B 77.8 > C 75 > A 0");
    let september = p
        .query
        .ranking(scope("M", "201909", "P"), true)
        .await
        .expect("September ranking");
    assert_eq!(september.previous_period, "201908");
    let sep: Vec<(&str, u32, Option<u32>, Option<i32>)> = september
        .composite
        .iter()
        .map(|c| (c.unit.as_str(), c.rank, c.previous_rank, c.rank_change))
        .collect();
    // rank_change = previous rank − current rank: B 2 − 1 = +1, C 3 − 2 = +1, A 1 − 3 = −2.
    assert_eq!(
        sep,
        [
            ("B", 1, Some(2), Some(2 - 1)),
            ("C", 2, Some(3), Some(3 - 2)),
            ("A", 3, Some(1), Some(1 - 3)),
        ]
    );
    for (c, expected) in september.composite.iter().zip([sep_b, sep_c, sep_a]) {
        assert_close(Some(c.score), expected, &format!("September {}", c.unit));
    }
    // The per-indicator ranks behind it.
    let rate = september
        .indicators
        .iter()
        .find(|i| i.indicator.as_str() == "on_time_rate")
        .expect("rate ranked");
    assert_eq!(rate.weight, 2.0);
    let rate_order: Vec<(&str, u32)> = rate
        .entries
        .iter()
        .map(|e| (e.unit.as_str(), e.rank))
        .collect();
    assert_eq!(rate_order, [("B", 1), ("C", 2), ("A", 3)]);
}

// 9 ------------------------------------------------------------------------------------------
