//! The benchmark's bulk load: synthetic reports written straight into the store's schema, in
//! one transaction and in big multi-row statements (SQLite) or COPY (PostgreSQL), because the
//! per-report ingest path would take hours for 24 million values.

use super::{pg_connect, sqlite_options};
use crate::domain::DateWindow;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, PgConnection, QueryBuilder, SqliteConnection};
use std::fmt::Write as _;

/// One synthetic report, stored as revision 1 of its (unit, data set, period).
#[derive(Debug, Clone)]
pub struct BulkReport {
    pub unit: String,
    pub period: String,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub window: DateWindow,
    /// (index into [`BulkLoad::indicators`], value).
    pub values: Vec<(u16, f64)>,
}

/// What every report of one bulk load shares.
#[derive(Debug, Clone, Copy)]
pub struct BulkLoad<'a> {
    pub data_set: &'a str,
    pub indicators: &'a [String],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkLoaded {
    pub reports: u64,
    pub values: u64,
}

/// Reports generated and written per round: big enough that statement overhead vanishes,
/// small enough that a round's rows (about 16 MB of COPY text) never matter for memory.
const CHUNK_REPORTS: usize = 20_000;

/// SQLite refuses statements with more than 32,766 bound parameters; these row counts keep
/// each multi-row INSERT under it (11, 3 and 4 parameters per row).
const SQLITE_SUBMISSION_ROWS: usize = 2_900;
const SQLITE_VALUE_ROWS: usize = 10_000;
const SQLITE_CURRENT_ROWS: usize = 8_000;

/// Columns the bulk load fills in `submissions`; `client_time` stays NULL.
const SUBMISSION_COLUMNS: &str = "seq, submission_id, unit_code, data_set, period, revision, \
    content_hash, prepared_by, received_at, deadline, on_time, window_start, window_end, \
    results, shortcomings, proposals, warnings";

const BULK_AUTHOR: &str = "tonghop bench";

fn submission_id(data_set: &str, report: &BulkReport) -> String {
    format!("bench:{}:{data_set}:{}:r1", report.unit, report.period)
}

/// A placeholder shaped like the SHA-256 hex the ingest path stores; nothing reads it back.
fn content_hash(seq: i64) -> String {
    format!("{seq:064x}")
}

/// Writes every report `next` yields into an empty store at `url` (creating and migrating it
/// first), in one transaction, with seqs 1, 2, 3... in the order given; calls `progress` with
/// the number of reports written after each round. Nothing else may have the store open
/// meanwhile (SQLite switches its journal mode for the load).
pub async fn bulk_load(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    if url.starts_with("sqlite:") {
        bulk_load_sqlite(url, load, next, progress).await
    } else {
        bulk_load_postgres(url, load, next, progress).await
    }
}

/// Pulls the next round of reports from the generator.
fn next_chunk(next: &mut (dyn FnMut() -> Option<BulkReport> + Send), chunk: &mut Vec<BulkReport>) {
    chunk.clear();
    while chunk.len() < CHUNK_REPORTS {
        match next() {
            Some(report) => chunk.push(report),
            None => break,
        }
    }
}

fn indicator_code<'a>(load: &BulkLoad<'a>, index: u16) -> Result<&'a str, StoreError> {
    load.indicators
        .get(usize::from(index))
        .map(String::as_str)
        .ok_or_else(|| StoreError::Internal(format!("bulk load: no indicator number {index}")))
}

async fn bulk_load_sqlite(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    // A rollback journal instead of WAL: the transaction only appends to a fresh file, so the
    // journal stays empty, whereas WAL would write every page twice (log, then checkpoint).
    // No fsync: if the machine dies the benchmark simply reruns. Foreign keys off, although
    // since migration 0004 none applies to the tables loaded here (nor on PostgreSQL since 0003).
    // The load's own connection is the only one on the file: a store's pools, even closed,
    // could leave a connection behind that makes the journal-mode switch fail as "locked".
    let options = sqlite_options(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-262144");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    // The store's own migrations, so the load writes exactly the tables the aggregator reads.
    sqlx::migrate!("src/store/migrations/sqlite")
        .run(&mut conn)
        .await?;
    ensure_empty_sqlite(&mut conn).await?;
    let mut tx = conn.begin().await?;
    let mut done = BulkLoaded::default();
    let mut chunk = Vec::with_capacity(CHUNK_REPORTS);
    loop {
        next_chunk(next, &mut chunk);
        if chunk.is_empty() {
            break;
        }
        let first_seq = done.reports as i64 + 1;
        for (part_index, part) in chunk.chunks(SQLITE_SUBMISSION_ROWS).enumerate() {
            let base = first_seq + (part_index * SQLITE_SUBMISSION_ROWS) as i64;
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "INSERT INTO submissions ({SUBMISSION_COLUMNS}) "
            ));
            insert.push_values(part.iter().enumerate(), |mut row, (i, r)| {
                let seq = base + i as i64;
                row.push_bind(seq)
                    .push_bind(submission_id(load.data_set, r))
                    .push_bind(r.unit.clone())
                    .push_bind(load.data_set.to_owned())
                    .push_bind(r.period.clone())
                    .push("1")
                    .push_bind(content_hash(seq))
                    .push("'tonghop bench'")
                    .push_bind(r.received_at)
                    .push_bind(r.deadline)
                    .push_bind(r.on_time)
                    .push_bind(r.window.start)
                    .push_bind(r.window.end)
                    .push("''")
                    .push("''")
                    .push("''")
                    .push("'[]'");
            });
            insert.build().execute(&mut *tx).await?;
        }
        let mut rows: Vec<(i64, &str, f64)> = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            for &(indicator, value) in &r.values {
                rows.push((
                    first_seq + i as i64,
                    indicator_code(&load, indicator)?,
                    value,
                ));
            }
        }
        for part in rows.chunks(SQLITE_VALUE_ROWS) {
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO submission_values (seq, indicator, value) ",
            );
            insert.push_values(part, |mut row, (seq, indicator, value)| {
                row.push_bind(*seq).push_bind(*indicator).push_bind(*value);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for (part_index, part) in chunk.chunks(SQLITE_CURRENT_ROWS).enumerate() {
            let base = first_seq + (part_index * SQLITE_CURRENT_ROWS) as i64;
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) ",
            );
            insert.push_values(part.iter().enumerate(), |mut row, (i, r)| {
                row.push_bind(r.unit.clone())
                    .push_bind(load.data_set.to_owned())
                    .push_bind(r.period.clone())
                    .push("1")
                    .push_bind(base + i as i64);
            });
            insert.build().execute(&mut *tx).await?;
        }
        done.reports += chunk.len() as u64;
        done.values += rows.len() as u64;
        progress(done.reports);
    }
    tx.commit().await?;
    // Statistics for the SQL baseline's planner, as a DBA would gather after a big load;
    // then back to the WAL mode the store runs in.
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(done)
}

async fn ensure_empty_sqlite(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&mut *conn)
        .await?;
    if count > 0 {
        return Err(StoreError::Internal(format!(
            "bulk load needs an empty store; this one holds {count} submissions"
        )));
    }
    Ok(())
}

/// Escapes a value for PostgreSQL's COPY text format.
fn copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
}

async fn copy_in(conn: &mut PgConnection, statement: &str, data: &str) -> Result<(), StoreError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

async fn bulk_load_postgres(
    url: &str,
    load: BulkLoad<'_>,
    next: &mut (dyn FnMut() -> Option<BulkReport> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<BulkLoaded, StoreError> {
    let mut conn = pg_connect(url).await?;
    sqlx::migrate!("src/store/migrations/postgres")
        .run(&mut conn)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&mut conn)
        .await?;
    if count > 0 {
        return Err(StoreError::Internal(format!(
            "bulk load needs an empty store; this one holds {count} submissions"
        )));
    }
    let mut tx = conn.begin().await?;
    // An acknowledged bulk load need not survive a crash: skip the WAL flush at commit.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let mut done = BulkLoaded::default();
    let mut chunk = Vec::with_capacity(CHUNK_REPORTS);
    let (mut submissions, mut values, mut current) = (String::new(), String::new(), String::new());
    loop {
        next_chunk(next, &mut chunk);
        if chunk.is_empty() {
            break;
        }
        submissions.clear();
        values.clear();
        current.clear();
        let first_seq = done.reports as i64 + 1;
        for (i, r) in chunk.iter().enumerate() {
            let seq = first_seq + i as i64;
            // Writing into a String cannot fail.
            let _ = write!(submissions, "{seq}\t");
            copy_text(&mut submissions, &submission_id(load.data_set, r));
            submissions.push('\t');
            copy_text(&mut submissions, &r.unit);
            submissions.push('\t');
            copy_text(&mut submissions, load.data_set);
            submissions.push('\t');
            copy_text(&mut submissions, &r.period);
            let _ = writeln!(
                submissions,
                "\t1\t{}\t{BULK_AUTHOR}\t{}\t{}\t{}\t{}\t{}\t\t\t\t[]",
                content_hash(seq),
                r.received_at.to_rfc3339(),
                r.deadline.to_rfc3339(),
                if r.on_time { 't' } else { 'f' },
                r.window.start,
                r.window.end,
            );
            for &(indicator, value) in &r.values {
                let _ = write!(values, "{seq}\t");
                copy_text(&mut values, indicator_code(&load, indicator)?);
                // Rust prints the shortest decimal that reads back as the same f64.
                let _ = writeln!(values, "\t{value}");
                done.values += 1;
            }
            copy_text(&mut current, &r.unit);
            current.push('\t');
            copy_text(&mut current, load.data_set);
            current.push('\t');
            copy_text(&mut current, &r.period);
            let _ = writeln!(current, "\t1\t{seq}");
        }
        copy_in(
            &mut tx,
            &format!("COPY submissions ({SUBMISSION_COLUMNS}) FROM STDIN"),
            &submissions,
        )
        .await?;
        copy_in(
            &mut tx,
            "COPY submission_values (seq, indicator, value) FROM STDIN",
            &values,
        )
        .await?;
        copy_in(
            &mut tx,
            "COPY current_reports (unit_code, data_set, period, revision, seq) FROM STDIN",
            &current,
        )
        .await?;
        done.reports += chunk.len() as u64;
        progress(done.reports);
    }
    if done.reports > 0 {
        // The seqs were given explicitly: move the sequence past them, or the next real
        // submission would collide with seq 1.
        sqlx::query("SELECT setval(pg_get_serial_sequence('submissions', 'seq'), $1)")
            .bind(done.reports as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // VACUUM as well as ANALYZE: after 24 million inserts autovacuum would otherwise start
    // on its own during the timed queries and take a core from them (and from the SQL side).
    sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await?;
    conn.close().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copy_text_escapes_separators() {
        let mut out = String::new();
        copy_text(&mut out, "a\tb\\c\nd");
        assert_eq!(out, "a\\tb\\\\c\\nd");
    }
}
