//! Upgrades: a database made by the first release (migration 0001 only, rows written as that
//! release wrote them) is opened by this build, which applies every later migration at start.
//! The old rows must still read back whole, analytics must see them, and new writes must work.
//!
//! Written for whatever migrations exist: the first release's schema is rebuilt from the
//! `0001_*.sql` files themselves, the later ones are whatever `tonghop::store::open` embeds,
//! so adding `0002_*.sql` needs no change here. Released migrations must never change (sqlx
//! refuses to start on a database whose applied migration has another checksum): the digest of
//! each released file is pinned below.

mod common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Backend, TestDb, set_value, valid_report};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tonghop::domain::{
    Catalog, Checked, ReceiptStatus, ReportDraft, UnitTree, ValidationLimits, period::date,
    validation,
};
use tonghop::query::QueryService;
use tonghop::store::{self, NewRevision, Recorded, StoreOptions};

/// Migrations shipped in a release, by (dialect folder, file name), with the SHA-256 of the
/// file as released. Add a line when a release ships a new migration; never edit one.
const RELEASED: &[(&str, &str, &str)] = &[
    (
        "sqlite",
        "0001_reports.sql",
        "3e13fee8f526afdb81f6d91e2bd64647b0d939f4166f1422cb8a39e24b2f6bb4",
    ),
    (
        "postgres",
        "0001_reports.sql",
        "56eeee7bb9190c1511e5e1f97ea82935642a29413dca7a011d79e13b6781508c",
    ),
    (
        "sqlite",
        "0002_reviews.sql",
        "aaaf554563dd4aeb18019933025776dd52a6308060026cf7f20dbc785d0732f2",
    ),
    (
        "postgres",
        "0002_reviews.sql",
        "f31846d8b07c4b5d42af198048453cf6a19a81479d17395b0c265481a47b543b",
    ),
    (
        "sqlite",
        "0003_values_without_foreign_key.sql",
        "8e4be94880fc33306f4cebf65fac3f5442bdd8412f9d47fdc16c5b77f08bcd60",
    ),
    (
        "postgres",
        "0003_values_without_foreign_key.sql",
        "3598a4e7103335d9915e30c4ff9adde134997eba5f3c4831fb428991f99c70a6",
    ),
];

fn dialect(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn migrations_dir(backend: Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/migrations")
        .join(dialect(backend))
}

/// (version, file name) of every migration of a backend, in version order.
fn migrations(backend: Backend) -> Vec<(i64, String)> {
    let mut found: Vec<(i64, String)> = std::fs::read_dir(migrations_dir(backend))
        .expect("migrations folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let version = name
                .split_once('_')
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or_else(|| panic!("migration {name} is not named <version>_<name>.sql"));
            (version, name)
        })
        .collect();
    found.sort();
    found
}

/// A folder holding the migrations of `backend` up to `version`: what that release shipped.
fn migrations_up_to(backend: Backend, version: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (v, name) in migrations(backend) {
        if v <= version {
            std::fs::copy(migrations_dir(backend).join(&name), dir.path().join(&name))
                .expect("copy migration");
        }
    }
    dir
}

fn check(draft: &ReportDraft) -> Checked {
    validation::validate(
        draft,
        &Catalog::embedded().expect("catalog"),
        &UnitTree::example().expect("units"),
        &ValidationLimits::default(),
        date(2026, 1, 1),
    )
    .expect("test report is valid")
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2019, 9, day, hour, 0, 0)
        .single()
        .expect("valid time")
}

/// A revision as the first release stored it: its `submissions` row and its values.
struct OldRevision {
    checked: Checked,
    received_at: DateTime<Utc>,
    warnings: Vec<String>,
}

impl OldRevision {
    fn new(draft: ReportDraft, received_at: DateTime<Utc>, warnings: &[&str]) -> Self {
        OldRevision {
            checked: check(&draft),
            received_at,
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn on_time(&self) -> bool {
        self.received_at <= self.checked.deadline
    }
}

/// What the first release wrote, as it wrote it: the statements of its `Store::record`, one
/// transaction per revision, binding the same Rust types (so the same encodings: RFC 3339 text
/// in SQLite, timestamptz in PostgreSQL). Deliberately a copy, not the current store code:
/// the point is to keep the old writer fixed while the schema moves on.
macro_rules! write_as_first_release {
    ($pool:expr, $old:expr) => {{
        let old: &OldRevision = $old;
        let r = &old.checked.report;
        let mut tx = $pool.begin().await.expect("begin");
        let (revision,): (i64,) = sqlx::query_as(
            "INSERT INTO current_reports (unit_code, data_set, period, revision, seq) \
             VALUES ($1, $2, $3, 1, 0) ON CONFLICT (unit_code, data_set, period) \
             DO UPDATE SET revision = current_reports.revision + 1 RETURNING revision",
        )
        .bind(r.unit.to_string())
        .bind(r.data_set.to_string())
        .bind(r.period.to_string())
        .fetch_one(&mut *tx)
        .await
        .expect("next revision");
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO submissions (submission_id, unit_code, data_set, period, revision, \
             content_hash, prepared_by, client_time, received_at, deadline, on_time, \
             window_start, window_end, results, shortcomings, proposals, warnings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING seq",
        )
        .bind(r.submission_id.to_string())
        .bind(r.unit.to_string())
        .bind(r.data_set.to_string())
        .bind(r.period.to_string())
        .bind(revision)
        .bind(r.content_hash())
        .bind(r.prepared_by.clone())
        .bind(r.client_time)
        .bind(old.received_at)
        .bind(old.checked.deadline)
        .bind(old.on_time())
        .bind::<NaiveDate>(old.checked.window.start)
        .bind::<NaiveDate>(old.checked.window.end)
        .bind(r.narrative.results.clone())
        .bind(r.narrative.shortcomings.clone())
        .bind(r.narrative.proposals.clone())
        .bind(serde_json::to_string(&old.warnings).expect("json"))
        .fetch_one(&mut *tx)
        .await
        .expect("insert submission");
        for v in &r.values {
            sqlx::query(
                "INSERT INTO submission_values (seq, indicator, value, comment) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(seq)
            .bind(v.indicator.to_string())
            .bind(v.value)
            .bind(v.comment.clone())
            .execute(&mut *tx)
            .await
            .expect("insert value");
        }
        sqlx::query(
            "UPDATE current_reports SET seq = $1 \
             WHERE unit_code = $2 AND data_set = $3 AND period = $4",
        )
        .bind(seq)
        .bind(r.unit.to_string())
        .bind(r.data_set.to_string())
        .bind(r.period.to_string())
        .execute(&mut *tx)
        .await
        .expect("point current");
        tx.commit().await.expect("commit");
        (seq, revision)
    }};
}

/// The first release's data: BS01 September with a correction, BS02 September, BS03 August
/// with a value comment, a client time and a warning.
fn first_release_data() -> Vec<OldRevision> {
    let mut bs01 = valid_report("v1-BS01-201909", "BS01", "201909");
    set_value(&mut bs01, "tiep_cong_dan", 3.0);
    let mut bs01_fix = valid_report("v1-BS01-201909-fix", "BS01", "201909");
    set_value(&mut bs01_fix, "tiep_cong_dan", 7.0);
    let bs02 = valid_report("v1-BS02-201909", "BS02", "201909");
    let mut bs03 = valid_report("v1-BS03-201908", "BS03", "201908");
    bs03.values[0].comment = "hai buổi, có biên bản".into();
    bs03.client_time = Some(at(1, 8));
    vec![
        OldRevision::new(bs01, at(16, 3), &[]),
        OldRevision::new(bs01_fix, at(25, 9), &["sent after the deadline"]),
        OldRevision::new(bs02, at(17, 4), &[]),
        OldRevision::new(bs03, at(2, 10), &["a warning from release 1"]),
    ]
}

/// Creates the database as the first release left it: migration 0001 applied by sqlx (so its
/// `_sqlx_migrations` row is the one that release recorded), then its rows.
async fn create_at_first_release(db: &TestDb, backend: Backend, data: &[OldRevision]) {
    let first = migrations_up_to(backend, 1);
    let migrator = sqlx::migrate::Migrator::new(first.path())
        .await
        .expect("read the first migration");
    assert_eq!(
        migrator.iter().map(|m| m.version).collect::<Vec<_>>(),
        [1],
        "the first release shipped migration 0001 alone"
    );
    match backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .expect("sqlite url")
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("create the SQLite file");
            migrator.run(&pool).await.expect("migration 0001");
            for (n, old) in data.iter().enumerate() {
                assert_eq!(write_as_first_release!(pool, old).0, n as i64 + 1);
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&db.url)
                .await
                .expect("connect");
            migrator.run(&pool).await.expect("migration 0001");
            for (n, old) in data.iter().enumerate() {
                assert_eq!(write_as_first_release!(pool, old).0, n as i64 + 1);
            }
            pool.close().await;
        }
    }
}

/// (version, success) of every migration recorded in the database.
async fn applied(db: &TestDb, backend: Backend) -> Vec<(i64, bool)> {
    let sql = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("connect");
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("read");
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("read");
            pool.close().await;
            rows
        }
    }
}

fn new_revision(checked: &Checked, received_at: DateTime<Utc>) -> NewRevision {
    NewRevision {
        warnings: Vec::new(),
        ..NewRevision::received(checked.clone(), received_at)
    }
}

async fn first_release_database_upgrades_in_place(backend: Backend) {
    common::init_test_log();
    let db = TestDb::new(backend).await;
    let data = first_release_data();
    create_at_first_release(&db, backend, &data).await;
    assert_eq!(applied(&db, backend).await, [(1, true)]);

    // This build opens it: every later migration runs now.
    let store = store::open(&db.url, &StoreOptions::default())
        .await
        .expect("the first release's database opens and migrates");
    let expected: Vec<(i64, bool)> = migrations(backend)
        .into_iter()
        .map(|(v, _)| (v, true))
        .collect();
    assert_eq!(
        applied(&db, backend).await,
        expected,
        "every migration of this build is applied, in order"
    );

    // The old rows read back whole: every field of every revision.
    assert_eq!(store.change_counter().await.expect("counter"), 4);
    let bs01 = store
        .revisions("BS01", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    assert_eq!(bs01.len(), 2);
    for (stored, old) in bs01.iter().zip(&data[..2]) {
        assert_eq!(stored.report, old.checked.report);
        assert_eq!(stored.received_at, old.received_at);
        assert_eq!(stored.deadline, old.checked.deadline);
        assert_eq!(stored.window, old.checked.window);
        assert_eq!(stored.on_time, old.on_time());
        assert_eq!(stored.warnings, old.warnings);
        assert_eq!(stored.content_hash, old.checked.report.content_hash());
    }
    assert_eq!(bs01.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);
    let bs03 = store
        .latest("BS03", "DVCQ_THANG", "201908")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        bs03.report, data[3].checked.report,
        "comment and client time"
    );

    // Analytics load the old rows: latest revisions only, first arrival for timeliness.
    let catalog = Arc::new(Catalog::embedded().expect("catalog"));
    let units = Arc::new(UnitTree::example().expect("units"));
    let query = QueryService::load(store.clone(), catalog.clone(), units.clone())
        .await
        .expect("read model loads");
    let september = tonghop::analytics::Scope {
        data_set: "DVCQ_THANG".into(),
        period: tonghop::domain::PeriodId::parse("201909").expect("period"),
        node: "BS".into(),
        indicators: Vec::new(),
    };
    let table = query
        .indicators(september.clone())
        .await
        .expect("indicators");
    let total = table.total("tiep_cong_dan").expect("total");
    // BS01's correction (7) + BS02 (2, valid_report's figure).
    assert_eq!(total.value, Some(9.0));
    assert_eq!(total.reports_received, 2);

    // New writes: a resend of an old submission is recognised, another content under its id
    // is refused, a new revision continues the old numbering, a new report starts at 1.
    let old = &data[2].checked;
    match store
        .record(new_revision(old, at(30, 1)))
        .await
        .expect("resend")
    {
        Recorded::Duplicate(receipt) => {
            assert_eq!(receipt.revision, 1);
            assert_eq!(
                receipt.received_at, data[2].received_at,
                "the original receipt"
            );
        }
        other => panic!("a resend of an old submission is a duplicate: {other:?}"),
    }
    let mut changed = valid_report("v1-BS02-201909", "BS02", "201909");
    set_value(&mut changed, "tiep_cong_dan", 11.0);
    assert!(matches!(
        store
            .record(new_revision(&check(&changed), at(30, 2)))
            .await
            .expect("conflict"),
        Recorded::Conflict {
            existing_revision: 1,
            ..
        }
    ));
    let mut bs02_fix = valid_report("v2-BS02-201909-fix", "BS02", "201909");
    set_value(&mut bs02_fix, "tiep_cong_dan", 5.0);
    let Recorded::Stored(receipt) = store
        .record(new_revision(&check(&bs02_fix), at(30, 3)))
        .await
        .expect("record")
    else {
        panic!("stored");
    };
    assert_eq!(
        (receipt.revision, receipt.status),
        (2, ReceiptStatus::Revision)
    );
    let bs04 = check(&valid_report("v2-BS04-201909", "BS04", "201909"));
    let Recorded::Stored(receipt) = store
        .record(new_revision(&bs04, at(30, 4)))
        .await
        .expect("record")
    else {
        panic!("stored");
    };
    assert_eq!((receipt.revision, receipt.status), (1, ReceiptStatus::New));
    assert_eq!(store.change_counter().await.expect("counter"), 6);
    let table = query.indicators(september).await.expect("indicators");
    let total = table.total("tiep_cong_dan").expect("total");
    // BS01 7 + BS02's new revision 5 + BS04 2.
    assert_eq!(total.value, Some(14.0));
    assert_eq!(total.reports_received, 3);
    let dump = store.dump().await.expect("dump");
    store.close().await;

    // Opening again runs nothing and changes nothing.
    let store = store::open(&db.url, &StoreOptions::default())
        .await
        .expect("opens again");
    assert_eq!(store.dump().await.expect("dump"), dump);
    assert_eq!(applied(&db, backend).await, expected);
    store.close().await;
}

#[tokio::test]
async fn sqlite_first_release_database_upgrades_in_place() {
    first_release_database_upgrades_in_place(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_first_release_database_upgrades_in_place() {
    first_release_database_upgrades_in_place(Backend::Postgres).await;
}

/// Both backends move together (a migration for one and not the other would leave the
/// PostgreSQL province and the SQLite district trial on different schemas), versions are
/// unique, and the first is 0001.
#[test]
fn both_backends_have_the_same_migration_versions() {
    let versions = |b| {
        migrations(b)
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>()
    };
    let sqlite = versions(Backend::Sqlite);
    assert_eq!(sqlite.first(), Some(&1), "{sqlite:?}");
    assert!(sqlite.windows(2).all(|w| w[0] < w[1]), "unique: {sqlite:?}");
    assert_eq!(sqlite, versions(Backend::Postgres));
}

/// A released migration is never edited: a province's database recorded its checksum, and
/// sqlx refuses to start when the file it embeds differs. Change the schema with a new file.
#[test]
fn released_migrations_are_unchanged() {
    for (folder, name, digest) in RELEASED {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/store/migrations")
            .join(folder)
            .join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{} was released and must stay: {e}", path.display()));
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            *digest,
            "{} was released; add a new migration instead of editing it",
            path.display()
        );
    }
}
