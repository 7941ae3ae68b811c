//! Checks the polars answers number by number against the same answers computed in SQL on
//! the same store: a speed figure is only worth printing if both sides answered the same
//! question, so the benchmark fails when they disagree.

use crate::analytics::{IndicatorTable, RankingTable, SeriesTable};
use crate::store::bench::{ProvinceRow, ProvinceRowKind, SeriesRow};
use std::collections::BTreeMap;

/// Relative tolerance between SQL and polars numbers: the two add floats in different orders.
const TOLERANCE: f64 = 1e-6;
/// Below this, two numbers are equal whatever their ratio (0 against 1e-15 after rounding).
const ABSOLUTE_FLOOR: f64 = 1e-9;

/// Numbers compared between SQL and polars, and what differed.
#[derive(Debug, Default, Clone)]
pub(super) struct Agreement {
    pub(super) compared: usize,
    pub(super) mismatches: usize,
    pub(super) examples: Vec<String>,
}

impl Agreement {
    pub(super) fn agrees(&self) -> bool {
        self.mismatches == 0 && self.compared > 0
    }
}

/// What a number in an answer is: its kind, unit (`None` for totals) and indicator.
type Key = (u8, Option<String>, Option<String>);
/// A value and, for rankings, a rank.
type Cell = (Option<f64>, Option<i64>);

const K_UNIT: u8 = 0;
const K_TOTAL: u8 = 1;
const K_RANK: u8 = 2;
const K_COMPOSITE: u8 = 3;
const K_YEAR: u8 = 4;

pub(super) fn province_from_polars(
    table: &IndicatorTable,
    ranking: &RankingTable,
) -> BTreeMap<Key, Cell> {
    let mut out = BTreeMap::new();
    for row in &table.rows {
        let key = if row.is_total {
            (K_TOTAL, None, Some(row.indicator.to_string()))
        } else {
            (
                K_UNIT,
                Some(row.unit.to_string()),
                Some(row.indicator.to_string()),
            )
        };
        out.insert(key, (row.value, None));
    }
    for indicator in &ranking.indicators {
        for entry in &indicator.entries {
            out.insert(
                (
                    K_RANK,
                    Some(entry.unit.to_string()),
                    Some(indicator.indicator.to_string()),
                ),
                (entry.value, Some(i64::from(entry.rank))),
            );
        }
    }
    for entry in &ranking.composite {
        out.insert(
            (K_COMPOSITE, Some(entry.unit.to_string()), None),
            (Some(entry.score), Some(i64::from(entry.rank))),
        );
    }
    out
}

pub(super) fn province_from_sql(rows: &[ProvinceRow]) -> BTreeMap<Key, Cell> {
    rows.iter()
        .map(|r| {
            let kind = match r.kind {
                ProvinceRowKind::UnitValue => K_UNIT,
                ProvinceRowKind::Total => K_TOTAL,
                ProvinceRowKind::IndicatorRank => K_RANK,
                ProvinceRowKind::Composite => K_COMPOSITE,
            };
            (
                (kind, r.unit.clone(), r.indicator.clone()),
                (r.value, r.rank),
            )
        })
        .collect()
}

pub(super) fn series_from_polars(table: &SeriesTable) -> BTreeMap<Key, Cell> {
    let mut out = BTreeMap::new();
    for (p, period) in table.periods.iter().enumerate() {
        for (i, indicator) in table.indicators.iter().enumerate() {
            let value = table
                .values
                .get(p)
                .and_then(|row| row.get(i))
                .copied()
                .flatten();
            out.insert(
                (K_YEAR, Some(period.clone()), Some(indicator.to_string())),
                (value, None),
            );
        }
    }
    out
}

pub(super) fn series_from_sql(rows: &[SeriesRow]) -> BTreeMap<Key, Cell> {
    rows.iter()
        .map(|r| {
            (
                (K_YEAR, Some(r.year.clone()), Some(r.indicator.clone())),
                (r.value, None),
            )
        })
        .collect()
}

fn close_enough(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= (TOLERANCE * a.abs().max(b.abs())).max(ABSOLUTE_FLOOR)
}

/// Every key of either answer: values within the tolerance (or both missing), ranks equal.
pub(super) fn compare(polars: &BTreeMap<Key, Cell>, sql: &BTreeMap<Key, Cell>) -> Agreement {
    let mut agreement = Agreement::default();
    let none: Cell = (None, None);
    let keys: std::collections::BTreeSet<&Key> = polars.keys().chain(sql.keys()).collect();
    for key in keys {
        let p = polars.get(key).unwrap_or(&none);
        let s = sql.get(key).unwrap_or(&none);
        let values_agree = match (p.0, s.0) {
            (Some(a), Some(b)) => close_enough(a, b),
            (None, None) => true,
            _ => false,
        };
        agreement.compared += usize::from(p.0.is_some()) + usize::from(p.1.is_some());
        if !values_agree || p.1 != s.1 {
            agreement.mismatches += 1;
            if agreement.examples.len() < 10 {
                agreement
                    .examples
                    .push(format!("{key:?}: polars {p:?}, SQL {s:?}"));
            }
        }
    }
    agreement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_tolerates_rounding_only() {
        let key: Key = (K_TOTAL, None, Some("a".into()));
        let polars = BTreeMap::from([(key.clone(), (Some(1.0), None))]);
        let close = BTreeMap::from([(key.clone(), (Some(1.0 + 1e-9), None))]);
        let far = BTreeMap::from([(key, (Some(1.001), None))]);
        assert!(compare(&polars, &close).agrees());
        assert!(!compare(&polars, &far).agrees());
        assert!(!compare(&polars, &BTreeMap::new()).agrees());
    }
}
