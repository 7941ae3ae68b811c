//! `PeriodId::parse` on arbitrary text. A period identifier arrives in every report and every
//! query, so the parser must never panic, and whatever it accepts must behave: it prints back
//! as the identifier received, its windows are ordered, and the arithmetic on it (previous,
//! year before, months, periods within) stays inside the calendar.
#![no_main]

use chrono::Datelike;
use libfuzzer_sys::fuzz_target;
use tonghop::domain::period::{self, MAX_YEAR, MIN_YEAR};
use tonghop::domain::{Calendar, PeriodId, PeriodType};

fuzz_target!(|data: &[u8]| {
    // Bytes that are not UTF-8 cannot reach the parser over gRPC (prost refuses them), but
    // their lossy form is still text worth parsing.
    let text = String::from_utf8_lossy(data);
    let Ok(period) = PeriodId::parse(&text) else {
        return;
    };

    // Accepted identifiers are canonical: they print back exactly as received.
    assert_eq!(period.to_string(), text, "round trip of {text:?}");
    assert_eq!(text.parse::<PeriodId>(), Ok(period));
    assert!((MIN_YEAR..=MAX_YEAR).contains(&period.year()), "{text:?}");

    let (first, last) = period.month_span();
    assert!(
        1 <= first && first <= last && last <= 12,
        "{text:?}: {first}..{last}"
    );
    let months: Vec<PeriodId> = period.months().collect();
    assert_eq!(months.len() as u32, last - first + 1, "{text:?}");
    for month in &months {
        assert!(period.contains(month), "{text:?} contains {month}");
        assert_eq!(month.period_type(), PeriodType::Monthly);
    }
    assert!(period.contains(&period));
    assert_eq!(
        period.periods_within(PeriodType::Monthly),
        Some(months),
        "{text:?} is made of its months"
    );
    assert_eq!(
        period.periods_within(period.period_type()),
        Some(vec![period]),
        "{text:?} is made of itself"
    );

    for calendar in [Calendar::Months, Calendar::Decree09] {
        let window = period.window(calendar);
        assert!(
            window.start < window.end,
            "{text:?} {calendar:?}: {window:?}"
        );
        // A date that could not be built falls back to NaiveDate::MIN: it must never show.
        assert!(
            window.start.year() >= period.year() - 1 && window.end.year() == period.year(),
            "{text:?} {calendar:?}: {window:?}"
        );
        assert!(window.contains(window.start) && window.contains(window.end));
        let due = period::deadline(window.end, 366);
        assert!(due.date_naive() > window.end, "{text:?}: deadline {due}");
    }

    // Same-type arithmetic: ordered, and one year back means the same position.
    let previous = period.previous();
    assert!(previous < period, "{previous} before {period}");
    assert_eq!(previous.period_type(), period.period_type());
    let year_before = period.year_before();
    assert_eq!(year_before.year(), period.year() - 1);
    assert_eq!(year_before.month_span(), period.month_span());
    assert!(year_before <= previous, "{year_before} ≤ {previous}");
});
