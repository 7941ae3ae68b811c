//! Storage of generated yearly reviews (immutable versions) and of scheduled review runs (one
//! row per run, so several aggregator processes on one database run it once).

use super::StoreError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// A review about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReview {
    pub year: i32,
    pub node: String,
    pub lang: String,
    /// "schedule" or "on_demand".
    pub trigger: String,
    pub generated_at: DateTime<Utc>,
    /// The store change counter the review's data was read at.
    pub change_counter: i64,
    pub markdown: String,
    pub html: String,
    /// Table name → CSV text.
    pub tables: BTreeMap<String, String>,
}

/// What a list of reviews shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewMeta {
    pub id: i64,
    pub year: i32,
    pub node: String,
    pub lang: String,
    pub trigger: String,
    pub generated_at: DateTime<Utc>,
    pub change_counter: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredReview {
    pub meta: ReviewMeta,
    pub markdown: String,
    pub html: String,
    pub tables: BTreeMap<String, String>,
}

#[async_trait::async_trait]
pub trait ReviewStore: Send + Sync {
    async fn save_review(&self, review: &NewReview) -> Result<ReviewMeta, StoreError>;
    async fn review(&self, id: i64) -> Result<Option<StoredReview>, StoreError>;
    /// Newest first; all years when `year` is `None`.
    async fn reviews(&self, year: Option<i32>) -> Result<Vec<ReviewMeta>, StoreError>;
    /// Takes the run scheduled for `scheduled_for` (an RFC 3339 instant). True for exactly one
    /// caller, unless the holder's claim is older than `stale_before` without a review (it
    /// died mid-run): then one later caller may take it over.
    async fn claim_review_job(
        &self,
        scheduled_for: &str,
        holder: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn finish_review_job(
        &self,
        scheduled_for: &str,
        review_id: i64,
    ) -> Result<(), StoreError>;
    /// The scheduled runs recorded, oldest first: (scheduled_for, review id if finished).
    async fn review_jobs(&self) -> Result<Vec<(String, Option<i64>)>, StoreError>;
}

pub(super) const INSERT_REVIEW: &str = "INSERT INTO reviews (year, node, lang, trigger, \
    generated_at, change_counter, markdown, html, tables) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
pub(super) const REVIEW_META: &str =
    "SELECT id, year, node, lang, trigger, generated_at, change_counter FROM reviews";
pub(super) const REVIEW_BODY: &str = "SELECT markdown, html, tables FROM reviews WHERE id = $1";
pub(super) const CLAIM_JOB: &str = "INSERT INTO review_jobs (scheduled_for, claimed_by, \
    claimed_at) VALUES ($1, $2, $3) ON CONFLICT (scheduled_for) DO NOTHING";
pub(super) const TAKE_OVER_JOB: &str = "UPDATE review_jobs SET claimed_by = $2, claimed_at = $3 \
    WHERE scheduled_for = $1 AND review_id IS NULL AND claimed_at < $4";
pub(super) const FINISH_JOB: &str =
    "UPDATE review_jobs SET review_id = $2 WHERE scheduled_for = $1";
pub(super) const ALL_JOBS: &str =
    "SELECT scheduled_for, review_id FROM review_jobs ORDER BY scheduled_for";

pub(super) fn parse_tables(json: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("review tables: {e}")))
}

/// Expands to `impl ReviewStore for $store` over its `$writer` and `$reader` pools; a review is
/// refused, like a report, once `$committer` refuses writes after a failed flush.
macro_rules! review_store {
    ($store:ty, writer = $writer:ident, reader = $reader:ident, committer = $committer:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::reviews::ReviewStore for $store {
            async fn save_review(
                &self,
                r: &$crate::store::reviews::NewReview,
            ) -> Result<$crate::store::reviews::ReviewMeta, $crate::store::StoreError> {
                use $crate::store::reviews as q;
                // After a failed flush nothing more is written, a review no more than a report.
                if let Some(refusal) = self.$committer.refusal() {
                    return Err(refusal);
                }
                let tables = serde_json::to_string(&r.tables)
                    .map_err(|e| $crate::store::StoreError::Internal(e.to_string()))?;
                let generated_at = $crate::store::queries::to_micros(r.generated_at);
                let id: i64 = sqlx::query_scalar(q::INSERT_REVIEW)
                    .bind(i64::from(r.year))
                    .bind(&r.node)
                    .bind(&r.lang)
                    .bind(&r.trigger)
                    .bind(generated_at)
                    .bind(r.change_counter)
                    .bind(&r.markdown)
                    .bind(&r.html)
                    .bind(&tables)
                    .fetch_one(&self.$writer)
                    .await?;
                Ok(q::ReviewMeta {
                    id,
                    year: r.year,
                    node: r.node.clone(),
                    lang: r.lang.clone(),
                    trigger: r.trigger.clone(),
                    generated_at,
                    change_counter: r.change_counter,
                })
            }

            async fn review(
                &self,
                id: i64,
            ) -> Result<Option<$crate::store::reviews::StoredReview>, $crate::store::StoreError>
            {
                use $crate::store::reviews as q;
                let sql = format!("{} WHERE id = $1", q::REVIEW_META);
                let meta: Option<(
                    i64,
                    i64,
                    String,
                    String,
                    String,
                    chrono::DateTime<chrono::Utc>,
                    i64,
                )> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?;
                let Some((id, year, node, lang, trigger, generated_at, change_counter)) = meta
                else {
                    return Ok(None);
                };
                let (markdown, html, tables): (String, String, String) =
                    sqlx::query_as(q::REVIEW_BODY)
                        .bind(id)
                        .fetch_one(&self.$reader)
                        .await?;
                Ok(Some(q::StoredReview {
                    meta: q::ReviewMeta {
                        id,
                        year: i32::try_from(year)
                            .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?,
                        node,
                        lang,
                        trigger,
                        generated_at,
                        change_counter,
                    },
                    markdown,
                    html,
                    tables: q::parse_tables(&tables)?,
                }))
            }

            async fn reviews(
                &self,
                year: Option<i32>,
            ) -> Result<Vec<$crate::store::reviews::ReviewMeta>, $crate::store::StoreError> {
                use $crate::store::reviews as q;
                let sql = format!(
                    "{} WHERE ($1 IS NULL OR year = $1) ORDER BY id DESC",
                    q::REVIEW_META
                );
                let rows: Vec<(
                    i64,
                    i64,
                    String,
                    String,
                    String,
                    chrono::DateTime<chrono::Utc>,
                    i64,
                )> = sqlx::query_as(&sql)
                    .bind(year.map(i64::from))
                    .fetch_all(&self.$reader)
                    .await?;
                rows.into_iter()
                    .map(
                        |(id, year, node, lang, trigger, generated_at, change_counter)| {
                            Ok(q::ReviewMeta {
                                id,
                                year: i32::try_from(year).map_err(|e| {
                                    $crate::store::StoreError::Corrupt(e.to_string())
                                })?,
                                node,
                                lang,
                                trigger,
                                generated_at,
                                change_counter,
                            })
                        },
                    )
                    .collect()
            }

            async fn claim_review_job(
                &self,
                scheduled_for: &str,
                holder: &str,
                now: chrono::DateTime<chrono::Utc>,
                stale_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::reviews as q;
                let inserted = sqlx::query(q::CLAIM_JOB)
                    .bind(scheduled_for)
                    .bind(holder)
                    .bind(now)
                    .execute(&self.$writer)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    return Ok(true);
                }
                let taken = sqlx::query(q::TAKE_OVER_JOB)
                    .bind(scheduled_for)
                    .bind(holder)
                    .bind(now)
                    .bind(stale_before)
                    .execute(&self.$writer)
                    .await?
                    .rows_affected();
                Ok(taken == 1)
            }

            async fn finish_review_job(
                &self,
                scheduled_for: &str,
                review_id: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::reviews::FINISH_JOB)
                    .bind(scheduled_for)
                    .bind(review_id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn review_jobs(
                &self,
            ) -> Result<Vec<(String, Option<i64>)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::reviews::ALL_JOBS)
                    .fetch_all(&self.$reader)
                    .await?)
            }
        }
    };
}

pub(super) use review_store;
