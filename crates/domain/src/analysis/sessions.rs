//! Session metrics and dimensions of `/v1/query`.
//!
//! A session is a person's run of events (those that pass the query's
//! filters, within its range) with no gap longer than the project's session
//! timeout; the gap may equal the timeout. A session belongs to the time
//! bucket of its first event, and its event dimensions are read on that
//! event, as are `visit:referrer_domain`, `visit:source` and `visit:channel`
//! (and the visit filters on them: a session counts when its first event
//! passes). `session:entry_page` and `session:exit_page` are the pages of its
//! first and last page views. A session bounces when it is one page view and
//! nothing else.
//!
//! Storage returns the query's events as timelines; the sessions are cut and
//! aggregated here, one person at a time, so every backend answers alike.
//! A backend that keeps sessions cut at write time ([`summarise_sessions`])
//! may instead return the totals of the sessions it kept whole within the
//! range, with the events of the others ([`StoredSessions`]): the answer is
//! the same ([`SessionQuery::answer_stored`]).

use std::collections::HashSet;

use super::grouping::{bucket, sessions_of, Groups, Labels, PersonCount, RowPage, Session};
use super::{persons, LocalClock, PersonFold, TimelineEvent, TimelineRequest};
use crate::query::{
    Dimension, DimensionValue, EventDimension, Filter, MetricValue, QueryRows, SessionMetric,
    SessionQuery,
};

/// The matcher of the query's visit filter, after the page views'.
const VISIT_FILTER: usize = 1;

#[derive(Default)]
struct Totals {
    sessions: u64,
    events: u64,
    page_views: u64,
    bounces: u64,
    duration_us: i64,
    persons: PersonCount,
    /// Persons that storage counted in this group.
    stored_persons: u64,
    /// Those of them whose other sessions are folded here: not counted twice.
    counted: HashSet<u64>,
}

impl Totals {
    fn add(&mut self, session: &Session<'_>) {
        let events = session.events.len() as u64;
        self.sessions += 1;
        self.events += events;
        self.page_views += session.page_views;
        self.bounces += u64::from(session.page_views == 1 && events == 1);
        self.duration_us = self.duration_us.saturating_add(session.duration_us());
        let person = session.first().person;
        if !self.counted.contains(&person) {
            self.persons.add(person);
        }
    }

    fn add_stored(&mut self, group: StoredGroup) {
        self.sessions += group.sessions;
        self.events += group.events;
        self.page_views += group.page_views;
        self.bounces += group.bounces;
        self.duration_us = self.duration_us.saturating_add(group.duration_us);
        self.stored_persons += group.persons;
        self.counted.extend(group.folded_persons);
    }

    fn persons(&self) -> u64 {
        self.stored_persons + self.persons.count()
    }
}

/// The totals of a group of sessions that storage kept, cut at write time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredGroup {
    /// The group's dimension values, as storage reports them.
    pub values: Vec<DimensionValue>,
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
    /// Distinct persons among them.
    pub persons: u64,
    /// Those persons that also have events among [`StoredSessions::events`].
    pub folded_persons: Vec<u64>,
}

/// A session query's sessions as a backend that keeps sessions answers it:
/// the totals of the kept sessions that lie whole within the range (and
/// that no later write touched), and the timeline of every other session
/// with events in the range, as the query's timeline request would return
/// it, person by person. Each person's events there are whole sessions of
/// the range: none is within the timeout of an event left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredSessions {
    /// Kept sessions, by group.
    pub groups: Vec<StoredGroup>,
    /// The other sessions' events, ordered by person and time.
    pub events: Vec<TimelineEvent>,
}

/// A session as a backend keeps it: what a session query reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Its person.
    pub person: u64,
    /// Time of its first event, in microseconds since the epoch.
    pub start_us: i64,
    /// Time of its last event.
    pub end_us: i64,
    /// Its events.
    pub events: u64,
    /// Its page views.
    pub page_views: u64,
    /// The labels of its first event.
    pub first_labels: Vec<Option<String>>,
    /// The page of its first page view.
    pub entry_page: Option<String>,
    /// The page of its last page view.
    pub exit_page: Option<String>,
}

/// One person's sessions, from their whole timeline in order (matcher 0
/// marking page views, label `page_label` the page), as a session query
/// cuts them.
pub fn summarise_sessions(
    events: &[TimelineEvent],
    timeout: chrono::Duration,
    page_label: usize,
) -> Vec<SessionSummary> {
    let timeout_us = timeout.num_microseconds().unwrap_or(i64::MAX);
    let page = |event: Option<&TimelineEvent>| {
        event.and_then(|e| e.labels.get(page_label).cloned().flatten())
    };
    sessions_of(events, timeout_us)
        .into_iter()
        .map(|session| SessionSummary {
            person: session.first().person,
            start_us: session.first().timestamp_us,
            end_us: session.first().timestamp_us + session.duration_us(),
            events: session.events.len() as u64,
            page_views: session.page_views,
            first_labels: session.first().labels.clone(),
            entry_page: page(session.first_page_view),
            exit_page: page(session.last_page_view),
        })
        .collect()
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
        SessionMetric::Users => MetricValue::Count(totals.persons()),
        SessionMetric::Sessions => MetricValue::Count(totals.sessions),
        SessionMetric::BounceRate => per_session(totals.bounces as f64 * 100.0, 1),
        SessionMetric::SessionDuration => per_session(totals.duration_us as f64 / 1e6, 3),
        SessionMetric::EventsPerSession => per_session(totals.events as f64, 4),
        SessionMetric::Pageviews => MetricValue::Count(totals.page_views),
        SessionMetric::ViewsPerVisit => per_session(totals.page_views as f64, 2),
    }
}

/// The session groups counted so far.
pub struct SessionTally {
    clock: LocalClock,
    labels: Labels,
    groups: Groups<Totals>,
}

impl SessionQuery {
    /// The rows of the query from the sessions a backend kept: its groups'
    /// totals, and the other sessions folded as [`PersonFold::add_person`]
    /// folds them.
    pub fn answer_stored(&self, stored: StoredSessions) -> QueryRows {
        let mut tally = self.start();
        for group in stored.groups {
            let values = group.values.clone();
            tally.groups.entry(values).add_stored(group);
        }
        for person in persons(&stored.events) {
            self.add_person(&mut tally, person);
        }
        self.finish(tally)
    }
}

impl PersonFold for SessionQuery {
    type Tally = SessionTally;
    type Output = QueryRows;

    /// Every event of the query's range and filters, marked when it is a page
    /// view (and when it passes the visit filter), with the labels its
    /// dimensions need.
    fn timeline(&self) -> TimelineRequest {
        let labels = Labels::of(&self.dimensions).dimensions;
        let mut matchers = vec![Filter::is(EventDimension::Type, vec!["page".to_owned()])];
        matchers.extend(self.visit_filter.clone());
        TimelineRequest {
            project_id: self.project_id.clone(),
            range: self.range,
            filter: self.filter.clone(),
            // Ties decide a session's first event only when it is read.
            ordered_ties: !labels.is_empty() || matchers.len() > 1,
            matchers,
            all_events: true,
            labels,
        }
    }

    fn start(&self) -> SessionTally {
        SessionTally {
            clock: LocalClock::from_schedule(&self.offsets),
            labels: Labels::of(&self.dimensions),
            groups: Groups::new(),
        }
    }

    fn add_person(&self, tally: &mut SessionTally, events: &[TimelineEvent]) {
        let timeout_us = self.timeout.num_microseconds().unwrap_or(i64::MAX);
        for session in sessions_of(events, timeout_us) {
            if self.visit_filter.is_some() && !session.first().matches(VISIT_FILTER) {
                continue;
            }
            let values: Vec<DimensionValue> = self
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, dimension)| match dimension {
                    Dimension::Time(granularity) => {
                        bucket(&tally.clock, *granularity, session.first().timestamp_us)
                    }
                    Dimension::Session(session_dimension) => {
                        DimensionValue::Text(session.value(&tally.labels, i, *session_dimension))
                    }
                    Dimension::Event(_) => {
                        DimensionValue::Text(tally.labels.value(i, session.first()))
                    }
                })
                .collect();
            tally.groups.entry(values).add(&session);
        }
    }

    fn finish(&self, tally: SessionTally) -> QueryRows {
        let page = RowPage {
            order_by: &self.order_by,
            limit: self.limit,
            offset: self.offset,
            all_rows: self.all_rows,
            dimensionless: self.dimensions.is_empty(),
        };
        tally.groups.rows(&page, |totals| {
            self.metrics
                .iter()
                .map(|metric| metric_value(*metric, totals))
                .collect()
        })
    }
}
