//! Session queries answered from session cells instead of one row per kept
//! session.
//!
//! A session cell holds, for one UTC hour and one [`SessionCellKind`] value,
//! the totals of the kept sessions that started in it: how many, their
//! events, page views, bounces and durations, and the exact set of their
//! persons as a roaring bitmap. Cells add up: sums add, person sets unite.
//!
//! A query fits when it has no filters, its one non-time dimension (if any)
//! is a kind's, its time buckets are hours or longer, and its range and every
//! offset of its timezone are whole UTC hours (so that each bucket is made of
//! whole hours). Storage then returns the cells of the range with the kept
//! sessions it reads from events instead ([`TakenSession`]: those crossing
//! the range's end, and those a write touched since), and
//! [`SessionQuery::groups_from_cells`] turns them into the groups that
//! [`SessionQuery::answer_stored`] adds to the sessions read from events.

use std::collections::{HashMap, HashSet};

use roaring::{MultiOps, RoaringBitmap};

use super::grouping::bucket;
use super::rollup::{hour_start, offsets_hour_aligned, HOUR_US};
use super::sessions::StoredGroup;
use super::LocalClock;
use crate::query::{
    Acquisition, Dimension, DimensionValue, EventDimension, Granularity, SessionDimension,
    SessionQuery,
};

/// What session cells sum their sessions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionCellKind {
    /// Nothing: every session of the hour.
    Total,
    /// The page of the session's first page view.
    EntryPage,
    /// The page of its last page view.
    ExitPage,
    /// Where its first event came from.
    Acquisition(Acquisition),
}

impl SessionCellKind {
    /// Every kind, in the order storage keeps them.
    pub const ALL: [SessionCellKind; 6] = [
        SessionCellKind::Total,
        SessionCellKind::EntryPage,
        SessionCellKind::ExitPage,
        SessionCellKind::Acquisition(Acquisition::ReferrerDomain),
        SessionCellKind::Acquisition(Acquisition::Source),
        SessionCellKind::Acquisition(Acquisition::Channel),
    ];

    /// The kind's name: `total`, or the session attribute it is by.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionCellKind::Total => "total",
            SessionCellKind::EntryPage => "entry_page",
            SessionCellKind::ExitPage => "exit_page",
            SessionCellKind::Acquisition(attribute) => attribute.as_str(),
        }
    }

    /// The kind whose values are a dimension's, if any.
    fn of(dimension: &Dimension) -> Option<SessionCellKind> {
        match dimension {
            Dimension::Session(SessionDimension::EntryPage) => Some(SessionCellKind::EntryPage),
            Dimension::Session(SessionDimension::ExitPage) => Some(SessionCellKind::ExitPage),
            Dimension::Session(SessionDimension::Acquisition(attribute))
            | Dimension::Event(EventDimension::Acquisition(attribute)) => {
                Some(SessionCellKind::Acquisition(*attribute))
            }
            Dimension::Time(_) | Dimension::Event(_) => None,
        }
    }
}

/// Sessions summed: those of one cell, or sessions that storage takes out
/// of the cells (one each, at their start time, with no persons).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionCell {
    /// The start of the cell's UTC hour, or a session's start time, in
    /// microseconds.
    pub at_us: i64,
    /// The kind's value (none for totals, or when the sessions have none).
    pub value: Option<String>,
    /// Sessions.
    pub sessions: u64,
    /// Their events.
    pub events: u64,
    /// Their page views.
    pub page_views: u64,
    /// Those that are one page view and nothing else.
    pub bounces: u64,
    /// The sum of their durations, in microseconds.
    pub duration_us: i64,
    /// Their persons.
    pub persons: RoaringBitmap,
}

impl SessionCell {
    /// Adds one session of `person`.
    pub fn add_session(&mut self, person: u32, events: u64, page_views: u64, duration_us: i64) {
        self.sessions += 1;
        self.events += events;
        self.page_views += page_views;
        self.bounces += u64::from(events == 1 && page_views == 1);
        self.duration_us = self.duration_us.saturating_add(duration_us);
        self.persons.insert(person);
    }
}

/// A kept session that its cell counts but storage reads from events
/// instead (it crosses the end of the range, or a write touched it since).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TakenSession {
    /// Its person.
    pub person: u32,
    /// The session at its start time, one session with no persons.
    pub session: SessionCell,
}

/// A kept session that is not taken, of a person with a taken one in the
/// same UTC hour: what keeps the person in the group of its cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeptBeside {
    /// The person.
    pub person: u32,
    /// The start of the session's UTC hour, in microseconds.
    pub hour_us: i64,
    /// The session's value of the query's kind.
    pub value: Option<String>,
}

/// A group's sums while cells are added up.
#[derive(Default)]
struct CellTally {
    values: Vec<DimensionValue>,
    /// The kind's value of the group's cells.
    value: Option<String>,
    sessions: u64,
    events: u64,
    page_views: u64,
    bounces: u64,
    duration_us: i64,
    /// Each cell's hour and persons.
    hours: Vec<(i64, RoaringBitmap)>,
    /// The persons whose only sessions here are taken.
    dropped: RoaringBitmap,
}

impl SessionQuery {
    /// The kind of session cells that answer this query exactly (see the
    /// module), if any.
    pub fn cell_kind(&self) -> Option<SessionCellKind> {
        if self.filter.is_some() || self.visit_filter.is_some() {
            return None;
        }
        let aligned = |micros: i64| micros.rem_euclid(HOUR_US) == 0;
        if !aligned(self.range.from.timestamp_micros())
            || !aligned(self.range.to.timestamp_micros())
            || !offsets_hour_aligned(&self.offsets, self.range)
        {
            return None;
        }
        let mut kind = None;
        for dimension in &self.dimensions {
            match dimension {
                Dimension::Time(Granularity::Minute) => return None,
                Dimension::Time(_) => {}
                other => {
                    if kind.is_some() {
                        return None;
                    }
                    kind = Some(SessionCellKind::of(other)?);
                }
            }
        }
        Some(kind.unwrap_or(SessionCellKind::Total))
    }

    /// The groups of the sessions in `cells` (those of the query's
    /// [`cell_kind`](Self::cell_kind) over its range) less the sessions in
    /// `taken`: those that storage reads from events instead.
    ///
    /// A person stays in a group when it has a session there besides the
    /// taken ones: in a cell of another hour, or, for the hours of its taken
    /// sessions, one that `beside` lists (the other kept sessions of the
    /// taken sessions' persons in those hours). Each group's persons that
    /// are among `window_persons` (whose events storage also returns) are
    /// its folded ones.
    pub fn groups_from_cells(
        &self,
        cells: Vec<SessionCell>,
        taken: &[TakenSession],
        beside: &HashSet<KeptBeside>,
        window_persons: &RoaringBitmap,
    ) -> Vec<StoredGroup> {
        let clock = LocalClock::from_schedule(&self.offsets);
        let mut buckets: HashMap<i64, (i64, DimensionValue)> = HashMap::new();
        let mut index: HashMap<(i64, Option<String>), usize> = HashMap::new();
        let mut tallies: Vec<CellTally> = Vec::new();
        let granularity = self.dimensions.iter().find_map(|d| match d {
            Dimension::Time(granularity) => Some(*granularity),
            _ => None,
        });
        let mut key_of = |cell: &SessionCell, tallies: &mut Vec<CellTally>| -> usize {
            let (time_key, time_value) = match granularity {
                Some(granularity) => buckets
                    .entry(cell.at_us.div_euclid(HOUR_US))
                    .or_insert_with(|| {
                        let value = bucket(&clock, granularity, cell.at_us);
                        (bucket_micros(&value), value)
                    })
                    .clone(),
                None => (0, DimensionValue::Text(None)),
            };
            *index
                .entry((time_key, cell.value.clone()))
                .or_insert_with(|| {
                    let values = self
                        .dimensions
                        .iter()
                        .map(|d| match d {
                            Dimension::Time(_) => time_value.clone(),
                            _ => DimensionValue::Text(cell.value.clone()),
                        })
                        .collect();
                    tallies.push(CellTally {
                        values,
                        value: cell.value.clone(),
                        ..CellTally::default()
                    });
                    tallies.len() - 1
                })
        };
        for cell in cells {
            let at = key_of(&cell, &mut tallies);
            let tally = &mut tallies[at];
            tally.sessions += cell.sessions;
            tally.events += cell.events;
            tally.page_views += cell.page_views;
            tally.bounces += cell.bounces;
            tally.duration_us = tally.duration_us.saturating_add(cell.duration_us);
            tally.hours.push((cell.at_us, cell.persons));
        }
        // The hours of each person's taken sessions, by group.
        let mut doubtful: HashMap<(usize, u32), Vec<i64>> = HashMap::new();
        for taken in taken {
            let session = &taken.session;
            let at = key_of(session, &mut tallies);
            let tally = &mut tallies[at];
            tally.sessions = tally.sessions.saturating_sub(session.sessions);
            tally.events = tally.events.saturating_sub(session.events);
            tally.page_views = tally.page_views.saturating_sub(session.page_views);
            tally.bounces = tally.bounces.saturating_sub(session.bounces);
            tally.duration_us = tally.duration_us.saturating_sub(session.duration_us);
            doubtful
                .entry((at, taken.person))
                .or_default()
                .push(hour_start(session.at_us));
        }
        for ((at, person), taken_hours) in doubtful {
            let tally = &mut tallies[at];
            let elsewhere = tally
                .hours
                .iter()
                .any(|(hour, persons)| !taken_hours.contains(hour) && persons.contains(person));
            let in_taken_hours = taken_hours.iter().any(|hour| {
                beside.contains(&KeptBeside {
                    person,
                    hour_us: *hour,
                    value: tally.value.clone(),
                })
            });
            if !elsewhere && !in_taken_hours {
                tally.dropped.insert(person);
            }
        }
        tallies
            .into_iter()
            .filter(|tally| tally.sessions > 0)
            .map(|tally| {
                let persons =
                    tally.hours.into_iter().map(|(_, persons)| persons).union() - &tally.dropped;
                StoredGroup {
                    values: tally.values,
                    sessions: tally.sessions,
                    events: tally.events,
                    page_views: tally.page_views,
                    bounces: tally.bounces,
                    duration_us: tally.duration_us,
                    persons: persons.len(),
                    folded_persons: (&persons & window_persons).iter().map(u64::from).collect(),
                }
            })
            .collect()
    }
}

/// A time bucket's start, as a number to key groups by.
fn bucket_micros(value: &DimensionValue) -> i64 {
    match value {
        DimensionValue::LocalBucket(local) => local.and_utc().timestamp_micros(),
        DimensionValue::InstantBucket(instant) => instant.timestamp_micros(),
        DimensionValue::Text(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::query::{OffsetSchedule, SessionMetric, TimeRange};

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn query(
        dimensions: Vec<Dimension>,
        from: &str,
        to: &str,
        timezone: chrono_tz::Tz,
    ) -> SessionQuery {
        let range = TimeRange {
            from: instant(from),
            to: instant(to),
        };
        SessionQuery {
            project_id: "p".into(),
            metrics: vec![SessionMetric::Sessions, SessionMetric::Users],
            dimensions,
            filter: None,
            visit_filter: None,
            range,
            offsets: OffsetSchedule::for_range(timezone, range),
            timeout: chrono::Duration::minutes(30),
            order_by: Vec::new(),
            limit: 100,
            offset: 0,
            all_rows: false,
        }
    }

    const FROM: &str = "2026-03-01T00:00:00Z";
    const TO: &str = "2026-03-03T00:00:00Z";
    const ENTRY: Dimension = Dimension::Session(SessionDimension::EntryPage);
    const CHANNEL: Dimension = Dimension::Event(EventDimension::Acquisition(Acquisition::Channel));

    #[test]
    fn queries_fit_with_one_kind_hour_buckets_and_whole_hours() {
        let utc = chrono_tz::UTC;
        let day = Dimension::Time(Granularity::Day);
        assert_eq!(
            query(vec![], FROM, TO, utc).cell_kind(),
            Some(SessionCellKind::Total)
        );
        assert_eq!(
            query(
                vec![day.clone(), ENTRY],
                FROM,
                TO,
                chrono_tz::Europe::Berlin
            )
            .cell_kind(),
            Some(SessionCellKind::EntryPage)
        );
        assert_eq!(
            query(vec![CHANNEL], FROM, TO, utc).cell_kind(),
            Some(SessionCellKind::Acquisition(Acquisition::Channel))
        );
        let minute = Dimension::Time(Granularity::Minute);
        assert_eq!(query(vec![minute], FROM, TO, utc).cell_kind(), None);
        assert_eq!(query(vec![ENTRY, CHANNEL], FROM, TO, utc).cell_kind(), None);
        let country =
            Dimension::Event(EventDimension::Visit(crate::query::VisitAttribute::Country));
        assert_eq!(query(vec![country], FROM, TO, utc).cell_kind(), None);
        assert_eq!(
            query(vec![], FROM, "2026-03-02T23:30:00Z", utc).cell_kind(),
            None,
            "an end that cuts an hour"
        );
        assert_eq!(
            query(
                vec![day],
                "2026-02-28T18:30:00Z",
                "2026-03-02T18:30:00Z",
                chrono_tz::Asia::Kolkata
            )
            .cell_kind(),
            None,
            "half-hour offsets"
        );
    }

    fn cell(at: &str, value: Option<&str>, persons: &[u32]) -> SessionCell {
        let mut cell = SessionCell {
            at_us: instant(at).timestamp_micros(),
            value: value.map(str::to_owned),
            ..SessionCell::default()
        };
        for person in persons {
            cell.add_session(*person, 2, 1, 60_000_000);
        }
        cell
    }

    fn taken(person: u32, at: &str) -> TakenSession {
        let mut session = cell(at, Some("/"), &[person]);
        session.persons = RoaringBitmap::new();
        TakenSession { person, session }
    }

    #[test]
    fn cells_add_up_by_local_day_less_what_is_taken() {
        let query = query(
            vec![Dimension::Time(Granularity::Day), ENTRY],
            FROM,
            TO,
            chrono_tz::Europe::Berlin,
        );
        let cells = vec![
            cell("2026-03-01T08:00:00Z", Some("/"), &[1, 2]),
            cell("2026-03-01T09:00:00Z", Some("/"), &[2, 3]),
            // Midnight in Berlin: the next local day.
            cell("2026-03-01T23:00:00Z", Some("/"), &[1]),
            cell("2026-03-01T09:00:00Z", None, &[4]),
        ];
        // Person 2 keeps a session at 09:00; person 3 has none besides.
        let taken = vec![
            taken(3, "2026-03-01T09:12:00Z"),
            taken(2, "2026-03-01T08:30:00Z"),
        ];
        let window_persons: RoaringBitmap = [2, 3].into_iter().collect();
        let mut groups =
            query.groups_from_cells(cells.clone(), &taken, &HashSet::new(), &window_persons);
        groups.sort_by_key(|g| (format!("{:?}", g.values), g.sessions));
        let summary: Vec<(String, u64, u64, u64, i64, Vec<u64>)> = groups
            .iter()
            .map(|g| {
                (
                    format!("{:?}", g.values),
                    g.sessions,
                    g.persons,
                    g.bounces,
                    g.duration_us,
                    g.folded_persons.clone(),
                )
            })
            .collect();
        let day = |d: u32| {
            DimensionValue::LocalBucket(
                chrono::NaiveDate::from_ymd_opt(2026, 3, d)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            )
        };
        let text = |t: Option<&str>| DimensionValue::Text(t.map(str::to_owned));
        assert_eq!(
            summary,
            vec![
                (
                    format!("{:?}", [day(1), text(None)]),
                    1,
                    1,
                    0,
                    60_000_000,
                    vec![]
                ),
                (
                    format!("{:?}", [day(1), text(Some("/"))]),
                    2,
                    2,
                    0,
                    120_000_000,
                    vec![2]
                ),
                (
                    format!("{:?}", [day(2), text(Some("/"))]),
                    1,
                    1,
                    0,
                    60_000_000,
                    vec![]
                ),
            ]
        );
        // A kept session of person 3 beside the taken one, in its hour.
        let beside: HashSet<KeptBeside> = [KeptBeside {
            person: 3,
            hour_us: instant("2026-03-01T09:00:00Z").timestamp_micros(),
            value: Some("/".to_owned()),
        }]
        .into_iter()
        .collect();
        let groups = query.groups_from_cells(cells, &taken, &beside, &window_persons);
        let first_day = groups
            .iter()
            .find(|g| g.values == vec![day(1), text(Some("/"))])
            .unwrap();
        assert_eq!(first_day.persons, 3);
        assert_eq!(first_day.folded_persons, vec![2, 3]);
    }
}
