//! Completeness and the two calendars: missing, late and late-corrected reports; Decree 09 against calendar months.

use super::*;

#[tokio::test]
async fn completeness_counts_missing_and_late_reports_and_late_corrections_apart() {
    let p = Pipeline::start().await;
    let values = [("received", 1.0)];
    // On time: each month's report on the 2nd of the next month, 09:00 in Vietnam (02:00 UTC).
    for (unit, month) in [
        ("A", 7),
        ("A", 8),
        ("A", 9),
        ("B", 7),
        ("B", 8),
        ("C", 7),
        ("C", 8),
    ] {
        let period_id = format!("2019{month:02}");
        let receipt = p
            .submit_at(
                utc(2019, month + 1, 2, 2, 0, 0),
                &format!("{unit}-{period_id}"),
                unit,
                "M",
                &period_id,
                &values,
            )
            .await;
        assert!(receipt.on_time, "{unit} {period_id}");
    }
    // September's deadline: 30 Sep + 5 grace days = 5 Oct 2019, 23:59:59 UTC+7 = 16:59:59 UTC.
    let september_deadline = vietnam_end_of_day(date(2019, 9, 30) + Days::new(5));
    assert_eq!(september_deadline, utc(2019, 10, 5, 16, 59, 59));
    // B's September report arrives on 8 Oct, 10:00 in Vietnam: late.
    let b_sent = utc(2019, 10, 8, 3, 0, 0);
    let late = p
        .submit_at(b_sent, "B-201909", "B", "M", "201909", &values)
        .await;
    assert!(!late.on_time);
    assert_eq!(late.deadline, september_deadline);
    // C never sends September.
    // A corrects July on 20 Aug, after July's deadline (31 Jul + 5 = 5 Aug, 23:59:59 UTC+7).
    let july_deadline = vietnam_end_of_day(date(2019, 7, 31) + Days::new(5));
    let correction_sent = utc(2019, 8, 20, 2, 0, 0);
    assert!(correction_sent > july_deadline);
    let correction = p
        .submit_at(
            correction_sent,
            "A-201907-r2",
            "A",
            "M",
            "201907",
            &[("received", 2.0)],
        )
        .await;
    assert_eq!(correction.revision, 2);
    assert!(!correction.on_time, "the correction itself came late");

    let c = p
        .query
        .completeness(scope("M", "2019Q3", "P"))
        .await
        .expect("completeness");
    assert_eq!(c.periods, ["201907", "201908", "201909"]);
    // 3 districts × 3 months expected; 3 + 3 + 2 received; B's September late.
    let expected = 3 * 3;
    let received = 3 + 3 + 2;
    let late_count = 1;
    let on_time = received - late_count;
    assert_eq!(c.total.expected, expected);
    assert_eq!(c.total.received, received);
    assert_eq!(c.total.on_time, on_time);
    assert_eq!(c.total.late, late_count);
    assert_eq!(
        c.total.corrected_after_deadline, 1,
        "A's July correction is counted apart"
    );
    assert_close(
        c.total.completeness(),
        f64::from(received) / f64::from(expected) * 100.0,
        "completeness 8 ÷ 9",
    );
    assert_close(
        c.total.timeliness(),
        f64::from(on_time) / f64::from(expected) * 100.0,
        "timeliness 7 ÷ 9",
    );

    let counts = |unit: &str| {
        let u = c
            .units
            .iter()
            .find(|u| u.unit.as_str() == unit)
            .expect("unit row");
        let k = &u.counts;
        (
            k.expected,
            k.received,
            k.on_time,
            k.late,
            k.corrected_after_deadline,
        )
    };
    // (expected, received, on time, late, corrected after deadline)
    assert_eq!(
        counts("A"),
        (3, 3, 3, 0, 1),
        "A's late correction keeps July on time"
    );
    assert_eq!(counts("B"), (3, 3, 2, 1, 0));
    assert_eq!(counts("C"), (3, 2, 2, 0, 0));

    let missing: Vec<(&str, &str)> = c
        .missing
        .iter()
        .map(|(u, per)| (u.as_str(), per.as_str()))
        .collect();
    assert_eq!(missing, [("C", "201909")]);
    assert_eq!(c.late.len(), 1);
    let l = &c.late[0];
    assert_eq!((l.unit.as_str(), l.period.as_str()), ("B", "201909"));
    assert_eq!(l.received_at, b_sent);
    assert_eq!(l.deadline, september_deadline);
    // 5 Oct 16:59:59 UTC → 8 Oct 03:00:00 UTC = 2 days 10 h 0 min 1 s, rounded up to 3 days.
    let late_by = 2 * 86_400 + 10 * 3_600 + 1;
    assert_eq!((b_sent - september_deadline).num_seconds(), late_by);
    let days_late = (late_by + 86_400 - 1) / 86_400;
    assert_eq!(days_late, 3);
    assert_eq!(l.days_late, days_late);
    assert_close(
        c.units
            .iter()
            .find(|u| u.unit.as_str() == "B")
            .and_then(|u| u.counts.timeliness()),
        2.0 / 3.0 * 100.0,
        "B's timeliness",
    );
}

// 10 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn decree09_and_calendar_months_give_different_windows_deadlines_and_lateness() {
    let p = Pipeline::start().await;
    let values = [("received", 12.0), ("resolved", 10.0), ("on_time", 9.0)];
    // Sent on 25 Sep 2019, 10:00 in Vietnam (03:00 UTC).
    let sent = utc(2019, 9, 25, 3, 0, 0);
    let months = p
        .submit_at(sent, "A-M-201909", "A", "M", "201909", &values)
        .await;
    let decree = p
        .submit_at(sent, "A-D9-201909", "A", "D9", "201909", &values)
        .await;

    // Windows: calendar September 1–30 Sep; Decree 09 September 15 Aug–14 Sep.
    assert_eq!(
        months.window,
        DateWindow {
            start: date(2019, 9, 1),
            end: date(2019, 9, 30),
        }
    );
    assert_eq!(
        decree.window,
        DateWindow {
            start: date(2019, 8, 15),
            end: date(2019, 9, 14),
        }
    );
    // Deadlines: window end + 5 grace days, 23:59:59 UTC+7 (= 16:59:59 UTC).
    let months_deadline = vietnam_end_of_day(date(2019, 9, 30) + Days::new(5)); // 5 Oct
    let decree_deadline = vietnam_end_of_day(date(2019, 9, 14) + Days::new(5)); // 19 Sep
    assert_eq!(months_deadline, utc(2019, 10, 5, 16, 59, 59));
    assert_eq!(decree_deadline, utc(2019, 9, 19, 16, 59, 59));
    assert_eq!(months.deadline, months_deadline);
    assert_eq!(decree.deadline, decree_deadline);
    // 25 Sep is before 5 Oct but after 19 Sep.
    assert!(months.on_time, "on time under calendar months");
    assert!(!decree.on_time, "late under Decree 09");

    // At the deadline second is on time; one second later is late.
    let at_deadline = p
        .submit_at(decree_deadline, "B-D9-201909", "B", "D9", "201909", &values)
        .await;
    assert!(at_deadline.on_time);
    let just_after = p
        .submit_at(
            decree_deadline + chrono::Duration::seconds(1),
            "C-D9-201909",
            "C",
            "D9",
            "201909",
            &values,
        )
        .await;
    assert!(!just_after.on_time);

    // Completeness classifies A accordingly in each data set.
    let m = p
        .query
        .completeness(scope("M", "201909", "P"))
        .await
        .expect("M completeness");
    let a_m = m.units.iter().find(|u| u.unit.as_str() == "A").expect("A");
    assert_eq!((a_m.counts.on_time, a_m.counts.late), (1, 0));
    assert!(m.late.is_empty());
    let d9 = p
        .query
        .completeness(scope("D9", "201909", "P"))
        .await
        .expect("D9 completeness");
    let late: Vec<(&str, i64)> = d9
        .late
        .iter()
        .map(|l| (l.unit.as_str(), l.days_late))
        .collect();
    // A: 19 Sep 16:59:59 UTC → 25 Sep 03:00:00 UTC = 5 days 10 h 0 min 1 s → 6 days.
    // C: 1 second → 1 day.
    let a_late_by = 5 * 86_400 + 10 * 3_600 + 1;
    assert_eq!((sent - decree_deadline).num_seconds(), a_late_by);
    assert_eq!(late, [("A", (a_late_by + 86_399) / 86_400), ("C", 1)]);
    assert_eq!(
        (d9.total.on_time, d9.total.late),
        (1, 2),
        "B on time, A and C late"
    );

    // The figures themselves are the same in both data sets.
    let tm = p.indicators("M", "201909", "A").await;
    let td = p.indicators("D9", "201909", "A").await;
    assert_close(
        unit_value(&tm, "A", "on_time_rate"),
        9.0 / 10.0 * 100.0,
        "M rate",
    );
    assert_close(
        unit_value(&td, "A", "on_time_rate"),
        9.0 / 10.0 * 100.0,
        "D9 rate",
    );
}

// 11 -----------------------------------------------------------------------------------------
