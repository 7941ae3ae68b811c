//! Indicators for a period and a node of the unit tree: values aggregated over time by each
//! indicator's rule (flows summed, stocks' latest value, maxima's max), then over units (sums,
//! except maxima), then derived rates computed from the aggregated components, so the province's
//! on-time rate is Σ on-time ÷ Σ resolved and never a mean of district rates.

use super::AnalyticsError;
use super::model::{
    C_DATA_SET, C_FIRST, C_INDICATOR, C_LAST, C_UNIT, C_VALUE, ReadModel, month_range,
};
use crate::domain::catalog::{Aggregation, DataSet, DerivedIndicator, Indicator};
use crate::domain::{IndicatorCode, PeriodId, UnitCode};
use polars::prelude::*;
use std::collections::HashMap;

/// What a query asks about.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub data_set: String,
    pub period: PeriodId,
    /// Any unit of the tree; its reporting units are the ones aggregated.
    pub node: String,
    /// Indicator and derived-indicator codes; empty for all of the data set's.
    pub indicators: Vec<String>,
}

/// One cell of an indicator table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorRow {
    pub unit: UnitCode,
    /// The node's total rather than one unit's value.
    pub is_total: bool,
    pub indicator: IndicatorCode,
    pub derived: bool,
    /// `None` when it cannot be known; `reason` says why (never NaN or infinity).
    pub value: Option<f64>,
    pub reason: Option<String>,
    /// Reports received (for a total: over all its units) out of those expected.
    pub reports_received: u32,
    pub reports_expected: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorTable {
    pub data_set: String,
    pub period: String,
    pub node: UnitCode,
    /// Column order: the data set's indicators, then derived ones.
    pub indicators: Vec<IndicatorCode>,
    /// The node's totals first, then each reporting unit in tree order.
    pub rows: Vec<IndicatorRow>,
}

impl IndicatorTable {
    pub fn value(&self, unit: &str, indicator: &str) -> Option<&IndicatorRow> {
        self.rows
            .iter()
            .find(|r| r.unit.as_str() == unit && r.indicator.as_str() == indicator)
    }

    /// The units' rows (not the total's) by (unit, indicator), for callers that look up every
    /// cell: `value` scans the table, which over units × indicators cells grows quadratically.
    pub fn unit_cells(&self) -> HashMap<(&str, &str), &IndicatorRow> {
        self.rows
            .iter()
            .filter(|row| !row.is_total)
            .map(|row| ((row.unit.as_str(), row.indicator.as_str()), row))
            .collect()
    }

    pub fn total(&self, indicator: &str) -> Option<&IndicatorRow> {
        self.rows
            .iter()
            .find(|r| r.is_total && r.indicator.as_str() == indicator)
    }
}

/// A scope checked against the catalog and the unit tree.
pub(crate) struct Resolved<'m> {
    pub data_set: &'m DataSet,
    pub data_set_id: u32,
    pub period: PeriodId,
    /// The data set's periods that make up the query period.
    pub periods: Vec<PeriodId>,
    pub node: UnitCode,
    /// Units under the node whose level reports the data set: (id, code, population).
    pub units: Vec<(u32, UnitCode, u64)>,
    /// Base indicators to aggregate (requested ones plus components of requested derived ones).
    pub base: Vec<(u32, &'m Indicator)>,
    /// Base indicators to show, then derived ones to show.
    pub shown_base: Vec<&'m Indicator>,
    pub shown_derived: Vec<&'m DerivedIndicator>,
}

pub(crate) fn resolve<'m>(
    model: &'m ReadModel,
    scope: &Scope,
) -> Result<Resolved<'m>, AnalyticsError> {
    let catalog = model.catalog();
    let dict = model.dictionary();
    let data_set = catalog
        .data_set(&scope.data_set)
        .ok_or_else(|| AnalyticsError::UnknownDataSet(scope.data_set.clone()))?;
    let data_set_id = dict
        .data_set_id(&scope.data_set)
        .ok_or_else(|| AnalyticsError::UnknownDataSet(scope.data_set.clone()))?;
    let periods = scope
        .period
        .periods_within(data_set.period_type)
        .ok_or_else(|| AnalyticsError::PeriodNotAligned {
            period: scope.period.to_string(),
            data_set: data_set.code.to_string(),
            period_type: data_set.period_type,
        })?;
    let node = model
        .units()
        .find(&scope.node)
        .ok_or_else(|| AnalyticsError::UnknownUnit(scope.node.clone()))?;
    let units = model
        .units()
        .subtree(&node.code)
        .into_iter()
        .filter(|u| data_set.reporting_levels.contains(&u.level))
        .filter_map(|u| Some((dict.unit_id(u.code.as_str())?, u.code.clone(), u.population)))
        .collect();

    let in_data_set: Vec<&Indicator> = data_set
        .indicators
        .iter()
        .filter_map(|i| catalog.indicator(&i.indicator))
        .collect();
    let available_derived: Vec<&DerivedIndicator> = catalog
        .derived()
        .iter()
        .filter(|d| {
            data_set.indicator(&d.numerator).is_some()
                && data_set.indicator(&d.denominator).is_some()
        })
        .collect();
    let (shown_base, shown_derived) = if scope.indicators.is_empty() {
        (in_data_set.clone(), available_derived.clone())
    } else {
        let mut base = Vec::new();
        let mut derived = Vec::new();
        for code in &scope.indicators {
            if let Some(i) = in_data_set.iter().find(|i| i.code.as_str() == code) {
                base.push(*i);
            } else if let Some(d) = available_derived.iter().find(|d| d.code.as_str() == code) {
                derived.push(*d);
            } else {
                return Err(AnalyticsError::UnknownIndicator {
                    indicator: code.clone(),
                    data_set: data_set.code.to_string(),
                });
            }
        }
        (base, derived)
    };
    let mut base: Vec<(u32, &Indicator)> = Vec::new();
    let mut add = |indicator: &'m Indicator| {
        if let Some(id) = dict.indicator_id(indicator.code.as_str())
            && !base.iter().any(|(b, _)| *b == id)
        {
            base.push((id, indicator));
        }
    };
    for i in &shown_base {
        add(i);
    }
    for d in &shown_derived {
        for part in [&d.numerator, &d.denominator] {
            if let Some(i) = catalog.indicator(part) {
                add(i);
            }
        }
    }
    Ok(Resolved {
        data_set,
        data_set_id,
        period: scope.period,
        periods,
        node: node.code.clone(),
        units,
        base,
        shown_base,
        shown_derived,
    })
}

fn aggregation_code(a: Aggregation) -> u8 {
    match a {
        Aggregation::Sum => 0,
        Aggregation::Last => 1,
        Aggregation::Max => 2,
    }
}

fn rules_frame(base: &[(u32, &Indicator)]) -> PolarsResult<LazyFrame> {
    let ids: Vec<u32> = base.iter().map(|(id, _)| *id).collect();
    let rules: Vec<u32> = base
        .iter()
        .map(|(_, i)| u32::from(aggregation_code(i.aggregation)))
        .collect();
    Ok(DataFrame::new(
        ids.len(),
        vec![
            Column::new(C_INDICATOR.into(), ids),
            Column::new("rule".into(), rules),
        ],
    )?
    .lazy())
}

/// Picks the column of the indicator's rule: 0 sum, 1 last, 2 max.
fn by_rule(sum: &str, last: &str, max: &str) -> Expr {
    when(col("rule").eq(lit(0u32)))
        .then(col(sum))
        .when(col("rule").eq(lit(1u32)))
        .then(col(last))
        .otherwise(col(max))
}

/// The model's values for the scope's data set, units and base indicators in months `a..=b`.
///
/// The rows to keep are picked in one plain pass over the id columns, with the scope's units
/// and indicators as dense lookup tables (ids are small integers): at national size polars'
/// `is_in` hashed each of the 24 million unit ids and was the largest cost of the query.
pub(crate) fn scoped_values(
    model: &ReadModel,
    r: &Resolved<'_>,
    a: i32,
    b: i32,
) -> PolarsResult<LazyFrame> {
    let lookup_table = |ids: Vec<u32>| {
        let mut table = vec![false; ids.iter().max().map_or(0, |m| *m as usize + 1)];
        for id in ids {
            table[id as usize] = true;
        }
        table
    };
    let unit_in = lookup_table(r.units.iter().map(|(id, _, _)| *id).collect());
    let indicator_in = lookup_table(r.base.iter().map(|(id, _)| *id).collect());
    let contains = |table: &[bool], id: u32| table.get(id as usize).copied().unwrap_or(false);
    let values = model.values();
    let data_set = values.column(C_DATA_SET)?.u32()?;
    let unit = values.column(C_UNIT)?.u32()?;
    let first = values.column(C_FIRST)?.i32()?;
    let last = values.column(C_LAST)?.i32()?;
    let indicator = values.column(C_INDICATOR)?.u32()?;
    let wanted = |d: u32, u: u32, f: i32, l: i32, i: u32| {
        d == r.data_set_id
            && f >= a
            && l <= b
            && contains(&unit_in, u)
            && contains(&indicator_in, i)
    };
    let aligned = [
        unit.chunk_lengths().collect::<Vec<_>>(),
        first.chunk_lengths().collect(),
        last.chunk_lengths().collect(),
        indicator.chunk_lengths().collect(),
    ]
    .iter()
    .all(|lengths| lengths.iter().copied().eq(data_set.chunk_lengths()));
    // The id columns are built without nulls (see `ReadModel::apply`).
    let mut keep: Vec<bool> = Vec::with_capacity(values.height());
    if aligned {
        // Chunk by chunk over plain slices: a tight loop the compiler can unroll.
        for ((((d, u), f), l), i) in data_set
            .data_views()
            .zip(unit.data_views())
            .zip(first.data_views())
            .zip(last.data_views())
            .zip(indicator.data_views())
        {
            keep.extend((0..d.len()).map(|k| wanted(d[k], u[k], f[k], l[k], i[k])));
        }
    } else {
        keep.extend(
            data_set
                .into_no_null_iter()
                .zip(unit.into_no_null_iter())
                .zip(first.into_no_null_iter().zip(last.into_no_null_iter()))
                .zip(indicator.into_no_null_iter())
                .map(|(((d, u), (f, l)), i)| wanted(d, u, f, l, i)),
        );
    }
    Ok(values
        .filter(&BooleanChunked::from_slice("keep".into(), &keep))?
        .lazy())
}

/// Aggregates over time within `group` (plus unit and indicator): the per-unit value of each
/// indicator for each group.
pub(crate) fn over_time(values: LazyFrame, rules: LazyFrame, group: &[&str]) -> LazyFrame {
    let mut keys: Vec<Expr> = group.iter().map(|g| col(*g)).collect();
    keys.extend([col(C_UNIT), col(C_INDICATOR)]);
    let mut out: Vec<Expr> = group.iter().map(|g| col(*g)).collect();
    out.extend([
        col(C_UNIT),
        col(C_INDICATOR),
        by_rule("sum", "last", "max").alias(C_VALUE),
    ]);
    values
        .group_by(keys)
        .agg([
            col(C_VALUE).sum().alias("sum"),
            col(C_VALUE).max().alias("max"),
            // The value of the report ending last: one pass per group, no per-group sort.
            col(C_VALUE).get(col(C_LAST).arg_max(), false).alias("last"),
        ])
        .join(
            rules,
            [col(C_INDICATOR)],
            [col(C_INDICATOR)],
            JoinArgs::new(JoinType::Inner),
        )
        .select(out)
}

/// The group-by keys (`group`, then the indicator) and the columns a total keeps: the keys and
/// the value its rule picks from the group's `sum` and `max` (the largest for maxima).
fn keys_and_value_by_rule(group: &[&str]) -> (Vec<Expr>, Vec<Expr>) {
    let mut keys: Vec<Expr> = group.iter().map(|g| col(*g)).collect();
    keys.push(col(C_INDICATOR));
    let mut out = keys.clone();
    out.push(
        when(col("rule").eq(lit(2u32)))
            .then(col("max"))
            .otherwise(col("sum"))
            .alias(C_VALUE),
    );
    (keys, out)
}

/// Aggregates per-unit values over units: stocks and flows add up across units (the
/// province's models registered are the sum of its districts' latest counts); maxima take
/// the largest.
pub(crate) fn over_units(per_unit: LazyFrame, rules: LazyFrame, group: &[&str]) -> LazyFrame {
    let (keys, out) = keys_and_value_by_rule(group);
    per_unit
        .join(
            rules,
            [col(C_INDICATOR)],
            [col(C_INDICATOR)],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by(keys)
        .agg([
            col(C_VALUE).sum().alias("sum"),
            col(C_VALUE).max().alias("max"),
            col("rule").first(),
        ])
        .select(out)
}

/// A base indicator with its id in the read model's dictionary.
type BaseIndicator<'c> = (u32, &'c Indicator);

/// Node totals per `group` and indicator straight from the values, by the same rules as
/// `over_units(over_time(..))` but without the per-unit step where a rule does not need it: a
/// flow's total over units and months is the sum of all its values, a maximum's the largest of
/// them. Only stocks (each unit's latest value, then summed) go through the per-unit group-by,
/// which at national size is the costly one (units × indicators × periods groups). The rules
/// are joined after aggregating, to a few hundred rows rather than to every value.
pub(crate) fn totals_over_time_and_units(
    values: LazyFrame,
    base: &[(u32, &Indicator)],
    group: &[&str],
) -> PolarsResult<LazyFrame> {
    let (stocks, others): (Vec<BaseIndicator<'_>>, Vec<BaseIndicator<'_>>) = base
        .iter()
        .partition(|(_, i)| i.aggregation == Aggregation::Last);
    // `indicator = x OR indicator = y …`: a few vectorised comparisons, much cheaper over
    // millions of rows than `is_in`, which hashes every value.
    let one_of = |part: &[BaseIndicator<'_>]| {
        part.iter()
            .map(|(id, _)| col(C_INDICATOR).eq(lit(*id)))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false))
    };
    let (keys, out) = keys_and_value_by_rule(group);
    // Flows and maxima: every row is aggregated, stocks' too, and the inner join with their
    // rules then drops the stocks' groups; cheaper than filtering every row first. With no
    // flow or maximum in scope the join leaves an empty frame of the right shape.
    let mut parts = vec![
        values
            .clone()
            .group_by(keys)
            .agg([
                col(C_VALUE).sum().alias("sum"),
                col(C_VALUE).max().alias("max"),
            ])
            .join(
                rules_frame(&others)?,
                [col(C_INDICATOR)],
                [col(C_INDICATOR)],
                JoinArgs::new(JoinType::Inner),
            )
            .select(out),
    ];
    if !stocks.is_empty() {
        let rules = rules_frame(&stocks)?;
        parts.push(over_units(
            over_time(values.filter(one_of(&stocks)), rules.clone(), group),
            rules,
            group,
        ));
    }
    concat(parts, UnionArgs::default())
}

/// (unit id or u32::MAX for the total, indicator id) → value, from a collected frame.
pub(crate) fn cells(
    df: &DataFrame,
    unit_col: Option<&str>,
) -> PolarsResult<HashMap<(u32, u32), f64>> {
    let indicator = df.column(C_INDICATOR)?.u32()?;
    let value = df.column(C_VALUE)?.f64()?;
    let unit = match unit_col {
        Some(c) => Some(df.column(c)?.u32()?),
        None => None,
    };
    let mut out = HashMap::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(ind), Some(v)) = (indicator.get(i), value.get(i)) else {
            continue;
        };
        let u = match unit {
            Some(u) => u.get(i).unwrap_or(u32::MAX),
            None => u32::MAX,
        };
        // Rounded before anything is derived from it: see `settle.rs`.
        out.insert((u, ind), super::settle::settled(v));
    }
    Ok(out)
}

/// numerator ÷ denominator × factor, or why not.
pub(crate) fn derive(
    d: &DerivedIndicator,
    numerator: Option<f64>,
    denominator: Option<f64>,
) -> (Option<f64>, Option<String>) {
    match (numerator, denominator) {
        (_, None) => (
            None,
            Some(format!("denominator {} not reported", d.denominator)),
        ),
        (None, _) => (
            None,
            Some(format!("numerator {} not reported", d.numerator)),
        ),
        (Some(_), Some(0.0)) => (None, Some(format!("denominator {} is 0", d.denominator))),
        (Some(num), Some(den)) => {
            let v = num / den * d.factor;
            if v.is_finite() {
                (Some(v), None)
            } else {
                (None, Some("not a finite number".into()))
            }
        }
    }
}

/// Reports received per unit id within the scope's periods, for the scope's units only.
pub(crate) fn reports_received(model: &ReadModel, r: &Resolved<'_>) -> HashMap<u32, u32> {
    let units: std::collections::HashSet<u32> = r.units.iter().map(|(id, _, _)| *id).collect();
    let mut out = HashMap::new();
    for meta in model.reports() {
        if meta.data_set == r.data_set_id
            && units.contains(&meta.unit)
            && r.periods.contains(&meta.period)
        {
            *out.entry(meta.unit).or_insert(0) += 1;
        }
    }
    out
}

pub fn indicators(model: &ReadModel, scope: &Scope) -> Result<IndicatorTable, AnalyticsError> {
    let r = resolve(model, scope)?;
    let (a, b) = month_range(&r.period);
    let rules = rules_frame(&r.base)?;
    let per_unit = over_time(scoped_values(model, &r, a, b)?, rules.clone(), &[]).collect()?;
    let totals = over_units(per_unit.clone().lazy(), rules, &[]).collect()?;
    let unit_cells = cells(&per_unit, Some(C_UNIT))?;
    let total_cells = cells(&totals, None)?;
    let received = reports_received(model, &r);
    let expected = r.periods.len() as u32;

    let mut rows = Vec::new();
    let mut indicators: Vec<IndicatorCode> = r.shown_base.iter().map(|i| i.code.clone()).collect();
    indicators.extend(r.shown_derived.iter().map(|d| d.code.clone()));
    let total_received: u32 = received.values().sum();
    let mut emit = |unit: &UnitCode, is_total: bool, key: u32, got: u32, of: u32| {
        let cells = if is_total { &total_cells } else { &unit_cells };
        let id_of = |code: &IndicatorCode| model.dictionary().indicator_id(code.as_str());
        for i in &r.shown_base {
            let value = id_of(&i.code).and_then(|id| cells.get(&(key, id)).copied());
            let reason = match (value, got) {
                (Some(_), _) => None,
                (None, 0) => Some("no report received".to_string()),
                (None, _) => Some("not reported".to_string()),
            };
            rows.push(IndicatorRow {
                unit: unit.clone(),
                is_total,
                indicator: i.code.clone(),
                derived: false,
                value,
                reason,
                reports_received: got,
                reports_expected: of,
            });
        }
        for d in &r.shown_derived {
            let part =
                |code: &IndicatorCode| id_of(code).and_then(|id| cells.get(&(key, id)).copied());
            let (value, reason) = if got == 0 {
                (None, Some("no report received".to_string()))
            } else {
                derive(d, part(&d.numerator), part(&d.denominator))
            };
            rows.push(IndicatorRow {
                unit: unit.clone(),
                is_total,
                indicator: d.code.clone(),
                derived: true,
                value,
                reason,
                reports_received: got,
                reports_expected: of,
            });
        }
    };
    emit(
        &r.node,
        true,
        u32::MAX,
        total_received,
        expected * r.units.len() as u32,
    );
    for (id, code, _) in &r.units {
        emit(
            code,
            false,
            *id,
            received.get(id).copied().unwrap_or(0),
            expected,
        );
    }
    Ok(IndicatorTable {
        data_set: r.data_set.code.to_string(),
        period: r.period.to_string(),
        node: r.node.clone(),
        indicators,
        rows,
    })
}
