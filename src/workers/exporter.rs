//! The exporter worker: every `interval`, computes business gauges from storage
//! and publishes them on `/metrics`.
//!
//! Per project: events of the last 5 minutes by name (the top names, the rest
//! as `(other)`), persons active in the last 5 minutes and the last day, and
//! ingestion freshness (now minus the newest stored `receivedAt`). Counts are
//! asked of [`QueryService::query`], the use case behind `POST /v1/query`, so
//! they are exactly what it answers for the same window, merged persons
//! included.
//!
//! Projects are read one after the other, one query at a time, so the worker
//! never holds more than one storage reader. A failed query leaves its gauges
//! out of that computation (no stale value), counts in
//! `analytics_exporter_errors_total` and logs a warning; the worker goes on.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::app::{AppError, QueryService};
use crate::config::ExporterConfig;
use crate::domain::query::{
    Answer, DateRangeSpec, Dimension, EventDimension, Metric, OrderKey, QuerySpec,
    RequestedDimension,
};
use crate::domain::{Project, ProjectRegistry};
use crate::telemetry::exporter_metrics::{
    ActivitySnapshot, ExporterMetrics, ExporterQuery, ProjectActivity, OTHER_EVENTS,
};

/// The window of the recent-events and short active-users gauges.
const RECENT_WINDOW: Duration = Duration::minutes(5);
/// The window of the long active-users gauge.
const DAILY_WINDOW: Duration = Duration::days(1);

/// Computes the business gauges on a schedule.
pub struct Exporter {
    reads: Arc<QueryService>,
    projects: Arc<ProjectRegistry>,
    metrics: ExporterMetrics,
    settings: ExporterConfig,
}

impl Exporter {
    /// An exporter over the configured projects.
    pub fn new(
        reads: Arc<QueryService>,
        projects: Arc<ProjectRegistry>,
        metrics: ExporterMetrics,
        settings: ExporterConfig,
    ) -> Self {
        Self {
            reads,
            projects,
            metrics,
            settings,
        }
    }

    /// Computes the gauges at once, then every `interval`, until `stop`.
    /// A computation that outlasts the interval delays the next one.
    pub async fn run(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                _ = self.run_once(Utc::now()) => {}
            }
        }
    }

    /// Computes and publishes every gauge once, as of `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> ActivitySnapshot {
        let started = Instant::now();
        let mut failed = false;
        let mut snapshot = ActivitySnapshot::default();
        for project in self.projects.projects() {
            let activity = self.project_activity(project, now, &mut failed).await;
            snapshot.projects.push(activity);
        }
        self.metrics.publish(&snapshot);
        self.metrics
            .run_duration
            .observe(started.elapsed().as_secs_f64());
        if !failed {
            self.metrics
                .last_success
                .set(now.timestamp_micros() as f64 / 1e6);
        }
        snapshot
    }

    async fn project_activity(
        &self,
        project: &Project,
        now: DateTime<Utc>,
        failed: &mut bool,
    ) -> ProjectActivity {
        let mut activity = ProjectActivity {
            project_id: project.id.clone(),
            ..ProjectActivity::default()
        };
        let mut record = |query: ExporterQuery, error: AppError| {
            *failed = true;
            self.metrics
                .errors
                .with_label_values(&[query.label()])
                .inc();
            tracing::warn!(project = %project.id, query = query.label(), %error, "exporter query failed; its gauges are left out");
        };

        match self.recent_totals(project, now).await {
            Ok((events, users)) => {
                activity.active_users_5m = Some(users);
                match self.top_events(project, now, events).await {
                    Ok(names) => activity.recent_events = Some(names),
                    Err(error) => record(ExporterQuery::TopEvents, error),
                }
            }
            Err(error) => record(ExporterQuery::RecentTotals, error),
        }
        match self.count_users(project, now, DAILY_WINDOW).await {
            Ok(users) => activity.active_users_1d = Some(users),
            Err(error) => record(ExporterQuery::DailyUsers, error),
        }
        match self.freshness(project, now).await {
            Ok(seconds) => activity.freshness_seconds = Some(seconds),
            Err(error) => record(ExporterQuery::Freshness, error),
        }
        activity
    }

    /// Events and persons of the last 5 minutes.
    async fn recent_totals(
        &self,
        project: &Project,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), AppError> {
        let spec = window_spec(
            now,
            RECENT_WINDOW,
            vec![Metric::Events, Metric::Users],
            None,
        );
        let answer = self.reads.query(project, &spec).await?;
        Ok((count_at(&answer, 0, 0), count_at(&answer, 0, 1)))
    }

    /// The top event names of the last 5 minutes, and `(other)` for the rest
    /// of `total`.
    async fn top_events(
        &self,
        project: &Project,
        now: DateTime<Utc>,
        total: u64,
    ) -> Result<Vec<(String, u64)>, AppError> {
        if total == 0 {
            return Ok(Vec::new());
        }
        let spec = window_spec(
            now,
            RECENT_WINDOW,
            vec![Metric::Events],
            Some(self.settings.top_events),
        );
        let answer = self.reads.query(project, &spec).await?;
        Ok(with_other(named_counts(answer), total))
    }

    async fn count_users(
        &self,
        project: &Project,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<u64, AppError> {
        let spec = window_spec(now, window, vec![Metric::Users], None);
        let answer = self.reads.query(project, &spec).await?;
        Ok(count_at(&answer, 0, 0))
    }

    /// Seconds since the newest receipt among events of the lookback; the
    /// lookback itself when there is none.
    async fn freshness(&self, project: &Project, now: DateTime<Utc>) -> Result<f64, AppError> {
        let lookback = Duration::from_std(self.settings.freshness_lookback)
            .unwrap_or(Duration::MAX)
            .min(Duration::days(365_000));
        let newest = self
            .reads
            .newest_received_at(project, now - lookback)
            .await?;
        let age = newest.map_or(lookback, |received| (now - received).max(Duration::zero()));
        Ok(age.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6)
    }
}

/// A spec of `metrics` over the `window` that ends at `now`, in UTC, by
/// event name (largest first, `limit` names) when `by_name` is given.
fn window_spec(
    now: DateTime<Utc>,
    window: Duration,
    metrics: Vec<Metric>,
    by_name: Option<usize>,
) -> QuerySpec {
    // Date-time ranges include their end: stop one microsecond before `now`.
    let last = now - Duration::microseconds(1);
    let range = DateRangeSpec::Instants((now - window).fixed_offset(), last.fixed_offset());
    let mut spec = QuerySpec {
        timezone: Some(chrono_tz::UTC),
        ..QuerySpec::new(metrics, range)
    };
    if let Some(limit) = by_name {
        spec.dimensions = vec![RequestedDimension::Exact(Dimension::Event(
            EventDimension::Name,
        ))];
        spec.order_by = vec![
            OrderKey {
                name: "events".into(),
                descending: true,
            },
            OrderKey {
                name: "event:name".into(),
                descending: false,
            },
        ];
        spec.limit = Some(limit as u64);
    }
    spec
}

/// The count in metric `metric` of row `row`, 0 when absent.
fn count_at(answer: &Answer, row: usize, metric: usize) -> u64 {
    answer
        .results
        .get(row)
        .and_then(|row| row.metrics.get(metric))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

fn named_counts(answer: Answer) -> Vec<(String, u64)> {
    answer
        .results
        .into_iter()
        .map(|row| {
            let count = row
                .metrics
                .first()
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let name = row
                .dimensions
                .into_iter()
                .next()
                .flatten()
                .unwrap_or_default();
            (name, count)
        })
        .collect()
}

/// Appends `(other)` with what `total` holds beyond the listed names.
fn with_other(mut names: Vec<(String, u64)>, total: u64) -> Vec<(String, u64)> {
    let listed: u64 = names.iter().map(|(_, count)| count).sum();
    if total > listed {
        names.push((OTHER_EVENTS.to_owned(), total - listed));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProjectConfig;
    use crate::storage::testing::FakeRepository;
    use crate::telemetry::Metrics;
    use std::sync::atomic::Ordering;

    fn exporter(repository: Arc<FakeRepository>, metrics: &Metrics) -> Exporter {
        let limits = crate::app::ReadLimits::new(
            &crate::config::ReadConfig::default(),
            metrics.read_limit_refusals.clone(),
        );
        let projects = crate::config::registry(&[ProjectConfig {
            timezone: "Europe/Berlin".into(),
            ..ProjectConfig::new("shop")
        }]);
        Exporter::new(
            Arc::new(QueryService::new(repository, limits)),
            Arc::new(projects),
            metrics.exporter.clone(),
            ExporterConfig::default(),
        )
    }

    #[test]
    fn the_rest_of_the_total_goes_to_other() {
        let names = vec![("a".to_owned(), 5), ("b".to_owned(), 3)];
        assert_eq!(
            with_other(names.clone(), 10),
            vec![("a".into(), 5), ("b".into(), 3), (OTHER_EVENTS.into(), 2)]
        );
        assert_eq!(with_other(names.clone(), 8), names);
    }

    #[test]
    fn the_window_specs_plan_and_end_before_now() {
        let now = Utc::now();
        let spec = window_spec(now, RECENT_WINDOW, vec![Metric::Events], Some(10));
        let context = crate::domain::query::PlanContext {
            project_id: "shop".into(),
            default_timezone: chrono_tz::Europe::Berlin,
            now,
            data_bounds: None,
            session_timeout: Duration::minutes(30),
        };
        let plan = crate::domain::query::plan(&spec, &context).unwrap();
        assert_eq!(plan.range.from, now - RECENT_WINDOW);
        assert_eq!(plan.range.to, now);
        assert_eq!(plan.limit, 10);
        assert_eq!(plan.dimensions.len(), 1);
        assert_eq!(plan.timezone, chrono_tz::UTC);
    }

    #[tokio::test]
    async fn failing_storage_is_counted_and_the_worker_recovers() {
        let repository = Arc::new(FakeRepository::default());
        repository.unreachable.store(true, Ordering::SeqCst);
        let metrics = Metrics::new();
        let exporter = exporter(repository.clone(), &metrics);

        let snapshot = exporter.run_once(Utc::now()).await;
        assert_eq!(snapshot.projects[0].active_users_1d, None);
        assert_eq!(snapshot.projects[0].freshness_seconds, None);
        for query in ["recent_totals", "daily_users", "freshness"] {
            assert_eq!(
                metrics.exporter.errors.with_label_values(&[query]).get(),
                1,
                "{query}"
            );
        }
        assert_eq!(metrics.exporter.last_success.get(), 0.0);

        repository.unreachable.store(false, Ordering::SeqCst);
        let now = Utc::now();
        let snapshot = exporter.run_once(now).await;
        let activity = &snapshot.projects[0];
        assert_eq!(activity.active_users_5m, Some(0));
        assert_eq!(activity.recent_events, Some(Vec::new()));
        assert_eq!(activity.freshness_seconds, Some(86_400.0));
        assert!(metrics.exporter.last_success.get() > 0.0);
        assert!(metrics
            .render()
            .contains("analytics_project_ingest_freshness_seconds{project=\"shop\"} 86400"));
    }
}
