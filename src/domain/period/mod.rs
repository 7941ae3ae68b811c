//! Reporting periods: DHIS2 identifiers, their data windows under plain calendar months or the
//! Decree 09/2019/ND-CP windows (15th to 14th), and the deadlines that follow from them.
//!
//! Identifiers (DHIS2's, plus one of ours for the Vietnamese nine-month report):
//!
//! | type         | identifier | calendar months          | Decree 09 window                    |
//! |--------------|------------|--------------------------|-------------------------------------|
//! | monthly      | `201909`   | 1 Sep → 30 Sep           | 15 Aug → 14 Sep                     |
//! | quarterly    | `2019Q3`   | 1 Jul → 30 Sep           | 15 Jun → 14 Sep                     |
//! | six-monthly  | `2019S1`   | 1 Jan → 30 Jun           | 15 Dec 2018 → 14 Jun                |
//! |              | `2019S2`   | 1 Jul → 31 Dec           | 15 Jun → 14 Dec                     |
//! | nine-monthly | `2019N9`   | 1 Jan → 30 Sep           | 15 Dec 2018 → 14 Sep                |
//! | yearly       | `2019`     | 1 Jan → 31 Dec           | 15 Dec 2018 → 14 Dec                |
//!
//! `N9` ("nine months", *chín tháng*) is not a DHIS2 period type; DHIS2 has nothing for it, so
//! tonghop names it in the same style as `S1`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use std::fmt;

/// Vietnam has used UTC+7 without daylight saving since 1975, so a fixed offset is exact.
pub fn vietnam_offset() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero"))
}

/// Today's date in Vietnam: the date a district office would write on its report.
pub fn vietnam_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&vietnam_offset()).date_naive()
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PeriodType {
    Monthly,
    Quarterly,
    SixMonthly,
    NineMonthly,
    Yearly,
}

impl PeriodType {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodType::Monthly => "monthly",
            PeriodType::Quarterly => "quarterly",
            PeriodType::SixMonthly => "six_monthly",
            PeriodType::NineMonthly => "nine_monthly",
            PeriodType::Yearly => "yearly",
        }
    }

    /// An example identifier, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            PeriodType::Monthly => "201909",
            PeriodType::Quarterly => "2019Q3",
            PeriodType::SixMonthly => "2019S1",
            PeriodType::NineMonthly => "2019N9",
            PeriodType::Yearly => "2019",
        }
    }
}

impl fmt::Display for PeriodType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a data set's periods map onto dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// Plain calendar months: September is 1 to 30 September.
    Months,
    /// Decree 09/2019/ND-CP: data closes on the 14th; September is 15 August to 14 September.
    Decree09,
}

impl Calendar {
    pub fn as_str(self) -> &'static str {
        match self {
            Calendar::Months => "months",
            Calendar::Decree09 => "decree09",
        }
    }
}

/// First and last day (both inclusive) of the data a period's report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DateWindow {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error(
        "is not a period identifier: expected YYYYMM (201909), YYYYQn (2019Q3), YYYYSn (2019S1), \
         YYYYN9 (2019N9) or YYYY (2019)"
    )]
    Malformed,
    #[error("has month {0}; months run from 01 to 12")]
    BadMonth(u32),
    #[error("has quarter {0}; quarters run from 1 to 4")]
    BadQuarter(u32),
    #[error("has half {0}; halves are 1 or 2")]
    BadHalf(u32),
    #[error("has year {0}; years from {MIN_YEAR} to {MAX_YEAR} are accepted")]
    YearOutOfRange(i32),
}

pub const MIN_YEAR: i32 = 1990;
pub const MAX_YEAR: i32 = 2100;

/// One reporting period. Ordered by year, then by type, then position: only meaningful
/// between periods of the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodId {
    Month { year: i32, month: u32 },
    Quarter { year: i32, quarter: u32 },
    Half { year: i32, half: u32 },
    NineMonths { year: i32 },
    Year { year: i32 },
}

impl PeriodId {
    pub fn parse(raw: &str) -> Result<Self, PeriodError> {
        let bytes = raw.as_bytes();
        if bytes.len() < 4 || !bytes[..4].iter().all(u8::is_ascii_digit) {
            return Err(PeriodError::Malformed);
        }
        let year: i32 = raw[..4].parse().map_err(|_| PeriodError::Malformed)?;
        let rest = &raw[4..];
        let digit = |s: &str| -> Result<u32, PeriodError> {
            if s.len() == 1 && s.as_bytes()[0].is_ascii_digit() {
                Ok(u32::from(s.as_bytes()[0] - b'0'))
            } else {
                Err(PeriodError::Malformed)
            }
        };
        let period = match rest.as_bytes() {
            [] => PeriodId::Year { year },
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                let month = u32::from(a - b'0') * 10 + u32::from(b - b'0');
                if !(1..=12).contains(&month) {
                    return Err(PeriodError::BadMonth(month));
                }
                PeriodId::Month { year, month }
            }
            [b'Q', ..] => {
                let quarter = digit(&rest[1..])?;
                if !(1..=4).contains(&quarter) {
                    return Err(PeriodError::BadQuarter(quarter));
                }
                PeriodId::Quarter { year, quarter }
            }
            [b'S', ..] => {
                let half = digit(&rest[1..])?;
                if !(1..=2).contains(&half) {
                    return Err(PeriodError::BadHalf(half));
                }
                PeriodId::Half { year, half }
            }
            b"N9" => PeriodId::NineMonths { year },
            _ => return Err(PeriodError::Malformed),
        };
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(PeriodError::YearOutOfRange(year));
        }
        Ok(period)
    }

    pub fn period_type(&self) -> PeriodType {
        match self {
            PeriodId::Month { .. } => PeriodType::Monthly,
            PeriodId::Quarter { .. } => PeriodType::Quarterly,
            PeriodId::Half { .. } => PeriodType::SixMonthly,
            PeriodId::NineMonths { .. } => PeriodType::NineMonthly,
            PeriodId::Year { .. } => PeriodType::Yearly,
        }
    }

    pub fn year(&self) -> i32 {
        match *self {
            PeriodId::Month { year, .. }
            | PeriodId::Quarter { year, .. }
            | PeriodId::Half { year, .. }
            | PeriodId::NineMonths { year }
            | PeriodId::Year { year } => year,
        }
    }

    /// First and last month (1-12) of the year that the period reports on.
    pub fn month_span(&self) -> (u32, u32) {
        match *self {
            PeriodId::Month { month, .. } => (month, month),
            PeriodId::Quarter { quarter, .. } => (quarter * 3 - 2, quarter * 3),
            PeriodId::Half { half, .. } => (half * 6 - 5, half * 6),
            PeriodId::NineMonths { .. } => (1, 9),
            PeriodId::Year { .. } => (1, 12),
        }
    }

    /// The monthly periods this period is made of, in order.
    pub fn months(&self) -> impl Iterator<Item = PeriodId> {
        let year = self.year();
        let (first, last) = self.month_span();
        (first..=last).map(move |month| PeriodId::Month { year, month })
    }

    /// Whether every month of `other` lies inside this period.
    pub fn contains(&self, other: &PeriodId) -> bool {
        let (first, last) = self.month_span();
        let (o_first, o_last) = other.month_span();
        self.year() == other.year() && first <= o_first && o_last <= last
    }

    pub fn window(&self, calendar: Calendar) -> DateWindow {
        let year = self.year();
        let (first, last) = self.month_span();
        match calendar {
            Calendar::Months => DateWindow {
                start: ymd(year, first, 1),
                end: last_day_of_month(year, last),
            },
            Calendar::Decree09 => {
                let (start_year, start_month) = if first == 1 {
                    (year - 1, 12)
                } else {
                    (year, first - 1)
                };
                DateWindow {
                    start: ymd(start_year, start_month, 15),
                    end: ymd(year, last, 14),
                }
            }
        }
    }

    /// The periods of type `of` that exactly make up this period, in order, or `None` when this
    /// period is not a whole number of them (2019Q3 is three months, but not a half year).
    pub fn periods_within(&self, of: PeriodType) -> Option<Vec<PeriodId>> {
        let year = self.year();
        let (first, last) = self.month_span();
        let length = match of {
            PeriodType::Monthly => 1,
            PeriodType::Quarterly => 3,
            PeriodType::SixMonthly => 6,
            PeriodType::Yearly => 12,
            // Nine months starting in January make up only themselves.
            PeriodType::NineMonthly => {
                return (self.period_type() == PeriodType::NineMonthly)
                    .then(|| vec![PeriodId::NineMonths { year }]);
            }
        };
        if (first - 1) % length != 0 || last % length != 0 {
            return None;
        }
        Some(
            (first..=last)
                .step_by(length as usize)
                .map(|month| match of {
                    PeriodType::Monthly => PeriodId::Month { year, month },
                    PeriodType::Quarterly => PeriodId::Quarter {
                        year,
                        quarter: month.div_ceil(3),
                    },
                    PeriodType::SixMonthly => PeriodId::Half {
                        year,
                        half: month.div_ceil(6),
                    },
                    _ => PeriodId::Year { year },
                })
                .collect(),
        )
    }

    /// The period of the same type just before this one.
    pub fn previous(&self) -> PeriodId {
        match *self {
            PeriodId::Month { year, month: 1 } => PeriodId::Month {
                year: year - 1,
                month: 12,
            },
            PeriodId::Month { year, month } => PeriodId::Month {
                year,
                month: month - 1,
            },
            PeriodId::Quarter { year, quarter: 1 } => PeriodId::Quarter {
                year: year - 1,
                quarter: 4,
            },
            PeriodId::Quarter { year, quarter } => PeriodId::Quarter {
                year,
                quarter: quarter - 1,
            },
            PeriodId::Half { year, half: 1 } => PeriodId::Half {
                year: year - 1,
                half: 2,
            },
            PeriodId::Half { year, .. } => PeriodId::Half { year, half: 1 },
            PeriodId::NineMonths { year } => PeriodId::NineMonths { year: year - 1 },
            PeriodId::Year { year } => PeriodId::Year { year: year - 1 },
        }
    }

    /// The period of the same type just after this one.
    pub fn next(&self) -> PeriodId {
        match *self {
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
        }
    }

    /// The same period one year earlier.
    pub fn year_before(&self) -> PeriodId {
        match *self {
            PeriodId::Month { year, month } => PeriodId::Month {
                year: year - 1,
                month,
            },
            PeriodId::Quarter { year, quarter } => PeriodId::Quarter {
                year: year - 1,
                quarter,
            },
            PeriodId::Half { year, half } => PeriodId::Half {
                year: year - 1,
                half,
            },
            PeriodId::NineMonths { year } => PeriodId::NineMonths { year: year - 1 },
            PeriodId::Year { year } => PeriodId::Year { year: year - 1 },
        }
    }
}

impl fmt::Display for PeriodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PeriodId::Month { year, month } => write!(f, "{year:04}{month:02}"),
            PeriodId::Quarter { year, quarter } => write!(f, "{year:04}Q{quarter}"),
            PeriodId::Half { year, half } => write!(f, "{year:04}S{half}"),
            PeriodId::NineMonths { year } => write!(f, "{year:04}N9"),
            PeriodId::Year { year } => write!(f, "{year:04}"),
        }
    }
}

impl std::str::FromStr for PeriodId {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeriodId::parse(s)
    }
}

/// A report is late after 23:59:59 (Vietnam time) of the window's last day plus the grace days.
pub fn deadline(window_end: NaiveDate, grace_days: u32) -> DateTime<Utc> {
    // A grace period past the calendar's end (only a broken catalog has one) means "never late".
    let day = window_end
        .checked_add_days(chrono::Days::new(u64::from(grace_days)))
        .unwrap_or(NaiveDate::MAX);
    let local = day.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    vietnam_offset()
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
        // A fixed offset has exactly one mapping for every local time.
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

// Callers pass years within MIN_YEAR-1..=MAX_YEAR and valid months/days, which always exist.
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    ymd(next_year, next_month, 1)
        .pred_opt()
        .unwrap_or(NaiveDate::MIN)
}

/// Convenience for tests and examples: `date(2019, 9, 14)`.
pub fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    ymd(year, month, day)
}

#[cfg(test)]
mod tests;
