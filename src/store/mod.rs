//! Durable storage of report revisions. One `Store` trait, two backends: SQLite (embedded
//! default, one file, no service to run) and PostgreSQL (production, several aggregator
//! processes). All SQL of tonghop lives under this module.

pub mod bench;
mod checkpoint;
mod group_commit;
mod group_write;
mod postgres;
mod queries;
pub mod reviews;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::domain::{Checked, DateWindow, Receipt, Report};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// A checked report about to be stored, with what its receipt will say. Owned, so a store may
/// keep it queued after the call that made it (SQLite's group commit does).
#[derive(Debug, Clone)]
pub struct NewRevision {
    pub report: Report,
    pub content_hash: String,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub window: DateWindow,
    pub warnings: Vec<String>,
}

impl NewRevision {
    /// A report that passed validation, received at `received_at`: whether it is on time, and
    /// its content hash, follow from the two.
    pub fn received(checked: Checked, received_at: DateTime<Utc>) -> Self {
        NewRevision {
            content_hash: checked.report.content_hash(),
            received_at,
            deadline: checked.deadline,
            on_time: received_at <= checked.deadline,
            window: checked.window,
            warnings: checked.warnings,
            report: checked.report,
        }
    }
}

/// What `Store::record` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Committed as a new revision.
    Stored(Receipt),
    /// The submission id was stored before with the same content: its original receipt, with
    /// status `Duplicate`. Nothing was written.
    Duplicate(Receipt),
    /// The submission id was stored before with other content. Nothing was written.
    Conflict {
        existing_hash: String,
        existing_revision: u32,
    },
}

/// One value of a stored revision, with what analytics need about its report: the revision's
/// identity, and the first revision's arrival (timeliness is judged on the first report in, not
/// on a later correction). A revision without values comes as one row with `value: None`.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionValueRow {
    pub seq: i64,
    pub unit: String,
    pub data_set: String,
    pub period: String,
    pub revision: u32,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub first_received_at: DateTime<Utc>,
    pub first_on_time: bool,
    pub indicator: Option<String>,
    pub value: Option<f64>,
}

/// Receives rows one at a time, so a store of millions of values is never held twice.
pub type RowVisitor<'a> = dyn FnMut(RevisionValueRow) + Send + 'a;

/// A stored revision read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRevision {
    /// The change counter value at which this revision was stored.
    pub seq: i64,
    pub revision: u32,
    pub report: Report,
    pub content_hash: String,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub window: DateWindow,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Worth retrying: the database is busy, restarting or out of reach.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row cannot be read back into domain types (edited by hand, or a bug).
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) if is_transient(db.code().as_deref()) => {
                StoreError::Unavailable(e.to_string())
            }
            E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Internal(format!("migration failed: {e}"))
    }
}

/// Error codes after which the same statement may well succeed: SQLite busy/locked,
/// PostgreSQL serialization failure, deadlock, too many connections, shutting down.
pub(super) fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("5" | "6" | "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
    )
}

#[async_trait::async_trait]
pub trait Store: reviews::ReviewStore + Send + Sync + 'static {
    /// Stores a revision in one transaction, or recognises its submission id. Returns only
    /// after commit, so a receipt always describes durable data.
    async fn record(&self, revision: NewRevision) -> Result<Recorded, StoreError>;

    /// The latest revision of a unit's report for a data set and period.
    async fn latest(
        &self,
        unit: &str,
        data_set: &str,
        period: &str,
    ) -> Result<Option<StoredRevision>, StoreError>;

    /// Every revision of a unit's report for a data set and period, oldest first.
    async fn revisions(
        &self,
        unit: &str,
        data_set: &str,
        period: &str,
    ) -> Result<Vec<StoredRevision>, StoreError>;

    /// Visits the values of the latest revision of every report, ordered by seq.
    async fn visit_current(&self, visitor: &mut RowVisitor<'_>) -> Result<(), StoreError>;

    /// Visits the values of every revision with `seq >= from_seq` (latest or not), ordered by
    /// seq: the incremental feed of the analytics read model.
    async fn visit_since(
        &self,
        from_seq: i64,
        visitor: &mut RowVisitor<'_>,
    ) -> Result<(), StoreError>;

    /// The change counter: the seq of the newest stored revision (0 when empty).
    async fn change_counter(&self) -> Result<i64, StoreError>;

    /// Every row of every table in a fixed order, as text: lets tests (and an operator) prove
    /// that a rejected report changed nothing.
    async fn dump(&self) -> Result<String, StoreError>;

    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;

    /// Closes the pools; pending writes finish first.
    async fn close(&self);
}

/// Tuning that applies to either backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL pool size; SQLite uses one writer and this many readers.
    pub max_connections: u32,
    /// How long a call waits for a connection before the store reports itself unavailable.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens the store a URL names and brings its schema up to date.
/// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url, options).await?))
    } else {
        Err(StoreError::Internal(format!(
            "database URL {url:?} is neither sqlite://FILE nor postgres://..."
        )))
    }
}

/// Hides the password of a database URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/tonghop"),
            "postgres://app:***@db:5432/tonghop"
        );
        assert_eq!(
            super::redact_url("postgres://app@db/t"),
            "postgres://app@db/t"
        );
        assert_eq!(
            super::redact_url("sqlite://data/t.db"),
            "sqlite://data/t.db"
        );
    }
}
