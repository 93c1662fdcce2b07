//! Session metrics and dimensions of `/v1/query`.
//!
//! A session is a person's run of events (those that pass the query's
//! filters, within its range) with no gap longer than the project's session
//! timeout; the gap may equal the timeout. A session belongs to the time
//! bucket of its first event, and its event dimensions are read on that
//! event. `session:entry_page` and `session:exit_page` are the pages of its
//! first and last page views. A session bounces when it is one page view and
//! nothing else.
//!
//! Storage returns the query's events as timelines; the sessions are cut and
//! aggregated here, one person at a time, so every backend answers alike.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;

use chrono::DateTime;

use super::period::date_of_day;
use super::{LocalClock, PersonFold, TimelineEvent, TimelineRequest};
use crate::query::time_buckets::calendar_bucket;
use crate::query::{
    Dimension, DimensionValue, EventDimension, Filter, Granularity, MetricValue, OrderTarget,
    QueryRow, QueryRows, SessionDimension, SessionMetric, SessionQuery,
};

/// The labels each event of a session query carries: the page first when a
/// session dimension needs it, then each event dimension of the query.
fn label_dimensions(query: &SessionQuery) -> Vec<EventDimension> {
    let mut labels = Vec::new();
    if reads_pages(query) {
        labels.push(EventDimension::Page);
    }
    for dimension in &query.dimensions {
        if let Dimension::Event(event) = dimension {
            labels.push(event.clone());
        }
    }
    labels
}

fn reads_pages(query: &SessionQuery) -> bool {
    query.dimensions.iter().any(Dimension::is_session)
}

/// One session, as the aggregation needs it.
struct Session<'a> {
    person: u64,
    first: &'a TimelineEvent,
    events: u64,
    page_views: u64,
    duration_us: i64,
    entry_page: Option<&'a str>,
    exit_page: Option<&'a str>,
}

/// Cuts one person's events (in order) into sessions.
fn sessions_of(events: &[TimelineEvent], timeout_us: i64, has_page: bool) -> Vec<Session<'_>> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut previous: Option<i64> = None;
    for event in events {
        let continues =
            previous.is_some_and(|time| event.timestamp_us.saturating_sub(time) <= timeout_us);
        if !continues {
            sessions.push(Session {
                person: event.person,
                first: event,
                events: 0,
                page_views: 0,
                duration_us: 0,
                entry_page: None,
                exit_page: None,
            });
        }
        let Some(session) = sessions.last_mut() else {
            continue;
        };
        session.events += 1;
        session.duration_us = event.timestamp_us - session.first.timestamp_us;
        if event.matches(0) {
            session.page_views += 1;
            if has_page {
                let page = event.label();
                if session.page_views == 1 {
                    session.entry_page = page;
                }
                session.exit_page = page;
            }
        }
        previous = Some(event.timestamp_us);
    }
    sessions
}

/// The bucket of an instant, as storage reports buckets.
fn bucket(clock: &LocalClock, granularity: Granularity, micros: i64) -> DimensionValue {
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

#[derive(Default)]
struct Totals {
    sessions: u64,
    events: u64,
    page_views: u64,
    bounces: u64,
    duration_us: i64,
    /// Distinct persons: persons come one after another, so a person is new
    /// to a group when it differs from the group's last one.
    persons: u64,
    last_person: Option<u64>,
}

impl Totals {
    fn add(&mut self, session: &Session<'_>) {
        self.sessions += 1;
        self.events += session.events;
        self.page_views += session.page_views;
        self.bounces += u64::from(session.page_views == 1 && session.events == 1);
        self.duration_us = self.duration_us.saturating_add(session.duration_us);
        if self.last_person != Some(session.person) {
            self.persons += 1;
            self.last_person = Some(session.person);
        }
    }
}

fn metric_value(metric: SessionMetric, totals: &Totals) -> MetricValue {
    let per_session = |value: f64, decimals: i32| {
        let scale = 10f64.powi(decimals);
        MetricValue::Number(
            (totals.sessions > 0).then(|| (value / totals.sessions as f64 * scale).round() / scale),
        )
    };
    match metric {
        SessionMetric::Events => MetricValue::Count(totals.events),
        SessionMetric::Users => MetricValue::Count(totals.persons),
        SessionMetric::Sessions => MetricValue::Count(totals.sessions),
        SessionMetric::BounceRate => per_session(totals.bounces as f64 * 100.0, 1),
        SessionMetric::SessionDuration => per_session(totals.duration_us as f64 / 1e6, 3),
        SessionMetric::EventsPerSession => per_session(totals.events as f64, 4),
        SessionMetric::Pageviews => MetricValue::Count(totals.page_views),
        SessionMetric::ViewsPerVisit => per_session(totals.page_views as f64, 2),
    }
}

fn number(value: &MetricValue) -> Option<f64> {
    match value {
        MetricValue::Count(count) => Some(*count as f64),
        MetricValue::Number(number) => *number,
    }
}

/// Orders rows as the query asks, unset values last whatever the direction.
fn compare(query: &SessionQuery, a: &QueryRow, b: &QueryRow) -> CmpOrdering {
    for ordering in &query.order_by {
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

/// The session groups counted so far.
pub struct SessionTally {
    clock: LocalClock,
    /// Group keys index `groups`, which keeps each group's dimension values.
    index: HashMap<Vec<Key>, usize, foldhash::fast::RandomState>,
    groups: Vec<(Vec<DimensionValue>, Totals)>,
}

impl PersonFold for SessionQuery {
    type Tally = SessionTally;
    type Output = QueryRows;

    /// Every event of the query's range and filters, marked when it is a page
    /// view, with the labels its dimensions need.
    fn timeline(&self) -> TimelineRequest {
        let labels = label_dimensions(self);
        TimelineRequest {
            project_id: self.project_id.clone(),
            range: self.range,
            filter: self.filter.clone(),
            matchers: vec![Filter::is(EventDimension::Type, vec!["page".to_owned()])],
            all_events: true,
            // Ties decide a session's first event only when its labels are read.
            ordered_ties: !labels.is_empty(),
            labels,
        }
    }

    fn start(&self) -> SessionTally {
        SessionTally {
            clock: LocalClock::from_schedule(&self.offsets),
            index: HashMap::default(),
            groups: Vec::new(),
        }
    }

    fn add_person(&self, tally: &mut SessionTally, events: &[TimelineEvent]) {
        let timeout_us = self.timeout.num_microseconds().unwrap_or(i64::MAX);
        let has_page = reads_pages(self);
        for session in sessions_of(events, timeout_us, has_page) {
            // Labels: the page first when session dimensions need it, then
            // the event dimensions in order.
            let mut labels = session.first.labels.iter().skip(usize::from(has_page));
            let values: Vec<DimensionValue> = self
                .dimensions
                .iter()
                .map(|dimension| match dimension {
                    Dimension::Time(granularity) => {
                        bucket(&tally.clock, *granularity, session.first.timestamp_us)
                    }
                    Dimension::Session(SessionDimension::EntryPage) => {
                        DimensionValue::Text(session.entry_page.map(str::to_owned))
                    }
                    Dimension::Session(SessionDimension::ExitPage) => {
                        DimensionValue::Text(session.exit_page.map(str::to_owned))
                    }
                    Dimension::Event(_) => DimensionValue::Text(labels.next().cloned().flatten()),
                })
                .collect();
            let key: Vec<Key> = values.iter().map(key_of).collect();
            let groups = &mut tally.groups;
            let slot = *tally.index.entry(key).or_insert_with(|| {
                groups.push((values, Totals::default()));
                groups.len() - 1
            });
            groups[slot].1.add(&session);
        }
    }

    fn finish(&self, tally: SessionTally) -> QueryRows {
        let mut groups = tally.groups;
        if self.dimensions.is_empty() && groups.is_empty() {
            groups.push((Vec::new(), Totals::default()));
        }
        let mut rows: Vec<QueryRow> = groups
            .into_iter()
            .map(|(dimensions, totals)| QueryRow {
                dimensions,
                metrics: self
                    .metrics
                    .iter()
                    .map(|metric| metric_value(*metric, &totals))
                    .collect(),
            })
            .collect();
        rows.sort_by(|a, b| compare(self, a, b));
        let total_rows = rows.len() as u64;
        if !self.all_rows {
            rows = rows
                .into_iter()
                .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(self.limit).unwrap_or(usize::MAX))
                .collect();
        }
        QueryRows { rows, total_rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(person: u64, minute: i64, page: Option<&str>) -> TimelineEvent {
        TimelineEvent {
            person,
            timestamp_us: minute * 60_000_000,
            matches: u64::from(page.is_some()),
            labels: vec![page.map(str::to_owned)],
        }
    }

    #[test]
    fn a_gap_longer_than_the_timeout_starts_a_session() {
        let events = [
            event(1, 0, Some("/a")),
            event(1, 30, None),
            event(1, 40, Some("/b")),
            event(1, 71, Some("/c")),
        ];
        let sessions = sessions_of(&events, 30 * 60_000_000, true);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].events, 3);
        assert_eq!(sessions[0].duration_us, 40 * 60_000_000);
        assert_eq!(
            (sessions[0].entry_page, sessions[0].exit_page),
            (Some("/a"), Some("/b"))
        );
        assert_eq!((sessions[1].events, sessions[1].page_views), (1, 1));
    }
}
