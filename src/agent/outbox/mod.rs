//! The agent's durable outbox: every report the district will send is written here, committed,
//! before the first attempt, so nothing a district produced is lost to a crash, a reboot or a
//! dropped link, and nothing is delivered twice as two revisions.
//!
//! # Format
//!
//! One SQLite file (default `./data/agent-outbox.db`), WAL journal, `synchronous = FULL`
//! (a commit is on disk when the call returns, also across power loss). `PRAGMA user_version`
//! holds the format version, currently 1. Table `meta` records the unit the outbox belongs to,
//! so an outbox is never reused for another unit by mistake. Table `entries` has one row per
//! report content the agent decided to send:
//!
//! | column                         | meaning                                                  |
//! |--------------------------------|----------------------------------------------------------|
//! | `id`                           | entry number, shown by `agent status`, used by `resend`  |
//! | `submission_id`                | idempotency key, fixed when the row is inserted          |
//! | `unit`, `data_set`, `period`   | what the report is about                                 |
//! | `content_hash`                 | SHA-256 of the content as the source gave it             |
//! | `report`                       | the report exactly as it is sent (JSON)                  |
//! | `source`                       | where the numbers came from (file path, SQL source)      |
//! | `state`                        | `queued`, `sent`, `rejected` or `superseded`             |
//! | `attempts`, `next_attempt_ms`  | retry bookkeeping; `last_error` says why the last failed |
//! | `revision` … `warnings`        | the aggregator's receipt, once `sent`                    |
//! | `reject_code` … `violations`   | the aggregator's refusal (violations as JSON), if any    |
//!
//! Times are Unix milliseconds (UTC), so they sort as numbers;
//! `datetime(created_ms / 1000, 'unixepoch')` shows them in the `sqlite3` shell.
//!
//! # Guarantees
//!
//! - **Committed before sent.** An entry is inserted in its own transaction; the sender only
//!   reads committed `queued` rows.
//! - **At-least-once sending + server idempotency = exactly-once effect.** The submission id is
//!   chosen once, at insert, and every attempt sends the same bytes under it. The aggregator
//!   answers a repeated id with the original receipt (status `duplicate`, same revision), so a
//!   retry after a lost acknowledgement is never a second revision.
//! - **Corrections are new entries.** New content for a period is a new row with a new id,
//!   hence exactly one new revision at the aggregator. A still-queued older row for the same
//!   period is marked `superseded` in the same transaction, so stale figures are never sent
//!   after fresh ones.
//! - **Entries are independent.** A rejected entry keeps its reasons and is never retried on
//!   its own; it does not hold back any other entry.
//!
//! There is deliberately no `sending` state: an entry stays `queued` until its receipt is
//! committed here. What a crash does at each step:
//!
//! | crash …                                    | after restart                                 |
//! |--------------------------------------------|-----------------------------------------------|
//! | before the insert commits                  | no row; the next collection pass reads the    |
//! |                                            | source again and inserts it                   |
//! | after the insert, before or during a send  | `queued`: sent again under the same id        |
//! | after the aggregator committed, before the | `queued`: sent again; the aggregator answers  |
//! | receipt was committed here                 | `duplicate` with the original revision        |
//! | after the receipt was committed            | `sent`: nothing more happens                  |

use crate::domain::{Receipt, ReportDraft, Violation};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod read;
use read::{stored_json, violations_json};

/// The outbox format this build reads and writes (`PRAGMA user_version`).
pub const FORMAT_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Sql { path: String, source: sqlx::Error },
    #[error("cannot create the folder of outbox {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "outbox {path} has format {found}; this tonghop reads format {FORMAT_VERSION} (a newer \
         tonghop wrote it)"
    )]
    NewerFormat { path: String, found: i64 },
    #[error(
        "outbox {path} belongs to unit {found}, but the settings say unit {expected}; use another \
         outbox file for another unit"
    )]
    OtherUnit {
        path: String,
        found: String,
        expected: String,
    },
    #[error("outbox {path}, entry {id}: column {column} holds {value:?}, which is not readable")]
    Corrupt {
        path: String,
        id: i64,
        column: &'static str,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryState {
    /// Waiting for its first or next attempt.
    Queued,
    /// The aggregator acknowledged it; the receipt is stored.
    Sent,
    /// The aggregator refused it for a reason that sending again will not fix.
    Rejected,
    /// Replaced by newer content for the same period before it was acknowledged.
    Superseded,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Queued => "queued",
            EntryState::Sent => "sent",
            EntryState::Rejected => "rejected",
            EntryState::Superseded => "superseded",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => EntryState::Queued,
            "sent" => EntryState::Sent,
            "rejected" => EntryState::Rejected,
            "superseded" => EntryState::Superseded,
            _ => return None,
        })
    }
}

/// What the aggregator's receipt said.
#[derive(Debug, Clone, PartialEq)]
pub struct SentInfo {
    pub revision: u32,
    /// `new`, `revision` or `duplicate` (a retry after a lost acknowledgement).
    pub status: String,
    pub received_at: DateTime<Utc>,
    pub on_time: bool,
    pub warnings: Vec<String>,
}

/// Why the aggregator refused an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The gRPC code, e.g. `InvalidArgument`.
    pub code: String,
    pub message: String,
    pub violations: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub submission_id: String,
    pub data_set: String,
    pub period: String,
    pub content_hash: String,
    pub draft: ReportDraft,
    pub source: String,
    pub state: EntryState,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent: Option<SentInfo>,
    pub rejection: Option<Rejection>,
}

/// SHA-256 over what a report says (unit, data set, period, values in indicator order,
/// narrative, author); the submission id and the client's timestamp are left out, so the same
/// figures always hash the same.
pub fn content_hash(draft: &ReportDraft) -> String {
    let mut values: Vec<(&str, f64, &str)> = draft
        .values
        .iter()
        .map(|v| (v.indicator.as_str(), v.value, v.comment.as_str()))
        .collect();
    values.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
    let canonical = serde_json::json!({
        "unit": draft.unit_code,
        "data_set": draft.data_set,
        "period": draft.period,
        "values": values,
        "narrative": draft.narrative,
        "prepared_by": draft.prepared_by,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id   TEXT    NOT NULL UNIQUE,
    unit            TEXT    NOT NULL,
    data_set        TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    report          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    state           TEXT    NOT NULL
                    CHECK (state IN ('queued', 'sent', 'rejected', 'superseded')),
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    revision        INTEGER,
    receipt_status  TEXT,
    received_ms     INTEGER,
    on_time         INTEGER,
    warnings        TEXT,
    reject_code     TEXT,
    reject_message  TEXT,
    violations      TEXT
);
CREATE INDEX IF NOT EXISTS entries_due ON entries (state, next_attempt_ms, id);
CREATE INDEX IF NOT EXISTS entries_period ON entries (data_set, period, id);
"#;

pub struct Outbox {
    pool: SqlitePool,
    path: PathBuf,
}

impl Outbox {
    /// Opens (creating it and its folder if needed) the outbox of `unit`.
    pub async fn open(path: &Path, unit: &str) -> Result<Self, OutboxError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OutboxError::Folder {
                path: path.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // `agent status` and `agent resend` may run while `agent run` writes.
            .busy_timeout(Duration::from_secs(10));
        let outbox = Outbox {
            path: path.to_owned(),
            // One connection: the agent writes from one task, and SQLite has one writer anyway.
            pool: SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|source| OutboxError::Sql {
                    path: path.display().to_string(),
                    source,
                })?,
        };
        outbox.migrate(unit).await?;
        Ok(outbox)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(sqlx::Error) -> OutboxError + '_ {
        move |source| OutboxError::Sql {
            path: self.path.display().to_string(),
            source,
        }
    }

    async fn migrate(&self, unit: &str) -> Result<(), OutboxError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.sql())?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(self.sql())?;
        if version > FORMAT_VERSION {
            return Err(OutboxError::NewerFormat {
                path: self.path.display().to_string(),
                found: version,
            });
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(self.sql())?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {FORMAT_VERSION}"))
            .execute(&mut *tx)
            .await
            .map_err(self.sql())?;
        let found: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'unit'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.sql())?;
        match found {
            Some(found) if found != unit => {
                return Err(OutboxError::OtherUnit {
                    path: self.path.display().to_string(),
                    found,
                    expected: unit.to_owned(),
                });
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO meta (key, value) VALUES ('unit', ?)")
                    .bind(unit)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.sql())?;
            }
        }
        tx.commit().await.map_err(self.sql())
    }

    /// Inserts new content for a period, committed before this returns. A still-queued older
    /// entry of the same period is superseded in the same transaction (it would only deliver
    /// stale figures). The submission id is `UNIT-DATASET-PERIOD-<16 hex of the content hash>`,
    /// with `-2`, `-3`… when the same content comes back after other content: a restarted agent
    /// with a lost outbox then produces the same ids, which the aggregator recognises. `hash`
    /// is `content_hash` of the draft as its source gave it (see `Agent`'s collection).
    pub async fn enqueue(
        &self,
        draft: &ReportDraft,
        hash: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, OutboxError> {
        let report = stored_json(draft);
        // IMMEDIATE takes the write lock first, so another process cannot slip an entry in
        // between the checks below and the insert.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.sql())?;
        sqlx::query(
            "UPDATE entries SET state = 'superseded', updated_ms = ? \
             WHERE data_set = ? AND period = ? AND state = 'queued'",
        )
        .bind(ms(now))
        .bind(&draft.data_set)
        .bind(&draft.period)
        .execute(&mut *tx)
        .await
        .map_err(self.sql())?;
        let same: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM entries WHERE data_set = ? AND period = ? AND content_hash = ?",
        )
        .bind(&draft.data_set)
        .bind(&draft.period)
        .bind(hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(self.sql())?;
        let base = format!(
            "{}-{}-{}-{}",
            draft.unit_code,
            draft.data_set,
            draft.period,
            &hash[..16]
        );
        let submission_id = if same == 0 {
            base
        } else {
            format!("{base}-{}", same + 1)
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO entries (submission_id, unit, data_set, period, content_hash, report, \
             source, state, created_ms, updated_ms, next_attempt_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING id",
        )
        .bind(&submission_id)
        .bind(&draft.unit_code)
        .bind(&draft.data_set)
        .bind(&draft.period)
        .bind(hash)
        .bind(&report)
        .bind(source)
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(self.sql())?;
        tx.commit().await.map_err(self.sql())?;
        self.get(id).await?.ok_or_else(|| OutboxError::Corrupt {
            path: self.path.display().to_string(),
            id,
            column: "id",
            value: "row missing right after insert".into(),
        })
    }

    /// Stores the receipt. Also for a superseded entry: the aggregator did store it, and the
    /// history should say so.
    pub async fn mark_sent(
        &self,
        id: i64,
        receipt: &Receipt,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE entries SET state = 'sent', attempts = attempts + 1, updated_ms = ?, \
             revision = ?, receipt_status = ?, received_ms = ?, on_time = ?, warnings = ?, \
             last_error = NULL WHERE id = ? AND state IN ('queued', 'superseded')",
        )
        .bind(ms(now))
        .bind(i64::from(receipt.revision))
        .bind(receipt.status.as_str())
        .bind(ms(receipt.received_at))
        .bind(receipt.on_time)
        .bind(serde_json::to_string(&receipt.warnings).unwrap_or_default())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.sql())?;
        Ok(())
    }

    pub async fn mark_rejected(
        &self,
        id: i64,
        rejection: &Rejection,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE entries SET state = 'rejected', attempts = attempts + 1, updated_ms = ?, \
             reject_code = ?, reject_message = ?, violations = ?, last_error = ? \
             WHERE id = ? AND state = 'queued'",
        )
        .bind(ms(now))
        .bind(&rejection.code)
        .bind(&rejection.message)
        .bind(violations_json(&rejection.violations))
        .bind(format!("{}: {}", rejection.code, rejection.message))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.sql())?;
        Ok(())
    }

    /// A failed attempt that is worth repeating at `next_attempt_at`.
    pub async fn reschedule(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE entries SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ?, \
             updated_ms = ? WHERE id = ? AND state = 'queued'",
        )
        .bind(ms(next_attempt_at))
        .bind(error)
        .bind(ms(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.sql())?;
        Ok(())
    }

    /// Puts a rejected entry back in the queue, due now. The refusal stays in `last_error`
    /// until the next answer. `new_submission_id` replaces the id when the old one cannot be
    /// used again (the aggregator already holds other content under it).
    pub async fn requeue(
        &self,
        id: i64,
        new_submission_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, OutboxError> {
        let done = sqlx::query(
            "UPDATE entries SET state = 'queued', attempts = 0, next_attempt_ms = ?, \
             updated_ms = ?, submission_id = COALESCE(?, submission_id), reject_code = NULL, \
             reject_message = NULL, violations = NULL WHERE id = ? AND state = 'rejected'",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(new_submission_id)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.sql())?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests;
