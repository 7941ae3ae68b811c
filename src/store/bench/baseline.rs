//! The SQL baseline of `tonghop bench analytics`: the same province answers and national
//! series the polars analytics compute, written in each dialect's SQL over the store's tables,
//! so the benchmark can check the two agree and time them side by side.

use super::{pg_connect, sqlite_options};
use crate::domain::Aggregation;
use crate::store::StoreError;
use sqlx::{Connection, PgConnection, QueryBuilder, SqliteConnection};

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
