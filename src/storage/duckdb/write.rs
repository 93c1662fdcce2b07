//! The write path: a batch appended (Arrow, columnar) straight into `events`
//! in one transaction with its new users and person links, the persons it
//! touched (for kept sessions) and the rollup cells it adds.

use std::collections::HashSet;

use duckdb::Connection;

use super::append::{append_batch, Table};
use super::errors::building;
use super::{batch, in_transaction, rollups, sessions, users, Writer};
use crate::domain::Event;
use crate::storage::StorageError;

/// Writes a batch whose events have distinct `(project, messageId)`; returns how many were new.
pub(super) fn write_batch(writer: &mut Writer, events: &[Event]) -> Result<usize, StorageError> {
    let assignment = writer.users.assign(events);
    let touched = sessions::pending_spans(events, &assignment, &writer.users);
    let written = write_numbered(&writer.conn, events, &assignment, &touched);
    if written.is_err() {
        writer.users.forget(&assignment);
    }
    written
}

/// The common case, no event stored before, appends straight into `events`:
/// one write. The primary key on `(project_id, message_id)` refuses an append
/// that repeats a stored `messageId` (a retried event), so when the direct
/// append fails, for that or any reason, the transaction is rolled back and
/// the batch goes through the staging table with `INSERT OR IGNORE`, which
/// skips the stored ones by their key. A failure there is the batch's error.
/// Either way the persons it touched are recorded for their kept sessions,
/// and the cells of the events it stored for the rollups.
fn write_numbered(
    conn: &Connection,
    events: &[Event],
    assignment: &users::Assignment,
    touched: &[sessions::PendingSpan],
) -> Result<usize, StorageError> {
    let record_batch = batch::events_to_record_batch(events, &assignment.numbers)
        .map_err(|e| building("the batch", e))?;
    let direct: Result<usize, StorageError> = in_transaction(conn, || {
        users::store(conn, assignment)?;
        sessions::append_pending(conn, touched)?;
        let deltas = rollups::deltas_of(events, &assignment.numbers, |_| true);
        rollups::append_deltas(conn, &deltas)?;
        append_batch(conn, Table::File("events"), record_batch.clone())?;
        Ok(events.len())
    });
    if let Ok(inserted) = direct {
        return Ok(inserted);
    }
    in_transaction(conn, || {
        users::store(conn, assignment)?;
        sessions::append_pending(conn, touched)?;
        append_batch(conn, Table::Temporary("staging"), record_batch)?;
        let inserted = {
            let mut statement =
                conn.prepare("INSERT OR IGNORE INTO events SELECT * FROM staging RETURNING project_id, message_id",
            )?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<HashSet<(String, String)>, _>>()?
        };
        conn.execute("DELETE FROM staging", [])?;
        // Only the events stored now add to the rollups, not the repeated ones.
        let deltas = rollups::deltas_of(events, &assignment.numbers, |event| {
            inserted.contains(&(event.project_id.clone(), event.message_id.clone()))
        });
        rollups::append_deltas(conn, &deltas)?;
        Ok(inserted.len())
    })
}
