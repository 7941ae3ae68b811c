//! Completeness and timeliness, as DHIS2 counts them: expected reports (units that report the
//! data set × its periods in the query period), received, received on time; rates per unit and
//! for the node; and the list of missing and late reports: who to chase.
//!
//! A report's timeliness is that of its first revision: a correction sent after the deadline
//! does not make an on-time report late, but it is counted separately.

use super::AnalyticsError;
use super::rollup::{Scope, resolve};
use crate::domain::{PeriodId, UnitCode};
use chrono::{DateTime, Utc};
use polars::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    pub expected: u32,
    pub received: u32,
    pub on_time: u32,
    /// Received after the deadline.
    pub late: u32,
    /// Reports whose latest revision arrived after the deadline (corrections filed late).
    pub corrected_after_deadline: u32,
}

impl Counts {
    /// received ÷ expected, in %; `None` when nothing is expected.
    pub fn completeness(&self) -> Option<f64> {
        (self.expected > 0).then(|| f64::from(self.received) / f64::from(self.expected) * 100.0)
    }

    /// on time ÷ expected, in % (DHIS2's timeliness).
    pub fn timeliness(&self) -> Option<f64> {
        (self.expected > 0).then(|| f64::from(self.on_time) / f64::from(self.expected) * 100.0)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitCompleteness {
    pub unit: UnitCode,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LateReport {
    pub unit: UnitCode,
    pub period: String,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// Whole days after the deadline, rounded up.
    pub days_late: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Completeness {
    pub data_set: String,
    pub period: String,
    pub node: UnitCode,
    /// The data set's periods counted.
    pub periods: Vec<String>,
    pub total: Counts,
    pub units: Vec<UnitCompleteness>,
    /// (unit, period) with no report at all.
    pub missing: Vec<(UnitCode, String)>,
    pub late: Vec<LateReport>,
}

pub fn completeness(
    model: &super::ReadModel,
    scope: &Scope,
) -> Result<Completeness, AnalyticsError> {
    let r = resolve(model, scope)?;
    // Expected: every reporting unit × every period (small: units × periods rows).
    let mut exp_unit = Vec::new();
    let mut exp_period = Vec::new();
    for (u, _, _) in &r.units {
        for (p, _) in r.periods.iter().enumerate() {
            exp_unit.push(*u);
            exp_period.push(p as u32);
        }
    }
    let expected = DataFrame::new(
        exp_unit.len(),
        vec![
            Column::new("unit".into(), exp_unit),
            Column::new("period".into(), exp_period),
        ],
    )?;
    // Received: the reports of this data set in these periods.
    let period_index: HashMap<PeriodId, u32> = r
        .periods
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, i as u32))
        .collect();
    let (mut rec_unit, mut rec_period, mut rec_on_time, mut rec_corrected, mut rec_meta) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, meta) in model.reports().iter().enumerate() {
        if meta.data_set != r.data_set_id {
            continue;
        }
        if let Some(&p) = period_index.get(&meta.period) {
            rec_unit.push(meta.unit);
            rec_period.push(p);
            rec_on_time.push(meta.first_on_time);
            rec_corrected.push(meta.revision > 1 && meta.latest_received_at > meta.deadline);
            rec_meta.push(i as u32);
        }
    }
    let received = DataFrame::new(
        rec_unit.len(),
        vec![
            Column::new("unit".into(), rec_unit),
            Column::new("period".into(), rec_period),
            Column::new("on_time".into(), rec_on_time),
            Column::new("corrected".into(), rec_corrected),
            Column::new("meta".into(), rec_meta),
        ],
    )?;
    let joined = expected
        .lazy()
        .join(
            received.lazy(),
            [col("unit"), col("period")],
            [col("unit"), col("period")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("meta").is_not_null().alias("got"),
            col("on_time").fill_null(lit(false)),
            col("corrected").fill_null(lit(false)),
        ])
        .collect()?;
    let per_unit = joined
        .clone()
        .lazy()
        .group_by([col("unit")])
        .agg([
            len().alias("expected"),
            col("got").sum().alias("received"),
            col("on_time").sum().alias("on_time"),
            (col("got").and(col("on_time").not())).sum().alias("late"),
            col("corrected").sum().alias("corrected"),
        ])
        .collect()?;

    let mut counts_by_unit: HashMap<u32, Counts> = HashMap::new();
    let get_u32 = |name: &str| -> PolarsResult<Vec<Option<u32>>> {
        let column = per_unit.column(name)?.cast(&DataType::UInt32)?;
        let values = column.u32()?;
        Ok((0..values.len()).map(|i| values.get(i)).collect())
    };
    let (units, exp, rec, on_time, late, corrected) = (
        get_u32("unit")?,
        get_u32("expected")?,
        get_u32("received")?,
        get_u32("on_time")?,
        get_u32("late")?,
        get_u32("corrected")?,
    );
    for i in 0..per_unit.height() {
        if let Some(u) = units[i] {
            counts_by_unit.insert(
                u,
                Counts {
                    expected: exp[i].unwrap_or(0),
                    received: rec[i].unwrap_or(0),
                    on_time: on_time[i].unwrap_or(0),
                    late: late[i].unwrap_or(0),
                    corrected_after_deadline: corrected[i].unwrap_or(0),
                },
            );
        }
    }
    let mut total = Counts::default();
    let mut unit_rows = Vec::new();
    for (id, code, _) in &r.units {
        let c = counts_by_unit.get(id).cloned().unwrap_or_default();
        total.expected += c.expected;
        total.received += c.received;
        total.on_time += c.on_time;
        total.late += c.late;
        total.corrected_after_deadline += c.corrected_after_deadline;
        unit_rows.push(UnitCompleteness {
            unit: code.clone(),
            counts: c,
        });
    }

    let code_of: HashMap<u32, &UnitCode> = r.units.iter().map(|(id, c, _)| (*id, c)).collect();
    let j_unit = joined.column("unit")?.u32()?;
    let j_period = joined.column("period")?.u32()?;
    let j_meta = joined.column("meta")?.u32()?;
    let j_on_time = joined.column("on_time")?.bool()?;
    let mut missing = Vec::new();
    let mut late_list = Vec::new();
    for i in 0..joined.height() {
        let (Some(u), Some(p)) = (j_unit.get(i), j_period.get(i)) else {
            continue;
        };
        let (Some(code), Some(period)) = (code_of.get(&u), r.periods.get(p as usize)) else {
            continue;
        };
        match j_meta.get(i) {
            None => missing.push(((*code).clone(), period.to_string())),
            Some(m) if j_on_time.get(i) == Some(false) => {
                if let Some(meta) = model.reports().get(m as usize) {
                    let late_by = meta.first_received_at - meta.deadline;
                    let day = chrono::Duration::days(1);
                    let days_late =
                        (late_by.num_seconds() + day.num_seconds() - 1) / day.num_seconds();
                    late_list.push(LateReport {
                        unit: (*code).clone(),
                        period: period.to_string(),
                        received_at: meta.first_received_at,
                        deadline: meta.deadline,
                        days_late: days_late.max(1),
                    });
                }
            }
            Some(_) => {}
        }
    }
    let order: HashMap<&UnitCode, usize> = r
        .units
        .iter()
        .enumerate()
        .map(|(i, (_, c, _))| (c, i))
        .collect();
    missing.sort_by_key(|(u, p)| (order.get(u).copied(), p.clone()));
    late_list.sort_by_key(|l| (order.get(&l.unit).copied(), l.period.clone()));
    Ok(Completeness {
        data_set: r.data_set.code.to_string(),
        period: r.period.to_string(),
        node: r.node.clone(),
        periods: r.periods.iter().map(|p| p.to_string()).collect(),
        total,
        units: unit_rows,
        missing,
        late: late_list,
    })
}
