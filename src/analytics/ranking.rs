//! Rankings of the units under a node: per indicator (direction from the catalog, ties share
//! the best rank, missing data ranked last and marked), optionally per 10,000 inhabitants, and
//! the composite score.
//!
//! Composite score (documented in the README): for each ranked indicator with a weight > 0,
//! every unit's value (per 10,000 inhabitants where the catalog says so) is normalised to
//! 0–100 across the units: 100 for the best, 0 for the worst, (v − min) ÷ (max − min) × 100 in
//! between (reversed for lower-is-better; 100 for all when every unit has the same value). A
//! unit that did not report the indicator scores 0 on it. The composite is the weighted mean of
//! these scores with the catalog's weights; units are ranked on it (ties share the best rank),
//! and each unit's rank is compared with its rank for the previous period.

use super::AnalyticsError;
use super::rollup::{Scope, indicators};
use crate::domain::catalog::{Direction, Ranking};
use crate::domain::{IndicatorCode, UnitCode};
use polars::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankEntry {
    pub unit: UnitCode,
    /// The value ranked (per 10,000 inhabitants if `per_capita`).
    pub value: Option<f64>,
    pub rank: u32,
    /// No value: ranked after every unit that has one.
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorRanking {
    pub indicator: IndicatorCode,
    pub direction: Direction,
    pub weight: f64,
    pub per_capita: bool,
    /// Best first.
    pub entries: Vec<RankEntry>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CompositeEntry {
    pub unit: UnitCode,
    /// 0–100.
    pub score: f64,
    pub rank: u32,
    pub previous_rank: Option<u32>,
    /// Places gained since the previous period (positive = moved up).
    pub rank_change: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankingTable {
    pub data_set: String,
    pub period: String,
    pub previous_period: String,
    pub node: UnitCode,
    pub indicators: Vec<IndicatorRanking>,
    /// Best first; empty when no ranked indicator has a weight.
    pub composite: Vec<CompositeEntry>,
}

const C_SCORE: &str = "score_value";
const C_KEY: &str = "key";

/// Ranks within each `key` group: ties share the best (lowest) rank; nulls come last, all
/// sharing the rank after the last unit with a value.
fn ranked(frame: DataFrame, descending_keys: &[bool]) -> PolarsResult<DataFrame> {
    let flags: Vec<u32> = descending_keys.iter().map(|d| u32::from(*d)).collect();
    let directions = DataFrame::new(
        flags.len(),
        vec![
            Column::new(C_KEY.into(), (0..flags.len() as u32).collect::<Vec<_>>()),
            Column::new("descending".into(), flags),
        ],
    )?;
    // polars ranks ascending or descending per call, so rank both ways and pick per group.
    let ascending = col(C_SCORE).rank(
        RankOptions {
            method: RankMethod::Min,
            descending: false,
        },
        None,
    );
    let descending = col(C_SCORE).rank(
        RankOptions {
            method: RankMethod::Min,
            descending: true,
        },
        None,
    );
    frame
        .lazy()
        .join(
            directions.lazy(),
            [col(C_KEY)],
            [col(C_KEY)],
            JoinArgs::new(JoinType::Inner),
        )
        .with_columns([
            ascending.over([col(C_KEY)])?.alias("rank_asc"),
            descending.over([col(C_KEY)])?.alias("rank_desc"),
            (col(C_SCORE).count().over([col(C_KEY)])? + lit(1u32)).alias("rank_missing"),
            col(C_SCORE).min().over([col(C_KEY)])?.alias("min"),
            col(C_SCORE).max().over([col(C_KEY)])?.alias("max"),
        ])
        .with_column(
            when(col(C_SCORE).is_null())
                .then(col("rank_missing").cast(DataType::UInt32))
                .when(col("descending").eq(lit(1u32)))
                .then(col("rank_desc").cast(DataType::UInt32))
                .otherwise(col("rank_asc").cast(DataType::UInt32))
                .alias("rank"),
        )
        .with_column(
            // 0–100, best = 100; equal values everywhere = 100; missing = 0.
            when(col(C_SCORE).is_null())
                .then(lit(0.0))
                .when(col("max").eq(col("min")))
                .then(lit(100.0))
                .when(col("descending").eq(lit(1u32)))
                .then((col(C_SCORE) - col("min")) / (col("max") - col("min")) * lit(100.0))
                .otherwise((col("max") - col(C_SCORE)) / (col("max") - col("min")) * lit(100.0))
                .alias("normalised"),
        )
        .collect()
}

/// One unit's place on one indicator: (unit index, value, rank, normalised score).
type Placed = (usize, Option<f64>, u32, f64);

struct Ranked {
    per_indicator: Vec<Vec<Placed>>,
    /// Per unit index: (score, rank).
    composite: Vec<(f64, u32)>,
}

fn rank_period(
    table: &super::rollup::IndicatorTable,
    units: &[(UnitCode, u64)],
    ranked_indicators: &[(IndicatorCode, Ranking)],
    per_capita: bool,
) -> Result<Ranked, AnalyticsError> {
    let cells = table.unit_cells();
    // Long frame: one row per (indicator, unit), values nulled where unknown.
    let mut key = Vec::new();
    let mut unit_index = Vec::new();
    let mut score: Vec<Option<f64>> = Vec::new();
    for (k, (code, ranking)) in ranked_indicators.iter().enumerate() {
        for (u, (unit, population)) in units.iter().enumerate() {
            let raw = cells
                .get(&(unit.as_str(), code.as_str()))
                .and_then(|row| row.value);
            let value = match raw {
                Some(v) if per_capita && ranking.per_capita => {
                    (*population > 0).then(|| v / *population as f64 * 10_000.0)
                }
                other => other,
            };
            key.push(k as u32);
            unit_index.push(u as u32);
            score.push(value);
        }
    }
    let height = key.len();
    let frame = DataFrame::new(
        height,
        vec![
            Column::new(C_KEY.into(), key),
            Column::new("unit_index".into(), unit_index),
            Column::new(C_SCORE.into(), score),
        ],
    )?;
    let descending: Vec<bool> = ranked_indicators
        .iter()
        .map(|(_, r)| r.direction == Direction::HigherIsBetter)
        .collect();
    let out = ranked(frame, &descending)?;
    let weights: Vec<f64> = ranked_indicators.iter().map(|(_, r)| r.weight).collect();
    let k_col = out.column(C_KEY)?.u32()?;
    let u_col = out.column("unit_index")?.u32()?;
    let v_col = out.column(C_SCORE)?.f64()?;
    let r_col = out.column("rank")?.u32()?;
    let n_col = out.column("normalised")?.f64()?;
    let mut per_indicator = vec![Vec::new(); ranked_indicators.len()];
    let mut weighted = vec![0.0; units.len()];
    for i in 0..out.height() {
        let (Some(k), Some(u), Some(r), Some(n)) =
            (k_col.get(i), u_col.get(i), r_col.get(i), n_col.get(i))
        else {
            continue;
        };
        per_indicator[k as usize].push((u as usize, v_col.get(i), r, n));
        weighted[u as usize] += weights[k as usize] * n;
    }
    let total_weight: f64 = weights.iter().sum();
    let composite = if total_weight > 0.0 {
        let scores: Vec<f64> = weighted.iter().map(|w| w / total_weight).collect();
        let frame = DataFrame::new(
            scores.len(),
            vec![
                Column::new(C_KEY.into(), vec![0u32; scores.len()]),
                Column::new(
                    "unit_index".into(),
                    (0..scores.len() as u32).collect::<Vec<_>>(),
                ),
                Column::new(C_SCORE.into(), scores.clone()),
            ],
        )?;
        let out = ranked(frame, &[true])?;
        let u_col = out.column("unit_index")?.u32()?;
        let r_col = out.column("rank")?.u32()?;
        let mut ranks = vec![0; scores.len()];
        for i in 0..out.height() {
            if let (Some(u), Some(r)) = (u_col.get(i), r_col.get(i)) {
                ranks[u as usize] = r;
            }
        }
        scores.into_iter().zip(ranks).collect()
    } else {
        Vec::new()
    };
    Ok(Ranked {
        per_indicator,
        composite,
    })
}

pub fn ranking(
    model: &super::ReadModel,
    scope: &Scope,
    per_capita: bool,
) -> Result<RankingTable, AnalyticsError> {
    let resolved = super::rollup::resolve(model, scope)?;
    let units: Vec<(UnitCode, u64)> = resolved
        .units
        .iter()
        .map(|(_, code, population)| (code.clone(), *population))
        .collect();
    let mut ranked_indicators: Vec<(IndicatorCode, Ranking)> = Vec::new();
    for i in &resolved.shown_base {
        if let Some(r) = &i.ranking {
            ranked_indicators.push((i.code.clone(), r.clone()));
        }
    }
    for d in &resolved.shown_derived {
        if let Some(r) = &d.ranking {
            ranked_indicators.push((d.code.clone(), r.clone()));
        }
    }
    let codes: Vec<String> = ranked_indicators
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    let narrowed = Scope {
        indicators: codes,
        ..scope.clone()
    };
    let current_table = indicators(model, &narrowed)?;
    let current = rank_period(&current_table, &units, &ranked_indicators, per_capita)?;
    let previous_period = scope.period.previous();
    let previous_scope = Scope {
        period: previous_period,
        ..narrowed
    };
    // The previous period may lie before any data (or not be whole): no rank change then.
    let previous = match indicators(model, &previous_scope) {
        Ok(table) if table.rows.iter().any(|r| r.reports_received > 0) => {
            Some(rank_period(&table, &units, &ranked_indicators, per_capita)?)
        }
        _ => None,
    };

    let indicators_out = ranked_indicators
        .iter()
        .zip(current.per_indicator)
        .map(|((code, r), mut entries)| {
            entries.sort_by_key(|(u, _, rank, _)| (*rank, *u));
            IndicatorRanking {
                indicator: code.clone(),
                direction: r.direction,
                weight: r.weight,
                per_capita: per_capita && r.per_capita,
                entries: entries
                    .into_iter()
                    .map(|(u, value, rank, _)| RankEntry {
                        unit: units[u].0.clone(),
                        value,
                        rank,
                        missing: value.is_none(),
                    })
                    .collect(),
            }
        })
        .collect();
    let previous_ranks: HashMap<usize, u32> = previous
        .map(|p| {
            p.composite
                .iter()
                .enumerate()
                .map(|(u, (_, r))| (u, *r))
                .collect()
        })
        .unwrap_or_default();
    let mut composite: Vec<CompositeEntry> = current
        .composite
        .iter()
        .enumerate()
        .map(|(u, (score, rank))| {
            let previous_rank = previous_ranks.get(&u).copied();
            CompositeEntry {
                unit: units[u].0.clone(),
                score: *score,
                rank: *rank,
                previous_rank,
                rank_change: previous_rank.map(|p| p as i32 - *rank as i32),
            }
        })
        .collect();
    composite.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.unit.cmp(&b.unit)));
    Ok(RankingTable {
        data_set: scope.data_set.clone(),
        period: scope.period.to_string(),
        previous_period: previous_period.to_string(),
        node: resolved.node,
        indicators: indicators_out,
        composite,
    })
}
