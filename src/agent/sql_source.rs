//! The SQL source: a query against the district's own database (SQLite file or PostgreSQL)
//! that returns `indicator, value [, comment]` rows for one period, with the first and last day
//! of the period's data window bound as `$1` and `$2`. District systems store their figures in
//! whatever column types they chose, so values are decoded by trying float, then integer, then
//! PostgreSQL NUMERIC, then text; an error names the row and the column.

use super::source::{SourceError, SourceReport};
use crate::domain::{DateWindow, DraftValue, Narrative, PeriodId};
use sqlx::postgres::{PgPoolOptions, PgRow, PgValueFormat};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow};
use sqlx::{PgPool, Row, SqlitePool, TypeInfo, ValueRef};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub struct SqlSource {
    url: String,
    query: String,
    pool: Option<Pool>,
}

impl SqlSource {
    pub fn new(url: &str, query: &str) -> Self {
        SqlSource {
            url: url.to_owned(),
            query: query.to_owned(),
            pool: None,
        }
    }

    pub fn describe(&self) -> String {
        format!("SQL query on {}", crate::store::redact_url(&self.url))
    }

    fn error(&self, what: String) -> SourceError {
        SourceError::Sql(format!("{}: {what}", self.describe()))
    }

    async fn connect(&self) -> Result<Pool, SourceError> {
        let timeout = Duration::from_secs(10);
        if self.url.starts_with("sqlite:") {
            // Read-only: the agent must never change the district's own data.
            let options = SqliteConnectOptions::from_str(&self.url)
                .map_err(|e| self.error(format!("bad URL: {e}")))?
                .read_only(true)
                .create_if_missing(false)
                .busy_timeout(timeout);
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map(Pool::Sqlite)
                .map_err(|e| self.error(format!("cannot open the database: {e}")))
        } else {
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect(&self.url)
                .await
                .map(Pool::Postgres)
                .map_err(|e| self.error(format!("cannot connect: {e}")))
        }
    }

    /// How many of `$1`, `$2` the query uses: PostgreSQL refuses more parameters than the
    /// statement has, so a query that only needs the end date must get only one.
    fn parameters(&self) -> Result<usize, SourceError> {
        let used = |n: u32| {
            let marker = format!("${n}");
            self.query.match_indices(&marker).any(|(i, _)| {
                !self.query[i + marker.len()..].starts_with(|c: char| c.is_ascii_digit())
            })
        };
        if (3..=9).any(used) {
            return Err(self.error(
                "the query uses a parameter beyond $2; only $1 (first day of the period's \
                 window) and $2 (last day) are bound"
                    .into(),
            ));
        }
        Ok(if used(2) {
            2
        } else if used(1) {
            1
        } else {
            0
        })
    }

    /// The report of `period`, `Ok(None)` when the query returns no rows (no data entered yet).
    pub async fn read(
        &mut self,
        period: PeriodId,
        window: DateWindow,
    ) -> Result<Option<SourceReport>, SourceError> {
        let params = self.parameters()?;
        if self.pool.is_none() {
            self.pool = Some(self.connect().await?);
        }
        let context = |e: sqlx::Error| {
            format!(
                "query for period {period} ($1 = {}, $2 = {}) failed: {e}",
                window.start, window.end
            )
        };
        let rows: Vec<(String, f64, String)> = match &self.pool {
            Some(Pool::Sqlite(pool)) => {
                let mut q = sqlx::query(&self.query);
                for date in [window.start, window.end].into_iter().take(params) {
                    q = q.bind(date);
                }
                let result = q.fetch_all(pool).await;
                let rows = result.map_err(|e| self.error(context(e)))?;
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| sqlite_row(row).map_err(|m| self.row_error(period, i, m)))
                    .collect::<Result<_, _>>()?
            }
            Some(Pool::Postgres(pool)) => {
                let mut q = sqlx::query(&self.query);
                for date in [window.start, window.end].into_iter().take(params) {
                    q = q.bind(date);
                }
                let result = q.fetch_all(pool).await;
                let rows = match result {
                    Ok(rows) => rows,
                    Err(e) => {
                        // A dropped connection is re-opened on the next pass.
                        if matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) {
                            self.close().await;
                        }
                        return Err(self.error(context(e)));
                    }
                };
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| pg_row(row).map_err(|m| self.row_error(period, i, m)))
                    .collect::<Result<_, _>>()?
            }
            None => return Err(self.error("not connected".into())),
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let mut first_row: HashMap<&str, usize> = HashMap::new();
        for (i, (indicator, _, _)) in rows.iter().enumerate() {
            if let Some(first) = first_row.insert(indicator.as_str(), i) {
                return Err(self.error(format!(
                    "period {period}: rows {} and {} both give indicator {indicator}; return \
                     one row per indicator (GROUP BY indicator)",
                    first + 1,
                    i + 1
                )));
            }
        }
        Ok(Some(SourceReport {
            values: rows
                .into_iter()
                .map(|(indicator, value, comment)| DraftValue {
                    indicator,
                    value,
                    comment,
                })
                .collect(),
            narrative: Narrative::default(),
            prepared_by: None,
            origin: self.describe(),
        }))
    }

    fn row_error(&self, period: PeriodId, index: usize, message: String) -> SourceError {
        self.error(format!("period {period}, row {}: {message}", index + 1))
    }

    pub async fn close(&mut self) {
        match self.pool.take() {
            Some(Pool::Sqlite(p)) => p.close().await,
            Some(Pool::Postgres(p)) => p.close().await,
            None => {}
        }
    }
}

const COLUMN_NAMES: [&str; 3] = ["indicator", "value", "comment"];

fn column_count(found: usize) -> Result<(), String> {
    if (2..=3).contains(&found) {
        Ok(())
    } else {
        Err(format!(
            "{found} columns; the query must return indicator, value (and optionally comment)"
        ))
    }
}

fn finite(value: f64, indicator: &str) -> Result<f64, String> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "column 2 (value) of indicator {indicator} is {value}"
        ))
    }
}

fn sqlite_row(row: &SqliteRow) -> Result<(String, f64, String), String> {
    column_count(row.len())?;
    let text = |i: usize| -> Result<Option<String>, String> {
        if let Ok(s) = row.try_get::<Option<String>, _>(i) {
            return Ok(s);
        }
        // Codes stored as numbers (a district numbering its indicators) read as text.
        row.try_get::<Option<i64>, _>(i)
            .map(|v| v.map(|v| v.to_string()))
            .map_err(|e| format!("column {} ({}): {e}", i + 1, COLUMN_NAMES[i]))
    };
    let indicator = text(0)?.ok_or("column 1 (indicator) is NULL")?;
    let value = if let Ok(v) = row.try_get::<Option<f64>, _>(1) {
        v
    } else if let Ok(v) = row.try_get::<Option<i64>, _>(1) {
        v.map(|v| v as f64)
    } else {
        match row.try_get::<Option<String>, _>(1) {
            Ok(Some(s)) => Some(parse_text(&s, &indicator)?),
            Ok(None) => None,
            Err(e) => return Err(format!("column 2 (value) of indicator {indicator}: {e}")),
        }
    };
    let value = value.ok_or_else(|| null_value(&indicator))?;
    let comment = if row.len() == 3 {
        text(2)?.unwrap_or_default()
    } else {
        String::new()
    };
    let value = finite(value, &indicator)?;
    Ok((indicator, value, comment))
}

fn pg_row(row: &PgRow) -> Result<(String, f64, String), String> {
    column_count(row.len())?;
    let text = |i: usize| -> Result<Option<String>, String> {
        row.try_get::<Option<String>, _>(i).map_err(|e| {
            format!(
                "column {} ({}): {e}; cast it to text",
                i + 1,
                COLUMN_NAMES[i]
            )
        })
    };
    let indicator = text(0)?.ok_or("column 1 (indicator) is NULL")?;
    let raw = row
        .try_get_raw(1)
        .map_err(|e| format!("column 2 (value) of indicator {indicator}: {e}"))?;
    if raw.is_null() {
        return Err(null_value(&indicator));
    }
    let type_name = raw.type_info().name().to_owned();
    let value = if let Ok(v) = row.try_get::<f64, _>(1) {
        v
    } else if let Ok(v) = row.try_get::<f32, _>(1) {
        f64::from(v)
    } else if let Ok(v) = row.try_get::<i64, _>(1) {
        v as f64
    } else if let Ok(v) = row.try_get::<i32, _>(1) {
        f64::from(v)
    } else if let Ok(v) = row.try_get::<i16, _>(1) {
        f64::from(v)
    } else if type_name == "NUMERIC" {
        // SUM over BIGINT and plain NUMERIC columns; sqlx decodes it only with extra features.
        let bytes = raw
            .as_bytes()
            .map_err(|e| format!("column 2 (value) of indicator {indicator}: {e}"))?;
        match raw.format() {
            PgValueFormat::Binary => pg_numeric(bytes),
            PgValueFormat::Text => std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()),
        }
        .ok_or_else(|| format!("column 2 (value) of indicator {indicator}: unreadable NUMERIC"))?
    } else if let Ok(s) = row.try_get::<String, _>(1) {
        parse_text(&s, &indicator)?
    } else {
        return Err(format!(
            "column 2 (value) of indicator {indicator} has type {type_name}; return a number \
             (integer, real, double precision or numeric) or its text"
        ));
    };
    let comment = if row.len() == 3 {
        text(2)?.unwrap_or_default()
    } else {
        String::new()
    };
    let value = finite(value, &indicator)?;
    Ok((indicator, value, comment))
}

fn null_value(indicator: &str) -> String {
    format!(
        "column 2 (value) of indicator {indicator} is NULL; return a number (COALESCE(value, 0) \
         if none means zero) or leave the row out"
    )
}

fn parse_text(s: &str, indicator: &str) -> Result<f64, String> {
    s.trim().parse().map_err(|_| {
        format!("column 2 (value) of indicator {indicator} is the text {s:?}, not a number")
    })
}

/// PostgreSQL's binary NUMERIC: digit count, weight (power of 10000 of the first digit), sign,
/// display scale, then base-10000 digits.
fn pg_numeric(bytes: &[u8]) -> Option<f64> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *bytes.get(2 * i)?,
            *bytes.get(2 * i + 1)?,
        ]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let mut value = 0.0f64;
    for d in 0..ndigits {
        let digit = f64::from(word(4 + d)?);
        let power = weight - i32::try_from(d).ok()?;
        value += digit * 10_000f64.powi(power);
    }
    match sign {
        0x0000 => Some(value),
        0x4000 => Some(-value),
        // NaN and infinities are not figures a report can carry.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_binary_decodes() {
        // 35000000000.5 = digits [350, 0, 0, 5000], weight 2, positive, scale 1.
        let mut bytes = Vec::new();
        for w in [4u16, 2, 0, 1, 350, 0, 0, 5000] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(pg_numeric(&bytes), Some(35_000_000_000.5));
        // Zero has no digits.
        let zero: Vec<u8> = [0u16, 0, 0, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(pg_numeric(&zero), Some(0.0));
        assert_eq!(pg_numeric(&[0, 1]), None, "truncated");
    }

    #[test]
    fn parameters_are_counted_from_the_query() {
        let count = |q: &str| SqlSource::new("sqlite://x.db", q).parameters();
        assert_eq!(count("SELECT 'a', 1"), Ok(0));
        assert_eq!(count("SELECT x FROM t WHERE d <= $1"), Ok(1));
        assert_eq!(count("WHERE d BETWEEN $1 AND $2"), Ok(2));
        assert!(count("WHERE d BETWEEN $1 AND $12").is_ok_and(|n| n == 1));
        assert!(count("WHERE a = $3").is_err());
    }
}
