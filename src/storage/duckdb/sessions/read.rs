//! The read side of kept sessions: a session query answered from the
//! sessions kept whole within its range, with the events of the others.

use std::collections::HashSet;

use duckdb::{params_from_iter, Connection};

use super::{
    cell_groups, cells, loaded, pending_windows, ready_timeout, widened, windows_table, within,
    Window,
};
use crate::domain::analysis::sessions::{StoredGroup, StoredSessions};
use crate::domain::analysis::PersonFold;
use crate::domain::query::{
    Dimension, DimensionValue, EventDimension, EventQuery, GroupDimension, SessionDimension,
    SessionMetric, SessionQuery, TimeRange,
};
use crate::storage::duckdb::query::{collect_timeline, Statement};
use crate::storage::sql::QuerySql;
use crate::storage::StorageError;

/// Most sessions read from events beside the kept ones; past it the whole
/// query is folded from events (after a large import, before a refresh).
const MAX_WINDOWS: usize = 20_000;
/// Windows closer than this in time are read in one statement.
const CLUSTER_GAP_US: i64 = 3_600_000_000;

/// The column of `sessions` that holds a dimension's value, when kept.
fn kept_column(dimension: &Dimension) -> Option<&'static str> {
    Some(match dimension {
        Dimension::Time(_) => return None,
        Dimension::Session(SessionDimension::EntryPage) => "entry_page",
        Dimension::Session(SessionDimension::ExitPage) => "exit_page",
        Dimension::Session(SessionDimension::Acquisition(attribute))
        | Dimension::Event(EventDimension::Acquisition(attribute)) => attribute.as_str(),
        Dimension::Event(EventDimension::Visit(attribute)) => attribute.as_str(),
        Dimension::Event(_) => return None,
    })
}

/// Whether kept sessions hold everything the query reads.
fn answerable(query: &SessionQuery) -> bool {
    query.filter.is_none()
        && query.visit_filter.is_none()
        && query
            .dimensions
            .iter()
            .all(|d| matches!(d, Dimension::Time(_)) || kept_column(d).is_some())
}

/// The query's sessions from the kept ones, in one snapshot; `None` when
/// they cannot answer it (not built with the query's timeout, dimensions or
/// filters they do not hold, too many sessions touched since the last
/// refresh), for the caller to fold the query from events.
pub fn stored_sessions(
    conn: &Connection,
    query: &SessionQuery,
) -> Result<Option<StoredSessions>, StorageError> {
    if !answerable(query) {
        return Ok(None);
    }
    let timeout_us = query.timeout.num_microseconds().unwrap_or(i64::MAX);
    crate::storage::duckdb::in_transaction(conn, || {
        if ready_timeout(conn, &query.project_id)? != Some(timeout_us) {
            return Ok(None);
        }
        let (windows, pending) = windows(conn, query, timeout_us)?;
        if windows.len() > MAX_WINDOWS {
            return Ok(None);
        }
        let groups = match query.cell_kind() {
            Some(kind) if cells::ready(conn, &query.project_id)? => {
                cell_groups::groups(conn, query, kind, &windows, &pending)?
            }
            _ => kept_groups(conn, query, &windows, &pending)?,
        };
        let events = window_events(conn, query, &windows)?;
        Ok(Some(StoredSessions { groups, events }))
    })
}

fn micros(range: TimeRange) -> (i64, i64) {
    (range.from.timestamp_micros(), range.to.timestamp_micros())
}

/// The sessions to read from events: those pending writes touched, and
/// those that cross an end of the range; merged per person, cut to the
/// range. Also the persons with pending writes.
fn windows(
    conn: &Connection,
    query: &SessionQuery,
    timeout_us: i64,
) -> Result<(Vec<Window>, HashSet<u32>), StorageError> {
    let (from_us, to_us) = micros(query.range);
    let pending = pending_windows(conn, &query.project_id)?;
    let pending_persons: HashSet<u32> = pending.iter().map(|w| w.person).collect();
    let mut windows = widened(conn, &query.project_id, timeout_us, &pending)?;
    // One branch per end, so that each reads only the row groups about it.
    let mut statement = conn.prepare(
        "SELECT person, start_us, end_us FROM sessions
         WHERE project_id = ? AND start_us < ? AND end_us >= ?
         UNION ALL
         SELECT person, start_us, end_us FROM sessions
         WHERE project_id = ? AND start_us >= ? AND start_us < ? AND end_us >= ?",
    )?;
    let crossing = statement.query_map(
        duckdb::params![
            query.project_id,
            from_us,
            from_us,
            query.project_id,
            from_us,
            to_us,
            to_us
        ],
        Window::from_row,
    )?;
    for window in crossing {
        windows.push(window?);
    }
    windows.sort_by_key(|w| (w.person, w.lo_us));
    let mut merged: Vec<Window> = Vec::with_capacity(windows.len());
    for window in windows {
        let window = Window {
            lo_us: window.lo_us.max(from_us),
            hi_us: window.hi_us.min(to_us - 1),
            ..window
        };
        if window.lo_us > window.hi_us {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.person == window.person && window.lo_us <= last.hi_us => {
                last.hi_us = last.hi_us.max(window.hi_us);
            }
            _ => merged.push(window),
        }
    }
    Ok((merged, pending_persons))
}

/// The totals of the kept sessions whole within the range and outside every
/// window, by the query's dimensions. A window that is not pending is one
/// session crossing an end of the range, which the range already leaves
/// out; the kept sessions of persons with pending writes are tested against
/// their windows.
fn kept_groups(
    conn: &Connection,
    query: &SessionQuery,
    windows: &[Window],
    pending: &HashSet<u32>,
) -> Result<Vec<StoredGroup>, StorageError> {
    let (_, to_us) = micros(query.range);
    let mut statement = Statement::default();
    let pieces = offset_pieces(query);
    // Each person once: the left join must not repeat a session.
    let persons_table = |persons: &mut dyn Iterator<Item = u32>| {
        let distinct: std::collections::BTreeSet<u32> = persons.collect();
        let list: Vec<String> = distinct.iter().map(u32::to_string).collect();
        format!(
            "(SELECT unnest([{}]::UINTEGER[]) AS person)",
            list.join(", ")
        )
    };
    let folded = if windows.is_empty() {
        ("false".to_owned(), String::new())
    } else {
        (
            "folded.person IS NOT NULL".to_owned(),
            format!(
                " LEFT JOIN {} AS folded ON folded.person = sessions.person",
                persons_table(&mut windows.iter().map(|w| w.person))
            ),
        )
    };
    let stale: Vec<Window> = windows
        .iter()
        .filter(|w| pending.contains(&w.person))
        .copied()
        .collect();
    let mut kinds = vec![(folded.0.clone(), folded.1.clone(), String::new())];
    if !stale.is_empty() {
        let stale_persons = persons_table(&mut stale.iter().map(|w| w.person));
        kinds[0].1.push_str(&format!(
            " ANTI JOIN {stale_persons} AS stale ON stale.person = sessions.person"
        ));
        kinds.push((
            "true".to_owned(),
            format!(" SEMI JOIN {stale_persons} AS stale ON stale.person = sessions.person"),
            format!(
                " AND NOT EXISTS (SELECT 1 FROM {} WHERE w.person = sessions.person AND sessions.end_us >= w.lo AND sessions.start_us <= w.hi)",
                windows_table(&stale)
            ),
        ));
    }
    let mut branches = Vec::with_capacity(pieces.len() * kinds.len());
    for (piece, offset_us) in pieces {
        for (is_folded, join, outside) in &kinds {
            let mut columns = Vec::with_capacity(query.dimensions.len() + 5);
            for (i, dimension) in query.dimensions.iter().enumerate() {
                let expression = match (dimension, kept_column(dimension)) {
                    (Dimension::Time(granularity), _) => {
                        statement.bucket_expression(*granularity, offset_us)
                    }
                    (_, Some(column)) => column.to_owned(),
                    (_, None) => "NULL".to_owned(),
                };
                columns.push(format!("{expression} AS d{i}"));
            }
            columns.push(format!(
                "sessions.person, events, page_views, start_us, end_us, {is_folded} AS folded"
            ));
            let project = statement.bind(query.project_id.clone());
            let from = statement.bind_time(piece.from);
            let to = statement.bind_time(piece.to);
            let end = statement.bind(to_us);
            branches.push(format!(
                "SELECT {} FROM sessions{join} WHERE project_id = {project} AND timestamp >= {from} AND timestamp < {to} AND end_us < {end}{outside}",
                columns.join(", ")
            ));
        }
    }
    let dimensions: Vec<String> = (0..query.dimensions.len())
        .map(|i| format!("d{i}"))
        .collect();
    let group_by = if dimensions.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", dimensions.join(", "))
    };
    let leading = if dimensions.is_empty() {
        String::new()
    } else {
        format!("{}, ", dimensions.join(", "))
    };
    let union = branches.join(" UNION ALL ");
    let sql = if query.metrics.contains(&SessionMetric::Users) {
        // Distinct persons by grouping twice (by dimensions and person, then
        // by dimensions): DuckDB's `count(DISTINCT)` is many times slower.
        let inner_by: Vec<String> = dimensions
            .iter()
            .cloned()
            .chain(["person".to_owned()])
            .collect();
        format!(
            "SELECT {leading}sum(sessions)::BIGINT, sum(events)::BIGINT, sum(page_views)::BIGINT,
                    sum(bounces)::BIGINT, sum(duration_us)::BIGINT, count(*),
                    list(person) FILTER (WHERE folded)
             FROM (SELECT {inner}, count(*) AS sessions, sum(events) AS events,
                          sum(page_views) AS page_views,
                          count(*) FILTER (WHERE page_views = 1 AND events = 1) AS bounces,
                          sum(end_us - start_us) AS duration_us, bool_or(folded) AS folded
                   FROM ({union}) AS kept GROUP BY {inner}) AS by_person{group_by}",
            inner = inner_by.join(", ")
        )
    } else {
        format!(
            "SELECT {leading}count(*), sum(events)::BIGINT, sum(page_views)::BIGINT,
                    count(*) FILTER (WHERE page_views = 1 AND events = 1),
                    sum(end_us - start_us)::BIGINT, 0::BIGINT, NULL::UINTEGER[]
             FROM ({union}) AS kept{group_by}"
        )
    };
    tracing::debug!(%sql, "kept sessions");
    let mut prepared = conn.prepare(&sql)?;
    let mut rows = prepared.query(params_from_iter(statement.params))?;
    let mut groups = Vec::new();
    let n = query.dimensions.len();
    let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
    while let Some(row) = rows.next()? {
        let sessions = count(row.get(n)?);
        if sessions == 0 {
            continue;
        }
        let mut values = Vec::with_capacity(n);
        for (i, dimension) in query.dimensions.iter().enumerate() {
            values.push(match dimension {
                Dimension::Time(granularity) => {
                    DimensionValue::time_bucket(*granularity, row.get(i)?)
                }
                _ => DimensionValue::Text(row.get(i)?),
            });
        }
        let folded_persons = match row.get_ref(n + 6)? {
            duckdb::types::ValueRef::Null => Vec::new(),
            _ => match row.get::<_, duckdb::types::Value>(n + 6)? {
                duckdb::types::Value::List(items) => items
                    .into_iter()
                    .filter_map(|item| match item {
                        duckdb::types::Value::UInt(person) => Some(u64::from(person)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
        };
        groups.push(StoredGroup {
            values,
            sessions,
            events: count(row.get(n + 1)?),
            page_views: count(row.get(n + 2)?),
            bounces: count(row.get(n + 3)?),
            duration_us: row.get::<_, Option<i64>>(n + 4)?.unwrap_or(0),
            persons: count(row.get(n + 5)?),
            folded_persons,
        });
    }
    Ok(groups)
}

/// The range cut where the query's UTC offset changes (one piece when it
/// has no time dimension).
fn offset_pieces(query: &SessionQuery) -> Vec<(TimeRange, i64)> {
    let time = query.dimensions.iter().find_map(|d| match d {
        Dimension::Time(granularity) => Some(GroupDimension::Time(*granularity)),
        _ => None,
    });
    EventQuery {
        project_id: query.project_id.clone(),
        metrics: Vec::new(),
        dimensions: time.into_iter().collect(),
        filter: None,
        range: query.range,
        offsets: query.offsets.clone(),
        order_by: Vec::new(),
        limit: 0,
        offset: 0,
        all_rows: true,
    }
    .offset_pieces()
}

/// The query's timeline within the windows, person by person: one read per
/// cluster of windows close in time.
fn window_events(
    conn: &Connection,
    query: &SessionQuery,
    windows: &[Window],
) -> Result<Vec<crate::domain::analysis::TimelineEvent>, StorageError> {
    let mut by_time = windows.to_vec();
    by_time.sort_by_key(|w| w.lo_us);
    let mut clusters: Vec<Vec<Window>> = Vec::new();
    let mut cluster_end = i64::MIN;
    for window in by_time {
        match clusters.last_mut() {
            Some(cluster) if window.lo_us <= cluster_end.saturating_add(CLUSTER_GAP_US) => {
                cluster.push(window);
            }
            _ => clusters.push(vec![window]),
        }
        cluster_end = cluster_end.max(window.hi_us);
    }
    let mut events = Vec::new();
    for cluster in clusters {
        let lo_us = cluster.iter().map(|w| w.lo_us).min().unwrap_or(0);
        let hi_us = cluster.iter().map(|w| w.hi_us).max().unwrap_or(0);
        let mut request = query.timeline();
        request.range = TimeRange {
            from: chrono::DateTime::from_timestamp_micros(lo_us).unwrap_or_default(),
            to: chrono::DateTime::from_timestamp_micros(hi_us + 1).unwrap_or_default(),
        };
        let restriction = within(loaded(conn, &cluster)?);
        events.extend(collect_timeline(conn, &request, &restriction)?);
    }
    // Clusters follow one another in time: a stable sort by person keeps
    // each person's events in timeline order.
    events.sort_by_key(|event| event.person);
    Ok(events)
}
