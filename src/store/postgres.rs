//! PostgreSQL backend: the production store, shared by several aggregator processes. Row locks
//! on `current_reports` order concurrent revisions of one report; different reports never wait
//! for each other.

use super::queries::sql_store;
use super::{StoreError, StoreOptions};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        // sqlx takes an advisory lock here, so processes starting together migrate once.
        sqlx::migrate!("src/store/migrations/postgres")
            .run(&pool)
            .await?;
        Ok(PgStore { pool })
    }
}

sql_store!(
    PgStore,
    sqlx::Postgres,
    writer = pool,
    reader = pool,
    name = "postgres"
);
super::reviews::review_store!(PgStore, writer = pool, reader = pool);
