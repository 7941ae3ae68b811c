//! `tonghop bench`: reproducible benchmarks that print their figures and a ratio against a
//! baseline measured in the same run, so the analytics' speed claims can be checked on any
//! machine with one command (see docs/BENCHMARKS.md).
//!
//! `bench analytics` generates a synthetic catalog, unit tree and reports (seeded, so every
//! run sees the same numbers), bulk-loads them into SQLite and PostgreSQL, loads the read
//! model, and times: (a) a province's indicators and composite ranking for a year, (b) a
//! national ten-year rollup, (c) the same answers in SQL on the same store, checked number by
//! number against the polars ones, and (d) how soon a report sent through the real ingest
//! path shows up in an answer.
//!
//! The generated data lives in `synthetic`, the polars-against-SQL check in `compare`, the
//! timed queries of each scenario in `timings` and the printed table in `report`; this file
//! checks the arguments, loads each store and runs the scenarios.

mod compare;
pub(super) mod proc_stat;
mod report;
mod synthetic;
mod timings;

use super::table::number;
use super::{AnalyticsBenchArgs, BenchArgs, BenchKind};
use crate::analytics::{Scope, SeriesTable};
use crate::domain::catalog::Direction;
use crate::domain::{
    Catalog, DraftValue, Narrative, PeriodId, ReportDraft, UnitTree, ValidationLimits,
};
use crate::ingest::Ingestor;
use crate::query::QueryService;
use crate::store::bench::{
    BaselineDerived, BaselineRanked, BaselineSpec, BulkLoad, BulkLoaded, SeriesRow, TempPgDatabase,
    bulk_load,
};
use crate::store::{self, Store, StoreOptions};
use anyhow::{Context, bail};
use compare::{
    Agreement, compare, province_from_polars, province_from_sql, series_from_polars,
    series_from_sql,
};
use proc_stat::{peak_rss_kib, reset_peak_rss};
use report::report;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synthetic::{
    DATA_SET, INDICATORS, Synthetic, catalog_toml, months_ending, national_tree, province_tree,
};
use timings::{national, province};

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        BenchKind::Analytics(args) => analytics(args).await,
        BenchKind::Ingest(args) => super::bench_ingest::run(args).await,
    }
}

/// The province scenario's data ends with this year, which is the year queried.
const PROVINCE_YEAR: i32 = 2025;
/// The national scenario's data ends with this year.
const NATIONAL_LAST_YEAR: i32 = 2024;
/// The indicator the freshness trials change.
const FRESH_INDICATOR: &str = "tiep_cong_dan";
/// How long a freshness trial waits for its report before declaring the read model stale.
const FRESH_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Province,
    National,
}

/// One data set size with its tree and the question asked of it.
struct Scenario {
    kind: Kind,
    catalog: Arc<Catalog>,
    units: Arc<UnitTree>,
    /// Reporting units under the root: (code, population).
    reporting: Vec<(String, u64)>,
    months: Vec<PeriodId>,
    seed: u64,
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Province => "province",
            Kind::National => "national",
        }
    }

    fn values(&self) -> u64 {
        (self.reporting.len() * self.months.len() * INDICATORS.len()) as u64
    }

    fn root(&self) -> String {
        self.units.root().code.to_string()
    }

    fn first_year(&self) -> i32 {
        self.months.first().map_or(PROVINCE_YEAR, PeriodId::year)
    }

    fn last_year(&self) -> i32 {
        self.months.last().map_or(PROVINCE_YEAR, PeriodId::year)
    }

    fn new(
        kind: Kind,
        catalog: Arc<Catalog>,
        units: UnitTree,
        months: Vec<PeriodId>,
        seed: u64,
    ) -> Self {
        let reporting = units
            .subtree(&units.root().code)
            .into_iter()
            .filter(|u| u.level == "district")
            .map(|u| (u.code.to_string(), u.population))
            .collect();
        Scenario {
            kind,
            catalog,
            units: Arc::new(units),
            reporting,
            months,
            seed,
        }
    }

    /// The catalog and the unit tree as the SQL baseline's reference tables.
    fn baseline_spec(&self) -> anyhow::Result<BaselineSpec> {
        let catalog = &self.catalog;
        let data_set = catalog
            .data_set(DATA_SET)
            .context("the synthetic catalog lacks its data set")?;
        let mut spec = BaselineSpec {
            units: self.reporting.clone(),
            ..BaselineSpec::default()
        };
        for item in &data_set.indicators {
            let indicator = catalog
                .indicator(&item.indicator)
                .context("the synthetic catalog lacks an indicator")?;
            spec.indicators
                .push((indicator.code.to_string(), indicator.aggregation));
            if let Some(r) = &indicator.ranking {
                spec.ranked.push(BaselineRanked {
                    code: indicator.code.to_string(),
                    higher_is_better: r.direction == Direction::HigherIsBetter,
                    weight: r.weight,
                    // The benchmark ranks per capita, as `tonghop query ranking` does by default.
                    per_capita: r.per_capita,
                });
            }
        }
        for d in catalog.derived() {
            if data_set.indicator(&d.numerator).is_none()
                || data_set.indicator(&d.denominator).is_none()
            {
                continue;
            }
            spec.derived.push(BaselineDerived {
                code: d.code.to_string(),
                numerator: d.numerator.to_string(),
                denominator: d.denominator.to_string(),
                factor: d.factor,
            });
            if let Some(r) = &d.ranking {
                spec.ranked.push(BaselineRanked {
                    code: d.code.to_string(),
                    higher_is_better: r.direction == Direction::HigherIsBetter,
                    weight: r.weight,
                    per_capita: r.per_capita,
                });
            }
        }
        Ok(spec)
    }
}

/// Everything measured on one scenario and one backend.
#[derive(Debug, Default)]
struct Figures {
    loaded: BulkLoaded,
    load: Option<Duration>,
    cold: Option<Duration>,
    /// Province: indicators, ranking and both, per run.
    indicators: Vec<Duration>,
    ranking: Vec<Duration>,
    polars: Vec<Duration>,
    sql: Vec<Duration>,
    agreement: Option<Agreement>,
    fresh: Vec<Duration>,
    submit: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

fn check_args(args: &AnalyticsBenchArgs) -> anyhow::Result<()> {
    // Periods before 1990 are refused by the domain; keep the first month after it.
    let max_months = ((NATIONAL_LAST_YEAR - 1991) * 12) as u32;
    if args.province_units == 0 || args.national_units == 0 || args.national_provinces == 0 {
        bail!("--province-units, --national-units and --national-provinces must be at least 1");
    }
    if args.national_provinces > 99 || args.national_provinces > args.national_units {
        bail!("--national-provinces must be at most 99 and at most --national-units");
    }
    if args.province_units > 99_999 || args.national_units > 99_999 {
        bail!("at most 99,999 units per scenario");
    }
    for (name, months) in [
        ("--province-months", args.province_months),
        ("--national-months", args.national_months),
    ] {
        if months == 0 || months > max_months {
            bail!("{name} must be between 1 and {max_months}");
        }
    }
    if args.runs == 0 || args.national_runs == 0 || args.sql_runs == 0 {
        bail!("--runs, --national-runs and --sql-runs must be at least 1");
    }
    Ok(())
}

async fn analytics(args: AnalyticsBenchArgs) -> anyhow::Result<ExitCode> {
    check_args(&args)?;
    let catalog = Arc::new(Catalog::from_toml(&catalog_toml()).context("synthetic catalog")?);
    let (data_dir, _temp_dir) = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let mut backends = vec![Backend::Sqlite];
    if !args.skip_postgres {
        backends.push(Backend::Postgres);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tonghop bench analytics: {} cores, seed {}, SQLite files in {}{}",
        cores,
        args.seed,
        data_dir.display(),
        if args.skip_postgres {
            String::new()
        } else {
            format!(", PostgreSQL via {}", store::redact_url(&args.postgres_url))
        }
    );

    let mut scenarios = vec![Scenario::new(
        Kind::Province,
        catalog.clone(),
        province_tree(args.province_units, args.seed)?,
        months_ending(PROVINCE_YEAR, args.province_months),
        args.seed,
    )];
    if !args.skip_national {
        scenarios.push(Scenario::new(
            Kind::National,
            catalog.clone(),
            national_tree(args.national_units, args.national_provinces, args.seed)?,
            months_ending(NATIONAL_LAST_YEAR, args.national_months),
            args.seed,
        ));
    }

    let mut results: Vec<(Kind, Backend, Figures)> = Vec::new();
    for scenario in &scenarios {
        eprintln!(
            "{}: {} reporting units × {} months × {} indicators = {} values",
            scenario.name(),
            number(scenario.reporting.len() as f64, 0, true),
            scenario.months.len(),
            INDICATORS.len(),
            number(scenario.values() as f64, 0, true)
        );
        for &backend in &backends {
            let figures = run_backend(scenario, backend, &args, &data_dir)
                .await
                .with_context(|| format!("{} on {}", scenario.name(), backend.label()))?;
            results.push((scenario.kind, backend, figures));
        }
    }
    let disagreements = report(&scenarios, &backends, &results, &args);
    if disagreements > 0 {
        eprintln!(
            "ERROR: the SQL and polars answers disagree on {disagreements} number(s); see above"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a SQLite database and its WAL and shared-memory files, if present.
fn remove_sqlite_files(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
        }
    }
    Ok(())
}

async fn run_backend(
    scenario: &Scenario,
    backend: Backend,
    args: &AnalyticsBenchArgs,
    data_dir: &Path,
) -> anyhow::Result<Figures> {
    reset_peak_rss();
    match backend {
        Backend::Sqlite => {
            let path = data_dir.join(format!("{}.db", scenario.name()));
            remove_sqlite_files(&path)?;
            measure(
                scenario,
                backend,
                &format!("sqlite://{}", path.display()),
                args,
            )
            .await
        }
        Backend::Postgres => {
            let db = create_database(&args.postgres_url).await?;
            let url = db.url.clone();
            let result = measure(scenario, backend, &url, args).await;
            // Dropped on every path, errors included: a 2 GB database left behind by a failed
            // run would be a nasty surprise.
            drop_database(db).await;
            result
        }
    }
}

/// A PostgreSQL database of the benchmark's own, created through the maintenance database at
/// `admin_url`; the error says how to run without PostgreSQL.
pub(super) async fn create_database(admin_url: &str) -> anyhow::Result<TempPgDatabase> {
    TempPgDatabase::create(admin_url).await.with_context(|| {
        format!(
            "cannot create a database through {} (use --skip-postgres to run without \
             PostgreSQL)",
            store::redact_url(admin_url)
        )
    })
}

/// Drops a benchmark's database. A failure is only a warning: it must neither hide the
/// figures measured nor stop the other databases of the run from being dropped.
pub(super) async fn drop_database(db: TempPgDatabase) {
    let name = db.name.clone();
    if let Err(e) = db.drop_now().await {
        eprintln!("warning: could not drop the benchmark database {name}: {e}");
    }
}

/// Prints load progress on stderr every 10 %.
fn progress_printer(label: String, total: u64, started: Instant) -> impl FnMut(u64) + Send {
    let mut shown = 0;
    move |done| {
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth > shown {
            shown = tenth;
            eprintln!(
                "  {label}: {:>3} % ({} of {} reports) after {:.1} s",
                tenth * 10,
                number(done as f64, 0, true),
                number(total as f64, 0, true),
                started.elapsed().as_secs_f64()
            );
        }
    }
}

async fn measure(
    scenario: &Scenario,
    backend: Backend,
    url: &str,
    args: &AnalyticsBenchArgs,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let label = format!("{} → {}", scenario.name(), backend.label());

    let codes: Vec<String> = INDICATORS.iter().map(|i| i.code.to_owned()).collect();
    let mut synthetic = Synthetic::new(scenario.seed, &scenario.reporting, &scenario.months);
    let total = synthetic.total_reports();
    let started = Instant::now();
    let mut next = || synthetic.next_report();
    let mut progress = progress_printer(label.clone(), total, started);
    figures.loaded = bulk_load(
        url,
        BulkLoad {
            data_set: DATA_SET,
            indicators: &codes,
        },
        &mut next,
        &mut progress,
    )
    .await
    .context("bulk load")?;
    figures.load = Some(started.elapsed());

    let store = store::open(url, &StoreOptions::default()).await?;
    eprintln!("  {label}: loading the read model");
    let started = Instant::now();
    let query = QueryService::load(
        store.clone(),
        scenario.catalog.clone(),
        scenario.units.clone(),
    )
    .await?;
    figures.cold = Some(started.elapsed());

    let mut baseline = crate::store::bench::Baseline::connect(url).await?;
    baseline.prepare(&scenario.baseline_spec()?).await?;
    let outcome = match scenario.kind {
        Kind::Province => {
            province(
                scenario,
                &query,
                &mut baseline,
                &store,
                args,
                &mut figures,
                &label,
            )
            .await
        }
        Kind::National => {
            national(
                scenario,
                &query,
                &mut baseline,
                &store,
                args,
                &mut figures,
                &label,
            )
            .await
        }
    };
    let _ = baseline.close().await;
    drop(query);
    store.close().await;
    outcome?;
    figures.peak_rss_kib = peak_rss_kib("self");
    Ok(figures)
}
