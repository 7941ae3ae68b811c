//! Shared test harness: a real aggregator on a real socket (port 0), over a real SQLite file or
//! a PostgreSQL database of its own, created for the test and dropped after it; `serve` starts
//! the built binary as a process of its own instead.
#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod serve;

use std::sync::Arc;
use tonghop::config::Settings;
use tonghop::domain::{DraftValue, Narrative, ReportDraft};
use tonghop::grpc::client::AggregatorClient;
use tonghop::grpc::{Application, ServerHandle, ServerOptions};
use tonghop::ingest::Clock;
use tonghop::store::{Store, StoredRevision};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Admin connection for creating per-test databases; override with TONGHOP_TEST_PG_URL.
pub fn pg_admin_url() -> String {
    std::env::var("TONGHOP_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,h2=warn,tower=warn,hyper=warn,sqlx=warn")
            .with_test_writer()
            .try_init();
    }
}

/// A database that exists for one test only.
pub struct TestDb {
    pub url: String,
    /// The SQLite file, for byte-level comparisons.
    pub sqlite_path: Option<std::path::PathBuf>,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("tonghop.db");
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let name = format!("tonghop_test_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is needed for this test and is not reachable at {admin}: {e}. \
                         Start it (bash .ci/run does) or set TONGHOP_TEST_PG_URL."
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    sqlite_path: None,
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// SHA-256 of the SQLite database file and its WAL, if any, once every committed page is
    /// in the database file. The store copies its WAL into the file beside the writer, a moment
    /// after each flush, which changes the file's bytes but not what it holds: copied here
    /// first (and the WAL emptied), two digests differ only if a commit came between them.
    pub fn sqlite_file_digest(&self) -> Option<String> {
        use sha2::{Digest, Sha256};
        let path = self.sqlite_path.as_ref()?;
        let db = rusqlite::Connection::open(path).expect("open the SQLite file");
        db.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy timeout");
        // The store's own checkpoint may be running, and a second one is refused at once
        // rather than made to wait: try again until this one completes.
        let mut tries = 0;
        loop {
            let busy: i64 = db
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                .expect("checkpoint");
            if busy == 0 {
                break;
            }
            tries += 1;
            assert!(tries < 1_000, "the WAL could not be checkpointed for 10 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(db);
        let mut hasher = Sha256::new();
        for suffix in ["", "-wal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(bytes) = std::fs::read(&file) {
                hasher.update(&bytes);
            }
        }
        Some(hex::encode(hasher.finalize()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Drop runs inside the test's runtime; a fresh thread with its own runtime can block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub server: ServerHandle,
    pub store: Arc<dyn Store>,
    pub db: TestDb,
    pub endpoint: String,
}

impl TestApp {
    pub async fn client(&self) -> AggregatorClient {
        AggregatorClient::connect(&self.endpoint)
            .await
            .expect("connect to test server")
    }

    /// The latest stored revision of a report, read straight from the store: what a test
    /// checks after a submit was acknowledged. Panics, naming the report, if there is none.
    pub async fn stored(&self, unit: &str, data_set: &str, period: &str) -> StoredRevision {
        self.store
            .latest(unit, data_set, period)
            .await
            .unwrap_or_else(|e| panic!("read {unit}/{data_set}/{period}: {e}"))
            .unwrap_or_else(|| panic!("{unit}/{data_set}/{period} is stored"))
    }

    pub async fn stop(self) {
        self.server.shutdown().await.expect("clean shutdown");
        self.store.close().await;
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s, None).await
}

/// An aggregator with adjusted settings and, optionally, a fixed clock (plaintext).
pub async fn spawn_app_with(
    backend: Backend,
    adjust: impl FnOnce(Settings) -> Settings,
    clock: Option<Clock>,
) -> TestApp {
    spawn_app_secured(backend, adjust, clock, None).await
}

/// An aggregator with the given transport security (mutual TLS, policy, rate limit).
pub async fn spawn_app_secured(
    backend: Backend,
    adjust: impl FnOnce(Settings) -> Settings,
    clock: Option<Clock>,
    security: Option<ServerOptions>,
) -> TestApp {
    init_test_log();
    let db = TestDb::new(backend).await;
    let settings = adjust(Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: db.url.clone(),
        ..Settings::default()
    });
    let mut ingestor = tonghop::aggregator::ingestor(&settings)
        .await
        .expect("aggregator starts");
    if let Some(clock) = clock {
        ingestor = ingestor.with_clock(clock);
    }
    let store = ingestor.store().clone();
    let query = tonghop::aggregator::query_service(&ingestor)
        .await
        .expect("read model loads");
    let options = ServerOptions {
        max_message_bytes: settings.max_message_bytes,
        ..security.unwrap_or_else(ServerOptions::insecure)
    };
    let server = Application::bind(settings.listen, ingestor, query, options)
        .await
        .expect("bind")
        .spawn()
        .expect("spawn");
    let endpoint = server.endpoint();
    TestApp {
        server,
        store,
        db,
        endpoint,
    }
}

/// A complete, valid monthly report of district `unit` for `period` (figures from the seeds:
/// Chợ Đồn's September 2019 and the one-stop-shop totals).
pub fn valid_report(submission_id: &str, unit: &str, period: &str) -> ReportDraft {
    let values = [
        ("tiep_cong_dan", 2.0),
        ("don_tiep_nhan", 5.0),
        ("vu_viec_tiep_nhan", 4.0),
        ("don_thuoc_tham_quyen", 3.0),
        ("vu_viec_thuoc_tham_quyen", 2.0),
        ("don_chuyen", 2.0),
        ("vu_viec_chuyen", 2.0),
        ("hs_tiep_nhan", 2634.0),
        ("hs_giai_quyet", 2588.0),
        ("hs_dung_han", 2512.0),
        ("hoi_nghi_tuyen_truyen", 1.0),
        ("nguoi_tham_du", 117.0),
        ("tai_lieu_phat_hanh", 374.0),
        ("mo_hinh_dang_ky", 110.0),
        ("mo_hinh_dang_ky_tap_the", 74.0),
        ("mo_hinh_dang_ky_ca_nhan", 36.0),
        ("mo_hinh_cong_nhan", 31.0),
        ("mo_hinh_tieu_bieu", 13.0),
        ("von_huy_dong", 35_000_000_000.0),
        ("dat_hien", 32_000.5),
        ("tro_giup_phap_ly", 811.0),
    ];
    ReportDraft {
        submission_id: submission_id.into(),
        unit_code: unit.into(),
        data_set: "DVCQ_THANG".into(),
        period: period.into(),
        values: values
            .iter()
            .map(|(indicator, value)| DraftValue {
                indicator: (*indicator).into(),
                value: *value,
                comment: String::new(),
            })
            .collect(),
        narrative: Narrative {
            results: "Tổ chức 02 buổi tiếp công dân định kỳ.".into(),
            shortcomings: "Một số hồ sơ còn trễ hạn.".into(),
            proposals: "Đề nghị tăng cường tập huấn.".into(),
        },
        prepared_by: "Nguyễn Văn An".into(),
        client_time: None,
    }
}

/// Sets one value of a draft (adding it if absent).
pub fn set_value(draft: &mut ReportDraft, indicator: &str, value: f64) {
    match draft.values.iter_mut().find(|v| v.indicator == indicator) {
        Some(v) => v.value = value,
        None => draft.values.push(DraftValue {
            indicator: indicator.into(),
            value,
            comment: String::new(),
        }),
    }
}

/// What a rejected input must leave untouched: the whole dump, the database file's bytes and
/// the change counter (SQLite backend).
#[derive(Debug, PartialEq)]
pub struct StoreState {
    pub dump: String,
    pub file_digest: String,
    pub change_counter: i64,
}

pub async fn store_state(app: &TestApp) -> StoreState {
    StoreState {
        dump: app.store.dump().await.expect("dump the store"),
        file_digest: app
            .db
            .sqlite_file_digest()
            .expect("the SQLite backend has a database file"),
        change_counter: app
            .store
            .change_counter()
            .await
            .expect("read the change counter"),
    }
}
