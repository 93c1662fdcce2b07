//! Local calendar periods (days, Monday weeks, months) numbered so that
//! consecutive periods differ by one.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::clock::start_of_day;
use crate::domain::query::TimeRange;

/// A calendar period in the analysis' timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A local day (23 or 25 hours on daylight-saving days).
    Day,
    /// A local week, from Monday.
    Week,
    /// A local calendar month.
    Month,
}

/// 1970-01-05 was a Monday: weeks are counted from it.
fn epoch_monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 5).expect("a date")
}

impl Period {
    /// The name as requests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The number of the period holding a local date.
    pub fn index_of_date(self, date: NaiveDate) -> i64 {
        match self {
            Period::Day => i64::from(date.num_days_from_ce()),
            Period::Week => (date - epoch_monday()).num_days().div_euclid(7),
            Period::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        }
    }

    /// The number of the period holding an instant.
    pub fn index(self, instant: DateTime<Utc>, timezone: Tz) -> i64 {
        self.index_of_date(instant.with_timezone(&timezone).date_naive())
    }

    /// The number of the period holding `micros` since the epoch.
    pub fn index_of_micros(self, micros: i64, timezone: Tz) -> i64 {
        self.index(
            DateTime::from_timestamp_micros(micros).unwrap_or_default(),
            timezone,
        )
    }

    /// The first local day of a period.
    pub fn first_day(self, index: i64) -> NaiveDate {
        match self {
            Period::Day => NaiveDate::from_num_days_from_ce_opt(index as i32).unwrap_or_default(),
            Period::Week => epoch_monday() + Duration::weeks(index),
            Period::Month => {
                let (year, month0) = (index.div_euclid(12), index.rem_euclid(12));
                NaiveDate::from_ymd_opt(year as i32, 1, 1)
                    .and_then(|d| d.checked_add_months(Months::new(month0 as u32)))
                    .unwrap_or_default()
            }
        }
    }

    /// The instant a period starts.
    pub fn start(self, index: i64, timezone: Tz) -> DateTime<Utc> {
        start_of_day(self.first_day(index), timezone).unwrap_or_default()
    }

    /// The periods that overlap a range, first and last included.
    pub fn covering(self, range: TimeRange, timezone: Tz) -> std::ops::RangeInclusive<i64> {
        let last = range.to - Duration::microseconds(1);
        self.index(range.from, timezone)..=self.index(last.max(range.from), timezone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_number_consecutively_and_start_at_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(); // a Sunday
        for period in [Period::Day, Period::Week, Period::Month] {
            let index = period.index_of_date(date);
            assert!(period.first_day(index) <= date);
            assert!(period.first_day(index + 1) > date);
            assert_eq!(period.index_of_date(period.first_day(index + 1)), index + 1);
        }
        let week = Period::Week.index_of_date(date);
        assert_eq!(
            Period::Week.first_day(week),
            NaiveDate::from_ymd_opt(2026, 3, 23).unwrap()
        );
        let start = Period::Day.start(Period::Day.index_of_date(date), berlin);
        assert_eq!(start.to_rfc3339(), "2026-03-28T23:00:00+00:00");
    }
}
