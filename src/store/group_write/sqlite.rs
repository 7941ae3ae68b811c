//! SQLite's group write. It numbers revisions and seqs itself, which is safe because the caller
//! holds SQLite's single write transaction (another process writing the same file makes a
//! statement fail, and the caller then falls back to one transaction per report). The change
//! counter grows by one per revision, in queue order.

use super::{GroupPlan, Planned, ReportKey, last_per_report, plan};
use crate::store::queries::{self as q, RevisionRow};
use crate::store::{NewRevision, Recorded, StoreError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// SQLite accepts at most 32,766 bound parameters per statement; stay well below.
const MAX_PARAMETERS: usize = 30_000;

/// Parameters of one `submissions` row: the explicit seq and the 17 columns `record` binds.
const SUBMISSION_PARAMETERS: usize = 18;

/// Parameters of one `submission_values` row.
const VALUE_PARAMETERS: usize = 4;

/// Writes `group` inside the caller's open transaction and returns each report's outcome in
/// order. Nothing is durable (or answered) until the caller commits.
pub(in crate::store) async fn write_group(
    conn: &mut SqliteConnection,
    group: &[&NewRevision],
) -> Result<Vec<Recorded>, StoreError> {
    let known = known_submissions(conn, group).await?;
    let latest = current_revisions(conn, group).await?;
    let first_seq = next_seq(conn).await?;
    let GroupPlan { planned, outcomes } = plan(group, &known, latest, first_seq)?;
    insert_submissions(conn, &planned).await?;
    insert_values(conn, &planned).await?;
    point_current_at(conn, &planned).await?;
    Ok(outcomes)
}

/// Rows already stored under the group's submission ids.
async fn known_submissions(
    conn: &mut SqliteConnection,
    group: &[&NewRevision],
) -> Result<HashMap<String, RevisionRow>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {} FROM submissions s WHERE s.submission_id IN (",
        q::REVISION_COLUMNS
    ));
    let mut ids = query.separated(", ");
    for new in group {
        ids.push_bind(new.report.submission_id.as_str());
    }
    query.push(")");
    let rows = query.build().fetch_all(&mut *conn).await?;
    let mut known = HashMap::with_capacity(rows.len());
    for row in &rows {
        let row = crate::store::sqlite::decode_revision_row(row)?;
        known.insert(row.submission_id.clone(), row);
    }
    Ok(known)
}

/// The latest revision number of every report the group touches.
async fn current_revisions(
    conn: &mut SqliteConnection,
    group: &[&NewRevision],
) -> Result<HashMap<ReportKey, u32>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT unit_code, data_set, period, revision FROM current_reports \
         WHERE (unit_code, data_set, period) IN (VALUES ",
    );
    let mut keys = query.separated(", ");
    for new in group {
        keys.push("(")
            .push_bind_unseparated(new.report.unit.as_str())
            .push_unseparated(", ")
            .push_bind_unseparated(new.report.data_set.as_str())
            .push_unseparated(", ")
            .push_bind_unseparated(new.report.period.to_string())
            .push_unseparated(")");
    }
    query.push(")");
    let rows: Vec<(String, String, String, i64)> =
        query.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|(unit, data_set, period, revision)| {
            let revision = u32::try_from(revision).map_err(|e| {
                StoreError::Corrupt(format!(
                    "current_reports {unit}/{data_set}/{period}: revision {revision}: {e}"
                ))
            })?;
            Ok(((unit, data_set, period), revision))
        })
        .collect()
}

/// The seq the next revision gets: past every seq ever handed out (AUTOINCREMENT's own record
/// included, so a seq is never reused even if rows were ever removed by hand).
async fn next_seq(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM submissions), 0), \
         COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'submissions'), 0))",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(last + 1)
}

async fn insert_submissions(
    conn: &mut SqliteConnection,
    planned: &[Planned<'_>],
) -> Result<(), StoreError> {
    for chunk in planned.chunks(MAX_PARAMETERS / SUBMISSION_PARAMETERS) {
        let mut insert = QueryBuilder::<Sqlite>::new(q::INSERT_SUBMISSIONS_WITH_SEQ);
        insert.push_values(chunk, |mut row, p| {
            let report = &p.new.report;
            row.push_bind(p.seq)
                .push_bind(report.submission_id.as_str())
                .push_bind(report.unit.as_str())
                .push_bind(report.data_set.as_str())
                .push_bind(p.period.as_str())
                .push_bind(i64::from(p.revision))
                .push_bind(p.new.content_hash.as_str())
                .push_bind(report.prepared_by.as_str())
                .push_bind(report.client_time.map(q::to_micros))
                .push_bind(q::to_micros(p.new.received_at))
                .push_bind(q::to_micros(p.new.deadline))
                .push_bind(p.new.on_time)
                .push_bind(p.new.window.start)
                .push_bind(p.new.window.end)
                .push_bind(report.narrative.results.as_str())
                .push_bind(report.narrative.shortcomings.as_str())
                .push_bind(report.narrative.proposals.as_str())
                .push_bind(p.warnings.as_str());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_values(
    conn: &mut SqliteConnection,
    planned: &[Planned<'_>],
) -> Result<(), StoreError> {
    let rows: Vec<(i64, &crate::domain::DataValue)> = planned
        .iter()
        .flat_map(|p| p.new.report.values.iter().map(move |v| (p.seq, v)))
        .collect();
    for chunk in rows.chunks(MAX_PARAMETERS / VALUE_PARAMETERS) {
        let mut insert = QueryBuilder::<Sqlite>::new(q::INSERT_VALUES_PREFIX);
        insert.push_values(chunk, |mut row, (seq, v)| {
            row.push_bind(*seq)
                .push_bind(v.indicator.as_str())
                .push_bind(v.value)
                .push_bind(v.comment.as_deref());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// One `current_reports` row per report touched, pointing at its last revision in the group.
async fn point_current_at(
    conn: &mut SqliteConnection,
    planned: &[Planned<'_>],
) -> Result<(), StoreError> {
    let rows = last_per_report(planned);
    for chunk in rows.chunks(MAX_PARAMETERS / 5) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) ",
        );
        upsert.push_values(chunk, |mut row, p| {
            row.push_bind(p.new.report.unit.as_str())
                .push_bind(p.new.report.data_set.as_str())
                .push_bind(p.period.as_str())
                .push_bind(i64::from(p.revision))
                .push_bind(p.seq);
        });
        upsert.push(
            " ON CONFLICT (unit_code, data_set, period) \
             DO UPDATE SET revision = excluded.revision, seq = excluded.seq",
        );
        upsert.build().execute(&mut *conn).await?;
    }
    Ok(())
}
