//! The SQL of one SQLite group commit: a whole group of reports written with a handful of
//! set-based statements instead of five statements per report. Each statement is a round trip
//! to sqlx's SQLite worker thread, and at thousands of reports a second those round trips, not
//! the disk, were what held ingest back.
//!
//! The outcome is exactly that of writing the reports one after another in queue order: a
//! submission id seen before (in the store, or earlier in the group) is recognised as a
//! duplicate or a conflict; each new revision takes the next number of its report; the change
//! counter grows by one per revision, in queue order. SQLite-only: it numbers revisions and
//! seqs itself, which is safe because the caller holds SQLite's single write transaction
//! (another process writing the same file makes a statement fail, and the caller then falls
//! back to one transaction per report).

use super::queries::{self as q, RevisionRow};
use super::{NewRevision, Recorded, StoreError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// SQLite accepts at most 32,766 bound parameters per statement; stay well below.
const MAX_PARAMETERS: usize = 30_000;

/// Parameters of one `submissions` row: the explicit seq and the 17 columns `record` binds.
const SUBMISSION_PARAMETERS: usize = 18;

/// Parameters of one `submission_values` row.
const VALUE_PARAMETERS: usize = 4;

type ReportKey = (String, String, String);

/// A revision this group will insert, with the numbers it was given.
struct Planned<'g> {
    new: &'g NewRevision,
    seq: i64,
    revision: u32,
    period: String,
    warnings: String,
}

/// Writes `group` inside the caller's open transaction and returns each report's outcome in
/// order. Nothing is durable (or answered) until the caller commits.
pub(super) async fn write_group(
    conn: &mut SqliteConnection,
    group: &[&NewRevision],
) -> Result<Vec<Recorded>, StoreError> {
    let stored_before = known_submissions(conn, group).await?;
    let mut revisions = current_revisions(conn, group).await?;
    let mut next_seq = next_seq(conn).await?;

    let mut planned: Vec<Planned<'_>> = Vec::new();
    // Submission id → index in `planned`, for repeats within the group.
    let mut in_group: HashMap<&str, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(group.len());
    for new in group {
        let id = new.report.submission_id.as_str();
        if let Some(row) = stored_before.get(id) {
            outcomes.push(row.clone().recognise(&new.content_hash)?);
            continue;
        }
        if let Some(&earlier) = in_group.get(id) {
            outcomes.push(recognise_planned(&planned[earlier], &new.content_hash));
            continue;
        }
        let period = new.report.period.to_string();
        let key = (
            new.report.unit.as_str().to_owned(),
            new.report.data_set.as_str().to_owned(),
            period.clone(),
        );
        let revision = revisions.get(&key).copied().unwrap_or(0) + 1;
        revisions.insert(key, revision);
        let warnings = serde_json::to_string(&new.warnings)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        outcomes.push(Recorded::Stored(q::stored_receipt(new, revision)));
        in_group.insert(id, planned.len());
        planned.push(Planned {
            new,
            seq: next_seq,
            revision,
            period,
            warnings,
        });
        next_seq += 1;
    }

    insert_submissions(conn, &planned).await?;
    insert_values(conn, &planned).await?;
    point_current_at(conn, &planned).await?;
    Ok(outcomes)
}

/// What an earlier report of this same group means for a repeat of its submission id: the
/// same rule as `RevisionRow::recognise`, applied to a row not yet written.
fn recognise_planned(earlier: &Planned<'_>, content_hash: &str) -> Recorded {
    if earlier.new.content_hash != content_hash {
        return Recorded::Conflict {
            existing_hash: earlier.new.content_hash.clone(),
            existing_revision: earlier.revision,
        };
    }
    let mut receipt = q::stored_receipt(earlier.new, earlier.revision);
    receipt.status = crate::domain::ReceiptStatus::Duplicate;
    Recorded::Duplicate(receipt)
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
        let row = super::sqlite::decode_revision_row(row)?;
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
    let mut last: HashMap<(&str, &str, &str), &Planned<'_>> = HashMap::new();
    for p in planned {
        let report = &p.new.report;
        last.insert(
            (
                report.unit.as_str(),
                report.data_set.as_str(),
                p.period.as_str(),
            ),
            p,
        );
    }
    let rows: Vec<_> = last.into_iter().collect();
    for chunk in rows.chunks(MAX_PARAMETERS / 5) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) ",
        );
        upsert.push_values(chunk, |mut row, ((unit, data_set, period), p)| {
            row.push_bind(*unit)
                .push_bind(*data_set)
                .push_bind(*period)
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
