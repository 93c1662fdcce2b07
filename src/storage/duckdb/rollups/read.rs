//! The read side of rollups: an event query answered from cells.

use duckdb::Connection;

use super::{event_cells, read_cells, HOUR_US};
use crate::domain::analysis::rollup::{PersonLinks, RollupCell};
use crate::domain::query::{EventQuery, QueryRows};
use crate::storage::StorageError;

/// Whether a project's cells are built.
fn ready(conn: &Connection, project_id: &str) -> Result<bool, StorageError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM rollup_state WHERE project_id = ? AND ready)",
        [project_id],
        |row| row.get(0),
    )?)
}

/// The project's person links.
fn person_links(conn: &Connection, project_id: &str) -> Result<PersonLinks, StorageError> {
    let mut statement =
        conn.prepare("SELECT user_index, person_index FROM person_links WHERE project_id = ?")?;
    let rows = statement.query_map([project_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The answer of an event query from the project's cells, in the caller's
/// snapshot: the kept cells and deltas of the hours that its range covers
/// whole, and the events of the hours its ends cut. `None` when the query
/// does not fit cells, the project's are not built, or the range covers no
/// whole hour (its events are then few).
pub fn answer(conn: &Connection, query: &EventQuery) -> Result<Option<QueryRows>, StorageError> {
    if !query.fits_rollups() || !ready(conn, &query.project_id)? {
        return Ok(None);
    }
    let (from_us, to_us) = (
        query.range.from.timestamp_micros(),
        query.range.to.timestamp_micros(),
    );
    let first_hour = from_us.div_euclid(HOUR_US) * HOUR_US
        + if from_us.rem_euclid(HOUR_US) == 0 {
            0
        } else {
            HOUR_US
        };
    let end_hour = to_us.div_euclid(HOUR_US) * HOUR_US;
    if first_hour >= end_hour {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let wanted = |cell: &RollupCell| query.admits(cell);
    let mut cells = Vec::new();
    let kept = if query.reads_totals() {
        "rollup_totals"
    } else {
        "event_rollups"
    };
    for table in [kept, "rollup_deltas"] {
        read_cells(
            conn,
            table,
            &query.project_id,
            first_hour,
            end_hour,
            &wanted,
            &mut cells,
        )?;
    }
    for (from, to) in [(from_us, first_hour), (end_hour, to_us)] {
        if from < to {
            cells.extend(event_cells(conn, &query.project_id, from, to, false)?);
        }
    }
    let links = person_links(conn, &query.project_id)?;
    let read_us = started.elapsed().as_micros();
    let count = cells.len();
    let rows = query.answer_rollups(cells, &links);
    tracing::debug!(
        cells = count,
        links = links.len(),
        read_us,
        answer_us = started.elapsed().as_micros() - read_us,
        "answered from rollups"
    );
    Ok(Some(rows))
}
