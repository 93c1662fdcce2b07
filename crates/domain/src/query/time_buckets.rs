//! Time buckets in a timezone: the UTC offsets in force over a range (so that
//! storage engines without timezone data can compute local time), the buckets
//! of a range, and their labels.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::date_range::TimeRange;
use super::dimension::Granularity;
use crate::clock::start_of_day;

/// From `from` on, local time is UTC plus `offset_seconds` (until the next segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSegment {
    /// When this offset takes effect.
    pub from: DateTime<Utc>,
    /// Local time minus UTC, in seconds.
    pub offset_seconds: i32,
}

/// The offsets of a timezone over a range, in order; the first covers the range's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSchedule {
    /// Segments, the first starting at or before the range.
    pub segments: Vec<OffsetSegment>,
}

fn offset_at(timezone: Tz, instant: DateTime<Utc>) -> i32 {
    timezone
        .offset_from_utc_datetime(&instant.naive_utc())
        .fix()
        .local_minus_utc()
}

impl OffsetSchedule {
    /// The offsets in force between `range.from` and `range.to`.
    pub fn for_range(timezone: Tz, range: TimeRange) -> Self {
        let mut segments = vec![OffsetSegment {
            from: range.from,
            offset_seconds: offset_at(timezone, range.from),
        }];
        let step = Duration::days(1);
        let mut cursor = range.from;
        while cursor < range.to {
            let next = (cursor + step).min(range.to);
            let current = segments.last().expect("one segment").offset_seconds;
            if offset_at(timezone, next) != current {
                // The first whole second with the new offset (zones change on whole seconds).
                let (mut low, mut high) = (cursor.timestamp(), next.timestamp());
                while high - low > 1 {
                    let middle = low + (high - low) / 2;
                    let instant = DateTime::from_timestamp(middle, 0).expect("in range");
                    if offset_at(timezone, instant) == current {
                        low = middle;
                    } else {
                        high = middle;
                    }
                }
                let high = DateTime::from_timestamp(high, 0).expect("in range");
                segments.push(OffsetSegment {
                    from: high,
                    offset_seconds: offset_at(timezone, high),
                });
            }
            cursor = next;
        }
        OffsetSchedule { segments }
    }
}

/// Length of one bucket, for estimates.
fn nominal_seconds(granularity: Granularity) -> i64 {
    match granularity {
        Granularity::Minute => 60,
        Granularity::Hour => 3_600,
        Granularity::Day => 86_400,
        Granularity::Week => 7 * 86_400,
        Granularity::Month => 28 * 86_400,
    }
}

/// About how many buckets of `granularity` the range has (an upper bound).
pub fn estimated_buckets(range: TimeRange, granularity: Granularity) -> i64 {
    (range.to - range.from).num_seconds() / nominal_seconds(granularity) + 2
}

/// The granularity `time` means for a range: hours up to two days, days up to
/// 92 days, else months.
pub fn automatic_granularity(range: TimeRange) -> Granularity {
    let length = range.to - range.from;
    if length <= Duration::hours(49) {
        Granularity::Hour
    } else if length <= Duration::days(93) {
        Granularity::Day
    } else {
        Granularity::Month
    }
}

/// The local start of the calendar bucket holding `date`.
pub fn calendar_bucket(date: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Week => {
            date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
        }
        Granularity::Month => date.with_day(1).expect("day 1 exists"),
        _ => date,
    }
}

fn next_calendar_bucket(date: NaiveDate, granularity: Granularity) -> Option<NaiveDate> {
    match granularity {
        Granularity::Week => date.checked_add_signed(Duration::days(7)),
        Granularity::Month => date.checked_add_months(chrono::Months::new(1)),
        _ => date.succ_opt(),
    }
}

/// The start instant of every bucket that overlaps the range, in order.
pub fn bucket_starts(
    range: TimeRange,
    granularity: Granularity,
    timezone: Tz,
) -> Vec<DateTime<Utc>> {
    let mut starts = Vec::new();
    if granularity.is_calendar() {
        let first = range.from.with_timezone(&timezone).date_naive();
        let mut date = calendar_bucket(first, granularity);
        while let Some(start) = start_of_day(date, timezone) {
            if start >= range.to {
                break;
            }
            starts.push(start);
            match next_calendar_bucket(date, granularity) {
                Some(next) => date = next,
                None => break,
            }
        }
    } else {
        let local = range.from.with_timezone(&timezone);
        let into_bucket = match granularity {
            Granularity::Minute => Duration::seconds(i64::from(local.second())),
            _ => Duration::seconds(i64::from(local.minute() * 60 + local.second())),
        } + Duration::nanoseconds(i64::from(local.nanosecond()));
        let step = Duration::seconds(nominal_seconds(granularity));
        let mut start = range.from - into_bucket;
        while start < range.to {
            starts.push(start);
            start += step;
        }
    }
    starts
}

/// A bucket's label: its start as a local date-time with offset.
pub fn label(start: DateTime<Utc>, timezone: Tz) -> String {
    start
        .with_timezone(&timezone)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn range(from: &str, to: &str) -> TimeRange {
        TimeRange {
            from: at(from),
            to: at(to),
        }
    }

    #[test]
    fn the_schedule_finds_each_transition_to_the_second() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let schedule = OffsetSchedule::for_range(
            berlin,
            range("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        );
        let segments: Vec<_> = schedule
            .segments
            .iter()
            .map(|s| (s.from, s.offset_seconds))
            .collect();
        assert_eq!(
            segments,
            vec![
                (at("2026-01-01T00:00:00Z"), 3_600),
                (at("2026-03-29T01:00:00Z"), 7_200),
                (at("2026-10-25T01:00:00Z"), 3_600),
            ]
        );
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let schedule = OffsetSchedule::for_range(
            kolkata,
            range("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        );
        assert_eq!(schedule.segments.len(), 1);
        assert_eq!(schedule.segments[0].offset_seconds, 19_800);
    }

    #[test]
    fn dst_days_are_one_bucket_and_hours_are_real_hours() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 25 October 2026: 25 hours in Berlin.
        let day = range("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
        let days = bucket_starts(day, Granularity::Day, berlin);
        assert_eq!(days, vec![at("2026-10-24T22:00:00Z")]);
        let hours = bucket_starts(day, Granularity::Hour, berlin);
        assert_eq!(hours.len(), 25);
        let labels: Vec<_> = hours[1..4].iter().map(|h| label(*h, berlin)).collect();
        assert_eq!(
            labels,
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00"
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_half_hour_zones_keep_their_hours() {
        let utc: Tz = "UTC".parse().unwrap();
        let weeks = bucket_starts(
            range("2026-03-04T00:00:00Z", "2026-03-17T00:00:00Z"),
            Granularity::Week,
            utc,
        );
        assert_eq!(
            weeks,
            vec![
                at("2026-03-02T00:00:00Z"),
                at("2026-03-09T00:00:00Z"),
                at("2026-03-16T00:00:00Z")
            ]
        );
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let hours = bucket_starts(
            range("2026-03-01T18:30:00Z", "2026-03-01T20:30:00Z"),
            Granularity::Hour,
            kolkata,
        );
        let labels: Vec<_> = hours.iter().map(|h| label(*h, kolkata)).collect();
        assert_eq!(
            labels,
            ["2026-03-02T00:00:00+05:30", "2026-03-02T01:00:00+05:30"]
        );
    }
}
