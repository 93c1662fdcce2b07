//! Session cells: the kept sessions summed per project, UTC hour of their
//! start and [`SessionCellKind`] value, with the exact set of their persons
//! (see [`crate::domain::analysis::session_cells`]), so that a session query
//! over a month reads a few thousand cells instead of every kept session.
//!
//! Cells always agree with the kept sessions of the same snapshot:
//! - every change to `sessions` in a refresh records the start hours of the
//!   sessions it removes, moves or adds ([`Touched`]), and the refresh
//!   recomputes those hours' cells from `sessions` before it commits
//!   ([`recompute`]);
//! - once a project's sessions are ready, [`build_step`] builds its cells a
//!   UTC day at a time (`session_cells_state` keeps the first hour not yet
//!   built; a refresh recomputes only hours before it), and a restart of the
//!   sessions drops them ([`reset`]).
//!
//! [`super::cell_groups`] answers a fitting query from them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, BinaryArray, Int64Array, StringArray, UInt32Array, UInt64Array,
};
use duckdb::Connection;

use crate::domain::analysis::rollup::{hour_start, DAY_US, HOUR_US};
use crate::domain::analysis::session_cells::{SessionCell, SessionCellKind};
use crate::storage::duckdb::append::{append_columns, Table};
use crate::storage::duckdb::errors::building;
use crate::storage::duckdb::query::column;
use crate::storage::StorageError;

/// The cells of each kind, in [`SessionCellKind::ALL`] order: each kind's
/// rows keep to their own table, so that a scan reads only their person sets.
const TABLES: [&str; SessionCellKind::ALL.len()] = [
    "session_cells_total",
    "session_cells_entry_page",
    "session_cells_exit_page",
    "session_cells_referrer_domain",
    "session_cells_source",
    "session_cells_channel",
];
/// `built_until_us` of a project whose cells are all built.
const BUILT: i64 = i64::MAX;

/// The table of a kind's cells.
pub(super) fn table(kind: SessionCellKind) -> &'static str {
    let index = SessionCellKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    TABLES[index]
}

/// The column of `sessions` that holds a kind's value; none for totals.
pub(super) fn value_column(kind: SessionCellKind) -> Option<&'static str> {
    match kind {
        SessionCellKind::Total => None,
        other => Some(other.as_str()),
    }
}

/// The start hours of the kept sessions that a refresh changed.
#[derive(Debug, Default)]
pub(super) struct Touched {
    hours: BTreeSet<i64>,
}

impl Touched {
    /// Records a session that starts at `start_us` as added, moved or removed.
    pub(super) fn session(&mut self, start_us: i64) {
        self.hours.insert(hour_start(start_us));
    }

    /// Records each start time `statement` returns (a `RETURNING start_us`).
    pub(super) fn returned(
        &mut self,
        conn: &Connection,
        statement: &str,
        params: impl duckdb::Params,
    ) -> Result<(), StorageError> {
        let mut prepared = conn.prepare(statement)?;
        let mut rows = prepared.query(params)?;
        while let Some(row) = rows.next()? {
            self.session(row.get(0)?);
        }
        Ok(())
    }
}

/// The first hour of a project whose cells are not built yet, if their
/// build has started.
fn built_until(conn: &Connection, project_id: &str) -> Result<Option<i64>, StorageError> {
    let mut statement =
        conn.prepare("SELECT built_until_us FROM session_cells_state WHERE project_id = ?")?;
    let mut rows = statement.query([project_id])?;
    Ok(match rows.next()? {
        Some(row) => Some(row.get(0)?),
        None => None,
    })
}

/// Whether a project's cells are all built.
pub(super) fn ready(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    Ok(built_until(conn, project_id)? == Some(BUILT))
}

/// Drops a project's cells (its sessions are cut again).
pub(super) fn reset(conn: &Connection, project_id: &str) -> Result<(), StorageError> {
    for table in TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE project_id = ?"),
            [project_id],
        )?;
    }
    conn.execute(
        "DELETE FROM session_cells_state WHERE project_id = ?",
        [project_id],
    )?;
    Ok(())
}

/// Takes a project's cells one UTC day further from its kept sessions
/// (which are ready), inside the caller's transaction; returns whether they
/// are all built.
pub(super) fn build_step(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(start_us), max(start_us) FROM sessions WHERE project_id = ?",
        [project_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let from_us = match built_until(conn, project_id)? {
        Some(BUILT) => return Ok(true),
        Some(from_us) => from_us,
        None => first.map_or(BUILT, |first| first.div_euclid(DAY_US) * DAY_US),
    };
    if last.is_none_or(|last| from_us > last) {
        set_built_until(conn, project_id, BUILT)?;
        return Ok(true);
    }
    let to_us = from_us.saturating_add(DAY_US);
    for table in TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE project_id = ? AND at_us >= ? AND at_us < ?"),
            duckdb::params![project_id, from_us, to_us],
        )?;
    }
    let cells = cells_of(conn, project_id, &[(from_us, to_us)])?;
    append(conn, project_id, &cells)?;
    set_built_until(conn, project_id, to_us)?;
    Ok(false)
}

fn set_built_until(conn: &Connection, project_id: &str, until_us: i64) -> Result<(), StorageError> {
    conn.execute(
        "INSERT OR REPLACE INTO session_cells_state (project_id, built_until_us) VALUES (?, ?)",
        duckdb::params![project_id, until_us],
    )?;
    Ok(())
}

/// Recomputes, from the kept sessions as they are now, the cells of the
/// hours `touched` records (those built so far), inside the caller's
/// transaction.
pub(super) fn recompute(
    conn: &Connection,
    project_id: &str,
    touched: &Touched,
) -> Result<(), StorageError> {
    let Some(until_us) = built_until(conn, project_id)? else {
        return Ok(());
    };
    let hours: Vec<i64> = touched
        .hours
        .iter()
        .copied()
        .take_while(|hour| *hour < until_us)
        .collect();
    if hours.is_empty() {
        return Ok(());
    }
    // The hours are storage's numbers, not a request's.
    let list: Vec<String> = hours.iter().map(i64::to_string).collect();
    for table in TABLES {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE project_id = ? AND at_us IN ({})",
                list.join(", ")
            ),
            [project_id],
        )?;
    }
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for hour in hours {
        match spans.last_mut() {
            Some(last) if last.1 == hour => last.1 = hour + HOUR_US,
            _ => spans.push((hour, hour + HOUR_US)),
        }
    }
    let cells = cells_of(conn, project_id, &spans)?;
    append(conn, project_id, &cells)
}

/// A kind's cells while sessions are added to them, by value and hour.
#[derive(Default)]
struct KindSums {
    none: HashMap<i64, SessionCell>,
    by_value: HashMap<String, HashMap<i64, SessionCell>>,
}

impl KindSums {
    fn cell(&mut self, value: Option<&str>, hour: i64) -> &mut SessionCell {
        let hours = match value {
            None => &mut self.none,
            Some(text) => {
                if !self.by_value.contains_key(text) {
                    self.by_value.insert(text.to_owned(), HashMap::new());
                }
                self.by_value.get_mut(text).expect("inserted above")
            }
        };
        hours.entry(hour).or_insert_with(|| SessionCell {
            at_us: hour,
            value: value.map(str::to_owned),
            ..SessionCell::default()
        })
    }

    fn into_cells(self) -> Vec<SessionCell> {
        let mut cells: Vec<SessionCell> = self
            .none
            .into_values()
            .chain(self.by_value.into_values().flat_map(HashMap::into_values))
            .collect();
        cells.sort_by(|a, b| (a.at_us, &a.value).cmp(&(b.at_us, &b.value)));
        cells
    }
}

/// The cells of every kind of a project's kept sessions that start within
/// one of `spans` (`[from, to)` each), in [`SessionCellKind::ALL`] order.
fn cells_of(
    conn: &Connection,
    project_id: &str,
    spans: &[(i64, i64)],
) -> Result<Vec<Vec<SessionCell>>, StorageError> {
    let mut sums: Vec<KindSums> = SessionCellKind::ALL
        .iter()
        .map(|_| KindSums::default())
        .collect();
    let values: Vec<&str> = SessionCellKind::ALL
        .iter()
        .filter_map(|kind| value_column(*kind))
        .collect();
    let within: Vec<String> = spans
        .iter()
        .map(|(from, to)| format!("(start_us >= {from} AND start_us < {to})"))
        .collect();
    let sql = format!(
        "SELECT person, start_us, end_us, events, page_views, {} FROM sessions
         WHERE project_id = ? AND ({})",
        values.join(", "),
        within.join(" OR ")
    );
    let mut statement = conn.prepare(&sql)?;
    for batch in statement.stream_arrow([project_id])? {
        let batch = batch?;
        let persons = column::<UInt32Array>(&batch, 0)?;
        let starts = column::<Int64Array>(&batch, 1)?;
        let ends = column::<Int64Array>(&batch, 2)?;
        let events = column::<UInt32Array>(&batch, 3)?;
        let page_views = column::<UInt32Array>(&batch, 4)?;
        let texts: Vec<&StringArray> = (0..values.len())
            .map(|i| column::<StringArray>(&batch, 5 + i))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            let start_us = starts.value(row);
            let hour = hour_start(start_us);
            let person = persons.value(row);
            let events = u64::from(events.value(row));
            let page_views = u64::from(page_views.value(row));
            let duration_us = ends.value(row) - start_us;
            for (i, kind_sums) in sums.iter_mut().enumerate() {
                let value = match i {
                    0 => None,
                    i => {
                        let texts = texts[i - 1];
                        (!texts.is_null(row)).then(|| texts.value(row))
                    }
                };
                kind_sums
                    .cell(value, hour)
                    .add_session(person, events, page_views, duration_us);
            }
        }
    }
    Ok(sums.into_iter().map(KindSums::into_cells).collect())
}

/// Appends the cells of each kind (in [`SessionCellKind::ALL`] order) to its
/// table.
fn append(
    conn: &Connection,
    project_id: &str,
    cells: &[Vec<SessionCell>],
) -> Result<(), StorageError> {
    for (table, cells) in TABLES.iter().zip(cells) {
        if cells.is_empty() {
            continue;
        }
        let mut bitmaps = Vec::with_capacity(cells.len());
        for cell in cells {
            let mut bytes = Vec::with_capacity(cell.persons.serialized_size());
            cell.persons
                .serialize_into(&mut bytes)
                .map_err(|e| building("a session cell", e))?;
            bitmaps.push(bytes);
        }
        let count = |field: fn(&SessionCell) -> u64| {
            Arc::new(
                cells
                    .iter()
                    .map(|c| Some(field(c)))
                    .collect::<UInt64Array>(),
            ) as ArrayRef
        };
        append_columns(
            conn,
            Table::File(table),
            "the session cells",
            [
                (
                    "project_id",
                    Arc::new(StringArray::from(vec![Some(project_id); cells.len()])) as ArrayRef,
                ),
                (
                    "at_us",
                    Arc::new(cells.iter().map(|c| Some(c.at_us)).collect::<Int64Array>()),
                ),
                (
                    "value",
                    Arc::new(
                        cells
                            .iter()
                            .map(|c| c.value.as_deref())
                            .collect::<StringArray>(),
                    ),
                ),
                ("sessions", count(|c| c.sessions)),
                ("events", count(|c| c.events)),
                ("page_views", count(|c| c.page_views)),
                ("bounces", count(|c| c.bounces)),
                (
                    "duration_us",
                    Arc::new(
                        cells
                            .iter()
                            .map(|c| Some(c.duration_us))
                            .collect::<Int64Array>(),
                    ),
                ),
                (
                    "persons",
                    Arc::new(BinaryArray::from_iter_values(bitmaps.iter())),
                ),
            ],
        )?;
    }
    Ok(())
}
