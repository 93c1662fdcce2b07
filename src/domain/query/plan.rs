//! The planner: a request checked and normalised into what storage executes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::date_range::{DateRangeSpec, TimeRange};
use super::dimension::{Dimension, RequestedDimension};
use super::filter::{parse_filters, Filter};
use super::metric::Metric;
use super::request::QueryRequest;
use super::time_buckets::{automatic_granularity, estimated_buckets, OffsetSchedule};
use super::{QueryError, DEFAULT_LIMIT, MAX_LIMIT};

/// Most metrics, and most dimensions, in one query.
const MAX_METRICS: usize = 20;
const MAX_DIMENSIONS: usize = 8;
/// Most time buckets a query may span.
const MAX_BUCKETS: i64 = 100_000;

/// What the planner needs besides the request.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The project of the read key.
    pub project_id: String,
    /// The project's timezone, used when the request names none.
    pub default_timezone: Tz,
    /// The current time, for relative ranges.
    pub now: DateTime<Utc>,
    /// First and last stored event of the project, for `all`.
    pub data_bounds: Option<TimeRange>,
    /// The project's session timeout: the longest gap inside one session.
    pub session_timeout: chrono::Duration,
}

/// What a sort key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderTarget {
    /// The plan's metric at this index.
    Metric(usize),
    /// The plan's dimension at this index.
    Dimension(usize),
}

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordering {
    /// What is sorted on.
    pub target: OrderTarget,
    /// Largest first.
    pub descending: bool,
}

/// A validated, normalised query for one project.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The project whose events are read; no other project's are.
    pub project_id: String,
    /// Metrics, in the order of the answer.
    pub metrics: Vec<Metric>,
    /// Dimensions, in the order of the answer.
    pub dimensions: Vec<Dimension>,
    /// Which events count.
    pub filter: Option<Filter>,
    /// The events' time span.
    pub range: TimeRange,
    /// Timezone of buckets and labels.
    pub timezone: Tz,
    /// UTC offsets of `timezone` over `range`.
    pub offsets: OffsetSchedule,
    /// Sort keys; every dimension appears, so the order is total.
    pub order_by: Vec<Ordering>,
    /// Rows at most.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Whether the answer lists every time bucket.
    pub time_labels: bool,
    /// Whether the answer reports the row count before pagination.
    pub total_rows: bool,
    /// The longest gap between two events of one session.
    pub session_timeout: chrono::Duration,
}

impl QueryPlan {
    /// Whether the query is measured over sessions (a session metric or
    /// dimension), which are computed from timelines, not in storage.
    pub fn is_session_query(&self) -> bool {
        self.metrics.iter().any(Metric::is_session)
            || self.dimensions.iter().any(Dimension::is_session)
    }

    /// Whether storage returns every row, unpaginated, so that empty time buckets
    /// can be filled in before the page is cut (time is the only dimension).
    pub fn fills_time_buckets(&self) -> bool {
        self.time_labels && matches!(self.dimensions.as_slice(), [Dimension::Time(_)])
    }

    /// The time dimension's granularity, if the query has one.
    pub fn time_granularity(&self) -> Option<super::Granularity> {
        self.dimensions.iter().find_map(|d| match d {
            Dimension::Time(granularity) => Some(*granularity),
            _ => None,
        })
    }

    /// Pieces of the range with one UTC offset each, as (piece, local minus UTC
    /// in microseconds); the whole range at offset 0 when the query has no time
    /// dimension. Executors without timezone data run one branch per piece.
    pub fn offset_pieces(&self) -> Vec<(TimeRange, i64)> {
        if self.time_granularity().is_none() {
            return vec![(self.range, 0)];
        }
        let segments = &self.offsets.segments;
        segments
            .iter()
            .enumerate()
            .filter_map(|(i, segment)| {
                let from = segment.from.max(self.range.from);
                let to = segments
                    .get(i + 1)
                    .map_or(self.range.to, |next| next.from.min(self.range.to));
                (from < to).then(|| {
                    (
                        TimeRange { from, to },
                        i64::from(segment.offset_seconds) * 1_000_000,
                    )
                })
            })
            .collect()
    }

    /// A plan for the total number of users under the same range and filters
    /// (the denominator of `percentage`).
    pub fn total_users(&self) -> QueryPlan {
        QueryPlan {
            metrics: vec![Metric::Users],
            dimensions: Vec::new(),
            order_by: Vec::new(),
            limit: 1,
            offset: 0,
            time_labels: false,
            total_rows: false,
            ..self.clone()
        }
    }

    /// The query as the answer echoes it: normalised names, absolute range.
    pub fn normalized(&self) -> Value {
        let order_by: Vec<Value> = self
            .order_by
            .iter()
            .map(|ordering| {
                let name = match ordering.target {
                    OrderTarget::Metric(i) => self.metrics[i].to_string(),
                    OrderTarget::Dimension(i) => self.dimensions[i].to_string(),
                };
                json!([name, if ordering.descending { "desc" } else { "asc" }])
            })
            .collect();
        json!({
            "metrics": self.metrics.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "date_range": DateRangeSpec::describe(self.range, self.timezone),
            "timezone": self.timezone.name(),
            "dimensions": self.dimensions.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "order_by": order_by,
            "include": {"time_labels": self.time_labels, "total_rows": self.total_rows},
            "pagination": {"limit": self.limit, "offset": self.offset},
        })
    }
}

fn parse_metrics(names: &[String]) -> Result<Vec<Metric>, QueryError> {
    if names.is_empty() {
        return Err(QueryError::new(
            "metrics",
            "at least one metric is required",
        ));
    }
    if names.len() > MAX_METRICS {
        return Err(QueryError::new(
            "metrics",
            format!("at most {MAX_METRICS} metrics"),
        ));
    }
    let mut metrics: Vec<Metric> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let metric =
            Metric::parse(name).map_err(|m| QueryError::new(format!("metrics[{i}]"), m))?;
        if metrics.contains(&metric) {
            return Err(QueryError::new(
                format!("metrics[{i}]"),
                format!("{name:?} is listed twice"),
            ));
        }
        metrics.push(metric);
    }
    Ok(metrics)
}

fn parse_dimensions(names: &[String], range: TimeRange) -> Result<Vec<Dimension>, QueryError> {
    if names.len() > MAX_DIMENSIONS {
        return Err(QueryError::new(
            "dimensions",
            format!("at most {MAX_DIMENSIONS} dimensions"),
        ));
    }
    let mut dimensions: Vec<Dimension> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let path = || format!("dimensions[{i}]");
        let dimension =
            match RequestedDimension::parse(name).map_err(|m| QueryError::new(path(), m))? {
                RequestedDimension::AutoTime => Dimension::Time(automatic_granularity(range)),
                RequestedDimension::Exact(dimension) => dimension,
            };
        if let Dimension::Time(granularity) = dimension {
            if dimensions.iter().any(|d| matches!(d, Dimension::Time(_))) {
                return Err(QueryError::new(path(), "only one time dimension per query"));
            }
            if estimated_buckets(range, granularity) > MAX_BUCKETS {
                return Err(QueryError::new(
                    path(),
                    format!(
                        "the range has more than {MAX_BUCKETS} {} buckets; choose a coarser granularity",
                        granularity.as_str()
                    ),
                ));
            }
        }
        if dimensions.contains(&dimension) {
            return Err(QueryError::new(path(), format!("{name:?} is listed twice")));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

fn parse_order_by(
    value: Option<&Value>,
    metrics: &[Metric],
    dimensions: &[Dimension],
) -> Result<Vec<Ordering>, QueryError> {
    let mut order_by = Vec::new();
    let items: &[Value] = match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(QueryError::new(
                "order_by",
                "expected [[name, \"asc\"|\"desc\"], ...]",
            ))
        }
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("order_by[{i}]");
        let Some([Value::String(name), Value::String(direction)]) =
            item.as_array().map(Vec::as_slice)
        else {
            return Err(QueryError::new(path, "expected [name, \"asc\"|\"desc\"]"));
        };
        let descending = match direction.as_str() {
            "asc" => false,
            "desc" => true,
            _ => {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    "expected \"asc\" or \"desc\"",
                ))
            }
        };
        let target = metrics
            .iter()
            .position(|m| m.to_string() == *name)
            .map(OrderTarget::Metric)
            .or_else(|| {
                dimensions
                    .iter()
                    .position(|d| {
                        d.to_string() == *name
                            || (name == "time" && matches!(d, Dimension::Time(_)))
                    })
                    .map(OrderTarget::Dimension)
            })
            .ok_or_else(|| {
                QueryError::new(
                    format!("{path}[0]"),
                    format!("{name:?} is not a metric or dimension of this query"),
                )
            })?;
        if order_by.iter().any(|o: &Ordering| o.target == target) {
            return Err(QueryError::new(
                format!("{path}[0]"),
                format!("{name:?} is sorted on twice"),
            ));
        }
        order_by.push(Ordering { target, descending });
    }
    if order_by.is_empty() {
        let time = dimensions
            .iter()
            .position(|d| matches!(d, Dimension::Time(_)));
        order_by.push(match time {
            Some(i) => Ordering {
                target: OrderTarget::Dimension(i),
                descending: false,
            },
            None => Ordering {
                target: OrderTarget::Metric(0),
                descending: true,
            },
        });
    }
    // Every dimension, so that rows with equal sort keys still come in one order.
    for i in 0..dimensions.len() {
        if !order_by
            .iter()
            .any(|o| o.target == OrderTarget::Dimension(i))
        {
            order_by.push(Ordering {
                target: OrderTarget::Dimension(i),
                descending: false,
            });
        }
    }
    Ok(order_by)
}

/// The timezone a request names (`timezone`), else `default`.
pub fn resolve_timezone(name: Option<&str>, default: Tz) -> Result<Tz, QueryError> {
    match name {
        None => Ok(default),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            QueryError::new("timezone", format!("{name:?} is not an IANA timezone name"))
        }),
    }
}

/// Checks and normalises a request.
pub fn plan(request: &QueryRequest, context: &PlanContext) -> Result<QueryPlan, QueryError> {
    let metrics = parse_metrics(&request.metrics)?;
    let timezone = resolve_timezone(request.timezone.as_deref(), context.default_timezone)?;
    let range = DateRangeSpec::parse(&request.date_range)?.resolve(
        timezone,
        context.now,
        context.data_bounds,
    )?;
    let dimensions = parse_dimensions(&request.dimensions, range)?;
    let filter = match &request.filters {
        Some(value) => parse_filters(value)?,
        None => None,
    };
    check_session_metrics(&metrics, &dimensions)?;
    let order_by = parse_order_by(request.order_by.as_ref(), &metrics, &dimensions)?;
    let limit = request.pagination.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(QueryError::new(
            "pagination.limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(QueryPlan {
        project_id: context.project_id.clone(),
        metrics,
        dimensions,
        filter,
        offsets: OffsetSchedule::for_range(timezone, range),
        range,
        timezone,
        order_by,
        limit,
        offset: request.pagination.offset.unwrap_or(0),
        time_labels: request.include.time_labels,
        total_rows: request.include.total_rows,
        session_timeout: context.session_timeout,
    })
}

/// A query over sessions may only ask what sessions can answer.
fn check_session_metrics(metrics: &[Metric], dimensions: &[Dimension]) -> Result<(), QueryError> {
    let sessions =
        metrics.iter().any(Metric::is_session) || dimensions.iter().any(Dimension::is_session);
    if !sessions {
        return Ok(());
    }
    match metrics.iter().position(|m| !m.fits_sessions()) {
        Some(i) => Err(QueryError::new(
            format!("metrics[{i}]"),
            format!(
                "{} cannot be combined with session metrics or dimensions (events, users, sessions, bounce_rate, session_duration, events_per_session can); send it in another query",
                metrics[i]
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::query::Granularity;

    fn context() -> PlanContext {
        PlanContext {
            project_id: "shop".into(),
            default_timezone: "Europe/Berlin".parse().unwrap(),
            now: DateTime::parse_from_rfc3339("2026-03-15T12:00:00Z")
                .unwrap()
                .to_utc(),
            data_bounds: None,
            session_timeout: chrono::Duration::minutes(30),
        }
    }

    fn request(value: Value) -> QueryRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_sort_by_time_or_by_the_first_metric() {
        let plan = plan(&request(json!({"metrics": ["events"], "date_range": "7d", "dimensions": ["event:name", "time"]})), &context()).unwrap();
        assert_eq!(plan.dimensions[1], Dimension::Time(Granularity::Day));
        assert_eq!(
            plan.order_by[0],
            Ordering {
                target: OrderTarget::Dimension(1),
                descending: false
            }
        );
        assert_eq!(
            plan.order_by[1],
            Ordering {
                target: OrderTarget::Dimension(0),
                descending: false
            }
        );
        assert_eq!(plan.timezone.name(), "Europe/Berlin");

        let plan = super::plan(&request(json!({"metrics": ["users", "events"], "date_range": "today", "dimensions": ["event:page"]})), &context()).unwrap();
        assert_eq!(
            plan.order_by[0],
            Ordering {
                target: OrderTarget::Metric(0),
                descending: true
            }
        );
    }

    #[test]
    fn faults_are_reported_with_their_path() {
        let fault = |value: Value| plan(&request(value), &context()).unwrap_err().to_string();
        assert_eq!(
            fault(json!({"metrics": [], "date_range": "7d"})),
            "metrics: at least one metric is required"
        );
        assert_eq!(fault(json!({"metrics": ["events", "hits"], "date_range": "7d"})), "metrics[1]: unknown metric \"hits\" (events, users, percentage, sum|avg|min|max:props.KEY, sessions, bounce_rate, session_duration, events_per_session)");
        assert_eq!(
            fault(json!({"metrics": ["events"], "date_range": "7d", "timezone": "Mars/Base"})),
            "timezone: \"Mars/Base\" is not an IANA timezone name"
        );
        assert_eq!(
            fault(
                json!({"metrics": ["events"], "date_range": "7d", "dimensions": ["time:day", "time:hour"]})
            ),
            "dimensions[1]: only one time dimension per query"
        );
        assert_eq!(
            fault(
                json!({"metrics": ["events"], "date_range": "7d", "order_by": [["users", "desc"]]})
            ),
            "order_by[0][0]: \"users\" is not a metric or dimension of this query"
        );
        assert_eq!(
            fault(json!({"metrics": ["events"], "date_range": "7d", "pagination": {"limit": 0}})),
            "pagination.limit: must be between 1 and 100000"
        );
        assert!(fault(
            json!({"metrics": ["events"], "date_range": "3000d", "dimensions": ["time:minute"]})
        )
        .starts_with("dimensions[0]: the range has more than"));
    }
}
