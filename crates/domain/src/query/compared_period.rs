//! The period a query's answer is compared with (`compare`): the period
//! before it, the same dates a year earlier, or a range of its own.

use chrono::{DateTime, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::{DateRangeSpec, QueryError, QuerySpec, TimeRange};
use crate::clock::start_of_day;

/// What an answer is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ComparedPeriod {
    /// As long as the range and ending where it starts: the 30 days before
    /// the last 30 days.
    PreviousPeriod,
    /// The same local dates and times a year earlier (29 February becomes
    /// the 28th).
    YearOverYear,
    /// A range of its own, in any form `date_range` takes but `all`.
    Range(DateRangeSpec),
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::new("compare", message)
}

impl ComparedPeriod {
    /// Parses the `compare` member.
    pub fn parse(value: &Value) -> Result<Self, QueryError> {
        match value {
            Value::String(mode) if mode == "previous_period" => Ok(ComparedPeriod::PreviousPeriod),
            Value::String(mode) if mode == "year_over_year" => Ok(ComparedPeriod::YearOverYear),
            Value::String(_) => DateRangeSpec::parse(value)
                .map(ComparedPeriod::Range)
                .map_err(|_| {
                    invalid("expected \"previous_period\", \"year_over_year\" or a range (\"yesterday\", [from, to], ...)")
                }),
            Value::Array(_) => DateRangeSpec::parse(value)
                .map(ComparedPeriod::Range)
                .map_err(|error| {
                    QueryError::new(
                        error.path.replacen("date_range", "compare", 1),
                        error.message,
                    )
                }),
            _ => Err(invalid(
                "expected \"previous_period\", \"year_over_year\" or a range [from, to]",
            )),
        }
    }

    /// The compared range of `range` (the query's own, resolved), in
    /// `timezone`. A range of whole local days compares with whole local
    /// days, so that a day of 23 or 25 hours does not shift the period.
    pub fn resolve(
        &self,
        range: TimeRange,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<TimeRange, QueryError> {
        let out_of_range = || invalid("the compared period lies out of the supported dates");
        let local_days = whole_local_days(range, timezone);
        match self {
            ComparedPeriod::Range(spec) => {
                if *spec == DateRangeSpec::All {
                    return Err(invalid("compare with a range of dates, not \"all\""));
                }
                spec.resolve(timezone, now, None).map_err(|error| {
                    QueryError::new(
                        error.path.replacen("date_range", "compare", 1),
                        error.message,
                    )
                })
            }
            ComparedPeriod::PreviousPeriod => match local_days {
                Some((first, last)) => {
                    let days = (last - first).num_days() + 1;
                    days_range(first - Duration::days(days), first, timezone)
                        .ok_or_else(out_of_range)
                }
                None => Ok(TimeRange {
                    from: range.from - (range.to - range.from),
                    to: range.from,
                }),
            },
            ComparedPeriod::YearOverYear => {
                let year = Months::new(12);
                match local_days {
                    Some((first, last)) => {
                        let first = first.checked_sub_months(year).ok_or_else(out_of_range)?;
                        let last = last.checked_sub_months(year).ok_or_else(out_of_range)?;
                        days_range(first, last + Duration::days(1), timezone)
                            .ok_or_else(out_of_range)
                    }
                    None => {
                        let shift = |instant: DateTime<Utc>| {
                            let local = instant.with_timezone(&timezone).naive_local();
                            let earlier = local.checked_sub_months(year)?;
                            timezone
                                .from_local_datetime(&earlier)
                                .earliest()
                                .map(|t| t.to_utc())
                        };
                        Ok(TimeRange {
                            from: shift(range.from).ok_or_else(out_of_range)?,
                            to: shift(range.to).ok_or_else(out_of_range)?,
                        })
                    }
                }
            }
        }
    }
}

/// The query of the compared period: `spec` over the range `compare`
/// names for `range` (the query's own, resolved), in the same timezone;
/// `None` when `spec` asks for no comparison.
pub fn compared_spec(
    spec: &QuerySpec,
    range: TimeRange,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Result<Option<QuerySpec>, QueryError> {
    let Some(compare) = &spec.compare else {
        return Ok(None);
    };
    if spec.date_range == DateRangeSpec::All && !matches!(compare, ComparedPeriod::Range(_)) {
        return Err(invalid(
            "the range \"all\" has no period before it; compare with a range [from, to]",
        ));
    }
    let compared = compare.resolve(range, timezone, now)?;
    let offset = |instant: DateTime<Utc>| instant.with_timezone(&timezone).fixed_offset();
    Ok(Some(QuerySpec {
        date_range: DateRangeSpec::Instants(
            offset(compared.from),
            offset(compared.to - Duration::microseconds(1)),
        ),
        timezone: Some(timezone),
        compare: None,
        ..spec.clone()
    }))
}

/// The first and last local day of `range` when it starts and ends at local
/// midnights.
fn whole_local_days(range: TimeRange, timezone: Tz) -> Option<(NaiveDate, NaiveDate)> {
    let first = range.from.with_timezone(&timezone).date_naive();
    let next = range.to.with_timezone(&timezone).date_naive();
    let starts_a_day = start_of_day(first, timezone) == Some(range.from);
    let ends_a_day = start_of_day(next, timezone) == Some(range.to);
    (starts_a_day && ends_a_day && next > first).then(|| (first, next - Duration::days(1)))
}

/// The local days from `first` up to `next` (excluded).
fn days_range(first: NaiveDate, next: NaiveDate, timezone: Tz) -> Option<TimeRange> {
    Some(TimeRange {
        from: start_of_day(first, timezone)?,
        to: start_of_day(next, timezone)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn compared(compare: Value, range: Value, zone: &str) -> TimeRange {
        let timezone: Tz = zone.parse().unwrap();
        let now = at("2026-04-10T12:00:00Z");
        let range = DateRangeSpec::parse(&range)
            .unwrap()
            .resolve(timezone, now, None)
            .unwrap();
        ComparedPeriod::parse(&compare)
            .unwrap()
            .resolve(range, timezone, now)
            .unwrap()
    }

    #[test]
    fn the_previous_period_is_as_many_local_days_before() {
        // 7 days from 30 March in Berlin: the 7 before span the DST change
        // (a 23-hour day) and still start at local midnight.
        assert_eq!(
            compared(
                json!("previous_period"),
                json!(["2026-03-30", "2026-04-05"]),
                "Europe/Berlin"
            ),
            TimeRange {
                from: at("2026-03-22T23:00:00Z"),
                to: at("2026-03-29T22:00:00Z")
            }
        );
        // Instants move by the range's length.
        assert_eq!(
            compared(
                json!("previous_period"),
                json!(["2026-04-01T10:00:00Z", "2026-04-01T11:59:59.999999Z"]),
                "UTC"
            ),
            TimeRange {
                from: at("2026-04-01T08:00:00Z"),
                to: at("2026-04-01T10:00:00Z")
            }
        );
    }

    #[test]
    fn a_year_earlier_keeps_the_local_dates() {
        assert_eq!(
            compared(
                json!("year_over_year"),
                json!(["2028-02-01", "2028-02-29"]),
                "UTC"
            ),
            TimeRange {
                from: at("2027-02-01T00:00:00Z"),
                to: at("2027-03-01T00:00:00Z")
            },
            "29 February becomes the 28th"
        );
        assert_eq!(
            compared(json!("year_over_year"), json!("month"), "Europe/Berlin"),
            TimeRange {
                from: at("2025-03-31T22:00:00Z"),
                to: at("2025-04-30T22:00:00Z")
            }
        );
    }

    #[test]
    fn a_range_of_its_own_is_resolved_like_date_range() {
        assert_eq!(
            compared(json!(["2025-01-01", "2025-01-31"]), json!("7d"), "UTC"),
            TimeRange {
                from: at("2025-01-01T00:00:00Z"),
                to: at("2025-02-01T00:00:00Z")
            }
        );
    }

    #[test]
    fn a_named_range_is_one_too() {
        assert_eq!(
            compared(json!("yesterday"), json!("7d"), "UTC"),
            TimeRange {
                from: at("2026-04-09T00:00:00Z"),
                to: at("2026-04-10T00:00:00Z")
            }
        );
    }

    #[test]
    fn bad_modes_name_compare() {
        let error = ComparedPeriod::parse(&json!("last_week")).unwrap_err();
        assert_eq!(error.path, "compare");
        let error = ComparedPeriod::parse(&json!(["2026-01-02", "2026-01-01"])).unwrap_err();
        assert_eq!(error.path, "compare[1]");
        let all = ComparedPeriod::Range(DateRangeSpec::All)
            .resolve(
                TimeRange {
                    from: at("2026-01-01T00:00:00Z"),
                    to: at("2026-01-02T00:00:00Z"),
                },
                Tz::UTC,
                at("2026-01-05T00:00:00Z"),
            )
            .unwrap_err();
        assert_eq!(all.path, "compare");
    }
}
