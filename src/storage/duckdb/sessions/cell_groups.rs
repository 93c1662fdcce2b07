//! A fitting session query answered from session cells: the cells of its
//! range, less the kept sessions that it reads from events instead.
//!
//! Those are the sessions that start in the range and cross its end, and
//! those of persons with pending writes that overlap their windows: all of
//! them are found near a time the query names (the range's end, a window),
//! so with sessions in time order no read here scans the range's sessions.

use std::collections::HashSet;

use duckdb::arrow::array::{Array, BinaryArray, Int64Array, StringArray, UInt64Array};
use duckdb::types::Value;
use duckdb::{params_from_iter, Connection};
use roaring::RoaringBitmap;

use super::cells::{table, value_column};
use super::{windows_table, Window};
use crate::domain::analysis::rollup::{hour_start, HOUR_US};
use crate::domain::analysis::session_cells::{
    KeptBeside, SessionCell, SessionCellKind, TakenSession,
};
use crate::domain::analysis::sessions::StoredGroup;
use crate::domain::query::SessionQuery;
use crate::storage::duckdb::query::column;
use crate::storage::StorageError;

/// Hours of taken sessions closer than this are looked up in one read.
const HOURS_GAP_US: i64 = 6 * HOUR_US;

/// The groups of a fitting query's kept sessions from the cells of `kind`
/// over its range, less the sessions that the query reads from events
/// (`windows`, of which those of `pending` persons are stale). The persons
/// of `windows` are the groups' folded ones.
pub(super) fn groups(
    conn: &Connection,
    query: &SessionQuery,
    kind: SessionCellKind,
    windows: &[Window],
    pending: &HashSet<u32>,
) -> Result<Vec<StoredGroup>, StorageError> {
    let cells = range_cells(conn, query, kind)?;
    let taken = taken_sessions(conn, query, kind, windows, pending)?;
    let beside = kept_beside(conn, query, kind, &taken)?;
    let window_persons: RoaringBitmap = windows.iter().map(|w| w.person).collect();
    Ok(query.groups_from_cells(cells, &taken, &beside, &window_persons))
}

/// The cells of `kind` over the query's range.
fn range_cells(
    conn: &Connection,
    query: &SessionQuery,
    kind: SessionCellKind,
) -> Result<Vec<SessionCell>, StorageError> {
    let from_us = query.range.from.timestamp_micros();
    let to_us = query.range.to.timestamp_micros();
    let mut cells = Vec::new();
    let mut statement = conn.prepare(&format!(
        "SELECT at_us, value, sessions, events, page_views, bounces, duration_us, persons
         FROM {} WHERE project_id = ? AND at_us >= ? AND at_us < ?",
        table(kind)
    ))?;
    for batch in statement.stream_arrow(duckdb::params![query.project_id, from_us, to_us])? {
        let batch = batch?;
        let times = column::<Int64Array>(&batch, 0)?;
        let values = column::<StringArray>(&batch, 1)?;
        let sessions = column::<UInt64Array>(&batch, 2)?;
        let events = column::<UInt64Array>(&batch, 3)?;
        let page_views = column::<UInt64Array>(&batch, 4)?;
        let bounces = column::<UInt64Array>(&batch, 5)?;
        let durations = column::<Int64Array>(&batch, 6)?;
        let persons = column::<BinaryArray>(&batch, 7)?;
        for row in 0..batch.num_rows() {
            cells.push(SessionCell {
                at_us: times.value(row),
                value: (!values.is_null(row)).then(|| values.value(row).to_owned()),
                sessions: sessions.value(row),
                events: events.value(row),
                page_views: page_views.value(row),
                bounces: bounces.value(row),
                duration_us: durations.value(row),
                persons: RoaringBitmap::deserialize_unchecked_from(persons.value(row)).map_err(
                    |e| StorageError::Internal(format!("a session cell's persons: {e}")),
                )?,
            });
        }
    }
    Ok(cells)
}

/// The kept sessions starting in the range that the query reads from
/// events: those crossing its end, and those of pending persons that
/// overlap their windows.
fn taken_sessions(
    conn: &Connection,
    query: &SessionQuery,
    kind: SessionCellKind,
    windows: &[Window],
    pending: &HashSet<u32>,
) -> Result<Vec<TakenSession>, StorageError> {
    let from_us = query.range.from.timestamp_micros();
    let to_us = query.range.to.timestamp_micros();
    let value = value_column(kind).unwrap_or("NULL::VARCHAR");
    let columns =
        format!("sessions.person, start_us, {value}, events, page_views, end_us - start_us");
    let mut sql = format!(
        "SELECT {columns} FROM sessions
         WHERE project_id = ? AND start_us >= ? AND start_us < ? AND end_us >= ?"
    );
    let mut params: Vec<Value> = vec![
        query.project_id.clone().into(),
        from_us.into(),
        to_us.into(),
        to_us.into(),
    ];
    let stale: Vec<Window> = windows
        .iter()
        .filter(|w| pending.contains(&w.person))
        .copied()
        .collect();
    if let (Some(lo_us), Some(hi_us)) = (
        stale.iter().map(|w| w.lo_us).min(),
        stale.iter().map(|w| w.hi_us).max(),
    ) {
        // The bounds let the read skip row groups; the windows decide.
        sql.push_str(&format!(
            " UNION SELECT {columns} FROM sessions
              WHERE project_id = ? AND start_us >= ? AND start_us < ? AND end_us >= ? AND start_us <= ?
                AND EXISTS (SELECT 1 FROM {} WHERE w.person = sessions.person AND sessions.end_us >= w.lo AND sessions.start_us <= w.hi)",
            windows_table(&stale)
        ));
        params.extend([
            query.project_id.clone().into(),
            from_us.into(),
            to_us.into(),
            lo_us.into(),
            hi_us.into(),
        ]);
    }
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(params))?;
    let mut taken = Vec::new();
    while let Some(row) = rows.next()? {
        let events = u64::from(row.get::<_, u32>(3)?);
        let page_views = u64::from(row.get::<_, u32>(4)?);
        taken.push(TakenSession {
            person: row.get(0)?,
            session: SessionCell {
                at_us: row.get(1)?,
                value: row.get(2)?,
                sessions: 1,
                events,
                page_views,
                bounces: u64::from(events == 1 && page_views == 1),
                duration_us: row.get(5)?,
                persons: RoaringBitmap::new(),
            },
        });
    }
    Ok(taken)
}

/// The other kept sessions of the taken sessions' persons in the UTC hours
/// of those sessions: one read per stretch of nearby hours.
fn kept_beside(
    conn: &Connection,
    query: &SessionQuery,
    kind: SessionCellKind,
    taken: &[TakenSession],
) -> Result<HashSet<KeptBeside>, StorageError> {
    let mut beside = HashSet::new();
    if taken.is_empty() {
        return Ok(beside);
    }
    let hours_of_persons: HashSet<(u32, i64)> = taken
        .iter()
        .map(|t| (t.person, hour_start(t.session.at_us)))
        .collect();
    let taken_starts: HashSet<(u32, i64)> =
        taken.iter().map(|t| (t.person, t.session.at_us)).collect();
    let mut hours: Vec<i64> = hours_of_persons.iter().map(|(_, hour)| *hour).collect();
    hours.sort_unstable();
    hours.dedup();
    let mut stretches: Vec<(i64, i64)> = Vec::new();
    for hour in hours {
        match stretches.last_mut() {
            Some(last) if hour <= last.1 + HOURS_GAP_US => last.1 = hour + HOUR_US,
            _ => stretches.push((hour, hour + HOUR_US)),
        }
    }
    let value = value_column(kind).unwrap_or("NULL::VARCHAR");
    for (lo_us, hi_us) in stretches {
        let mut persons: Vec<u32> = hours_of_persons
            .iter()
            .filter(|(_, hour)| (lo_us..hi_us).contains(hour))
            .map(|(person, _)| *person)
            .collect();
        persons.sort_unstable();
        persons.dedup();
        let list: Vec<String> = persons.iter().map(u32::to_string).collect();
        // The persons are storage's numbers, not a request's.
        let sql = format!(
            "SELECT sessions.person, start_us, {value} FROM sessions
             SEMI JOIN (SELECT unnest([{}]::UINTEGER[]) AS person) AS taken ON taken.person = sessions.person
             WHERE project_id = ? AND start_us >= ? AND start_us < ?",
            list.join(", ")
        );
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(duckdb::params![query.project_id, lo_us, hi_us])?;
        while let Some(row) = rows.next()? {
            let person: u32 = row.get(0)?;
            let start_us: i64 = row.get(1)?;
            let hour_us = hour_start(start_us);
            if hours_of_persons.contains(&(person, hour_us))
                && !taken_starts.contains(&(person, start_us))
            {
                beside.insert(KeptBeside {
                    person,
                    hour_us,
                    value: row.get(2)?,
                });
            }
        }
    }
    Ok(beside)
}
