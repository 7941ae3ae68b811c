//! The review's tables as CSV with raw numbers (full precision, `.` decimal point), beside the
//! document: for spreadsheets, and for checking the review against the analytics, which the
//! document's rounded, localised figures cannot do.

use super::gather::ReviewData;
use crate::format::csv_text;
use std::collections::BTreeMap;

fn raw(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Every table of the review with raw numbers (full precision, `.` decimal point), for
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
                        e.score.to_string(),
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
