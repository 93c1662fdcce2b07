//! SQL shapes both query executors share: the boolean structure of a filter,
//! the `UNION ALL` branches of a query, timelines, and the `ORDER BY` of a
//! query. Each backend supplies its own expressions; the structure around
//! them is written once here.

use crate::domain::analysis::TimelineRequest;
use crate::domain::query::{
    EventDimension, EventMetric, EventQuery, Filter, Granularity, GroupDimension, OrderTarget,
    Test, TimeRange,
};

/// The user a query counts and groups by: `userId`, else `anonymousId`.
pub(crate) const USER_KEY: &str = "coalesce(user_id, anonymous_id)";

/// Where a backend reads an event dimension from.
pub(crate) enum DimensionSource<'a> {
    /// A column that both schemas store under this name (or expression).
    Column(&'static str),
    /// The track event's name, else the call type.
    Name,
    /// A property (a trait for identify and group calls) by key.
    Property(&'a str),
    /// A context field by key.
    Context(&'a str),
}

/// Where `dimension` is read from.
pub(crate) fn dimension_source(dimension: &EventDimension) -> DimensionSource<'_> {
    let column = match dimension {
        EventDimension::Type => "type",
        EventDimension::Page => "page_path",
        EventDimension::Url => "page_url",
        EventDimension::Referrer => "page_referrer",
        EventDimension::Utm(utm) => utm.as_str(),
        EventDimension::Library => "library_name",
        EventDimension::Locale => "locale",
        EventDimension::UserId => USER_KEY,
        EventDimension::Visit(attribute) => attribute.as_str(),
        EventDimension::Acquisition(attribute) => attribute.as_str(),
        EventDimension::Name => return DimensionSource::Name,
        EventDimension::Property(key) => return DimensionSource::Property(key),
        EventDimension::Context(key) => return DimensionSource::Context(key),
    };
    DimensionSource::Column(column)
}

/// A backend's SQL for the pieces of a query; it binds each value it writes,
/// in text order.
pub(crate) trait QuerySql {
    /// The person of an event (see [`crate::domain::identity`]), as a number
    /// that distinct users are counted over.
    fn person(&mut self) -> String;

    /// The event time in microseconds since the epoch.
    const TIMESTAMP_US: &'static str;

    /// The text value of an event dimension.
    fn text_expression(&mut self, dimension: &EventDimension) -> String;

    /// The bucket start, in microseconds, under a constant UTC offset.
    fn bucket_expression(&mut self, granularity: Granularity, offset_us: i64) -> String;

    /// The number in a text expression, NULL when it is none.
    fn numeric(&mut self, text: &str) -> String;

    /// The positive form of one filter condition (see [`filter_sql`]).
    fn condition(&mut self, dimension: &EventDimension, test: &Test) -> String;

    /// [`QuerySql::condition`] as one bit of a timeline's `matches` (a
    /// `CASE` evaluated on every event of the range, not a filter), where a
    /// backend may prefer another form of the same test.
    fn matcher_condition(&mut self, dimension: &EventDimension, test: &Test) -> String {
        self.condition(dimension, test)
    }

    /// `SELECT columns FROM events` of one project within `range`, joined
    /// with what [`QuerySql::person`] reads.
    fn project_events(&mut self, columns: &str, project_id: &str, range: TimeRange) -> String;
}

/// One branch of a query: the events of one offset piece that pass the
/// query's filter, with the columns the aggregation reads (`person`, `d{i}`
/// per dimension, `n{i}` per numeric metric).
fn branch<S: QuerySql>(
    statement: &mut S,
    query: &EventQuery,
    range: TimeRange,
    offset_us: i64,
) -> String {
    let mut columns = vec![format!("{} AS person", statement.person())];
    for (i, dimension) in query.dimensions.iter().enumerate() {
        let expression = match dimension {
            GroupDimension::Time(granularity) => {
                statement.bucket_expression(*granularity, offset_us)
            }
            GroupDimension::Event(event) => statement.text_expression(event),
        };
        columns.push(format!("{expression} AS d{i}"));
    }
    for (i, metric) in query.metrics.iter().enumerate() {
        match metric {
            EventMetric::Numeric(_, key) => {
                let property = statement.text_expression(&EventDimension::Property(key.clone()));
                columns.push(format!("{} AS n{i}", statement.numeric(&property)));
            }
            // 1 for a page view, 0 for any other call.
            EventMetric::Pageviews => {
                columns.push(format!("CASE WHEN type = 'page' THEN 1 ELSE 0 END AS n{i}"));
            }
            EventMetric::Events | EventMetric::Users => {}
        }
    }
    // Values are bound in text order: the columns' before the conditions'.
    let mut sql = statement.project_events(&columns.join(", "), &query.project_id, range);
    if let Some(filter) = &query.filter {
        sql.push_str(" AND ");
        sql.push_str(&filter_sql(statement, filter, &S::condition));
    }
    sql
}

/// The query's events: one `UNION ALL` branch per piece of the range with one
/// UTC offset, so that engines without timezone data bucket local time with
/// a constant offset.
pub(crate) fn events_source<S: QuerySql>(statement: &mut S, query: &EventQuery) -> String {
    let branches: Vec<String> = query
        .offset_pieces()
        .into_iter()
        .map(|(range, offset_us)| branch(statement, query, range, offset_us))
        .collect();
    branches.join(" UNION ALL ")
}

/// The events of a timeline request: `person`, `timestamp_us`, `matches`
/// (bit `i` set when matcher `i` holds) and the labels (when the request
/// has any), ordered by person and time (then `messageId` when the request
/// orders ties). `cast` wraps the outputs in the types the backend reads;
/// `restriction`, when given, is one more condition every event meets (it
/// binds no value).
pub(crate) fn timeline_sql<S: QuerySql>(
    statement: &mut S,
    request: &TimelineRequest,
    cast: &TimelineCasts,
    restriction: Option<&str>,
) -> String {
    let person = statement.person();
    let flags: Vec<String> = request
        .matchers
        .iter()
        .enumerate()
        .map(|(i, matcher)| {
            let condition = filter_sql(statement, matcher, &S::matcher_condition);
            // The bit is a constant of the plan, not a request value.
            format!("CASE WHEN {condition} THEN {} ELSE 0 END", 1u64 << i)
        })
        .collect();
    let matches = if flags.is_empty() {
        "0".to_owned()
    } else {
        flags.join(" + ")
    };
    let mut columns = format!(
        "{person} AS person, {} AS timestamp_us, message_id, {matches} AS matches",
        S::TIMESTAMP_US
    );
    for (i, dimension) in request.labels.iter().enumerate() {
        let label = statement.text_expression(dimension);
        columns.push_str(&format!(", {label} AS label{i}"));
    }
    let mut sql = statement.project_events(&columns, &request.project_id, request.range);
    if let Some(filter) = &request.filter {
        sql.push_str(" AND ");
        sql.push_str(&filter_sql(statement, filter, &S::condition));
    }
    if let Some(restriction) = restriction {
        sql.push_str(&format!(" AND ({restriction})"));
    }
    let keep = if request.all_events {
        ""
    } else {
        " WHERE matches <> 0"
    };
    let labels: Vec<String> = (0..request.labels.len())
        .map(|i| (cast.label)(&format!("label{i}")))
        .collect();
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!(", {}", (cast.labels)(&labels))
    };
    let (tie_column, ties) = match (request.ordered_ties, cast.ties) {
        (false, _) => ("", ""),
        (true, TieOrder::InStatement) => ("", ", message_id"),
        (true, TieOrder::ByReader) => (", message_id", ""),
    };
    format!(
        "SELECT {}, {}, {}{tie_column}{labels} FROM ({sql}) AS timeline{keep} ORDER BY person, timestamp_us{ties}",
        (cast.person)("person"),
        (cast.timestamp)("timestamp_us"),
        (cast.matches)("matches"),
    )
}

/// Where events at the same instant are put in `messageId` order when a
/// timeline request orders ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TieOrder {
    /// By the statement's `ORDER BY`.
    InStatement,
    /// By the reader: the statement orders by person and time only and
    /// returns `message_id` as its fourth column (before the labels), for
    /// the reader to order each run of events at one instant. DuckDB sorts
    /// fixed-size keys far faster than keys with a string in them.
    ByReader,
}

/// How a backend types the outputs of [`timeline_sql`].
pub(crate) struct TimelineCasts {
    pub person: fn(&str) -> String,
    pub timestamp: fn(&str) -> String,
    pub matches: fn(&str) -> String,
    pub label: fn(&str) -> String,
    /// The label columns (already cast) as the output's last column(s).
    pub labels: fn(&[String]) -> String,
    /// Who orders events at the same instant.
    pub ties: TieOrder,
}

/// The SQL of a filter tree. `condition` writes the positive form of one
/// leaf (`is`, `contains`, `matches`, ...); negated conditions (`is_not`,
/// `contains_not`, `matches_not`, `is_not_set`) are wrapped in `NOT` here.
/// `state` is the backend's statement, which binds values in text order.
pub(crate) fn filter_sql<S>(
    state: &mut S,
    filter: &Filter,
    condition: &impl Fn(&mut S, &EventDimension, &Test) -> String,
) -> String {
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let parts: Vec<String> = items
                .iter()
                .map(|f| filter_sql(state, f, condition))
                .collect();
            format!("({})", parts.join(joiner))
        }
        Filter::Not(inner) => format!("(NOT {})", filter_sql(state, inner, condition)),
        Filter::Condition {
            dimension,
            test,
            negated,
        } => {
            let positive = condition(state, dimension, test);
            if *negated {
                format!("(NOT {positive})")
            } else {
                positive
            }
        }
    }
}

/// `SELECT` of the query's groups over `source`: the dimension columns, then
/// `outputs` (the metrics, as `m{i}`), grouped by the dimensions and ordered
/// as the query asks; paging is the caller's.
pub(crate) fn grouped_select(
    query: &EventQuery,
    source: &str,
    outputs: impl IntoIterator<Item = String>,
) -> String {
    let groups = dimension_columns(query);
    let columns: Vec<String> = groups.iter().cloned().chain(outputs).collect();
    let mut sql = format!("SELECT {} FROM ({source}) AS base", columns.join(", "));
    if !groups.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
    }
    sql.push_str(&order_by_clause(query));
    sql
}

/// ` ORDER BY ...` over the output columns `d{i}` (dimensions) and `m{i}`
/// (metrics), empty when the query has no ordering.
fn order_by_clause(query: &EventQuery) -> String {
    let order: Vec<String> = query
        .order_by
        .iter()
        .map(|ordering| {
            let column = match ordering.target {
                OrderTarget::Metric(i) => format!("m{i}"),
                OrderTarget::Dimension(i) => format!("d{i}"),
            };
            let direction = if ordering.descending { "DESC" } else { "ASC" };
            format!("{column} {direction} NULLS LAST")
        })
        .collect();
    if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    }
}

/// The output column names of the query's dimensions: `d0`, `d1`, ...
pub(crate) fn dimension_columns(query: &EventQuery) -> Vec<String> {
    (0..query.dimensions.len())
        .map(|i| format!("d{i}"))
        .collect()
}
