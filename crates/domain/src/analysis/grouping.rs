//! What the folds of `/v1/query` share: sessions cut from a person's
//! timeline, the labels their dimensions read, and rows grouped, sorted and
//! paginated as storage would return them.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;

use chrono::DateTime;

use super::period::date_of_day;
use super::{LocalClock, TimelineEvent};
use crate::query::time_buckets::calendar_bucket;
use crate::query::{
    Dimension, DimensionValue, EventDimension, Granularity, MetricValue, OrderTarget, Ordering,
    QueryRow, QueryRows, SessionAnchor, SessionDimension,
};

/// The matcher that marks page views: always the first of a session fold's.
pub(super) const PAGE_VIEW: usize = 0;

/// The label dimensions a fold asks storage for, and where each query
/// dimension finds its value among them.
pub(super) struct Labels {
    /// Distinct label dimensions, in the order storage returns them.
    pub dimensions: Vec<EventDimension>,
    /// Per query dimension, its label's index (`None` for time).
    slots: Vec<Option<usize>>,
}

impl Labels {
    /// The labels of `dimensions`: an event dimension's own, and for a
    /// session dimension the one read on its anchor event.
    pub fn of(dimensions: &[Dimension]) -> Self {
        let mut labels: Vec<EventDimension> = Vec::new();
        let slots = dimensions
            .iter()
            .map(|dimension| {
                let label = match dimension {
                    Dimension::Time(_) => return None,
                    Dimension::Event(event) => event.clone(),
                    Dimension::Session(session) => session.label(),
                };
                Some(match labels.iter().position(|l| *l == label) {
                    Some(i) => i,
                    None => {
                        labels.push(label);
                        labels.len() - 1
                    }
                })
            })
            .collect();
        Labels {
            dimensions: labels,
            slots,
        }
    }

    /// The label of query dimension `index` on `event`.
    pub fn value(&self, index: usize, event: &TimelineEvent) -> Option<String> {
        let slot = self.slots.get(index).copied().flatten()?;
        event.labels.get(slot).cloned().flatten()
    }
}

/// One session: a run of a person's events with no gap over the timeout.
pub(super) struct Session<'a> {
    /// Its events, in order (never empty).
    pub events: &'a [TimelineEvent],
    /// Its first page view.
    pub first_page_view: Option<&'a TimelineEvent>,
    /// Its last page view.
    pub last_page_view: Option<&'a TimelineEvent>,
    /// Its page views.
    pub page_views: u64,
}

impl<'a> Session<'a> {
    /// Its first event.
    pub fn first(&self) -> &'a TimelineEvent {
        &self.events[0]
    }

    /// Microseconds from its first event to its last.
    pub fn duration_us(&self) -> i64 {
        let last = &self.events[self.events.len() - 1];
        last.timestamp_us - self.first().timestamp_us
    }

    /// The event whose labels give a session dimension's value.
    pub fn anchor(&self, anchor: SessionAnchor) -> Option<&'a TimelineEvent> {
        match anchor {
            SessionAnchor::FirstEvent => Some(self.first()),
            SessionAnchor::FirstPageView => self.first_page_view,
            SessionAnchor::LastPageView => self.last_page_view,
        }
    }

    /// The value of `dimension` (query dimension `index`) for the session.
    pub fn value(
        &self,
        labels: &Labels,
        index: usize,
        dimension: SessionDimension,
    ) -> Option<String> {
        labels.value(index, self.anchor(dimension.anchor())?)
    }
}

/// Cuts one person's events (in order) into sessions.
pub(super) fn sessions_of(events: &[TimelineEvent], timeout_us: i64) -> Vec<Session<'_>> {
    let mut sessions = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        let ends = i == events.len()
            || events[i]
                .timestamp_us
                .saturating_sub(events[i - 1].timestamp_us)
                > timeout_us;
        if ends {
            let run = &events[start..i];
            let mut session = Session {
                events: run,
                first_page_view: None,
                last_page_view: None,
                page_views: 0,
            };
            for event in run.iter().filter(|e| e.matches(PAGE_VIEW)) {
                session.page_views += 1;
                session.first_page_view.get_or_insert(event);
                session.last_page_view = Some(event);
            }
            sessions.push(session);
            start = i;
        }
    }
    sessions
}

/// The bucket of an instant, as storage reports buckets.
pub(super) fn bucket(clock: &LocalClock, granularity: Granularity, micros: i64) -> DimensionValue {
    let local = clock.local_micros(micros);
    let unit_us: i64 = match granularity {
        Granularity::Minute => 60_000_000,
        Granularity::Hour => 3_600_000_000,
        _ => {
            let day = calendar_bucket(date_of_day(clock.day(micros)), granularity);
            return DimensionValue::LocalBucket(day.and_hms_opt(0, 0, 0).unwrap_or_default());
        }
    };
    let start = micros - local.rem_euclid(unit_us);
    DimensionValue::InstantBucket(DateTime::from_timestamp_micros(start).unwrap_or_default())
}

/// A group's key: the plan's dimension values, comparable and hashable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Text(Option<String>),
    Micros(i64),
}

fn key_of(value: &DimensionValue) -> Key {
    match value {
        DimensionValue::Text(text) => Key::Text(text.clone()),
        DimensionValue::LocalBucket(local) => Key::Micros(local.and_utc().timestamp_micros()),
        DimensionValue::InstantBucket(instant) => Key::Micros(instant.timestamp_micros()),
    }
}

/// Distinct persons of a group: persons come one after another, so a
/// person is new to a group when it differs from the group's last one.
#[derive(Default)]
pub(super) struct PersonCount {
    count: u64,
    last: Option<u64>,
}

impl PersonCount {
    /// Counts `person` unless it was the last one counted.
    pub fn add(&mut self, person: u64) {
        if self.last != Some(person) {
            self.count += 1;
            self.last = Some(person);
        }
    }

    /// Persons counted.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Totals per group of dimension values.
pub(super) struct Groups<T> {
    /// Group keys index `groups`, which keeps each group's dimension values.
    index: HashMap<Vec<Key>, usize, foldhash::fast::RandomState>,
    groups: Vec<(Vec<DimensionValue>, T)>,
}

impl<T: Default> Groups<T> {
    /// No group yet.
    pub fn new() -> Self {
        Groups {
            index: HashMap::default(),
            groups: Vec::new(),
        }
    }

    /// The totals of the group of `values`, created empty when new.
    pub fn entry(&mut self, values: Vec<DimensionValue>) -> &mut T {
        let key: Vec<Key> = values.iter().map(key_of).collect();
        let groups = &mut self.groups;
        let slot = *self.index.entry(key).or_insert_with(|| {
            groups.push((values, T::default()));
            groups.len() - 1
        });
        &mut groups[slot].1
    }

    /// The rows, sorted and paginated as the query asks; one empty row when
    /// the query has no dimensions and nothing was counted.
    pub fn rows(self, page: &RowPage<'_>, metrics: impl Fn(&T) -> Vec<MetricValue>) -> QueryRows {
        let mut groups = self.groups;
        if page.dimensionless && groups.is_empty() {
            groups.push((Vec::new(), T::default()));
        }
        let mut rows: Vec<QueryRow> = groups
            .into_iter()
            .map(|(dimensions, totals)| QueryRow {
                dimensions,
                metrics: metrics(&totals),
            })
            .collect();
        rows.sort_by(|a, b| compare(page.order_by, a, b));
        let total_rows = rows.len() as u64;
        if !page.all_rows {
            rows = rows
                .into_iter()
                .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
                .collect();
        }
        QueryRows { rows, total_rows }
    }
}

/// How a fold's rows are sorted and cut.
pub(super) struct RowPage<'a> {
    /// Sort keys.
    pub order_by: &'a [Ordering],
    /// Rows at most.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Every row, unpaginated.
    pub all_rows: bool,
    /// The query has no dimensions.
    pub dimensionless: bool,
}

fn number(value: &MetricValue) -> Option<f64> {
    match value {
        MetricValue::Count(count) => Some(*count as f64),
        MetricValue::Number(number) => *number,
    }
}

/// Orders rows as the query asks, unset values last whatever the direction.
fn compare(order_by: &[Ordering], a: &QueryRow, b: &QueryRow) -> CmpOrdering {
    for ordering in order_by {
        let (order, a_set, b_set) = match ordering.target {
            OrderTarget::Metric(i) => {
                let (x, y) = (number(&a.metrics[i]), number(&b.metrics[i]));
                let order = match (x, y) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    _ => CmpOrdering::Equal,
                };
                (order, x.is_some(), y.is_some())
            }
            OrderTarget::Dimension(i) => {
                let (x, y) = (key_of(&a.dimensions[i]), key_of(&b.dimensions[i]));
                let set = |k: &Key| !matches!(k, Key::Text(None));
                let order = match (&x, &y) {
                    (Key::Text(Some(x)), Key::Text(Some(y))) => x.cmp(y),
                    (Key::Micros(x), Key::Micros(y)) => x.cmp(y),
                    _ => CmpOrdering::Equal,
                };
                (order, set(&x), set(&y))
            }
        };
        let order = match (a_set, b_set) {
            (true, false) => CmpOrdering::Less,
            (false, true) => CmpOrdering::Greater,
            _ if ordering.descending => order.reverse(),
            _ => order,
        };
        if order != CmpOrdering::Equal {
            return order;
        }
    }
    CmpOrdering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(minute: i64, page: Option<&str>) -> TimelineEvent {
        TimelineEvent {
            person: 1,
            timestamp_us: minute * 60_000_000,
            matches: u64::from(page.is_some()),
            labels: vec![page.map(str::to_owned)],
        }
    }

    #[test]
    fn a_gap_longer_than_the_timeout_starts_a_session() {
        let events = [
            event(0, Some("/a")),
            event(30, None),
            event(40, Some("/b")),
            event(71, Some("/c")),
        ];
        let sessions = sessions_of(&events, 30 * 60_000_000);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].events.len(), 3);
        assert_eq!(sessions[0].duration_us(), 40 * 60_000_000);
        assert_eq!(sessions[0].page_views, 2);
        fn page(event: Option<&TimelineEvent>) -> Option<&str> {
            event.and_then(TimelineEvent::label)
        }
        assert_eq!(
            (
                page(sessions[0].first_page_view),
                page(sessions[0].last_page_view)
            ),
            (Some("/a"), Some("/b"))
        );
        assert_eq!((sessions[1].events.len(), sessions[1].page_views), (1, 1));
        assert_eq!(page(sessions[1].last_page_view), Some("/c"));
    }

    #[test]
    fn a_session_dimension_and_its_event_dimension_share_one_label() {
        let labels = Labels::of(&[
            Dimension::Session(SessionDimension::EntryPage),
            Dimension::Time(Granularity::Day),
            Dimension::Event(EventDimension::Page),
            Dimension::Session(SessionDimension::ExitPage),
        ]);
        assert_eq!(labels.dimensions, vec![EventDimension::Page]);
        let event = event(0, Some("/a"));
        assert_eq!(labels.value(0, &event).as_deref(), Some("/a"));
        assert_eq!(labels.value(1, &event), None);
        assert_eq!(labels.value(3, &event).as_deref(), Some("/a"));
    }
}
