//! Reading the outbox back: row decoding, and the on-disk JSON shapes of the `report` and
//! `violations` columns (kept apart from the domain types so the file format changes only
//! when this module says so).

use super::{Entry, EntryState, Outbox, OutboxError, Rejection, SentInfo, from_ms, ms};
use crate::domain::{DraftValue, Narrative, ReportDraft, Violation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The report as stored in the `report` column.
#[derive(Debug, Serialize, Deserialize)]
struct StoredDraft {
    unit_code: String,
    data_set: String,
    period: String,
    values: Vec<StoredValue>,
    narrative: Narrative,
    prepared_by: String,
    client_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredValue {
    indicator: String,
    value: f64,
    #[serde(default)]
    comment: String,
}

/// A violation as stored in the `violations` column.
#[derive(Debug, Serialize, Deserialize)]
struct StoredViolation {
    field: String,
    #[serde(default)]
    value: String,
    rule: String,
    description: String,
}

pub(super) fn violations_json(violations: &[Violation]) -> String {
    let stored: Vec<StoredViolation> = violations
        .iter()
        .map(|v| StoredViolation {
            field: v.field.clone(),
            value: v.value.clone(),
            rule: v.rule.clone(),
            description: v.description.clone(),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_default()
}

pub(super) const COLUMNS: &str = "id, submission_id, unit, data_set, period, content_hash, report, source, \
     state, created_ms, attempts, next_attempt_ms, last_error, revision, receipt_status, \
     received_ms, on_time, warnings, reject_code, reject_message, violations";

pub(super) fn stored_json(draft: &ReportDraft) -> String {
    let stored = StoredDraft {
        unit_code: draft.unit_code.clone(),
        data_set: draft.data_set.clone(),
        period: draft.period.clone(),
        values: draft
            .values
            .iter()
            .map(|v| StoredValue {
                indicator: v.indicator.clone(),
                value: v.value,
                comment: v.comment.clone(),
            })
            .collect(),
        narrative: draft.narrative.clone(),
        prepared_by: draft.prepared_by.clone(),
        client_time: draft.client_time,
    };
    // Strings and finite numbers (sources refuse the others) always serialise.
    serde_json::to_string(&stored).unwrap_or_default()
}

impl Outbox {
    pub async fn get(&self, id: i64) -> Result<Option<Entry>, OutboxError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM entries WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.sql())?;
        row.map(|r| self.entry(&r)).transpose()
    }

    /// An entry by its number or its submission id.
    pub async fn find(&self, key: &str) -> Result<Option<Entry>, OutboxError> {
        if let Ok(id) = key.trim_start_matches('#').parse::<i64>()
            && let Some(entry) = self.get(id).await?
        {
            return Ok(Some(entry));
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM entries WHERE submission_id = ?"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.sql())?;
        row.map(|r| self.entry(&r)).transpose()
    }

    /// The newest entry of every period of a data set (what the source is compared with).
    pub async fn latest_by_period(&self, data_set: &str) -> Result<Vec<Entry>, OutboxError> {
        self.select(
            "WHERE id IN (SELECT MAX(id) FROM entries WHERE data_set = ? GROUP BY period) \
             ORDER BY id",
            &[data_set],
        )
        .await
    }

    /// Every entry of one period, oldest first.
    pub async fn history(&self, data_set: &str, period: &str) -> Result<Vec<Entry>, OutboxError> {
        self.select(
            "WHERE data_set = ? AND period = ? ORDER BY id",
            &[data_set, period],
        )
        .await
    }

    pub async fn in_state(&self, state: EntryState) -> Result<Vec<Entry>, OutboxError> {
        self.select("WHERE state = ? ORDER BY id", &[state.as_str()])
            .await
    }

    /// Queued entries whose next attempt is due: entries that never failed first, then the
    /// ones waiting longest, so one troublesome report does not starve the others.
    pub async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM entries WHERE state = 'queued' AND next_attempt_ms <= ? \
             ORDER BY next_attempt_ms, id LIMIT ?"
        ))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.sql())?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    /// When the earliest queued entry is due, if any is queued.
    pub async fn next_attempt(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM entries WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await
                .map_err(self.sql())?;
        Ok(next.map(from_ms))
    }

    /// (queued, sent, rejected, superseded).
    pub async fn counts(&self) -> Result<[i64; 4], OutboxError> {
        let mut out = [0; 4];
        let rows = sqlx::query("SELECT state, COUNT(*) FROM entries GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(self.sql())?;
        for row in rows {
            let state: String = row.try_get(0).map_err(self.sql())?;
            let n: i64 = row.try_get(1).map_err(self.sql())?;
            let slot = match EntryState::parse(&state) {
                Some(EntryState::Queued) => 0,
                Some(EntryState::Sent) => 1,
                Some(EntryState::Rejected) => 2,
                Some(EntryState::Superseded) | None => 3,
            };
            out[slot] += n;
        }
        Ok(out)
    }

    async fn select(&self, clause: &str, binds: &[&str]) -> Result<Vec<Entry>, OutboxError> {
        let sql = format!("SELECT {COLUMNS} FROM entries {clause}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(self.sql())?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    fn entry(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Entry, OutboxError> {
        let id: i64 = row.try_get("id").map_err(self.sql())?;
        let corrupt = |column: &'static str, value: &str| OutboxError::Corrupt {
            path: self.path.display().to_string(),
            id,
            column,
            value: value.chars().take(200).collect(),
        };
        let get_s = |c: &'static str| row.try_get::<String, _>(c).map_err(self.sql());
        let get_os = |c: &'static str| row.try_get::<Option<String>, _>(c).map_err(self.sql());
        let get_oi = |c: &'static str| row.try_get::<Option<i64>, _>(c).map_err(self.sql());

        let report = get_s("report")?;
        let stored: StoredDraft =
            serde_json::from_str(&report).map_err(|_| corrupt("report", &report))?;
        let submission_id = get_s("submission_id")?;
        let state_raw = get_s("state")?;
        let state = EntryState::parse(&state_raw).ok_or_else(|| corrupt("state", &state_raw))?;
        let sent = match get_oi("revision")? {
            Some(revision) => {
                let warnings = get_os("warnings")?.unwrap_or_else(|| "[]".into());
                Some(SentInfo {
                    revision: u32::try_from(revision)
                        .map_err(|_| corrupt("revision", &revision.to_string()))?,
                    status: get_os("receipt_status")?.unwrap_or_default(),
                    received_at: from_ms(get_oi("received_ms")?.unwrap_or_default()),
                    on_time: get_oi("on_time")?.unwrap_or_default() != 0,
                    warnings: serde_json::from_str(&warnings)
                        .map_err(|_| corrupt("warnings", &warnings))?,
                })
            }
            None => None,
        };
        let rejection = match get_os("reject_code")? {
            Some(code) => {
                let raw = get_os("violations")?.unwrap_or_else(|| "[]".into());
                let stored: Vec<StoredViolation> =
                    serde_json::from_str(&raw).map_err(|_| corrupt("violations", &raw))?;
                Some(Rejection {
                    code,
                    message: get_os("reject_message")?.unwrap_or_default(),
                    violations: stored
                        .into_iter()
                        .map(|v| Violation {
                            field: v.field,
                            value: v.value,
                            rule: v.rule,
                            description: v.description,
                        })
                        .collect(),
                })
            }
            None => None,
        };
        let attempts: i64 = row.try_get("attempts").map_err(self.sql())?;
        Ok(Entry {
            id,
            draft: ReportDraft {
                submission_id: submission_id.clone(),
                unit_code: stored.unit_code,
                data_set: stored.data_set,
                period: stored.period,
                values: stored
                    .values
                    .into_iter()
                    .map(|v| DraftValue {
                        indicator: v.indicator,
                        value: v.value,
                        comment: v.comment,
                    })
                    .collect(),
                narrative: stored.narrative,
                prepared_by: stored.prepared_by,
                client_time: stored.client_time,
            },
            submission_id,
            data_set: get_s("data_set")?,
            period: get_s("period")?,
            content_hash: get_s("content_hash")?,
            source: get_s("source")?,
            state,
            created_at: from_ms(row.try_get("created_ms").map_err(self.sql())?),
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_ms(row.try_get("next_attempt_ms").map_err(self.sql())?),
            last_error: get_os("last_error")?,
            sent,
            rejection,
        })
    }
}
