//! Bulk loading and SQL baselines for `tonghop bench analytics`. Writing 24 million values
//! through the per-report ingest path would take hours, so the benchmark writes its synthetic
//! reports straight into the schema here; and the SQL answers the analytics are compared
//! against live here too, because all of tonghop's SQL lives under `store/`.
//!
//! Nothing in this module is used by the aggregator itself.

use super::StoreError;
use crate::domain::{Aggregation, DateWindow};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, QueryBuilder, SqliteConnection};
use std::fmt::Write as _;
use std::str::FromStr;

/// One synthetic report, stored as revision 1 of its (unit, data set, period).
#[derive(Debug, Clone)]
pub struct BulkReport {
    pub unit: String,
    pub period: String,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub window: DateWindow,
    /// (index into [`BulkLoad::indicators`], value).
    pub values: Vec<(u16, f64)>,
}

/// What every report of one bulk load shares.
#[derive(Debug, Clone, Copy)]
pub struct BulkLoad<'a> {
    pub data_set: &'a str,
    pub indicators: &'a [String],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkLoaded {
    pub reports: u64,
    pub values: u64,
}

/// Reports generated and written per round: big enough that statement overhead vanishes,
/// small enough that a round's rows (about 16 MB of COPY text) never matter for memory.
const CHUNK_REPORTS: usize = 20_000;

/// SQLite refuses statements with more than 32,766 bound parameters; these row counts keep
/// each multi-row INSERT under it (11, 3 and 4 parameters per row).
const SQLITE_SUBMISSION_ROWS: usize = 2_900;
const SQLITE_VALUE_ROWS: usize = 10_000;
const SQLITE_CURRENT_ROWS: usize = 8_000;

/// Columns the bulk load fills in `submissions`; `client_time` stays NULL.
const SUBMISSION_COLUMNS: &str = "seq, submission_id, unit_code, data_set, period, revision, \
    content_hash, prepared_by, received_at, deadline, on_time, window_start, window_end, \
    results, shortcomings, proposals, warnings";

const BULK_AUTHOR: &str = "tonghop bench";

fn submission_id(data_set: &str, report: &BulkReport) -> String {
    format!("bench:{}:{data_set}:{}:r1", report.unit, report.period)
}

/// A placeholder shaped like the SHA-256 hex the ingest path stores; nothing reads it back.
fn content_hash(seq: i64) -> String {
    format!("{seq:064x}")
}

/// Writes every report `next` yields into an empty store at `url` (creating and migrating it
/// first), in one transaction, with seqs 1, 2, 3... in the order given; calls `progress` with
/// the number of reports written after each round. Nothing else may have the store open
/// meanwhile (SQLite switches its journal mode for the load).
pub async fn bulk_load(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    if url.starts_with("sqlite:") {
        bulk_load_sqlite(url, load, next, progress).await
    } else {
        bulk_load_postgres(url, load, next, progress).await
    }
}

/// A connection of the benchmark's own. Its statements are slow on purpose (a load, a
/// ten-year rollup in SQL), so sqlx's slow-statement warnings would only clutter the report.
async fn pg_connect(url: &str) -> Result<PgConnection, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?
        .disable_statement_logging();
    Ok(PgConnection::connect_with(&options).await?)
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Internal(format!("bad SQLite URL {url:?}: {e}")))?
        .disable_statement_logging())
}

/// Pulls the next round of reports from the generator.
fn next_chunk(next: &mut (dyn FnMut() -> Option<BulkReport> + Send), chunk: &mut Vec<BulkReport>) {
    chunk.clear();
    while chunk.len() < CHUNK_REPORTS {
        match next() {
            Some(report) => chunk.push(report),
            None => break,
        }
    }
}

fn indicator_code<'a>(load: &BulkLoad<'a>, index: u16) -> Result<&'a str, StoreError> {
    load.indicators
        .get(usize::from(index))
        .map(String::as_str)
        .ok_or_else(|| StoreError::Internal(format!("bulk load: no indicator number {index}")))
}

async fn bulk_load_sqlite(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    // A rollback journal instead of WAL: the transaction only appends to a fresh file, so the
    // journal stays empty, whereas WAL would write every page twice (log, then checkpoint).
    // No fsync and no foreign-key checks: if the machine dies the benchmark simply reruns, and
    // the generator makes every value's submission row itself.
    // The load's own connection is the only one on the file: a store's pools, even closed,
    // could leave a connection behind that makes the journal-mode switch fail as "locked".
    let options = sqlite_options(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-262144");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    // The store's own migrations, so the load writes exactly the tables the aggregator reads.
    sqlx::migrate!("src/store/migrations/sqlite")
        .run(&mut conn)
        .await?;
    ensure_empty_sqlite(&mut conn).await?;
    let mut tx = conn.begin().await?;
    let mut done = BulkLoaded::default();
    let mut chunk = Vec::with_capacity(CHUNK_REPORTS);
    loop {
        next_chunk(next, &mut chunk);
        if chunk.is_empty() {
            break;
        }
        let first_seq = done.reports as i64 + 1;
        for (part_index, part) in chunk.chunks(SQLITE_SUBMISSION_ROWS).enumerate() {
            let base = first_seq + (part_index * SQLITE_SUBMISSION_ROWS) as i64;
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "INSERT INTO submissions ({SUBMISSION_COLUMNS}) "
            ));
            insert.push_values(part.iter().enumerate(), |mut row, (i, r)| {
                let seq = base + i as i64;
                row.push_bind(seq)
                    .push_bind(submission_id(load.data_set, r))
                    .push_bind(r.unit.clone())
                    .push_bind(load.data_set.to_owned())
                    .push_bind(r.period.clone())
                    .push("1")
                    .push_bind(content_hash(seq))
                    .push("'tonghop bench'")
                    .push_bind(r.received_at)
                    .push_bind(r.deadline)
                    .push_bind(r.on_time)
                    .push_bind(r.window.start)
                    .push_bind(r.window.end)
                    .push("''")
                    .push("''")
                    .push("''")
                    .push("'[]'");
            });
            insert.build().execute(&mut *tx).await?;
        }
        let mut rows: Vec<(i64, &str, f64)> = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            for &(indicator, value) in &r.values {
                rows.push((
                    first_seq + i as i64,
                    indicator_code(&load, indicator)?,
                    value,
                ));
            }
        }
        for part in rows.chunks(SQLITE_VALUE_ROWS) {
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO submission_values (seq, indicator, value) ",
            );
            insert.push_values(part, |mut row, (seq, indicator, value)| {
                row.push_bind(*seq).push_bind(*indicator).push_bind(*value);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for (part_index, part) in chunk.chunks(SQLITE_CURRENT_ROWS).enumerate() {
            let base = first_seq + (part_index * SQLITE_CURRENT_ROWS) as i64;
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) ",
            );
            insert.push_values(part.iter().enumerate(), |mut row, (i, r)| {
                row.push_bind(r.unit.clone())
                    .push_bind(load.data_set.to_owned())
                    .push_bind(r.period.clone())
                    .push("1")
                    .push_bind(base + i as i64);
            });
            insert.build().execute(&mut *tx).await?;
        }
        done.reports += chunk.len() as u64;
        done.values += rows.len() as u64;
        progress(done.reports);
    }
    tx.commit().await?;
    // Statistics for the SQL baseline's planner, as a DBA would gather after a big load;
    // then back to the WAL mode the store runs in.
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(done)
}

async fn ensure_empty_sqlite(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&mut *conn)
        .await?;
    if count > 0 {
        return Err(StoreError::Internal(format!(
            "bulk load needs an empty store; this one holds {count} submissions"
        )));
    }
    Ok(())
}

/// Escapes a value for PostgreSQL's COPY text format.
fn copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
}

async fn copy_in(conn: &mut PgConnection, statement: &str, data: &str) -> Result<(), StoreError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

async fn bulk_load_postgres(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    let mut conn = pg_connect(url).await?;
    sqlx::migrate!("src/store/migrations/postgres")
        .run(&mut conn)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&mut conn)
        .await?;
    if count > 0 {
        return Err(StoreError::Internal(format!(
            "bulk load needs an empty store; this one holds {count} submissions"
        )));
    }
    // Every value's foreign key would be checked row by row (24 million look-ups), although
    // the generator writes each submission before its values; a superuser session skips those
    // checks. Without the privilege the SET fails outside any transaction and the load simply
    // runs with the checks.
    let unchecked = sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .is_ok();
    let mut tx = conn.begin().await?;
    // An acknowledged bulk load need not survive a crash: skip the WAL flush at commit.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let mut done = BulkLoaded::default();
    let mut chunk = Vec::with_capacity(CHUNK_REPORTS);
    let (mut submissions, mut values, mut current) = (String::new(), String::new(), String::new());
    loop {
        next_chunk(next, &mut chunk);
        if chunk.is_empty() {
            break;
        }
        submissions.clear();
        values.clear();
        current.clear();
        let first_seq = done.reports as i64 + 1;
        for (i, r) in chunk.iter().enumerate() {
            let seq = first_seq + i as i64;
            // Writing into a String cannot fail.
            let _ = write!(submissions, "{seq}\t");
            copy_text(&mut submissions, &submission_id(load.data_set, r));
            submissions.push('\t');
            copy_text(&mut submissions, &r.unit);
            submissions.push('\t');
            copy_text(&mut submissions, load.data_set);
            submissions.push('\t');
            copy_text(&mut submissions, &r.period);
            let _ = writeln!(
                submissions,
                "\t1\t{}\t{BULK_AUTHOR}\t{}\t{}\t{}\t{}\t{}\t\t\t\t[]",
                content_hash(seq),
                r.received_at.to_rfc3339(),
                r.deadline.to_rfc3339(),
                if r.on_time { 't' } else { 'f' },
                r.window.start,
                r.window.end,
            );
            for &(indicator, value) in &r.values {
                let _ = write!(values, "{seq}\t");
                copy_text(&mut values, indicator_code(&load, indicator)?);
                // Rust prints the shortest decimal that reads back as the same f64.
                let _ = writeln!(values, "\t{value}");
                done.values += 1;
            }
            copy_text(&mut current, &r.unit);
            current.push('\t');
            copy_text(&mut current, load.data_set);
            current.push('\t');
            copy_text(&mut current, &r.period);
            let _ = writeln!(current, "\t1\t{seq}");
        }
        copy_in(
            &mut tx,
            &format!("COPY submissions ({SUBMISSION_COLUMNS}) FROM STDIN"),
            &submissions,
        )
        .await?;
        copy_in(
            &mut tx,
            "COPY submission_values (seq, indicator, value) FROM STDIN",
            &values,
        )
        .await?;
        copy_in(
            &mut tx,
            "COPY current_reports (unit_code, data_set, period, revision, seq) FROM STDIN",
            &current,
        )
        .await?;
        done.reports += chunk.len() as u64;
        progress(done.reports);
    }
    if done.reports > 0 {
        // The seqs were given explicitly: move the sequence past them, or the next real
        // submission would collide with seq 1.
        sqlx::query("SELECT setval(pg_get_serial_sequence('submissions', 'seq'), $1)")
            .bind(done.reports as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if unchecked {
        sqlx::query("SET session_replication_role = DEFAULT")
            .execute(&mut conn)
            .await?;
    }
    // VACUUM as well as ANALYZE: after 24 million inserts autovacuum would otherwise start
    // on its own during the timed queries and take a core from them (and from the SQL side).
    sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await?;
    conn.close().await?;
    Ok(done)
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| StoreError::Internal(format!("{url:?} is not a database URL")))?;
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{}/{database}{query}", &base[..path_start]))
}

/// A PostgreSQL database created for one benchmark run; [`TempPgDatabase::drop_now`] removes
/// it (an async drop cannot run in `Drop`, so callers call it on every path).
#[derive(Debug)]
pub struct TempPgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TempPgDatabase {
    /// Creates `tonghop_bench_<random>` through the maintenance database at `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self, StoreError> {
        let name = format!("tonghop_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = pg_connect(admin_url).await?;
        // A generated name of [a-z0-9_]: safe to splice, and CREATE DATABASE takes no binds.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(TempPgDatabase {
            url: with_database(admin_url, &name)?,
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// Drops the database, closing whatever connections still use it.
    pub async fn drop_now(self) -> Result<(), StoreError> {
        let mut conn = pg_connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

/// What the SQL baseline needs from the catalog and the unit tree, which live outside the
/// database: written into `bench_*` reference tables before the timed queries, as a system
/// doing its analytics in SQL would keep them.
#[derive(Debug, Clone, Default)]
pub struct BaselineSpec {
    /// The query node's reporting units: (code, population).
    pub units: Vec<(String, u64)>,
    /// The data set's indicators with their aggregation over time and units.
    pub indicators: Vec<(String, Aggregation)>,
    pub derived: Vec<BaselineDerived>,
    /// Indicators and derived indicators that are ranked, with the catalog's settings.
    pub ranked: Vec<BaselineRanked>,
}

#[derive(Debug, Clone)]
pub struct BaselineDerived {
    pub code: String,
    pub numerator: String,
    pub denominator: String,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub struct BaselineRanked {
    pub code: String,
    pub higher_is_better: bool,
    pub weight: f64,
    /// Ranked per 10,000 inhabitants (the catalog's flag and the query's both set).
    pub per_capita: bool,
}

/// One row of the province answer in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvinceRow {
    pub kind: ProvinceRowKind,
    /// `None` for node totals.
    pub unit: Option<String>,
    /// `None` for the composite score.
    pub indicator: Option<String>,
    pub value: Option<f64>,
    /// Rank on the indicator, or on the composite score.
    pub rank: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvinceRowKind {
    /// One unit's value of an indicator or derived indicator over the period.
    UnitValue,
    /// The node's total of an indicator or derived indicator.
    Total,
    /// One unit's ranked value (per capita where asked) and rank on one indicator.
    IndicatorRank,
    /// One unit's composite score (0–100) and rank.
    Composite,
}

/// One node total of the national series in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    /// The year, as its period identifier ("2019").
    pub year: String,
    pub indicator: String,
    pub value: Option<f64>,
}

/// The province answer: per-unit values over the period by each indicator's rule (sum, last,
/// max), node totals (sums, or the max for maxima), derived rates as ratios of sums, ranked
/// values per 10,000 inhabitants where asked, 0–100 normalisation, the weighted composite and
/// the ranks, exactly as `analytics::ranking` documents them. `$2`..`$3` bound the period
/// identifiers of the data set's (monthly, YYYYMM) periods, which sort as text.
const PROVINCE_SQL: &str = "
WITH grouped AS MATERIALIZED (
    SELECT c.unit_code AS unit, v.indicator AS indicator,
           SUM(v.value) AS s, MAX(v.value) AS m, MAX(c.period) AS lp
    FROM current_reports c
    JOIN bench_units u ON u.unit_code = c.unit_code
    JOIN submission_values v ON v.seq = c.seq
    WHERE c.data_set = $1 AND c.period >= $2 AND c.period <= $3
    GROUP BY c.unit_code, v.indicator
),
per_unit AS MATERIALIZED (
    SELECT g.unit AS unit, g.indicator AS indicator, i.rule AS rule,
           CASE i.rule WHEN 'sum' THEN g.s WHEN 'max' THEN g.m ELSE lv.value END AS value
    FROM grouped g
    JOIN bench_indicators i ON i.indicator = g.indicator
    LEFT JOIN current_reports lc ON i.rule = 'last' AND lc.unit_code = g.unit
         AND lc.data_set = $1 AND lc.period = g.lp
    LEFT JOIN submission_values lv ON lv.seq = lc.seq AND lv.indicator = g.indicator
),
totals AS MATERIALIZED (
    SELECT indicator, CASE WHEN rule = 'max' THEN MAX(value) ELSE SUM(value) END AS value
    FROM per_unit
    GROUP BY indicator, rule
),
derived_units AS (
    SELECT u.unit_code AS unit, d.indicator AS indicator,
           CASE WHEN n.value IS NULL OR q.value IS NULL OR q.value = 0 THEN NULL
                ELSE n.value / q.value * d.factor END AS value
    FROM bench_units u
    CROSS JOIN bench_derived d
    LEFT JOIN per_unit n ON n.unit = u.unit_code AND n.indicator = d.numerator
    LEFT JOIN per_unit q ON q.unit = u.unit_code AND q.indicator = d.denominator
),
derived_totals AS (
    SELECT d.indicator AS indicator,
           CASE WHEN n.value IS NULL OR q.value IS NULL OR q.value = 0 THEN NULL
                ELSE n.value / q.value * d.factor END AS value
    FROM bench_derived d
    LEFT JOIN totals n ON n.indicator = d.numerator
    LEFT JOIN totals q ON q.indicator = d.denominator
),
unit_values AS MATERIALIZED (
    SELECT unit, indicator, value FROM per_unit
    UNION ALL
    SELECT unit, indicator, value FROM derived_units
),
ranked_values AS MATERIALIZED (
    SELECT u.unit_code AS unit, r.indicator AS indicator, r.higher AS higher,
           r.weight AS weight,
           CASE WHEN r.per_capita = 0 THEN x.value
                WHEN u.population > 0 THEN x.value / u.population * 10000.0 END AS value
    FROM bench_units u
    CROSS JOIN bench_ranked r
    LEFT JOIN unit_values x ON x.unit = u.unit_code AND x.indicator = r.indicator
),
spread AS (
    SELECT indicator, MIN(value) AS lo, MAX(value) AS hi, COUNT(value) AS present
    FROM ranked_values
    GROUP BY indicator
),
placed AS MATERIALIZED (
    SELECT rv.unit AS unit, rv.indicator AS indicator, rv.weight AS weight,
           rv.value AS value,
           CASE WHEN rv.value IS NULL THEN sp.present + 1
                ELSE RANK() OVER (
                    PARTITION BY rv.indicator, rv.value IS NULL
                    ORDER BY CASE WHEN rv.higher = 1 THEN -rv.value ELSE rv.value END)
           END AS place,
           CASE WHEN rv.value IS NULL THEN 0.0
                WHEN sp.hi = sp.lo THEN 100.0
                WHEN rv.higher = 1 THEN (rv.value - sp.lo) / (sp.hi - sp.lo) * 100.0
                ELSE (sp.hi - rv.value) / (sp.hi - sp.lo) * 100.0 END AS score
    FROM ranked_values rv
    JOIN spread sp ON sp.indicator = rv.indicator
),
composite AS (
    SELECT unit, SUM(weight * score) / (SELECT SUM(weight) FROM bench_ranked) AS score
    FROM placed
    GROUP BY unit
)
SELECT CAST(0 AS BIGINT) AS kind, unit, indicator,
       CAST(value AS DOUBLE PRECISION) AS value, CAST(NULL AS BIGINT) AS place
FROM unit_values
UNION ALL
SELECT 1, CAST(NULL AS TEXT), indicator, value, NULL FROM totals
UNION ALL
SELECT 1, NULL, indicator, value, NULL FROM derived_totals
UNION ALL
SELECT 2, unit, indicator, value, place FROM placed
UNION ALL
SELECT 3, unit, NULL, score, RANK() OVER (ORDER BY score DESC) FROM composite
WHERE (SELECT SUM(weight) FROM bench_ranked) > 0
";

/// The node's totals per year: per unit and year by each indicator's rule, then over units,
/// then derived rates from the yearly totals. Years are the first four characters of the
/// monthly period identifiers.
const SERIES_SQL: &str = "
WITH grouped AS MATERIALIZED (
    SELECT c.unit_code AS unit, substr(c.period, 1, 4) AS year, v.indicator AS indicator,
           SUM(v.value) AS s, MAX(v.value) AS m, MAX(c.period) AS lp
    FROM current_reports c
    JOIN bench_units u ON u.unit_code = c.unit_code
    JOIN submission_values v ON v.seq = c.seq
    WHERE c.data_set = $1 AND c.period >= $2 AND c.period <= $3
    GROUP BY c.unit_code, substr(c.period, 1, 4), v.indicator
),
per_unit AS (
    SELECT g.year AS year, g.indicator AS indicator, i.rule AS rule,
           CASE i.rule WHEN 'sum' THEN g.s WHEN 'max' THEN g.m ELSE lv.value END AS value
    FROM grouped g
    JOIN bench_indicators i ON i.indicator = g.indicator
    LEFT JOIN current_reports lc ON i.rule = 'last' AND lc.unit_code = g.unit
         AND lc.data_set = $1 AND lc.period = g.lp
    LEFT JOIN submission_values lv ON lv.seq = lc.seq AND lv.indicator = g.indicator
),
totals AS MATERIALIZED (
    SELECT year, indicator, CASE WHEN rule = 'max' THEN MAX(value) ELSE SUM(value) END AS value
    FROM per_unit
    GROUP BY year, indicator, rule
)
SELECT year, indicator, CAST(value AS DOUBLE PRECISION) AS value FROM totals
UNION ALL
SELECT y.year, d.indicator,
       CASE WHEN n.value IS NULL OR q.value IS NULL OR q.value = 0 THEN NULL
            ELSE n.value / q.value * d.factor END
FROM (SELECT DISTINCT year FROM totals) y
CROSS JOIN bench_derived d
LEFT JOIN totals n ON n.year = y.year AND n.indicator = d.numerator
LEFT JOIN totals q ON q.year = y.year AND q.indicator = d.denominator
";

const REFERENCE_TABLES: [(&str, &str); 4] = [
    (
        "bench_units",
        "CREATE TABLE bench_units (unit_code TEXT PRIMARY KEY, \
         population DOUBLE PRECISION NOT NULL)",
    ),
    (
        "bench_indicators",
        "CREATE TABLE bench_indicators (indicator TEXT PRIMARY KEY, rule TEXT NOT NULL)",
    ),
    (
        "bench_derived",
        "CREATE TABLE bench_derived (indicator TEXT PRIMARY KEY, numerator TEXT NOT NULL, \
         denominator TEXT NOT NULL, factor DOUBLE PRECISION NOT NULL)",
    ),
    (
        "bench_ranked",
        "CREATE TABLE bench_ranked (indicator TEXT PRIMARY KEY, higher BIGINT NOT NULL, \
         weight DOUBLE PRECISION NOT NULL, per_capita BIGINT NOT NULL)",
    ),
];

/// Rows per reference-table INSERT: far under both dialects' parameter limits.
const REFERENCE_ROWS: usize = 4_000;

/// A connection of its own for the SQL baseline, tuned as a DBA would tune a reporting
/// session (a larger page cache for SQLite; more sort and hash memory for PostgreSQL).
pub enum Baseline {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$conn` bound to the connection and `$db` to its sqlx database type, so one
/// piece of code serves both dialects.
macro_rules! on_conn {
    ($baseline:expr, |$conn:ident, $db:ident| $body:expr) => {
        match $baseline {
            Baseline::Sqlite($conn) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            Baseline::Postgres($conn) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

type ProvinceTuple = (
    i64,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<i64>,
);

impl Baseline {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = sqlite_options(url)?.pragma("cache_size", "-524288");
            Ok(Baseline::Sqlite(
                SqliteConnection::connect_with(&options).await?,
            ))
        } else {
            let mut conn = pg_connect(url).await?;
            sqlx::query("SET work_mem = '256MB'")
                .execute(&mut conn)
                .await?;
            Ok(Baseline::Postgres(conn))
        }
    }

    /// (Re)creates the `bench_*` reference tables from `spec`.
    pub async fn prepare(&mut self, spec: &BaselineSpec) -> Result<(), StoreError> {
        on_conn!(self, |conn, Db| {
            for (table, create) in REFERENCE_TABLES {
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(create).execute(&mut *conn).await?;
            }
            for part in spec.units.chunks(REFERENCE_ROWS) {
                let mut insert =
                    QueryBuilder::<Db>::new("INSERT INTO bench_units (unit_code, population) ");
                insert.push_values(part, |mut row, (code, population)| {
                    row.push_bind(code.clone()).push_bind(*population as f64);
                });
                insert.build().execute(&mut *conn).await?;
            }
            for part in spec.indicators.chunks(REFERENCE_ROWS) {
                let mut insert =
                    QueryBuilder::<Db>::new("INSERT INTO bench_indicators (indicator, rule) ");
                insert.push_values(part, |mut row, (code, rule)| {
                    row.push_bind(code.clone())
                        .push_bind(rule.as_str().to_owned());
                });
                insert.build().execute(&mut *conn).await?;
            }
            for part in spec.derived.chunks(REFERENCE_ROWS) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO bench_derived (indicator, numerator, denominator, factor) ",
                );
                insert.push_values(part, |mut row, d| {
                    row.push_bind(d.code.clone())
                        .push_bind(d.numerator.clone())
                        .push_bind(d.denominator.clone())
                        .push_bind(d.factor);
                });
                insert.build().execute(&mut *conn).await?;
            }
            for part in spec.ranked.chunks(REFERENCE_ROWS) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO bench_ranked (indicator, higher, weight, per_capita) ",
                );
                insert.push_values(part, |mut row, r| {
                    row.push_bind(r.code.clone())
                        .push_bind(i64::from(r.higher_is_better))
                        .push_bind(r.weight)
                        .push_bind(i64::from(r.per_capita));
                });
                insert.build().execute(&mut *conn).await?;
            }
            // Statistics for the new tables only: the big ones were analysed after the load.
            for (table, _) in REFERENCE_TABLES {
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }

    /// The province answer for the data set's periods `first..=last` (identifiers).
    pub async fn province(
        &mut self,
        data_set: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<ProvinceRow>, StoreError> {
        let rows: Vec<ProvinceTuple> = on_conn!(self, |conn, Db| {
            sqlx::query_as(PROVINCE_SQL)
                .bind(data_set)
                .bind(first)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?
        });
        rows.into_iter()
            .map(|(kind, unit, indicator, value, rank)| {
                let kind = match kind {
                    0 => ProvinceRowKind::UnitValue,
                    1 => ProvinceRowKind::Total,
                    2 => ProvinceRowKind::IndicatorRank,
                    3 => ProvinceRowKind::Composite,
                    other => {
                        return Err(StoreError::Internal(format!(
                            "province baseline returned row kind {other}"
                        )));
                    }
                };
                Ok(ProvinceRow {
                    kind,
                    unit,
                    indicator,
                    value,
                    rank,
                })
            })
            .collect()
    }

    /// Yearly node totals for the data set's periods `first..=last` (identifiers).
    pub async fn series(
        &mut self,
        data_set: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<SeriesRow>, StoreError> {
        let rows: Vec<(String, String, Option<f64>)> = on_conn!(self, |conn, Db| {
            sqlx::query_as(SERIES_SQL)
                .bind(data_set)
                .bind(first)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(year, indicator, value)| SeriesRow {
                year,
                indicator,
                value,
            })
            .collect())
    }

    pub async fn close(self) -> Result<(), StoreError> {
        match self {
            Baseline::Sqlite(conn) => conn.close().await?,
            Baseline::Postgres(conn) => conn.close().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b").ok(),
            Some("postgres://postgres@127.0.0.1:5432/b".to_owned())
        );
        assert_eq!(
            with_database("postgres://u:p@db/x?sslmode=disable", "b").ok(),
            Some("postgres://u:p@db/b?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://db", "b").ok(),
            Some("postgres://db/b".to_owned())
        );
        assert!(with_database("nonsense", "b").is_err());
    }

    #[test]
    fn copy_text_escapes_separators() {
        let mut out = String::new();
        copy_text(&mut out, "a\tb\\c\nd");
        assert_eq!(out, "a\\tb\\\\c\\nd");
    }
}
