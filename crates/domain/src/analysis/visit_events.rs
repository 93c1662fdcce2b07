//! Event metrics by what a visit was: `events`, `users`, `pageviews` (and
//! `visitors`, `percentage`) of `/v1/query` when a dimension or filter names a visit's
//! referrer domain, source or channel.
//!
//! A page a visitor reaches from a search engine refers to the search
//! engine; the pages they go on to refer to the site itself. So the visit's
//! source is its first event's, and every event of the visit is counted
//! under it. Sessions are cut from all of a person's events in the range,
//! whatever the filters; then the events that pass the query's filters
//! (those of visits that pass its visit filter) are counted, each under its
//! own time bucket and event dimensions and its visit's session dimensions.

use super::grouping::{bucket, sessions_of, Groups, Labels, PersonCount, RowPage, PAGE_VIEW};
use super::{LocalClock, PersonFold, TimelineEvent, TimelineRequest};
use crate::query::{
    Dimension, DimensionValue, EventDimension, EventMetric, Filter, MetricValue, QueryRows,
    SessionMetric, SessionQuery, VisitEventQuery,
};

/// Matchers after the page views': the query's event filter, then its visit
/// filter, each when the query has one.
fn matcher_indices(query: &VisitEventQuery) -> (Option<usize>, Option<usize>) {
    let events = query.filter.as_ref().map(|_| 1);
    let visits = query
        .visit_filter
        .as_ref()
        .map(|_| 1 + usize::from(events.is_some()));
    (events, visits)
}

#[derive(Default)]
struct Totals {
    events: u64,
    page_views: u64,
    persons: PersonCount,
}

/// The groups counted so far, and every person counted once.
pub struct VisitEventTally {
    clock: LocalClock,
    labels: Labels,
    groups: Groups<Totals>,
    persons: PersonCount,
}

impl VisitEventQuery {
    /// The session query with the same rows, when there is one: with no
    /// filter and only session dimensions, a visit's events are its
    /// session's, so `events`, `users` and `pageviews` by what visits were
    /// are those of the sessions.
    pub fn as_session_query(&self) -> Option<SessionQuery> {
        if self.filter.is_some()
            || self.visit_filter.is_some()
            || !self
                .dimensions
                .iter()
                .all(|d| matches!(d, Dimension::Session(_)))
        {
            return None;
        }
        let metrics = self
            .metrics
            .iter()
            .map(|metric| match metric {
                EventMetric::Events => Some(SessionMetric::Events),
                EventMetric::Users => Some(SessionMetric::Users),
                EventMetric::Pageviews => Some(SessionMetric::Pageviews),
                EventMetric::Numeric(..) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SessionQuery {
            project_id: self.project_id.clone(),
            metrics,
            dimensions: self.dimensions.clone(),
            filter: None,
            visit_filter: None,
            range: self.range,
            offsets: self.offsets.clone(),
            timeout: self.timeout,
            order_by: self.order_by.clone(),
            limit: self.limit,
            offset: self.offset,
            all_rows: self.all_rows,
        })
    }
}

impl PersonFold for VisitEventQuery {
    type Tally = VisitEventTally;
    /// The rows, and the persons counted in all of them.
    type Output = (QueryRows, u64);

    /// Every event of the range, marked when it is a page view, passes the
    /// event filter and passes the visit filter, with the labels the
    /// dimensions need.
    fn timeline(&self) -> TimelineRequest {
        let mut matchers = vec![Filter::is(EventDimension::Type, vec!["page".to_owned()])];
        matchers.extend(self.filter.clone());
        matchers.extend(self.visit_filter.clone());
        TimelineRequest {
            project_id: self.project_id.clone(),
            range: self.range,
            filter: None,
            matchers,
            all_events: true,
            ordered_ties: true,
            labels: Labels::of(&self.dimensions).dimensions,
        }
    }

    fn start(&self) -> VisitEventTally {
        VisitEventTally {
            clock: LocalClock::from_schedule(&self.offsets),
            labels: Labels::of(&self.dimensions),
            groups: Groups::new(),
            persons: PersonCount::default(),
        }
    }

    fn add_person(&self, tally: &mut VisitEventTally, events: &[TimelineEvent]) {
        let timeout_us = self.timeout.num_microseconds().unwrap_or(i64::MAX);
        let (event_filter, visit_filter) = matcher_indices(self);
        for session in sessions_of(events, timeout_us) {
            if visit_filter.is_some_and(|bit| !session.first().matches(bit)) {
                continue;
            }
            let visit_values: Vec<Option<DimensionValue>> = self
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, dimension)| match dimension {
                    Dimension::Session(session_dimension) => Some(DimensionValue::Text(
                        session.value(&tally.labels, i, *session_dimension),
                    )),
                    _ => None,
                })
                .collect();
            for event in session.events {
                if event_filter.is_some_and(|bit| !event.matches(bit)) {
                    continue;
                }
                let values: Vec<DimensionValue> = self
                    .dimensions
                    .iter()
                    .zip(&visit_values)
                    .enumerate()
                    .map(
                        |(i, (dimension, visit_value))| match (dimension, visit_value) {
                            (_, Some(value)) => value.clone(),
                            (Dimension::Time(granularity), None) => {
                                bucket(&tally.clock, *granularity, event.timestamp_us)
                            }
                            (_, None) => DimensionValue::Text(tally.labels.value(i, event)),
                        },
                    )
                    .collect();
                let totals = tally.groups.entry(values);
                totals.events += 1;
                totals.page_views += u64::from(event.matches(PAGE_VIEW));
                totals.persons.add(event.person);
                tally.persons.add(event.person);
            }
        }
    }

    fn finish(&self, tally: VisitEventTally) -> (QueryRows, u64) {
        let page = RowPage {
            order_by: &self.order_by,
            limit: self.limit,
            offset: self.offset,
            all_rows: self.all_rows,
            dimensionless: self.dimensions.is_empty(),
        };
        let rows = tally.groups.rows(&page, |totals| {
            self.metrics
                .iter()
                .map(|metric| match metric {
                    EventMetric::Users => MetricValue::Count(totals.persons.count()),
                    EventMetric::Pageviews => MetricValue::Count(totals.page_views),
                    // The planner refuses numeric aggregates here.
                    EventMetric::Events | EventMetric::Numeric(..) => {
                        MetricValue::Count(totals.events)
                    }
                })
                .collect()
        });
        (rows, tally.persons.count())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::query::{
        Acquisition, OffsetSchedule, OrderTarget, Ordering, SessionDimension, TimeRange,
    };

    /// An event of person 1 at `minute`: a page view when `page`, with its
    /// labels (page, source) and whether it passes the event filter.
    fn event(minute: i64, page: bool, source: &str, passes: bool) -> TimelineEvent {
        TimelineEvent {
            person: 1,
            timestamp_us: minute * 60_000_000,
            matches: u64::from(page) | (u64::from(passes) << 1),
            labels: vec![Some(source.to_owned())],
        }
    }

    fn query() -> VisitEventQuery {
        let range = TimeRange {
            from: Utc.timestamp_opt(0, 0).unwrap(),
            to: Utc.timestamp_opt(86_400, 0).unwrap(),
        };
        VisitEventQuery {
            project_id: "p".into(),
            metrics: vec![EventMetric::Events, EventMetric::Users],
            dimensions: vec![Dimension::Session(SessionDimension::Acquisition(
                Acquisition::Source,
            ))],
            filter: Some(Filter::is(EventDimension::Page, vec!["/pricing".into()])),
            visit_filter: None,
            range,
            offsets: OffsetSchedule::for_range(chrono_tz::UTC, range),
            timeout: Duration::minutes(30),
            order_by: vec![Ordering {
                target: OrderTarget::Metric(0),
                descending: true,
            }],
            limit: 10,
            offset: 0,
            all_rows: false,
        }
    }

    #[test]
    fn each_event_counts_under_its_visits_source_whatever_it_refers_to() {
        let query = query();
        let mut tally = query.start();
        query.add_person(
            &mut tally,
            &[
                // A visit from Google: the landing page, then two pages that
                // refer to the site; the second visit is direct.
                event(0, true, "Google", false),
                event(5, true, "", true),
                event(9, true, "", true),
                event(60, true, "Direct", true),
            ],
        );
        let (rows, persons) = query.finish(tally);
        let counted: Vec<(DimensionValue, MetricValue)> = rows
            .rows
            .into_iter()
            .map(|row| (row.dimensions[0].clone(), row.metrics[0]))
            .collect();
        assert_eq!(
            counted,
            vec![
                (
                    DimensionValue::Text(Some("Google".into())),
                    MetricValue::Count(2)
                ),
                (
                    DimensionValue::Text(Some("Direct".into())),
                    MetricValue::Count(1)
                ),
            ]
        );
        assert_eq!(persons, 1);
    }

    #[test]
    fn without_filters_visit_events_are_their_sessions_events() {
        let unfiltered = VisitEventQuery {
            filter: None,
            metrics: vec![
                EventMetric::Events,
                EventMetric::Users,
                EventMetric::Pageviews,
            ],
            ..query()
        };
        let sessions = unfiltered.as_session_query().expect("a session query");
        let person = |person: u64, minutes: &[(i64, bool, &str)]| -> Vec<TimelineEvent> {
            minutes
                .iter()
                .map(|&(minute, page, source)| TimelineEvent {
                    person,
                    ..event(minute, page, source, false)
                })
                .collect()
        };
        let timeline: Vec<TimelineEvent> = [
            person(
                1,
                &[(0, true, "Google"), (5, false, ""), (90, true, "Direct")],
            ),
            person(
                2,
                &[(10, true, "Google"), (200, true, "Bing"), (210, true, "")],
            ),
        ]
        .concat();
        let (visit_rows, _) = crate::analysis::fold_all(unfiltered.clone(), timeline.clone());
        let session_rows = crate::analysis::fold_all(sessions, timeline);
        assert_eq!(visit_rows, session_rows);
        assert_eq!(visit_rows.rows.len(), 3);

        let filtered = query();
        assert!(filtered.as_session_query().is_none(), "an event filter");
        let by_time = VisitEventQuery {
            filter: None,
            dimensions: vec![Dimension::Time(crate::query::Granularity::Day)],
            ..query()
        };
        assert!(
            by_time.as_session_query().is_none(),
            "each event's own bucket"
        );
    }
}
