//! One storage suite, run against both backends: every test below exists twice, once on a
//! SQLite file and once on a PostgreSQL database of its own.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{Backend, TestDb, set_value, valid_report};
use std::sync::Arc;
use tonghop::domain::{
    Catalog, Checked, ReceiptStatus, ReportDraft, UnitTree, ValidationLimits, period::date,
    validation,
};
use tonghop::store::{self, NewRevision, Recorded, Store, StoreOptions};

async fn open(db: &TestDb) -> Arc<dyn Store> {
    store::open(&db.url, &StoreOptions::default())
        .await
        .expect("store opens and migrates")
}

fn check(draft: &ReportDraft) -> Checked {
    let catalog = Catalog::embedded().expect("catalog");
    let units = UnitTree::example().expect("units");
    validation::validate(
        draft,
        &catalog,
        &units,
        &ValidationLimits::default(),
        date(2026, 1, 1),
    )
    .expect("test report is valid")
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2019, 9, 16, 3, 4, 5)
        .single()
        .expect("valid time")
}

fn new_revision(checked: &Checked) -> NewRevision {
    NewRevision {
        warnings: vec!["a warning".into()],
        ..NewRevision::received(checked.clone(), received())
    }
}

async fn first_revision_is_new_and_reads_back_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    assert_eq!(store.change_counter().await.expect("counter"), 0);
    let mut draft = valid_report("s-1", "BS03", "201909");
    draft.values[0].comment = "hai buổi, có ghi biên bản".into();
    draft.narrative.results = "Dòng một\nDòng hai".into();
    draft.client_time = Some(
        Utc.with_ymd_and_hms(2019, 9, 15, 8, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::microseconds(123_456),
    );
    let checked = check(&draft);
    let Recorded::Stored(receipt) = store.record(new_revision(&checked)).await.expect("record")
    else {
        panic!("a first submission is stored");
    };
    assert_eq!(receipt.revision, 1);
    assert_eq!(receipt.status, ReceiptStatus::New);
    assert!(receipt.on_time, "16 Sep is before the 19 Sep deadline");
    assert_eq!(store.change_counter().await.expect("counter"), 1);

    let latest = store
        .latest("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        latest.report, checked.report,
        "every field reads back as written"
    );
    assert_eq!(latest.revision, 1);
    assert_eq!(latest.received_at, received());
    assert_eq!(latest.window, checked.window);
    assert_eq!(latest.warnings, vec!["a warning".to_string()]);
    assert_eq!(latest.report.value("von_huy_dong"), Some(35_000_000_000.0));
    assert_eq!(latest.report.value("dat_hien"), Some(32_000.5));
    assert!(
        store
            .latest("BS03", "DVCQ_THANG", "201908")
            .await
            .expect("read")
            .is_none()
    );
    store.close().await;
}

async fn same_id_same_content_is_a_duplicate_and_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let checked = check(&valid_report("s-1", "BS03", "201909"));
    let Recorded::Stored(original) = store.record(new_revision(&checked)).await.expect("first")
    else {
        panic!("stored");
    };
    let before = store.dump().await.expect("dump");
    // A retry after a lost acknowledgement arrives later; its own arrival time is irrelevant.
    let mut retry = new_revision(&checked);
    retry.received_at = received() + chrono::Duration::hours(5);
    let Recorded::Duplicate(again) = store.record(retry).await.expect("second") else {
        panic!("same id, same content is a duplicate");
    };
    assert_eq!(again.status, ReceiptStatus::Duplicate);
    assert_eq!(again.revision, original.revision);
    assert_eq!(
        again.received_at, original.received_at,
        "the original receipt"
    );
    assert_eq!(again.deadline, original.deadline);
    assert_eq!(store.dump().await.expect("dump"), before, "nothing written");
    store.close().await;
}

async fn same_id_other_content_is_a_conflict(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let checked = check(&valid_report("s-1", "BS03", "201909"));
    store.record(new_revision(&checked)).await.expect("first");
    let before = store.dump().await.expect("dump");
    let mut changed = valid_report("s-1", "BS03", "201909");
    set_value(&mut changed, "tiep_cong_dan", 3.0);
    let changed = check(&changed);
    match store.record(new_revision(&changed)).await.expect("second") {
        Recorded::Conflict {
            existing_revision,
            existing_hash,
        } => {
            assert_eq!(existing_revision, 1);
            assert_eq!(existing_hash, checked.report.content_hash());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.dump().await.expect("dump"), before, "nothing written");
    store.close().await;
}

async fn a_new_submission_is_a_new_revision_and_all_are_kept(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let first = check(&valid_report("s-1", "BS03", "201909"));
    store.record(new_revision(&first)).await.expect("first");
    let mut corrected = valid_report("s-2", "BS03", "201909");
    set_value(&mut corrected, "hs_dung_han", 2500.0);
    let corrected = check(&corrected);
    let Recorded::Stored(receipt) = store.record(new_revision(&corrected)).await.expect("2nd")
    else {
        panic!("stored");
    };
    assert_eq!(
        (receipt.revision, receipt.status),
        (2, ReceiptStatus::Revision)
    );
    let latest = store
        .latest("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(latest.revision, 2);
    assert_eq!(latest.report.value("hs_dung_han"), Some(2500.0));
    let all = store
        .revisions("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    let summary: Vec<(u32, &str, Option<f64>)> = all
        .iter()
        .map(|r| {
            (
                r.revision,
                r.report.submission_id.as_str(),
                r.report.value("hs_dung_han"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(1, "s-1", Some(2512.0)), (2, "s-2", Some(2500.0))],
        "the first revision is kept unchanged"
    );
    assert_eq!(store.change_counter().await.expect("counter"), 2);
    store.close().await;
}

async fn racing_identical_submissions_store_one_revision(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let checked = Arc::new(check(&valid_report("s-race", "BS03", "201909")));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let checked = checked.clone();
        tasks.push(tokio::spawn(async move {
            store.record(new_revision(&checked)).await
        }));
    }
    let (mut stored, mut duplicates) = (0, 0);
    for task in tasks {
        match task.await.expect("task").expect("record") {
            Recorded::Stored(_) => stored += 1,
            Recorded::Duplicate(r) => {
                assert_eq!(r.revision, 1);
                duplicates += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((stored, duplicates), (1, 7));
    let all = store
        .revisions("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    assert_eq!(all.len(), 1, "one revision, however the race went");
    store.close().await;
}

async fn racing_revisions_get_distinct_gapless_numbers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut draft = valid_report(&format!("s-{i}"), "BS03", "201909");
            set_value(&mut draft, "tiep_cong_dan", f64::from(i));
            let checked = check(&draft);
            store.record(new_revision(&checked)).await
        }));
    }
    // Submission s-i carries tiep_cong_dan = i, so each revision can be traced to its sender.
    let mut revisions = Vec::new();
    let mut sender_of_last = None;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("task").expect("record") {
            Recorded::Stored(r) => {
                if r.revision == 8 {
                    sender_of_last = Some(i as f64);
                }
                revisions.push(r.revision);
            }
            other => panic!("each submission is new: {other:?}"),
        }
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=8).collect::<Vec<u32>>());
    let latest = store
        .latest("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(latest.revision, 8, "reads see the highest revision");
    let value = latest
        .report
        .values
        .iter()
        .find(|v| v.indicator.as_str() == "tiep_cong_dan")
        .map(|v| v.value);
    assert_eq!(
        value, sender_of_last,
        "the current report is the one whose receipt said revision 8"
    );
    store.close().await;
}

async fn many_units_at_once_lose_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let units: Vec<String> = (1..=10).map(|i| format!("BS{i:02}")).collect();
    let mut tasks = Vec::new();
    for unit in &units {
        for month in 1..=6 {
            let store = store.clone();
            let unit = unit.clone();
            tasks.push(tokio::spawn(async move {
                let period = format!("2019{month:02}");
                let draft = valid_report(&format!("{unit}-{period}"), &unit, &period);
                let checked = check(&draft);
                store.record(new_revision(&checked)).await
            }));
        }
    }
    for task in tasks {
        assert!(matches!(
            task.await.expect("task").expect("record"),
            Recorded::Stored(_)
        ));
    }
    // 10 units × 6 months = 60 revisions, each the first of its report.
    assert_eq!(store.change_counter().await.expect("counter"), 60);
    for unit in &units {
        for month in 1..=6 {
            let latest = store
                .latest(unit, "DVCQ_THANG", &format!("2019{month:02}"))
                .await
                .expect("read")
                .expect("present");
            assert_eq!(latest.revision, 1);
        }
    }
    store.close().await;
}

/// Group commit (both backends) writes reports that arrive together in one transaction. A
/// report the store itself refuses (its values name one indicator twice: validation would catch
/// that, the values' primary key does too) must fail alone: the others are stored, and it
/// leaves no row.
async fn a_failing_report_does_not_take_its_group_down(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let mut bad = check(&valid_report("bad-1", "BS05", "201909"));
    let repeated = bad.report.values[0].clone();
    bad.report.values.push(repeated);
    let mut tasks = Vec::new();
    // Spawned before any runs, so the writer finds them all queued: 12 good, the bad one 7th.
    for month in 1..=12 {
        let store = store.clone();
        let bad = bad.clone();
        tasks.push(tokio::spawn(async move {
            if month == 7 {
                let outcome = store.record(new_revision(&bad)).await;
                assert!(
                    outcome.is_err(),
                    "the repeated indicator is refused: {outcome:?}"
                );
                return;
            }
            let period = format!("2019{month:02}");
            let checked = check(&valid_report(&format!("good-{month}"), "BS01", &period));
            let outcome = store.record(new_revision(&checked)).await;
            assert!(
                matches!(outcome, Ok(Recorded::Stored(_))),
                "month {month}: {outcome:?}"
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    for month in (1..=12).filter(|m| *m != 7) {
        let latest = store
            .latest("BS01", "DVCQ_THANG", &format!("2019{month:02}"))
            .await
            .expect("read")
            .expect("a good report of the group is stored");
        assert_eq!(latest.revision, 1);
    }
    assert!(
        store
            .latest("BS05", "DVCQ_THANG", "201909")
            .await
            .expect("read")
            .is_none()
    );
    let dump = store.dump().await.expect("dump");
    assert!(
        !dump.contains("bad-1"),
        "no row of the refused report: {dump}"
    );
    assert!(
        !dump.contains("BS05"),
        "not even its current_reports row: {dump}"
    );
    store.close().await;
}

/// Two stores on one database, as two aggregator processes are: each has its own group
/// committer, so their groups race. 16 revisions of one report go 8 through each store, and
/// every one is also resent through the other store at the same moment (a client retrying
/// elsewhere after a lost answer). Whatever the interleaving: 16 revisions numbered 1..=16,
/// each submission id stored once, each resend answered with its original's revision.
/// PostgreSQL only: it is the store several processes share (one SQLite file has one
/// aggregator process).
#[tokio::test]
async fn two_stores_on_one_postgres_database_number_revisions_without_gaps() {
    let db = TestDb::new(Backend::Postgres).await;
    let stores = [open(&db).await, open(&db).await];
    let mut tasks = Vec::new();
    for i in 0..16_usize {
        let mut draft = valid_report(&format!("two-{i}"), "BS03", "201909");
        set_value(&mut draft, "tiep_cong_dan", i as f64);
        let checked = Arc::new(check(&draft));
        for through in [i % 2, (i + 1) % 2] {
            let store = stores[through].clone();
            let checked = checked.clone();
            tasks.push(tokio::spawn(async move {
                (i, store.record(new_revision(&checked)).await)
            }));
        }
    }
    // Submission i → the revision its Stored receipt and its Duplicate receipt name.
    let mut stored: Vec<Option<u32>> = vec![None; 16];
    let mut duplicated: Vec<Option<u32>> = vec![None; 16];
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        match outcome.expect("record") {
            Recorded::Stored(r) => {
                assert!(stored[i].is_none(), "two-{i} stored twice");
                stored[i] = Some(r.revision);
            }
            Recorded::Duplicate(r) => {
                assert!(duplicated[i].is_none(), "two-{i} a duplicate twice");
                duplicated[i] = Some(r.revision);
            }
            other => panic!("two-{i}: {other:?}"),
        }
    }
    assert_eq!(
        stored, duplicated,
        "each resend names its original's revision"
    );
    let mut numbers: Vec<u32> = stored
        .iter()
        .map(|r| r.expect("each stored once"))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=16).collect::<Vec<u32>>());
    let all = stores[0]
        .revisions("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read");
    assert_eq!(all.len(), 16, "one row per submission id");
    let latest = stores[1]
        .latest("BS03", "DVCQ_THANG", "201909")
        .await
        .expect("read")
        .expect("present");
    // The current report is the one whose receipt said 16; submission i carries value i.
    let sender_of_last = stored.iter().position(|r| *r == Some(16));
    let value = latest
        .report
        .values
        .iter()
        .find(|v| v.indicator.as_str() == "tiep_cong_dan")
        .map(|v| v.value as usize);
    assert_eq!((latest.revision, value), (16, sender_of_last));
    for store in stores {
        store.close().await;
    }
}

async fn reopening_runs_no_migration_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let checked = check(&valid_report("s-1", "BS03", "201909"));
    store.record(new_revision(&checked)).await.expect("record");
    let before = store.dump().await.expect("dump");
    store.close().await;
    let again = open(&db).await;
    assert_eq!(
        again.dump().await.expect("dump"),
        before,
        "data survives a restart"
    );
    again.close().await;
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    first_revision_is_new_and_reads_back_whole,
    same_id_same_content_is_a_duplicate_and_writes_nothing,
    same_id_other_content_is_a_conflict,
    a_new_submission_is_a_new_revision_and_all_are_kept,
    racing_identical_submissions_store_one_revision,
    racing_revisions_get_distinct_gapless_numbers,
    many_units_at_once_lose_nothing,
    a_failing_report_does_not_take_its_group_down,
    reopening_runs_no_migration_twice,
);
