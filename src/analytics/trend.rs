//! Trends: each indicator against the previous period and the same period a year earlier,
//! for the node and each of its reporting units; and the export of the latest values.

use super::AnalyticsError;
use super::model::{
    C_DATA_SET, C_FIRST, C_INDICATOR, C_LAST, C_REPORT, C_UNIT, C_VALUE, month_range,
};
use super::rollup::{IndicatorTable, Scope, indicators, resolve};
use crate::domain::{IndicatorCode, PeriodId, UnitCode};
use polars::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendRow {
    pub unit: UnitCode,
    pub is_total: bool,
    pub indicator: IndicatorCode,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub change: Option<f64>,
    /// Relative change in %; `None` when the base is missing or 0.
    pub change_pct: Option<f64>,
    pub year_before: Option<f64>,
    pub change_yoy: Option<f64>,
    pub change_yoy_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendTable {
    pub data_set: String,
    pub period: String,
    pub previous_period: String,
    pub year_before_period: String,
    pub node: UnitCode,
    pub rows: Vec<TrendRow>,
}

fn change(now: Option<f64>, base: Option<f64>) -> (Option<f64>, Option<f64>) {
    match (now, base) {
        // A base indicator's two totals are settled, and their difference has their decimals
        // at most: settled too, so that 29664.9 − 29593.2 reads 71.7 rather than
        // 71.7000000000007. (A derived rate's change is rounded to a millionth as well.)
        (Some(n), Some(b)) => (
            Some(super::settle::settled(n - b)),
            (b != 0.0).then(|| (n - b) / b.abs() * 100.0),
        ),
        _ => (None, None),
    }
}

fn lookup(table: &IndicatorTable) -> HashMap<(&str, bool, &str), Option<f64>> {
    table
        .rows
        .iter()
        .map(|r| ((r.unit.as_str(), r.is_total, r.indicator.as_str()), r.value))
        .collect()
}

pub fn trend(model: &super::ReadModel, scope: &Scope) -> Result<TrendTable, AnalyticsError> {
    let now = indicators(model, scope)?;
    let previous_period = scope.period.previous();
    let year_before_period = scope.period.year_before();
    let previous = indicators(
        model,
        &Scope {
            period: previous_period,
            ..scope.clone()
        },
    )?;
    let year_before = indicators(
        model,
        &Scope {
            period: year_before_period,
            ..scope.clone()
        },
    )?;
    let (prev, yoy) = (lookup(&previous), lookup(&year_before));
    let rows = now
        .rows
        .iter()
        .map(|r| {
            let key = (r.unit.as_str(), r.is_total, r.indicator.as_str());
            let p = prev.get(&key).copied().flatten();
            let y = yoy.get(&key).copied().flatten();
            let (change, change_pct) = change(r.value, p);
            let (change_yoy, change_yoy_pct) = self::change(r.value, y);
            TrendRow {
                unit: r.unit.clone(),
                is_total: r.is_total,
                indicator: r.indicator.clone(),
                value: r.value,
                previous: p,
                change,
                change_pct,
                year_before: y,
                change_yoy,
                change_yoy_pct,
            }
        })
        .collect();
    Ok(TrendTable {
        data_set: now.data_set,
        period: now.period,
        previous_period: previous_period.to_string(),
        year_before_period: year_before_period.to_string(),
        node: now.node,
        rows,
    })
}

/// One stored value of a latest revision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportRow {
    pub unit: UnitCode,
    pub period: String,
    pub indicator: IndicatorCode,
    pub value: f64,
    pub revision: u32,
}

/// The latest values of every report of the data set with a period inside `scope.period ..=
/// through` (by months), for the node's reporting units, ordered by period, unit, indicator.
pub fn export(
    model: &super::ReadModel,
    scope: &Scope,
    through: PeriodId,
) -> Result<Vec<ExportRow>, AnalyticsError> {
    let r = resolve(
        model,
        &Scope {
            indicators: Vec::new(),
            ..scope.clone()
        },
    )?;
    let (a, _) = month_range(&scope.period);
    let (_, b) = month_range(&through);
    let unit_ids: Vec<u32> = r.units.iter().map(|(id, _, _)| *id).collect();
    let df = model
        .values()
        .clone()
        .lazy()
        .filter(
            col(C_DATA_SET)
                .eq(lit(r.data_set_id))
                .and(col(C_FIRST).gt_eq(lit(a)))
                .and(col(C_LAST).lt_eq(lit(b)))
                .and(
                    col(C_UNIT).is_in(lit(Series::new("u".into(), unit_ids)).implode(false), false),
                ),
        )
        .sort(
            [C_FIRST, C_UNIT, C_INDICATOR],
            SortMultipleOptions::default(),
        )
        .collect()?;
    let report = df.column(C_REPORT)?.u32()?;
    let unit = df.column(C_UNIT)?.u32()?;
    let indicator = df.column(C_INDICATOR)?.u32()?;
    let value = df.column(C_VALUE)?.f64()?;
    let units = model.units().all();
    let catalog_indicators = model.catalog().indicators();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(rep), Some(u), Some(ind), Some(v)) =
            (report.get(i), unit.get(i), indicator.get(i), value.get(i))
        else {
            continue;
        };
        let (Some(meta), Some(unit), Some(indicator)) = (
            model.reports().get(rep as usize),
            units.get(u as usize),
            catalog_indicators.get(ind as usize),
        ) else {
            continue;
        };
        out.push(ExportRow {
            unit: unit.code.clone(),
            period: meta.period.to_string(),
            indicator: indicator.code.clone(),
            value: v,
            revision: meta.revision,
        });
    }
    Ok(out)
}
