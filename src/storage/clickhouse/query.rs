//! Executes query plans in ClickHouse, with SQL that servers from 18.16 to
//! current versions accept.
//!
//! The SQL text is built only from the plan's fixed vocabulary (column names,
//! functions, operators); every value from the request (project, times, keys,
//! filter values, patterns, limits) is a `?` placeholder that the client fills
//! in, escaped (servers before 23.x have no server-side parameters).
//!
//! Like the DuckDB executor, local time comes from the plan's offset schedule:
//! one `UNION ALL` branch per piece of the range with one UTC offset, and
//! bucket starts by integer arithmetic on `timestamp_us`, so that both
//! backends cut buckets identically. Distinct users are counted exactly over
//! the 64-bit `user_hash` (see the schema). Results are read as
//! `TabSeparated` text.

use chrono::DateTime;
use clickhouse::query::Query;
use clickhouse::Client;
use futures::stream::{self, StreamExt};

use super::errors::{classify, Limits};
use super::persons::{PERSON_EXPRESSION, PERSON_JOIN};
use super::tsv::{self, Field};
use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{
    DimensionValue, EventDimension, EventMetric, EventQuery, Filter, Granularity, GroupDimension,
    MetricValue, QueryRow, QueryRows, Test, TimeRange, NUMERIC_TEXT_PATTERN,
};
use crate::storage::sql::{
    dimension_columns, dimension_source, events_source, grouped_select, timeline_sql,
    DimensionSource, QuerySql, TieOrder, TimelineCasts,
};
use crate::storage::{ReadBudget, StorageError, TimelineChunks};

/// Timeline rows per chunk handed to the analysis.
const TIMELINE_CHUNK: usize = 16_384;

/// A read's query with its budget as server settings: the server stops a
/// read past `max_execution_time` (whole seconds, at least one) or
/// `max_rows_to_read` rows scanned.
fn budgeted(query: Query, budget: ReadBudget) -> Query {
    let seconds = budget.timeout.as_secs_f64().ceil().max(1.0) as u64;
    query
        .with_setting("max_execution_time", seconds.to_string())
        .with_setting("max_rows_to_read", budget.max_rows.to_string())
}

fn limits(budget: ReadBudget) -> Limits {
    Limits {
        timeout: Some(budget.timeout),
        max_rows: Some(budget.max_rows),
    }
}

/// The error of a read made under `budget`.
fn read_error(
    context: &str,
    budget: ReadBudget,
) -> impl Fn(clickhouse::error::Error) -> StorageError + '_ {
    move |error| classify(context, error, limits(budget))
}

/// A value bound to a `?` of the SQL text.
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
    Float(f64),
}

/// SQL text with `?` placeholders and their values, in order.
#[derive(Debug, Default)]
struct Statement {
    params: Vec<Param>,
}

impl Statement {
    fn text(&mut self, value: impl Into<String>) -> &'static str {
        self.params.push(Param::Text(value.into()));
        "?"
    }

    fn int(&mut self, value: i64) -> &'static str {
        self.params.push(Param::Int(value));
        "?"
    }

    fn float(&mut self, value: f64) -> &'static str {
        self.params.push(Param::Float(value));
        "?"
    }

    fn into_query(self, client: &Client, sql: &str) -> Query {
        self.params
            .into_iter()
            .fold(client.query(sql), |query, param| match param {
                Param::Text(text) => query.bind(text),
                Param::Int(number) => query.bind(number),
                Param::Float(number) => query.bind(number),
            })
    }
}

/// The value of `key` in a flattened key/value column pair; NULL when unset.
fn lookup(statement: &mut Statement, keys: &str, values: &str, key: &str) -> String {
    let first = statement.text(key);
    let second = statement.text(key);
    format!("if(indexOf({keys}, {first}) = 0, NULL, {values}[indexOf({keys}, {second})])")
}

fn metric_sql(index: usize, metric: &EventMetric) -> String {
    match metric {
        EventMetric::Events => "count()".into(),
        EventMetric::Pageviews => format!("countIf(n{index} = 1)"),
        // The person's hash: see `QuerySql::person`.
        EventMetric::Users => "uniqExact(person)".into(),
        EventMetric::Numeric(aggregate, _) => {
            // The aggregates' names are SQL's.
            let function = aggregate.as_str();
            format!("{function}(if(ifNull(isFinite(n{index}), 0) = 1, n{index}, NULL))")
        }
    }
}

impl QuerySql for Statement {
    const TIMESTAMP_US: &'static str = "timestamp_us";

    /// `user_hash` (the hash of `storage::sql::USER_KEY`, computed at insert),
    /// or the hash of the person it was merged into.
    fn person(&mut self) -> String {
        PERSON_EXPRESSION.into()
    }

    fn text_expression(&mut self, dimension: &EventDimension) -> String {
        match dimension_source(dimension) {
            DimensionSource::Column(column) => column.into(),
            DimensionSource::Name => "event_name".into(),
            DimensionSource::Property(key) => lookup(self, "prop_keys", "prop_values", key),
            DimensionSource::Context(key) => lookup(self, "context_keys", "context_values", key),
        }
    }

    /// The bucket of each event as microseconds since the epoch, computed as the
    /// DuckDB executor does (see [`Granularity::fixed_length`]).
    fn bucket_expression(&mut self, granularity: Granularity, offset_us: i64) -> String {
        let Some(bucket) = granularity.fixed_length() else {
            // The month of the local time, then its first day in microseconds.
            let offset = self.int(offset_us);
            return format!(
                "toInt64(toUInt16(toStartOfMonth(toDateTime(intDiv(timestamp_us + toInt64({offset}), 1000000)), 'UTC'))) * 86400000000"
            );
        };
        // Placeholders are positional: bound in the order they appear.
        let offset = self.int(offset_us);
        let shift = self.int(bucket.shift_us);
        let unit = self.int(bucket.unit_us);
        let unit_again = self.int(bucket.unit_us);
        let shift_again = self.int(bucket.shift_us);
        let local = format!(
            "intDiv(timestamp_us + toInt64({offset}) + toInt64({shift}), toInt64({unit})) * toInt64({unit_again}) - toInt64({shift_again})"
        );
        if bucket.starts_in_utc {
            format!("toInt64({local} - toInt64({}))", self.int(offset_us))
        } else {
            format!("toInt64({local})")
        }
    }

    /// The number in a property's text, when it is one (see [`NUMERIC_TEXT_PATTERN`]).
    fn numeric(&mut self, text: &str) -> String {
        format!(
            "toFloat64OrNull(extract(ifNull({text}, ''), {}))",
            self.text(NUMERIC_TEXT_PATTERN)
        )
    }

    fn condition(&mut self, dimension: &EventDimension, test: &Test) -> String {
        let expression = self.text_expression(dimension);
        let any =
            |statement: &mut Statement, values: &[String], template: &dyn Fn(&str) -> String| {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| template(statement.text(v.clone())))
                    .collect();
                format!("coalesce({}, 0)", parts.join(" OR "))
            };
        match test {
            Test::IsSet => format!("({expression} IS NOT NULL)"),
            Test::Compare(comparison, number) => {
                let value = self.numeric(&expression);
                format!(
                    "coalesce({value} {} toFloat64({}), 0)",
                    comparison.symbol(),
                    self.float(*number)
                )
            }
            Test::Equals(values) => {
                let placeholders: Vec<&str> = values.iter().map(|v| self.text(v.clone())).collect();
                format!("coalesce({expression} IN ({}), 0)", placeholders.join(", "))
            }
            Test::Contains(values) => any(self, values, &|p| {
                format!("position({expression}, {p}) > 0")
            }),
            Test::Matches(patterns) => {
                any(self, patterns, &|p| format!("match({expression}, {p})"))
            }
        }
    }

    fn project_events(&mut self, columns: &str, project_id: &str, range: TimeRange) -> String {
        // The join's placeholder comes first in the text.
        self.text(project_id);
        let project = self.text(project_id);
        // Whole seconds on the `DateTime` column select partitions and
        // granules; microseconds decide exactly.
        let from_second = self.int(range.from.timestamp());
        let to_second = self.int(range.to.timestamp());
        let from = self.int(range.from.timestamp_micros());
        let to = self.int(range.to.timestamp_micros());
        format!(
            "SELECT {columns} FROM events{PERSON_JOIN} WHERE project_id = {project} \
             AND timestamp >= toDateTime({from_second}) AND timestamp <= toDateTime({to_second}) \
             AND timestamp_us >= {from} AND timestamp_us < {to}"
        )
    }
}

/// The page of the query's rows.
fn rows_statement(query: &EventQuery) -> (String, Statement) {
    let mut statement = Statement::default();
    let source = events_source(&mut statement, query);
    let metrics = query
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} AS m{i}", metric_sql(i, m)));
    let mut sql = grouped_select(query, &source, metrics);
    if !query.all_rows {
        let offset = statement.int(i64::try_from(query.offset).unwrap_or(i64::MAX));
        let limit = statement.int(i64::try_from(query.limit).unwrap_or(i64::MAX));
        sql.push_str(&format!(" LIMIT {offset}, {limit}"));
    }
    (sql, statement)
}

/// How many rows the query has before pagination (groups, or one without dimensions).
fn count_statement(query: &EventQuery) -> (String, Statement) {
    let mut statement = Statement::default();
    let source = events_source(&mut statement, query);
    let groups = dimension_columns(query).join(", ");
    let sql = format!("SELECT count() FROM (SELECT {groups} FROM ({source}) GROUP BY {groups})");
    (sql, statement)
}

/// The query's statements as the server receives them, values filled in: the
/// page of rows, then (with dimensions) the row count. For logs and for
/// running the same text on other servers.
pub(super) fn compiled_query(client: &Client, query: &EventQuery) -> Vec<String> {
    let mut statements = vec![rows_statement(query)];
    if !query.dimensions.is_empty() {
        statements.push(count_statement(query));
    }
    statements
        .into_iter()
        .map(|(sql, statement)| statement.into_query(client, &sql).sql_display().to_string())
        .collect()
}

fn number<T: std::str::FromStr>(field: &Field, what: &str) -> Result<T, String> {
    field
        .as_deref()
        .ok_or_else(|| format!("{what} is NULL"))?
        .parse()
        .map_err(|_| format!("{what} {field:?} is not a number"))
}

/// Reads the `TabSeparated` result of the query's rows statement.
fn parse_rows(query: &EventQuery, body: &[u8]) -> Result<Vec<QueryRow>, String> {
    tsv::parse(body)?
        .into_iter()
        .map(|fields| {
            let expected = query.dimensions.len() + query.metrics.len();
            if fields.len() != expected {
                return Err(format!(
                    "a row has {} fields instead of {expected}",
                    fields.len()
                ));
            }
            let (dimension_fields, metric_fields) = fields.split_at(query.dimensions.len());
            let dimensions = query
                .dimensions
                .iter()
                .zip(dimension_fields)
                .map(|(dimension, field)| match dimension {
                    GroupDimension::Time(granularity) => Ok(DimensionValue::time_bucket(
                        *granularity,
                        number(field, "a time bucket")?,
                    )),
                    GroupDimension::Event(_) => Ok(DimensionValue::Text(field.clone())),
                })
                .collect::<Result<_, String>>()?;
            let metrics = query
                .metrics
                .iter()
                .zip(metric_fields)
                .map(|(metric, field)| match metric {
                    EventMetric::Numeric(..) => Ok(MetricValue::Number(match field {
                        None => None,
                        Some(_) => Some(number(field, "an aggregate")?),
                    })),
                    EventMetric::Events | EventMetric::Users | EventMetric::Pageviews => {
                        Ok(MetricValue::Count(number(field, "a count")?))
                    }
                })
                .collect::<Result<_, String>>()?;
            Ok(QueryRow {
                dimensions,
                metrics,
            })
        })
        .collect()
}

async fn fetch_text(
    client: &Client,
    sql: &str,
    statement: Statement,
    budget: ReadBudget,
) -> Result<Vec<u8>, StorageError> {
    let failed = read_error("querying", budget);
    let mut cursor = budgeted(statement.into_query(client, sql), budget)
        .fetch_bytes("TabSeparated")
        .map_err(&failed)?;
    cursor
        .collect()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(&failed)
}

/// Runs a query; `client` selects the database.
pub async fn run(
    client: &Client,
    query: &EventQuery,
    budget: ReadBudget,
) -> Result<QueryRows, StorageError> {
    let (sql, statement) = rows_statement(query);
    tracing::debug!(%sql, parameters = statement.params.len(), "query");
    let body = fetch_text(client, &sql, statement, budget).await?;
    let rows = parse_rows(query, &body).map_err(StorageError::Internal)?;
    let returned = rows.len() as u64;
    let page_is_full = !query.all_rows && returned >= query.limit;
    let total_rows = if query.dimensions.is_empty() {
        1
    } else if page_is_full || (returned == 0 && query.offset > 0) {
        let (sql, statement) = count_statement(query);
        let body = fetch_text(client, &sql, statement, budget).await?;
        let fields = tsv::parse(&body).map_err(StorageError::Internal)?;
        let first = fields
            .first()
            .and_then(|row| row.first())
            .cloned()
            .flatten();
        number(&first, "the row count").map_err(StorageError::Internal)?
    } else {
        query.offset.saturating_add(returned)
    };
    Ok(QueryRows { rows, total_rows })
}

const TIMELINE_CASTS: TimelineCasts = TimelineCasts {
    person: |column| format!("toUInt64({column})"),
    timestamp: |column| format!("toInt64({column})"),
    matches: |column| format!("toUInt64({column})"),
    label: |column| format!("CAST({column} AS Nullable(String))"),
    labels: |columns| format!("[{}]", columns.join(", ")),
    ties: TieOrder::InStatement,
};

/// A timeline row with labels, as [`TIMELINE_CASTS`] types it.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct LabelledRow {
    person: u64,
    timestamp_us: i64,
    matches: u64,
    labels: Vec<Option<String>>,
}

fn timeline_query(client: &Client, request: &TimelineRequest) -> Query {
    let mut statement = Statement::default();
    let sql = timeline_sql(&mut statement, request, &TIMELINE_CASTS, None);
    statement.into_query(client, &sql)
}

/// The final text of timeline statements of the shapes analyses send: with
/// labels and filters (funnels), and every event (strict funnels, paths).
pub(super) fn timeline_texts(client: &Client, project_id: &str, range: TimeRange) -> Vec<String> {
    let name = |name: &str| Filter::is(EventDimension::Name, vec![name.to_owned()]);
    let funnel = TimelineRequest {
        project_id: project_id.to_owned(),
        range,
        filter: Some(Filter::Condition {
            dimension: EventDimension::Page,
            test: Test::Contains(vec!["/docs".to_owned()]),
            negated: true,
        }),
        matchers: vec![name("signup"), name("purchase")],
        all_events: false,
        ordered_ties: true,
        labels: vec![
            EventDimension::Property("plan".to_owned()),
            EventDimension::Name,
        ],
    };
    let every_event = TimelineRequest {
        filter: None,
        all_events: true,
        ordered_ties: false,
        labels: Vec::new(),
        ..funnel.clone()
    };
    [funnel, every_event]
        .iter()
        .map(|request| timeline_query(client, request).sql_display().to_string())
        .collect()
}

/// Streams the events of a timeline request, a chunk at a time.
pub fn timelines(client: &Client, request: &TimelineRequest, budget: ReadBudget) -> TimelineChunks {
    let query = budgeted(timeline_query(client, request), budget);
    let labelled = !request.labels.is_empty();
    let failed = move |error| classify("reading timelines", error, limits(budget));
    if labelled {
        match query.fetch::<LabelledRow>() {
            Ok(cursor) => chunked(cursor, failed, |row| TimelineEvent {
                person: row.person,
                timestamp_us: row.timestamp_us,
                matches: row.matches,
                labels: row.labels,
            }),
            Err(error) => stream::once(async move { Err(failed(error)) }).boxed(),
        }
    } else {
        match query.fetch::<(u64, i64, u64)>() {
            Ok(cursor) => chunked(cursor, failed, |(person, timestamp_us, matches)| {
                TimelineEvent {
                    person,
                    timestamp_us,
                    matches,
                    labels: Vec::new(),
                }
            }),
            Err(error) => stream::once(async move { Err(failed(error)) }).boxed(),
        }
    }
}

/// Chunks of a row cursor, each row turned into an event.
fn chunked<R>(
    cursor: clickhouse::query::RowCursor<R>,
    failed: impl Fn(clickhouse::error::Error) -> StorageError + Send + Copy + 'static,
    event: impl Fn(R) -> TimelineEvent + Send + Copy + 'static,
) -> TimelineChunks
where
    R: clickhouse::RowOwned + clickhouse::RowRead + Send + 'static,
{
    stream::try_unfold(Some(cursor), move |state| async move {
        let Some(mut cursor) = state else {
            return Ok(None);
        };
        let mut chunk = Vec::with_capacity(TIMELINE_CHUNK);
        while chunk.len() < TIMELINE_CHUNK {
            match cursor.next().await.map_err(failed)? {
                Some(row) => chunk.push(event(row)),
                None if chunk.is_empty() => return Ok(None),
                None => return Ok(Some((chunk, None))),
            }
        }
        Ok(Some((chunk, Some(cursor))))
    })
    .boxed()
}

fn time_bounds_query(client: &Client, project_id: &str) -> Query {
    client
        .query(
            "SELECT count(), min(timestamp_us), max(timestamp_us) FROM events WHERE project_id = ?",
        )
        .bind(project_id)
}

/// First and last event time of a project.
pub async fn time_bounds(
    client: &Client,
    project_id: &str,
    budget: ReadBudget,
) -> Result<Option<TimeRange>, StorageError> {
    let (events, first, last): (u64, i64, i64) =
        budgeted(time_bounds_query(client, project_id), budget)
            .fetch_one()
            .await
            .map_err(read_error("reading time bounds", budget))?;
    Ok((events > 0).then(|| TimeRange {
        from: DateTime::from_timestamp_micros(first).unwrap_or_default(),
        to: DateTime::from_timestamp_micros(last).unwrap_or_default(),
    }))
}

/// The newest `received_at` of a project's events timestamped at or after
/// `since`; the whole-second bound on `timestamp` lets the primary key prune.
pub async fn newest_received_at(
    client: &Client,
    project_id: &str,
    since: DateTime<chrono::Utc>,
    budget: ReadBudget,
) -> Result<Option<DateTime<chrono::Utc>>, StorageError> {
    let query = client
        .query(
            "SELECT count(), max(received_at_us) FROM events
             WHERE project_id = ? AND timestamp >= toDateTime(?) AND timestamp_us >= ?",
        )
        .bind(project_id)
        .bind(since.timestamp())
        .bind(since.timestamp_micros());
    let (events, newest): (u64, i64) = budgeted(query, budget)
        .fetch_one()
        .await
        .map_err(read_error("reading the newest receipt time", budget))?;
    Ok((events > 0)
        .then(|| DateTime::from_timestamp_micros(newest))
        .flatten())
}

fn property_keys_query(
    client: &Client,
    project_id: &str,
    range: TimeRange,
    event: Option<&str>,
    limit: usize,
) -> Query {
    let mut sql = String::from(
        "SELECT key, count() AS events FROM events
         ARRAY JOIN arrayDistinct(arrayMap(k -> splitByChar('.', k)[1], prop_keys)) AS key
         WHERE project_id = ? AND timestamp_us >= ? AND timestamp_us < ?",
    );
    if event.is_some() {
        sql.push_str(" AND event_name = ?");
    }
    sql.push_str(" GROUP BY key ORDER BY events DESC, key LIMIT ?");
    let mut query = client
        .query(&sql)
        .bind(project_id)
        .bind(range.from.timestamp_micros())
        .bind(range.to.timestamp_micros());
    if let Some(event) = event {
        query = query.bind(event);
    }
    query.bind(u64::try_from(limit).unwrap_or(u64::MAX))
}

/// Top-level property (and trait) keys of a project's events in a range, most used first.
pub async fn property_keys(
    client: &Client,
    project_id: &str,
    range: TimeRange,
    event: Option<&str>,
    limit: usize,
    budget: ReadBudget,
) -> Result<Vec<(String, u64)>, StorageError> {
    budgeted(
        property_keys_query(client, project_id, range, event, limit),
        budget,
    )
    .fetch_all::<(String, u64)>()
    .await
    .map_err(read_error("listing property keys", budget))
}

/// The final text of the discovery statements for a project and range.
pub(super) fn discovery_texts(client: &Client, project_id: &str, range: TimeRange) -> Vec<String> {
    vec![
        time_bounds_query(client, project_id)
            .sql_display()
            .to_string(),
        property_keys_query(client, project_id, range, None, 100)
            .sql_display()
            .to_string(),
        property_keys_query(client, project_id, range, Some("purchase"), 100)
            .sql_display()
            .to_string(),
    ]
}
