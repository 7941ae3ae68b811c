//! When each period's report is due: by default at 08:00 (Vietnam time) on the day after its
//! data window closes, which leaves the data set's grace days to deliver before the deadline.
//! Pure functions of "now", so the schedule is tested without waiting for a month to pass.

use crate::domain::period::{MAX_YEAR, deadline, vietnam_offset};
use crate::domain::{Calendar, DateWindow, PeriodId, PeriodType};
use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};

/// One data set's reporting schedule for this unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub period_type: PeriodType,
    pub calendar: Calendar,
    pub grace_days: u32,
    /// The first period this unit reports through the agent; earlier history is not sent.
    pub first_period: PeriodId,
    /// Days after the window's last day on which the report is sent.
    pub send_after_days: u32,
    /// Local (UTC+7) time of day on which the report is sent.
    pub at: NaiveTime,
}

/// Periods are bounded by the identifiers `PeriodId` accepts, so every walk below ends.
const MAX_PERIODS: usize = 12 * 120;

/// The period of the same type just after `p`, or `None` past the last accepted year.
pub fn next_period(p: &PeriodId) -> Option<PeriodId> {
    let next = match *p {
        PeriodId::Month { year, month: 12 } => PeriodId::Month {
            year: year + 1,
            month: 1,
        },
        PeriodId::Month { year, month } => PeriodId::Month {
            year,
            month: month + 1,
        },
        PeriodId::Quarter { year, quarter: 4 } => PeriodId::Quarter {
            year: year + 1,
            quarter: 1,
        },
        PeriodId::Quarter { year, quarter } => PeriodId::Quarter {
            year,
            quarter: quarter + 1,
        },
        PeriodId::Half { year, half: 1 } => PeriodId::Half { year, half: 2 },
        PeriodId::Half { year, .. } => PeriodId::Half {
            year: year + 1,
            half: 1,
        },
        PeriodId::NineMonths { year } => PeriodId::NineMonths { year: year + 1 },
        PeriodId::Year { year } => PeriodId::Year { year: year + 1 },
    };
    (next.year() <= MAX_YEAR).then_some(next)
}

impl Schedule {
    pub fn window(&self, p: &PeriodId) -> DateWindow {
        p.window(self.calendar)
    }

    /// When the agent reads the source and sends the report of `p`.
    pub fn due_at(&self, p: &PeriodId) -> DateTime<Utc> {
        let day = self.window(p).end + Days::new(u64::from(self.send_after_days));
        let local = day.and_time(self.at);
        vietnam_offset()
            .from_local_datetime(&local)
            .single()
            .map(|t| t.with_timezone(&Utc))
            // A fixed offset maps every local time exactly once.
            .unwrap_or_else(|| Utc.from_utc_datetime(&local))
    }

    /// After this the aggregator counts the report as late.
    pub fn deadline(&self, p: &PeriodId) -> DateTime<Utc> {
        deadline(self.window(p).end, self.grace_days)
    }

    /// Every period from `first_period` whose report is due at `now`, oldest first.
    pub fn due_periods(&self, now: DateTime<Utc>) -> Vec<PeriodId> {
        let mut out = Vec::new();
        let mut p = Some(self.first_period);
        while let Some(period) = p {
            if self.due_at(&period) > now || out.len() >= MAX_PERIODS {
                break;
            }
            out.push(period);
            p = next_period(&period);
        }
        out
    }

    /// The first period not yet due at `now`, and when it will be.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<(PeriodId, DateTime<Utc>)> {
        let mut p = Some(self.first_period);
        for _ in 0..=MAX_PERIODS {
            let period = p?;
            let at = self.due_at(&period);
            if at > now {
                return Some((period, at));
            }
            p = next_period(&period);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> PeriodId {
        PeriodId::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn monthly(first: &str) -> Schedule {
        Schedule {
            period_type: PeriodType::Monthly,
            calendar: Calendar::Decree09,
            grace_days: 5,
            first_period: p(first),
            send_after_days: 1,
            at: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        }
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn due_the_morning_after_the_cut_off_in_vietnam() {
        let s = monthly("201901");
        // September 2019 closes on 14 September (Decree 09): due 15 September 08:00 +07:00.
        assert_eq!(
            s.due_at(&p("201909")).to_rfc3339(),
            "2019-09-15T01:00:00+00:00"
        );
        assert_eq!(
            s.deadline(&p("201909")).to_rfc3339(),
            "2019-09-19T16:59:59+00:00"
        );
        let due = s.due_periods(utc("2019-09-15T01:00:00Z"));
        assert_eq!(due.first(), Some(&p("201901")));
        assert_eq!(due.last(), Some(&p("201909")));
        assert_eq!(due.len(), 9);
        let due = s.due_periods(utc("2019-09-15T00:59:59Z"));
        assert_eq!(due.last(), Some(&p("201908")));
        assert_eq!(
            s.next_due(utc("2019-09-15T00:59:59Z")),
            Some((p("201909"), utc("2019-09-15T01:00:00Z")))
        );
    }

    #[test]
    fn nothing_is_due_before_the_first_period() {
        let s = monthly("202001");
        assert!(s.due_periods(utc("2019-12-31T00:00:00Z")).is_empty());
    }

    #[test]
    fn next_period_walks_every_type_across_year_ends() {
        for (a, b) in [
            ("201912", "202001"),
            ("201909", "201910"),
            ("2019Q4", "2020Q1"),
            ("2019S1", "2019S2"),
            ("2019S2", "2020S1"),
            ("2019N9", "2020N9"),
            ("2019", "2020"),
        ] {
            assert_eq!(next_period(&p(a)), Some(p(b)), "{a}");
        }
        assert_eq!(next_period(&p("210012")), None);
    }

    #[test]
    fn yearly_windows_close_mid_december() {
        let s = Schedule {
            period_type: PeriodType::Yearly,
            first_period: p("2019"),
            grace_days: 10,
            ..monthly("201901")
        };
        assert_eq!(
            s.due_at(&p("2019")).to_rfc3339(),
            "2019-12-15T01:00:00+00:00"
        );
    }
}
