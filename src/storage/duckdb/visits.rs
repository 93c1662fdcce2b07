//! Visit columns set on stored events (events stored before enrichment
//! derived them): the changes go to a temporary table of the writer's
//! connection and into `events` by one join, so that a call of thousands
//! reads `events` once whatever their number.

use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, StringArray};
use duckdb::Connection;

use super::append::{append_columns, Table};
use super::{in_transaction, rollups};
use crate::domain::visit::{VisitFields, COLUMNS};
use crate::storage::StorageError;

/// The writer's temporary table of changes.
const CHANGES: &str = "visit_changes";

/// Creates the temporary table of changes on the writer's connection.
pub(super) fn prepare(conn: &Connection) -> Result<(), StorageError> {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|name| format!("{name} VARCHAR"))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE {CHANGES} (message_id VARCHAR NOT NULL, {});",
        columns.join(", ")
    ))?;
    Ok(())
}

/// Sets the visit columns of `project_id`'s events named in `visits`, in one
/// transaction, and marks their kept sessions and rollup hours to be
/// recomputed (both read these columns).
pub(super) fn update(
    conn: &Connection,
    project_id: &str,
    visits: &[(String, VisitFields)],
) -> Result<(), StorageError> {
    let message_ids: ArrayRef = Arc::new(StringArray::from_iter_values(
        visits.iter().map(|(message_id, _)| message_id.as_str()),
    ));
    let rows: Vec<_> = visits.iter().map(|(_, visit)| visit.columns()).collect();
    let values = COLUMNS.iter().enumerate().map(|(column, name)| {
        let array: ArrayRef =
            Arc::new(StringArray::from_iter(rows.iter().map(|row| row[column].1)));
        (*name, array)
    });
    let assignments: Vec<String> = COLUMNS
        .iter()
        .map(|name| format!("{name} = c.{name}"))
        .collect();
    in_transaction(conn, || {
        append_columns(
            conn,
            Table::Temporary(CHANGES),
            "the visit changes",
            std::iter::once(("message_id", message_ids)).chain(values),
        )?;
        conn.execute(
            &format!(
                "INSERT INTO session_pending
                 SELECT e.project_id, coalesce(l.person_index, e.user_index),
                        epoch_us(e.timestamp), epoch_us(e.timestamp)
                 FROM events AS e
                 JOIN {CHANGES} AS c ON c.message_id = e.message_id
                 LEFT JOIN person_links AS l
                   ON l.project_id = e.project_id AND l.user_index = e.user_index
                 WHERE e.project_id = ?"
            ),
            [project_id],
        )?;
        rollups::mark_changed(conn, project_id, CHANGES)?;
        conn.execute(
            &format!(
                "UPDATE events SET {} FROM {CHANGES} AS c
                 WHERE events.project_id = ? AND events.message_id = c.message_id",
                assignments.join(", ")
            ),
            [project_id],
        )?;
        conn.execute_batch(&format!("DELETE FROM {CHANGES};"))?;
        Ok(())
    })
}
