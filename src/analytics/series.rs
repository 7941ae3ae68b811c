//! Node totals over a run of consecutive periods, in one pass over the read model: the long
//! view that trends and the ten-year national rollup need, where one `indicators` query per
//! period would scan the model once per period.

use super::AnalyticsError;
use super::model::{C_FIRST, C_INDICATOR, C_VALUE, ReadModel, month_range};
use super::rollup::{Scope, derive, resolve, scoped_values, totals_over_time_and_units};
use crate::domain::{IndicatorCode, PeriodId, PeriodType, UnitCode};
use polars::prelude::*;
use std::collections::HashMap;

/// Node totals for a run of consecutive periods of one type (monthly, quarterly, half-yearly
/// or yearly), computed in one pass over the model: the long view for trends and the
/// ten-year national rollup.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesTable {
    pub data_set: String,
    pub node: UnitCode,
    pub periods: Vec<String>,
    pub indicators: Vec<IndicatorCode>,
    /// `values[p][i]`: period `periods[p]`, indicator `indicators[i]`.
    pub values: Vec<Vec<Option<f64>>>,
}

pub fn series(
    model: &ReadModel,
    scope: &Scope,
    through: PeriodId,
) -> Result<SeriesTable, AnalyticsError> {
    let first = scope.period;
    let length: i32 = match first.period_type() {
        PeriodType::Monthly => 1,
        PeriodType::Quarterly => 3,
        PeriodType::SixMonthly => 6,
        PeriodType::Yearly => 12,
        PeriodType::NineMonthly => {
            return Err(AnalyticsError::Unsupported(
                "a series of nine-month periods (they overlap)".into(),
            ));
        }
    };
    if through.period_type() != first.period_type() || through < first {
        return Err(AnalyticsError::Unsupported(format!(
            "a series from {first} to {through}: both ends must be of one type, in order"
        )));
    }
    let r = resolve(model, scope)?;
    let mut periods = vec![first];
    while let Some(&last) = periods.last() {
        if last == through {
            break;
        }
        periods.push(last.next());
    }
    let (a, _) = month_range(&first);
    let (_, b) = month_range(&through);
    let bucketed = scoped_values(model, &r, a, b)?.with_column(
        // (m_first − a) ≥ 0, so truncating the quotient floors it (and needs no extra polars
        // feature).
        ((col(C_FIRST) - lit(a)).cast(DataType::Float64) / lit(f64::from(length)))
            .cast(DataType::Int32)
            .alias("bucket"),
    );
    let totals = totals_over_time_and_units(bucketed, &r.base, &["bucket"])?.collect()?;
    let bucket = totals.column("bucket")?.i32()?;
    let indicator = totals.column(C_INDICATOR)?.u32()?;
    let value = totals.column(C_VALUE)?.f64()?;
    let mut by_bucket: HashMap<(i32, u32), f64> = HashMap::new();
    for i in 0..totals.height() {
        if let (Some(bk), Some(ind), Some(v)) = (bucket.get(i), indicator.get(i), value.get(i)) {
            // Rounded before anything is derived from it: see `settle.rs`.
            by_bucket.insert((bk, ind), super::settle::settled(v));
        }
    }
    let id_of = |code: &IndicatorCode| model.dictionary().indicator_id(code.as_str());
    let mut indicators: Vec<IndicatorCode> = r.shown_base.iter().map(|i| i.code.clone()).collect();
    indicators.extend(r.shown_derived.iter().map(|d| d.code.clone()));
    let values = (0..periods.len() as i32)
        .map(|bk| {
            let get =
                |code: &IndicatorCode| id_of(code).and_then(|id| by_bucket.get(&(bk, id)).copied());
            let mut row: Vec<Option<f64>> = r.shown_base.iter().map(|i| get(&i.code)).collect();
            row.extend(
                r.shown_derived
                    .iter()
                    .map(|d| derive(d, get(&d.numerator), get(&d.denominator)).0),
            );
            row
        })
        .collect();
    Ok(SeriesTable {
        data_set: r.data_set.code.to_string(),
        node: r.node.clone(),
        periods: periods.iter().map(|p| p.to_string()).collect(),
        indicators,
        values,
    })
}
