//! SQLite backend: the embedded default. One writer connection (SQLite has one writer anyway,
//! and a single connection avoids "database is locked" on lock upgrades) and a pool of readers,
//! which WAL mode lets run while the writer commits. `synchronous = FULL`: an acknowledged
//! report survives a power cut, not only a process crash. Reports are written through the
//! group committer, which shares one commit among the reports that arrive together.

use super::group_commit::GroupCommitter;
use super::queries::sql_store;
use super::{NewRevision, Recorded, StoreError, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::str::FromStr;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    committer: GroupCommitter,
}

impl SqliteStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.acquire_timeout);
        if let Some(dir) = connect.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // Migrations on a connection of their own, with SQLite's default of temporary files:
        // a migration that builds an index over years of values sorts more than fits in RAM.
        let mut migrating = SqliteConnection::connect_with(&connect).await?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&mut migrating)
            .await?;
        migrating.close().await?;
        // The writer's statement journals (each multi-row INSERT inside a group's transaction
        // keeps one, to undo just that statement if it fails) stay in memory: past 64 KiB
        // SQLite spills them to a new temporary file, and keeping them in memory raised the
        // bare store's rate in the ingest benchmark by about a fifth. A journal holds at most
        // the pages one statement of one group touches.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone().pragma("temp_store", "memory"))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        let committer = GroupCommitter::start(StoreGroupWriter(writer.clone()));
        Ok(SqliteStore {
            writer,
            reader,
            committer,
        })
    }

    async fn record_revision(&self, new: NewRevision) -> Result<Recorded, StoreError> {
        self.committer.record(new).await
    }

    async fn finish_writes(&self) {
        self.committer.finish().await;
    }
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    writer = writer,
    reader = reader,
    group_write = super::group_write::write_group_sqlite,
    name = "sqlite"
);
super::reviews::review_store!(SqliteStore, writer = writer, reader = reader);
