//! Outbox tests: durability across reopening, superseding, rejection and re-queueing.

use super::*;
use crate::domain::{DateWindow, DraftValue, Narrative, ReceiptStatus, SubmissionId, period::date};

fn draft(period: &str, value: f64) -> ReportDraft {
    ReportDraft {
        submission_id: String::new(),
        unit_code: "BS03".into(),
        data_set: "DVCQ_THANG".into(),
        period: period.into(),
        values: vec![DraftValue {
            indicator: "tiep_cong_dan".into(),
            value,
            comment: String::new(),
        }],
        narrative: Narrative::default(),
        prepared_by: "Nguyễn Văn An".into(),
        client_time: None,
    }
}

fn receipt(id: &str, revision: u32) -> Receipt {
    Receipt {
        submission_id: SubmissionId::parse(id).expect("valid id"),
        revision,
        status: ReceiptStatus::New,
        received_at: Utc::now(),
        deadline: Utc::now(),
        on_time: true,
        warnings: vec!["late data".into()],
        window: DateWindow {
            start: date(2019, 8, 15),
            end: date(2019, 9, 14),
        },
    }
}

#[tokio::test]
async fn entries_survive_reopening_and_corrections_supersede_queued_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/outbox.db");
    let now = Utc::now();
    let outbox = Outbox::open(&path, "BS03").await.expect("opens");
    let first = outbox
        .enqueue(
            &draft("201909", 2.0),
            &content_hash(&draft("201909", 2.0)),
            "a.csv",
            now,
        )
        .await
        .expect("enqueue");
    assert!(first.submission_id.starts_with("BS03-DVCQ_THANG-201909-"));
    assert_eq!(first.state, EntryState::Queued);
    let second = outbox
        .enqueue(
            &draft("201909", 3.0),
            &content_hash(&draft("201909", 3.0)),
            "a.csv",
            now,
        )
        .await
        .expect("enqueue");
    assert_ne!(first.submission_id, second.submission_id);
    outbox.close().await;

    let outbox = Outbox::open(&path, "BS03").await.expect("reopens");
    let history = outbox.history("DVCQ_THANG", "201909").await.expect("reads");
    let states: Vec<_> = history.iter().map(|e| e.state).collect();
    assert_eq!(states, [EntryState::Superseded, EntryState::Queued]);
    assert_eq!(history[1].draft.values[0].value, 3.0);

    outbox
        .mark_sent(second.id, &receipt(&second.submission_id, 1), now)
        .await
        .expect("mark");
    // The first content again, after other content: a new id, not the first one's.
    let third = outbox
        .enqueue(
            &draft("201909", 2.0),
            &content_hash(&draft("201909", 2.0)),
            "a.csv",
            now,
        )
        .await
        .expect("enqueue");
    assert_eq!(third.submission_id, format!("{}-2", first.submission_id));
    let sent = outbox.get(second.id).await.expect("get").expect("exists");
    assert_eq!(sent.state, EntryState::Sent);
    assert_eq!(sent.sent.as_ref().map(|s| s.revision), Some(1));
    assert_eq!(outbox.counts().await.expect("counts"), [1, 1, 0, 1]);
    outbox.close().await;
}

#[tokio::test]
async fn rejection_keeps_its_violations_and_requeue_can_change_the_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&dir.path().join("o.db"), "BS03")
        .await
        .expect("opens");
    let now = Utc::now();
    let e = outbox
        .enqueue(
            &draft("201909", 2.0),
            &content_hash(&draft("201909", 2.0)),
            "x",
            now,
        )
        .await
        .expect("enqueue");
    let rejection = Rejection {
        code: "InvalidArgument".into(),
        message: "report rejected: 1 problem(s)".into(),
        violations: vec![Violation {
            field: "values.hs_dung_han".into(),
            value: "9".into(),
            rule: "consistency.x".into(),
            description: "on time ≤ resolved".into(),
        }],
    };
    outbox
        .mark_rejected(e.id, &rejection, now)
        .await
        .expect("mark");
    assert!(outbox.due(now, 10).await.expect("due").is_empty());
    let got = outbox
        .find(&e.submission_id)
        .await
        .expect("find")
        .expect("some");
    assert_eq!(got.rejection, Some(rejection));
    assert!(
        outbox
            .requeue(e.id, Some("fresh-id"), now)
            .await
            .expect("requeue")
    );
    let got = outbox.find("fresh-id").await.expect("find").expect("some");
    assert_eq!(got.state, EntryState::Queued);
    assert_eq!(outbox.due(now, 10).await.expect("due").len(), 1);
    outbox.close().await;

    let other = Outbox::open(&dir.path().join("o.db"), "BS04").await;
    assert!(matches!(other, Err(OutboxError::OtherUnit { .. })));
}

#[test]
fn content_hash_ignores_order_id_and_time() {
    let mut a = draft("201909", 2.0);
    a.values.push(DraftValue {
        indicator: "don_tiep_nhan".into(),
        value: 5.0,
        comment: String::new(),
    });
    let mut b = a.clone();
    b.values.reverse();
    b.submission_id = "other".into();
    b.client_time = Some(Utc::now());
    assert_eq!(content_hash(&a), content_hash(&b));
    b.values[0].value = 6.0;
    assert_ne!(content_hash(&a), content_hash(&b));
}
