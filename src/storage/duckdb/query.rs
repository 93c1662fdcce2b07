//! Executes query plans in DuckDB.
//!
//! The SQL text is built only from the plan's fixed vocabulary (column names,
//! functions, operators); every value from the request (project, times, keys,
//! filter values, patterns, limits) is a bound parameter.
//!
//! DuckDB here has no timezone database, so local time comes from the plan's
//! offset schedule: the range is cut where the UTC offset changes, and each
//! piece is a branch of a `UNION ALL` with its offset as a constant.

use std::str::FromStr;

use chrono::DateTime;
use duckdb::arrow::array::{Array, Int64Array, StringArray};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{TimeUnit, Value};
use duckdb::{params_from_iter, Connection, Row};
use tokio::sync::mpsc;

use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::event::EventType;
use crate::domain::query::time_buckets::estimated_buckets;
use crate::domain::query::{
    DimensionValue, EventDimension, EventMetric, EventQuery, Granularity, GroupDimension,
    MetricValue, QueryRow, QueryRows, Test, TimeRange, NUMERIC_TEXT_PATTERN,
};
use crate::storage::sql::{
    dimension_source, events_source, grouped_select, timeline_sql, DimensionSource, QuerySql,
    TieOrder, TimelineCasts,
};
use crate::storage::StorageError;

/// The positional parameters of the SQL text being built.
#[derive(Default)]
pub(super) struct Statement {
    pub(super) params: Vec<Value>,
    /// Whether the project has merged users, so that persons are read
    /// through `person_links`.
    pub(super) linked: bool,
}

impl Statement {
    /// Binds a value; returns the placeholder to write in its place.
    pub(super) fn bind(&mut self, value: impl Into<Value>) -> &'static str {
        self.params.push(value.into());
        "?"
    }

    pub(super) fn bind_time(&mut self, instant: DateTime<chrono::Utc>) -> String {
        // A typed timestamp, so that DuckDB can skip row groups by their time range.
        let value = Value::Timestamp(TimeUnit::Microsecond, instant.timestamp_micros());
        self.bind(value).to_owned()
    }

    /// Whether an event is named one of `values` or, having no name, is a
    /// call of one of them. With `every_value_as_type` false, only values
    /// that are call types are tested against the call type (no other value
    /// can match it), and without any the test is the name's `IN` alone.
    fn event_name_test(&mut self, values: &[String], every_value_as_type: bool) -> String {
        let names: Vec<&str> = values.iter().map(|v| self.bind(v.clone())).collect();
        let types: Vec<&str> = values
            .iter()
            .filter(|v| every_value_as_type || EventType::from_str(v).is_ok())
            .map(|v| self.bind(v.clone()))
            .collect();
        if types.is_empty() {
            format!("coalesce(event IN ({}), false)", names.join(", "))
        } else {
            format!(
                "coalesce(event IN ({}) OR (event IS NULL AND type IN ({})), false)",
                names.join(", "),
                types.join(", ")
            )
        }
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

fn metric_sql(index: usize, metric: &EventMetric, users: UserCount) -> String {
    match metric {
        EventMetric::Events => "count(*)".into(),
        EventMetric::Pageviews => format!("count(*) FILTER (WHERE n{index} = 1)"),
        EventMetric::Users => match users {
            UserCount::Distinct => "count(DISTINCT person)".into(),
            // Numbers come from storage, not from the request.
            UserCount::Bitmap { first, last } => format!(
                "coalesce(bit_count(bitstring_agg(person, {first}::UINTEGER, {last}::UINTEGER)), 0)"
            ),
        },
        EventMetric::Numeric(aggregate, _) => {
            // The aggregates' names are SQL's.
            let function = aggregate.as_str();
            format!("{function}(CASE WHEN isfinite(n{index}) THEN n{index} END)")
        }
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

    fn text_expression(&mut self, dimension: &EventDimension) -> String {
        match dimension_source(dimension) {
            DimensionSource::Column(column) => column.into(),
            DimensionSource::Name => "coalesce(event, type)".into(),
            DimensionSource::Property(key) => json_lookup(self, PROPERTIES_DOCUMENT, key),
            DimensionSource::Context(key) => json_lookup(self, "context", key),
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

    fn condition(&mut self, dimension: &EventDimension, test: &Test) -> String {
        let expression = self.text_expression(dimension);
        let any =
            |statement: &mut Statement, values: &[String], template: &dyn Fn(&str) -> String| {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| template(statement.bind(v.clone())))
                    .collect();
                format!("coalesce({}, false)", parts.join(" OR "))
            };
        match test {
            Test::IsSet => format!("({expression} IS NOT NULL)"),
            Test::Compare(comparison, number) => {
                let value = self.numeric(&expression);
                format!(
                    "coalesce({value} {} {}, false)",
                    comparison.symbol(),
                    self.bind(*number)
                )
            }
            Test::Equals(values) if *dimension == EventDimension::Name => {
                // `event` alone lets DuckDB skip row groups; the call type stands in
                // for the name of non-track calls, so only values that are call
                // types need the second test. As a filter, the plain `IN` on the
                // name measured twice as fast as one test of both (docs/benchmarks.md,
                // "Event-name tests"); analyses' matchers keep the one test.
                self.event_name_test(values, false)
            }
            Test::Equals(values) => {
                let placeholders: Vec<&str> = values.iter().map(|v| self.bind(v.clone())).collect();
                format!(
                    "coalesce({expression} IN ({}), false)",
                    placeholders.join(", ")
                )
            }
            Test::Contains(values) => {
                any(self, values, &|p| format!("contains({expression}, {p})"))
            }
            Test::Matches(patterns) => any(self, patterns, &|p| {
                format!("regexp_matches({expression}, {p})")
            }),
        }
    }

    fn matcher_condition(&mut self, dimension: &EventDimension, test: &Test) -> String {
        match test {
            // In a `CASE` over every event of a range, one test of the name or
            // the call type measured faster than the name's `IN` alone
            // (docs/benchmarks.md, "Event-name tests").
            Test::Equals(values) if *dimension == EventDimension::Name => {
                self.event_name_test(values, true)
            }
            _ => self.condition(dimension, test),
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

fn build(query: &EventQuery, users: UserCount, linked: bool) -> (String, Vec<Value>) {
    let mut statement = Statement {
        linked,
        ..Statement::default()
    };
    let source = events_source(&mut statement, query);

    let metrics = query
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} AS m{i}", metric_sql(i, m, users)));
    let outputs = metrics.chain(["count(*) OVER () AS total_rows".to_owned()]);
    let mut sql = grouped_select(query, &source, outputs);
    if !query.all_rows {
        let limit = statement.bind(i64::try_from(query.limit).unwrap_or(i64::MAX));
        let offset = statement.bind(i64::try_from(query.offset).unwrap_or(i64::MAX));
        sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    (sql, statement.params)
}

fn read_row(query: &EventQuery, row: &Row<'_>) -> duckdb::Result<(QueryRow, i64)> {
    let mut dimensions = Vec::with_capacity(query.dimensions.len());
    for (i, dimension) in query.dimensions.iter().enumerate() {
        dimensions.push(match dimension {
            GroupDimension::Time(granularity) => {
                DimensionValue::time_bucket(*granularity, row.get(i)?)
            }
            GroupDimension::Event(_) => DimensionValue::Text(row.get(i)?),
        });
    }
    let first_metric = query.dimensions.len();
    let mut metrics = Vec::with_capacity(query.metrics.len());
    for (i, metric) in query.metrics.iter().enumerate() {
        let index = first_metric + i;
        metrics.push(match metric {
            EventMetric::Numeric(..) => MetricValue::Number(row.get(index)?),
            EventMetric::Events | EventMetric::Users | EventMetric::Pageviews => {
                MetricValue::Count(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0))
            }
        });
    }
    let total: i64 = row.get(first_metric + query.metrics.len())?;
    Ok((
        QueryRow {
            dimensions,
            metrics,
        },
        total,
    ))
}

fn counts_users(query: &EventQuery) -> bool {
    query.metrics.contains(&EventMetric::Users)
}

/// Bitmaps when the groups are few (time buckets at most) and small enough.
fn user_count(conn: &Connection, query: &EventQuery) -> Result<UserCount, StorageError> {
    if !counts_users(query)
        || query
            .dimensions
            .iter()
            .any(|d| matches!(d, GroupDimension::Event(_)))
    {
        return Ok(UserCount::Distinct);
    }
    // Every number the project has handed out, in this snapshot.
    let last: Option<u32> = conn.query_row(
        "SELECT max(user_index) FROM users WHERE project_id = ?",
        [&query.project_id],
        |row| row.get(0),
    )?;
    let Some(last) = last else {
        return Ok(UserCount::Distinct);
    };
    let first = 1;
    let groups = query
        .time_granularity()
        .map_or(1, |granularity| estimated_buckets(query.range, granularity));
    let bytes = groups.saturating_mul(i64::from(last - first) / 8 + 1);
    Ok(if bytes <= BITMAP_BUDGET_BYTES {
        UserCount::Bitmap { first, last }
    } else {
        UserCount::Distinct
    })
}

/// Whether any of the project's users were merged into another's person.
pub(super) fn has_links(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM person_links WHERE project_id = ?)",
        [project_id],
        |row| row.get(0),
    )?)
}

/// Runs a query, in one snapshot: from the rollups when they answer it
/// (see [`super::rollups`]), else over events.
pub fn run(conn: &Connection, query: &EventQuery) -> Result<QueryRows, StorageError> {
    super::in_transaction(conn, || match super::rollups::answer(conn, query)? {
        Some(rows) => Ok(rows),
        None => run_in_snapshot(conn, query),
    })
}

fn run_in_snapshot(conn: &Connection, query: &EventQuery) -> Result<QueryRows, StorageError> {
    let users = user_count(conn, query)?;
    let (sql, params) = build(query, users, has_links(conn, &query.project_id)?);
    tracing::debug!(%sql, parameters = params.len(), ?users, "query");
    let mut prepared = conn.prepare(&sql)?;
    let mut rows = prepared.query(params_from_iter(params))?;
    let mut result = QueryRows::default();
    while let Some(row) = rows.next()? {
        let (row, total) = read_row(query, row)?;
        result.total_rows = u64::try_from(total).unwrap_or(0);
        result.rows.push(row);
    }
    Ok(result)
}

/// Timeline events per chunk handed to the analysis (DuckDB reads Arrow
/// batches of 2,048 rows; fewer, larger chunks cost the analysis fewer hops
/// off the async runtime).
const TIMELINE_CHUNK: usize = 16_384;

const TIMELINE_CASTS: TimelineCasts = TimelineCasts {
    person: |column| format!("CAST({column} AS BIGINT)"),
    timestamp: |column| column.to_owned(),
    matches: |column| format!("CAST({column} AS BIGINT)"),
    label: |column| format!("CAST({column} AS VARCHAR)"),
    labels: |columns| columns.join(", "),
    ties: TieOrder::ByReader,
};

/// Streams the events of a timeline request, in one snapshot, a batch at a
/// time into `sender`, until done or until its receiver is gone.
pub fn stream_timelines(
    conn: &Connection,
    request: &TimelineRequest,
    sender: &mpsc::Sender<Result<Vec<TimelineEvent>, StorageError>>,
) -> Result<(), StorageError> {
    super::in_transaction(conn, || {
        let mut statement = Statement {
            linked: has_links(conn, &request.project_id)?,
            ..Statement::default()
        };
        let sql = timeline_sql(&mut statement, request, &TIMELINE_CASTS, None);
        tracing::debug!(%sql, parameters = statement.params.len(), "timeline");
        let mut prepared = conn.prepare(&sql)?;
        // Columnar reads: millions of rows cost milliseconds, not seconds.
        let batches = prepared.stream_arrow(params_from_iter(statement.params))?;
        let mut timeline = TimelineAssembler::new(request);
        for batch in batches {
            timeline.append(&batch?)?;
            if let Some(full) = timeline.ready() {
                if sender.blocking_send(Ok(full)).is_err() {
                    // The reader is gone: nothing more is wanted.
                    return Ok(());
                }
            }
        }
        let rest = timeline.finish();
        if !rest.is_empty() {
            let _ = sender.blocking_send(Ok(rest));
        }
        Ok(())
    })
}

pub(super) fn column<T: 'static>(batch: &RecordBatch, index: usize) -> Result<&T, StorageError> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| StorageError::Internal(format!("result column {index} has another type")))
}

/// Timeline events from the Arrow batches of [`timeline_sql`], in chunks;
/// when the request orders ties, each run of a person's events at one
/// instant is put in `messageId` order here ([`TieOrder::ByReader`]).
struct TimelineAssembler {
    labels: usize,
    ordered_ties: bool,
    events: Vec<TimelineEvent>,
    /// Where the last run of events at one person and instant starts.
    run_start: usize,
    /// The `messageId`s of that run once it has two events or more.
    run_ids: Vec<String>,
    /// The `messageId` of the previous batch's last event.
    previous_id: String,
}

impl TimelineAssembler {
    fn new(request: &TimelineRequest) -> Self {
        TimelineAssembler {
            labels: request.labels.len(),
            ordered_ties: request.ordered_ties,
            events: Vec::with_capacity(TIMELINE_CHUNK),
            run_start: 0,
            run_ids: Vec::new(),
            previous_id: String::new(),
        }
    }

    /// Appends the events of one batch.
    fn append(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        let persons = column::<Int64Array>(batch, 0)?;
        let times = column::<Int64Array>(batch, 1)?;
        let matches = column::<Int64Array>(batch, 2)?;
        let ids = if self.ordered_ties {
            Some(column::<StringArray>(batch, 3)?)
        } else {
            None
        };
        let first_label = 3 + usize::from(self.ordered_ties);
        let label_columns = (0..self.labels)
            .map(|i| column::<StringArray>(batch, first_label + i))
            .collect::<Result<Vec<_>, _>>()?;
        self.events.reserve(batch.num_rows());
        for row in 0..batch.num_rows() {
            let event = TimelineEvent {
                person: persons.value(row) as u64,
                timestamp_us: times.value(row),
                matches: matches.value(row) as u64,
                labels: label_columns
                    .iter()
                    .map(|column| (!column.is_null(row)).then(|| column.value(row).to_owned()))
                    .collect(),
            };
            let tied = self.events.last().is_some_and(|last| {
                last.person == event.person && last.timestamp_us == event.timestamp_us
            });
            match ids {
                Some(ids) if tied => {
                    if self.run_ids.is_empty() {
                        let previous = if row == 0 {
                            std::mem::take(&mut self.previous_id)
                        } else {
                            ids.value(row - 1).to_owned()
                        };
                        self.run_ids.push(previous);
                    }
                    self.run_ids.push(ids.value(row).to_owned());
                }
                _ => {
                    self.close_run();
                    self.run_start = self.events.len();
                }
            }
            self.events.push(event);
        }
        if let Some(ids) = ids.filter(|ids| !ids.is_empty()) {
            self.previous_id = ids.value(ids.len() - 1).to_owned();
        }
        Ok(())
    }

    /// Puts the last run in `messageId` order.
    fn close_run(&mut self) {
        if self.run_ids.len() < 2 {
            self.run_ids.clear();
            return;
        }
        let run: Vec<TimelineEvent> = self.events.drain(self.run_start..).collect();
        let mut order: Vec<(String, TimelineEvent)> = std::mem::take(&mut self.run_ids)
            .into_iter()
            .zip(run)
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0));
        self.events
            .extend(order.into_iter().map(|(_, event)| event));
    }

    /// A chunk of finished events once there are enough of them.
    fn ready(&mut self) -> Option<Vec<TimelineEvent>> {
        if self.run_start < TIMELINE_CHUNK {
            return None;
        }
        let rest = self.events.split_off(self.run_start);
        self.run_start = 0;
        Some(std::mem::replace(&mut self.events, rest))
    }

    /// The events left.
    fn finish(mut self) -> Vec<TimelineEvent> {
        self.close_run();
        self.events
    }
}

/// The whole timeline of a request, restricted to the events that meet
/// `restriction` (SQL over the event row, `PERSON` standing for its person),
/// in the caller's snapshot.
pub(super) fn collect_timeline(
    conn: &Connection,
    request: &TimelineRequest,
    restriction: &str,
) -> Result<Vec<TimelineEvent>, StorageError> {
    let mut events = Vec::new();
    for_each_timeline_chunk(conn, request, restriction, |chunk| {
        events.extend(chunk);
        Ok(())
    })?;
    Ok(events)
}

/// [`collect_timeline`] a chunk at a time: `each` sees the events in order,
/// a person's run at one instant never split between two chunks.
pub(super) fn for_each_timeline_chunk(
    conn: &Connection,
    request: &TimelineRequest,
    restriction: &str,
    mut each: impl FnMut(Vec<TimelineEvent>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut statement = Statement {
        linked: has_links(conn, &request.project_id)?,
        ..Statement::default()
    };
    let restriction = restriction.replace("PERSON", &statement.person());
    let sql = timeline_sql(&mut statement, request, &TIMELINE_CASTS, Some(&restriction));
    tracing::debug!(%sql, parameters = statement.params.len(), "restricted timeline");
    let mut prepared = conn.prepare(&sql)?;
    let mut timeline = TimelineAssembler::new(request);
    for batch in prepared.stream_arrow(params_from_iter(statement.params))? {
        timeline.append(&batch?)?;
        if let Some(full) = timeline.ready() {
            each(full)?;
        }
    }
    let rest = timeline.finish();
    if !rest.is_empty() {
        each(rest)?;
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

    fn timeline_batch(rows: &[(i64, i64, i64, &str)]) -> RecordBatch {
        use duckdb::arrow::array::ArrayRef;
        use std::sync::Arc;
        let int = |f: fn(&(i64, i64, i64, &str)) -> i64| {
            Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
        RecordBatch::try_from_iter([
            ("person", int(|r| r.0)),
            ("timestamp_us", int(|r| r.1)),
            ("matches", int(|r| r.2)),
            (
                "message_id",
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn events_at_one_instant_come_in_message_id_order_across_batches() {
        let request = TimelineRequest {
            project_id: "p".into(),
            range: TimeRange {
                from: DateTime::UNIX_EPOCH,
                to: DateTime::UNIX_EPOCH,
            },
            filter: None,
            matchers: Vec::new(),
            all_events: true,
            ordered_ties: true,
            labels: Vec::new(),
        };
        let mut timeline = TimelineAssembler::new(&request);
        // `matches` numbers the events in the order expected.
        timeline
            .append(&timeline_batch(&[(1, 10, 0, "b"), (1, 20, 3, "z")]))
            .unwrap();
        timeline
            .append(&timeline_batch(&[
                (1, 20, 1, "a"),
                (1, 20, 2, "m"),
                (2, 20, 4, "a"),
                (2, 30, 6, "q"),
                (2, 30, 5, "c"),
            ]))
            .unwrap();
        let order: Vec<u64> = timeline.finish().iter().map(|e| e.matches).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(pointer(&["plan"]), "/plan");
        assert_eq!(pointer(&["a/b", "c~d"]), "/a~1b/c~0d");
    }
}
