//! The SQLite store over real files: its schema, the flush before each answer, the WAL copied
//! beside the writer, the writer on its own thread, and a group stored exactly as the single
//! report path stores it.

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
            let committed = commit_group_sqlite(db, &revisions.iter().collect::<Vec<_>>(), true);
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
