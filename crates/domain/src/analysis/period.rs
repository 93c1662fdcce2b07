//! Local calendar periods (days, Monday weeks, months) numbered so that
//! consecutive periods differ by one.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::clock::start_of_day;
use crate::query::{OffsetSchedule, TimeRange};

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

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Local days of instants, from a timezone's offsets over a range: one
/// lookup and an integer division per instant instead of a timezone
/// conversion. Instants outside the range take the nearest segment's offset.
#[derive(Debug, Clone)]
pub struct LocalClock {
    /// Segment starts, microseconds since the epoch, ascending.
    starts: Vec<i64>,
    /// Each segment's local time minus UTC, in microseconds.
    offsets: Vec<i64>,
}

impl LocalClock {
    /// The clock of `timezone` over `range`.
    pub fn new(timezone: Tz, range: TimeRange) -> Self {
        Self::from_schedule(&OffsetSchedule::for_range(timezone, range))
    }

    /// The clock of an offset schedule.
    pub fn from_schedule(schedule: &OffsetSchedule) -> Self {
        LocalClock {
            starts: schedule
                .segments
                .iter()
                .map(|s| s.from.timestamp_micros())
                .collect(),
            offsets: schedule
                .segments
                .iter()
                .map(|s| i64::from(s.offset_seconds) * 1_000_000)
                .collect(),
        }
    }

    /// Local time as microseconds since the (local) epoch.
    pub fn local_micros(&self, micros: i64) -> i64 {
        let segment = self.starts.partition_point(|&start| start <= micros).max(1) - 1;
        micros + self.offsets.get(segment).copied().unwrap_or(0)
    }

    /// The local day, as days since 1970-01-01.
    pub fn day(&self, micros: i64) -> i64 {
        self.local_micros(micros).div_euclid(MICROS_PER_DAY)
    }
}

/// The date of a day counted from 1970-01-01.
pub fn date_of_day(day: i64) -> NaiveDate {
    i32::try_from(day + EPOCH_DAYS_FROM_CE)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or_default()
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

    /// The number of the period holding a local day (days since 1970-01-01).
    pub fn index_of_day(self, day: i64) -> i64 {
        match self {
            Period::Day => day + EPOCH_DAYS_FROM_CE,
            Period::Week => (day - 4).div_euclid(7),
            Period::Month => self.index_of_date(date_of_day(day)),
        }
    }

    /// The number of the period holding `micros` since the epoch.
    pub fn index_of_micros(self, micros: i64, clock: &LocalClock) -> i64 {
        self.index_of_day(clock.day(micros))
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

    #[test]
    fn the_local_clock_agrees_with_the_timezone_across_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let range = TimeRange {
            from: "2026-03-20T00:00:00Z".parse().unwrap(),
            to: "2026-11-10T00:00:00Z".parse().unwrap(),
        };
        let clock = LocalClock::new(berlin, range);
        let mut instant = range.from;
        while instant < range.to {
            let micros = instant.timestamp_micros();
            for period in [Period::Day, Period::Week, Period::Month] {
                assert_eq!(
                    period.index_of_micros(micros, &clock),
                    period.index(instant, berlin),
                    "{period:?} at {instant}"
                );
            }
            instant += Duration::minutes(37);
        }
    }
}
