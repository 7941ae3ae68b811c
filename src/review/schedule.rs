//! The scheduled yearly review: a cron expression in Asia/Ho_Chi_Minh time (default 20 December
//! 07:00, after the Decree 09 yearly cut-off on 14 December). At start the last occurrence is
//! caught up if it never ran; with several aggregator processes on one database, the
//! `review_jobs` row of an occurrence makes exactly one of them run it.

use super::{ReviewError, Reviewer};
use crate::domain::period::vietnam_offset;
use crate::domain::{Calendar, PeriodId};
use crate::store::reviews::ReviewMeta;
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use std::str::FromStr;

/// Seconds, minutes, hours, day of month, month, day of week (the `cron` crate's format).
pub const DEFAULT_SCHEDULE: &str = "0 0 7 20 12 *";

/// A claim older than this without a finished review belongs to a process that died mid-run.
const STALE_CLAIM: chrono::Duration = chrono::Duration::hours(1);

#[derive(Debug, Clone)]
pub struct ReviewSchedule {
    cron: cron::Schedule,
    pub expression: String,
}

impl ReviewSchedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        cron::Schedule::from_str(expression)
            .map(|cron| ReviewSchedule {
                cron,
                expression: expression.to_owned(),
            })
            .map_err(|e| {
                format!(
                    "review schedule {expression:?} is not a cron expression \
                     (sec min hour day month weekday, e.g. {DEFAULT_SCHEDULE:?}): {e}"
                )
            })
    }

    /// The latest occurrence at or before `now` within the past year (a longer outage is
    /// caught up for its last occurrence only).
    pub fn last_due(&self, now: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
        let now = now.with_timezone(&vietnam_offset());
        let start = now - chrono::Duration::days(366);
        self.cron
            .after(&start)
            .take(100_000)
            .take_while(|t| *t <= now)
            .last()
    }

    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
        self.cron
            .after(&now.with_timezone(&vietnam_offset()))
            .next()
    }
}

/// The year a review run at `at` covers: the latest year whose window had closed by then.
pub fn year_for(at: DateTime<FixedOffset>, calendar: Calendar) -> i32 {
    let day = at.date_naive();
    let mut year = at.year();
    while (PeriodId::Year { year }).window(calendar).end >= day {
        year -= 1;
    }
    year
}

/// Runs the last due occurrence if nobody has: `Some` when this call generated the review.
pub async fn run_due(
    reviewer: &Reviewer,
    schedule: &ReviewSchedule,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<Option<ReviewMeta>, ReviewError> {
    let Some(due) = schedule.last_due(now) else {
        return Ok(None);
    };
    let key = due.to_rfc3339();
    let store = reviewer.store();
    if !store
        .claim_review_job(&key, holder, now, now - STALE_CLAIM)
        .await?
    {
        tracing::debug!(scheduled_for = %key, "scheduled review already taken");
        return Ok(None);
    }
    let year = year_for(due, reviewer.calendar());
    tracing::info!(scheduled_for = %key, year, holder, "scheduled review started");
    let meta = reviewer.generate(year, "", false, "schedule").await?;
    store.finish_review_job(&key, meta.id).await?;
    tracing::info!(scheduled_for = %key, year, review = meta.id, "scheduled review written");
    Ok(Some(meta))
}

/// Catches up at start, then wakes for every occurrence until `stop` fires.
pub async fn run_forever(
    reviewer: Reviewer,
    schedule: ReviewSchedule,
    holder: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = run_due(&reviewer, &schedule, &holder, reviewer.now()).await {
            // The claim stays; it is taken over once stale, so a failed run is retried later.
            tracing::error!(error = %e, "scheduled review failed");
        }
        let Some(next) = schedule.next_after(reviewer.now()) else {
            tracing::warn!(schedule = %schedule.expression, "review schedule has no next occurrence");
            return;
        };
        let wait = (next.with_timezone(&Utc) - reviewer.now())
            .to_std()
            .unwrap_or_default()
            // Re-check at least hourly: the clock may jump, and stale claims need retrying.
            .min(std::time::Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_schedule_falls_after_the_decree09_cut_off() {
        let s = ReviewSchedule::parse(DEFAULT_SCHEDULE).expect("valid");
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 0, 0, 0)
            .single()
            .expect("time");
        let last = s.last_due(now).expect("one a year");
        assert_eq!(last.to_rfc3339(), "2025-12-20T07:00:00+07:00");
        let next = s.next_after(now).expect("next");
        assert_eq!(next.to_rfc3339(), "2026-12-20T07:00:00+07:00");
        // 20 Dec 2025 reviews 2025 (window closed 14 Dec); under calendar years, 2024.
        assert_eq!(year_for(last, Calendar::Decree09), 2025);
        assert_eq!(year_for(last, Calendar::Months), 2024);
    }

    #[test]
    fn a_bad_expression_is_refused_with_the_format() {
        let err = ReviewSchedule::parse("every december").expect_err("not cron");
        assert!(err.contains("sec min hour"), "{err}");
    }
}
