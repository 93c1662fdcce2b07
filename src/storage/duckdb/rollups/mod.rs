//! Rollups of events, so that counts and distinct users over a range read a
//! few thousand cells instead of every event.
//!
//! A cell is one UTC hour (or, in `rollup_days`, one UTC day) of one
//! project's events of one [`CellKind`], call type and value: how many, and
//! the exact set of their user numbers, as a roaring bitmap (see
//! [`crate::domain::analysis::rollup`]). Each event is in one cell of every
//! kind of its hour and one of its day.
//!
//! - Every write appends, in its own transaction, the hourly cells of the
//!   events it stored (`rollup_deltas`): deltas only add, so reads may add
//!   them to the kept cells whenever they like.
//! - [`keep::refresh`] folds the deltas into the kept cells of their hours
//!   (`rollup_hours_*`, one table per kind) and days (`rollup_days`) and
//!   clears them, so that a day's cell is always the sum of its kept
//!   hours'. It also recomputes
//!   from events the hours that [`mark_changed`] recorded (`rollup_dirty`):
//!   writes that change stored events' values (their visit columns) cannot
//!   be taken out of a user set.
//! - [`keep::build_step`] builds a project's cells from its events a UTC day
//!   at a time, in time order, when the project has none (`rollup_state`);
//!   deltas of days not built yet wait for their step, which drops them (its
//!   events include theirs).
//! - [`read::answer`] answers a fitting event query once the project's cells
//!   are built: from the day cells of the UTC days its range covers whole
//!   when it has no time buckets, the hour cells of the other hours it
//!   covers whole, the deltas of them all, and the events of the hours its
//!   ends cut and of the hours being recomputed.
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
use duckdb::types::{TimeUnit, Value};
use duckdb::{params_from_iter, Connection};
use roaring::RoaringBitmap;

use crate::domain::analysis::rollup::{hour_start, CellKind, RollupCell, DAY_US, HOUR_US};
use crate::storage::duckdb::append::{append_columns, Table};
use crate::storage::duckdb::errors::building;
use crate::storage::duckdb::query::column;
use crate::storage::StorageError;

/// The kept hourly cells, one table per kind in [`CellKind::ALL`] order: a
/// scan reads the user sets of every row in the row groups it touches, so
/// each kind's rows keep to their own.
const HOUR_TABLES: [&str; CellKind::ALL.len()] = [
    "rollup_hours_total",
    "rollup_hours_name",
    "rollup_hours_page",
    "rollup_hours_browser",
    "rollup_hours_os",
    "rollup_hours_device",
    "rollup_hours_country",
    "rollup_hours_region",
    "rollup_hours_city",
];
/// The kept daily cells: each the sum of its day's kept hours.
const DAYS: &str = "rollup_days";
/// The hourly cells writes add, until a refresh folds them in.
const DELTAS: &str = "rollup_deltas";
/// The hours to recompute from events.
const DIRTY: &str = "rollup_dirty";

/// The start of the UTC day of `micros`.
fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY_US) * DAY_US
}

/// The stored column an event's value of `kind` is read from; none for totals.
fn value_column(kind: CellKind) -> Option<&'static str> {
    match kind {
        CellKind::Total => None,
        CellKind::Name => Some("event"),
        CellKind::Page => Some("page_path"),
        CellKind::Visit(attribute) => Some(attribute.as_str()),
    }
}

/// The kind stored under `name`.
fn kind_named(name: &str) -> Result<CellKind, StorageError> {
    CellKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .ok_or_else(|| StorageError::Internal(format!("a rollup cell of unknown kind {name:?}")))
}

/// Texts by number, so that cells are keyed by numbers while they are added
/// up (an event's values then cost a lookup each, not an allocation).
#[derive(Default)]
struct Texts {
    numbers: HashMap<String, u32, foldhash::fast::RandomState>,
    texts: Vec<String>,
}

/// The number of no text.
const NO_TEXT: u32 = u32::MAX;

impl Texts {
    fn number(&mut self, text: Option<&str>) -> u32 {
        let Some(text) = text else {
            return NO_TEXT;
        };
        if let Some(number) = self.numbers.get(text) {
            return *number;
        }
        let number = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.numbers.insert(text.to_owned(), number);
        number
    }

    fn text(&self, number: u32) -> Option<String> {
        (number != NO_TEXT).then(|| self.texts[number as usize].clone())
    }
}

/// A cell's key while cells are added up: its time, the index of its kind in
/// [`CellKind::ALL`], and the numbers of its type and value.
type CellKey = (i64, u8, u32, u32);

/// Cells being added up, by key.
#[derive(Default)]
struct CellSums {
    texts: Texts,
    cells: HashMap<CellKey, (u64, RoaringBitmap), foldhash::fast::RandomState>,
}

/// The index of `kind` in [`CellKind::ALL`].
fn kind_index(kind: CellKind) -> u8 {
    CellKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is in ALL") as u8
}

/// Each of `kinds` with its index, found once rather than for every event.
fn indexed(kinds: &[CellKind]) -> Vec<(u8, CellKind)> {
    kinds
        .iter()
        .map(|kind| (kind_index(*kind), *kind))
        .collect()
}

impl CellSums {
    /// Adds a cell, at `at_us`, to the cell of the same key.
    fn add(&mut self, at_us: i64, cell: &RollupCell) {
        let key = (
            at_us,
            kind_index(cell.kind),
            self.texts.number(Some(&cell.event_type)),
            self.texts.number(cell.value.as_deref()),
        );
        let (count, set) = self.cells.entry(key).or_default();
        *count += cell.events;
        *set |= &cell.users;
    }

    /// Adds one event, at `at_us`, to its cell of each kind in `kinds`
    /// (see [`indexed`]): `values[i]` is its value of `kinds[i]`.
    fn add_event(
        &mut self,
        at_us: i64,
        kinds: &[(u8, CellKind)],
        event_type: &str,
        values: &[Option<&str>],
        user: u32,
    ) {
        let typed = self.texts.number(Some(event_type));
        for ((index, kind), value) in kinds.iter().zip(values) {
            let (event_type, value) = match kind {
                CellKind::Total => (self.texts.number(Some("")), NO_TEXT),
                _ => (typed, self.texts.number(*value)),
            };
            let (count, set) = self
                .cells
                .entry((at_us, *index, event_type, value))
                .or_default();
            *count += 1;
            set.insert(user);
        }
    }

    fn into_cells(self) -> Vec<RollupCell> {
        let texts = self.texts;
        let mut sums: Vec<_> = self.cells.into_iter().collect();
        // In time order, so that the tables' row groups keep to their times.
        sums.sort_unstable_by_key(|((at_us, kind, ..), _)| (*at_us, *kind));
        sums.into_iter()
            .map(
                |((at_us, kind, event_type, value), (events, users))| RollupCell {
                    at_us,
                    kind: CellKind::ALL[usize::from(kind)],
                    event_type: texts.text(event_type).unwrap_or_default(),
                    value: texts.text(value),
                    events,
                    users,
                },
            )
            .collect()
    }
}

/// Adds up a project's events in `[from_us, to_us)` into the cells of their
/// hours of each kind in `kinds`.
fn event_cells(
    conn: &Connection,
    project_id: &str,
    from_us: i64,
    to_us: i64,
    kinds: &[CellKind],
) -> Result<Vec<RollupCell>, StorageError> {
    let values = kinds
        .iter()
        .map(|kind| value_column(*kind).unwrap_or("NULL::VARCHAR"))
        .collect::<Vec<_>>()
        .join(", ");
    // The columns are this module's, never a request's.
    let mut statement = conn.prepare(&format!(
        "SELECT epoch_us(timestamp), type, user_index, {values} FROM events
         WHERE project_id = ? AND timestamp >= ? AND timestamp < ?"
    ))?;
    // Typed timestamps, so that DuckDB skips row groups by their time range.
    let time = |micros| Value::Timestamp(TimeUnit::Microsecond, micros);
    let params = [
        Value::from(project_id.to_owned()),
        time(from_us),
        time(to_us),
    ];
    let indexed_kinds = indexed(kinds);
    let mut sums = CellSums::default();
    for batch in statement.stream_arrow(params_from_iter(params))? {
        let batch = batch?;
        let times = column::<Int64Array>(&batch, 0)?;
        let types = column::<StringArray>(&batch, 1)?;
        let users = column::<UInt32Array>(&batch, 2)?;
        let columns = (0..kinds.len())
            .map(|i| column::<StringArray>(&batch, 3 + i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut row_values = vec![None; kinds.len()];
        for row in 0..batch.num_rows() {
            for (value, values) in row_values.iter_mut().zip(&columns) {
                *value = (!values.is_null(row)).then(|| values.value(row));
            }
            sums.add_event(
                hour_start(times.value(row)),
                &indexed_kinds,
                types.value(row),
                &row_values,
                users.value(row),
            );
        }
    }
    Ok(sums.into_cells())
}

/// Appends cells, each with its project, to `table`.
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
    let times: Int64Array = rows.iter().map(|(_, c)| Some(c.at_us)).collect();
    let kinds: StringArray = rows.iter().map(|(_, c)| Some(c.kind.as_str())).collect();
    let types: StringArray = rows
        .iter()
        .map(|(_, c)| Some(c.event_type.as_str()))
        .collect();
    let values: StringArray = rows.iter().map(|(_, c)| c.value.as_deref()).collect();
    let counts: UInt64Array = rows.iter().map(|(_, c)| Some(c.events)).collect();
    let users = BinaryArray::from_iter_values(bitmaps.iter());
    append_columns(
        conn,
        Table::File(table),
        "the rollup cells",
        [
            ("project_id", Arc::new(projects) as ArrayRef),
            ("at_us", Arc::new(times) as ArrayRef),
            ("kind", Arc::new(kinds) as ArrayRef),
            ("type", Arc::new(types) as ArrayRef),
            ("value", Arc::new(values) as ArrayRef),
            ("events", Arc::new(counts) as ArrayRef),
            ("users", Arc::new(users) as ArrayRef),
        ],
    )?;
    Ok(())
}

/// Appends cells of one project to `table`.
fn append_project(
    conn: &Connection,
    table: &str,
    project_id: &str,
    cells: &[RollupCell],
) -> Result<(), StorageError> {
    let rows: Vec<(&str, &RollupCell)> = cells.iter().map(|cell| (project_id, cell)).collect();
    append_cells(conn, table, &rows)
}

/// The table of the kept hourly cells of `kind`.
fn hours_of(kind: CellKind) -> &'static str {
    HOUR_TABLES[usize::from(kind_index(kind))]
}

/// Appends kept hourly cells of one project, each to its kind's table.
fn append_hours(
    conn: &Connection,
    project_id: &str,
    cells: &[RollupCell],
) -> Result<(), StorageError> {
    for kind in CellKind::ALL {
        let rows: Vec<(&str, &RollupCell)> = cells
            .iter()
            .filter(|cell| cell.kind == kind)
            .map(|cell| (project_id, cell))
            .collect();
        append_cells(conn, hours_of(kind), &rows)?;
    }
    Ok(())
}

/// The kept hourly cells of every kind, as [`read_cells`] reads one table.
fn read_hours(
    conn: &Connection,
    project_id: &str,
    from_us: i64,
    to_us: i64,
    wanted: &dyn Fn(&RollupCell) -> bool,
    cells: &mut Vec<RollupCell>,
) -> Result<(), StorageError> {
    for kind in CellKind::ALL {
        read_cells(
            conn,
            hours_of(kind),
            project_id,
            Some(kind),
            from_us,
            to_us,
            wanted,
            cells,
        )?;
    }
    Ok(())
}

/// The cells of `table` for one project whose time is in `[from_us, to_us)`,
/// of `kind` (every kind when none), that `wanted` keeps (judged before
/// their user sets are decoded).
#[allow(clippy::too_many_arguments)]
fn read_cells(
    conn: &Connection,
    table: &str,
    project_id: &str,
    kind: Option<CellKind>,
    from_us: i64,
    to_us: i64,
    wanted: &dyn Fn(&RollupCell) -> bool,
    cells: &mut Vec<RollupCell>,
) -> Result<(), StorageError> {
    if from_us >= to_us {
        return Ok(());
    }
    // The table name is one of this module's, never a request's.
    let mut sql = format!(
        "SELECT at_us, kind, type, value, events, users FROM {table}
         WHERE project_id = ? AND at_us >= ? AND at_us < ?"
    );
    let mut params = vec![
        Value::from(project_id.to_owned()),
        from_us.into(),
        to_us.into(),
    ];
    if let Some(kind) = kind {
        sql.push_str(" AND kind = ?");
        params.push(Value::from(kind.as_str().to_owned()));
    }
    let mut statement = conn.prepare(&sql)?;
    for batch in statement.stream_arrow(params_from_iter(params))? {
        let batch = batch?;
        let times = column::<Int64Array>(&batch, 0)?;
        let kinds = column::<StringArray>(&batch, 1)?;
        let types = column::<StringArray>(&batch, 2)?;
        let values = column::<StringArray>(&batch, 3)?;
        let counts = column::<UInt64Array>(&batch, 4)?;
        let users = column::<BinaryArray>(&batch, 5)?;
        for row in 0..batch.num_rows() {
            let mut cell = RollupCell {
                at_us: times.value(row),
                kind: match kind {
                    Some(kind) => kind,
                    None => kind_named(kinds.value(row))?,
                },
                event_type: types.value(row).to_owned(),
                value: (!values.is_null(row)).then(|| values.value(row).to_owned()),
                events: counts.value(row),
                users: RoaringBitmap::new(),
            };
            if !wanted(&cell) {
                continue;
            }
            cell.users = RoaringBitmap::deserialize_unchecked_from(users.value(row))
                .map_err(|e| StorageError::Internal(format!("a rollup cell's users: {e}")))?;
            cells.push(cell);
        }
    }
    Ok(())
}

/// Records, inside the caller's transaction, that the hours of a project's
/// events whose `messageId`s the table `changes` lists must be recomputed
/// from events (their values change).
pub(super) fn mark_changed(
    conn: &Connection,
    project_id: &str,
    changes: &str,
) -> Result<(), StorageError> {
    // `changes` is one of the writer's own tables, never a request's.
    conn.execute(
        &format!(
            "INSERT INTO rollup_dirty
             SELECT DISTINCT e.project_id, epoch_us(e.timestamp) // {HOUR_US} * {HOUR_US}
             FROM events AS e JOIN {changes} AS c ON c.message_id = e.message_id
             WHERE e.project_id = ?"
        ),
        [project_id],
    )?;
    Ok(())
}
