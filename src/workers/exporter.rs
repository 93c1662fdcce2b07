//! The exporter worker: every `interval`, computes business gauges from storage
//! and publishes them on `/metrics`.
//!
//! Per project: events of the last 5 minutes by name (the top names, the rest
//! as `(other)`), persons active in the last 5 minutes and the last day, and
//! ingestion freshness (now minus the newest stored `receivedAt`). Counts go
//! through the query planner and [`Repository::query`], so they are exactly
//! what `POST /v1/query` answers for the same window, merged persons included.
//!
//! Projects are read one after the other, one query at a time, so the worker
//! never holds more than one storage reader. A failed query leaves its gauges
//! out of that computation (no stale value), counts in
//! `analytics_exporter_errors_total` and logs a warning; the worker goes on.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::ExporterConfig;
use crate::domain::query::{
    plan, MetricValue, PlanContext, QueryError, QueryPlan, QueryRequest, QueryRows,
};
use crate::domain::query::{DimensionValue, QueryRow};
use crate::domain::{Project, ProjectRegistry};
use crate::storage::{Repository, StorageError};
use crate::telemetry::exporter_metrics::{
    ActivitySnapshot, ExporterMetrics, ExporterQuery, ProjectActivity, OTHER_EVENTS,
};

/// The window of the recent-events and short active-users gauges.
const RECENT_WINDOW: Duration = Duration::minutes(5);
/// The window of the long active-users gauge.
const DAILY_WINDOW: Duration = Duration::days(1);

/// Why one of the exporter's queries gave no value.
#[derive(Debug, thiserror::Error)]
enum GaugeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the exporter built an invalid query: {0}")]
    Plan(#[from] QueryError),
}

/// Computes the business gauges on a schedule.
pub struct Exporter {
    repository: Arc<dyn Repository>,
    projects: Arc<ProjectRegistry>,
    metrics: ExporterMetrics,
    settings: ExporterConfig,
}

impl Exporter {
    /// An exporter over the configured projects.
    pub fn new(
        repository: Arc<dyn Repository>,
        projects: Arc<ProjectRegistry>,
        metrics: ExporterMetrics,
        settings: ExporterConfig,
    ) -> Self {
        Self {
            repository,
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
        let mut record = |query: ExporterQuery, error: GaugeError| {
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
    ) -> Result<(u64, u64), GaugeError> {
        let plan = window_plan(project, now, RECENT_WINDOW, &["events", "users"], None)?;
        let rows = self.repository.query(&plan).await?;
        let metrics = rows.rows.first().map(|row| row.metrics.as_slice());
        Ok((count_at(metrics, 0), count_at(metrics, 1)))
    }

    /// The top event names of the last 5 minutes, and `(other)` for the rest
    /// of `total`.
    async fn top_events(
        &self,
        project: &Project,
        now: DateTime<Utc>,
        total: u64,
    ) -> Result<Vec<(String, u64)>, GaugeError> {
        if total == 0 {
            return Ok(Vec::new());
        }
        let plan = window_plan(
            project,
            now,
            RECENT_WINDOW,
            &["events"],
            Some(self.settings.top_events),
        )?;
        let rows = self.repository.query(&plan).await?;
        Ok(with_other(named_counts(rows), total))
    }

    async fn count_users(
        &self,
        project: &Project,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<u64, GaugeError> {
        let plan = window_plan(project, now, window, &["users"], None)?;
        let rows = self.repository.query(&plan).await?;
        Ok(count_at(
            rows.rows.first().map(|row| row.metrics.as_slice()),
            0,
        ))
    }

    /// Seconds since the newest receipt among events of the lookback; the
    /// lookback itself when there is none.
    async fn freshness(&self, project: &Project, now: DateTime<Utc>) -> Result<f64, GaugeError> {
        let lookback = Duration::from_std(self.settings.freshness_lookback)
            .unwrap_or(Duration::MAX)
            .min(Duration::days(365_000));
        let newest = self
            .repository
            .newest_received_at(&project.id, now - lookback)
            .await?;
        let age = newest.map_or(lookback, |received| (now - received).max(Duration::zero()));
        Ok(age.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6)
    }
}

/// A plan for `metrics` over the `window` that ends at `now`, by event name
/// (largest first, `limit` names) when `by_name` is given.
fn window_plan(
    project: &Project,
    now: DateTime<Utc>,
    window: Duration,
    metrics: &[&str],
    by_name: Option<usize>,
) -> Result<QueryPlan, QueryError> {
    // Date-time ranges include their end: stop one microsecond before `now`.
    let last = now - Duration::microseconds(1);
    let mut request = json!({
        "metrics": metrics,
        "date_range": [(now - window).to_rfc3339(), last.to_rfc3339()],
        "timezone": "UTC",
    });
    if let Some(limit) = by_name {
        request["dimensions"] = json!(["event:name"]);
        request["order_by"] = json!([["events", "desc"], ["event:name", "asc"]]);
        request["pagination"] = json!({"limit": limit});
    }
    let request: QueryRequest = serde_json::from_value(request)
        .map_err(|error| QueryError::new("request", error.to_string()))?;
    plan(
        &request,
        &PlanContext {
            project_id: project.id.clone(),
            default_timezone: project.timezone,
            now,
            data_bounds: None,
            session_timeout: project.session_timeout,
        },
    )
}

fn count_at(metrics: Option<&[MetricValue]>, index: usize) -> u64 {
    match metrics.and_then(|metrics| metrics.get(index)) {
        Some(MetricValue::Count(count)) => *count,
        _ => 0,
    }
}

fn named_counts(rows: QueryRows) -> Vec<(String, u64)> {
    rows.rows
        .into_iter()
        .map(
            |QueryRow {
                 dimensions,
                 metrics,
             }| {
                let name = match dimensions.into_iter().next() {
                    Some(DimensionValue::Text(Some(name))) => name,
                    _ => String::new(),
                };
                (name, count_at(Some(&metrics), 0))
            },
        )
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
        let projects = ProjectRegistry::from_config(&[ProjectConfig {
            id: "shop".into(),
            timezone: "Europe/Berlin".into(),
            write_keys: Vec::new(),
            read_keys: Vec::new(),
            session_timeout: std::time::Duration::from_secs(1800),
        }]);
        Exporter::new(
            repository,
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
    fn the_window_plans_are_valid_and_end_before_now() {
        let project = Project {
            id: "shop".into(),
            timezone: chrono_tz::Europe::Berlin,
            session_timeout: Duration::minutes(30),
        };
        let now = Utc::now();
        let plan = window_plan(&project, now, RECENT_WINDOW, &["events"], Some(10)).unwrap();
        assert_eq!(plan.range.from, now - RECENT_WINDOW);
        assert_eq!(plan.range.to, now);
        assert_eq!(plan.limit, 10);
        assert_eq!(plan.dimensions.len(), 1);
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
