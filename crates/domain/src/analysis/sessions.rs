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

use super::grouping::{bucket, sessions_of, Groups, Labels, PersonCount, RowPage, Session};
use super::{LocalClock, PersonFold, TimelineEvent, TimelineRequest};
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
}

impl Totals {
    fn add(&mut self, session: &Session<'_>) {
        let events = session.events.len() as u64;
        self.sessions += 1;
        self.events += events;
        self.page_views += session.page_views;
        self.bounces += u64::from(session.page_views == 1 && events == 1);
        self.duration_us = self.duration_us.saturating_add(session.duration_us());
        self.persons.add(session.first().person);
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
        SessionMetric::Users => MetricValue::Count(totals.persons.count()),
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
