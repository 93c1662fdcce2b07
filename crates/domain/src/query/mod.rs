//! Queries: a spec (what a client asks, parsed) checked and normalised once
//! into a [`QueryPlan`] that every storage backend executes the same way, and
//! the rows turned into the answer (time labels, percentages, zero-filled
//! buckets, pagination).

mod answer;
mod compared_period;
mod date_range;
mod dimension;
mod filter;
mod metric;
mod plan;
mod spec;
pub mod time_buckets;

pub use answer::{answer, apply_conversion_rates, Answer, AnswerMeta, AnswerRow};
pub use compared_period::{compared_spec, ComparedPeriod};
pub use date_range::{DateRangeSpec, TimeRange};
pub use dimension::{
    Acquisition, Dimension, EventDimension, FixedLengthBucket, Granularity, RequestedDimension,
    SessionAnchor, SessionDimension, UtmField, VisitAttribute,
};
pub use filter::{
    parse_filters, parse_query_filters, Comparison, Filter, FilterOp, QueryFilters, Test,
};
pub use metric::{Aggregate, EventMetric, Metric, SessionMetric, NUMERIC_TEXT_PATTERN};
pub use plan::{
    plan, Baseline, EventQuery, GroupDimension, OrderTarget, Ordering, PlanContext, QueryPlan,
    RowSource, SessionQuery, VisitEventQuery,
};
pub use spec::{
    parse_dimensions, parse_metrics, parse_order_by, parse_timezone, OrderKey, QuerySpec,
};
pub use time_buckets::{OffsetSchedule, OffsetSegment};

/// Most rows a query may return at once.
pub const MAX_LIMIT: u64 = 100_000;
/// Rows returned when the request names no limit.
pub const DEFAULT_LIMIT: u64 = 10_000;

/// A query the planner refuses, with the part at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct QueryError {
    /// Where in the request, e.g. `filters[1][1]` or `metrics[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl QueryError {
    /// An error at `path` of the request.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A value of one dimension in a row, as storage returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum DimensionValue {
    /// A text value; `None` when the event has none.
    Text(Option<String>),
    /// A day, week or month bucket: its local start (naive, in the query's timezone).
    LocalBucket(chrono::NaiveDateTime),
    /// A minute or hour bucket: its start instant.
    InstantBucket(chrono::DateTime<chrono::Utc>),
}

impl DimensionValue {
    /// A time bucket as storage computes it: microseconds since the epoch of
    /// its local start (calendar buckets) or its UTC start (minutes, hours).
    pub fn time_bucket(granularity: Granularity, micros: i64) -> Self {
        let instant = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
        if granularity.is_calendar() {
            DimensionValue::LocalBucket(instant.naive_utc())
        } else {
            DimensionValue::InstantBucket(instant)
        }
    }
}

/// A value of one metric in a row, as storage returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// A count (`events`, `users`; `percentage` arrives as its user count).
    Count(u64),
    /// A numeric aggregate; `None` when no event had a numeric value.
    Number(Option<f64>),
}

/// One row of a query's result, as storage returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    /// One value per dimension of the plan, in order.
    pub dimensions: Vec<DimensionValue>,
    /// One value per metric of the plan, in order.
    pub metrics: Vec<MetricValue>,
}

/// What storage returns for a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// The rows of the requested page (every row when the plan asks for all).
    pub rows: Vec<QueryRow>,
    /// Rows before pagination.
    pub total_rows: u64,
}
