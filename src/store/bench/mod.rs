//! Bulk loading and SQL baselines for `tonghop bench analytics`, and the temporary PostgreSQL
//! databases both benchmarks run on. Writing 24 million values through the per-report ingest
//! path would take hours, so the benchmark writes its synthetic reports straight into the
//! schema (`bulk_load`); and the SQL answers the analytics are compared against live here too
//! (`baseline`), because all of tonghop's SQL lives under `store/`.
//!
//! Nothing in this module is used by the aggregator itself.

mod baseline;
mod bulk_load;

pub use baseline::{
    Baseline, BaselineDerived, BaselineRanked, BaselineSpec, ProvinceRow, ProvinceRowKind,
    SeriesRow,
};
pub use bulk_load::{BulkLoad, BulkLoaded, BulkReport, bulk_load};

use super::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::with_database;

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
}
