//! Event queries answered from rollups instead of events.
//!
//! A rollup cell holds, for one hour (or one UTC day, or one event at the
//! ends of a range that cut an hour), one [`CellKind`], one call type and one
//! value of the kind: how many events there were and the exact set of their
//! user numbers. Cells add up: counts sum, user sets unite, and distinct
//! persons are counted at the end through the project's person links (a
//! merged user counts as the person it joined), so merges never invalidate a
//! cell. Answers are those of the event query run over events, row for row,
//! in the same order.
//!
//! A query fits when every metric is a count (`events`, `users`,
//! `pageviews`), every dimension is time (hours and longer), the call type
//! or one dimension that cells are kept by, its filter reads only the type
//! and that same dimension, and, when it groups by time, its timezone keeps
//! whole-hour offsets (so that every bucket is made of whole UTC hours).

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};

use super::grouping::{bucket, Groups, RowPage};
use super::LocalClock;
use crate::event::Event;
use crate::query::{
    DimensionValue, EventDimension, EventMetric, EventQuery, Filter, Granularity, GroupDimension,
    MetricValue, OffsetSchedule, QueryRows, Test, TimeRange, VisitAttribute,
};

/// What a cell counts its events by, beside their call type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// Nothing: the total of its time over every type and value (its cells
    /// have an empty call type), read by queries that need no type.
    Total,
    /// The track event's name (none for other calls).
    Name,
    /// The page's path.
    Page,
    /// A device or location attribute of the event.
    Visit(VisitAttribute),
}

impl CellKind {
    /// Every kind cells are kept of.
    pub const ALL: [CellKind; 9] = [
        CellKind::Total,
        CellKind::Name,
        CellKind::Page,
        CellKind::Visit(VisitAttribute::Browser),
        CellKind::Visit(VisitAttribute::Os),
        CellKind::Visit(VisitAttribute::Device),
        CellKind::Visit(VisitAttribute::Country),
        CellKind::Visit(VisitAttribute::Region),
        CellKind::Visit(VisitAttribute::City),
    ];

    /// The name storage keeps the kind's cells by: its dimension's, empty
    /// for totals.
    pub fn as_str(self) -> &'static str {
        match self {
            CellKind::Total => "",
            CellKind::Name => "event:name",
            CellKind::Page => "event:page",
            CellKind::Visit(attribute) => match attribute {
                VisitAttribute::Browser => "visit:browser",
                VisitAttribute::BrowserVersion => "visit:browser_version",
                VisitAttribute::Os => "visit:os",
                VisitAttribute::OsVersion => "visit:os_version",
                VisitAttribute::Device => "visit:device",
                VisitAttribute::Country => "visit:country",
                VisitAttribute::Region => "visit:region",
                VisitAttribute::City => "visit:city",
            },
        }
    }

    /// The kind kept by `dimension`, if any.
    fn of(dimension: &EventDimension) -> Option<CellKind> {
        let kind = match dimension {
            EventDimension::Name => CellKind::Name,
            EventDimension::Page => CellKind::Page,
            EventDimension::Visit(attribute) => CellKind::Visit(*attribute),
            _ => return None,
        };
        CellKind::ALL.contains(&kind).then_some(kind)
    }

    /// The value an event's cell of this kind has.
    pub fn value(self, event: &Event) -> Option<&str> {
        match self {
            CellKind::Total => None,
            CellKind::Name => event.event.as_deref(),
            CellKind::Page => event.context_fields.page_path.as_deref(),
            CellKind::Visit(attribute) => event.visit.attribute(attribute),
        }
    }
}

/// The events of one kind, call type and value in one span of time: an
/// hour, a UTC day, or one event's own time.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupCell {
    /// The span's start (or the event's time), microseconds since the epoch.
    pub at_us: i64,
    /// What the cell counts its events by.
    pub kind: CellKind,
    /// The call type (`track`, `page`, ...); empty for totals.
    pub event_type: String,
    /// The value of the kind (the name, the page, ...); none for totals and
    /// for events without one.
    pub value: Option<String>,
    /// Events.
    pub events: u64,
    /// Their user numbers.
    pub users: RoaringBitmap,
}

impl RollupCell {
    /// The name an event query reads: the track event's name, else the call type.
    fn name(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.event_type)
    }

    /// Whether the cell's events are page views.
    fn is_page_view(&self) -> bool {
        self.event_type == "page"
    }

    /// The cell's value of `dimension`: its type, its name, or its value.
    fn text(&self, dimension: &EventDimension) -> Option<&str> {
        match dimension {
            EventDimension::Type => Some(&self.event_type),
            EventDimension::Name => Some(self.name()),
            _ => self.value.as_deref(),
        }
    }
}

/// A project's person links: each merged user number and the person it joined.
pub type PersonLinks = HashMap<u32, u32, foldhash::fast::RandomState>;

/// Distinct persons of a set of user numbers.
pub fn count_persons(users: &RoaringBitmap, links: &PersonLinks) -> u64 {
    if links.is_empty() {
        return users.len();
    }
    let mut persons = users.clone();
    let mut joined = RoaringBitmap::new();
    if (links.len() as u64) < users.len() {
        for (user, person) in links {
            if persons.remove(*user) {
                joined.insert(*person);
            }
        }
    } else {
        for user in users {
            if let Some(person) = links.get(&user) {
                persons.remove(user);
                joined.insert(*person);
            }
        }
    }
    persons |= joined;
    persons.len()
}

/// The totals of one group of cells; their user sets are united once, at
/// the end (uniting many at once is far faster than one after another).
#[derive(Default)]
struct CellTally {
    events: u64,
    page_views: u64,
    users: Vec<RoaringBitmap>,
}

/// One hour, in microseconds: a cell's span. Hourly buckets start at whole
/// UTC hours under every offset that is a whole number of hours.
pub const HOUR_US: i64 = 3_600_000_000;

/// The start of the UTC hour of a time, in microseconds.
pub fn hour_start(micros: i64) -> i64 {
    micros - micros.rem_euclid(HOUR_US)
}

/// One UTC day, in microseconds: the span of the cells that queries without
/// time buckets read for the days their range covers whole.
pub const DAY_US: i64 = 24 * HOUR_US;

impl EventQuery {
    /// The kind of cells that answer this query exactly (see the module),
    /// if any.
    pub fn rollup_kind(&self) -> Option<CellKind> {
        let counts = self.metrics.iter().all(|metric| {
            matches!(
                metric,
                EventMetric::Events | EventMetric::Users | EventMetric::Pageviews
            )
        });
        let times = self.dimensions.iter().all(|dimension| match dimension {
            GroupDimension::Time(granularity) => *granularity != Granularity::Minute,
            GroupDimension::Event(_) => true,
        });
        if !counts || !times || (self.time_granularity().is_some() && !self.hour_aligned()) {
            return None;
        }
        let mut read = Vec::new();
        for dimension in &self.dimensions {
            if let GroupDimension::Event(dimension) = dimension {
                read.push(dimension);
            }
        }
        if let Some(filter) = &self.filter {
            if !filter_tests_fit(filter, &mut read) {
                return None;
            }
        }
        let mut kind = None;
        for dimension in read {
            if *dimension == EventDimension::Type {
                continue;
            }
            let this = CellKind::of(dimension)?;
            if kind.is_some_and(|kind| kind != this) {
                return None;
            }
            kind = Some(this);
        }
        let totals = self.filter.is_none()
            && self
                .dimensions
                .iter()
                .all(|dimension| matches!(dimension, GroupDimension::Time(_)))
            && self
                .metrics
                .iter()
                .all(|metric| matches!(metric, EventMetric::Events | EventMetric::Users));
        Some(kind.unwrap_or(if totals {
            CellKind::Total
        } else {
            CellKind::Name
        }))
    }

    /// Whether rollup cells answer this query exactly.
    pub fn fits_rollups(&self) -> bool {
        self.rollup_kind().is_some()
    }

    /// Whether the query can read cells of whole UTC days: it has no time
    /// buckets.
    pub fn reads_days(&self) -> bool {
        self.time_granularity().is_none()
    }

    /// Whether every offset of the range is a whole number of hours and
    /// changes on a whole hour.
    fn hour_aligned(&self) -> bool {
        offsets_hour_aligned(&self.offsets, self.range)
    }

    /// Whether the query reads a cell of its kind: one whose events pass
    /// its filter.
    pub fn admits(&self, cell: &RollupCell) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|filter| cell_passes(filter, cell))
    }

    /// The query's answer from cells of its [`rollup_kind`](Self::rollup_kind)
    /// that cover its range exactly (each of its events in exactly one
    /// cell), with distinct users counted as persons through `links`.
    pub fn answer_rollups(
        &self,
        cells: impl IntoIterator<Item = RollupCell>,
        links: &PersonLinks,
    ) -> QueryRows {
        let clock = LocalClock::from_schedule(&self.offsets);
        let kind = self.rollup_kind();
        let mut groups: Groups<CellTally> = Groups::new();
        for cell in cells {
            if Some(cell.kind) != kind || !self.admits(&cell) {
                continue;
            }
            let values: Vec<DimensionValue> = self
                .dimensions
                .iter()
                .map(|dimension| match dimension {
                    GroupDimension::Time(granularity) => bucket(&clock, *granularity, cell.at_us),
                    GroupDimension::Event(dimension) => {
                        DimensionValue::Text(cell.text(dimension).map(str::to_owned))
                    }
                })
                .collect();
            let tally = groups.entry(values);
            tally.events += cell.events;
            if cell.is_page_view() {
                tally.page_views += cell.events;
            }
            tally.users.push(cell.users);
        }
        let page = RowPage {
            order_by: &self.order_by,
            limit: self.limit,
            offset: self.offset,
            all_rows: self.all_rows,
            dimensionless: self.dimensions.is_empty(),
        };
        let counts_users = self.metrics.contains(&EventMetric::Users);
        groups.rows(&page, |tally| {
            let persons = if counts_users {
                count_persons(&tally.users.iter().union(), links)
            } else {
                0
            };
            self.metrics
                .iter()
                .map(|metric| {
                    MetricValue::Count(match metric {
                        EventMetric::Events => tally.events,
                        EventMetric::Pageviews => tally.page_views,
                        _ => persons,
                    })
                })
                .collect()
        })
    }
}

/// Whether every offset of `range` is a whole number of hours and changes
/// on a whole hour.
pub(crate) fn offsets_hour_aligned(offsets: &OffsetSchedule, range: TimeRange) -> bool {
    offsets.segments.iter().all(|segment| {
        i64::from(segment.offset_seconds) % 3_600 == 0
            && (segment.from <= range.from
                || segment.from.timestamp_micros().rem_euclid(HOUR_US) == 0)
    })
}

/// Whether every test of a filter is one cells evaluate; collects the
/// dimensions it reads.
fn filter_tests_fit<'a>(filter: &'a Filter, read: &mut Vec<&'a EventDimension>) -> bool {
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            items.iter().all(|item| filter_tests_fit(item, read))
        }
        Filter::Not(inner) => filter_tests_fit(inner, read),
        Filter::Condition {
            dimension, test, ..
        } => {
            read.push(dimension);
            matches!(test, Test::Equals(_) | Test::Contains(_) | Test::IsSet)
        }
    }
}

/// A filter over a cell's type and value, as the SQL of an event query
/// evaluates it (a missing value passes no test).
fn cell_passes(filter: &Filter, cell: &RollupCell) -> bool {
    match filter {
        Filter::And(items) => items.iter().all(|f| cell_passes(f, cell)),
        Filter::Or(items) => items.iter().any(|f| cell_passes(f, cell)),
        Filter::Not(inner) => !cell_passes(inner, cell),
        Filter::Condition {
            dimension,
            test,
            negated,
        } => {
            let holds = cell.text(dimension).is_some_and(|value| match test {
                Test::Equals(values) => values.iter().any(|v| v == value),
                Test::Contains(values) => values.iter().any(|v| value.contains(v.as_str())),
                Test::IsSet => true,
                Test::Matches(_) | Test::Compare(..) => false,
            });
            holds != *negated
        }
    }
}
