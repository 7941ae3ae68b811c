//! SQLite backend: the embedded default. One writer connection (SQLite has one writer anyway,
//! and a single connection avoids "database is locked" on lock upgrades) and a pool of readers,
//! which WAL mode lets run while the writer commits. An acknowledged report survives a power
//! cut, not only a process crash: `synchronous = FULL` for every write but the group
//! committer's, whose commits skip SQLite's flush of the WAL and leave it to the committer, who
//! flushes the WAL file itself while the next group is written and only then answers (see
//! `group_commit/`). The wait for the disk then overlaps the writing instead of following it.
//! The committer runs on threads and a runtime of its own, so that the writer, ingest's one
//! serial step, does not queue behind the server's calls for a worker; it writes each group
//! straight through the connection's handle in its own thread (`group_write/sqlite.rs`). A
//! connection of its own copies the WAL into the database file beside the writer
//! (`checkpoint.rs`), which SQLite would otherwise do inside the writer's commits.

use super::checkpoint::{Checkpointer, WRITER_CHECKPOINT_PAGES};
use super::group_commit::{GroupCommitter, GroupWriter};
use super::group_write::{commit_group_sqlite, on_handle};
use super::queries::sql_store;
use super::{NewRevision, Recorded, StoreError, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;
use tracing::warn;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    committer: GroupCommitter,
    /// Copies the WAL into the database file beside the writer; `None` without a WAL file.
    checkpointer: Option<Checkpointer>,
    /// The WAL the committer flushes, for tests to check that it does.
    #[cfg(test)]
    wal: Option<Arc<WalFile>>,
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
        // The writer's statement journals (a multi-row INSERT inside a transaction keeps one,
        // to undo just that statement if it fails: the single-report path's insert of a
        // report's values does) stay in memory: past 64 KiB SQLite spills them to a new
        // temporary file, which cost the bare store about a fifth of its rate when the group
        // write still used multi-row INSERTs. A journal holds at most the pages one statement
        // touches. Its own checkpoints wait for a longer WAL than SQLite's default: the
        // checkpointer copies the WAL beside it (`checkpoint.rs`).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(
                connect
                    .clone()
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string()),
            )
            .await?;
        let wal = WalFile::of(&writer, &connect).await?.map(Arc::new);
        let checkpointer = if wal.is_some() {
            Some(Checkpointer::start(&connect).await?)
        } else {
            None
        };
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        let committer = GroupCommitter::start_on_own_thread(SqliteGroupWriter {
            writer: writer.clone(),
            wal: wal.clone(),
            checkpoint_due: checkpointer.as_ref().map(Checkpointer::due),
        })?;
        Ok(SqliteStore {
            writer,
            reader,
            committer,
            checkpointer,
            #[cfg(test)]
            wal,
        })
    }

    async fn record_revision(&self, new: NewRevision) -> Result<Recorded, StoreError> {
        self.committer.record(new).await
    }

    async fn finish_writes(&self) {
        self.committer.finish().await;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop().await;
        }
    }
}

/// The group committer's writer. Its group transactions commit with `synchronous = NORMAL`
/// (the WAL written, not flushed) and `make_durable` flushes the WAL; the connection is back at
/// `FULL` before anything else uses it, so a review or a single report's fallback commit is
/// flushed by SQLite as before. Readers may see a group between its commit and its flush (a
/// power cut then loses it, and its callers, never answered, send it again); a review's own
/// flushed commit covers every group committed before it.
struct SqliteGroupWriter {
    writer: SqlitePool,
    /// `None` when the store is not a WAL file this process can flush (an in-memory database):
    /// then every commit keeps SQLite's own flush.
    wal: Option<Arc<WalFile>>,
    /// Told after a group that stored a revision that there is WAL to copy into the database
    /// file. A group of duplicates and conflicts writes no WAL, so it does not tell. The
    /// checkpoint may run before the group's flush: a checkpoint flushes the WAL itself before
    /// it copies any of it.
    checkpoint_due: Option<Arc<Notify>>,
}

#[async_trait::async_trait]
impl GroupWriter for SqliteGroupWriter {
    async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        // The group is written here, on the writer's own thread (see `group_write/sqlite.rs`).
        let committed = on_handle(&mut conn, |db| {
            commit_group_sqlite(db, group, self.wal.is_some())
        })
        .await?;
        if let (Some(due), Ok(recorded)) = (&self.checkpoint_due, &committed.recorded)
            && recorded.iter().any(|r| matches!(r, Recorded::Stored(_)))
        {
            due.notify_one();
        }
        if !committed.reusable {
            // Reviews and single reports count on this connection's own flush, and on it being
            // outside a transaction: one that might not be is closed, not given back.
            conn.close_on_drop();
            warn!(
                "the writer's connection is not back at synchronous = FULL outside a \
                 transaction; closing it"
            );
        }
        committed.recorded
    }

    async fn record_alone(&self, revision: &NewRevision) -> Result<Recorded, StoreError> {
        record_alone(&self.writer, revision).await
    }

    async fn make_durable(&self) -> Result<(), StoreError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let wal = wal.clone();
        tokio::task::spawn_blocking(move || wal.flush())
            .await
            .map_err(|e| StoreError::Internal(format!("the WAL flush did not finish: {e}")))?
    }

    async fn settle(&self) {
        // The last group's connection goes back to the pool in a task of the writer's runtime
        // (sqlx tests it first). Let that finish, so that closing the store closes the
        // connection properly instead of finding it dropped halfway. A review may hold the
        // connection meanwhile; it returns it on its own runtime, so the wait is bounded.
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.writer.num_idle() < self.writer.size() as usize
            && tokio::time::Instant::now() < give_up
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

/// The WAL file a group's commit leaves to `make_durable` to flush. A new WAL's directory entry
/// needs no flush of ours: SQLite flushes the header at a WAL's first frame (at `NORMAL` too),
/// and its first flush of a file it created flushes the directory as well.
struct WalFile {
    path: PathBuf,
    /// Flushes done, and the WAL's length just before the last one: what a test checks the
    /// flushing by. Not kept outside tests, where the length would cost a `stat` per flush.
    #[cfg(test)]
    flushes: AtomicU64,
    #[cfg(test)]
    flushed_length: AtomicU64,
}

impl WalFile {
    /// The WAL of the writer's database, or `None` if there is no such file to flush: an
    /// in-memory database, or a journal mode other than WAL (where SQLite's own flush stays).
    async fn of(
        writer: &SqlitePool,
        connect: &SqliteConnectOptions,
    ) -> Result<Option<WalFile>, StoreError> {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(writer)
            .await?;
        let Ok(database) = std::fs::canonicalize(connect.get_filename()) else {
            return Ok(None);
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        let mut path = database.into_os_string();
        path.push("-wal");
        Ok(Some(WalFile {
            path: path.into(),
            #[cfg(test)]
            flushes: AtomicU64::new(0),
            #[cfg(test)]
            flushed_length: AtomicU64::new(0),
        }))
    }

    /// Flushes every WAL frame written so far: a flush through any descriptor covers all the
    /// file's written pages. SQLite keeps its POSIX locks on the database and `-shm` files, never
    /// on the WAL, so opening and closing a descriptor of the WAL here releases none of them
    /// (closing any descriptor of a file drops all of the process's locks on that file).
    fn flush(&self) -> Result<(), StoreError> {
        let failed = |e: std::io::Error| {
            StoreError::Internal(format!("flushing {}: {e}", self.path.display()))
        };
        let wal = match File::open(&self.path) {
            Ok(wal) => wal,
            // No WAL: its last connection closed, and SQLite then copies the WAL into the
            // database file and flushes that before it removes the WAL.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed(e)),
        };
        #[cfg(test)]
        let length = wal.metadata().map_err(failed)?.len();
        wal.sync_data().map_err(failed)?;
        #[cfg(test)]
        {
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.flushed_length.store(length, Ordering::Relaxed);
        }
        Ok(())
    }
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    writer = writer,
    reader = reader,
    name = "sqlite"
);
super::reviews::review_store!(
    SqliteStore,
    writer = writer,
    reader = reader,
    committer = committer
);

#[cfg(test)]
mod tests;
