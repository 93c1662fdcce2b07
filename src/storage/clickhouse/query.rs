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

use super::persons::{PERSON_EXPRESSION, PERSON_JOIN};
use super::storage_error;
use super::tsv::{self, Field};
use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{
    Dimension, DimensionValue, Filter, FilterOp, Granularity, Metric, MetricValue, QueryPlan,
    QueryRow, QueryRows, TimeRange, NUMERIC_TEXT_PATTERN,
};
use crate::storage::sql::{
    comparison, dimension_columns, events_source, grouped_select, stored_column, timeline_sql,
    QuerySql, TimelineCasts,
};
use crate::storage::StorageError;

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

fn metric_sql(index: usize, metric: &Metric) -> String {
    match metric {
        Metric::Events => "count()".into(),
        // The person's hash: see `QuerySql::person`.
        Metric::Users | Metric::Percentage => "uniqExact(person)".into(),
        Metric::Numeric(aggregate, _) => {
            // The aggregates' names are SQL's.
            let function = aggregate.as_str();
            format!("{function}(if(ifNull(isFinite(n{index}), 0) = 1, n{index}, NULL))")
        }
        _ => unreachable!(
            "session metrics are computed from timelines (see QueryPlan::is_session_query)"
        ),
    }
}

impl QuerySql for Statement {
    const TIMESTAMP_US: &'static str = "timestamp_us";

    /// `user_hash` (the hash of `storage::sql::USER_KEY`, computed at insert),
    /// or the hash of the person it was merged into.
    fn person(&mut self) -> String {
        PERSON_EXPRESSION.into()
    }

    fn text_expression(&mut self, dimension: &Dimension) -> String {
        if let Some(column) = stored_column(dimension) {
            return column.into();
        }
        match dimension {
            Dimension::EventName => "event_name".into(),
            Dimension::Property(key) => lookup(self, "prop_keys", "prop_values", key),
            Dimension::Context(key) => lookup(self, "context_keys", "context_values", key),
            _ => unreachable!(
                "time is bucketed and session dimensions come from timelines, not read; \
                 other dimensions are stored columns"
            ),
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

    fn condition(&mut self, op: FilterOp, dimension: &Dimension, values: &[String]) -> String {
        let expression = self.text_expression(dimension);
        let placeholders = |statement: &mut Statement| {
            values
                .iter()
                .map(|v| statement.text(v.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let any = |statement: &mut Statement, template: &dyn Fn(&str) -> String| {
            let parts: Vec<String> = values
                .iter()
                .map(|v| template(statement.text(v.clone())))
                .collect();
            format!("coalesce({}, 0)", parts.join(" OR "))
        };
        match op {
            FilterOp::IsSet => format!("({expression} IS NOT NULL)"),
            FilterOp::IsNotSet => format!("({expression} IS NULL)"),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                let symbol = comparison(op).expect("a comparison");
                let number: f64 = values[0].parse().expect("validated number");
                let value = self.numeric(&expression);
                format!(
                    "coalesce({value} {symbol} toFloat64({}), 0)",
                    self.float(number)
                )
            }
            FilterOp::Is | FilterOp::IsNot => {
                format!("coalesce({expression} IN ({}), 0)", placeholders(self))
            }
            FilterOp::Contains | FilterOp::ContainsNot => {
                any(self, &|p| format!("position({expression}, {p}) > 0"))
            }
            FilterOp::Matches | FilterOp::MatchesNot => {
                any(self, &|p| format!("match({expression}, {p})"))
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

/// The page of the plan's rows.
fn rows_statement(plan: &QueryPlan) -> (String, Statement) {
    let mut statement = Statement::default();
    let source = events_source(&mut statement, plan);
    let metrics = plan
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} AS m{i}", metric_sql(i, m)));
    let mut sql = grouped_select(plan, &source, metrics);
    if !plan.fills_time_buckets() {
        let offset = statement.int(i64::try_from(plan.offset).unwrap_or(i64::MAX));
        let limit = statement.int(i64::try_from(plan.limit).unwrap_or(i64::MAX));
        sql.push_str(&format!(" LIMIT {offset}, {limit}"));
    }
    (sql, statement)
}

/// How many rows the plan has before pagination (groups, or one without dimensions).
fn count_statement(plan: &QueryPlan) -> (String, Statement) {
    let mut statement = Statement::default();
    let source = events_source(&mut statement, plan);
    let groups = dimension_columns(plan).join(", ");
    let sql = format!("SELECT count() FROM (SELECT {groups} FROM ({source}) GROUP BY {groups})");
    (sql, statement)
}

/// The plan's statements as the server receives them, values filled in: the
/// page of rows, then (with dimensions) the row count. For logs and for
/// running the same text on other servers.
pub(super) fn compiled_query(client: &Client, plan: &QueryPlan) -> Vec<String> {
    let mut statements = vec![rows_statement(plan)];
    if !plan.dimensions.is_empty() {
        statements.push(count_statement(plan));
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

/// Reads the `TabSeparated` result of the plan's rows query.
fn parse_rows(plan: &QueryPlan, body: &[u8]) -> Result<Vec<QueryRow>, String> {
    tsv::parse(body)?
        .into_iter()
        .map(|fields| {
            let expected = plan.dimensions.len() + plan.metrics.len();
            if fields.len() != expected {
                return Err(format!(
                    "a row has {} fields instead of {expected}",
                    fields.len()
                ));
            }
            let (dimension_fields, metric_fields) = fields.split_at(plan.dimensions.len());
            let dimensions = plan
                .dimensions
                .iter()
                .zip(dimension_fields)
                .map(|(dimension, field)| match dimension {
                    Dimension::Time(granularity) => Ok(DimensionValue::time_bucket(
                        *granularity,
                        number(field, "a time bucket")?,
                    )),
                    _ => Ok(DimensionValue::Text(field.clone())),
                })
                .collect::<Result<_, String>>()?;
            let metrics = plan
                .metrics
                .iter()
                .zip(metric_fields)
                .map(|(metric, field)| match metric {
                    Metric::Numeric(..) => Ok(MetricValue::Number(match field {
                        None => None,
                        Some(_) => Some(number(field, "an aggregate")?),
                    })),
                    _ => Ok(MetricValue::Count(number(field, "a count")?)),
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
) -> Result<Vec<u8>, StorageError> {
    let mut cursor = statement
        .into_query(client, sql)
        .fetch_bytes("TabSeparated")
        .map_err(|e| storage_error("querying", e))?;
    cursor
        .collect()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|e| storage_error("querying", e))
}

/// Runs a plan; `client` selects the database.
pub async fn run(client: &Client, plan: &QueryPlan) -> Result<QueryRows, StorageError> {
    let (sql, statement) = rows_statement(plan);
    tracing::debug!(%sql, parameters = statement.params.len(), "query");
    let body = fetch_text(client, &sql, statement).await?;
    let rows = parse_rows(plan, &body).map_err(StorageError::Backend)?;
    let returned = rows.len() as u64;
    let page_is_full = !plan.fills_time_buckets() && returned >= plan.limit;
    let total_rows = if plan.dimensions.is_empty() {
        1
    } else if page_is_full || (returned == 0 && plan.offset > 0) {
        let (sql, statement) = count_statement(plan);
        let body = fetch_text(client, &sql, statement).await?;
        let fields = tsv::parse(&body).map_err(StorageError::Backend)?;
        let first = fields
            .first()
            .and_then(|row| row.first())
            .cloned()
            .flatten();
        number(&first, "the row count").map_err(StorageError::Backend)?
    } else {
        plan.offset + returned
    };
    Ok(QueryRows { rows, total_rows })
}

const TIMELINE_CASTS: TimelineCasts = TimelineCasts {
    person: |column| format!("toUInt64({column})"),
    timestamp: |column| format!("toInt64({column})"),
    matches: |column| format!("toUInt64({column})"),
    label: |column| format!("CAST({column} AS Nullable(String))"),
    labels: |columns| format!("[{}]", columns.join(", ")),
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
    let sql = timeline_sql(&mut statement, request, &TIMELINE_CASTS);
    statement.into_query(client, &sql)
}

/// The final text of timeline statements of the shapes analyses send: with
/// labels and filters (funnels), and every event (strict funnels, paths).
pub(super) fn timeline_texts(client: &Client, project_id: &str, range: TimeRange) -> Vec<String> {
    let name = |name: &str| Filter::Condition {
        op: FilterOp::Is,
        dimension: Dimension::EventName,
        values: vec![name.to_owned()],
    };
    let funnel = TimelineRequest {
        project_id: project_id.to_owned(),
        range,
        filter: Some(Filter::Not(Box::new(Filter::Condition {
            op: FilterOp::Contains,
            dimension: Dimension::Page,
            values: vec!["/docs".to_owned()],
        }))),
        matchers: vec![name("signup"), name("purchase")],
        all_events: false,
        ordered_ties: true,
        labels: vec![Dimension::Property("plan".to_owned()), Dimension::EventName],
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

/// The events of a timeline request.
pub async fn timelines(
    client: &Client,
    request: &TimelineRequest,
) -> Result<Vec<TimelineEvent>, StorageError> {
    let failed = |e| storage_error("reading timelines", e);
    let query = timeline_query(client, request);
    if request.labels.is_empty() {
        let rows: Vec<(u64, i64, u64)> = query.fetch_all().await.map_err(failed)?;
        return Ok(rows
            .into_iter()
            .map(|(person, timestamp_us, matches)| TimelineEvent {
                person,
                timestamp_us,
                matches,
                labels: Vec::new(),
            })
            .collect());
    }
    let rows: Vec<LabelledRow> = query.fetch_all().await.map_err(failed)?;
    Ok(rows
        .into_iter()
        .map(|row| TimelineEvent {
            person: row.person,
            timestamp_us: row.timestamp_us,
            matches: row.matches,
            labels: row.labels,
        })
        .collect())
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
) -> Result<Option<TimeRange>, StorageError> {
    let (events, first, last): (u64, i64, i64) = time_bounds_query(client, project_id)
        .fetch_one()
        .await
        .map_err(|e| storage_error("reading time bounds", e))?;
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
) -> Result<Option<DateTime<chrono::Utc>>, StorageError> {
    let (events, newest): (u64, i64) = client
        .query(
            "SELECT count(), max(received_at_us) FROM events
             WHERE project_id = ? AND timestamp >= toDateTime(?) AND timestamp_us >= ?",
        )
        .bind(project_id)
        .bind(since.timestamp())
        .bind(since.timestamp_micros())
        .fetch_one()
        .await
        .map_err(|e| storage_error("reading the newest receipt time", e))?;
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
) -> Result<Vec<(String, u64)>, StorageError> {
    property_keys_query(client, project_id, range, event, limit)
        .fetch_all::<(String, u64)>()
        .await
        .map_err(|e| storage_error("listing property keys", e))
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
