//! The planner: a spec checked and normalised into what is executed.
//!
//! A plan says how its rows are computed ([`RowSource`]): by storage, from
//! events grouped by time and event dimensions ([`EventQuery`]), or from
//! persons' timelines cut into sessions ([`SessionQuery`]). Each source
//! carries only what it can compute, so that no executor meets a metric or
//! dimension it cannot handle.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::date_range::{DateRangeSpec, TimeRange};
use super::dimension::{
    Dimension, EventDimension, Granularity, RequestedDimension, SessionDimension,
};
use super::filter::Filter;
use super::metric::{EventMetric, Metric, SessionMetric};
use super::spec::{OrderKey, QuerySpec};
use super::time_buckets::{automatic_granularity, estimated_buckets, OffsetSchedule};
use super::{QueryError, DEFAULT_LIMIT, MAX_LIMIT};

/// Most metrics, and most dimensions, in one query.
const MAX_METRICS: usize = 20;
const MAX_DIMENSIONS: usize = 8;
/// Most time buckets a query may span.
const MAX_BUCKETS: i64 = 100_000;
/// Most rows a query may skip (values beyond cannot be bound as SQL integers).
const MAX_OFFSET: u64 = i64::MAX as u64;

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
    /// Metrics, in the order of the answer.
    pub metrics: Vec<Metric>,
    /// Dimensions, in the order of the answer.
    pub dimensions: Vec<Dimension>,
    /// The events' time span.
    pub range: TimeRange,
    /// Timezone of buckets and labels.
    pub timezone: Tz,
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
    /// How the rows are computed.
    pub rows: RowSource,
    /// What `conversion_rate` divides by, when the query asks for it.
    pub conversion_baseline: Option<Baseline>,
}

/// The users that `conversion_rate` divides by: the plan's rows without the
/// goal (its conditions on `event:name` and its `event:name` dimension).
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Metric `users` by the kept dimensions, every row.
    pub rows: RowSource,
    /// The plan's dimensions that the baseline keeps, in order: the
    /// positions in a plan row of a baseline row's values.
    pub dimensions: Vec<usize>,
}

/// How a plan's rows are computed.
#[derive(Debug, Clone)]
pub enum RowSource {
    /// By storage, aggregating events.
    Events(EventQuery),
    /// From timelines, cut into sessions.
    Sessions(SessionQuery),
    /// From timelines, each event counted under its visit's attributes.
    VisitEvents(VisitEventQuery),
}

/// A dimension storage groups events by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupDimension {
    /// Time buckets.
    Time(Granularity),
    /// A value of each event.
    Event(EventDimension),
}

impl GroupDimension {
    /// The dimension storage groups by for `dimension`; `None` for session dimensions.
    pub fn of(dimension: &Dimension) -> Option<Self> {
        match dimension {
            Dimension::Time(granularity) => Some(GroupDimension::Time(*granularity)),
            Dimension::Event(event) => Some(GroupDimension::Event(event.clone())),
            Dimension::Session(_) => None,
        }
    }
}

/// Metrics of events grouped by dimensions: what storage executes.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// The project whose events are read; no other project's are.
    pub project_id: String,
    /// Metrics, in the order of the answer.
    pub metrics: Vec<EventMetric>,
    /// Dimensions, in the order of the answer.
    pub dimensions: Vec<GroupDimension>,
    /// Which events count.
    pub filter: Option<Filter>,
    /// The events' time span.
    pub range: TimeRange,
    /// UTC offsets of the query's timezone over `range`.
    pub offsets: OffsetSchedule,
    /// Sort keys over `metrics` and `dimensions`.
    pub order_by: Vec<Ordering>,
    /// Rows at most.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Return every row, unpaginated (empty time buckets are filled in
    /// before the page is cut).
    pub all_rows: bool,
}

/// Metrics of sessions grouped by dimensions, computed from timelines.
#[derive(Debug, Clone)]
pub struct SessionQuery {
    /// The project whose events are read.
    pub project_id: String,
    /// Metrics, in the order of the answer.
    pub metrics: Vec<SessionMetric>,
    /// Dimensions, in the order of the answer, read on each session.
    pub dimensions: Vec<Dimension>,
    /// Which events make up sessions.
    pub filter: Option<Filter>,
    /// Which sessions count, tested on their first event.
    pub visit_filter: Option<Filter>,
    /// The events' time span.
    pub range: TimeRange,
    /// UTC offsets of the query's timezone over `range`.
    pub offsets: OffsetSchedule,
    /// The longest gap between two events of one session.
    pub timeout: chrono::Duration,
    /// Sort keys over `metrics` and `dimensions`.
    pub order_by: Vec<Ordering>,
    /// Rows at most.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Return every row, unpaginated.
    pub all_rows: bool,
}

/// Event metrics (`events`, `users`) of events grouped with their visit's
/// attributes, computed from timelines (see
/// [`crate::analysis::visit_events`]).
#[derive(Debug, Clone)]
pub struct VisitEventQuery {
    /// The project whose events are read.
    pub project_id: String,
    /// Metrics, in the order of the answer: events and users only.
    pub metrics: Vec<EventMetric>,
    /// Dimensions, in the order of the answer: time and event dimensions
    /// of each event, session dimensions of its visit.
    pub dimensions: Vec<Dimension>,
    /// Which events count.
    pub filter: Option<Filter>,
    /// Which visits' events count, tested on their first event.
    pub visit_filter: Option<Filter>,
    /// The events' time span.
    pub range: TimeRange,
    /// UTC offsets of the query's timezone over `range`.
    pub offsets: OffsetSchedule,
    /// The longest gap between two events of one visit.
    pub timeout: chrono::Duration,
    /// Sort keys over `metrics` and `dimensions`.
    pub order_by: Vec<Ordering>,
    /// Rows at most.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Return every row, unpaginated.
    pub all_rows: bool,
}

impl QueryPlan {
    /// Whether the query is measured over sessions.
    pub fn is_session_query(&self) -> bool {
        matches!(self.rows, RowSource::Sessions(_))
    }

    /// Whether the rows come unpaginated, so that empty time buckets can be
    /// filled in before the page is cut (time is the only dimension).
    pub fn fills_time_buckets(&self) -> bool {
        self.time_labels && matches!(self.dimensions.as_slice(), [Dimension::Time(_)])
    }

    /// The time dimension's granularity, if the query has one.
    pub fn time_granularity(&self) -> Option<Granularity> {
        self.dimensions.iter().find_map(|d| match d {
            Dimension::Time(granularity) => Some(*granularity),
            _ => None,
        })
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

impl EventQuery {
    /// The time dimension's granularity, if the query has one.
    pub fn time_granularity(&self) -> Option<Granularity> {
        self.dimensions.iter().find_map(|d| match d {
            GroupDimension::Time(granularity) => Some(*granularity),
            GroupDimension::Event(_) => None,
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

    /// The number of persons under the same range and filters (the
    /// denominator of `percentage`).
    pub fn total_users(&self) -> EventQuery {
        EventQuery {
            metrics: vec![EventMetric::Users],
            dimensions: Vec::new(),
            order_by: Vec::new(),
            limit: 1,
            offset: 0,
            all_rows: false,
            ..self.clone()
        }
    }
}

fn check_metrics(metrics: &[Metric]) -> Result<(), QueryError> {
    if metrics.is_empty() {
        return Err(QueryError::new(
            "metrics",
            "at least one metric is required",
        ));
    }
    if metrics.len() > MAX_METRICS {
        return Err(QueryError::new(
            "metrics",
            format!("at most {MAX_METRICS} metrics"),
        ));
    }
    for (i, metric) in metrics.iter().enumerate() {
        if metrics[..i].contains(metric) {
            return Err(QueryError::new(
                format!("metrics[{i}]"),
                format!("{:?} is listed twice", metric.to_string()),
            ));
        }
    }
    Ok(())
}

fn resolve_dimensions(
    requested: &[RequestedDimension],
    range: TimeRange,
) -> Result<Vec<Dimension>, QueryError> {
    if requested.len() > MAX_DIMENSIONS {
        return Err(QueryError::new(
            "dimensions",
            format!("at most {MAX_DIMENSIONS} dimensions"),
        ));
    }
    let mut dimensions: Vec<Dimension> = Vec::with_capacity(requested.len());
    for (i, requested) in requested.iter().enumerate() {
        let path = || format!("dimensions[{i}]");
        let dimension = match requested {
            RequestedDimension::AutoTime => Dimension::Time(automatic_granularity(range)),
            RequestedDimension::Exact(dimension) => dimension.clone(),
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
            return Err(QueryError::new(
                path(),
                format!("{:?} is listed twice", dimension.to_string()),
            ));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

fn resolve_order_by(
    keys: &[OrderKey],
    metrics: &[Metric],
    dimensions: &[Dimension],
) -> Result<Vec<Ordering>, QueryError> {
    let mut order_by = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let path = format!("order_by[{i}][0]");
        let name = &key.name;
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
                    &path,
                    format!("{name:?} is not a metric or dimension of this query"),
                )
            })?;
        if order_by.iter().any(|o: &Ordering| o.target == target) {
            return Err(QueryError::new(
                path,
                format!("{name:?} is sorted on twice"),
            ));
        }
        order_by.push(Ordering {
            target,
            descending: key.descending,
        });
    }
    if order_by.is_empty() {
        let time = dimensions
            .iter()
            .position(|d| matches!(d, Dimension::Time(_)));
        // Rates are computed after the rows are sorted and cut.
        let sortable_metric = metrics.iter().position(|m| *m != Metric::ConversionRate);
        match (time, sortable_metric) {
            (Some(i), _) => order_by.push(Ordering {
                target: OrderTarget::Dimension(i),
                descending: false,
            }),
            (None, Some(i)) => order_by.push(Ordering {
                target: OrderTarget::Metric(i),
                descending: true,
            }),
            (None, None) => {}
        }
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

/// Checks and normalises a spec for the project and time of `context`.
pub fn plan(spec: &QuerySpec, context: &PlanContext) -> Result<QueryPlan, QueryError> {
    check_metrics(&spec.metrics)?;
    let timezone = spec.timezone.unwrap_or(context.default_timezone);
    let range = spec
        .date_range
        .resolve(timezone, context.now, context.data_bounds)?;
    let dimensions = resolve_dimensions(&spec.dimensions, range)?;
    let order_by = resolve_order_by(&spec.order_by, &spec.metrics, &dimensions)?;
    let limit = spec.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(QueryError::new(
            "pagination.limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = spec.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(QueryError::new(
            "pagination.offset",
            format!("must be at most {MAX_OFFSET}"),
        ));
    }
    let all_rows = spec.time_labels && matches!(dimensions.as_slice(), [Dimension::Time(_)]);
    let shared = Shared {
        project_id: context.project_id.clone(),
        filter: spec.filter.clone(),
        visit_filter: spec.visit_filter.clone(),
        range,
        offsets: OffsetSchedule::for_range(timezone, range),
        order_by: order_by.clone(),
        limit,
        offset,
        all_rows,
    };
    if let Some(ordering) = order_by.iter().find(
        |o| matches!(o.target, OrderTarget::Metric(i) if spec.metrics[i] == Metric::ConversionRate),
    ) {
        let position = order_by.iter().position(|o| o == ordering).unwrap_or(0);
        return Err(QueryError::new(
            format!("order_by[{position}][0]"),
            "conversion_rate cannot be sorted on; sort on the converted visitors instead",
        ));
    }
    let conversion_baseline = match spec
        .metrics
        .iter()
        .position(|m| *m == Metric::ConversionRate)
    {
        Some(index) => Some(baseline(
            index,
            &dimensions,
            &shared,
            context.session_timeout,
        )?),
        None => None,
    };
    let rows = row_source(&spec.metrics, &dimensions, shared, context.session_timeout)?;
    Ok(QueryPlan {
        metrics: spec.metrics.clone(),
        dimensions,
        range,
        timezone,
        order_by,
        limit,
        offset,
        time_labels: spec.time_labels,
        total_rows: spec.total_rows,
        rows,
        conversion_baseline,
    })
}

/// Whether `filter` is a condition on `event:name` or `event:type` (which
/// events are the goal's).
fn is_goal(filter: &Filter) -> bool {
    matches!(
        filter,
        Filter::Condition {
            dimension: EventDimension::Name | EventDimension::Type,
            ..
        }
    )
}

/// The baseline of `conversion_rate` (metric `index`): the same range,
/// dimensions and filters without the goal.
fn baseline(
    index: usize,
    dimensions: &[Dimension],
    shared: &Shared,
    session_timeout: chrono::Duration,
) -> Result<Baseline, QueryError> {
    let goal_dimension = Dimension::Event(EventDimension::Name);
    let conjuncts = match &shared.filter {
        Some(Filter::And(items)) => items.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    };
    let (goals, kept): (Vec<Filter>, Vec<Filter>) = conjuncts.into_iter().partition(is_goal);
    if goals.is_empty() && !dimensions.contains(&goal_dimension) {
        return Err(QueryError::new(
            format!("metrics[{index}]"),
            "conversion_rate needs a goal: a top-level filter on event:name or event:type (e.g. [\"is\", \"event:name\", [\"signup\"]]) or the dimension event:name",
        ));
    }
    let kept_dimensions: Vec<usize> = (0..dimensions.len())
        .filter(|&i| dimensions[i] != goal_dimension)
        .collect();
    let baseline_dimensions: Vec<Dimension> = kept_dimensions
        .iter()
        .map(|&i| dimensions[i].clone())
        .collect();
    let metrics = [Metric::Users];
    let baseline_shared = Shared {
        project_id: shared.project_id.clone(),
        filter: match kept.len() {
            0 => None,
            1 => kept.into_iter().next(),
            _ => Some(Filter::And(kept)),
        },
        visit_filter: shared.visit_filter.clone(),
        range: shared.range,
        offsets: shared.offsets.clone(),
        order_by: resolve_order_by(&[], &metrics, &baseline_dimensions)?,
        limit: MAX_LIMIT,
        offset: 0,
        all_rows: true,
    };
    Ok(Baseline {
        rows: row_source(
            &metrics,
            &baseline_dimensions,
            baseline_shared,
            session_timeout,
        )?,
        dimensions: kept_dimensions,
    })
}

/// What both row sources take from the plan.
struct Shared {
    project_id: String,
    filter: Option<Filter>,
    visit_filter: Option<Filter>,
    range: TimeRange,
    offsets: OffsetSchedule,
    order_by: Vec<Ordering>,
    limit: u64,
    offset: u64,
    all_rows: bool,
}

/// Storage aggregates the plan's events, unless a session metric or
/// dimension makes it a session query, whose metrics must all be ones that
/// sessions answer; event metrics by a visit's source (as dimension or
/// filter) count each event under its visit's.
fn row_source(
    metrics: &[Metric],
    dimensions: &[Dimension],
    shared: Shared,
    session_timeout: chrono::Duration,
) -> Result<RowSource, QueryError> {
    let event_metrics: Option<Vec<EventMetric>> = metrics.iter().map(Metric::over_events).collect();
    let group_dimensions: Option<Vec<GroupDimension>> =
        dimensions.iter().map(GroupDimension::of).collect();
    let by_visit = shared.visit_filter.is_some()
        || dimensions
            .iter()
            .any(|d| matches!(d, Dimension::Session(SessionDimension::Acquisition(_))));
    match (event_metrics, group_dimensions) {
        (Some(metrics), Some(dimensions)) if !by_visit => {
            return Ok(RowSource::Events(EventQuery {
                project_id: shared.project_id,
                metrics,
                dimensions,
                filter: shared.filter,
                range: shared.range,
                offsets: shared.offsets,
                order_by: shared.order_by,
                limit: shared.limit,
                offset: shared.offset,
                all_rows: shared.all_rows,
            }));
        }
        (Some(event_metrics), _) if by_visit => {
            if let Some(i) = event_metrics
                .iter()
                .position(|m| matches!(m, EventMetric::Numeric(..)))
            {
                return Err(QueryError::new(
                    format!("metrics[{i}]"),
                    format!(
                        "{} cannot be combined with visit:referrer_domain, visit:source or visit:channel; send it in another query",
                        metrics[i]
                    ),
                ));
            }
            return Ok(RowSource::VisitEvents(VisitEventQuery {
                project_id: shared.project_id,
                metrics: event_metrics,
                dimensions: dimensions.to_vec(),
                filter: shared.filter,
                visit_filter: shared.visit_filter,
                range: shared.range,
                offsets: shared.offsets,
                timeout: session_timeout,
                order_by: shared.order_by,
                limit: shared.limit,
                offset: shared.offset,
                all_rows: shared.all_rows,
            }));
        }
        _ => {}
    }
    let metrics = metrics
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            metric.over_sessions().ok_or_else(|| {
                QueryError::new(
                    format!("metrics[{i}]"),
                    format!(
                        "{metric} cannot be combined with session metrics or dimensions (events, users, sessions, bounce_rate, session_duration, events_per_session and their Plausible names can); send it in another query"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RowSource::Sessions(SessionQuery {
        project_id: shared.project_id,
        metrics,
        dimensions: dimensions.to_vec(),
        filter: shared.filter,
        visit_filter: shared.visit_filter,
        range: shared.range,
        offsets: shared.offsets,
        timeout: session_timeout,
        order_by: shared.order_by,
        limit: shared.limit,
        offset: shared.offset,
        all_rows: shared.all_rows,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::query::parse_query_filters;
    use crate::query::spec::{parse_dimensions, parse_metrics, parse_order_by, parse_timezone};

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

    /// A spec from the JSON members of a request, as the HTTP layer reads them.
    fn spec(value: Value) -> Result<QuerySpec, QueryError> {
        let names = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let filters = parse_query_filters(&value["filters"])?;
        Ok(QuerySpec {
            metrics: parse_metrics(&names("metrics"))?,
            date_range: DateRangeSpec::parse(&value["date_range"])?,
            timezone: value["timezone"].as_str().map(parse_timezone).transpose()?,
            dimensions: parse_dimensions(&names("dimensions"))?,
            filter: filters.events,
            visit_filter: filters.visits,
            order_by: parse_order_by(value.get("order_by"))?,
            time_labels: false,
            total_rows: false,
            limit: value["pagination"]["limit"].as_u64(),
            offset: value["pagination"]["offset"].as_u64(),
            compare: None,
        })
    }

    fn planned(value: Value) -> Result<QueryPlan, QueryError> {
        plan(&spec(value)?, &context())
    }

    #[test]
    fn defaults_sort_by_time_or_by_the_first_metric() {
        let plan = planned(json!({"metrics": ["events"], "date_range": "7d", "dimensions": ["event:name", "time"]})).unwrap();
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

        let plan = planned(json!({"metrics": ["users", "events"], "date_range": "today", "dimensions": ["event:page"]})).unwrap();
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
        let fault = |value: Value| planned(value).unwrap_err().to_string();
        assert_eq!(
            fault(json!({"metrics": [], "date_range": "7d"})),
            "metrics: at least one metric is required"
        );
        assert_eq!(fault(json!({"metrics": ["events", "hits"], "date_range": "7d"})), "metrics[1]: unknown metric \"hits\" (events, users, percentage, sum|avg|min|max:props.KEY, sessions, bounce_rate, session_duration, events_per_session, visitors, visits, visit_duration, pageviews, views_per_visit, conversion_rate)");
        assert_eq!(
            fault(json!({"metrics": ["events", "events"], "date_range": "7d"})),
            "metrics[1]: \"events\" is listed twice"
        );
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
        assert!(
            fault(json!({"metrics": ["sum:props.x", "sessions"], "date_range": "7d"}))
                .starts_with("metrics[0]: sum:props.x cannot be combined with session metrics")
        );
    }

    #[test]
    fn session_metrics_and_dimensions_make_a_session_query() {
        let plan = planned(json!({"metrics": ["events", "users"], "date_range": "7d", "dimensions": ["session:entry_page"]})).unwrap();
        let RowSource::Sessions(sessions) = &plan.rows else {
            panic!("a session query")
        };
        assert_eq!(
            sessions.metrics,
            [SessionMetric::Events, SessionMetric::Users]
        );
        assert_eq!(sessions.timeout, chrono::Duration::minutes(30));

        let plan = planned(json!({"metrics": ["percentage", "avg:props.x"], "date_range": "7d", "dimensions": ["time:day"]})).unwrap();
        let RowSource::Events(events) = &plan.rows else {
            panic!("an event query")
        };
        assert_eq!(events.metrics[0], EventMetric::Users);
        assert_eq!(events.dimensions, [GroupDimension::Time(Granularity::Day)]);
        assert_eq!(events.project_id, "shop");
    }
}
