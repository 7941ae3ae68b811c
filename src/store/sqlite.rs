//! SQLite backend: the embedded default. One writer connection (SQLite has one writer anyway,
//! and a single connection avoids "database is locked" on lock upgrades) and a pool of readers,
//! which WAL mode lets run while the writer commits. An acknowledged report survives a power
//! cut, not only a process crash: `synchronous = FULL` for every write but the group
//! committer's, whose commits skip SQLite's flush of the WAL and leave it to the committer, who
//! flushes the WAL file itself while the next group is written and only then answers (see
//! `group_commit.rs`). The wait for the disk then overlaps the writing instead of following it.

use super::group_commit::{GroupCommitter, GroupWriter};
use super::queries::sql_store;
use super::{NewRevision, Recorded, StoreError, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tracing::warn;

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
        let wal = WalFiles::of(&writer, &connect).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        let committer = GroupCommitter::start(SqliteGroupWriter {
            writer: writer.clone(),
            wal: wal.map(Arc::new),
        });
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

/// The group committer's writer. Its group transactions commit with `synchronous = NORMAL`
/// (the WAL written, not flushed) and `make_durable` flushes the WAL; the connection is back at
/// `FULL` before anything else uses it, so a review or a single report's fallback commit is
/// flushed by SQLite as before.
struct SqliteGroupWriter {
    writer: SqlitePool,
    /// `None` when the store is not a WAL file this process can flush (an in-memory database):
    /// then every commit keeps SQLite's own flush.
    wal: Option<Arc<WalFiles>>,
}

#[async_trait::async_trait]
impl GroupWriter for SqliteGroupWriter {
    async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        if self.wal.is_none() {
            return commit_group_on(&mut conn, group).await;
        }
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let committed = commit_group_on(&mut conn, group).await;
        if let Err(e) = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
        {
            // Reviews and single reports count on this connection's own flush: a connection
            // that might commit without it is closed instead of going back to the pool.
            conn.close_on_drop();
            warn!(error = %e, "could not set the writer back to synchronous = FULL; closing it");
        }
        committed
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
}

/// The files a group's commit leaves to `make_durable`: the WAL, and its directory entry.
struct WalFiles {
    database: PathBuf,
    wal: PathBuf,
    directory: PathBuf,
    /// The WAL file (device, inode) whose directory entry was last flushed. SQLite removes the
    /// WAL when its last connection closes and creates a new one on the next write, and a new
    /// file's name must reach the disk as well as its contents (SQLite's own first flush of a
    /// new WAL flushes the directory for the same reason).
    entry_flushed_for: Mutex<Option<(u64, u64)>>,
}

impl WalFiles {
    /// The WAL of the writer's database, or `None` if there is no such file to flush: an
    /// in-memory database, or a journal mode other than WAL (where SQLite's own flush stays).
    async fn of(
        writer: &SqlitePool,
        connect: &SqliteConnectOptions,
    ) -> Result<Option<WalFiles>, StoreError> {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(writer)
            .await?;
        let Ok(database) = std::fs::canonicalize(connect.get_filename()) else {
            return Ok(None);
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        let (Some(name), Some(directory)) = (database.file_name(), database.parent()) else {
            return Ok(None);
        };
        let mut wal_name = name.to_owned();
        wal_name.push("-wal");
        Ok(Some(WalFiles {
            wal: directory.join(wal_name),
            directory: directory.to_owned(),
            database,
            entry_flushed_for: Mutex::new(None),
        }))
    }

    /// Flushes every WAL frame written so far (any descriptor's flush covers the file's written
    /// pages), and the WAL's directory entry the first time this WAL file is seen.
    fn flush(&self) -> Result<(), StoreError> {
        let failed = |path: &PathBuf, e: std::io::Error| {
            StoreError::Internal(format!("flushing {}: {e}", path.display()))
        };
        let wal = match File::open(&self.wal) {
            Ok(wal) => wal,
            // No WAL: its last connection closed, which copies the WAL into the database file
            // and flushes that before removing the WAL. Flushing the database file again is
            // cheap and does not rest on that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return File::open(&self.database)
                    .and_then(|db| db.sync_data())
                    .map_err(|e| failed(&self.database, e));
            }
            Err(e) => return Err(failed(&self.wal, e)),
        };
        wal.sync_data().map_err(|e| failed(&self.wal, e))?;
        let meta = wal.metadata().map_err(|e| failed(&self.wal, e))?;
        let id = (meta.dev(), meta.ino());
        let mut flushed_for = self
            .entry_flushed_for
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *flushed_for != Some(id) {
            File::open(&self.directory)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| failed(&self.directory, e))?;
            *flushed_for = Some(id);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::group_write::tests::new_revision;

    #[tokio::test]
    async fn the_writer_is_back_at_full_after_a_group_and_its_wal_is_found_and_flushed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        let recorded = store
            .record(new_revision("sub-1", "D01", "h"))
            .await
            .expect("recorded");
        assert!(matches!(recorded, Recorded::Stored(_)), "{recorded:?}");

        // 2 is FULL: what reviews and single-report fallbacks written next rely on.
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .expect("pragma");
        assert_eq!(level, 2);

        let connect = SqliteConnectOptions::from_str(&url).expect("url");
        let wal = WalFiles::of(&store.writer, &connect)
            .await
            .expect("journal mode")
            .expect("a WAL file to flush");
        let canonical = std::fs::canonicalize(dir.path()).expect("dir");
        assert_eq!(wal.wal, canonical.join("store.db-wal"));
        wal.flush().expect("flush");
        let meta = std::fs::metadata(&wal.wal).expect("the WAL exists");
        assert_eq!(
            *wal.entry_flushed_for.lock().expect("lock"),
            Some((meta.dev(), meta.ino()))
        );
        store.close().await;
    }
}
