//! SQLite's group write, run on the writer's own thread straight on the connection's handle.
//! Through sqlx each statement is a round trip to the connection's thread, and a statement
//! with one row per report of the group has a new text (and a new parse) for every group size;
//! the writer is ingest's one serial step, and those round trips and parses were most of its
//! time. Here the whole group is six one-row statements, prepared once per group and stepped
//! once per row in this thread, with no round trip between them.
//!
//! It numbers revisions and seqs itself, which is safe because the group holds SQLite's single
//! write transaction (another process writing the same file makes a statement fail, and the
//! caller then falls back to one transaction per report). The change counter grows by one per
//! revision, in queue order. The columns are written exactly as sqlx writes them for the single
//! report path (`store::sqlite::tests` compares the two).

use super::{GroupPlan, Planned, ReportKey, last_per_report, plan};
use crate::store::queries::{self as q, RevisionRow};
use crate::store::{NewRevision, Recorded, StoreError};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;

/// How one group's commit ended on the connection.
pub(in crate::store) struct GroupCommit {
    /// Each report's outcome in queue order, or the error that rolled the whole group back.
    pub recorded: Result<Vec<Recorded>, StoreError>,
    /// False when the connection could not be set back to `synchronous = FULL`, or is still
    /// inside a transaction (a failed COMMIT whose rollback failed too): it must then be closed
    /// rather than reused by a review or a single report, which count on SQLite's own flush and
    /// on sqlx's idea of whether a transaction is open.
    pub reusable: bool,
}

/// Writes and commits `group` in one transaction on `db`, the writer's connection, which the
/// caller has locked for the duration. With `flush_left_to_caller` the commit skips SQLite's own
/// flush of the WAL (`synchronous = NORMAL`) and the caller flushes it before answering; the
/// connection is back at `FULL`, outside any transaction, before this returns.
pub(in crate::store) fn commit_group(
    db: &Connection,
    group: &[&NewRevision],
    flush_left_to_caller: bool,
) -> GroupCommit {
    if flush_left_to_caller && let Err(e) = db.execute_batch("PRAGMA synchronous = NORMAL") {
        return GroupCommit {
            recorded: Err(sqlite_error(e)),
            reusable: true,
        };
    }
    let recorded = write_and_commit(db, group);
    if !db.is_autocommit() {
        // The transaction's own rollback on drop failed: one more try.
        let _ = db.execute_batch("ROLLBACK");
    }
    let back_to_full =
        !flush_left_to_caller || db.execute_batch("PRAGMA synchronous = FULL").is_ok();
    GroupCommit {
        recorded,
        reusable: back_to_full && db.is_autocommit(),
    }
}

fn write_and_commit(db: &Connection, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError> {
    // IMMEDIATE takes the write lock first, so a busy file fails here rather than midway.
    // Dropped without a commit on any error: rolled back, nothing half-written is answered.
    let tx = rusqlite::Transaction::new_unchecked(db, TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let known = known_submissions(&tx, group)?;
    let latest = current_revisions(&tx, group)?;
    let first_seq = next_seq(&tx)?;
    let GroupPlan { planned, outcomes } = plan(group, &known, latest, first_seq)?;
    insert_submissions(&tx, &planned)?;
    insert_values(&tx, &planned)?;
    point_current_at(&tx, &planned)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(outcomes)
}

/// The store's one rule for what is worth retrying, applied to the extended result code, which
/// is the code sqlx reports: both SQLite paths classify an error alike.
fn sqlite_error(e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error().map(|s| s.extended_code.to_string());
    if crate::store::is_transient(code.as_deref()) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

/// Runs `write` on the writer's connection through its raw handle, locked for the duration so
/// that sqlx's own thread for it waits. `write` gets the connection only by reference and
/// returns nothing that borrows it, so it cannot outlive the lock.
pub(in crate::store) async fn on_handle<R>(
    conn: &mut sqlx::SqliteConnection,
    write: impl FnOnce(&Connection) -> R,
) -> Result<R, StoreError> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle stays locked while `db` lives, so nothing else uses the connection
    // meanwhile; a `Connection` made `from_handle` leaves the connection open when dropped and
    // finalizes the statements it prepared; `db` is dropped before `handle`.
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(|e| StoreError::Internal(format!("the writer's SQLite handle: {e}")))?;
    let written = write(&db);
    drop(db);
    drop(handle);
    Ok(written)
}

/// A timestamp as sqlx writes a `DateTime<Utc>` to SQLite, so both paths store the same text.
fn timestamp(t: DateTime<Utc>) -> String {
    q::to_micros(t).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A date as sqlx writes a `NaiveDate` to SQLite.
fn day(d: NaiveDate) -> String {
    d.format("%F").to_string()
}

/// Rows already stored under the group's submission ids.
fn known_submissions(
    db: &Connection,
    group: &[&NewRevision],
) -> Result<HashMap<String, RevisionRow>, StoreError> {
    let mut find = db
        .prepare_cached(&format!(
            "SELECT {} FROM submissions s WHERE s.submission_id = ?1",
            q::REVISION_COLUMNS
        ))
        .map_err(sqlite_error)?;
    let mut known = HashMap::new();
    for new in group {
        let id = new.report.submission_id.as_str();
        if let Some(row) = find
            .query_row([id], revision_row)
            .optional()
            .map_err(|e| match e {
                // A stored row this build cannot read back.
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => {
                    StoreError::Corrupt(format!("submission {id:?}: {e}"))
                }
                e => sqlite_error(e),
            })?
        {
            known.insert(row.submission_id.clone(), row);
        }
    }
    Ok(known)
}

/// A `submissions` row, its columns in `q::REVISION_COLUMNS` order.
fn revision_row(row: &Row<'_>) -> rusqlite::Result<RevisionRow> {
    let client_time: Option<String> = row.get(8)?;
    Ok(RevisionRow {
        seq: row.get(0)?,
        submission_id: row.get(1)?,
        unit_code: row.get(2)?,
        data_set: row.get(3)?,
        period: row.get(4)?,
        revision: row.get(5)?,
        content_hash: row.get(6)?,
        prepared_by: row.get(7)?,
        client_time: client_time.map(|t| parse_timestamp(8, &t)).transpose()?,
        received_at: parse_timestamp(9, &row.get::<_, String>(9)?)?,
        deadline: parse_timestamp(10, &row.get::<_, String>(10)?)?,
        on_time: row.get(11)?,
        window_start: parse_day(12, &row.get::<_, String>(12)?)?,
        window_end: parse_day(13, &row.get::<_, String>(13)?)?,
        results: row.get(14)?,
        shortcomings: row.get(15)?,
        proposals: row.get(16)?,
        warnings: row.get(17)?,
    })
}

fn unreadable(
    column: usize,
    text: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("{text:?}: {e}").into(),
    )
}

/// What sqlx writes (RFC 3339), or the space-separated UTC form SQLite's own date functions
/// write, for a row edited by hand.
fn parse_timestamp(column: usize, text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|e| {
            chrono::NaiveDateTime::parse_from_str(text, "%F %T%.f")
                .map(|t| t.and_utc())
                .map_err(|_| unreadable(column, text, e))
        })
}

fn parse_day(column: usize, text: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%F").map_err(|e| unreadable(column, text, e))
}

/// The latest revision number of every report the group touches.
fn current_revisions(
    db: &Connection,
    group: &[&NewRevision],
) -> Result<HashMap<ReportKey, u32>, StoreError> {
    let mut find = db
        .prepare_cached(
            "SELECT revision FROM current_reports \
             WHERE unit_code = ?1 AND data_set = ?2 AND period = ?3",
        )
        .map_err(sqlite_error)?;
    let mut latest = HashMap::new();
    for new in group {
        let (unit, data_set) = (new.report.unit.as_str(), new.report.data_set.as_str());
        let period = new.report.period.to_string();
        let Some(revision) = find
            .query_row(params![unit, data_set, &period], |row| row.get::<_, i64>(0))
            .optional()
            .map_err(sqlite_error)?
        else {
            continue;
        };
        let revision = u32::try_from(revision).map_err(|e| {
            StoreError::Corrupt(format!(
                "current_reports {unit}/{data_set}/{period}: revision {revision}: {e}"
            ))
        })?;
        latest.insert((unit.to_owned(), data_set.to_owned(), period), revision);
    }
    Ok(latest)
}

/// The seq the next revision gets: past every seq ever handed out (AUTOINCREMENT's own record
/// included, so a seq is never reused even if rows were ever removed by hand).
fn next_seq(db: &Connection) -> Result<i64, StoreError> {
    let last: i64 = db
        .query_row(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM submissions), 0), \
             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'submissions'), 0))",
            [],
            |row| row.get(0),
        )
        .map_err(sqlite_error)?;
    Ok(last + 1)
}

fn insert_submissions(db: &Connection, planned: &[Planned<'_>]) -> Result<(), StoreError> {
    let mut insert = db
        .prepare_cached(concat!(
            "INSERT INTO submissions (seq, ",
            q::submission_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18)"
        ))
        .map_err(sqlite_error)?;
    for p in planned {
        let report = &p.new.report;
        insert
            .execute(params![
                p.seq,
                report.submission_id.as_str(),
                report.unit.as_str(),
                report.data_set.as_str(),
                p.period.as_str(),
                i64::from(p.revision),
                p.new.content_hash.as_str(),
                report.prepared_by.as_str(),
                report.client_time.map(timestamp),
                timestamp(p.new.received_at),
                timestamp(p.new.deadline),
                p.new.on_time,
                day(p.new.window.start),
                day(p.new.window.end),
                report.narrative.results.as_str(),
                report.narrative.shortcomings.as_str(),
                report.narrative.proposals.as_str(),
                p.warnings.as_str(),
            ])
            .map_err(sqlite_error)?;
    }
    Ok(())
}

fn insert_values(db: &Connection, planned: &[Planned<'_>]) -> Result<(), StoreError> {
    let mut insert = db
        .prepare_cached(
            "INSERT INTO submission_values (seq, indicator, value, comment) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sqlite_error)?;
    for p in planned {
        for v in &p.new.report.values {
            insert
                .execute(params![
                    p.seq,
                    v.indicator.as_str(),
                    v.value,
                    v.comment.as_deref()
                ])
                .map_err(sqlite_error)?;
        }
    }
    Ok(())
}

/// One `current_reports` row per report touched, pointing at its last revision in the group.
fn point_current_at(db: &Connection, planned: &[Planned<'_>]) -> Result<(), StoreError> {
    let mut upsert = db
        .prepare_cached(
            "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (unit_code, data_set, period) \
             DO UPDATE SET revision = excluded.revision, seq = excluded.seq",
        )
        .map_err(sqlite_error)?;
    for p in last_per_report(planned) {
        upsert
            .execute(params![
                p.new.report.unit.as_str(),
                p.new.report.data_set.as_str(),
                p.period.as_str(),
                i64::from(p.revision),
                p.seq
            ])
            .map_err(sqlite_error)?;
    }
    Ok(())
}
