//! Date ranges: absolute or relative, resolved in the query's timezone.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::QueryError;

use crate::clock::start_of_day;

/// Longest relative range in days (`Nd`).
const MAX_DAYS: u32 = 3_660;

/// A date range as requested.
#[derive(Debug, Clone, PartialEq)]
pub enum DateRangeSpec {
    /// Whole local days, both inclusive.
    Dates(NaiveDate, NaiveDate),
    /// Instants, both inclusive.
    Instants(DateTime<FixedOffset>, DateTime<FixedOffset>),
    /// The current local day.
    Today,
    /// The local day before today.
    Yesterday,
    /// The last N local days, today included.
    LastDays(u32),
    /// The current local calendar month.
    Month,
    /// The current local calendar year.
    Year,
    /// Every stored event.
    All,
}

/// A half-open span of time: `from <= t < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included.
    pub from: DateTime<Utc>,
    /// First instant excluded.
    pub to: DateTime<Utc>,
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::new("date_range", message)
}

/// The years a range may name: those in which events can be stored
/// (1970 to 2105), so that no request makes the planner walk centuries.
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2105;

fn parse_bound(text: &str, index: usize) -> Result<Bound, QueryError> {
    let path = || format!("date_range[{index}]");
    let bound = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Bound::Date(date)
    } else {
        DateTime::parse_from_rfc3339(text)
            .map(Bound::Instant)
            .map_err(|_| {
                QueryError::new(
                    path(),
                    format!("{text:?} is neither a date (YYYY-MM-DD) nor an ISO-8601 date-time with an offset"),
                )
            })?
    };
    let year = match &bound {
        Bound::Date(date) => date.year(),
        Bound::Instant(instant) => instant.to_utc().year(),
    };
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        return Err(QueryError::new(
            path(),
            format!("{text:?}: ranges lie between {FIRST_YEAR} and {LAST_YEAR}, the years events can have"),
        ));
    }
    Ok(bound)
}

enum Bound {
    Date(NaiveDate),
    Instant(DateTime<FixedOffset>),
}

impl DateRangeSpec {
    /// Parses the `date_range` member.
    pub fn parse(value: &Value) -> Result<Self, QueryError> {
        match value {
            Value::String(name) => Self::parse_name(name),
            Value::Array(pair) => {
                let [Value::String(first), Value::String(last)] = pair.as_slice() else {
                    return Err(invalid("expected [from, to]: two dates or two date-times"));
                };
                match (parse_bound(first, 0)?, parse_bound(last, 1)?) {
                    (Bound::Date(from), Bound::Date(to)) if from <= to => {
                        Ok(DateRangeSpec::Dates(from, to))
                    }
                    (Bound::Instant(from), Bound::Instant(to)) if from <= to => {
                        Ok(DateRangeSpec::Instants(from, to))
                    }
                    (Bound::Date(_), Bound::Date(_)) | (Bound::Instant(_), Bound::Instant(_)) => {
                        Err(QueryError::new(
                            "date_range[1]",
                            "the end is before the start",
                        ))
                    }
                    _ => Err(invalid("both ends must be dates, or both date-times")),
                }
            }
            _ => Err(invalid(
                "expected [from, to] or one of today, yesterday, 7d, 30d, month, year, all",
            )),
        }
    }

    fn parse_name(name: &str) -> Result<Self, QueryError> {
        Ok(match name {
            "today" => DateRangeSpec::Today,
            "yesterday" => DateRangeSpec::Yesterday,
            "month" => DateRangeSpec::Month,
            "year" => DateRangeSpec::Year,
            "all" => DateRangeSpec::All,
            _ => {
                let days = name
                    .strip_suffix('d')
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (1..=MAX_DAYS).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "unknown range {name:?} (today, yesterday, Nd such as 7d or 30d, month, year, all)"
                        ))
                    })?;
                DateRangeSpec::LastDays(days)
            }
        })
    }

    /// The range in absolute time. `data_bounds` (first and last stored event) is
    /// used by `all` only.
    pub fn resolve(
        &self,
        timezone: Tz,
        now: DateTime<Utc>,
        data_bounds: Option<TimeRange>,
    ) -> Result<TimeRange, QueryError> {
        let today = now.with_timezone(&timezone).date_naive();
        let days = |first: NaiveDate, last: NaiveDate| {
            let from = start_of_day(first, timezone);
            let to = last
                .succ_opt()
                .and_then(|next| start_of_day(next, timezone));
            match (from, to) {
                (Some(from), Some(to)) => Ok(TimeRange { from, to }),
                _ => Err(invalid("out of the supported range of dates")),
            }
        };
        match self {
            DateRangeSpec::Dates(first, last) => days(*first, *last),
            DateRangeSpec::Instants(from, to) => Ok(TimeRange {
                from: from.to_utc(),
                to: to.to_utc() + Duration::microseconds(1),
            }),
            DateRangeSpec::Today => days(today, today),
            DateRangeSpec::Yesterday => {
                let yesterday = today.pred_opt().ok_or_else(|| invalid("out of range"))?;
                days(yesterday, yesterday)
            }
            DateRangeSpec::LastDays(n) => days(today - Duration::days(i64::from(*n) - 1), today),
            DateRangeSpec::Month => {
                let first = today.with_day(1).expect("day 1 exists");
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .ok_or_else(|| invalid("out of range"))?;
                days(first, next.pred_opt().expect("a month has a last day"))
            }
            DateRangeSpec::Year => {
                let first = NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("1 January");
                let last = NaiveDate::from_ymd_opt(today.year(), 12, 31).expect("31 December");
                days(first, last)
            }
            DateRangeSpec::All => match data_bounds {
                Some(bounds) => {
                    let first = bounds.from.with_timezone(&timezone).date_naive();
                    let last = bounds.to.with_timezone(&timezone).date_naive().max(today);
                    days(first.min(today), last)
                }
                None => days(today, today),
            },
        }
    }

    /// The range as the answer echoes it: absolute, inclusive, in the query's timezone.
    pub fn describe(range: TimeRange, timezone: Tz) -> [String; 2] {
        let last = range.to - Duration::microseconds(1);
        [range.from, last].map(|instant| {
            instant
                .with_timezone(&timezone)
                .format("%Y-%m-%dT%H:%M:%S%.f%:z")
                .to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn resolve(value: Value, zone: &str, now: &str) -> TimeRange {
        DateRangeSpec::parse(&value)
            .unwrap()
            .resolve(zone.parse().unwrap(), at(now), None)
            .unwrap()
    }

    #[test]
    fn date_pairs_are_whole_local_days() {
        let range = resolve(
            json!(["2026-03-29", "2026-03-29"]),
            "Europe/Berlin",
            "2026-04-01T00:00:00Z",
        );
        assert_eq!(range.from, at("2026-03-28T23:00:00Z"));
        assert_eq!(range.to, at("2026-03-29T22:00:00Z"), "a 23-hour day");
    }

    #[test]
    fn relative_ranges_follow_the_local_calendar() {
        // 23:30 UTC on 31 March is already 1 April in Berlin.
        let now = "2026-03-31T23:30:00Z";
        assert_eq!(
            resolve(json!("today"), "Europe/Berlin", now),
            TimeRange {
                from: at("2026-03-31T22:00:00Z"),
                to: at("2026-04-01T22:00:00Z")
            }
        );
        assert_eq!(
            resolve(json!("yesterday"), "Europe/Berlin", now).from,
            at("2026-03-30T22:00:00Z")
        );
        assert_eq!(
            resolve(json!("7d"), "Europe/Berlin", now).from,
            at("2026-03-25T23:00:00Z")
        );
        assert_eq!(
            resolve(json!("month"), "Europe/Berlin", now),
            TimeRange {
                from: at("2026-03-31T22:00:00Z"),
                to: at("2026-04-30T22:00:00Z")
            }
        );
        assert_eq!(
            resolve(json!("year"), "UTC", now),
            TimeRange {
                from: at("2026-01-01T00:00:00Z"),
                to: at("2027-01-01T00:00:00Z")
            }
        );
    }

    #[test]
    fn date_time_pairs_include_their_end() {
        let range = resolve(
            json!(["2026-03-01T10:00:00+01:00", "2026-03-01T12:00:00Z"]),
            "UTC",
            "2026-04-01T00:00:00Z",
        );
        assert_eq!(range.from, at("2026-03-01T09:00:00Z"));
        assert_eq!(range.to, at("2026-03-01T12:00:00.000001Z"));
    }

    #[test]
    fn bad_ranges_name_the_part_at_fault() {
        let error = |value: Value| DateRangeSpec::parse(&value).unwrap_err();
        assert_eq!(
            error(json!(["2026-03-02", "2026-03-01"])).path,
            "date_range[1]"
        );
        assert_eq!(error(json!(["2026-03-01", "March"])).path, "date_range[1]");
        assert_eq!(error(json!("fortnight")).path, "date_range");
        assert_eq!(
            error(json!(["2026-03-01", "2026-03-01T00:00:00Z"])).path,
            "date_range"
        );
        assert_eq!(
            error(json!(["0001-01-01", "2026-03-01"])).path,
            "date_range[0]"
        );
        assert_eq!(
            error(json!(["2026-03-01T00:00:00Z", "9999-12-31T23:59:59Z"])).path,
            "date_range[1]"
        );
    }
}
