//! SQL metacharacters and path separators in every string field: refused in codes, stored
//! verbatim in free text, and never matched as wildcards.

use super::*;

const SQL: [&str; 6] = [
    "'; DROP TABLE submissions; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "BS02\\",
    "BS02%",
    "1; DELETE FROM revisions",
];

#[tokio::test]
async fn sql_metacharacters_in_codes_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in CODE_SLOTS {
        for payload in SQL {
            n += 1;
            let case = format!("{} = {payload:?}", slot.field());
            let draft = slot.draft(n, payload.into());
            let mentions: &[&str] = match slot {
                Slot::Period => &[],
                _ => &["contains"],
            };
            target
                .refused(&case, &draft, slot.field(), slot.malformed_rule(), mentions)
                .await;
        }
    }
    // `_` is a LIKE wildcard but a legitimate character of a code: it passes the syntax check
    // and must then match nothing but itself.
    let unknown = [
        (Slot::UnitCode, "unknown_unit"),
        (Slot::DataSet, "unknown_data_set"),
        (Slot::Indicator, "unknown_indicator"),
        (Slot::Period, "period_malformed"),
    ];
    for (slot, rule) in unknown {
        n += 1;
        let case = format!("{} = \"_\"", slot.field());
        target
            .refused(&case, &slot.draft(n, "_".into()), slot.field(), rule, &[])
            .await;
    }
    target.finish().await;
}

/// A submission id `_` is valid, and must not be taken for another one-character id by a
/// lookup that treats it as a wildcard: `x` and `_` with different contents are two reports.
#[tokio::test]
async fn a_wildcard_submission_id_matches_only_itself() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let first = client
        .submit(&valid_report("x", "BS07", PERIOD))
        .await
        .expect("id x");
    assert_eq!(first.status, ReceiptStatus::New);
    let mut other = valid_report("_", "BS07", PERIOD);
    set_value(&mut other, "tiep_cong_dan", 3.0);
    let second = client.submit(&other).await.expect("id _ is another report");
    assert_eq!(
        (second.status, second.revision),
        (ReceiptStatus::Revision, 2)
    );
    assert_eq!(second.submission_id.as_str(), "_");
    let third = client
        .submit(&valid_report("%", "BS07", PERIOD))
        .await
        .expect_err("% is not a code character");
    assert_eq!(third.code, Code::InvalidArgument);
    let revisions = app
        .store
        .revisions("BS07", "DVCQ_THANG", PERIOD)
        .await
        .expect("read BS07");
    let ids: Vec<&str> = revisions
        .iter()
        .map(|r| r.report.submission_id.as_str())
        .collect();
    assert_eq!(ids, ["x", "_"]);
    app.stop().await;
}

/// Free text may say anything, quotes and semicolons included: accepted and stored verbatim,
/// which shows the SQL is parameterised. Afterwards every table is still there: earlier
/// reports are in the dump, and a further report is stored.
#[tokio::test]
async fn sql_metacharacters_in_free_text_are_stored_verbatim() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let payloads = [
        SQL[0],
        SQL[1],
        SQL[2],
        "C:\\Temp\\báo cáo\\",
        "100% hồ sơ; tỷ lệ_đúng_hạn",
        "Robert'); DROP TABLE revisions;--",
        "$1 :name ? @p0 \\x27 /* */",
    ];
    for (n, payload) in payloads.iter().enumerate() {
        let period = format!("2019{:02}", n + 1);
        let mut draft = valid_report(&format!("sql-text:{n}"), "BS08", &period);
        for slot in TEXT_SLOTS {
            slot.set(&mut draft, format!("{payload} [{}]", slot.field()));
        }
        let receipt = client
            .submit(&draft)
            .await
            .unwrap_or_else(|e| panic!("free text {payload:?} is valid: {e}"));
        assert_eq!(receipt.status, ReceiptStatus::New);
        let stored = app
            .store
            .latest("BS08", "DVCQ_THANG", &period)
            .await
            .expect("read back")
            .expect("stored");
        assert_eq!(stored.report.narrative, draft.narrative, "{payload:?}");
        assert_eq!(stored.report.prepared_by, draft.prepared_by, "{payload:?}");
        let comment = stored
            .report
            .values
            .iter()
            .find(|v| v.indicator.as_str() == draft.values[0].indicator)
            .and_then(|v| v.comment.clone());
        assert_eq!(comment.as_deref(), Some(draft.values[0].comment.as_str()));
    }
    let after = client
        .submit(&valid_report("sql-text:after", "BS09", PERIOD))
        .await
        .expect("the tables are still there");
    assert_eq!(after.status, ReceiptStatus::New);
    let dump = app.store.dump().await.expect("dump");
    for n in 0..payloads.len() {
        assert!(
            dump.contains(&format!("sql-text:{n}")),
            "report {n} in the dump"
        );
    }
    assert!(dump.contains("sql-text:after"));
    assert_eq!(
        app.store.change_counter().await.expect("counter"),
        payloads.len() as i64 + 1
    );
    app.stop().await;
}

#[tokio::test]
async fn path_separators_and_traversal_in_codes_are_refused() {
    let mut target = Target::start().await;
    let paths = [
        "../../etc/passwd",
        "..\\..\\Windows\\win.ini",
        "/etc/passwd",
        "C:\\Windows",
        "BS02\u{0}.db",
        "BS02/../BS03",
        "./BS02",
        "%2e%2e%2fetc",
    ];
    let mut n = 0;
    for slot in CODE_SLOTS {
        for path in paths {
            n += 1;
            let case = format!("{} = {path:?}", slot.field());
            let mentions: &[&str] = match slot {
                Slot::Period => &[],
                _ => &["contains"],
            };
            target
                .refused(
                    &case,
                    &slot.draft(n, path.into()),
                    slot.field(),
                    slot.malformed_rule(),
                    mentions,
                )
                .await;
        }
    }
    target.finish().await;
}
