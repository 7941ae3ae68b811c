//! PostgreSQL backend: the production store, shared by several aggregator processes. Row locks
//! on `current_reports` order concurrent revisions of one report; different reports never wait
//! for each other.

use super::queries::sql_store;
use super::{NewRevision, Recorded, StoreError, StoreOptions};
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

    /// Each call in its own transaction on its own pooled connection: PostgreSQL already
    /// flushes the WAL of commits that arrive together in one write, and its row locks let
    /// different reports commit in parallel, across aggregator processes too.
    async fn record_revision(&self, new: NewRevision) -> Result<Recorded, StoreError> {
        record_alone(&self.pool, &new).await
    }

    /// Nothing is queued outside the pool: its own close waits for transactions in flight.
    async fn finish_writes(&self) {}
}

sql_store!(
    PgStore,
    sqlx::Postgres,
    writer = pool,
    reader = pool,
    name = "postgres"
);
super::reviews::review_store!(PgStore, writer = pool, reader = pool);
