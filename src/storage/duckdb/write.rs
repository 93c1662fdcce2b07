//! The write path: the events of a batch not stored before (asked of the
//! message index) appended (Arrow, columnar) straight into `events` in one
//! transaction with their new users and person links, the persons they
//! touched (for kept sessions) and the rollup cells they add; then their
//! keys added to the message index.

use std::borrow::Cow;

use duckdb::Connection;

use super::append::{append_batch, Table};
use super::errors::building;
use super::message_index::{self, MessageKey};
use super::{batch, in_transaction, rollups, sessions, users, Writer};
use crate::domain::Event;
use crate::storage::StorageError;

/// Writes a batch whose events have distinct `(project, messageId)`; returns how many were new.
pub(super) fn write_batch(writer: &mut Writer, events: &[Event]) -> Result<usize, StorageError> {
    if writer.index_behind {
        message_index::catch_up(&writer.conn, &mut writer.index)?;
        writer.index_behind = false;
    }
    let (fresh, keys) = not_stored(writer, events)?;
    if fresh.is_empty() {
        return Ok(0);
    }
    let write = writer.last_write + 1;
    let assignment = writer.users.assign(&fresh);
    let touched = sessions::pending_spans(&fresh, &assignment, &writer.users);
    let written = write_numbered(&writer.conn, &fresh, &assignment, &touched, write);
    if written.is_err() {
        writer.users.forget(&assignment);
        return written;
    }
    writer.last_write = write;
    writer.checkpoints.after_commit(&writer.conn, fresh.len());
    // The events are stored: a failure here only leaves the index behind
    // `events`, and the next write catches it up before it asks it.
    if let Err(error) = writer.index.record(&keys, Some(write)) {
        tracing::warn!(%error, "adding a write's keys to the message index failed; it catches up at the next write");
        writer.index_behind = true;
    }
    written
}

/// The events of `events` that the store does not hold, with their keys.
fn not_stored<'e>(
    writer: &Writer,
    events: &'e [Event],
) -> Result<(Cow<'e, [Event]>, Vec<MessageKey>), StorageError> {
    let keys: Vec<MessageKey> = events.iter().map(MessageKey::of_event).collect();
    let held = keys
        .iter()
        .map(|key| writer.index.contains(*key))
        .collect::<Result<Vec<bool>, _>>()?;
    if !held.contains(&true) {
        return Ok((Cow::Borrowed(events), keys));
    }
    let (fresh, fresh_keys) = events
        .iter()
        .zip(keys)
        .zip(held)
        .filter(|(_, held)| !held)
        .map(|((event, key), _)| (event.clone(), key))
        .unzip();
    Ok((Cow::Owned(fresh), fresh_keys))
}

/// Appends `events`, none stored before, as write number `write`, in one
/// transaction with the users they brought, the persons they touched for
/// their kept sessions and their rollup cells; returns how many.
fn write_numbered(
    conn: &Connection,
    events: &[Event],
    assignment: &users::Assignment,
    touched: &[sessions::PendingSpan],
    write: u64,
) -> Result<usize, StorageError> {
    let record_batch = batch::events_to_record_batch(events, &assignment.numbers, write)
        .map_err(|e| building("the batch", e))?;
    in_transaction(conn, || {
        users::store(conn, assignment)?;
        sessions::append_pending(conn, touched)?;
        let deltas = rollups::deltas_of(events, &assignment.numbers);
        rollups::append_deltas(conn, &deltas)?;
        append_batch(conn, Table::File("events"), record_batch)?;
        Ok(events.len())
    })
}
