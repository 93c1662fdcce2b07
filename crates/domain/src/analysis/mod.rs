//! Product analytics computed over each person's timeline: funnels,
//! retention, stickiness, lifecycle, paths, and the sessions of `/v1/query`.
//!
//! Storage does what it is best at, the same way on every backend: it selects
//! a project's events in a range that pass the request's filters, resolves
//! each event's person (see [`crate::identity`]), marks which of the
//! request's event specifications ("matchers") each event satisfies, and
//! streams them ordered by person and time ([`TimelineRequest`] →
//! [`TimelineEvent`]s). Each analysis then folds one person at a time
//! ([`PersonFold`]), so that its memory grows with what it counts, never
//! with the range read. Where the order of events at the same instant
//! matters (funnel steps, paths, a session's first event), they are taken in
//! `messageId` order, so answers never depend on the backend.

pub mod funnel;
mod grouping;
pub mod lifecycle;
pub mod paths;
pub mod period;
pub mod retention;
pub mod rollup;
pub mod session_cells;
pub mod sessions;
pub mod stickiness;
pub mod timeline;
pub mod visit_events;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use crate::query::{DateRangeSpec, EventDimension, Filter, PlanContext, QueryError, TimeRange};
pub use period::{LocalClock, Period};
pub use timeline::{
    fold_all, persons, Folding, PersonFold, TimelineEvent, TimelineRequest, MAX_MATCHERS,
};

/// The members every analysis shares with `/v1/query`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeSpec {
    /// The range.
    pub date_range: DateRangeSpec,
    /// Timezone of periods and labels; `None` for the project's.
    pub timezone: Option<Tz>,
    /// Filters every event must pass.
    pub filter: Option<Filter>,
}

/// An event name with optional filters, as analyses name their steps.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// The event name (`track` calls), or the call type (`page`, `screen`,
    /// `identify`, ...) for other calls.
    pub event: String,
    /// Filters on the event.
    pub filter: Option<Filter>,
}

impl EventSpec {
    /// The filter an event satisfies when it is this specification's event.
    pub fn matcher(&self, path: &str) -> Result<Filter, QueryError> {
        if self.event.trim().is_empty() {
            return Err(QueryError::new(
                format!("{path}.event"),
                "an event name is required",
            ));
        }
        let name = Filter::is(EventDimension::Name, vec![self.event.clone()]);
        Ok(match &self.filter {
            Some(filter) => Filter::And(vec![name, filter.clone()]),
            None => name,
        })
    }
}

/// Timezone, range and filters of an analysis, resolved like `/v1/query`'s.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The project.
    pub project_id: String,
    /// Timezone of periods and labels.
    pub timezone: Tz,
    /// The requested range.
    pub range: TimeRange,
    /// Filters every event must pass.
    pub filter: Option<Filter>,
    /// The current time.
    pub now: DateTime<Utc>,
}

impl Scope {
    /// Resolves the common members of an analysis.
    pub fn resolve(context: &PlanContext, spec: &ScopeSpec) -> Result<Scope, QueryError> {
        let timezone = spec.timezone.unwrap_or(context.default_timezone);
        let range = spec
            .date_range
            .resolve(timezone, context.now, context.data_bounds)?;
        Ok(Scope {
            project_id: context.project_id.clone(),
            timezone,
            range,
            filter: spec.filter.clone(),
            now: context.now,
        })
    }

    /// The range as answers echo it.
    pub fn described_range(&self) -> [String; 2] {
        DateRangeSpec::describe(self.range, self.timezone)
    }

    /// A timeline request over `range` with this scope's project and filters.
    pub fn timeline(&self, range: TimeRange, matchers: Vec<Filter>) -> TimelineRequest {
        TimelineRequest {
            project_id: self.project_id.clone(),
            range,
            filter: self.filter.clone(),
            matchers,
            all_events: false,
            ordered_ties: false,
            labels: Vec::new(),
        }
    }
}

/// Facts about an analysis answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct AnalysisMeta {
    /// Time spent answering, in milliseconds.
    pub took_ms: u64,
}

/// One kind of analysis: a spec checked into a plan, which folds the
/// timeline it reads into the answer.
pub trait Analysis: PersonFold<Output = Self::Answer> + Sized {
    /// What clients ask.
    type Spec: Send + Sync + 'static;
    /// The answer.
    type Answer: Serialize + Send + 'static;

    /// The members shared with `/v1/query`.
    fn scope(spec: &Self::Spec) -> &ScopeSpec;

    /// Checks a spec.
    fn plan(spec: &Self::Spec, context: &PlanContext) -> Result<Self, QueryError>;

    /// Where the answer reports the time it took, in milliseconds.
    fn took_ms(answer: &mut Self::Answer) -> &mut u64;
}

/// Implements [`Analysis`] for a plan type whose spec has a `scope` and
/// whose answer has `meta.took_ms`.
macro_rules! analysis {
    ($plan:ty, $spec:ty, $answer:ty) => {
        impl $crate::analysis::Analysis for $plan {
            type Spec = $spec;
            type Answer = $answer;

            fn scope(spec: &$spec) -> &$crate::analysis::ScopeSpec {
                &spec.scope
            }

            fn plan(
                spec: &$spec,
                context: &$crate::query::PlanContext,
            ) -> Result<Self, $crate::query::QueryError> {
                <$plan>::new(spec, context)
            }

            fn took_ms(answer: &mut $answer) -> &mut u64 {
                &mut answer.meta.took_ms
            }
        }
    };
}
pub(crate) use analysis;

/// Parses a duration such as `"30m"`, `"2h"`, `"7d"` or `"90s"`, between 1 s
/// and [`MAX_WINDOW_DAYS`] days.
pub fn parse_window(text: &str, path: &str) -> Result<Duration, QueryError> {
    let invalid = || {
        QueryError::new(
            path,
            format!("{text:?}: expected a number and a unit, e.g. \"30m\", \"2h\", \"7d\""),
        )
    };
    let out_of_range =
        || QueryError::new(path, format!("must be between 1s and {MAX_WINDOW_DAYS}d"));
    let text = text.trim();
    let (split, _) = text.char_indices().last().ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let seconds_per_unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Any number too large for 64 bits is out of range too.
    let number: i64 = number.parse().map_err(|_| out_of_range())?;
    let seconds = number
        .checked_mul(seconds_per_unit)
        .filter(|&seconds| (1..=MAX_WINDOW_DAYS * 86_400).contains(&seconds))
        .ok_or_else(out_of_range)?;
    Ok(Duration::seconds(seconds))
}

/// Longest conversion window.
pub const MAX_WINDOW_DAYS: i64 = 366;

/// `part / whole`, rounded to four decimals; 0 when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0
}

/// Seconds of a span in microseconds, rounded to milliseconds.
pub(crate) fn seconds(micros: f64) -> f64 {
    (micros / 1_000.0).round() / 1_000.0
}

/// Checks a bounded count member.
pub(crate) fn check_count(
    value: u32,
    path: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<(), QueryError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(QueryError::new(
            path,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_their_unit() {
        assert_eq!(
            parse_window("30m", "window").unwrap(),
            Duration::minutes(30)
        );
        assert_eq!(parse_window("7d", "window").unwrap(), Duration::days(7));
        assert_eq!(parse_window("2w", "window").unwrap(), Duration::days(14));
        assert!(parse_window("7", "window").is_err());
        assert!(parse_window("7é", "window").is_err());
        assert!(parse_window("", "window").is_err());
        assert!(parse_window("-3d", "window").is_err());
        assert!(parse_window("+3d", "window").is_err());
        assert_eq!(
            parse_window("9y", "window").unwrap_err().to_string(),
            "window: \"9y\": expected a number and a unit, e.g. \"30m\", \"2h\", \"7d\""
        );
    }

    #[test]
    fn windows_out_of_range_are_refused_never_computed() {
        for text in [
            "0h",
            "367d",
            "9999999999999999d",
            "99999999999999999999999w",
            "9223372036854775807s",
            "1537228672809129302w",
        ] {
            assert_eq!(
                parse_window(text, "window").unwrap_err().message,
                "must be between 1s and 366d",
                "{text}"
            );
        }
        assert_eq!(parse_window("366d", "window").unwrap(), Duration::days(366));
    }

    #[test]
    fn shares_round_to_four_decimals() {
        assert_eq!(share(1, 3), 0.3333);
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(seconds(1_234_567.0), 1.235);
    }
}
