//! The write side of kept sessions: what a write touched, the refresh that
//! recuts it, and the build of a project's sessions from all its events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use duckdb::Connection;

use super::cells::{self, Touched};
use super::{kept_timeline, loaded, visit_columns, widened_in, within, Window, MAX_US, MIN_US};
use crate::domain::analysis::persons;
use crate::domain::analysis::sessions::{summarise_sessions, SessionSummary};
use crate::domain::Event;
use crate::storage::duckdb::append::{append_columns, Table};
use crate::storage::duckdb::query::{collect_timeline, for_each_timeline_chunk};
use crate::storage::duckdb::users::{Assignment, UserDirectory};
use crate::storage::StorageError;

/// Persons whose sessions one refresh statement recuts, at most.
const WINDOWS_PER_RECUT: usize = 5_000;
/// Persons whose sessions one refresh recuts, at most: a refresh holds the
/// writer, so under heavy ingest the rest wait for the next one (reads read
/// their events meanwhile).
const WINDOWS_PER_REFRESH: usize = 5_000;
/// Events a build step cuts, about.
const EVENTS_PER_BUILD_STEP: u64 = 2_000_000;
/// Sessions a build step holds in memory before appending them.
const SESSIONS_PER_APPEND: usize = 20_000;

/// A person's times that a write touched, in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSpan {
    project_id: String,
    person: u32,
    lo_us: i64,
    hi_us: i64,
}

/// What a batch touches: each event's person (as the batch leaves it) over
/// the times of its events, and both persons of each merge over all time
/// (a row of its own, which marks the merge).
pub fn pending_spans(
    events: &[Event],
    assignment: &Assignment,
    users: &UserDirectory,
) -> Vec<PendingSpan> {
    let mut spans: HashMap<(&str, u32), (i64, i64)> = HashMap::new();
    for (event, number) in events.iter().zip(&assignment.numbers) {
        let person = users.person(&event.project_id, *number);
        let micros = event.timestamp.timestamp_micros();
        let span = spans
            .entry((event.project_id.as_str(), person))
            .or_insert((micros, micros));
        span.0 = span.0.min(micros);
        span.1 = span.1.max(micros);
    }
    let mut merged: HashSet<(&str, u32)> = HashSet::new();
    for link in &assignment.links {
        let (project, before, after) = link.persons();
        merged.extend([(project, before), (project, after)]);
    }
    let merges = merged.into_iter().map(|key| (key, (MIN_US, MAX_US)));
    spans
        .into_iter()
        .chain(merges)
        .map(|((project_id, person), (lo_us, hi_us))| PendingSpan {
            project_id: project_id.to_owned(),
            person,
            lo_us,
            hi_us,
        })
        .collect()
}

/// Records spans in `session_pending` (inside the caller's transaction).
pub fn append_pending(conn: &Connection, spans: &[PendingSpan]) -> Result<(), StorageError> {
    if spans.is_empty() {
        return Ok(());
    }
    let projects: StringArray = spans.iter().map(|s| Some(s.project_id.as_str())).collect();
    let persons: UInt32Array = spans.iter().map(|s| Some(s.person)).collect();
    let lows: Int64Array = spans.iter().map(|s| Some(s.lo_us)).collect();
    let highs: Int64Array = spans.iter().map(|s| Some(s.hi_us)).collect();
    append_columns(
        conn,
        Table::File("session_pending"),
        "the pending sessions",
        [
            ("project_id", Arc::new(projects) as ArrayRef),
            ("person", Arc::new(persons) as ArrayRef),
            ("lo_us", Arc::new(lows) as ArrayRef),
            ("hi_us", Arc::new(highs) as ArrayRef),
        ],
    )?;
    Ok(())
}

/// Recuts the sessions that pending writes touched, in every project whose
/// sessions are kept (up to [`WINDOWS_PER_REFRESH`] persons each), and clears
/// what it handled; drops the pending rows of projects whose sessions are not
/// kept. One transaction; returns the persons recut.
///
/// A merge moves a whole person into another, so its kept sessions stay as
/// they are under the person it joined, except where they now come within
/// the timeout of that person's own sessions: only those stretches are
/// recut from events, instead of both persons' whole timelines.
pub fn refresh(conn: &Connection) -> Result<usize, StorageError> {
    super::super::in_transaction(conn, || {
        let mut statement = conn.prepare(
            "SELECT DISTINCT p.project_id, s.timeout_us FROM session_pending AS p
             JOIN session_state AS s USING (project_id)",
        )?;
        let projects = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut recut = 0;
        for (project_id, timeout_us) in projects {
            let mut pending = pending_persons(conn, &project_id)?;
            pending.truncate(WINDOWS_PER_REFRESH);
            let mut touched = Touched::default();
            relabel_merged(conn, &project_id, &pending, &mut touched)?;
            let (merged, plain): (Vec<_>, Vec<_>) = pending.iter().partition(|p| p.merged);
            let windows: Vec<Window> = plain.iter().filter_map(|p| p.window()).collect();
            for windows in windows.chunks(WINDOWS_PER_RECUT) {
                let (appended, others) = split_appends(conn, &project_id, timeout_us, windows)?;
                append_windows(conn, &project_id, timeout_us, appended, &mut touched)?;
                recut_windows(conn, &project_id, timeout_us, &others, &mut touched)?;
            }
            let mut windows = joined_stretches(conn, &project_id, timeout_us, &merged)?;
            windows.extend(merged.iter().filter_map(|p| p.window()));
            for windows in coalesced(windows, timeout_us).chunks(WINDOWS_PER_RECUT) {
                recut_windows(conn, &project_id, timeout_us, windows, &mut touched)?;
            }
            cells::recompute(conn, &project_id, &touched)?;
            // The persons are storage's numbers, not a request's.
            let stored: Vec<String> = pending
                .iter()
                .flat_map(|p| &p.stored)
                .map(u32::to_string)
                .collect();
            if !stored.is_empty() {
                conn.execute(
                    &format!(
                        "DELETE FROM session_pending WHERE project_id = ? AND person IN ({})",
                        stored.join(", ")
                    ),
                    [&project_id],
                )?;
            }
            recut += pending.len();
        }
        conn.execute(
            "DELETE FROM session_pending WHERE project_id NOT IN (SELECT project_id FROM session_state)",
            [],
        )?;
        Ok(recut)
    })
}

/// What the pending rows of one person (as persons are now) ask for.
#[derive(Debug)]
struct PendingPerson {
    /// The person now.
    person: u32,
    /// The persons the rows were recorded under: itself, and the persons
    /// merged into it since.
    stored: Vec<u32>,
    /// Whether a merge touched it.
    merged: bool,
    /// The hull of the times its new events touched, if any.
    span: Option<(i64, i64)>,
}

impl PendingPerson {
    fn window(&self) -> Option<Window> {
        self.span.map(|(lo_us, hi_us)| Window {
            person: self.person,
            lo_us,
            hi_us,
        })
    }
}

/// A project's pending rows by person as persons are now (a merge's rows
/// span all time: see [`pending_spans`]), in person order.
fn pending_persons(
    conn: &Connection,
    project_id: &str,
) -> Result<Vec<PendingPerson>, StorageError> {
    let mut statement = conn.prepare(&format!(
        "SELECT coalesce(l.person_index, p.person), p.person, bool_or(p.lo_us <= {MIN_US}),
                min(p.lo_us) FILTER (WHERE p.lo_us > {MIN_US}),
                max(p.hi_us) FILTER (WHERE p.lo_us > {MIN_US})
         FROM session_pending AS p LEFT JOIN person_links AS l
           ON l.project_id = p.project_id AND l.user_index = p.person
         WHERE p.project_id = ? GROUP BY ALL ORDER BY 1, 2"
    ))?;
    let mut rows = statement.query([project_id])?;
    let mut persons: Vec<PendingPerson> = Vec::new();
    while let Some(row) = rows.next()? {
        let person: u32 = row.get(0)?;
        let stored: u32 = row.get(1)?;
        let merged: bool = row.get(2)?;
        let lo: Option<i64> = row.get(3)?;
        let hi: Option<i64> = row.get(4)?;
        let span = lo.zip(hi).map(|(lo, hi)| (lo, hi.min(MAX_US)));
        match persons.last_mut() {
            Some(last) if last.person == person => {
                last.stored.push(stored);
                last.merged |= merged;
                last.span = match (last.span, span) {
                    (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                    (a, b) => a.or(b),
                };
            }
            _ => persons.push(PendingPerson {
                person,
                stored: vec![stored],
                merged,
                span,
            }),
        }
    }
    Ok(persons)
}

/// Moves the kept sessions of persons merged into another to that person.
fn relabel_merged(
    conn: &Connection,
    project_id: &str,
    pending: &[PendingPerson],
    touched: &mut Touched,
) -> Result<(), StorageError> {
    let moves: Vec<String> = pending
        .iter()
        .flat_map(|p| {
            p.stored
                .iter()
                .filter(move |stored| **stored != p.person)
                .map(move |stored| format!("({stored}, {})", p.person))
        })
        .collect();
    if moves.is_empty() {
        return Ok(());
    }
    touched.returned(
        conn,
        &format!(
            "UPDATE sessions SET person = m.person
             FROM (VALUES {}) AS m(stored, person)
             WHERE sessions.project_id = ? AND sessions.person = m.stored
             RETURNING start_us",
            moves.join(", ")
        ),
        [project_id],
    )
}

/// The stretches of merged persons' kept sessions that come within the
/// timeout of each other (sessions once of different persons): each is
/// one session or more now, to recut from events. A kept session apart
/// from every other stays what it is.
fn joined_stretches(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    merged: &[&PendingPerson],
) -> Result<Vec<Window>, StorageError> {
    if merged.is_empty() {
        return Ok(Vec::new());
    }
    let persons: Vec<String> = merged.iter().map(|p| p.person.to_string()).collect();
    let mut statement = conn.prepare(&format!(
        "SELECT person, start_us, end_us FROM sessions
         WHERE project_id = ? AND person IN ({}) ORDER BY person, start_us",
        persons.join(", ")
    ))?;
    let sessions = statement.query_map([project_id], |row| {
        Ok(Window {
            person: row.get(0)?,
            lo_us: row.get(1)?,
            hi_us: row.get(2)?,
        })
    })?;
    let mut stretches = Vec::new();
    let mut current: Option<(Window, usize)> = None;
    for session in sessions {
        let session = session?;
        current = match current {
            Some((stretch, count))
                if stretch.person == session.person
                    && session.lo_us - stretch.hi_us <= timeout_us =>
            {
                let hi_us = stretch.hi_us.max(session.hi_us);
                Some((Window { hi_us, ..stretch }, count + 1))
            }
            finished => {
                if let Some((stretch, count)) = finished {
                    if count > 1 {
                        stretches.push(stretch);
                    }
                }
                Some((session, 1))
            }
        };
    }
    if let Some((stretch, count)) = current {
        if count > 1 {
            stretches.push(stretch);
        }
    }
    Ok(stretches)
}

/// Windows in person and time order, a person's windows within the
/// timeout of each other made one: whatever each one's recut reads, it
/// never reaches a session of another.
fn coalesced(mut windows: Vec<Window>, timeout_us: i64) -> Vec<Window> {
    windows.sort_by_key(|w| (w.person, w.lo_us));
    let mut coalesced: Vec<Window> = Vec::with_capacity(windows.len());
    for window in windows {
        match coalesced.last_mut() {
            Some(last)
                if last.person == window.person && window.lo_us - last.hi_us <= timeout_us =>
            {
                last.hi_us = last.hi_us.max(window.hi_us);
            }
            _ => coalesced.push(window),
        }
    }
    coalesced
}

/// A window whose events all come after every kept session of its person
/// (the usual case: a visitor's new events), with the last kept session when
/// it ends within the timeout of the window: those events extend it.
struct Appended {
    window: Window,
    last: Option<SessionSummary>,
}

/// Sorts windows into those whose events follow every kept session of their
/// person ([`Appended`]) and the others.
fn split_appends(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    windows: &[Window],
) -> Result<(Vec<Appended>, Vec<Window>), StorageError> {
    let visit = visit_columns()
        .iter()
        .map(|column| format!("s.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT s.person, s.start_us, s.end_us, s.events, s.page_views, s.entry_page, s.exit_page, {visit}
         FROM sessions AS s JOIN {} ON w.person = s.person
         WHERE s.project_id = ? AND s.end_us >= w.lo - ?",
        loaded(conn, windows)?
    );
    let mut statement = conn.prepare(&sql)?;
    let columns = visit_columns().len();
    let mut rows = statement.query(duckdb::params![project_id, timeout_us])?;
    let mut near: HashMap<u32, Vec<SessionSummary>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let person: u32 = row.get(0)?;
        let mut first_labels = vec![None];
        for i in 0..columns {
            first_labels.push(row.get(7 + i)?);
        }
        near.entry(person).or_default().push(SessionSummary {
            person: u64::from(person),
            start_us: row.get(1)?,
            end_us: row.get(2)?,
            events: row.get(3)?,
            page_views: row.get(4)?,
            first_labels,
            entry_page: row.get(5)?,
            exit_page: row.get(6)?,
        });
    }
    let (mut appended, mut others) = (Vec::new(), Vec::new());
    for window in windows {
        let mut sessions = near.remove(&window.person).unwrap_or_default();
        if sessions.iter().all(|s| s.end_us < window.lo_us) && sessions.len() <= 1 {
            appended.push(Appended {
                window: *window,
                last: sessions.pop(),
            });
        } else {
            others.push(*window);
        }
    }
    Ok((appended, others))
}

/// Cuts the events of appended windows, the first session joining the last
/// kept one when within the timeout of it.
fn append_windows(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    appended: Vec<Appended>,
    touched: &mut Touched,
) -> Result<(), StorageError> {
    let windows: Vec<Window> = appended.iter().map(|a| a.window).collect();
    let Some(lo_us) = windows.iter().map(|w| w.lo_us).min() else {
        return Ok(());
    };
    let hi_us = windows.iter().map(|w| w.hi_us).max().unwrap_or(lo_us);
    let request = kept_timeline(project_id, lo_us, hi_us);
    let events = collect_timeline(conn, &request, &within(loaded(conn, &windows)?))?;
    let mut last: HashMap<u64, SessionSummary> = appended
        .into_iter()
        .filter_map(|a| a.last.map(|last| (last.person, last)))
        .collect();
    let mut replaced = Vec::new();
    let mut sessions = Vec::new();
    for person in persons(&events) {
        let mut cut = cut(person, timeout_us).into_iter();
        let Some(first) = cut.next() else {
            continue;
        };
        match last.remove(&first.person) {
            Some(kept) if first.start_us - kept.end_us <= timeout_us => {
                replaced.push(Window {
                    person: u32::try_from(kept.person).unwrap_or(u32::MAX),
                    lo_us: kept.start_us,
                    hi_us: kept.start_us,
                });
                sessions.push(joined(kept, first));
            }
            _ => sessions.push(first),
        }
        sessions.extend(cut);
    }
    if !replaced.is_empty() {
        touched.returned(
            conn,
            &format!(
                "DELETE FROM sessions AS s USING {} WHERE s.project_id = ? AND s.person = w.person AND s.start_us = w.lo RETURNING s.start_us",
                loaded(conn, &replaced)?
            ),
            [project_id],
        )?;
    }
    write_sessions(conn, project_id, &sessions, touched)
}

/// A kept session extended by the session that follows it within the timeout.
fn joined(kept: SessionSummary, next: SessionSummary) -> SessionSummary {
    SessionSummary {
        end_us: next.end_us,
        events: kept.events + next.events,
        page_views: kept.page_views + next.page_views,
        entry_page: if kept.page_views > 0 {
            kept.entry_page
        } else {
            next.entry_page
        },
        exit_page: if next.page_views > 0 {
            next.exit_page
        } else {
            kept.exit_page
        },
        ..kept
    }
}

/// Replaces the kept sessions within (widened) `windows` by those cut from
/// their events now.
fn recut_windows(
    conn: &Connection,
    project_id: &str,
    timeout_us: i64,
    windows: &[Window],
    touched: &mut Touched,
) -> Result<(), StorageError> {
    if windows.is_empty() {
        return Ok(());
    }
    let windows = widened_in(
        conn,
        project_id,
        timeout_us,
        loaded(conn, windows)?,
        windows,
    )?;
    // Widened windows of one person may overlap: made one, each event is
    // read once.
    let windows = coalesced(windows, 0);
    let Some(lo_us) = windows.iter().map(|w| w.lo_us).min() else {
        return Ok(());
    };
    let hi_us = windows.iter().map(|w| w.hi_us).max().unwrap_or(lo_us);
    let source = loaded(conn, &windows)?;
    touched.returned(
        conn,
        &format!(
            "DELETE FROM sessions AS s USING {source} WHERE s.project_id = ? AND w.person = s.person AND s.end_us >= w.lo AND s.start_us <= w.hi RETURNING s.start_us"
        ),
        [project_id],
    )?;
    let request = kept_timeline(project_id, lo_us, hi_us);
    let events = collect_timeline(conn, &request, &within(source))?;
    write_sessions(conn, project_id, &cut(&events, timeout_us), touched)
}

fn cut(events: &[crate::domain::analysis::TimelineEvent], timeout_us: i64) -> Vec<SessionSummary> {
    let timeout = chrono::Duration::microseconds(timeout_us);
    persons(events)
        .flat_map(|person| summarise_sessions(person, timeout, 0))
        .collect()
}

/// Cuts a timeline that comes in chunks into sessions, each person once
/// complete (the last person of a chunk waits for the next chunk).
struct Cutter {
    timeout_us: i64,
    person: Vec<crate::domain::analysis::TimelineEvent>,
    sessions: Vec<SessionSummary>,
}

impl Cutter {
    fn new(timeout_us: i64) -> Self {
        Cutter {
            timeout_us,
            person: Vec::new(),
            sessions: Vec::new(),
        }
    }

    fn push(&mut self, chunk: Vec<crate::domain::analysis::TimelineEvent>) {
        for event in chunk {
            if self
                .person
                .last()
                .is_some_and(|last| last.person != event.person)
            {
                let person = std::mem::take(&mut self.person);
                self.sessions.extend(cut(&person, self.timeout_us));
            }
            self.person.push(event);
        }
    }

    fn finish(mut self) -> Vec<SessionSummary> {
        let person = std::mem::take(&mut self.person);
        self.sessions.extend(cut(&person, self.timeout_us));
        self.sessions
    }
}

/// Appends sessions to `sessions` (inside the caller's transaction),
/// recording them in `touched`.
fn write_sessions(
    conn: &Connection,
    project_id: &str,
    sessions: &[SessionSummary],
    touched: &mut Touched,
) -> Result<(), StorageError> {
    if sessions.is_empty() {
        return Ok(());
    }
    for session in sessions {
        touched.session(session.start_us);
    }
    let count = |value: u64| Some(u32::try_from(value).unwrap_or(u32::MAX));
    let text = |values: Vec<Option<&str>>| Arc::new(StringArray::from(values)) as ArrayRef;
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("project_id", text(vec![Some(project_id); sessions.len()])),
        (
            "person",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| Some(u32::try_from(s.person).unwrap_or(u32::MAX)))
                    .collect::<UInt32Array>(),
            ),
        ),
        (
            "timestamp",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| Some(s.start_us))
                    .collect::<TimestampMicrosecondArray>(),
            ),
        ),
        (
            "start_us",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| Some(s.start_us))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "end_us",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| Some(s.end_us))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "events",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| count(s.events))
                    .collect::<UInt32Array>(),
            ),
        ),
        (
            "page_views",
            Arc::new(
                sessions
                    .iter()
                    .map(|s| count(s.page_views))
                    .collect::<UInt32Array>(),
            ),
        ),
        (
            "entry_page",
            text(sessions.iter().map(|s| s.entry_page.as_deref()).collect()),
        ),
        (
            "exit_page",
            text(sessions.iter().map(|s| s.exit_page.as_deref()).collect()),
        ),
    ];
    for (i, name) in visit_columns().into_iter().enumerate() {
        let values = sessions
            .iter()
            .map(|s| s.first_labels.get(i + 1).and_then(Option::as_deref))
            .collect();
        columns.push((name, text(values)));
    }
    append_columns(conn, Table::File("sessions"), "the kept sessions", columns)?;
    Ok(())
}

/// Takes a project's kept sessions one step towards ready under `timeout`:
/// starts over when they were cut with another timeout (or never), else
/// cuts the next range of persons from all their events, streamed on
/// `reader` (which sees what `conn` has committed: the caller holds the
/// writer) so that the step's memory holds a few thousand sessions whatever
/// its size. Once they are ready, the steps build their cells
/// ([`cells::build_step`]). Returns whether both are.
pub fn build_step(
    conn: &Connection,
    reader: &Connection,
    project_id: &str,
    timeout: chrono::Duration,
) -> Result<bool, StorageError> {
    let timeout_us = timeout.num_microseconds().unwrap_or(i64::MAX);
    super::super::in_transaction(conn, || {
        let state: Option<(i64, bool, u32, bool)> = {
            let mut statement = conn.prepare(
                "SELECT timeout_us, ready, next_person, ordered FROM session_state WHERE project_id = ?",
            )?;
            let mut rows = statement.query([project_id])?;
            match rows.next()? {
                Some(row) => Some((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                None => None,
            }
        };
        let next_person = match state {
            Some((stored, true, _, false)) if stored == timeout_us => {
                order_by_start(conn, project_id)?;
                // Its cells are built by the next steps.
                return Ok(false);
            }
            Some((stored, true, _, true)) if stored == timeout_us => {
                return cells::build_step(conn, project_id);
            }
            Some((stored, false, next, _)) if stored == timeout_us => next,
            _ => {
                conn.execute("DELETE FROM sessions WHERE project_id = ?", [project_id])?;
                cells::reset(conn, project_id)?;
                conn.execute(
                    "DELETE FROM session_pending WHERE project_id = ?",
                    [project_id],
                )?;
                conn.execute(
                    "INSERT OR REPLACE INTO session_state (project_id, timeout_us, ready, next_person, ordered)
                     VALUES (?, ?, false, 1, false)",
                    duckdb::params![project_id, timeout_us],
                )?;
                return Ok(false);
            }
        };
        let (users, events): (Option<u32>, i64) = conn.query_row(
            "SELECT (SELECT max(user_index) FROM users WHERE project_id = ?),
                    (SELECT count(*) FROM events WHERE project_id = ?)",
            [project_id, project_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let last_person = users.unwrap_or(0);
        if next_person > last_person {
            conn.execute(
                "UPDATE session_state SET ready = true WHERE project_id = ?",
                [project_id],
            )?;
            // Its sessions are ordered, then its cells built, by the next steps.
            return Ok(false);
        }
        let per_person = (u64::try_from(events).unwrap_or(0) / u64::from(last_person)).max(1);
        let step = u32::try_from(EVENTS_PER_BUILD_STEP / per_person)
            .unwrap_or(u32::MAX)
            .max(1);
        let end = next_person.saturating_add(step);
        conn.execute(
            "DELETE FROM sessions WHERE project_id = ? AND person >= ? AND person < ?",
            duckdb::params![project_id, next_person, end],
        )?;
        let request = kept_timeline(project_id, MIN_US, MAX_US);
        let restriction = format!("PERSON >= {next_person} AND PERSON < {end}");
        let mut cutter = Cutter::new(timeout_us);
        // No cells exist while the sessions are built.
        let mut touched = Touched::default();
        for_each_timeline_chunk(reader, &request, &restriction, |chunk| {
            cutter.push(chunk);
            if cutter.sessions.len() >= SESSIONS_PER_APPEND {
                let sessions = std::mem::take(&mut cutter.sessions);
                write_sessions(conn, project_id, &sessions, &mut touched)?;
            }
            Ok(())
        })?;
        write_sessions(conn, project_id, &cutter.finish(), &mut touched)?;
        conn.execute(
            "UPDATE session_state SET next_person = ? WHERE project_id = ?",
            duckdb::params![end, project_id],
        )?;
        Ok(false)
    })
}

/// Rewrites a project's sessions in the order of their start. The build
/// writes them person by person; in time order, a read of a stretch of time
/// (the sessions crossing an end of a range, a day's cells) skips every row
/// group outside it. Later writes append sessions of recent times, which
/// keeps the order mostly intact.
fn order_by_start(conn: &Connection, project_id: &str) -> Result<(), StorageError> {
    conn.execute(
        "CREATE TEMP TABLE sessions_by_start AS
         SELECT * FROM sessions WHERE project_id = ? ORDER BY start_us",
        [project_id],
    )?;
    conn.execute("DELETE FROM sessions WHERE project_id = ?", [project_id])?;
    conn.execute("INSERT INTO sessions SELECT * FROM sessions_by_start", [])?;
    conn.execute("DROP TABLE sessions_by_start", [])?;
    conn.execute(
        "UPDATE session_state SET ordered = true WHERE project_id = ?",
        [project_id],
    )?;
    Ok(())
}
