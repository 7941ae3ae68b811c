//! PostgreSQL backend: the production store, shared by several aggregator processes. Row locks
//! on `current_reports` order concurrent revisions of one report; different reports never wait
//! for each other. Reports go through the group committer: at a deadline's rush a transaction
//! per report spent PostgreSQL's CPU on about seven round trips each, and p99 grew with it.

use super::group_commit::{GroupCommitter, GroupWriter};
use super::queries::sql_store;
use super::{NewRevision, Recorded, StoreError, StoreOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

pub struct PgStore {
    pool: PgPool,
    committer: GroupCommitter,
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
        let committer = GroupCommitter::start(PgGroupWriter(pool.clone()));
        Ok(PgStore { pool, committer })
    }

    async fn record_revision(&self, new: NewRevision) -> Result<Recorded, StoreError> {
        self.committer.record(new).await
    }

    async fn finish_writes(&self) {
        self.committer.finish().await;
    }
}

/// The group committer's writer: a commit here is durable when it returns (the server's
/// `synchronous_commit`), so there is nothing left to flush.
struct PgGroupWriter(PgPool);

#[async_trait::async_trait]
impl GroupWriter for PgGroupWriter {
    async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError> {
        let mut conn = self.0.acquire().await?;
        // Rolled back when dropped on any error: nothing half-written is answered.
        let mut tx = conn.begin().await?;
        let recorded = super::group_write::write_group_postgres(&mut tx, group).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn record_alone(&self, revision: &NewRevision) -> Result<Recorded, StoreError> {
        record_alone(&self.0, revision).await
    }
}

sql_store!(
    PgStore,
    sqlx::Postgres,
    writer = pool,
    reader = pool,
    name = "postgres"
);
super::reviews::review_store!(PgStore, writer = pool, reader = pool, committer = committer);
