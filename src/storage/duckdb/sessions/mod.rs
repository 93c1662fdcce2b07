//! Sessions kept at write time, so that session queries read one row per
//! session instead of sorting every event of their range.
//!
//! A kept session is cut exactly as a session query cuts one (see
//! [`crate::domain::analysis::sessions`]), from the whole timeline of its
//! person, and carries what those queries read: its first and last event's
//! times, its events and page views, its entry and exit pages and its first
//! event's visit columns.
//!
//! - Every write records, in the same transaction, which persons it touched
//!   and over which times (`session_pending`): a new event's person at its
//!   time, and both persons of a merge over all time.
//! - [`keep::refresh`] recuts those persons' sessions near the recorded times
//!   (a merge moves the merged person's kept sessions to the person it
//!   joined and recuts only where they meet that person's own) and clears
//!   the record; [`keep::build_step`] cuts a project's sessions
//!   from all its events, a range of persons at a time, when the project has
//!   none or they were cut with another timeout, then rewrites them in the
//!   order of their start (so that reads of a stretch of time skip the rest).
//! - [`cells`] sums the kept sessions per hour of their start, kept in the
//!   same transactions as the sessions, for the queries they fit;
//!   [`cell_groups`] answers those queries from them.
//! - [`read::stored_sessions`] answers from the kept sessions that lie whole
//!   within the query's range and that no pending write touched, and returns
//!   the events of every other session for the query to fold: answers are
//!   the same whether or not a refresh has run.

mod cell_groups;
mod cells;
mod keep;
mod read;

pub(super) use keep::{append_pending, build_step, pending_spans, refresh, PendingSpan};
pub(super) use read::stored_sessions;

use std::sync::Arc;

use chrono::DateTime;
use duckdb::arrow::array::{ArrayRef, Int64Array, UInt32Array};
use duckdb::Connection;

use crate::domain::analysis::TimelineRequest;
use crate::domain::query::{Acquisition, EventDimension, Filter, TimeRange, VisitAttribute};
use crate::storage::duckdb::append::{append_columns, Table};
use crate::storage::StorageError;

/// Earliest time a window reaches, in microseconds: far enough for any event,
/// near enough that adding a timeout cannot overflow.
const MIN_US: i64 = -(1 << 61);
/// Latest time a window reaches.
const MAX_US: i64 = 1 << 61;

/// The labels a kept session reads on its events: the page, then each visit
/// column, in the order of [`visit_columns`].
fn kept_labels() -> Vec<EventDimension> {
    std::iter::once(EventDimension::Page)
        .chain(VisitAttribute::ALL.into_iter().map(EventDimension::Visit))
        .chain(
            Acquisition::ALL
                .into_iter()
                .map(EventDimension::Acquisition),
        )
        .collect()
}

/// The visit columns of `sessions`, in label order (after the page).
fn visit_columns() -> Vec<&'static str> {
    VisitAttribute::ALL
        .iter()
        .map(|attribute| attribute.as_str())
        .chain(Acquisition::ALL.iter().map(|attribute| attribute.as_str()))
        .collect()
}

/// The timeline that a project's sessions are cut from, over `[lo_us, hi_us]`.
fn kept_timeline(project_id: &str, lo_us: i64, hi_us: i64) -> TimelineRequest {
    let instant = |micros: i64| DateTime::from_timestamp_micros(micros).unwrap_or_default();
    TimelineRequest {
        project_id: project_id.to_owned(),
        range: TimeRange {
            from: instant(lo_us.max(MIN_US)),
            to: instant(hi_us.min(MAX_US).saturating_add(1)),
        },
        filter: None,
        matchers: vec![Filter::is(EventDimension::Type, vec!["page".to_owned()])],
        all_events: true,
        ordered_ties: true,
        labels: kept_labels(),
    }
}

/// A person's times, `[lo_us, hi_us]`, whose sessions are recut or read
/// from events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    person: u32,
    lo_us: i64,
    hi_us: i64,
}

impl Window {
    /// The window of a row `(person, lo_us, hi_us)`.
    fn from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Window> {
        Ok(Window {
            person: row.get(0)?,
            lo_us: row.get(1)?,
            hi_us: row.get(2)?,
        })
    }
}

/// Windows as an inline table `w(person, lo, hi)`, for a few of them: the
/// numbers come from storage, never from a request.
fn windows_table(windows: &[Window]) -> String {
    let rows: Vec<String> = windows
        .iter()
        .map(|w| format!("({}, {}::BIGINT, {}::BIGINT)", w.person, w.lo_us, w.hi_us))
        .collect();
    format!("(VALUES {}) AS w(person, lo, hi)", rows.join(", "))
}

/// Puts `windows` in the connection's temporary table of windows, in place
/// of what it held; returns it as a table `w(person, lo, hi)`. A table, not
/// a list in the statement: DuckDB binds a long list slowly and joins a
/// table fast.
fn loaded(conn: &Connection, windows: &[Window]) -> Result<&'static str, StorageError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS session_windows (person UINTEGER, lo BIGINT, hi BIGINT);
         DELETE FROM temp.session_windows;",
    )?;
    let persons: UInt32Array = windows.iter().map(|w| Some(w.person)).collect();
    let lows: Int64Array = windows.iter().map(|w| Some(w.lo_us)).collect();
    let highs: Int64Array = windows.iter().map(|w| Some(w.hi_us)).collect();
    append_columns(
        conn,
        Table::Temporary("session_windows"),
        "the session windows",
        [
            ("person", Arc::new(persons) as ArrayRef),
            ("lo", Arc::new(lows) as ArrayRef),
            ("hi", Arc::new(highs) as ArrayRef),
        ],
    )?;
    Ok("temp.session_windows AS w")
}

/// The events of a timeline that fall in one of the windows of `source`
/// (a table `w(person, lo, hi)`).
fn within(source: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {source} WHERE w.person = PERSON AND epoch_us(events.timestamp) BETWEEN w.lo AND w.hi)"
    )
}

/// Each window widened to the kept sessions within `timeout_us` of it (a
/// write there may join them): those sessions are recut or read from
/// events with it.
fn widened(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    windows: &[Window],
) -> Result<Vec<Window>, StorageError> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    widened_in(
        conn,
        project_id,
        timeout_us,
        &windows_table(windows),
        windows,
    )
}

/// [`widened`] for `windows` as the table `source` (`w(person, lo, hi)`).
fn widened_in(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    source: &str,
    windows: &[Window],
) -> Result<Vec<Window>, StorageError> {
    // The hull of the windows lets the scan of sessions skip row groups.
    let lo_us = windows.iter().map(|w| w.lo_us).min().unwrap_or(MIN_US);
    let hi_us = windows.iter().map(|w| w.hi_us).max().unwrap_or(MAX_US);
    let sql = format!(
        "SELECT w.person, least(w.lo, coalesce(min(s.start_us), w.lo)), greatest(w.hi, coalesce(max(s.end_us), w.hi))
         FROM {source} LEFT JOIN (
             SELECT person, start_us, end_us FROM sessions
             WHERE project_id = ? AND end_us >= ? AND start_us <= ?
           ) AS s
           ON s.person = w.person AND s.end_us >= w.lo - ? AND s.start_us <= w.hi + ?
         GROUP BY w.person, w.lo, w.hi"
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(
        duckdb::params![
            project_id,
            lo_us.saturating_sub(timeout_us),
            hi_us.saturating_add(timeout_us),
            timeout_us,
            timeout_us
        ],
        Window::from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A project's kept-sessions timeout, when its sessions are built.
fn ready_timeout(conn: &Connection, project_id: &str) -> Result<Option<i64>, StorageError> {
    let mut statement =
        conn.prepare("SELECT timeout_us FROM session_state WHERE project_id = ? AND ready")?;
    let mut rows = statement.query([project_id])?;
    Ok(match rows.next()? {
        Some(row) => Some(row.get(0)?),
        None => None,
    })
}

/// A project's pending windows, one per person (the hull of its spans).
fn pending_windows(conn: &Connection, project_id: &str) -> Result<Vec<Window>, StorageError> {
    let mut statement = conn.prepare(
        "SELECT person, min(lo_us), max(hi_us) FROM session_pending
         WHERE project_id = ? GROUP BY person ORDER BY person",
    )?;
    let rows = statement.query_map([project_id], |row| {
        Ok(Window {
            person: row.get(0)?,
            lo_us: row.get::<_, i64>(1)?.max(MIN_US),
            hi_us: row.get::<_, i64>(2)?.min(MAX_US),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
