//! The query side of the aggregator: keeps the analytics read model fresh from the store's
//! change counter and runs the (synchronous, CPU-bound) analytics on the blocking pool, so the
//! gRPC threads never stall on a polars query.
//!
//! Freshness: every query first asks the store for its change counter (one indexed `MAX`) and,
//! if it moved, reads only the revisions since the last one applied. A report acknowledged
//! before a query starts is therefore always in that query's answer, with no batch job.

use crate::analytics::{
    self, AnalyticsError, Applied, ChangeBatch, Completeness, Dictionary, ExportRow,
    IndicatorTable, RankingTable, ReadModel, Scope, SeriesTable, TrendTable,
};
use crate::domain::{Catalog, PeriodId, UnitTree};
use crate::store::{Store, StoreError};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::Mutex;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Invalid(#[from] AnalyticsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query task failed: {0}")]
    Task(String),
}

/// How often a long read-model load says how far it has got: years of a national store take
/// minutes to load at start-up, and an operator watching the start must see it move.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a read-model load stands. Rows arrive in seq order, so the seq of the row being read
/// against the change counter says how much of the store is behind it.
struct LoadProgress {
    counter: i64,
    started: Instant,
    every: std::time::Duration,
    next_report: Instant,
    values: u64,
}

/// One progress line's figures.
#[derive(Debug, PartialEq)]
struct LoadDone {
    percent: u32,
    values: u64,
    seconds: u64,
}

impl LoadProgress {
    /// Rows between two looks at the clock: reading it for each of 24 M rows would cost more
    /// than the log lines are worth.
    const CLOCK_EVERY_ROWS: u64 = 1 << 16;

    fn new(counter: i64, started: Instant, every: std::time::Duration) -> Self {
        LoadProgress {
            counter,
            started,
            every,
            next_report: started + every,
            values: 0,
        }
    }

    /// Counts one row; returns the figures to log when a report is due.
    fn saw(&mut self, seq: i64) -> Option<LoadDone> {
        self.values += 1;
        if !self.values.is_multiple_of(Self::CLOCK_EVERY_ROWS) {
            return None;
        }
        let now = Instant::now();
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.every;
        let percent = if self.counter > 0 {
            (seq.clamp(0, self.counter) * 100 / self.counter) as u32
        } else {
            100
        };
        Some(LoadDone {
            percent,
            values: self.values,
            seconds: now.duration_since(self.started).as_secs(),
        })
    }
}

#[derive(Clone)]
pub struct QueryService {
    store: Arc<dyn Store>,
    dict: Arc<Dictionary>,
    model: Arc<RwLock<ReadModel>>,
    /// One refresh at a time; queries arriving meanwhile wait for it rather than repeat it.
    refreshing: Arc<Mutex<()>>,
}

impl QueryService {
    /// Loads the latest revision of every report from the store.
    pub async fn load(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        units: Arc<UnitTree>,
    ) -> Result<Self, QueryError> {
        let dict = Arc::new(Dictionary::new(catalog, units));
        let started = Instant::now();
        let counter = store.change_counter().await?;
        let mut batch = ChangeBatch::default();
        let mut progress = LoadProgress::new(counter, started, PROGRESS_EVERY);
        store
            .visit_current(&mut |row| {
                if let Some(done) = progress.saw(row.seq) {
                    tracing::info!(
                        percent = done.percent,
                        values = done.values,
                        seconds = done.seconds,
                        "loading the analytics read model"
                    );
                }
                batch.push(&dict, row)
            })
            .await?;
        let skipped = batch.skipped_rows;
        let model_dict = dict.clone();
        let (model, applied) = tokio::task::spawn_blocking(move || {
            let mut model = ReadModel::new(model_dict)?;
            let applied = model.apply(batch, Instant::now())?;
            Ok::<_, AnalyticsError>((model, applied))
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        tracing::info!(
            reports = applied.reports_added,
            values = applied.values,
            skipped_rows = skipped,
            change_counter = counter,
            ms = started.elapsed().as_millis() as u64,
            "analytics read model loaded"
        );
        Ok(QueryService {
            store,
            dict,
            model: Arc::new(RwLock::new(model)),
            refreshing: Arc::new(Mutex::new(())),
        })
    }

    /// Applies whatever the store committed since the last refresh.
    pub async fn refresh(&self) -> Result<Applied, QueryError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let counter = self.store.change_counter().await?;
        let from = {
            let mut model = self
                .model
                .write()
                .map_err(|e| QueryError::Task(e.to_string()))?;
            model.next_read(counter, Instant::now())
        };
        let Some(from) = from else {
            return Ok(Applied::default());
        };
        let mut batch = ChangeBatch::default();
        let dict = self.dict.clone();
        self.store
            .visit_since(from, &mut |row| batch.push(&dict, row))
            .await?;
        let model = self.model.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let mut model = model
                .write()
                .map_err(|e| AnalyticsError::Engine(e.to_string()))?;
            model
                .apply(batch, Instant::now())
                .map_err(AnalyticsError::from)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        if applied != Applied::default() {
            tracing::debug!(
                from_seq = from,
                added = applied.reports_added,
                replaced = applied.reports_replaced,
                "read model refreshed"
            );
        }
        Ok(applied)
    }

    /// Refreshes, then runs `f` on the model in the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadModel) -> Result<T, AnalyticsError> + Send + 'static,
    ) -> Result<T, QueryError> {
        self.refresh().await?;
        let model = self.model.clone();
        tokio::task::spawn_blocking(move || {
            let model = model
                .read()
                .map_err(|e| AnalyticsError::Engine(e.to_string()))?;
            f(&model)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))?
        .map_err(QueryError::from)
    }

    pub async fn indicators(&self, scope: Scope) -> Result<IndicatorTable, QueryError> {
        self.run(move |m| analytics::indicators(m, &scope)).await
    }

    pub async fn ranking(
        &self,
        scope: Scope,
        per_capita: bool,
    ) -> Result<RankingTable, QueryError> {
        self.run(move |m| analytics::ranking(m, &scope, per_capita))
            .await
    }

    pub async fn completeness(&self, scope: Scope) -> Result<Completeness, QueryError> {
        self.run(move |m| analytics::completeness(m, &scope)).await
    }

    pub async fn trend(&self, scope: Scope) -> Result<TrendTable, QueryError> {
        self.run(move |m| analytics::trend(m, &scope)).await
    }

    pub async fn series(&self, scope: Scope, through: PeriodId) -> Result<SeriesTable, QueryError> {
        self.run(move |m| analytics::series(m, &scope, through))
            .await
    }

    pub async fn export(
        &self,
        scope: Scope,
        through: PeriodId,
    ) -> Result<Vec<ExportRow>, QueryError> {
        self.run(move |m| analytics::export(m, &scope, through))
            .await
    }

    /// The store change counter the read model has caught up with (after a refresh).
    pub async fn applied_through(&self) -> Result<i64, QueryError> {
        self.refresh().await?;
        let model = self
            .model
            .read()
            .map_err(|e| QueryError::Task(e.to_string()))?;
        Ok(model.high_water())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.dict.catalog
    }

    pub fn units(&self) -> &Arc<UnitTree> {
        &self.dict.units
    }
}

/// Names for an indicator code, in both languages of the catalog.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorLabel {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub unit_of_measure: String,
    pub derived: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitLabel {
    pub code: String,
    pub name: String,
    pub population: u64,
}

/// The names an answer needs, sent with it so a client prints it without another call.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Labels {
    pub indicators: Vec<IndicatorLabel>,
    pub units: Vec<UnitLabel>,
}

impl Labels {
    pub fn for_codes<'a>(
        catalog: &Catalog,
        units: &UnitTree,
        indicator_codes: impl IntoIterator<Item = &'a str>,
        unit_codes: impl IntoIterator<Item = &'a str>,
    ) -> Labels {
        let mut labels = Labels::default();
        for code in indicator_codes {
            if labels.indicators.iter().any(|l| l.code == code) {
                continue;
            }
            if let Some(i) = catalog
                .indicators()
                .iter()
                .find(|i| i.code.as_str() == code)
            {
                labels.indicators.push(IndicatorLabel {
                    code: code.to_owned(),
                    name_vi: i.name_vi.clone(),
                    name_en: i.name_en.clone(),
                    unit_of_measure: i.unit_of_measure.clone(),
                    derived: false,
                });
            } else if let Some(d) = catalog.derived().iter().find(|d| d.code.as_str() == code) {
                labels.indicators.push(IndicatorLabel {
                    code: code.to_owned(),
                    name_vi: d.name_vi.clone(),
                    name_en: d.name_en.clone(),
                    unit_of_measure: d.unit_of_measure.clone(),
                    derived: true,
                });
            }
        }
        for code in unit_codes {
            if labels.units.iter().any(|u| u.code == code) {
                continue;
            }
            if let Some(u) = units.find(code) {
                labels.units.push(UnitLabel {
                    code: code.to_owned(),
                    name: u.name.clone(),
                    population: u.population,
                });
            }
        }
        labels
    }

    pub fn indicator(&self, code: &str) -> Option<&IndicatorLabel> {
        self.indicators.iter().find(|l| l.code == code)
    }

    /// The indicator's name in `lang` ("vi" or "en"), or its code.
    pub fn indicator_name<'a>(&'a self, code: &'a str, english: bool) -> &'a str {
        match self.indicator(code) {
            Some(l) if english => &l.name_en,
            Some(l) => &l.name_vi,
            None => code,
        }
    }

    pub fn unit_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.units
            .iter()
            .find(|u| u.code == code)
            .map(|u| u.name.as_str())
            .unwrap_or(code)
    }
}

/// An analytics answer with the names of its codes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Labelled<T> {
    #[serde(flatten)]
    pub answer: T,
    pub labels: Labels,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// With the interval passed, the last row of a block of rows reports where the load is:
    /// seq `rows` of a change counter of 4 × rows is 25 %.
    #[test]
    fn a_long_load_reports_its_progress_by_seq() {
        let rows = LoadProgress::CLOCK_EVERY_ROWS;
        let mut progress = LoadProgress::new(4 * rows as i64, Instant::now(), Duration::ZERO);
        // All but the last row of the block: the clock is not even read.
        for seq in 1..rows as i64 {
            assert_eq!(progress.saw(seq), None, "row {seq}");
        }
        let done = progress
            .saw(rows as i64)
            .expect("a report once the interval has passed");
        assert_eq!(done.percent, 25);
        assert_eq!(done.values, rows);
    }

    /// Within the interval nothing is said, however many rows go by.
    #[test]
    fn a_load_says_nothing_within_the_interval() {
        let rows = LoadProgress::CLOCK_EVERY_ROWS as i64;
        let hour = Duration::from_secs(3600);
        let mut progress = LoadProgress::new(4 * rows, Instant::now(), hour);
        for seq in 1..=3 * rows {
            assert_eq!(progress.saw(seq), None, "row {seq}");
        }
    }

    /// A change counter of 0 (rows written by hand without seqs, say) must not divide by zero.
    #[test]
    fn a_zero_change_counter_reports_the_load_complete() {
        let mut progress = LoadProgress::new(0, Instant::now(), Duration::ZERO);
        let mut last = None;
        for _ in 0..LoadProgress::CLOCK_EVERY_ROWS {
            last = progress.saw(0);
        }
        assert_eq!(last.map(|d| d.percent), Some(100));
    }
}
