//! Event queries answered from hourly rollups instead of events.
//!
//! A rollup cell holds, for one hour (or one event, at the ends of a range
//! that cut an hour), one call type and event name: how many events there
//! were and the exact set of their user numbers. Cells add up: counts sum,
//! user sets unite, and distinct persons are counted at the end through the
//! project's person links (a merged user counts as the person it joined), so
//! merges never invalidate a cell. Answers are those of the event query run
//! over events, row for row, in the same order.
//!
//! A query fits when every metric is a count (`events`, `users`,
//! `pageviews`), every dimension is time (hours and longer) or the event's
//! name or type, its filter reads only the name and type, and, when it
//! groups by time, its timezone keeps whole-hour offsets (so that every
//! bucket is made of whole UTC hours).

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};

use super::grouping::{bucket, Groups, RowPage};
use super::LocalClock;
use crate::query::{
    DimensionValue, EventDimension, EventMetric, EventQuery, Filter, Granularity, GroupDimension,
    MetricValue, QueryRows, Test,
};

/// One hour's events of one call type and name (or one event's own time);
/// a cell with an empty call type is the total of its hour (or instant) over
/// every type and name, which queries that read neither use instead.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupCell {
    /// The hour's start (or the event's time), microseconds since the epoch.
    pub at_us: i64,
    /// The call type (`track`, `page`, ...).
    pub event_type: String,
    /// The track event's name; none for other calls.
    pub event: Option<String>,
    /// Events.
    pub events: u64,
    /// Their user numbers.
    pub users: RoaringBitmap,
}

impl RollupCell {
    /// Whether the cell is the total of its hour over every type and name.
    pub fn is_total(&self) -> bool {
        self.event_type.is_empty()
    }

    /// The name an event query reads: the track event's name, else the call type.
    fn name(&self) -> &str {
        self.event.as_deref().unwrap_or(&self.event_type)
    }

    /// Whether the cell's events are page views.
    fn is_page_view(&self) -> bool {
        self.event_type == "page"
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

impl EventQuery {
    /// Whether rollup cells answer this query exactly (see the module).
    pub fn fits_rollups(&self) -> bool {
        let counts = self.metrics.iter().all(|metric| {
            matches!(
                metric,
                EventMetric::Events | EventMetric::Users | EventMetric::Pageviews
            )
        });
        let dimensions = self.dimensions.iter().all(|dimension| match dimension {
            GroupDimension::Time(granularity) => *granularity != Granularity::Minute,
            GroupDimension::Event(event) => rolled_dimension(event),
        });
        let filter = self.filter.as_ref().is_none_or(filter_fits);
        counts && dimensions && filter && (self.time_granularity().is_none() || self.hour_aligned())
    }

    /// Whether every offset of the range is a whole number of hours and
    /// changes on a whole hour.
    fn hour_aligned(&self) -> bool {
        self.offsets.segments.iter().all(|segment| {
            i64::from(segment.offset_seconds) % 3_600 == 0
                && (segment.from <= self.range.from
                    || segment.from.timestamp_micros().rem_euclid(HOUR_US) == 0)
        })
    }

    /// Whether the query reads the totals of hours (no filter, no name or
    /// type, no page views) rather than the cells of each type and name.
    pub fn reads_totals(&self) -> bool {
        self.filter.is_none()
            && self
                .dimensions
                .iter()
                .all(|dimension| matches!(dimension, GroupDimension::Time(_)))
            && self
                .metrics
                .iter()
                .all(|metric| matches!(metric, EventMetric::Events | EventMetric::Users))
    }

    /// Whether the query reads a cell: a total when it reads totals, else a
    /// cell of a type and name whose events pass the query's filter.
    pub fn admits(&self, cell: &RollupCell) -> bool {
        if self.reads_totals() {
            return cell.is_total();
        }
        !cell.is_total()
            && self
                .filter
                .as_ref()
                .is_none_or(|filter| cell_passes(filter, cell))
    }

    /// The query's answer from cells that cover its range exactly (each of
    /// its events in exactly one cell of a type and name, and in one total),
    /// with distinct users counted as
    /// persons through `links`. Only for a query that [`fits_rollups`](Self::fits_rollups).
    pub fn answer_rollups(
        &self,
        cells: impl IntoIterator<Item = RollupCell>,
        links: &PersonLinks,
    ) -> QueryRows {
        let clock = LocalClock::from_schedule(&self.offsets);
        let mut groups: Groups<CellTally> = Groups::new();
        for cell in cells {
            if !self.admits(&cell) {
                continue;
            }
            let values: Vec<DimensionValue> = self
                .dimensions
                .iter()
                .map(|dimension| match dimension {
                    GroupDimension::Time(granularity) => bucket(&clock, *granularity, cell.at_us),
                    GroupDimension::Event(EventDimension::Type) => {
                        DimensionValue::Text(Some(cell.event_type.clone()))
                    }
                    GroupDimension::Event(_) => DimensionValue::Text(Some(cell.name().to_owned())),
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

/// The event dimensions a cell keeps.
fn rolled_dimension(dimension: &EventDimension) -> bool {
    matches!(dimension, EventDimension::Name | EventDimension::Type)
}

fn filter_fits(filter: &Filter) -> bool {
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().all(filter_fits),
        Filter::Not(inner) => filter_fits(inner),
        Filter::Condition {
            dimension, test, ..
        } => {
            rolled_dimension(dimension)
                && matches!(test, Test::Equals(_) | Test::Contains(_) | Test::IsSet)
        }
    }
}

/// A filter over a cell's name and type, as the SQL of an event query
/// evaluates it (both are always set).
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
            let value = match dimension {
                EventDimension::Type => cell.event_type.as_str(),
                _ => cell.name(),
            };
            let holds = match test {
                Test::Equals(values) => values.iter().any(|v| v == value),
                Test::Contains(values) => values.iter().any(|v| value.contains(v.as_str())),
                Test::IsSet => true,
                Test::Matches(_) | Test::Compare(..) => false,
            };
            holds != *negated
        }
    }
}
