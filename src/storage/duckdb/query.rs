//! Executes query plans in DuckDB.
//!
//! The SQL text is built only from the plan's fixed vocabulary (column names,
//! functions, operators); every value from the request (project, times, keys,
//! filter values, patterns, limits) is a bound parameter.
//!
//! DuckDB here has no timezone database, so local time comes from the plan's
//! offset schedule: the range is cut where the UTC offset changes, and each
//! piece is a branch of a `UNION ALL` with its offset as a constant.

use chrono::DateTime;
use duckdb::arrow::array::{Array, Int64Array, StringArray};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{TimeUnit, Value};
use duckdb::{params_from_iter, Connection, Row};

use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::time_buckets::estimated_buckets;
use crate::domain::query::{
    Dimension, DimensionValue, FilterOp, Granularity, Metric, MetricValue, QueryPlan, QueryRow,
    QueryRows, TimeRange, NUMERIC_TEXT_PATTERN,
};
use crate::storage::sql::{
    comparison, events_source, grouped_select, stored_column, timeline_sql, QuerySql, TimelineCasts,
};
use crate::storage::StorageError;

/// The positional parameters of the SQL text being built.
#[derive(Default)]
struct Statement {
    params: Vec<Value>,
    /// Whether the project has merged users, so that persons are read
    /// through `person_links`.
    linked: bool,
}

impl Statement {
    /// Binds a value; returns the placeholder to write in its place.
    fn bind(&mut self, value: impl Into<Value>) -> &'static str {
        self.params.push(value.into());
        "?"
    }

    fn bind_time(&mut self, instant: DateTime<chrono::Utc>) -> String {
        // A typed timestamp, so that DuckDB can skip row groups by their time range.
        let value = Value::Timestamp(TimeUnit::Microsecond, instant.timestamp_micros());
        self.bind(value).to_owned()
    }
}

/// RFC 6901 pointer to a key: `/a~1b` for `a/b`.
fn pointer(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The text value of `key` in the JSON column: the literal key first, then, for
/// dotted keys, the nested path (`a.b` is `b` inside `a`).
fn json_lookup(statement: &mut Statement, column: &str, key: &str) -> String {
    let literal = format!(
        "json_extract_string({column}, {})",
        statement.bind(pointer(&[key]))
    );
    if !key.contains('.') {
        return literal;
    }
    let nested = pointer(&key.split('.').collect::<Vec<_>>());
    format!(
        "coalesce({literal}, json_extract_string({column}, {}))",
        statement.bind(nested)
    )
}

/// Where an event's properties are: its traits for identify and group calls.
const PROPERTIES_DOCUMENT: &str =
    "(CASE WHEN type IN ('identify', 'group') THEN traits ELSE properties END)";

/// How distinct users are counted.
#[derive(Debug, Clone, Copy)]
enum UserCount {
    /// A hash set of user numbers per group.
    Distinct,
    /// A bitmap over the user numbers `first..=last` per group (few groups).
    Bitmap { first: u32, last: u32 },
}

/// Largest total size of the per-group user bitmaps of one query.
const BITMAP_BUDGET_BYTES: i64 = 64 << 20;

fn metric_sql(index: usize, metric: &Metric, users: UserCount) -> String {
    match metric {
        Metric::Events => "count(*)".into(),
        Metric::Users | Metric::Percentage => match users {
            UserCount::Distinct => "count(DISTINCT person)".into(),
            // Numbers come from storage, not from the request.
            UserCount::Bitmap { first, last } => format!(
                "coalesce(bit_count(bitstring_agg(person, {first}::UINTEGER, {last}::UINTEGER)), 0)"
            ),
        },
        Metric::Numeric(aggregate, _) => {
            // The aggregates' names are SQL's.
            let function = aggregate.as_str();
            format!("{function}(CASE WHEN isfinite(n{index}) THEN n{index} END)")
        }
        _ => unreachable!(
            "session metrics are computed from timelines (see QueryPlan::is_session_query)"
        ),
    }
}

impl QuerySql for Statement {
    const TIMESTAMP_US: &'static str = "epoch_us(timestamp)";

    fn person(&mut self) -> String {
        if self.linked {
            "coalesce(links.person_index, events.user_index)".into()
        } else {
            "events.user_index".into()
        }
    }

    fn text_expression(&mut self, dimension: &Dimension) -> String {
        if let Some(column) = stored_column(dimension) {
            return column.into();
        }
        match dimension {
            Dimension::EventName => "coalesce(event, type)".into(),
            Dimension::Property(key) => json_lookup(self, PROPERTIES_DOCUMENT, key),
            Dimension::Context(key) => json_lookup(self, "context", key),
            _ => unreachable!(
                "time is bucketed and session dimensions come from timelines, not read; \
                 other dimensions are stored columns"
            ),
        }
    }

    /// The bucket of each event, as microseconds since the epoch: its local start
    /// for calendar buckets, its UTC start for minutes and hours. `offset_us`
    /// (local time minus UTC, bound as a parameter) is constant within a branch of
    /// the query; months use the calendar.
    fn bucket_expression(&mut self, granularity: Granularity, offset_us: i64) -> String {
        let Some(bucket) = granularity.fixed_length() else {
            return format!(
                "epoch_us(date_trunc('month', timestamp + to_microseconds({}::BIGINT)))",
                self.bind(offset_us)
            );
        };
        let (unit, shift) = (bucket.unit_us, bucket.shift_us);
        let offset = self.bind(offset_us);
        let local = format!(
            "(((epoch_us(timestamp) + {offset}::BIGINT + {shift}) // {unit}) * {unit} - {shift})"
        );
        if bucket.starts_in_utc {
            format!("({local} - {}::BIGINT)", self.bind(offset_us))
        } else {
            local
        }
    }

    /// The number in a property's text, when it is one (see [`NUMERIC_TEXT_PATTERN`]).
    fn numeric(&mut self, text: &str) -> String {
        format!(
            "TRY_CAST(regexp_extract({text}, {}) AS DOUBLE)",
            self.bind(NUMERIC_TEXT_PATTERN.to_owned())
        )
    }

    fn condition(&mut self, op: FilterOp, dimension: &Dimension, values: &[String]) -> String {
        let expression = self.text_expression(dimension);
        let any = |statement: &mut Statement, template: &dyn Fn(&str) -> String| {
            let parts: Vec<String> = values
                .iter()
                .map(|v| template(statement.bind(v.clone())))
                .collect();
            format!("coalesce({}, false)", parts.join(" OR "))
        };
        match op {
            FilterOp::IsSet => format!("({expression} IS NOT NULL)"),
            FilterOp::IsNotSet => format!("({expression} IS NULL)"),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                let symbol = comparison(op).expect("a comparison");
                let number: f64 = values[0].parse().expect("validated number");
                let value = self.numeric(&expression);
                format!("coalesce({value} {symbol} {}, false)", self.bind(number))
            }
            FilterOp::Is | FilterOp::IsNot if *dimension == Dimension::EventName => {
                // `event` alone lets DuckDB skip row groups; the call type stands in
                // for the name of non-track calls.
                let names: Vec<&str> = values.iter().map(|v| self.bind(v.clone())).collect();
                let types: Vec<&str> = values.iter().map(|v| self.bind(v.clone())).collect();
                format!(
                    "coalesce(event IN ({}) OR (event IS NULL AND type IN ({})), false)",
                    names.join(", "),
                    types.join(", ")
                )
            }
            FilterOp::Is | FilterOp::IsNot => {
                let placeholders: Vec<&str> = values.iter().map(|v| self.bind(v.clone())).collect();
                format!(
                    "coalesce({expression} IN ({}), false)",
                    placeholders.join(", ")
                )
            }
            FilterOp::Contains | FilterOp::ContainsNot => {
                any(self, &|p| format!("contains({expression}, {p})"))
            }
            FilterOp::Matches | FilterOp::MatchesNot => {
                any(self, &|p| format!("regexp_matches({expression}, {p})"))
            }
        }
    }

    fn project_events(&mut self, columns: &str, project_id: &str, range: TimeRange) -> String {
        let links = if self.linked {
            format!(
                " LEFT JOIN (SELECT user_index AS linked_user, person_index FROM person_links \
                 WHERE project_id = {}) AS links ON links.linked_user = events.user_index",
                self.bind(project_id.to_owned())
            )
        } else {
            String::new()
        };
        let project = self.bind(project_id.to_owned());
        let from = self.bind_time(range.from);
        let to = self.bind_time(range.to);
        format!(
            "SELECT {columns} FROM events{links} WHERE events.project_id = {project} AND timestamp >= {from} AND timestamp < {to}"
        )
    }
}

fn build(plan: &QueryPlan, users: UserCount, linked: bool) -> (String, Vec<Value>) {
    let mut statement = Statement {
        linked,
        ..Statement::default()
    };
    let source = events_source(&mut statement, plan);

    let metrics = plan
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} AS m{i}", metric_sql(i, m, users)));
    let outputs = metrics.chain(["count(*) OVER () AS total_rows".to_owned()]);
    let mut sql = grouped_select(plan, &source, outputs);
    if !plan.fills_time_buckets() {
        let limit = statement.bind(i64::try_from(plan.limit).unwrap_or(i64::MAX));
        let offset = statement.bind(i64::try_from(plan.offset).unwrap_or(i64::MAX));
        sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    (sql, statement.params)
}

fn read_row(plan: &QueryPlan, row: &Row<'_>) -> duckdb::Result<(QueryRow, i64)> {
    let mut dimensions = Vec::with_capacity(plan.dimensions.len());
    for (i, dimension) in plan.dimensions.iter().enumerate() {
        dimensions.push(match dimension {
            Dimension::Time(granularity) => DimensionValue::time_bucket(*granularity, row.get(i)?),
            _ => DimensionValue::Text(row.get(i)?),
        });
    }
    let first_metric = plan.dimensions.len();
    let mut metrics = Vec::with_capacity(plan.metrics.len());
    for (i, metric) in plan.metrics.iter().enumerate() {
        let index = first_metric + i;
        metrics.push(match metric {
            Metric::Numeric(..) => MetricValue::Number(row.get(index)?),
            _ => MetricValue::Count(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0)),
        });
    }
    let total: i64 = row.get(first_metric + plan.metrics.len())?;
    Ok((
        QueryRow {
            dimensions,
            metrics,
        },
        total,
    ))
}

fn counts_users(plan: &QueryPlan) -> bool {
    plan.metrics
        .iter()
        .any(|m| matches!(m, Metric::Users | Metric::Percentage))
}

/// Bitmaps when the groups are few (time buckets at most) and small enough.
fn user_count(conn: &Connection, plan: &QueryPlan) -> Result<UserCount, StorageError> {
    if !counts_users(plan)
        || plan
            .dimensions
            .iter()
            .any(|d| !matches!(d, Dimension::Time(_)))
    {
        return Ok(UserCount::Distinct);
    }
    // Every number the project has handed out, in this snapshot.
    let last: Option<u32> = conn.query_row(
        "SELECT max(user_index) FROM users WHERE project_id = ?",
        [&plan.project_id],
        |row| row.get(0),
    )?;
    let Some(last) = last else {
        return Ok(UserCount::Distinct);
    };
    let first = 1;
    let groups = plan
        .time_granularity()
        .map_or(1, |granularity| estimated_buckets(plan.range, granularity));
    let bytes = groups * (i64::from(last - first) / 8 + 1);
    Ok(if bytes <= BITMAP_BUDGET_BYTES {
        UserCount::Bitmap { first, last }
    } else {
        UserCount::Distinct
    })
}

/// Whether any of the project's users were merged into another's person.
fn has_links(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM person_links WHERE project_id = ?)",
        [project_id],
        |row| row.get(0),
    )?)
}

/// Runs a plan, in one snapshot.
pub fn run(conn: &Connection, plan: &QueryPlan) -> Result<QueryRows, StorageError> {
    super::in_transaction(conn, || run_in_snapshot(conn, plan))
}

fn run_in_snapshot(conn: &Connection, plan: &QueryPlan) -> Result<QueryRows, StorageError> {
    let users = user_count(conn, plan)?;
    let (sql, params) = build(plan, users, has_links(conn, &plan.project_id)?);
    tracing::debug!(%sql, parameters = params.len(), ?users, "query");
    let mut prepared = conn.prepare(&sql)?;
    let mut rows = prepared.query(params_from_iter(params))?;
    let mut result = QueryRows::default();
    while let Some(row) = rows.next()? {
        let (row, total) = read_row(plan, row)?;
        result.total_rows = u64::try_from(total).unwrap_or(0);
        result.rows.push(row);
    }
    Ok(result)
}

const TIMELINE_CASTS: TimelineCasts = TimelineCasts {
    person: |column| format!("CAST({column} AS BIGINT)"),
    timestamp: |column| column.to_owned(),
    matches: |column| format!("CAST({column} AS BIGINT)"),
    label: |column| format!("CAST({column} AS VARCHAR)"),
    labels: |columns| columns.join(", "),
};

/// The events of a timeline request, in one snapshot.
pub fn timelines(
    conn: &Connection,
    request: &TimelineRequest,
) -> Result<Vec<TimelineEvent>, StorageError> {
    super::in_transaction(conn, || {
        let mut statement = Statement {
            linked: has_links(conn, &request.project_id)?,
            ..Statement::default()
        };
        let sql = timeline_sql(&mut statement, request, &TIMELINE_CASTS);
        tracing::debug!(%sql, parameters = statement.params.len(), "timeline");
        let mut prepared = conn.prepare(&sql)?;
        // Columnar reads: millions of rows cost milliseconds, not seconds.
        let batches = prepared.stream_arrow(params_from_iter(statement.params))?;
        let mut events = Vec::new();
        for batch in batches {
            append_timeline_batch(&batch?, request.labels.len(), &mut events)?;
        }
        Ok(events)
    })
}

fn column<T: 'static>(batch: &RecordBatch, index: usize) -> Result<&T, StorageError> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| StorageError::Backend(format!("timeline column {index} has another type")))
}

/// Appends the events of one Arrow batch of a timeline result.
fn append_timeline_batch(
    batch: &RecordBatch,
    labels: usize,
    events: &mut Vec<TimelineEvent>,
) -> Result<(), StorageError> {
    let persons = column::<Int64Array>(batch, 0)?;
    let times = column::<Int64Array>(batch, 1)?;
    let matches = column::<Int64Array>(batch, 2)?;
    let label_columns = (0..labels)
        .map(|i| column::<StringArray>(batch, 3 + i))
        .collect::<Result<Vec<_>, _>>()?;
    events.reserve(batch.num_rows());
    for row in 0..batch.num_rows() {
        events.push(TimelineEvent {
            person: persons.value(row) as u64,
            timestamp_us: times.value(row),
            matches: matches.value(row) as u64,
            labels: label_columns
                .iter()
                .map(|column| (!column.is_null(row)).then(|| column.value(row).to_owned()))
                .collect(),
        });
    }
    Ok(())
}

/// First and last event time of a project.
pub fn time_bounds(conn: &Connection, project_id: &str) -> Result<Option<TimeRange>, StorageError> {
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT epoch_us(min(timestamp)), epoch_us(max(timestamp)) FROM events WHERE project_id = ?",
        [project_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(match (first, last) {
        (Some(first), Some(last)) => Some(TimeRange {
            from: DateTime::from_timestamp_micros(first).unwrap_or_default(),
            to: DateTime::from_timestamp_micros(last).unwrap_or_default(),
        }),
        _ => None,
    })
}

/// The newest `received_at` of a project's events timestamped at or after `since`.
pub fn newest_received_at(
    conn: &Connection,
    project_id: &str,
    since: DateTime<chrono::Utc>,
) -> Result<Option<DateTime<chrono::Utc>>, StorageError> {
    let since = Value::Timestamp(TimeUnit::Microsecond, since.timestamp_micros());
    let newest: Option<i64> = conn.query_row(
        "SELECT epoch_us(max(received_at)) FROM events WHERE project_id = ? AND timestamp >= ?",
        duckdb::params![project_id, since],
        |row| row.get(0),
    )?;
    Ok(newest.and_then(DateTime::from_timestamp_micros))
}

/// Property (and trait) keys of a project's events in a range, most used first.
pub fn property_keys(
    conn: &Connection,
    project_id: &str,
    range: TimeRange,
    event: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, u64)>, StorageError> {
    let mut statement = Statement::default();
    let project = statement.bind(project_id.to_owned());
    let from = statement.bind_time(range.from);
    let to = statement.bind_time(range.to);
    let mut sql = format!(
        "SELECT key, count(*) AS events FROM (
             SELECT unnest(json_keys(coalesce(properties, traits))) AS key FROM events
             WHERE project_id = {project} AND timestamp >= {from} AND timestamp < {to}
               AND coalesce(properties, traits) IS NOT NULL"
    );
    if let Some(event) = event {
        sql.push_str(&format!(
            " AND coalesce(event, type) = {}",
            statement.bind(event.to_owned())
        ));
    }
    let limit = statement.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    sql.push_str(&format!(
        ") GROUP BY key ORDER BY events DESC, key LIMIT {limit}"
    ));
    let mut prepared = conn.prepare(&sql)?;
    let rows = prepared.query_map(params_from_iter(statement.params), |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    rows.map(|row| {
        row.map(|(key, count)| (key, u64::try_from(count).unwrap_or(0)))
            .map_err(StorageError::from)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(pointer(&["plan"]), "/plan");
        assert_eq!(pointer(&["a/b", "c~d"]), "/a~1b/c~0d");
    }
}
