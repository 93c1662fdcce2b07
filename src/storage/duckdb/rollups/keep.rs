//! The write side of rollups: the deltas a write appends, the refresh that
//! folds them into the kept cells and recomputes changed hours, and the
//! build of a project's cells.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;

use super::{
    append_cells, append_hours, append_project, day_of, event_cells, indexed, read_cells,
    read_hours, CellSums, DAYS, DELTAS, DIRTY, HOUR_TABLES,
};
use crate::domain::analysis::rollup::{hour_start, CellKind, RollupCell, DAY_US, HOUR_US};
use crate::domain::Event;
use crate::storage::StorageError;

/// A cell of one project that a write adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    project_id: String,
    cell: RollupCell,
}

/// The cells that `events` (with their user numbers) add.
pub fn deltas_of(events: &[Event], numbers: &[u32]) -> Vec<Delta> {
    let mut sums: HashMap<&str, CellSums> = HashMap::new();
    let kinds = indexed(&CellKind::ALL);
    let mut values = [None; CellKind::ALL.len()];
    for (event, number) in events.iter().zip(numbers) {
        for (value, kind) in values.iter_mut().zip(CellKind::ALL) {
            *value = kind.value(event);
        }
        sums.entry(event.project_id.as_str())
            .or_default()
            .add_event(
                hour_start(event.timestamp.timestamp_micros()),
                &kinds,
                event.event_type.as_str(),
                &values,
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
    append_cells(conn, DELTAS, &rows)
}

/// A project's build: `None` before it starts, else the day before which
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

/// The time of a project's first event at or after `from_us` (`None`: from
/// the start).
fn next_event(
    conn: &Connection,
    project_id: &str,
    from_us: Option<i64>,
) -> Result<Option<i64>, StorageError> {
    Ok(match from_us {
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
    })
}

/// Deletes a project's rows of `table` whose time is in `[from_us, to_us)`.
fn delete_span(
    conn: &Connection,
    table: &str,
    project_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<(), StorageError> {
    // The table is one of this module's, never a request's.
    conn.execute(
        &format!("DELETE FROM {table} WHERE project_id = ? AND at_us >= ? AND at_us < ?"),
        duckdb::params![project_id, from_us, to_us],
    )?;
    Ok(())
}

/// Deletes a project's rows of `table` at the times `at` (storage's numbers).
fn delete_at(
    conn: &Connection,
    table: &str,
    project_id: &str,
    at: &BTreeSet<i64>,
) -> Result<(), StorageError> {
    if at.is_empty() {
        return Ok(());
    }
    let list = at.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    conn.execute(
        &format!("DELETE FROM {table} WHERE project_id = ? AND at_us IN ({list})"),
        [project_id],
    )?;
    Ok(())
}

/// The cells of `cells` added up at the start of their days.
fn days_of(cells: &[RollupCell]) -> Vec<RollupCell> {
    let mut sums = CellSums::default();
    for cell in cells {
        sums.add(day_of(cell.at_us), cell);
    }
    sums.into_cells()
}

/// One step of a project's build, in one transaction: the cells of a UTC
/// day of its events from where the last step stopped (the deltas of that
/// day are dropped: its events include theirs). Returns whether the build
/// is done.
pub fn build_step(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    super::super::in_transaction(conn, || {
        let from_us = match build_state(conn, project_id)? {
            Some((_, true)) => return Ok(true),
            Some((until, false)) => Some(until),
            None => None,
        };
        let Some(first) = next_event(conn, project_id, from_us)? else {
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (project_id, built_until_us, ready) VALUES (?, ?, true)",
                duckdb::params![project_id, i64::MAX],
            )?;
            return Ok(true);
        };
        let (from_us, to_us) = (day_of(first), day_of(first) + DAY_US);
        let hours = event_cells(conn, project_id, from_us, to_us, &CellKind::ALL)?;
        for table in [DELTAS, DAYS, DIRTY].into_iter().chain(HOUR_TABLES) {
            delete_span(conn, table, project_id, from_us, to_us)?;
        }
        append_hours(conn, project_id, &hours)?;
        append_project(conn, DAYS, project_id, &days_of(&hours))?;
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (project_id, built_until_us, ready) VALUES (?, ?, false)",
            duckdb::params![project_id, to_us],
        )?;
        Ok(false)
    })
}

/// The times of `table`'s rows in the built days of each project.
fn built_times(
    conn: &Connection,
    table: &str,
) -> Result<BTreeMap<String, BTreeSet<i64>>, StorageError> {
    // The table is one of this module's, never a request's.
    let mut statement = conn.prepare(&format!(
        "SELECT DISTINCT t.project_id, t.at_us FROM {table} AS t
         JOIN rollup_state AS s USING (project_id) WHERE t.at_us < s.built_until_us"
    ))?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut projects: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for row in rows {
        let (project, at) = row?;
        projects.entry(project).or_default().insert(at);
    }
    Ok(projects)
}

/// Recomputes from events the changed hours of built days, folds the
/// deltas of built days into the kept cells, in one transaction; returns
/// the hours refreshed.
pub fn refresh(conn: &Connection) -> Result<usize, StorageError> {
    super::super::in_transaction(conn, || {
        let changed = built_times(conn, DIRTY)?;
        for (project_id, hours) in &changed {
            recompute_hours(conn, project_id, hours)?;
        }
        let added = built_times(conn, DELTAS)?;
        for (project_id, hours) in &added {
            fold_deltas(conn, project_id, hours)?;
        }
        Ok(changed
            .values()
            .chain(added.values())
            .map(BTreeSet::len)
            .sum())
    })
}

/// Rewrites the kept cells of `hours` and of their days with the hours'
/// deltas added, and drops the deltas.
fn fold_deltas(
    conn: &Connection,
    project_id: &str,
    hours: &BTreeSet<i64>,
) -> Result<(), StorageError> {
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        return Ok(());
    };
    let days: BTreeSet<i64> = hours.iter().copied().map(day_of).collect();
    let in_hours = |cell: &RollupCell| hours.contains(&cell.at_us);
    let in_days = |cell: &RollupCell| days.contains(&cell.at_us);
    let mut deltas = Vec::new();
    read_cells(
        conn,
        DELTAS,
        project_id,
        None,
        *first,
        last + 1,
        &in_hours,
        &mut deltas,
    )?;
    let mut kept = Vec::new();
    read_hours(conn, project_id, *first, last + 1, &in_hours, &mut kept)?;
    let mut kept_days = Vec::new();
    let (first_day, last_day) = (day_of(*first), day_of(*last));
    read_cells(
        conn,
        DAYS,
        project_id,
        None,
        first_day,
        last_day + 1,
        &in_days,
        &mut kept_days,
    )?;
    let mut hour_sums = CellSums::default();
    let mut day_sums = CellSums::default();
    for cell in &deltas {
        hour_sums.add(cell.at_us, cell);
        day_sums.add(day_of(cell.at_us), cell);
    }
    for cell in &kept {
        hour_sums.add(cell.at_us, cell);
    }
    for cell in &kept_days {
        day_sums.add(cell.at_us, cell);
    }
    for table in HOUR_TABLES.into_iter().chain([DELTAS]) {
        delete_at(conn, table, project_id, hours)?;
    }
    delete_at(conn, DAYS, project_id, &days)?;
    append_hours(conn, project_id, &hour_sums.into_cells())?;
    append_project(conn, DAYS, project_id, &day_sums.into_cells())
}

/// Recomputes the kept cells of `hours` from their events (dropping their
/// deltas: the events include them), then their days from the kept hours.
fn recompute_hours(
    conn: &Connection,
    project_id: &str,
    hours: &BTreeSet<i64>,
) -> Result<(), StorageError> {
    let mut cells = Vec::new();
    for hour in hours {
        cells.extend(event_cells(
            conn,
            project_id,
            *hour,
            hour + HOUR_US,
            &CellKind::ALL,
        )?);
    }
    for table in HOUR_TABLES.into_iter().chain([DELTAS, DIRTY]) {
        delete_at(conn, table, project_id, hours)?;
    }
    append_hours(conn, project_id, &cells)?;
    let days: BTreeSet<i64> = hours.iter().copied().map(day_of).collect();
    for day in &days {
        let mut kept = Vec::new();
        read_hours(conn, project_id, *day, day + DAY_US, &|_| true, &mut kept)?;
        delete_at(conn, DAYS, project_id, &BTreeSet::from([*day]))?;
        append_project(conn, DAYS, project_id, &days_of(&kept))?;
    }
    Ok(())
}
