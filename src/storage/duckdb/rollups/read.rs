//! The read side of rollups: an event query answered from cells.

use std::collections::HashSet;

use duckdb::Connection;

use super::{day_of, event_cells, hours_of, read_cells, DAYS, DELTAS};
use crate::domain::analysis::rollup::{PersonLinks, RollupCell, DAY_US, HOUR_US};
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

/// The hours in `[from_us, to_us)` of a project whose cells are being
/// recomputed from events.
fn changed_hours(
    conn: &Connection,
    project_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<HashSet<i64>, StorageError> {
    let mut statement = conn.prepare(
        "SELECT DISTINCT at_us FROM rollup_dirty
         WHERE project_id = ? AND at_us >= ? AND at_us < ?",
    )?;
    let rows = statement.query_map(duckdb::params![project_id, from_us, to_us], |row| {
        row.get(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where the events of a range are read from.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// Spans of kept day cells (whole days, none with a changed hour).
    days: Vec<(i64, i64)>,
    /// Spans of kept hour cells; their deltas are read over the whole range.
    hours: Vec<(i64, i64)>,
    /// Spans read from events: the ends that cut hours, and changed hours.
    events: Vec<(i64, i64)>,
}

/// Plans the reading of `[from_us, to_us)`: whole hours from cells (whole
/// UTC days from day cells, with `days`), the rest from events.
fn plan(from_us: i64, to_us: i64, days: bool, changed: &HashSet<i64>) -> Plan {
    let ceil = |micros: i64, unit: i64| {
        micros.div_euclid(unit) * unit + unit * i64::from(micros.rem_euclid(unit) != 0)
    };
    let first_hour = ceil(from_us, HOUR_US).min(to_us);
    let end_hour = (to_us.div_euclid(HOUR_US) * HOUR_US).max(first_hour);
    let mut plan = Plan::default();
    let mut events = vec![(from_us, first_hour), (end_hour, to_us)];
    let mut hours = |plan: &mut Plan, from: i64, to: i64| {
        let mut start = from;
        for hour in (from..to).step_by(HOUR_US as usize) {
            if changed.contains(&hour) {
                plan.hours.push((start, hour));
                events.push((hour, hour + HOUR_US));
                start = hour + HOUR_US;
            }
        }
        plan.hours.push((start, to));
    };
    let (first_day, end_day) = (
        ceil(first_hour, DAY_US),
        end_hour.div_euclid(DAY_US) * DAY_US,
    );
    if days && first_day < end_day {
        hours(&mut plan, first_hour, first_day);
        let mut start = first_day;
        for day in (first_day..end_day).step_by(DAY_US as usize) {
            let touched = changed.iter().any(|hour| day_of(*hour) == day);
            if touched {
                plan.days.push((start, day));
                hours(&mut plan, day, day + DAY_US);
                start = day + DAY_US;
            }
        }
        plan.days.push((start, end_day));
        hours(&mut plan, end_day, end_hour);
    } else {
        hours(&mut plan, first_hour, end_hour);
    }
    let keep = |spans: &mut Vec<(i64, i64)>| spans.retain(|(from, to)| from < to);
    keep(&mut plan.days);
    keep(&mut plan.hours);
    keep(&mut events);
    events.sort_unstable();
    plan.events = events;
    plan
}

/// The answer of an event query from the project's cells, in the caller's
/// snapshot (see the module). `None` when the query does not fit cells, the
/// project's are not built, or the range covers no whole hour (its events
/// are then few).
pub fn answer(conn: &Connection, query: &EventQuery) -> Result<Option<QueryRows>, StorageError> {
    let Some(kind) = query.rollup_kind() else {
        return Ok(None);
    };
    if !ready(conn, &query.project_id)? {
        return Ok(None);
    }
    let project_id = &query.project_id;
    let (from_us, to_us) = (
        query.range.from.timestamp_micros(),
        query.range.to.timestamp_micros(),
    );
    let changed = changed_hours(conn, project_id, from_us - HOUR_US, to_us)?;
    let plan = plan(from_us, to_us, query.reads_days(), &changed);
    if plan.hours.is_empty() && plan.days.is_empty() {
        return Ok(None);
    }
    let wanted = |cell: &RollupCell| query.admits(cell);
    let unchanged = |cell: &RollupCell| !changed.contains(&cell.at_us) && query.admits(cell);
    let mut cells = Vec::new();
    for (from, to) in &plan.days {
        read_cells(
            conn,
            DAYS,
            project_id,
            Some(kind),
            *from,
            *to,
            &wanted,
            &mut cells,
        )?;
    }
    for (from, to) in &plan.hours {
        read_cells(
            conn,
            hours_of(kind),
            project_id,
            Some(kind),
            *from,
            *to,
            &wanted,
            &mut cells,
        )?;
    }
    let (first, last) = (
        plan.hours.iter().chain(&plan.days).map(|s| s.0).min(),
        plan.hours.iter().chain(&plan.days).map(|s| s.1).max(),
    );
    if let (Some(first), Some(last)) = (first, last) {
        read_cells(
            conn,
            DELTAS,
            project_id,
            Some(kind),
            first,
            last,
            &unchanged,
            &mut cells,
        )?;
    }
    for (from, to) in &plan.events {
        cells.extend(event_cells(conn, project_id, *from, *to, &[kind])?);
    }
    let links = person_links(conn, project_id)?;
    Ok(Some(query.answer_rollups(cells, &links)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_US;
    const HOUR: i64 = HOUR_US;

    #[test]
    fn whole_days_come_from_day_cells_and_the_rest_from_hours_and_events() {
        let from = 10 * DAY - 2 * HOUR - 5;
        let to = 13 * DAY + 3 * HOUR + 7;
        let plan = plan(from, to, true, &HashSet::new());
        assert_eq!(plan.days, vec![(10 * DAY, 13 * DAY)]);
        assert_eq!(
            plan.hours,
            vec![
                (10 * DAY - 2 * HOUR, 10 * DAY),
                (13 * DAY, 13 * DAY + 3 * HOUR)
            ]
        );
        assert_eq!(
            plan.events,
            vec![(from, 10 * DAY - 2 * HOUR), (13 * DAY + 3 * HOUR, to)]
        );
        let hourly = plan_hours_only(from, to);
        assert_eq!(
            hourly.hours,
            vec![(10 * DAY - 2 * HOUR, 13 * DAY + 3 * HOUR)]
        );
        assert!(hourly.days.is_empty());
    }

    fn plan_hours_only(from: i64, to: i64) -> Plan {
        plan(from, to, false, &HashSet::new())
    }

    #[test]
    fn a_changed_hour_is_read_from_events_and_its_day_from_hours() {
        let changed = HashSet::from([11 * DAY + 5 * HOUR]);
        let plan = plan(10 * DAY, 13 * DAY, true, &changed);
        assert_eq!(plan.days, vec![(10 * DAY, 11 * DAY), (12 * DAY, 13 * DAY)]);
        assert_eq!(
            plan.hours,
            vec![
                (11 * DAY, 11 * DAY + 5 * HOUR),
                (11 * DAY + 6 * HOUR, 12 * DAY)
            ]
        );
        assert_eq!(
            plan.events,
            vec![(11 * DAY + 5 * HOUR, 11 * DAY + 6 * HOUR)]
        );
    }

    #[test]
    fn a_range_within_one_hour_reads_only_events() {
        let plan = plan(HOUR + 5, HOUR + 50, true, &HashSet::new());
        assert!(plan.days.is_empty() && plan.hours.is_empty());
        assert_eq!(plan.events, vec![(HOUR + 5, HOUR + 50)]);
    }
}
