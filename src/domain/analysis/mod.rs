//! Product analytics computed over each person's timeline: funnels,
//! retention, stickiness, lifecycle and paths.
//!
//! Storage does what it is best at, the same way on every backend: it selects
//! a project's events in a range that pass the request's filters, resolves
//! each event's person (see [`crate::domain::identity`]), marks which of the
//! request's event specifications ("matchers") each event satisfies, and
//! returns them ordered by person and time ([`TimelineRequest`] →
//! [`TimelineEvent`]s). The analyses below then walk each person's timeline
//! once. Where the order of events at the same instant matters (funnel steps,
//! paths, a session's first event), they are taken in `messageId` order, so
//! answers never depend on the backend.

pub mod funnel;
pub mod lifecycle;
pub mod paths;
pub(crate) mod period;
pub mod retention;
pub mod stickiness;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::query::{
    parse_filters, resolve_timezone, DateRangeSpec, Dimension, Filter, FilterOp, PlanContext,
    QueryError, TimeRange,
};
pub use period::{LocalClock, Period};

/// Most matchers one timeline request may carry (bits of [`TimelineEvent::matches`]).
pub const MAX_MATCHERS: usize = 30;

/// What an analysis reads from storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRequest {
    /// The project whose events are read.
    pub project_id: String,
    /// The events' time span.
    pub range: TimeRange,
    /// Events outside it are not read at all.
    pub filter: Option<Filter>,
    /// Event specifications; bit `i` of [`TimelineEvent::matches`] is set when
    /// the event satisfies `matchers[i]`.
    pub matchers: Vec<Filter>,
    /// Also return events that satisfy no matcher.
    pub all_events: bool,
    /// Order events at the same instant by `messageId` (a string sort, so
    /// only analyses whose answer depends on that order ask for it); else
    /// their order among themselves is unspecified.
    pub ordered_ties: bool,
    /// Dimensions whose values each event carries in [`TimelineEvent::labels`].
    pub labels: Vec<Dimension>,
}

/// One event of a person's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// The person (merged identity), as a number that is stable within one answer.
    pub person: u64,
    /// Microseconds since the epoch.
    pub timestamp_us: i64,
    /// Bit `i` set when the event satisfies matcher `i`.
    pub matches: u64,
    /// The values of the request's label dimensions, in order.
    pub labels: Vec<Option<String>>,
}

impl TimelineEvent {
    /// Whether the event satisfies matcher `index`.
    pub fn matches(&self, index: usize) -> bool {
        self.matches & (1 << index) != 0
    }

    /// The value of the request's first label dimension.
    pub fn label(&self) -> Option<&str> {
        self.labels.first().and_then(Option::as_deref)
    }
}

/// Each person's events, in order: splits a timeline sorted by person.
pub fn persons(events: &[TimelineEvent]) -> impl Iterator<Item = &[TimelineEvent]> {
    events.chunk_by(|a, b| a.person == b.person)
}

/// An event name with optional filters, as analyses name their steps.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The event name (`track` calls), or the call type (`page`, `screen`,
    /// `identify`, ...) for other calls.
    pub event: String,
    /// Filters on the event, in the `/v1/query` filter syntax.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
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
        let name = Filter::Condition {
            op: FilterOp::Is,
            dimension: Dimension::EventName,
            values: vec![self.event.clone()],
        };
        let filters = match &self.filters {
            Some(value) => parse_filters(value)
                .map_err(|e| QueryError::new(format!("{path}.{}", e.path), e.message))?,
            None => None,
        };
        Ok(match filters {
            Some(filter) => Filter::And(vec![name, filter]),
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

/// The members every analysis request shares with `/v1/query`. Each request
/// declares them itself, so that `deny_unknown_fields` still names a
/// misspelt member (a flattened struct would lose that).
pub trait ScopedRequest {
    /// `date_range`, as in `/v1/query`.
    fn date_range(&self) -> &Value;
    /// `timezone`; `None` for the project's.
    fn timezone(&self) -> Option<&str>;
    /// `filters`, in the `/v1/query` syntax.
    fn filters(&self) -> Option<&Value>;
}

impl Scope {
    /// Resolves the common members of an analysis request.
    pub fn resolve(
        context: &PlanContext,
        request: &impl ScopedRequest,
    ) -> Result<Scope, QueryError> {
        let timezone = resolve_timezone(request.timezone(), context.default_timezone)?;
        let range = DateRangeSpec::parse(request.date_range())?.resolve(
            timezone,
            context.now,
            context.data_bounds,
        )?;
        let filter = match request.filters() {
            Some(value) => parse_filters(value)?,
            None => None,
        };
        Ok(Scope {
            project_id: context.project_id.clone(),
            timezone,
            range,
            filter,
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

/// One kind of analysis: a request checked into a plan, the timeline it
/// reads, and the answer computed from it.
pub trait Analysis: Sized + Send + 'static {
    /// The request as users send it.
    type Request: serde::de::DeserializeOwned + ScopedRequest + Send;
    /// The answer.
    type Answer: Serialize + Send + 'static;

    /// Checks a request.
    fn plan(request: &Self::Request, context: &PlanContext) -> Result<Self, QueryError>;

    /// What to read.
    fn timeline(&self) -> TimelineRequest;

    /// The answer from the timeline's events (ordered by person).
    fn answer(&self, events: &[TimelineEvent]) -> Self::Answer;

    /// Where the answer reports the time it took, in milliseconds.
    fn took_ms(answer: &mut Self::Answer) -> &mut u64;
}

/// Implements [`Analysis`] for a plan type from its functions, and
/// [`ScopedRequest`] for its request.
macro_rules! analysis {
    ($plan:ty, $request:ty, $answer:ty, $compute:path) => {
        impl $crate::domain::analysis::ScopedRequest for $request {
            fn date_range(&self) -> &serde_json::Value {
                &self.date_range
            }

            fn timezone(&self) -> Option<&str> {
                self.timezone.as_deref()
            }

            fn filters(&self) -> Option<&serde_json::Value> {
                self.filters.as_ref()
            }
        }

        impl $crate::domain::analysis::Analysis for $plan {
            type Request = $request;
            type Answer = $answer;

            fn plan(
                request: &$request,
                context: &$crate::domain::query::PlanContext,
            ) -> Result<Self, $crate::domain::query::QueryError> {
                <$plan>::new(request, context)
            }

            fn timeline(&self) -> $crate::domain::analysis::TimelineRequest {
                <$plan>::timeline(self)
            }

            fn answer(&self, events: &[$crate::domain::analysis::TimelineEvent]) -> $answer {
                $compute(self, events)
            }

            fn took_ms(answer: &mut $answer) -> &mut u64 {
                &mut answer.meta.took_ms
            }
        }
    };
}
pub(crate) use analysis;

/// Parses a duration such as `"30m"`, `"2h"`, `"7d"` or `"90s"`.
pub fn parse_window(text: &str, path: &str) -> Result<Duration, QueryError> {
    let invalid = || {
        QueryError::new(
            path,
            format!("{text:?}: expected a number and a unit, e.g. \"30m\", \"2h\", \"7d\""),
        )
    };
    let text = text.trim();
    let (split, _) = text.char_indices().last().ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let window = match unit {
        "s" => Duration::seconds(number),
        "m" => Duration::minutes(number),
        "h" => Duration::hours(number),
        "d" => Duration::days(number),
        "w" => Duration::weeks(number),
        _ => return Err(invalid()),
    };
    if window <= Duration::zero() || window > Duration::days(MAX_WINDOW_DAYS) {
        return Err(QueryError::new(
            path,
            format!("must be between 1s and {MAX_WINDOW_DAYS}d"),
        ));
    }
    Ok(window)
}

/// Longest conversion window.
const MAX_WINDOW_DAYS: i64 = 366;

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
        assert!(parse_window("0h", "window").is_err());
        assert_eq!(
            parse_window("9y", "window").unwrap_err().to_string(),
            "window: \"9y\": expected a number and a unit, e.g. \"30m\", \"2h\", \"7d\""
        );
    }

    #[test]
    fn shares_round_to_four_decimals() {
        assert_eq!(share(1, 3), 0.3333);
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(seconds(1_234_567.0), 1.235);
    }
}
