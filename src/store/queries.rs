//! The SQL both backends run, written once. The statements use `$n` placeholders, which SQLite
//! and PostgreSQL both accept, and only types both map the same way (BIGINT/INTEGER, TEXT,
//! DOUBLE/REAL, BOOLEAN, timestamps and dates through chrono). `sql_store!` expands to the
//! `Store` implementation for one backend's pool type.

use super::{NewRevision, Recorded, StoreError, StoredRevision};
use crate::domain::{
    DataSetCode, DataValue, DateWindow, IndicatorCode, Narrative, PeriodId, Receipt, ReceiptStatus,
    Report, SubmissionId, UnitCode,
};
use chrono::{DateTime, NaiveDate, Utc};

/// How often `record` starts over after losing a race on the same submission id.
pub(super) const MAX_RECORD_ATTEMPTS: usize = 5;

pub(super) const REVISION_COLUMNS: &str = "s.seq, s.submission_id, s.unit_code, s.data_set, \
    s.period, s.revision, s.content_hash, s.prepared_by, s.client_time, s.received_at, \
    s.deadline, s.on_time, s.window_start, s.window_end, s.results, s.shortcomings, \
    s.proposals, s.warnings";

pub(super) fn find_by_submission_sql() -> String {
    format!("SELECT {REVISION_COLUMNS} FROM submissions s WHERE s.submission_id = $1")
}

pub(super) fn latest_sql() -> String {
    format!(
        "SELECT {REVISION_COLUMNS} FROM submissions s JOIN current_reports c ON c.seq = s.seq \
         WHERE c.unit_code = $1 AND c.data_set = $2 AND c.period = $3"
    )
}

pub(super) fn revisions_sql() -> String {
    format!(
        "SELECT {REVISION_COLUMNS} FROM submissions s \
         WHERE s.unit_code = $1 AND s.data_set = $2 AND s.period = $3 ORDER BY s.revision"
    )
}

pub(super) fn all_revisions_sql() -> String {
    format!("SELECT {REVISION_COLUMNS} FROM submissions s ORDER BY s.seq")
}

/// What one report's statements did inside a transaction, before its commit.
pub(crate) enum Step {
    /// A new revision was written: becomes true only when the transaction commits.
    Stored(Recorded),
    /// The submission id was known already (duplicate or conflict); nothing was written.
    Recognised(Recorded),
    /// A concurrent writer committed the same submission id first; this transaction wrote
    /// part of the revision and must be rolled back.
    Raced,
}

/// Takes the next revision number for a (unit, data set, period) and, in PostgreSQL, the row
/// lock that makes a concurrent revision of the same report wait for this one to commit.
pub(super) const NEXT_REVISION: &str = "INSERT INTO current_reports \
    (unit_code, data_set, period, revision, seq) VALUES ($1, $2, $3, 1, 0) \
    ON CONFLICT (unit_code, data_set, period) \
    DO UPDATE SET revision = current_reports.revision + 1 RETURNING revision";

/// The columns of a new `submissions` row (all but `seq`), in the order both inserts bind them.
macro_rules! submission_columns {
    () => {
        "submission_id, unit_code, data_set, period, revision, content_hash, prepared_by, \
         client_time, received_at, deadline, on_time, window_start, window_end, results, \
         shortcomings, proposals, warnings"
    };
}
pub(super) use submission_columns;

pub(super) const INSERT_SUBMISSION: &str = concat!(
    "INSERT INTO submissions (",
    submission_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     RETURNING seq"
);

pub(super) const INSERT_VALUES_PREFIX: &str =
    "INSERT INTO submission_values (seq, indicator, value, comment) ";

pub(super) const POINT_CURRENT_AT: &str = "UPDATE current_reports SET seq = $1 \
    WHERE unit_code = $2 AND data_set = $3 AND period = $4";

pub(super) const VALUES_OF: &str = "SELECT indicator, value, comment FROM submission_values \
    WHERE seq = $1 ORDER BY indicator";

pub(super) const ALL_VALUES: &str = "SELECT seq, indicator, value, comment \
    FROM submission_values ORDER BY seq, indicator";

pub(super) const ALL_CURRENT: &str = "SELECT unit_code, data_set, period, revision, seq \
    FROM current_reports ORDER BY unit_code, data_set, period";

/// Values of revisions with the first revision's arrival; `{filter}` picks which revisions.
fn revision_values_sql(join: &str, filter: &str) -> String {
    format!(
        "SELECT s.seq, s.unit_code, s.data_set, s.period, s.revision, s.received_at, s.deadline, \
         f.received_at AS first_received_at, f.on_time AS first_on_time, v.indicator, v.value \
         FROM submissions s {join} \
         JOIN submissions f ON f.unit_code = s.unit_code AND f.data_set = s.data_set \
         AND f.period = s.period AND f.revision = 1 \
         LEFT JOIN submission_values v ON v.seq = s.seq \
         {filter} ORDER BY s.seq, v.indicator"
    )
}

pub(super) fn current_values_sql() -> String {
    revision_values_sql("JOIN current_reports c ON c.seq = s.seq", "")
}

pub(super) fn values_since_sql() -> String {
    revision_values_sql("", "WHERE s.seq >= $1")
}

pub(super) const CHANGE_COUNTER: &str = "SELECT COALESCE(MAX(seq), 0) FROM submissions";

/// PostgreSQL keeps timestamps to the microsecond; cutting them there for both backends makes
/// a receipt read back from either store equal to the one first returned.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The receipt of a revision just written as number `revision`.
pub(super) fn stored_receipt(new: &NewRevision, revision: u32) -> Receipt {
    Receipt {
        submission_id: new.report.submission_id.clone(),
        revision,
        status: if revision == 1 {
            ReceiptStatus::New
        } else {
            ReceiptStatus::Revision
        },
        received_at: to_micros(new.received_at),
        deadline: to_micros(new.deadline),
        on_time: new.on_time,
        warnings: new.warnings.clone(),
        window: new.window,
    }
}

/// A `submissions` row, decoded but not yet checked.
#[derive(Clone)]
pub(super) struct RevisionRow {
    pub seq: i64,
    pub submission_id: String,
    pub unit_code: String,
    pub data_set: String,
    pub period: String,
    pub revision: i64,
    pub content_hash: String,
    pub prepared_by: String,
    pub client_time: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub window_start: NaiveDate,
    pub window_end: NaiveDate,
    pub results: String,
    pub shortcomings: String,
    pub proposals: String,
    pub warnings: String,
}

fn corrupt(seq: i64, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("submission seq {seq}: {what}: {e}"))
}

impl RevisionRow {
    pub(super) fn into_revision(
        self,
        values: Vec<(String, f64, Option<String>)>,
    ) -> Result<StoredRevision, StoreError> {
        let seq = self.seq;
        let values = values
            .into_iter()
            .map(|(code, value, comment)| {
                Ok(DataValue {
                    indicator: IndicatorCode::parse(&code)
                        .map_err(|e| corrupt(seq, "indicator", e))?,
                    value,
                    comment,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let report = Report {
            submission_id: SubmissionId::parse(&self.submission_id)
                .map_err(|e| corrupt(seq, "submission_id", e))?,
            unit: UnitCode::parse(&self.unit_code).map_err(|e| corrupt(seq, "unit_code", e))?,
            data_set: DataSetCode::parse(&self.data_set)
                .map_err(|e| corrupt(seq, "data_set", e))?,
            period: PeriodId::parse(&self.period).map_err(|e| corrupt(seq, "period", e))?,
            values,
            narrative: Narrative {
                results: self.results,
                shortcomings: self.shortcomings,
                proposals: self.proposals,
            },
            prepared_by: self.prepared_by,
            client_time: self.client_time,
        };
        Ok(StoredRevision {
            seq,
            revision: u32::try_from(self.revision).map_err(|e| corrupt(seq, "revision", e))?,
            report,
            content_hash: self.content_hash,
            received_at: self.received_at,
            deadline: self.deadline,
            on_time: self.on_time,
            window: DateWindow {
                start: self.window_start,
                end: self.window_end,
            },
            warnings: serde_json::from_str(&self.warnings)
                .map_err(|e| corrupt(seq, "warnings", e))?,
        })
    }

    /// What an earlier submission with this id means for a new one with `content_hash`.
    pub(super) fn recognise(self, content_hash: &str) -> Result<Recorded, StoreError> {
        let seq = self.seq;
        let revision = u32::try_from(self.revision).map_err(|e| corrupt(seq, "revision", e))?;
        if self.content_hash != content_hash {
            return Ok(Recorded::Conflict {
                existing_hash: self.content_hash,
                existing_revision: revision,
            });
        }
        Ok(Recorded::Duplicate(Receipt {
            submission_id: SubmissionId::parse(&self.submission_id)
                .map_err(|e| corrupt(seq, "submission_id", e))?,
            revision,
            status: ReceiptStatus::Duplicate,
            received_at: self.received_at,
            deadline: self.deadline,
            on_time: self.on_time,
            warnings: serde_json::from_str(&self.warnings)
                .map_err(|e| corrupt(seq, "warnings", e))?,
            window: DateWindow {
                start: self.window_start,
                end: self.window_end,
            },
        }))
    }

    pub(super) fn dump_line(&self) -> String {
        format!(
            "submission seq={} id={} unit={} data_set={} period={} revision={} hash={} \
             prepared_by={:?} client_time={:?} received_at={} deadline={} on_time={} \
             window={}..{} results={:?} shortcomings={:?} proposals={:?} warnings={}",
            self.seq,
            self.submission_id,
            self.unit_code,
            self.data_set,
            self.period,
            self.revision,
            self.content_hash,
            self.prepared_by,
            self.client_time.map(|t| t.to_rfc3339()),
            self.received_at.to_rfc3339(),
            self.deadline.to_rfc3339(),
            self.on_time,
            self.window_start,
            self.window_end,
            self.results,
            self.shortcomings,
            self.proposals,
            self.warnings
        )
    }
}

/// Expands to `impl Store for $store`, where `$store` has a writer and a reader pool field of
/// database `$db` (they may be the same pool).
macro_rules! sql_store {
    (
        $store:ty,
        $db:ty,
        writer = $writer:ident,
        reader = $reader:ident,
        name = $name:expr
    ) => {
        pub(super) fn decode_revision_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::queries::RevisionRow, sqlx::Error> {
            use sqlx::Row;
            Ok($crate::store::queries::RevisionRow {
                seq: row.try_get("seq")?,
                submission_id: row.try_get("submission_id")?,
                unit_code: row.try_get("unit_code")?,
                data_set: row.try_get("data_set")?,
                period: row.try_get("period")?,
                revision: row.try_get("revision")?,
                content_hash: row.try_get("content_hash")?,
                prepared_by: row.try_get("prepared_by")?,
                client_time: row.try_get("client_time")?,
                received_at: row.try_get("received_at")?,
                deadline: row.try_get("deadline")?,
                on_time: row.try_get("on_time")?,
                window_start: row.try_get("window_start")?,
                window_end: row.try_get("window_end")?,
                results: row.try_get("results")?,
                shortcomings: row.try_get("shortcomings")?,
                proposals: row.try_get("proposals")?,
                warnings: row.try_get("warnings")?,
            })
        }

        fn decode_value_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::RevisionValueRow, $crate::store::StoreError> {
            use sqlx::Row;
            let seq: i64 = row.try_get("seq")?;
            let revision: i64 = row.try_get("revision")?;
            Ok($crate::store::RevisionValueRow {
                seq,
                unit: row.try_get("unit_code")?,
                data_set: row.try_get("data_set")?,
                period: row.try_get("period")?,
                revision: u32::try_from(revision).map_err(|e| {
                    $crate::store::StoreError::Corrupt(format!("seq {seq}: revision: {e}"))
                })?,
                received_at: row.try_get("received_at")?,
                deadline: row.try_get("deadline")?,
                first_received_at: row.try_get("first_received_at")?,
                first_on_time: row.try_get("first_on_time")?,
                indicator: row.try_get("indicator")?,
                value: row.try_get("value")?,
            })
        }

        /// One report's statements inside a transaction the caller owns and commits: recognise
        /// its submission id, or take the next revision number and write the revision.
        async fn record_steps(
            conn: &mut <$db as sqlx::Database>::Connection,
            new: &$crate::store::NewRevision,
        ) -> Result<$crate::store::queries::Step, $crate::store::StoreError> {
            use $crate::store::queries as q;
            let report = &new.report;
            let unit = report.unit.as_str();
            let data_set = report.data_set.as_str();
            let period = report.period.to_string();
            let received_at = q::to_micros(new.received_at);
            let deadline = q::to_micros(new.deadline);
            let existing = sqlx::query(&q::find_by_submission_sql())
                .bind(report.submission_id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = existing {
                let row = decode_revision_row(&row)?;
                return Ok(q::Step::Recognised(row.recognise(&new.content_hash)?));
            }
            let warnings = serde_json::to_string(&new.warnings)
                .map_err(|e| $crate::store::StoreError::Internal(e.to_string()))?;
            let revision: i64 = sqlx::query_scalar(q::NEXT_REVISION)
                .bind(unit)
                .bind(data_set)
                .bind(&period)
                .fetch_one(&mut *conn)
                .await?;
            let inserted = sqlx::query_scalar::<_, i64>(q::INSERT_SUBMISSION)
                .bind(report.submission_id.as_str())
                .bind(unit)
                .bind(data_set)
                .bind(&period)
                .bind(revision)
                .bind(&new.content_hash)
                .bind(&report.prepared_by)
                .bind(report.client_time.map(q::to_micros))
                .bind(received_at)
                .bind(deadline)
                .bind(new.on_time)
                .bind(new.window.start)
                .bind(new.window.end)
                .bind(&report.narrative.results)
                .bind(&report.narrative.shortcomings)
                .bind(&report.narrative.proposals)
                .bind(&warnings)
                .fetch_one(&mut *conn)
                .await;
            let seq = match inserted {
                Ok(seq) => seq,
                // The same submission id committed meanwhile by a racing writer.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Ok(q::Step::Raced);
                }
                Err(e) => return Err(e.into()),
            };
            if !report.values.is_empty() {
                let mut insert = sqlx::QueryBuilder::<$db>::new(q::INSERT_VALUES_PREFIX);
                insert.push_values(&report.values, |mut row, v| {
                    row.push_bind(seq)
                        .push_bind(v.indicator.as_str())
                        .push_bind(v.value)
                        .push_bind(v.comment.as_deref());
                });
                insert.build().execute(&mut *conn).await?;
            }
            sqlx::query(q::POINT_CURRENT_AT)
                .bind(seq)
                .bind(unit)
                .bind(data_set)
                .bind(&period)
                .execute(&mut *conn)
                .await?;
            let revision = u32::try_from(revision).map_err(|e| {
                $crate::store::StoreError::Corrupt(format!("revision {revision}: {e}"))
            })?;
            Ok(q::Step::Stored($crate::store::Recorded::Stored(
                q::stored_receipt(new, revision),
            )))
        }

        /// One report in a transaction of its own, committed before it returns. A lost race on
        /// the submission id starts over, and the first step then recognises the winner.
        pub(super) async fn record_alone(
            pool: &sqlx::Pool<$db>,
            new: &$crate::store::NewRevision,
        ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
            use $crate::store::queries as q;
            for _ in 0..q::MAX_RECORD_ATTEMPTS {
                let mut tx = pool.begin().await?;
                match record_steps(&mut *tx, new).await? {
                    q::Step::Stored(recorded) => {
                        tx.commit().await?;
                        return Ok(recorded);
                    }
                    q::Step::Recognised(recorded) => {
                        tx.rollback().await?;
                        return Ok(recorded);
                    }
                    q::Step::Raced => tx.rollback().await?,
                }
            }
            Err($crate::store::StoreError::Unavailable(format!(
                "submission {} kept racing a concurrent write; try again",
                new.report.submission_id
            )))
        }

        impl $store {
            async fn visit_rows(
                &self,
                sql: &str,
                from_seq: Option<i64>,
                visitor: &mut $crate::store::RowVisitor<'_>,
            ) -> Result<(), $crate::store::StoreError> {
                use futures::TryStreamExt;
                let mut query = sqlx::query(sql);
                if let Some(from) = from_seq {
                    query = query.bind(from);
                }
                let mut rows = query.fetch(&self.$reader);
                while let Some(row) = rows.try_next().await? {
                    visitor(decode_value_row(&row)?);
                }
                Ok(())
            }

            async fn values_of(
                &self,
                seq: i64,
            ) -> Result<Vec<(String, f64, Option<String>)>, sqlx::Error> {
                sqlx::query_as($crate::store::queries::VALUES_OF)
                    .bind(seq)
                    .fetch_all(&self.$reader)
                    .await
            }

            async fn read_revisions(
                &self,
                sql: &str,
                unit: &str,
                data_set: &str,
                period: &str,
            ) -> Result<Vec<$crate::store::StoredRevision>, $crate::store::StoreError> {
                let rows = sqlx::query(sql)
                    .bind(unit)
                    .bind(data_set)
                    .bind(period)
                    .fetch_all(&self.$reader)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let row = decode_revision_row(row)?;
                    let values = self.values_of(row.seq).await?;
                    out.push(row.into_revision(values)?);
                }
                Ok(out)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn record(
                &self,
                new: $crate::store::NewRevision,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                self.record_revision(new).await
            }

            async fn latest(
                &self,
                unit: &str,
                data_set: &str,
                period: &str,
            ) -> Result<Option<$crate::store::StoredRevision>, $crate::store::StoreError> {
                let sql = $crate::store::queries::latest_sql();
                Ok(self
                    .read_revisions(&sql, unit, data_set, period)
                    .await?
                    .into_iter()
                    .next())
            }

            async fn revisions(
                &self,
                unit: &str,
                data_set: &str,
                period: &str,
            ) -> Result<Vec<$crate::store::StoredRevision>, $crate::store::StoreError> {
                let sql = $crate::store::queries::revisions_sql();
                self.read_revisions(&sql, unit, data_set, period).await
            }

            async fn visit_current(
                &self,
                visitor: &mut $crate::store::RowVisitor<'_>,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = $crate::store::queries::current_values_sql();
                self.visit_rows(&sql, None, visitor).await
            }

            async fn visit_since(
                &self,
                from_seq: i64,
                visitor: &mut $crate::store::RowVisitor<'_>,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = $crate::store::queries::values_since_sql();
                self.visit_rows(&sql, Some(from_seq), visitor).await
            }

            async fn change_counter(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar($crate::store::queries::CHANGE_COUNTER)
                    .fetch_one(&self.$reader)
                    .await?)
            }

            async fn dump(&self) -> Result<String, $crate::store::StoreError> {
                use std::fmt::Write;
                use $crate::store::queries as q;
                let mut out = String::new();
                for row in sqlx::query(&q::all_revisions_sql())
                    .fetch_all(&self.$reader)
                    .await?
                {
                    let _ = writeln!(out, "{}", decode_revision_row(&row)?.dump_line());
                }
                let values: Vec<(i64, String, f64, Option<String>)> = sqlx::query_as(q::ALL_VALUES)
                    .fetch_all(&self.$reader)
                    .await?;
                for (seq, indicator, value, comment) in values {
                    let _ = writeln!(
                        out,
                        "value seq={seq} {indicator}={value} comment={comment:?}"
                    );
                }
                let current: Vec<(String, String, String, i64, i64)> =
                    sqlx::query_as(q::ALL_CURRENT)
                        .fetch_all(&self.$reader)
                        .await?;
                for (unit, data_set, period, revision, seq) in current {
                    let _ = writeln!(
                        out,
                        "current {unit}/{data_set}/{period} revision={revision} seq={seq}"
                    );
                }
                Ok(out)
            }

            fn backend(&self) -> &'static str {
                $name
            }

            async fn close(&self) {
                self.finish_writes().await;
                self.$writer.close().await;
                self.$reader.close().await;
            }
        }
    };
}

pub(super) use sql_store;
