//! PostgreSQL's group write: each statement takes the whole group as arrays (`UNNEST`), so a
//! group of any size costs the same five statements. Several aggregator processes may write at
//! once, so nothing here assumes it is alone: revision numbers are reserved under the row
//! locks of `current_reports` (taken in key order, so two groups cannot deadlock on them), and
//! seqs come from the table's sequence. A submission id a concurrent writer committed first
//! fails the insert; the caller then rolls back and writes the group one report at a time,
//! where that race is recognised.

use super::{GroupPlan, Planned, ReportKey, last_per_report, new_revisions_per_report, plan};
use crate::store::queries::{self as q, RevisionRow, submission_columns};
use crate::store::{NewRevision, Recorded, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use std::collections::HashMap;

/// Adds the group's new revisions to each report's count and returns the counts as they stood
/// before. Sorting the input makes every writer lock `current_reports` rows in one order.
const RESERVE_REVISIONS: &str = "INSERT INTO current_reports \
    (unit_code, data_set, period, revision, seq) \
    SELECT t.unit_code, t.data_set, t.period, t.added, 0 \
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) \
    AS t(unit_code, data_set, period, added) \
    ORDER BY t.unit_code, t.data_set, t.period \
    ON CONFLICT (unit_code, data_set, period) \
    DO UPDATE SET revision = current_reports.revision + excluded.revision \
    RETURNING unit_code, data_set, period, revision";

/// Ordered by position, so the sequence hands out seqs in queue order.
const INSERT_SUBMISSIONS: &str = concat!(
    "INSERT INTO submissions (",
    submission_columns!(),
    ") SELECT ",
    submission_columns!(),
    " FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], \
     $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::boolean[], \
     $12::date[], $13::date[], $14::text[], $15::text[], $16::text[], $17::text[]) \
     WITH ORDINALITY AS t(",
    submission_columns!(),
    ", position) ORDER BY t.position RETURNING submission_id, seq"
);

const INSERT_VALUES: &str = "INSERT INTO submission_values (seq, indicator, value, comment) \
    SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::text[])";

/// Through the primary key, row by row (every row exists: `RESERVE_REVISIONS` made it), where
/// an `UPDATE ... FROM UNNEST` joined the whole table: 3.3 ms for a 60-report group in 12,800
/// rows.
const POINT_CURRENT_AT: &str = "INSERT INTO current_reports \
    (unit_code, data_set, period, revision, seq) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
    ON CONFLICT (unit_code, data_set, period) DO UPDATE SET seq = excluded.seq";

/// Writes `group` inside the caller's open transaction and returns each report's outcome in
/// order. Nothing is durable (or answered) until the caller commits.
pub(in crate::store) async fn write_group(
    conn: &mut PgConnection,
    group: &[&NewRevision],
) -> Result<Vec<Recorded>, StoreError> {
    let known = known_submissions(conn, group).await?;
    let counts = new_revisions_per_report(group, &known);
    let latest = if counts.is_empty() {
        // Only repeats: nothing to lock or write.
        HashMap::new()
    } else {
        reserve_revisions(conn, counts).await?
    };
    let GroupPlan {
        mut planned,
        outcomes,
    } = plan(group, &known, latest, 0)?;
    if planned.is_empty() {
        return Ok(outcomes);
    }
    insert_submissions(conn, &mut planned).await?;
    insert_values(conn, &planned).await?;
    point_current_at(conn, &planned).await?;
    Ok(outcomes)
}

/// Rows already stored under the group's submission ids. Unprepared (planned afresh each
/// time): a prepared statement keeps the plan it got when first used, and first used on a new,
/// empty database that plan is a sequential scan, kept while the table grows until autovacuum
/// analyses it. The first deadline's rush into a new store is exactly that: 63 ids took 14 ms
/// to look up in 12,800 rows that way, about 1 ms planned afresh.
async fn known_submissions(
    conn: &mut PgConnection,
    group: &[&NewRevision],
) -> Result<HashMap<String, RevisionRow>, StoreError> {
    let ids: Vec<&str> = group
        .iter()
        .map(|new| new.report.submission_id.as_str())
        .collect();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM submissions s WHERE s.submission_id = ANY($1)",
        q::REVISION_COLUMNS
    ))
    .persistent(false)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut known = HashMap::with_capacity(rows.len());
    for row in &rows {
        let row = crate::store::postgres::decode_revision_row(row)?;
        known.insert(row.submission_id.clone(), row);
    }
    Ok(known)
}

/// Takes the row locks of every report the group adds revisions to and returns each one's
/// latest revision before the group.
async fn reserve_revisions(
    conn: &mut PgConnection,
    counts: HashMap<ReportKey, u32>,
) -> Result<HashMap<ReportKey, u32>, StoreError> {
    let mut units = Vec::with_capacity(counts.len());
    let mut data_sets = Vec::with_capacity(counts.len());
    let mut periods = Vec::with_capacity(counts.len());
    let mut added = Vec::with_capacity(counts.len());
    for ((unit, data_set, period), count) in &counts {
        units.push(unit.as_str());
        data_sets.push(data_set.as_str());
        periods.push(period.as_str());
        added.push(i64::from(*count));
    }
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(RESERVE_REVISIONS)
        .bind(&units)
        .bind(&data_sets)
        .bind(&periods)
        .bind(&added)
        .fetch_all(&mut *conn)
        .await?;
    let mut latest = HashMap::with_capacity(rows.len());
    for (unit, data_set, period, after) in rows {
        let key = (unit, data_set, period);
        let before = counts
            .get(&key)
            .and_then(|count| u32::try_from(after - i64::from(*count)).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "current_reports {}/{}/{}: revision {after} does not follow a reservation",
                    key.0, key.1, key.2
                ))
            })?;
        latest.insert(key, before);
    }
    Ok(latest)
}

/// Inserts the new revisions and records the seq the sequence gave each.
async fn insert_submissions(
    conn: &mut PgConnection,
    planned: &mut [Planned<'_>],
) -> Result<(), StoreError> {
    let n = planned.len();
    let mut ids = Vec::with_capacity(n);
    let mut units = Vec::with_capacity(n);
    let mut data_sets = Vec::with_capacity(n);
    let mut periods = Vec::with_capacity(n);
    let mut revisions = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut prepared_by = Vec::with_capacity(n);
    let mut client_times: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut received: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let mut deadlines: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let mut on_time = Vec::with_capacity(n);
    let mut window_starts: Vec<NaiveDate> = Vec::with_capacity(n);
    let mut window_ends: Vec<NaiveDate> = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut shortcomings = Vec::with_capacity(n);
    let mut proposals = Vec::with_capacity(n);
    let mut warnings = Vec::with_capacity(n);
    for p in planned.iter() {
        let report = &p.new.report;
        ids.push(report.submission_id.as_str());
        units.push(report.unit.as_str());
        data_sets.push(report.data_set.as_str());
        periods.push(p.period.as_str());
        revisions.push(i64::from(p.revision));
        hashes.push(p.new.content_hash.as_str());
        prepared_by.push(report.prepared_by.as_str());
        client_times.push(report.client_time.map(q::to_micros));
        received.push(q::to_micros(p.new.received_at));
        deadlines.push(q::to_micros(p.new.deadline));
        on_time.push(p.new.on_time);
        window_starts.push(p.new.window.start);
        window_ends.push(p.new.window.end);
        results.push(report.narrative.results.as_str());
        shortcomings.push(report.narrative.shortcomings.as_str());
        proposals.push(report.narrative.proposals.as_str());
        warnings.push(p.warnings.as_str());
    }
    let seqs: Vec<(String, i64)> = sqlx::query_as(INSERT_SUBMISSIONS)
        .bind(&ids)
        .bind(&units)
        .bind(&data_sets)
        .bind(&periods)
        .bind(&revisions)
        .bind(&hashes)
        .bind(&prepared_by)
        .bind(&client_times)
        .bind(&received)
        .bind(&deadlines)
        .bind(&on_time)
        .bind(&window_starts)
        .bind(&window_ends)
        .bind(&results)
        .bind(&shortcomings)
        .bind(&proposals)
        .bind(&warnings)
        .fetch_all(&mut *conn)
        .await?;
    let seqs: HashMap<String, i64> = seqs.into_iter().collect();
    for p in planned.iter_mut() {
        let id = p.new.report.submission_id.as_str();
        p.seq = *seqs.get(id).ok_or_else(|| {
            StoreError::Internal(format!("submission {id} was inserted but no seq came back"))
        })?;
    }
    Ok(())
}

async fn insert_values(conn: &mut PgConnection, planned: &[Planned<'_>]) -> Result<(), StoreError> {
    let mut seqs = Vec::new();
    let mut indicators = Vec::new();
    let mut values = Vec::new();
    let mut comments = Vec::new();
    for p in planned {
        for v in &p.new.report.values {
            seqs.push(p.seq);
            indicators.push(v.indicator.as_str());
            values.push(v.value);
            comments.push(v.comment.as_deref());
        }
    }
    if seqs.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_VALUES)
        .bind(&seqs)
        .bind(&indicators)
        .bind(&values)
        .bind(&comments)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Points each touched report's `current_reports` row at its last revision in the group (the
/// revision number was set when it was reserved).
async fn point_current_at(
    conn: &mut PgConnection,
    planned: &[Planned<'_>],
) -> Result<(), StoreError> {
    let last = last_per_report(planned);
    let units: Vec<&str> = last.iter().map(|p| p.new.report.unit.as_str()).collect();
    let data_sets: Vec<&str> = last
        .iter()
        .map(|p| p.new.report.data_set.as_str())
        .collect();
    let periods: Vec<&str> = last.iter().map(|p| p.period.as_str()).collect();
    let revisions: Vec<i64> = last.iter().map(|p| i64::from(p.revision)).collect();
    let seqs: Vec<i64> = last.iter().map(|p| p.seq).collect();
    sqlx::query(POINT_CURRENT_AT)
        .bind(&units)
        .bind(&data_sets)
        .bind(&periods)
        .bind(&revisions)
        .bind(&seqs)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
