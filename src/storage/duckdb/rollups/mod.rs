//! Hourly rollups of events, so that counts and distinct users over a range
//! read a few thousand cells instead of every event.
//!
//! A cell is one UTC hour of one project's events of one call type and
//! event name: how many, and the exact set of their user numbers, as a
//! roaring bitmap (see [`crate::domain::analysis::rollup`]); each hour also
//! has a total cell over every type and name (an empty type), which queries
//! without filters or names read instead.
//!
//! - Every write appends, in its own transaction, the cells of the events
//!   it stored (`rollup_deltas`): deltas only add, so reads may add them to
//!   the kept cells whenever they like.
//! - [`keep::refresh`] folds the deltas into the kept cells
//!   (`event_rollups`, and `rollup_totals` for the totals) and clears them; [`keep::build_step`] builds a project's cells from its events a
//!   day at a time, in time order, when the project has none
//!   (`rollup_state`); deltas of hours not built yet wait for their step,
//!   which drops them (its events include theirs).
//! - [`read::answer`] answers a fitting event query from the kept cells and
//!   deltas of the hours its range covers whole, plus the events of the
//!   hours its ends cut, once the project's cells are built.
//!
//! Person links never touch a cell: distinct users are counted as persons
//! when a query is answered.

mod keep;
mod read;

pub(super) use keep::{append_deltas, build_step, deltas_of, refresh};
pub(super) use read::answer;

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, BinaryArray, Int64Array, StringArray, UInt32Array, UInt64Array,
};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{TimeUnit, Value};
use duckdb::{params_from_iter, Connection};
use roaring::RoaringBitmap;

use crate::domain::analysis::rollup::{RollupCell, HOUR_US};
use crate::storage::duckdb::errors::building;
use crate::storage::duckdb::query::column;
use crate::storage::StorageError;

/// The start of the UTC hour of `micros`.
fn hour_of(micros: i64) -> i64 {
    micros.div_euclid(HOUR_US) * HOUR_US
}

/// A cell's key: its time, type and name.
type CellKey = (i64, String, Option<String>);

/// Cells being added up, by key.
#[derive(Default)]
struct CellSums {
    cells: HashMap<CellKey, (u64, RoaringBitmap), foldhash::fast::RandomState>,
}

impl CellSums {
    /// Adds a cell to the cell of the same key.
    fn add(
        &mut self,
        at_us: i64,
        event_type: &str,
        event: Option<&str>,
        events: u64,
        users: &RoaringBitmap,
    ) {
        let key = (at_us, event_type.to_owned(), event.map(str::to_owned));
        let (count, set) = self.cells.entry(key).or_default();
        *count += events;
        *set |= users;
    }

    /// Adds one event to the cell of its type and name and to the total of
    /// its time.
    fn add_event(&mut self, at_us: i64, event_type: &str, event: Option<&str>, user: u32) {
        for key in [
            (at_us, event_type.to_owned(), event.map(str::to_owned)),
            (at_us, String::new(), None),
        ] {
            let (count, set) = self.cells.entry(key).or_default();
            *count += 1;
            set.insert(user);
        }
    }

    /// Adds each row of batches shaped `(at_us BIGINT, type, event, user_index)`.
    fn add_event_batch(&mut self, batch: &RecordBatch, hourly: bool) -> Result<(), StorageError> {
        let times = column::<Int64Array>(batch, 0)?;
        let types = column::<StringArray>(batch, 1)?;
        let names = column::<StringArray>(batch, 2)?;
        let users = column::<UInt32Array>(batch, 3)?;
        for row in 0..batch.num_rows() {
            let at_us = if hourly {
                hour_of(times.value(row))
            } else {
                times.value(row)
            };
            let name = (!names.is_null(row)).then(|| names.value(row));
            self.add_event(at_us, types.value(row), name, users.value(row));
        }
        Ok(())
    }

    fn into_cells(self) -> Vec<RollupCell> {
        self.cells
            .into_iter()
            .map(|((at_us, event_type, event), (events, users))| RollupCell {
                at_us,
                event_type,
                event,
                events,
                users,
            })
            .collect()
    }
}

/// Adds up a project's events in `[from_us, to_us)`, each in the cell of its
/// hour when `hourly`, else of its own time.
fn event_cells(
    conn: &Connection,
    project_id: &str,
    from_us: i64,
    to_us: i64,
    hourly: bool,
) -> Result<Vec<RollupCell>, StorageError> {
    let mut statement = conn.prepare(
        "SELECT epoch_us(timestamp), type, event, user_index FROM events
         WHERE project_id = ? AND timestamp >= ? AND timestamp < ?",
    )?;
    // Typed timestamps, so that DuckDB skips row groups by their time range.
    let time = |micros| Value::Timestamp(TimeUnit::Microsecond, micros);
    let params = [
        Value::from(project_id.to_owned()),
        time(from_us),
        time(to_us),
    ];
    let mut sums = CellSums::default();
    for batch in statement.stream_arrow(params_from_iter(params))? {
        sums.add_event_batch(&batch?, hourly)?;
    }
    Ok(sums.into_cells())
}

/// The tables of kept cells: those of each type and name, and the totals.
const KEPT_TABLES: [&str; 2] = ["event_rollups", "rollup_totals"];

/// The table a kept cell belongs in.
fn kept_table(cell: &RollupCell) -> &'static str {
    if cell.is_total() {
        KEPT_TABLES[1]
    } else {
        KEPT_TABLES[0]
    }
}

/// Appends kept cells of one project, each to its table.
fn append_kept(
    conn: &Connection,
    project_id: &str,
    cells: &[RollupCell],
) -> Result<(), StorageError> {
    for table in KEPT_TABLES {
        let rows: Vec<(&str, &RollupCell)> = cells
            .iter()
            .filter(|cell| kept_table(cell) == table)
            .map(|cell| (project_id, cell))
            .collect();
        append_cells(conn, table, &rows)?;
    }
    Ok(())
}

/// Appends cells of one project to `table` (a kept table or `rollup_deltas`).
fn append_cells(
    conn: &Connection,
    table: &str,
    rows: &[(&str, &RollupCell)],
) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut bitmaps = Vec::with_capacity(rows.len());
    for (_, cell) in rows {
        let mut bytes = Vec::with_capacity(cell.users.serialized_size());
        cell.users
            .serialize_into(&mut bytes)
            .map_err(|e| building("a rollup cell", e))?;
        bitmaps.push(bytes);
    }
    let projects: StringArray = rows.iter().map(|(p, _)| Some(*p)).collect();
    let hours: Int64Array = rows.iter().map(|(_, c)| Some(c.at_us)).collect();
    let types: StringArray = rows
        .iter()
        .map(|(_, c)| Some(c.event_type.as_str()))
        .collect();
    let names: StringArray = rows.iter().map(|(_, c)| c.event.as_deref()).collect();
    let counts: UInt64Array = rows.iter().map(|(_, c)| Some(c.events)).collect();
    let users = BinaryArray::from_iter_values(bitmaps.iter());
    let batch = RecordBatch::try_from_iter([
        ("project_id", Arc::new(projects) as ArrayRef),
        ("hour_us", Arc::new(hours) as ArrayRef),
        ("type", Arc::new(types) as ArrayRef),
        ("event", Arc::new(names) as ArrayRef),
        ("events", Arc::new(counts) as ArrayRef),
        ("users", Arc::new(users) as ArrayRef),
    ])
    .map_err(|e| building("the rollup cells", e))?;
    let mut appender = conn.appender(table)?;
    appender.append_record_batch(batch)?;
    appender.flush()?;
    Ok(())
}

/// The cells of `table` for one project whose hour is in `[from_us, to_us)`
/// and that `wanted` keeps (judged before their user sets are decoded).
fn read_cells(
    conn: &Connection,
    table: &str,
    project_id: &str,
    from_us: i64,
    to_us: i64,
    wanted: &dyn Fn(&RollupCell) -> bool,
    sums: &mut Vec<RollupCell>,
) -> Result<(), StorageError> {
    // The table name is one of this module's, never a request's.
    let sql = format!(
        "SELECT hour_us, type, event, events, users FROM {table}
         WHERE project_id = ? AND hour_us >= ? AND hour_us < ?"
    );
    let mut statement = conn.prepare(&sql)?;
    let params = [
        Value::from(project_id.to_owned()),
        from_us.into(),
        to_us.into(),
    ];
    for batch in statement.stream_arrow(params_from_iter(params))? {
        let batch = batch?;
        let hours = column::<Int64Array>(&batch, 0)?;
        let types = column::<StringArray>(&batch, 1)?;
        let names = column::<StringArray>(&batch, 2)?;
        let counts = column::<UInt64Array>(&batch, 3)?;
        let users = column::<BinaryArray>(&batch, 4)?;
        for row in 0..batch.num_rows() {
            let mut cell = RollupCell {
                at_us: hours.value(row),
                event_type: types.value(row).to_owned(),
                event: (!names.is_null(row)).then(|| names.value(row).to_owned()),
                events: counts.value(row),
                users: RoaringBitmap::new(),
            };
            if !wanted(&cell) {
                continue;
            }
            cell.users = RoaringBitmap::deserialize_unchecked_from(users.value(row))
                .map_err(|e| StorageError::Internal(format!("a rollup cell's users: {e}")))?;
            sums.push(cell);
        }
    }
    Ok(())
}
