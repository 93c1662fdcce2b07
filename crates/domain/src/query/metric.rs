//! What is counted or aggregated.

use std::fmt;

/// Property text that numeric metrics and comparisons read as a number: a JSON
/// number (JSON numbers are stored as their text, and numeric strings count).
/// Every backend applies this same grammar, so that they agree on what counts.
pub const NUMERIC_TEXT_PATTERN: &str = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$";

/// An aggregate over numeric property values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Smallest.
    Min,
    /// Largest.
    Max,
}

impl Aggregate {
    /// The name used in `NAME:props.KEY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }
}

/// A metric of a planned query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Number of events.
    Events,
    /// Distinct users: `userId`, else `anonymousId`.
    Users,
    /// An aggregate of a property's numeric values (numbers, or strings that are
    /// numbers); other values are skipped.
    Numeric(Aggregate, String),
    /// The row's users as a percentage of all users of the query's range and filters.
    Percentage,
    /// Sessions: a person's runs of events without a gap longer than the
    /// project's session timeout.
    Sessions,
    /// Percentage of sessions that are one page view and nothing else.
    BounceRate,
    /// Average session length in seconds, from its first event to its last.
    SessionDuration,
    /// Average events per session.
    EventsPerSession,
    /// Plausible's name for users: distinct persons.
    Visitors,
    /// Plausible's name for sessions.
    Visits,
    /// Plausible's name for the average session length, in seconds.
    VisitDuration,
    /// Page views: the `page` calls among the events.
    Pageviews,
    /// Average page views per session.
    ViewsPerVisit,
    /// Plausible's conversion rate: the row's users as a percentage of the
    /// users of the same row and filters without the goal (the conditions
    /// on, and the dimension, `event:name`).
    ConversionRate,
}

/// Every metric name that is not a property aggregate, for error messages.
const NAMES: &str = "events, users, percentage, sum|avg|min|max:props.KEY, sessions, bounce_rate, session_duration, events_per_session, visitors, visits, visit_duration, pageviews, views_per_visit, conversion_rate";

impl Metric {
    /// Parses a metric name.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "events" => return Ok(Metric::Events),
            "users" => return Ok(Metric::Users),
            "percentage" => return Ok(Metric::Percentage),
            "sessions" => return Ok(Metric::Sessions),
            "bounce_rate" => return Ok(Metric::BounceRate),
            "session_duration" => return Ok(Metric::SessionDuration),
            "events_per_session" => return Ok(Metric::EventsPerSession),
            "visitors" => return Ok(Metric::Visitors),
            "visits" => return Ok(Metric::Visits),
            "visit_duration" => return Ok(Metric::VisitDuration),
            "pageviews" => return Ok(Metric::Pageviews),
            "views_per_visit" => return Ok(Metric::ViewsPerVisit),
            "conversion_rate" => return Ok(Metric::ConversionRate),
            _ => {}
        }
        let Some((aggregate, key)) = text.split_once(":props.") else {
            return Err(format!("unknown metric {text:?} ({NAMES})"));
        };
        let aggregate = match aggregate {
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            _ => {
                return Err(format!(
                    "unknown aggregate {aggregate:?} (sum, avg, min, max)"
                ))
            }
        };
        if key.is_empty() {
            return Err(format!("{text:?} names no property"));
        }
        Ok(Metric::Numeric(aggregate, key.to_owned()))
    }

    /// Whether the metric is measured over sessions rather than events.
    pub fn is_session(&self) -> bool {
        matches!(
            self,
            Metric::Sessions
                | Metric::BounceRate
                | Metric::SessionDuration
                | Metric::EventsPerSession
                | Metric::Visits
                | Metric::VisitDuration
                | Metric::ViewsPerVisit
        )
    }

    /// What storage computes for the metric over events; `None` for
    /// session metrics. `percentage` is computed as the row's users.
    pub fn over_events(&self) -> Option<EventMetric> {
        Some(match self {
            Metric::Events => EventMetric::Events,
            Metric::Users | Metric::Visitors | Metric::Percentage | Metric::ConversionRate => {
                EventMetric::Users
            }
            Metric::Numeric(aggregate, key) => EventMetric::Numeric(*aggregate, key.clone()),
            Metric::Pageviews => EventMetric::Pageviews,
            Metric::Sessions
            | Metric::BounceRate
            | Metric::SessionDuration
            | Metric::EventsPerSession
            | Metric::Visits
            | Metric::VisitDuration
            | Metric::ViewsPerVisit => return None,
        })
    }

    /// What a session query computes for the metric; `None` for those that
    /// sessions cannot answer (numeric aggregates, `percentage`).
    pub fn over_sessions(&self) -> Option<SessionMetric> {
        Some(match self {
            Metric::Events => SessionMetric::Events,
            Metric::Users | Metric::Visitors => SessionMetric::Users,
            Metric::Sessions | Metric::Visits => SessionMetric::Sessions,
            Metric::BounceRate => SessionMetric::BounceRate,
            Metric::SessionDuration | Metric::VisitDuration => SessionMetric::SessionDuration,
            Metric::Pageviews => SessionMetric::Pageviews,
            Metric::ViewsPerVisit => SessionMetric::ViewsPerVisit,
            Metric::EventsPerSession => SessionMetric::EventsPerSession,
            Metric::Numeric(..) | Metric::Percentage | Metric::ConversionRate => return None,
        })
    }
}

/// A metric storage computes over each group of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventMetric {
    /// Number of events.
    Events,
    /// Distinct persons.
    Users,
    /// Page views (`page` calls).
    Pageviews,
    /// An aggregate of a property's numeric values; other values are skipped.
    Numeric(Aggregate, String),
}

/// A metric computed over each group of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionMetric {
    /// Events of the sessions.
    Events,
    /// Distinct persons of the sessions.
    Users,
    /// Number of sessions.
    Sessions,
    /// Percentage of sessions that are one page view and nothing else.
    BounceRate,
    /// Average session length in seconds.
    SessionDuration,
    /// Average events per session.
    EventsPerSession,
    /// Page views of the sessions.
    Pageviews,
    /// Average page views per session.
    ViewsPerVisit,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Events => f.write_str("events"),
            Metric::Users => f.write_str("users"),
            Metric::Percentage => f.write_str("percentage"),
            Metric::Numeric(aggregate, key) => write!(f, "{}:props.{key}", aggregate.as_str()),
            Metric::Sessions => f.write_str("sessions"),
            Metric::BounceRate => f.write_str("bounce_rate"),
            Metric::SessionDuration => f.write_str("session_duration"),
            Metric::EventsPerSession => f.write_str("events_per_session"),
            Metric::Visitors => f.write_str("visitors"),
            Metric::Visits => f.write_str("visits"),
            Metric::VisitDuration => f.write_str("visit_duration"),
            Metric::Pageviews => f.write_str("pageviews"),
            Metric::ConversionRate => f.write_str("conversion_rate"),
            Metric::ViewsPerVisit => f.write_str("views_per_visit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_and_print_back() {
        for name in [
            "events",
            "users",
            "percentage",
            "sum:props.revenue",
            "avg:props.cart.total",
            "min:props.x",
            "max:props.x",
            "sessions",
            "bounce_rate",
            "session_duration",
            "events_per_session",
            "visitors",
            "visits",
            "visit_duration",
            "pageviews",
            "views_per_visit",
        ] {
            assert_eq!(Metric::parse(name).unwrap().to_string(), name);
        }
        assert!(Metric::parse("count").is_err());
        assert!(Metric::parse("median:props.x").is_err());
        assert!(Metric::parse("sum:props.").is_err());
    }

    #[test]
    fn numeric_text_is_the_json_number_grammar() {
        let pattern = regex::Regex::new(NUMERIC_TEXT_PATTERN).unwrap();
        for number in ["0", "12", "-0.5", "25.5", "1e3", "2.5E-7"] {
            assert!(pattern.is_match(number), "{number}");
        }
        for text in [
            " 3", "3 ", "+4", "0x10", "1_000", "00012", ".5", "5.", "inf", "NaN", "n/a", "",
        ] {
            assert!(!pattern.is_match(text), "{text:?}");
        }
    }
}
