//! SQLite backend: the embedded default. One writer connection (SQLite has one writer anyway,
//! and a single connection avoids "database is locked" on lock upgrades) and a pool of readers,
//! which WAL mode lets run while the writer commits. An acknowledged report survives a power
//! cut, not only a process crash: `synchronous = FULL` for every write but the group
//! committer's, whose commits skip SQLite's flush of the WAL and leave it to the committer, who
//! flushes the WAL file itself while the next group is written and only then answers (see
//! `group_commit.rs`). The wait for the disk then overlaps the writing instead of following it.
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
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
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
            stored_since_flush: AtomicBool::new(false),
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
    /// Told after a flush that covers a new revision that there is WAL to copy into the
    /// database file.
    checkpoint_due: Option<Arc<Notify>>,
    /// Whether a group committed since the last flush stored anything: a group of duplicates
    /// and conflicts writes no WAL, and waking the checkpointer for it would only rewrite the
    /// database file with pages it already had a moment later.
    stored_since_flush: AtomicBool,
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
        if let Ok(recorded) = &committed.recorded
            && recorded.iter().any(|r| matches!(r, Recorded::Stored(_)))
        {
            self.stored_since_flush.store(true, Ordering::Release);
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
        let stored = self.stored_since_flush.swap(false, Ordering::AcqRel);
        let wal = wal.clone();
        tokio::task::spawn_blocking(move || wal.flush())
            .await
            .map_err(|e| StoreError::Internal(format!("the WAL flush did not finish: {e}")))??;
        // Taken before the flush: a group stored meanwhile sets it again, for the next flush.
        if let Some(due) = &self.checkpoint_due
            && stored
        {
            due.notify_one();
        }
        Ok(())
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
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::group_write::tests::new_revision;

    #[tokio::test]
    async fn values_and_current_reports_live_in_their_keys_b_tree_alone() {
        // Migration 0004: one B-tree per table, no rowid table beside the key, and no foreign
        // key check per value. A store opened on a new file has it.
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        for table in ["submission_values", "current_reports"] {
            // A table WITHOUT ROWID has no rowid column to select.
            let rowid = sqlx::query(&format!("SELECT rowid FROM {table}"))
                .fetch_all(&store.writer)
                .await
                .err()
                .map(|e| e.to_string());
            assert!(
                rowid
                    .as_deref()
                    .is_some_and(|e| e.contains("no such column: rowid")),
                "{table} still has a rowid: {rowid:?}"
            );
            // Its primary key is the table's own B-tree: a rowid table keeps it in a separate
            // index (`sqlite_autoindex_<table>_1`), listed in the schema.
            let indexes: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM sqlite_master WHERE tbl_name = '{table}' AND type = 'index'"
            ))
            .fetch_one(&store.writer)
            .await
            .expect("schema");
            assert_eq!(indexes, 0, "{table}: no separate index B-tree");
        }
        let foreign_keys: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pragma_foreign_key_list('submission_values')")
                .fetch_one(&store.writer)
                .await
                .expect("foreign keys");
        assert_eq!(foreign_keys, 0);
        store.close().await;
    }

    #[tokio::test]
    async fn an_answered_report_was_flushed_and_the_writer_is_back_at_full() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        let wal = store.wal.clone().expect("a WAL file to flush");
        let canonical = std::fs::canonicalize(dir.path()).expect("dir");
        assert_eq!(wal.path, canonical.join("store.db-wal"));

        let recorded = store
            .record(new_revision("sub-1", "D01", "h"))
            .await
            .expect("recorded");
        assert!(matches!(recorded, Recorded::Stored(_)), "{recorded:?}");
        // Nothing else writes: the flush before the answer covered the whole WAL as it is now.
        let length = std::fs::metadata(&wal.path).expect("the WAL exists").len();
        assert!(length > 0);
        assert!(
            wal.flushes.load(Ordering::Relaxed) >= 1,
            "answered without a flush"
        );
        assert_eq!(wal.flushed_length.load(Ordering::Relaxed), length);

        // 2 is FULL: what reviews and single-report fallbacks written next rely on.
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .expect("pragma");
        assert_eq!(level, 2);
        store.close().await;
    }

    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_beside_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        // The writer itself waits for 8,000 WAL pages before it checkpoints, not SQLite's 1,000.
        let threshold: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .expect("pragma");
        assert_eq!(threshold, i64::from(WRITER_CHECKPOINT_PAGES));

        let recorded = store
            .record(new_revision("sub-1", "D01", "h"))
            .await
            .expect("recorded");
        assert!(matches!(recorded, Recorded::Stored(_)), "{recorded:?}");
        // One report's few WAL pages are far below the writer's threshold: only the
        // checkpointer, told by the flush, copies them, and nothing else writes meanwhile, so
        // it copies them all.
        let checkpointer = store.checkpointer.as_ref().expect("a checkpointer");
        let mut last = None;
        for _ in 0..500 {
            last = *checkpointer.last.lock().expect("lock");
            if last.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (wal_pages, copied) = last.expect("a checkpoint within 5 s of the flush");
        assert!(wal_pages > 0, "the report's pages were in the WAL");
        assert_eq!(copied, wal_pages, "every WAL page copied");
        store.close().await;
    }

    #[test]
    fn the_writer_commits_and_flushes_while_the_callers_runtime_is_stopped() {
        // The writer runs on a thread and runtime of its own: a report handed to it is written
        // and flushed even while nothing drives the caller's runtime, as when every worker of a
        // loaded server is busy with other calls; its answer is there when the caller runs
        // again. With the writer on the caller's runtime (the earlier design) the flush below
        // never came and this test failed after its 20 s wait.
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = Arc::new(
            caller
                .block_on(SqliteStore::open(&url, &StoreOptions::default()))
                .expect("open"),
        );
        let wal = store.wal.clone().expect("a WAL file to flush");
        // One report answered first: the writer's connection, last used by the caller's runtime
        // when the store opened, has been taken and given back by the writer's own since.
        let warm_up = caller
            .block_on(store.record(new_revision("sub-0", "D01", "h0")))
            .expect("recorded");
        assert!(matches!(warm_up, Recorded::Stored(_)), "{warm_up:?}");
        let flushed_before = wal.flushes.load(Ordering::Relaxed);
        let recording = {
            let store = store.clone();
            caller.spawn(async move { store.record(new_revision("sub-1", "D01", "h")).await })
        };
        // Run the caller's runtime just long enough for the task to queue its report.
        caller.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        assert!(
            !recording.is_finished(),
            "answered before the writer could flush"
        );
        // Nothing drives `caller` from here on: its only thread is this one, and it sleeps.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while wal.flushes.load(Ordering::Relaxed) == flushed_before
            && std::time::Instant::now() < give_up
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            wal.flushes.load(Ordering::Relaxed) > flushed_before,
            "the writer did not commit and flush while the caller's runtime was stopped"
        );
        let recorded = caller
            .block_on(recording)
            .expect("the recording task")
            .expect("recorded");
        assert!(matches!(recorded, Recorded::Stored(_)), "{recorded:?}");
        caller.block_on(store.close());
    }

    /// A revision with every column filled, values with and without a comment included.
    fn full_revision() -> NewRevision {
        use crate::domain::{DataValue, IndicatorCode};
        use chrono::TimeZone;
        let mut new = new_revision("sub-full", "D01", "hash-full");
        new.report.values = vec![
            DataValue {
                indicator: IndicatorCode::parse("don_tiep_nhan").expect("code"),
                value: 12.5,
                comment: Some("kể cả đơn trùng; 'quoted'".into()),
            },
            DataValue {
                indicator: IndicatorCode::parse("tiep_cong_dan").expect("code"),
                value: 0.1 + 0.2,
                comment: None,
            },
        ];
        new.report.client_time = Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 1, 31, 23, 59, 58)
                .single()
                .expect("time")
                + chrono::Duration::nanoseconds(123_456_789),
        );
        new.report.narrative.results = "Kết quả".into();
        new.report.narrative.shortcomings = "Hạn chế".into();
        new.report.narrative.proposals = "Kiến nghị".into();
        new.received_at += chrono::Duration::microseconds(7);
        new.warnings = vec!["a warning".into()];
        new
    }

    /// Every row of `table` as text: each column's SQL literal and its storage type.
    async fn rows_as_stored(store: &SqliteStore, table: &str, order: &str) -> Vec<String> {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&store.reader)
                .await
                .expect("columns");
        assert!(!columns.is_empty(), "no columns in {table}");
        let cells: Vec<String> = columns
            .iter()
            .map(|c| format!("'{c}=' || quote({c}) || ':' || typeof({c})"))
            .collect();
        sqlx::query_scalar(&format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            cells.join(" || ' ' || ")
        ))
        .fetch_all(&store.reader)
        .await
        .expect("rows")
    }

    #[tokio::test]
    async fn a_group_stores_every_column_as_the_single_report_path_does() {
        // Groups are written through the connection's handle, single reports (a failed
        // group's fallback) through sqlx: a report's stored text, times above all, must not
        // depend on which path wrote it, or reading it back and ordering by time would.
        let dir = tempfile::tempdir().expect("temp dir");
        let open = |name: &str| {
            let url = format!("sqlite://{}", dir.path().join(name).display());
            async move {
                SqliteStore::open(&url, &StoreOptions::default())
                    .await
                    .expect("open")
            }
        };
        let (grouped, alone) = (open("grouped.db").await, open("alone.db").await);
        // One group of three: the report, a correction of it, and a resend of the first, so
        // each prepared statement is stepped more than once and a repeat is met in the group.
        let correction = {
            let mut c = full_revision();
            c.report.submission_id = crate::domain::SubmissionId::parse("sub-full-2").expect("id");
            c.content_hash = "hash-full-2".into();
            c.report.values[0].value = 13.0;
            c.report.values[0].comment = None;
            c
        };
        let revisions = [full_revision(), correction, full_revision()];
        let committed = {
            let mut conn = grouped.writer.acquire().await.expect("writer");
            on_handle(&mut conn, |db| {
                let committed =
                    commit_group_sqlite(db, &revisions.iter().collect::<Vec<_>>(), true);
                assert!(db.is_autocommit(), "a transaction left open");
                committed
            })
            .await
            .expect("handle")
        };
        assert!(committed.reusable);
        let grouped_answers = committed.recorded.expect("group write");
        let mut single_answers = Vec::new();
        for revision in &revisions {
            single_answers.push(record_alone(&alone.writer, revision).await.expect("single"));
        }
        assert_eq!(grouped_answers, single_answers);
        let Recorded::Stored(first) = grouped_answers[0].clone() else {
            panic!("a new report is stored: {grouped_answers:?}");
        };
        assert_eq!(first.revision, 1);
        assert!(matches!(&grouped_answers[1], Recorded::Stored(r) if r.revision == 2));
        assert!(matches!(&grouped_answers[2], Recorded::Duplicate(r) if r.revision == 1));
        // 2 is FULL: the connection went back to the pool as reviews and single reports need it.
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&grouped.writer)
            .await
            .expect("pragma");
        assert_eq!(level, 2);
        for (table, order) in [
            ("submissions", "seq"),
            ("submission_values", "seq, indicator"),
            ("current_reports", "unit_code"),
        ] {
            let (g, a) = (
                rows_as_stored(&grouped, table, order).await,
                rows_as_stored(&alone, table, order).await,
            );
            // Two revisions of two values each; one report.
            let expected = match table {
                "submissions" => 2,
                "submission_values" => 4,
                _ => 1,
            };
            assert_eq!(g.len(), expected, "{table}");
            assert_eq!(g, a, "{table} differs between the two paths");
        }
        // The same report again goes through the group's look-up, which reads the row back.
        let again = grouped.record(full_revision()).await.expect("group write");
        let Recorded::Duplicate(again) = again else {
            panic!("a resend is a duplicate: {again:?}");
        };
        assert_eq!(again.status, crate::domain::ReceiptStatus::Duplicate);
        assert_eq!(
            crate::domain::Receipt {
                status: first.status,
                ..again
            },
            first
        );
        grouped.close().await;
        alone.close().await;
    }
}
