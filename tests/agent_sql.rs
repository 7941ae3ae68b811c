//! The agent's SQL source against real district databases: a SQLite file and a PostgreSQL
//! database of its own, each holding daily figures inside and outside a period's Decree 09
//! window; the agent sums the window's rows and delivers them over gRPC.

mod common;

use common::{Backend, TestDb, spawn_app, valid_report};
use std::path::Path;
use tonghop::agent::settings::{ReportLayer, SqlLayer};
use tonghop::agent::sql_source::SqlSource;
use tonghop::agent::{Agent, AgentLayer, AgentSettings, EntryState};
use tonghop::domain::{Calendar, PeriodId};

const UNIT: &str = "BS03";
const DATA_SET: &str = "DVCQ_THANG";
const QUERY: &str = "SELECT chi_tieu AS indicator, SUM(so_lieu) AS value FROM so_lieu \
                     WHERE ngay BETWEEN $1 AND $2 GROUP BY chi_tieu ORDER BY chi_tieu";

/// Rows of the district's table: each figure of the valid September 2019 report on a day
/// inside the window (15 Aug - 14 Sep 2019), a zero on the window's other end, and noise the
/// day before it (August, before the agent's first period) that must not be counted.
fn district_rows() -> Vec<(&'static str, String, f64)> {
    let mut rows = Vec::new();
    for v in valid_report("", UNIT, "201909").values {
        rows.push(("2019-08-15", v.indicator.clone(), v.value));
        rows.push(("2019-09-14", v.indicator.clone(), 0.0));
        rows.push(("2019-08-14", v.indicator, 1000.0));
    }
    rows
}

/// Noise the day after the window (October's data), added once September is delivered.
fn after_window_rows() -> Vec<(&'static str, String, f64)> {
    valid_report("", UNIT, "201909")
        .values
        .into_iter()
        .map(|v| ("2019-09-15", v.indicator, 1000.0))
        .collect()
}

/// September as the query reads it now: the window's rows only.
async fn assert_september_only(url: &str) {
    let (period, window) = september();
    let report = SqlSource::new(url, QUERY)
        .read(period, window)
        .await
        .expect("reads")
        .expect("rows");
    for v in valid_report("", UNIT, "201909").values {
        let got = report.values.iter().find(|r| r.indicator == v.indicator);
        assert_eq!(got.map(|r| r.value), Some(v.value), "{}", v.indicator);
    }
}

fn settings(dir: &Path, endpoint: &str, url: &str) -> AgentSettings {
    AgentSettings::from_layer(AgentLayer {
        endpoint: Some(endpoint.into()),
        unit: Some(UNIT.into()),
        outbox: Some(dir.join("outbox.db")),
        retry_initial_seconds: Some(0.05),
        retry_max_seconds: Some(0.4),
        reports: vec![ReportLayer {
            data_set: DATA_SET.into(),
            first_period: "201909".into(),
            folder: None,
            settle_seconds: None,
            sql: Some(SqlLayer {
                url: url.into(),
                query: QUERY.into(),
            }),
            send_after_days: None,
            at: None,
        }],
        ..AgentLayer::default()
    })
    .expect("valid settings")
}

fn september() -> (PeriodId, tonghop::domain::DateWindow) {
    let p = PeriodId::parse("201909").expect("period");
    (p, p.window(Calendar::Decree09))
}

/// Delivers the district's September through a real aggregator and checks what it stored.
async fn deliver_and_check(url: &str) {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = Agent::new(settings(dir.path(), &app.endpoint, url))
        .await
        .expect("agent");
    let (collected, sent) = agent.run_once().await.expect("run");
    assert_eq!(
        (collected.queued, collected.errors),
        (1, 0),
        "{collected:?}"
    );
    assert_eq!((sent.sent, sent.rejected), (1, 0), "{sent:?}");
    let entries = agent
        .outbox()
        .in_state(EntryState::Sent)
        .await
        .expect("read");
    assert_eq!(entries[0].period, "201909");
    assert!(
        entries[0].source.contains("SQL query on"),
        "{}",
        entries[0].source
    );

    // A second pass reads the same rows: nothing new to send.
    let (again, _) = agent.run_once().await.expect("run");
    assert_eq!((again.queued, again.corrections), (0, 0));
    agent.close().await;

    let stored = app.stored(UNIT, DATA_SET, "201909").await;
    for v in valid_report("", UNIT, "201909").values {
        assert_eq!(
            stored.report.value(&v.indicator),
            Some(v.value),
            "{} summed over the window only",
            v.indicator
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_source_on_a_real_sqlite_file() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("district.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("create district db");
    sqlx::query(
        "CREATE TABLE so_lieu (ngay TEXT NOT NULL, chi_tieu TEXT NOT NULL, so_lieu NUMERIC)",
    )
    .execute(&pool)
    .await
    .expect("create table");
    for (day, indicator, value) in district_rows() {
        sqlx::query("INSERT INTO so_lieu VALUES (?, ?, ?)")
            .bind(day)
            .bind(indicator)
            .bind(value)
            .execute(&pool)
            .await
            .expect("insert");
    }
    let url = format!("sqlite://{}", path.display());
    deliver_and_check(&url).await;
    for (day, indicator, value) in after_window_rows() {
        sqlx::query("INSERT INTO so_lieu VALUES (?, ?, ?)")
            .bind(day)
            .bind(indicator)
            .bind(value)
            .execute(&pool)
            .await
            .expect("insert");
    }
    pool.close().await;
    assert_september_only(&url).await;

    // Values as integers, reals and numeric text decode; a word does not, and the error names
    // the row and the column.
    let (period, window) = september();
    for (query, expected) in [
        ("SELECT 'tiep_cong_dan', 2", 2.0),
        ("SELECT 'tiep_cong_dan', 2.5", 2.5),
        ("SELECT 'tiep_cong_dan', ' 7 '", 7.0),
        ("SELECT 'tiep_cong_dan', $2 > $1", 1.0),
    ] {
        let report = SqlSource::new(&url, query)
            .read(period, window)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .expect("one row");
        assert_eq!(report.values[0].value, expected, "{query}");
    }
    let err = SqlSource::new(
        &url,
        "SELECT 'tiep_cong_dan', 1 UNION ALL SELECT 'don_tiep_nhan', 'năm'",
    )
    .read(period, window)
    .await
    .expect_err("a word is not a number")
    .to_string();
    assert!(
        err.contains("row 2") && err.contains("column 2 (value)") && err.contains("\"năm\""),
        "{err}"
    );
    let err = SqlSource::new(&url, "SELECT 'tiep_cong_dan', NULL")
        .read(period, window)
        .await
        .expect_err("NULL")
        .to_string();
    assert!(err.contains("row 1") && err.contains("is NULL"), "{err}");
    // No rows: no data for that period yet, not an empty report.
    let none = SqlSource::new(&url, "SELECT chi_tieu, so_lieu FROM so_lieu WHERE 0")
        .read(period, window)
        .await
        .expect("reads");
    assert_eq!(none, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_source_on_a_real_postgresql_database() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Postgres).await;
    let mut conn = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("connect district db");
    sqlx::query(
        "CREATE TABLE so_lieu (ngay DATE NOT NULL, chi_tieu TEXT NOT NULL, so_lieu NUMERIC(18, 2))",
    )
    .execute(&mut conn)
    .await
    .expect("create table");
    for (day, indicator, value) in district_rows() {
        sqlx::query("INSERT INTO so_lieu VALUES ($1::date, $2, $3::float8)")
            .bind(day)
            .bind(indicator)
            .bind(value)
            .execute(&mut conn)
            .await
            .expect("insert");
    }
    // SUM over NUMERIC is NUMERIC: the binary decoder carries 35 000 000 000 and 32 000.5.
    deliver_and_check(&db.url).await;
    for (day, indicator, value) in after_window_rows() {
        sqlx::query("INSERT INTO so_lieu VALUES ($1::date, $2, $3::float8)")
            .bind(day)
            .bind(indicator)
            .bind(value)
            .execute(&mut conn)
            .await
            .expect("insert");
    }
    let _ = conn.close().await;
    assert_september_only(&db.url).await;

    let (period, window) = september();
    for (query, expected) in [
        ("SELECT 'a', 2::int2", 2.0),
        ("SELECT 'a', 2::int4", 2.0),
        ("SELECT 'a', 35000000000::int8", 35_000_000_000.0),
        ("SELECT 'a', 2.5::float4", 2.5),
        ("SELECT 'a', 2.5::float8", 2.5),
        ("SELECT 'a', -1234.5678::numeric", -1234.5678),
        ("SELECT 'a', 0::numeric", 0.0),
        ("SELECT 'a', 0.0001::numeric", 0.0001),
        ("SELECT 'a', '7'::text", 7.0),
        ("SELECT 'a', ($2::date - $1::date)::int4", 30.0),
        ("SELECT 'a', count(*) FROM so_lieu WHERE ngay <= $2", 63.0),
        ("SELECT 'a', count(*) FROM so_lieu WHERE ngay > $2", 21.0),
    ] {
        let report = SqlSource::new(&db.url, query)
            .read(period, window)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .expect("one row");
        let got = report.values[0].value;
        assert!((got - expected).abs() < 1e-9, "{query}: {got}");
    }
    let err = SqlSource::new(&db.url, "SELECT 'a', now()")
        .read(period, window)
        .await
        .expect_err("a timestamp is not a figure")
        .to_string();
    assert!(
        err.contains("row 1") && err.contains("TIMESTAMPTZ"),
        "{err}"
    );
    let err = SqlSource::new(&db.url, "SELECT 'a', 1 FROM no_such_table")
        .read(period, window)
        .await
        .expect_err("bad query")
        .to_string();
    assert!(
        err.contains("query for period 201909") && err.contains("no_such_table"),
        "{err}"
    );
}
