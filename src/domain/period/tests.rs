//! Period identifiers: their forms round-trip, malformed ones are refused with the reason, and
//! the calendar arithmetic (windows, deadlines, previous periods, containment).

use super::*;

fn p(raw: &str) -> PeriodId {
    PeriodId::parse(raw).unwrap_or_else(|e| panic!("{raw} should parse: {e}"))
}

#[test]
fn identifiers_round_trip() {
    for raw in [
        "201909", "201901", "201912", "2019Q1", "2019Q4", "2019S1", "2019S2", "2019N9", "2019",
        "1990", "2100",
    ] {
        assert_eq!(p(raw).to_string(), raw);
    }
}

#[test]
fn identifiers_know_their_type() {
    assert_eq!(p("201909").period_type(), PeriodType::Monthly);
    assert_eq!(p("2019Q3").period_type(), PeriodType::Quarterly);
    assert_eq!(p("2019S1").period_type(), PeriodType::SixMonthly);
    assert_eq!(p("2019N9").period_type(), PeriodType::NineMonthly);
    assert_eq!(p("2019").period_type(), PeriodType::Yearly);
}

#[test]
fn malformed_identifiers_are_refused_with_the_reason() {
    assert_eq!(PeriodId::parse("201913"), Err(PeriodError::BadMonth(13)));
    assert_eq!(PeriodId::parse("201900"), Err(PeriodError::BadMonth(0)));
    assert_eq!(PeriodId::parse("2019Q5"), Err(PeriodError::BadQuarter(5)));
    assert_eq!(PeriodId::parse("2019S3"), Err(PeriodError::BadHalf(3)));
    assert_eq!(
        PeriodId::parse("1899"),
        Err(PeriodError::YearOutOfRange(1899))
    );
    for bad in [
        "",
        "19",
        "2019-09",
        "2019q3",
        "2019N8",
        "2019Q",
        "2019Q10",
        "20190",
        "2019S",
        "２０１９",
        "2019W1",
    ] {
        assert!(PeriodId::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn calendar_month_windows() {
    let w = p("201902").window(Calendar::Months);
    assert_eq!((w.start, w.end), (date(2019, 2, 1), date(2019, 2, 28)));
    let w = p("202002").window(Calendar::Months);
    assert_eq!(w.end, date(2020, 2, 29), "2020 is a leap year");
    let w = p("2019Q3").window(Calendar::Months);
    assert_eq!((w.start, w.end), (date(2019, 7, 1), date(2019, 9, 30)));
    let w = p("2019S2").window(Calendar::Months);
    assert_eq!((w.start, w.end), (date(2019, 7, 1), date(2019, 12, 31)));
    let w = p("2019N9").window(Calendar::Months);
    assert_eq!((w.start, w.end), (date(2019, 1, 1), date(2019, 9, 30)));
    let w = p("2019").window(Calendar::Months);
    assert_eq!((w.start, w.end), (date(2019, 1, 1), date(2019, 12, 31)));
}

#[test]
fn decree09_windows_cross_year_ends() {
    // The yearly 2019 window starts on 15 December 2018 (Decree 09, art. 12).
    let w = p("2019").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2018, 12, 15), date(2019, 12, 14)));
    let w = p("201901").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2018, 12, 15), date(2019, 1, 14)));
    let w = p("201909").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2019, 8, 15), date(2019, 9, 14)));
    let w = p("2019Q1").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2018, 12, 15), date(2019, 3, 14)));
    let w = p("2019Q3").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2019, 6, 15), date(2019, 9, 14)));
    let w = p("2019S1").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2018, 12, 15), date(2019, 6, 14)));
    let w = p("2019S2").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2019, 6, 15), date(2019, 12, 14)));
    let w = p("2019N9").window(Calendar::Decree09);
    assert_eq!((w.start, w.end), (date(2018, 12, 15), date(2019, 9, 14)));
}

#[test]
fn decree09_months_tile_the_year_without_gaps() {
    let mut expected_start = date(2018, 12, 15);
    for month in p("2019").months() {
        let w = month.window(Calendar::Decree09);
        assert_eq!(
            w.start, expected_start,
            "{month} starts where the previous ended"
        );
        expected_start = w.end.succ_opt().unwrap_or(NaiveDate::MAX);
    }
    assert_eq!(expected_start, date(2019, 12, 15));
}

#[test]
fn deadlines_are_end_of_day_in_vietnam() {
    // 14 Sep 2019 + 5 grace days = 19 Sep 2019 23:59:59 +07:00 = 16:59:59 UTC.
    let d = deadline(date(2019, 9, 14), 5);
    assert_eq!(d.to_rfc3339(), "2019-09-19T16:59:59+00:00");
    // Grace across a year end: 14 Dec 2019 + 20 days = 3 Jan 2020.
    let d = deadline(date(2019, 12, 14), 20);
    assert_eq!(d.to_rfc3339(), "2020-01-03T16:59:59+00:00");
    // No grace: the last day of the window itself.
    assert_eq!(
        deadline(date(2019, 2, 28), 0).to_rfc3339(),
        "2019-02-28T16:59:59+00:00"
    );
}

#[test]
fn previous_and_year_before() {
    assert_eq!(p("201901").previous(), p("201812"));
    assert_eq!(p("2019Q1").previous(), p("2018Q4"));
    assert_eq!(p("2019S1").previous(), p("2018S2"));
    assert_eq!(p("2019S2").previous(), p("2019S1"));
    assert_eq!(p("2019N9").previous(), p("2018N9"));
    assert_eq!(p("2019").previous(), p("2018"));
    assert_eq!(p("2019Q3").year_before(), p("2018Q3"));
    for raw in [
        "201812", "2019Q4", "2019S2", "2019S1", "2019N9", "2019", "201907",
    ] {
        assert_eq!(p(raw).next().previous(), p(raw), "{raw}");
    }
    assert_eq!(p("201912").next(), p("202001"));
    assert_eq!(p("201907").year_before(), p("201807"));
}

#[test]
fn periods_within_coarser_periods() {
    let ids = |p: &PeriodId, t| {
        p.periods_within(t)
            .map(|v| v.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(
        ids(&p("2019Q3"), PeriodType::Monthly),
        Some(vec!["201907".into(), "201908".into(), "201909".into()])
    );
    assert_eq!(
        ids(&p("2019"), PeriodType::Quarterly),
        Some(vec![
            "2019Q1".into(),
            "2019Q2".into(),
            "2019Q3".into(),
            "2019Q4".into()
        ])
    );
    assert_eq!(
        ids(&p("2019S2"), PeriodType::SixMonthly),
        Some(vec!["2019S2".into()])
    );
    assert_eq!(
        ids(&p("2019N9"), PeriodType::Quarterly).map(|v| v.len()),
        Some(3)
    );
    assert_eq!(
        ids(&p("2019N9"), PeriodType::NineMonthly),
        Some(vec!["2019N9".into()])
    );
    // Not whole: a quarter is not made of half years; nine months are not a year.
    assert_eq!(ids(&p("2019Q3"), PeriodType::SixMonthly), None);
    assert_eq!(ids(&p("2019N9"), PeriodType::SixMonthly), None);
    assert_eq!(ids(&p("2019"), PeriodType::NineMonthly), None);
    assert_eq!(ids(&p("201909"), PeriodType::Quarterly), None);
}

#[test]
fn containment_and_months() {
    assert!(p("2019Q3").contains(&p("201908")));
    assert!(!p("2019Q3").contains(&p("201910")));
    assert!(p("2019N9").contains(&p("2019Q3")));
    assert!(!p("2019N9").contains(&p("2019Q4")));
    assert!(!p("2019").contains(&p("201812")));
    let months: Vec<String> = p("2019Q2").months().map(|m| m.to_string()).collect();
    assert_eq!(months, ["201904", "201905", "201906"]);
}
