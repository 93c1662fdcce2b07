//! What the exporter worker publishes: business gauges computed from storage,
//! and the worker's own health.
//!
//! The gauges are replaced as a whole after each computation, under one lock
//! that scrapes also take, so a scrape never sees half of one computation and
//! half of the previous. Label values stay bounded: `project` is one of the
//! configured projects, `event` one of a project's top names or `(other)`, and
//! `window` is `5m` or `1d`.

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The `event` label of the events outside a project's top names.
pub const OTHER_EVENTS: &str = "(other)";

/// The business gauges of every project, from one computation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivitySnapshot {
    /// One entry per project.
    pub projects: Vec<ProjectActivity>,
}

/// One project's gauges; `None` where the storage query failed, so that no
/// stale value is published in its place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectActivity {
    /// The project's id.
    pub project_id: String,
    /// Events in the last 5 minutes by name: the top names, then `(other)`.
    pub recent_events: Option<Vec<(String, u64)>>,
    /// Persons active in the last 5 minutes.
    pub active_users_5m: Option<u64>,
    /// Persons active in the last day.
    pub active_users_1d: Option<u64>,
    /// Seconds since the newest stored `receivedAt`.
    pub freshness_seconds: Option<f64>,
}

/// Storage queries of the exporter, as the `query` label of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterQuery {
    /// Events and persons of the last 5 minutes.
    RecentTotals,
    /// Events of the last 5 minutes by name.
    TopEvents,
    /// Persons of the last day.
    DailyUsers,
    /// Newest receipt time.
    Freshness,
}

impl ExporterQuery {
    /// Every query, in the order the exporter runs them.
    pub const ALL: [ExporterQuery; 4] = [
        ExporterQuery::RecentTotals,
        ExporterQuery::TopEvents,
        ExporterQuery::DailyUsers,
        ExporterQuery::Freshness,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ExporterQuery::RecentTotals => "recent_totals",
            ExporterQuery::TopEvents => "top_events",
            ExporterQuery::DailyUsers => "daily_users",
            ExporterQuery::Freshness => "freshness",
        }
    }
}

#[derive(Clone)]
struct BusinessGauges {
    recent_events: IntGaugeVec,
    active_users: IntGaugeVec,
    freshness: GaugeVec,
    /// Held while the gauges are replaced and while they are collected.
    lock: Arc<Mutex<()>>,
}

impl BusinessGauges {
    fn new() -> Self {
        Self {
            recent_events: IntGaugeVec::new(
                Opts::new(
                    "analytics_project_recent_events",
                    "Events timestamped in the last 5 minutes, by project and event name (the top names; the rest as (other)).",
                ),
                &["project", "event"],
            )
            .expect("valid metric"),
            active_users: IntGaugeVec::new(
                Opts::new(
                    "analytics_project_active_users",
                    "Distinct persons with an event in the window (5m or 1d), by project.",
                ),
                &["project", "window"],
            )
            .expect("valid metric"),
            freshness: GaugeVec::new(
                Opts::new(
                    "analytics_project_ingest_freshness_seconds",
                    "Seconds since the newest stored receivedAt, by project (at most the configured lookback).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, snapshot: &ActivitySnapshot) {
        let _guard = self.guard();
        self.recent_events.reset();
        self.active_users.reset();
        self.freshness.reset();
        for project in &snapshot.projects {
            let id = project.project_id.as_str();
            for (event, count) in project.recent_events.iter().flatten() {
                self.recent_events
                    .with_label_values(&[id, event])
                    .set(saturating_i64(*count));
            }
            for (window, users) in [
                ("5m", project.active_users_5m),
                ("1d", project.active_users_1d),
            ] {
                if let Some(users) = users {
                    self.active_users
                        .with_label_values(&[id, window])
                        .set(saturating_i64(users));
                }
            }
            if let Some(seconds) = project.freshness_seconds {
                self.freshness.with_label_values(&[id]).set(seconds);
            }
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for BusinessGauges {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.recent_events.desc();
        descs.extend(self.active_users.desc());
        descs.extend(self.freshness.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.guard();
        let mut families = self.recent_events.collect();
        families.extend(self.active_users.collect());
        families.extend(self.freshness.collect());
        families
    }
}

/// The exporter's gauges and health metrics, registered in the instance's registry.
#[derive(Clone)]
pub struct ExporterMetrics {
    gauges: BusinessGauges,
    /// Failed storage queries, by query.
    pub errors: IntCounterVec,
    /// Time to compute every gauge once.
    pub run_duration: Histogram,
    /// When a computation last finished without a failed query (Unix seconds).
    pub last_success: Gauge,
}

impl ExporterMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
            gauges: BusinessGauges::new(),
            errors: IntCounterVec::new(
                Opts::new(
                    "analytics_exporter_errors_total",
                    "Failed storage queries of the exporter, by query.",
                ),
                &["query"],
            )
            .expect("valid metric"),
            run_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "analytics_exporter_run_duration_seconds",
                    "Time to compute every business gauge once.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )
            .expect("valid metric"),
            last_success: Gauge::new(
                "analytics_exporter_last_success_timestamp_seconds",
                "When the exporter last computed every gauge without a failed query (Unix time).",
            )
            .expect("valid metric"),
        };
        for query in ExporterQuery::ALL {
            metrics.errors.with_label_values(&[query.label()]);
        }
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(metrics.gauges.clone()),
            Box::new(metrics.errors.clone()),
            Box::new(metrics.run_duration.clone()),
            Box::new(metrics.last_success.clone()),
        ];
        super::register_all(registry, collectors);
        metrics
    }

    /// Replaces every business gauge with the snapshot's values.
    pub fn publish(&self, snapshot: &ActivitySnapshot) {
        self.gauges.publish(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(registry: &Registry) -> String {
        let mut buffer = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buffer,
        )
        .unwrap();
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn a_new_snapshot_replaces_the_previous_one_whole() {
        let registry = Registry::new();
        let metrics = ExporterMetrics::register(&registry);
        metrics.publish(&ActivitySnapshot {
            projects: vec![ProjectActivity {
                project_id: "shop".into(),
                recent_events: Some(vec![("signup".into(), 3), (OTHER_EVENTS.into(), 1)]),
                active_users_5m: Some(2),
                active_users_1d: Some(7),
                freshness_seconds: Some(1.5),
            }],
        });
        let text = render(&registry);
        assert!(
            text.contains("analytics_project_recent_events{event=\"signup\",project=\"shop\"} 3")
        );
        assert!(
            text.contains("analytics_project_recent_events{event=\"(other)\",project=\"shop\"} 1")
        );
        assert!(text.contains("analytics_project_active_users{project=\"shop\",window=\"1d\"} 7"));
        assert!(text.contains("analytics_project_ingest_freshness_seconds{project=\"shop\"} 1.5"));

        // The names query failed this time: no stale per-name values remain.
        metrics.publish(&ActivitySnapshot {
            projects: vec![ProjectActivity {
                project_id: "shop".into(),
                active_users_5m: Some(0),
                ..ProjectActivity::default()
            }],
        });
        let text = render(&registry);
        assert!(!text.contains("analytics_project_recent_events{"), "{text}");
        assert!(!text.contains("window=\"1d\""), "{text}");
        assert!(text.contains("analytics_project_active_users{project=\"shop\",window=\"5m\"} 0"));
        assert!(text.contains("analytics_exporter_errors_total{query=\"freshness\"} 0"));
    }
}
