//! The review's tables as CSV with raw numbers (15 significant digits, `.` decimal point),
//! beside the document: for spreadsheets, and for checking the review against the analytics,
//! which the document's rounded, localised figures cannot do.

use super::gather::ReviewData;
use crate::format::csv_text;
use std::collections::BTreeMap;

fn raw(v: Option<f64>) -> String {
    v.map(significant).unwrap_or_default()
}

/// `x` rounded to 15 significant digits, the most an f64 holds for every value, then written
/// shortest. The totals are settled already (`analytics/settle.rs`: they were added in arrival
/// order, and one came out as 2830.3 in one generation and 2830.2999999999997 in the next);
/// this keeps the file from showing the binary noise of what is computed from them, such as
/// a ratio's 17th digit.
fn significant(x: f64) -> String {
    // Scientific notation with 14 digits after the point is 15 significant ones; parsing it
    // back gives the f64 nearest that decimal, which `to_string` writes in its shortest form.
    format!("{x:.14e}").parse::<f64>().unwrap_or(x).to_string()
}

/// Every table of the review with raw numbers (15 significant digits, `.` decimal point), for
/// spreadsheets and for checking the review against the analytics.
pub fn csv_tables(d: &ReviewData) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let c = &d.completeness;
    out.insert(
        "completeness.csv".into(),
        csv_text(
            &[
                "unit",
                "expected",
                "received",
                "on_time",
                "late",
                "corrected_after_deadline",
            ],
            c.units
                .iter()
                .map(|u| (u.unit.to_string(), &u.counts))
                .chain(std::iter::once((c.node.to_string(), &c.total)))
                .map(|(u, k)| {
                    vec![
                        u,
                        k.expected.to_string(),
                        k.received.to_string(),
                        k.on_time.to_string(),
                        k.late.to_string(),
                        k.corrected_after_deadline.to_string(),
                    ]
                })
                .collect(),
        ),
    );
    out.insert(
        "late.csv".into(),
        csv_text(
            &["unit", "period", "received_at", "deadline", "days_late"],
            c.late
                .iter()
                .map(|l| {
                    vec![
                        l.unit.to_string(),
                        l.period.clone(),
                        l.received_at.to_rfc3339(),
                        l.deadline.to_rfc3339(),
                        l.days_late.to_string(),
                    ]
                })
                .collect(),
        ),
    );
    out.insert(
        "missing.csv".into(),
        csv_text(
            &["unit", "period"],
            c.missing
                .iter()
                .map(|(u, p)| vec![u.to_string(), p.clone()])
                .collect(),
        ),
    );
    out.insert(
        "totals.csv".into(),
        csv_text(
            &[
                "indicator",
                "value",
                "previous_year",
                "change",
                "change_pct",
            ],
            d.trend
                .rows
                .iter()
                .filter(|r| r.is_total)
                .map(|r| {
                    vec![
                        r.indicator.to_string(),
                        raw(r.value),
                        raw(r.year_before),
                        raw(r.change_yoy),
                        raw(r.change_yoy_pct),
                    ]
                })
                .collect(),
        ),
    );
    out.insert(
        "ranking.csv".into(),
        csv_text(
            &["rank", "unit", "score", "previous_rank", "rank_change"],
            d.ranking
                .composite
                .iter()
                .map(|e| {
                    vec![
                        e.rank.to_string(),
                        e.unit.to_string(),
                        significant(e.score),
                        e.previous_rank.map(|r| r.to_string()).unwrap_or_default(),
                        e.rank_change.map(|r| r.to_string()).unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
    );
    out.insert(
        "indicator_ranking.csv".into(),
        csv_text(
            &["indicator", "rank", "unit", "value", "missing"],
            d.ranking
                .indicators
                .iter()
                .flat_map(|i| {
                    i.entries.iter().map(move |e| {
                        vec![
                            i.indicator.to_string(),
                            e.rank.to_string(),
                            e.unit.to_string(),
                            raw(e.value),
                            e.missing.to_string(),
                        ]
                    })
                })
                .collect(),
        ),
    );
    out.insert(
        "units.csv".into(),
        csv_text(
            &["unit", "indicator", "value"],
            d.by_unit
                .rows
                .iter()
                .filter(|r| !r.is_total)
                .map(|r| vec![r.unit.to_string(), r.indicator.to_string(), raw(r.value)])
                .collect(),
        ),
    );
    if let Some(series) = &d.monthly {
        let mut rows = Vec::new();
        for (p, period) in series.periods.iter().enumerate() {
            for (i, code) in series.indicators.iter().enumerate() {
                rows.push(vec![
                    period.clone(),
                    code.to_string(),
                    raw(series.values[p][i]),
                ]);
            }
        }
        out.insert(
            "monthly.csv".into(),
            csv_text(&["period", "indicator", "value"], rows),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{raw, significant};

    #[test]
    fn sums_one_rounding_apart_print_alike() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64, one step above 0.3.
        assert_eq!(significant(0.1 + 0.2), "0.3");
        assert_eq!(significant(0.3), "0.3");
        // The two generations seen of one monthly total.
        assert_eq!(significant(2830.2999999999997), "2830.3");
        assert_eq!(significant(2830.3), "2830.3");
        // The same three numbers added in two orders: (0.1 + 0.7) + 0.2 = 1 and
        // (0.2 + 0.7) + 0.1 = 0.9999999999999999, both printed as 1.
        let one_way: f64 = 0.1 + 0.7 + 0.2;
        let other_way: f64 = 0.2 + 0.7 + 0.1;
        assert_ne!(one_way, other_way);
        assert_eq!(significant(one_way), significant(other_way));
        assert_eq!(significant(one_way), "1");
    }

    #[test]
    fn values_with_fewer_digits_are_kept_as_they_are() {
        assert_eq!(significant(35_000_000.5), "35000000.5");
        assert_eq!(significant(-12.25), "-12.25");
        assert_eq!(significant(2600.0), "2600");
        assert_eq!(significant(96.153846153846), "96.153846153846");
        // 15 significant digits of 1/3.
        assert_eq!(significant(1.0 / 3.0), "0.333333333333333");
        assert_eq!(raw(None), "");
        assert_eq!(raw(Some(117.0)), "117");
    }
}
