//! The write side of rollups: the deltas a write appends, the refresh that
//! folds them into the kept cells, and the build of a project's cells.

use std::collections::HashSet;

use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;

use super::{
    append_cells, append_kept, event_cells, hour_of, read_cells, CellSums, HOUR_US, KEPT_TABLES,
};
use crate::domain::analysis::rollup::RollupCell;
use crate::domain::Event;
use crate::storage::StorageError;

/// Time a build step covers: a day of events.
const BUILD_STEP_US: i64 = 24 * HOUR_US;

/// A cell of one project that a write adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    project_id: String,
    cell: RollupCell,
}

/// The cells that `events` (with their user numbers) add, counting only the
/// events that `stored` keeps.
pub fn deltas_of(events: &[Event], numbers: &[u32], stored: impl Fn(&Event) -> bool) -> Vec<Delta> {
    let mut sums: std::collections::HashMap<&str, CellSums> = std::collections::HashMap::new();
    for (event, number) in events.iter().zip(numbers) {
        if !stored(event) {
            continue;
        }
        sums.entry(event.project_id.as_str())
            .or_default()
            .add_event(
                hour_of(event.timestamp.timestamp_micros()),
                event.event_type.as_str(),
                event.event.as_deref(),
                *number,
            );
    }
    sums.into_iter()
        .flat_map(|(project_id, sums)| {
            sums.into_cells().into_iter().map(move |cell| Delta {
                project_id: project_id.to_owned(),
                cell,
            })
        })
        .collect()
}

/// Records deltas in `rollup_deltas` (inside the caller's transaction).
pub fn append_deltas(conn: &Connection, deltas: &[Delta]) -> Result<(), StorageError> {
    let rows: Vec<(&str, &RollupCell)> = deltas
        .iter()
        .map(|d| (d.project_id.as_str(), &d.cell))
        .collect();
    append_cells(conn, "rollup_deltas", &rows)
}

/// A project's build: `None` before it starts, else the hour before which
/// every cell is built, and whether all are.
fn build_state(conn: &Connection, project_id: &str) -> Result<Option<(i64, bool)>, StorageError> {
    let mut statement =
        conn.prepare("SELECT built_until_us, ready FROM rollup_state WHERE project_id = ?")?;
    let mut rows = statement.query([project_id])?;
    Ok(match rows.next()? {
        Some(row) => Some((row.get(0)?, row.get(1)?)),
        None => None,
    })
}

/// The hour of a project's first event at or after `from_us` (`None`: from
/// the start).
fn next_event_hour(
    conn: &Connection,
    project_id: &str,
    from_us: Option<i64>,
) -> Result<Option<i64>, StorageError> {
    let first: Option<i64> = match from_us {
        None => conn.query_row(
            "SELECT epoch_us(min(timestamp)) FROM events WHERE project_id = ?",
            [project_id],
            |row| row.get(0),
        )?,
        // A typed timestamp, so that DuckDB skips row groups by their time range.
        Some(from_us) => conn.query_row(
            "SELECT epoch_us(min(timestamp)) FROM events WHERE project_id = ? AND timestamp >= ?",
            duckdb::params![project_id, Value::Timestamp(TimeUnit::Microsecond, from_us)],
            |row| row.get(0),
        )?,
    };
    Ok(first.map(hour_of))
}

/// One step of a project's build, in one transaction: the cells of a day of
/// its events from where the last step stopped (the deltas of that day are
/// dropped: its events include theirs). Returns whether the build is done.
pub fn build_step(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    super::super::in_transaction(conn, || {
        let from_us = match build_state(conn, project_id)? {
            Some((_, true)) => return Ok(true),
            Some((until, false)) => Some(until),
            None => None,
        };
        let Some(from_us) = next_event_hour(conn, project_id, from_us)? else {
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (project_id, built_until_us, ready) VALUES (?, ?, true)",
                duckdb::params![project_id, i64::MAX],
            )?;
            return Ok(true);
        };
        let to_us = from_us + BUILD_STEP_US;
        let cells = event_cells(conn, project_id, from_us, to_us, true)?;
        conn.execute(
            "DELETE FROM rollup_deltas WHERE project_id = ? AND hour_us >= ? AND hour_us < ?",
            duckdb::params![project_id, from_us, to_us],
        )?;
        for table in KEPT_TABLES {
            conn.execute(
                &format!(
                    "DELETE FROM {table} WHERE project_id = ? AND hour_us >= ? AND hour_us < ?"
                ),
                duckdb::params![project_id, from_us, to_us],
            )?;
        }
        append_kept(conn, project_id, &cells)?;
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (project_id, built_until_us, ready) VALUES (?, ?, false)",
            duckdb::params![project_id, to_us],
        )?;
        Ok(false)
    })
}

/// Folds the deltas of built hours into the kept cells, in one transaction;
/// returns the hours refreshed.
pub fn refresh(conn: &Connection) -> Result<usize, StorageError> {
    super::super::in_transaction(conn, || {
        let mut statement = conn.prepare(
            "SELECT DISTINCT d.project_id, d.hour_us FROM rollup_deltas AS d
             JOIN rollup_state AS s USING (project_id)
             WHERE d.hour_us < s.built_until_us ORDER BY 1, 2",
        )?;
        let hours = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let projects: HashSet<&str> = hours.iter().map(|(p, _)| p.as_str()).collect();
        for project_id in projects {
            let project_hours: Vec<i64> = hours
                .iter()
                .filter(|(p, _)| p == project_id)
                .map(|(_, h)| *h)
                .collect();
            refresh_hours(conn, project_id, &project_hours)?;
        }
        Ok(hours.len())
    })
}

/// Rewrites the kept cells of `hours` (ascending) with their deltas added.
fn refresh_hours(conn: &Connection, project_id: &str, hours: &[i64]) -> Result<(), StorageError> {
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        return Ok(());
    };
    let wanted: HashSet<i64> = hours.iter().copied().collect();
    let keep = |cell: &RollupCell| wanted.contains(&cell.at_us);
    let mut cells = Vec::new();
    for table in KEPT_TABLES.into_iter().chain(["rollup_deltas"]) {
        read_cells(conn, table, project_id, *first, last + 1, &keep, &mut cells)?;
    }
    let mut sums = CellSums::default();
    for cell in &cells {
        sums.add(
            cell.at_us,
            &cell.event_type,
            cell.event.as_deref(),
            cell.events,
            &cell.users,
        );
    }
    // The hours are storage's numbers, not a request's.
    let list = hours
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for table in KEPT_TABLES.into_iter().chain(["rollup_deltas"]) {
        conn.execute(
            &format!("DELETE FROM {table} WHERE project_id = ? AND hour_us IN ({list})"),
            [project_id],
        )?;
    }
    append_kept(conn, project_id, &sums.into_cells())
}
