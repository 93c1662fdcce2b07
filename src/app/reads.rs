//! The read use cases: a query, an analysis, discovery of names and keys, an
//! export. Each runs the same flow, once: plan the spec for the project and
//! the clock, read under the limits, compute off the async runtime, answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;

use super::error::{AppError, Limit};
use super::limits::ReadLimits;
use crate::domain::analysis::{Analysis, Folding, PersonFold};
use crate::domain::query::{
    answer, apply_conversion_rates, compared_spec, plan, Answer, DateRangeSpec, Dimension,
    EventDimension, Metric, MetricValue, PlanContext, QueryPlan, QueryRows, QuerySpec,
    RequestedDimension, RowSource, SessionMetric, SessionQuery, TimeRange, VisitEventQuery,
};
use crate::domain::Project;
use crate::storage::{EventChunks, ExportRequest, Repository};

/// Most names or keys a discovery lists.
pub const DISCOVERY_LIMIT: u64 = 1_000;

/// Names or keys seen in a range, with how many events carry each.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// Most frequent first.
    pub items: Vec<(String, u64)>,
    /// The range searched, as absolute date-times in the timezone used.
    pub date_range: [String; 2],
}

/// The range of a discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySpec {
    /// The range searched.
    pub date_range: DateRangeSpec,
    /// Its timezone; `None` for the project's.
    pub timezone: Option<Tz>,
}

/// Which events an export streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSpec {
    /// Earliest event time, inclusive; `None` from the first event.
    pub from: Option<DateTime<Utc>>,
    /// Latest event time, exclusive; `None` through the last event.
    pub to: Option<DateTime<Utc>>,
}

/// Answers the read side's questions about a project's events.
pub struct QueryService {
    repository: Arc<dyn Repository>,
    limits: ReadLimits,
    barrier: Option<Arc<dyn ReadBarrier>>,
}

/// Where ingest acknowledges events before storage holds them (the ingest
/// journal): a read first waits for the events acknowledged before it.
#[async_trait]
pub trait ReadBarrier: Send + Sync {
    /// Returns once storage holds every event acknowledged so far, or after `patience`.
    async fn caught_up(&self, patience: Duration);
}

/// Longest a read waits for storage to catch up with ingest.
const READ_BARRIER_PATIENCE: Duration = Duration::from_secs(10);

/// Runs CPU-bound work over read events on a blocking thread, so that it
/// never stalls the async runtime; a panic there is an internal error.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(AppError::from_join)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl QueryService {
    /// A service reading `repository` under `limits`.
    pub fn new(repository: Arc<dyn Repository>, limits: ReadLimits) -> Self {
        QueryService {
            repository,
            limits,
            barrier: None,
        }
    }

    /// The same service, its reads waiting at `barrier` first.
    pub fn waiting_at(mut self, barrier: Arc<dyn ReadBarrier>) -> Self {
        self.barrier = Some(barrier);
        self
    }

    async fn wait_for_ingest(&self) {
        if let Some(barrier) = &self.barrier {
            barrier.caught_up(READ_BARRIER_PATIENCE).await;
        }
    }

    /// What the planner needs for `project` now; reads the project's first
    /// and last event when the range is `all`.
    async fn context(
        &self,
        project: &Project,
        date_range: &DateRangeSpec,
    ) -> Result<PlanContext, AppError> {
        self.wait_for_ingest().await;
        let data_bounds = match date_range {
            DateRangeSpec::All => self
                .repository
                .time_bounds(&project.id, self.limits.budget())
                .await
                .map_err(|e| self.limits.read_error(e))?,
            _ => None,
        };
        Ok(PlanContext {
            project_id: project.id.clone(),
            default_timezone: project.timezone,
            now: Utc::now(),
            data_bounds,
            session_timeout: project.session_timeout,
        })
    }

    /// Metrics by dimensions over a range: `POST /v1/query`.
    pub async fn query(&self, project: &Project, spec: &QuerySpec) -> Result<Answer, AppError> {
        let started = Instant::now();
        let context = self.context(project, &spec.date_range).await?;
        let planned = plan(spec, &context)?;
        let compared = compared_spec(spec, planned.range, planned.timezone, context.now)?
            .map(|compared| plan(&compared, &context))
            .transpose()?;
        let mut answer = self.answer_plan(planned).await?;
        if let Some(compared) = compared {
            // One after the other: a session query holds an analysis slot.
            answer.comparison = Some(Box::new(self.answer_plan(compared).await?));
        }
        answer.meta.took_ms = elapsed_ms(started);
        Ok(answer)
    }

    /// The answer of one planned query.
    async fn answer_plan(&self, plan: QueryPlan) -> Result<Answer, AppError> {
        let wants_total = plan.metrics.contains(&Metric::Percentage);
        let (mut rows, total_users) = self.rows(&plan.rows, wants_total).await?;
        if let Some(baseline) = &plan.conversion_baseline {
            let (baseline_rows, _) = self.rows(&baseline.rows, false).await?;
            apply_conversion_rates(&plan, &mut rows, &baseline_rows);
        }
        off_runtime(move || answer(&plan, rows, total_users)).await
    }

    /// The rows of a plan's source, and the users of its whole range and
    /// filters when `wants_total` (the denominator of `percentage`).
    async fn rows(
        &self,
        source: &RowSource,
        wants_total: bool,
    ) -> Result<(QueryRows, Option<u64>), AppError> {
        Ok(match source {
            RowSource::Events(query) => {
                let budget = self.limits.budget();
                let total_users = async {
                    if !wants_total {
                        return Ok(None);
                    }
                    let totals = self.repository.query(&query.total_users(), budget).await?;
                    Ok(totals
                        .rows
                        .first()
                        .and_then(|row| match row.metrics.first() {
                            Some(MetricValue::Count(users)) => Some(*users),
                            _ => None,
                        }))
                };
                tokio::try_join!(self.repository.query(query, budget), total_users)
                    .map_err(|e| self.limits.read_error(e))?
            }
            RowSource::Sessions(sessions) => match self.stored_sessions(sessions).await? {
                Some(rows) => (rows, None),
                None => (self.fold(sessions.clone()).await?, None),
            },
            RowSource::VisitEvents(query) => {
                match self.stored_visit_events(query, wants_total).await? {
                    Some((rows, persons)) => (rows, persons),
                    None => {
                        let (rows, persons) = self.fold(query.clone()).await?;
                        (rows, Some(persons))
                    }
                }
            }
        })
    }

    /// A session query's rows from the sessions storage keeps, when it keeps
    /// sessions that answer it.
    async fn stored_sessions(&self, query: &SessionQuery) -> Result<Option<QueryRows>, AppError> {
        let stored = self
            .repository
            .stored_sessions(query, self.limits.budget())
            .await
            .map_err(|e| self.limits.read_error(e))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let query = query.clone();
        Ok(Some(
            off_runtime(move || query.answer_stored(stored)).await?,
        ))
    }

    /// A visit-event query's rows (and persons, when `wants_total`) from
    /// kept sessions, when it is a session query in disguise and storage
    /// keeps sessions that answer it.
    async fn stored_visit_events(
        &self,
        query: &VisitEventQuery,
        wants_total: bool,
    ) -> Result<Option<(QueryRows, Option<u64>)>, AppError> {
        let Some(sessions) = query.as_session_query() else {
            return Ok(None);
        };
        let Some(rows) = self.stored_sessions(&sessions).await? else {
            return Ok(None);
        };
        if !wants_total {
            return Ok(Some((rows, None)));
        }
        let everyone = SessionQuery {
            metrics: vec![SessionMetric::Users],
            dimensions: Vec::new(),
            order_by: Vec::new(),
            limit: u64::MAX,
            offset: 0,
            all_rows: true,
            ..sessions
        };
        let Some(total) = self.stored_sessions(&everyone).await? else {
            return Ok(None);
        };
        let persons = match total.rows.first().and_then(|row| row.metrics.first()) {
            Some(MetricValue::Count(persons)) => *persons,
            _ => 0,
        };
        Ok(Some((rows, Some(persons))))
    }

    /// A funnel, retention, stickiness, lifecycle or paths analysis.
    pub async fn analyse<A: Analysis>(
        &self,
        project: &Project,
        spec: &A::Spec,
    ) -> Result<A::Answer, AppError> {
        let started = Instant::now();
        let context = self.context(project, &A::scope(spec).date_range).await?;
        let plan = A::plan(spec, &context)?;
        let mut answer = self.fold(plan).await?;
        *A::took_ms(&mut answer) = elapsed_ms(started);
        Ok(answer)
    }

    /// Streams the timeline a fold reads into it, one chunk at a time, in an
    /// analysis slot and under the read budget.
    async fn fold<F: PersonFold>(&self, fold: F) -> Result<F::Output, AppError> {
        let _slot = self.limits.analysis_slot().await?;
        let budget = self.limits.budget();
        let deadline = tokio::time::Instant::now() + budget.timeout;
        let mut chunks = self.repository.timelines(fold.timeline(), budget);
        let mut folding = Folding::new(fold);
        let mut rows: u64 = 0;
        loop {
            let next = tokio::time::timeout_at(deadline, chunks.next())
                .await
                .map_err(|_| self.limits.refuse(Limit::Time(budget.timeout)))?;
            let Some(chunk) = next else {
                break;
            };
            let chunk = chunk.map_err(|e| self.limits.read_error(e))?;
            rows = rows.saturating_add(chunk.len() as u64);
            if rows > budget.max_rows {
                return Err(self.limits.refuse(Limit::Rows(budget.max_rows)));
            }
            folding = off_runtime(move || {
                folding.push(chunk);
                folding
            })
            .await?;
        }
        drop(chunks);
        off_runtime(move || folding.finish()).await
    }

    /// Event names seen in a range, most frequent first.
    pub async fn event_names(
        &self,
        project: &Project,
        spec: &DiscoverySpec,
    ) -> Result<Discovered, AppError> {
        let query = QuerySpec {
            timezone: spec.timezone,
            dimensions: vec![RequestedDimension::Exact(Dimension::Event(
                EventDimension::Name,
            ))],
            limit: Some(DISCOVERY_LIMIT),
            ..QuerySpec::new(vec![Metric::Events], spec.date_range.clone())
        };
        let answer = self.query(project, &query).await?;
        let items = answer
            .results
            .into_iter()
            .filter_map(|row| {
                let name = row.dimensions.into_iter().next()??;
                Some((name, row.metrics.first()?.as_u64()?))
            })
            .collect();
        let date_range = serde_json::from_value(answer.query["date_range"].clone())
            .map_err(|e| AppError::Internal(format!("the answer's range: {e}")))?;
        Ok(Discovered { items, date_range })
    }

    /// Property (and trait) keys seen in a range, of one event name when
    /// given, most frequent first.
    pub async fn property_keys(
        &self,
        project: &Project,
        spec: &DiscoverySpec,
        event: Option<&str>,
    ) -> Result<Discovered, AppError> {
        let context = self.context(project, &spec.date_range).await?;
        let timezone = spec.timezone.unwrap_or(project.timezone);
        let range: TimeRange =
            spec.date_range
                .resolve(timezone, context.now, context.data_bounds)?;
        let items = self
            .repository
            .property_keys(
                &project.id,
                range,
                event,
                DISCOVERY_LIMIT as usize,
                self.limits.budget(),
            )
            .await
            .map_err(|e| self.limits.read_error(e))?;
        Ok(Discovered {
            items,
            date_range: DateRangeSpec::describe(range, timezone),
        })
    }

    /// The newest receipt among a project's events timestamped at or after
    /// `since` (the exporter's freshness).
    pub async fn newest_received_at(
        &self,
        project: &Project,
        since: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        self.repository
            .newest_received_at(&project.id, since, self.limits.budget())
            .await
            .map_err(|e| self.limits.read_error(e))
    }

    /// Whether storage answers, for readiness.
    pub async fn storage_ready(&self) -> Result<(), AppError> {
        Ok(self.repository.ping().await?)
    }

    /// A project's events in timestamp order, streamed in an export slot.
    pub async fn export(
        &self,
        project: &Project,
        spec: ExportSpec,
    ) -> Result<EventChunks, AppError> {
        self.wait_for_ingest().await;
        if let (Some(from), Some(to)) = (spec.from, spec.to) {
            if from >= to {
                return Err(AppError::InvalidParameter {
                    field: "to",
                    message: "must be after from".into(),
                });
            }
        }
        let slot = self.limits.export_slot().await?;
        let chunks = self.repository.export(ExportRequest {
            project_id: project.id.clone(),
            from: spec.from,
            to: spec.to,
            without_visit: false,
        });
        Ok(self.limits.stream_export(chunks, slot))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ReadConfig;
    use crate::domain::analysis::funnel::{FunnelPlan, FunnelSpec, StepOrder};
    use crate::domain::analysis::{EventSpec, ScopeSpec, TimelineEvent};
    use crate::storage::testing::FakeRepository;
    use crate::telemetry::Metrics;

    fn project() -> Project {
        Project::new("p", chrono_tz::UTC)
    }

    fn service(repository: FakeRepository, read: ReadConfig) -> (Arc<QueryService>, Metrics) {
        let metrics = Metrics::new();
        let limits = ReadLimits::new(&read, metrics.read_limit_refusals.clone());
        (
            Arc::new(QueryService::new(Arc::new(repository), limits)),
            metrics,
        )
    }

    /// `persons` persons, each with a first and a second step today.
    fn timeline(persons: u64) -> Vec<TimelineEvent> {
        let now = Utc::now().timestamp_micros();
        (0..persons)
            .flat_map(|person| {
                [(0, 1), (1, 2)].map(|(second, matches)| TimelineEvent {
                    person,
                    timestamp_us: now - 2_000_000 + second * 1_000_000,
                    matches,
                    labels: Vec::new(),
                })
            })
            .collect()
    }

    fn funnel() -> FunnelSpec {
        FunnelSpec {
            scope: ScopeSpec {
                date_range: DateRangeSpec::Today,
                timezone: None,
                filter: None,
            },
            steps: ["a", "b"]
                .map(|event| EventSpec {
                    event: event.into(),
                    filter: None,
                })
                .to_vec(),
            window: None,
            order: StepOrder::Ordered,
            breakdown: None,
            breakdown_limit: None,
        }
    }

    #[tokio::test]
    async fn an_analysis_folds_a_streamed_timeline_person_by_person() {
        let (reads, _) = service(
            FakeRepository {
                timeline: timeline(50),
                timeline_chunk: 7,
                ..FakeRepository::default()
            },
            ReadConfig::default(),
        );
        let answer = reads
            .analyse::<FunnelPlan>(&project(), &funnel())
            .await
            .unwrap();
        assert_eq!(answer.steps[0].users, 50);
        assert_eq!(answer.steps[1].users, 50);
        assert_eq!(answer.steps[1].median_seconds_from_previous, Some(1.0));
    }

    #[tokio::test]
    async fn more_rows_than_the_budget_stop_the_read_naming_the_setting() {
        let (reads, metrics) = service(
            FakeRepository {
                timeline: timeline(50),
                timeline_chunk: 10,
                ..FakeRepository::default()
            },
            ReadConfig {
                max_rows: 25,
                ..ReadConfig::default()
            },
        );
        let error = reads
            .analyse::<FunnelPlan>(&project(), &funnel())
            .await
            .unwrap_err();
        assert!(
            matches!(error, AppError::Limit(Limit::Rows(25))),
            "{error:?}"
        );
        assert!(error.to_string().contains("read.max_rows"), "{error}");
        assert_eq!(
            metrics
                .read_limit_refusals
                .with_label_values(&["rows"])
                .get(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_past_its_time_stops_naming_the_setting() {
        let (reads, _) = service(
            FakeRepository {
                timeline: timeline(10),
                timeline_chunk: 2,
                timeline_delay: Duration::from_secs(2),
                ..FakeRepository::default()
            },
            ReadConfig {
                timeout: Duration::from_secs(5),
                ..ReadConfig::default()
            },
        );
        let error = reads
            .analyse::<FunnelPlan>(&project(), &funnel())
            .await
            .unwrap_err();
        assert!(
            matches!(error, AppError::Limit(Limit::Time(t)) if t == Duration::from_secs(5)),
            "{error:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn analyses_beyond_the_slots_wait_then_are_refused() {
        let (reads, metrics) = service(
            FakeRepository {
                timeline: timeline(2),
                timeline_delay: Duration::from_secs(30),
                ..FakeRepository::default()
            },
            ReadConfig {
                max_concurrent_analyses: 1,
                slot_wait: Duration::from_secs(1),
                ..ReadConfig::default()
            },
        );
        let first = tokio::spawn({
            let reads = reads.clone();
            async move { reads.analyse::<FunnelPlan>(&project(), &funnel()).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = reads
            .analyse::<FunnelPlan>(&project(), &funnel())
            .await
            .unwrap_err();
        assert!(
            matches!(second, AppError::Limit(Limit::ConcurrentAnalyses(1))),
            "{second:?}"
        );
        assert_eq!(
            metrics
                .read_limit_refusals
                .with_label_values(&["concurrent_analyses"])
                .get(),
            1
        );
        assert_eq!(first.await.unwrap().unwrap().steps[0].users, 2);
        // The slot is free again.
        reads
            .analyse::<FunnelPlan>(&project(), &funnel())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unavailable_storage_is_retryable_and_a_panicked_task_internal() {
        let repository = FakeRepository::default();
        repository
            .unreachable
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (reads, _) = service(repository, ReadConfig::default());
        let spec = QuerySpec::new(vec![Metric::Events], DateRangeSpec::Today);
        let error = reads.query(&project(), &spec).await.unwrap_err();
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");

        let panicked = tokio::task::spawn_blocking(|| panic!("a defect"))
            .await
            .unwrap_err();
        assert!(matches!(
            AppError::from_join(panicked),
            AppError::Internal(ref message) if message.contains("panicked")
        ));
    }
}
