//! The read model: the latest revision of every report as one long polars DataFrame, kept in
//! memory and brought up to date from the store's change feed, so a query never reloads the
//! store and sees a report as soon as it is acknowledged.
//!
//! Codes are interned as `u32` (units in unit-tree order, data sets and indicators in catalog
//! order): 24 million values then take about 0.5 GB, and group-bys hash integers, not strings.
//! Periods are kept as absolute month indices (`year × 12 + month − 1`) of their first and last
//! month, which makes "every report inside 2019Q3" a range filter for any period type.

use crate::domain::{Catalog, PeriodId, UnitTree};
use crate::store::RevisionValueRow;
use chrono::{DateTime, Utc};
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const C_REPORT: &str = "report";
pub(crate) const C_UNIT: &str = "unit";
pub(crate) const C_DATA_SET: &str = "data_set";
pub(crate) const C_FIRST: &str = "m_first";
pub(crate) const C_LAST: &str = "m_last";
pub(crate) const C_INDICATOR: &str = "indicator";
pub(crate) const C_VALUE: &str = "value";

/// How long a seq number that has not shown up yet is looked for again. PostgreSQL hands out
/// seqs before commit, so seq 11 can become visible before seq 10; a seq burned by a rolled-back
/// transaction never shows up at all.
const GAP_PATIENCE: Duration = Duration::from_secs(60);

/// Absolute month index of a period's first and last month.
pub fn month_range(period: &PeriodId) -> (i32, i32) {
    let (first, last) = period.month_span();
    let base = period.year() * 12 - 1;
    (base + first as i32, base + last as i32)
}

/// Code ⇄ integer maps, fixed by the catalog and the unit tree.
#[derive(Debug)]
pub struct Dictionary {
    pub catalog: Arc<Catalog>,
    pub units: Arc<UnitTree>,
    unit_ids: HashMap<String, u32>,
    data_set_ids: HashMap<String, u32>,
    indicator_ids: HashMap<String, u32>,
}

impl Dictionary {
    pub fn new(catalog: Arc<Catalog>, units: Arc<UnitTree>) -> Self {
        let ids = |codes: Vec<String>| {
            codes
                .into_iter()
                .enumerate()
                .map(|(i, c)| (c, i as u32))
                .collect::<HashMap<_, _>>()
        };
        Dictionary {
            unit_ids: ids(units.all().iter().map(|u| u.code.to_string()).collect()),
            data_set_ids: ids(catalog
                .data_sets()
                .iter()
                .map(|d| d.code.to_string())
                .collect()),
            indicator_ids: ids(catalog
                .indicators()
                .iter()
                .map(|i| i.code.to_string())
                .collect()),
            catalog,
            units,
        }
    }

    pub fn unit_id(&self, code: &str) -> Option<u32> {
        self.unit_ids.get(code).copied()
    }

    pub fn data_set_id(&self, code: &str) -> Option<u32> {
        self.data_set_ids.get(code).copied()
    }

    pub fn indicator_id(&self, code: &str) -> Option<u32> {
        self.indicator_ids.get(code).copied()
    }
}

/// What analytics keep about one report (its latest revision, and its first one's arrival).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    pub unit: u32,
    pub data_set: u32,
    pub period: PeriodId,
    pub revision: u32,
    pub seq: i64,
    pub latest_received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub first_received_at: DateTime<Utc>,
    pub first_on_time: bool,
}

/// Rows from the store, interned as they stream in (the store never has to hand over its
/// strings all at once).
#[derive(Debug, Default)]
pub struct ChangeBatch {
    revisions: Vec<ReportMeta>,
    /// Per value: index into `revisions`, indicator id, value.
    owner: Vec<u32>,
    indicator: Vec<u32>,
    value: Vec<f64>,
    seqs: Vec<i64>,
    /// Rows whose unit, data set, period or indicator the catalog or unit tree does not know
    /// (they were changed after the report was stored).
    pub skipped_rows: u64,
    /// Whether the revision being read has a known unit, data set and period.
    current_known: bool,
}

impl ChangeBatch {
    pub fn push(&mut self, dict: &Dictionary, row: RevisionValueRow) {
        if self.seqs.last() != Some(&row.seq) {
            self.seqs.push(row.seq);
            self.current_known = match (
                dict.unit_id(&row.unit),
                dict.data_set_id(&row.data_set),
                PeriodId::parse(&row.period),
            ) {
                (Some(unit), Some(data_set), Ok(period)) => {
                    self.revisions.push(ReportMeta {
                        unit,
                        data_set,
                        period,
                        revision: row.revision,
                        seq: row.seq,
                        latest_received_at: row.received_at,
                        deadline: row.deadline,
                        first_received_at: row.first_received_at,
                        first_on_time: row.first_on_time,
                    });
                    true
                }
                _ => false,
            };
        }
        if !self.current_known {
            self.skipped_rows += 1;
            return;
        }
        let (Some(indicator), Some(value)) = (row.indicator, row.value) else {
            return;
        };
        match dict.indicator_id(&indicator) {
            Some(id) => {
                self.owner.push((self.revisions.len() - 1) as u32);
                self.indicator.push(id);
                self.value.push(value);
            }
            None => self.skipped_rows += 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// Counts from one `apply`, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub reports_added: usize,
    pub reports_replaced: usize,
    pub stale_revisions_ignored: usize,
    pub values: usize,
}

pub struct ReadModel {
    dict: Arc<Dictionary>,
    reports: Vec<ReportMeta>,
    report_ids: HashMap<(u32, u32, PeriodId), u32>,
    values: DataFrame,
    /// Every seq up to here was applied, or is listed in `gaps`.
    high_water: i64,
    gaps: BTreeMap<i64, Instant>,
}

fn empty_values() -> PolarsResult<DataFrame> {
    DataFrame::new(
        0,
        vec![
            Column::new_empty(C_REPORT.into(), &DataType::UInt32),
            Column::new_empty(C_UNIT.into(), &DataType::UInt32),
            Column::new_empty(C_DATA_SET.into(), &DataType::UInt32),
            Column::new_empty(C_FIRST.into(), &DataType::Int32),
            Column::new_empty(C_LAST.into(), &DataType::Int32),
            Column::new_empty(C_INDICATOR.into(), &DataType::UInt32),
            Column::new_empty(C_VALUE.into(), &DataType::Float64),
        ],
    )
}

impl ReadModel {
    pub fn new(dict: Arc<Dictionary>) -> PolarsResult<Self> {
        Ok(ReadModel {
            dict,
            reports: Vec::new(),
            report_ids: HashMap::new(),
            values: empty_values()?,
            high_water: 0,
            gaps: BTreeMap::new(),
        })
    }

    pub fn dictionary(&self) -> &Arc<Dictionary> {
        &self.dict
    }

    pub fn catalog(&self) -> &Catalog {
        &self.dict.catalog
    }

    pub fn units(&self) -> &UnitTree {
        &self.dict.units
    }

    pub(crate) fn values(&self) -> &DataFrame {
        &self.values
    }

    pub(crate) fn reports(&self) -> &[ReportMeta] {
        &self.reports
    }

    /// Every store revision up to this seq has been applied (or is awaited as a gap).
    pub fn high_water(&self) -> i64 {
        self.high_water
    }

    /// Number of values held (latest revisions only).
    pub fn len(&self) -> usize {
        self.values.height()
    }

    pub fn is_empty(&self) -> bool {
        self.values.height() == 0
    }

    /// The store seq from which the next incremental read must start, and whether one is
    /// needed at all given the store's change counter.
    pub fn next_read(&mut self, change_counter: i64, now: Instant) -> Option<i64> {
        self.gaps
            .retain(|_, noticed| now.duration_since(*noticed) < GAP_PATIENCE);
        match self.gaps.keys().next() {
            Some(&oldest_gap) => Some(oldest_gap),
            None if change_counter > self.high_water => Some(self.high_water + 1),
            None => None,
        }
    }

    /// Brings the model up to date with a batch of revisions (in seq order). A revision older
    /// than the one held for its report is ignored, so replays and out-of-order arrivals are
    /// harmless.
    pub fn apply(&mut self, batch: ChangeBatch, now: Instant) -> PolarsResult<Applied> {
        let mut applied = Applied::default();
        for &seq in &batch.seqs {
            self.gaps.remove(&seq);
            if seq > self.high_water {
                for missing in self.high_water + 1..seq {
                    self.gaps.insert(missing, now);
                }
                self.high_water = seq;
            }
        }
        // For each revision in the batch: the report id it updates, or None if stale.
        let mut target: Vec<Option<u32>> = Vec::with_capacity(batch.revisions.len());
        let mut replaced: Vec<u32> = Vec::new();
        for meta in batch.revisions {
            let key = (meta.unit, meta.data_set, meta.period);
            match self.report_ids.get(&key) {
                Some(&id) if self.reports[id as usize].revision >= meta.revision => {
                    applied.stale_revisions_ignored += 1;
                    target.push(None);
                }
                Some(&id) => {
                    replaced.push(id);
                    self.reports[id as usize] = meta;
                    applied.reports_replaced += 1;
                    target.push(Some(id));
                }
                None => {
                    let id = self.reports.len() as u32;
                    self.reports.push(meta);
                    self.report_ids.insert(key, id);
                    applied.reports_added += 1;
                    target.push(Some(id));
                }
            }
        }
        // A report replaced twice in one batch keeps only the values of its last revision.
        let mut last_owner: HashMap<u32, u32> = HashMap::new();
        for (owner, t) in target.iter().enumerate() {
            if let Some(id) = t {
                last_owner.insert(*id, owner as u32);
            }
        }
        let n = batch.value.len();
        let mut report = Vec::with_capacity(n);
        let mut unit = Vec::with_capacity(n);
        let mut data_set = Vec::with_capacity(n);
        let mut first = Vec::with_capacity(n);
        let mut last = Vec::with_capacity(n);
        let mut indicator = Vec::with_capacity(n);
        let mut value = Vec::with_capacity(n);
        for i in 0..n {
            let owner = batch.owner[i];
            let Some(id) = target[owner as usize] else {
                continue;
            };
            if last_owner.get(&id) != Some(&owner) {
                continue;
            }
            let meta = &self.reports[id as usize];
            let (m_first, m_last) = month_range(&meta.period);
            report.push(id);
            unit.push(meta.unit);
            data_set.push(meta.data_set);
            first.push(m_first);
            last.push(m_last);
            indicator.push(batch.indicator[i]);
            value.push(batch.value[i]);
        }
        applied.values = value.len();
        if !replaced.is_empty() {
            let replaced = Series::new("replaced".into(), replaced);
            self.values = self
                .values
                .clone()
                .lazy()
                .filter(
                    col(C_REPORT)
                        .is_in(lit(replaced).implode(false), false)
                        .not(),
                )
                .collect()?;
        }
        if !value.is_empty() {
            let height = value.len();
            let fresh = DataFrame::new(
                height,
                vec![
                    Column::new(C_REPORT.into(), report),
                    Column::new(C_UNIT.into(), unit),
                    Column::new(C_DATA_SET.into(), data_set),
                    Column::new(C_FIRST.into(), first),
                    Column::new(C_LAST.into(), last),
                    Column::new(C_INDICATOR.into(), indicator),
                    Column::new(C_VALUE.into(), value),
                ],
            )?;
            self.values.vstack_mut_owned(fresh)?;
            // Many small appends fragment the columns; merge them now and then.
            if self.values.first_col_n_chunks() > 32 {
                self.values.rechunk_mut();
            }
        }
        Ok(applied)
    }
}
