//! A worker that dies takes the service down with it, cleanly: readiness
//! fails, the service drains, and it stops with an error naming the worker,
//! so that its supervisor restarts it.

use std::sync::Arc;
use std::time::Duration;

use analytics::domain::analysis::TimelineRequest;
use analytics::domain::query::{EventQuery, QueryRows, TimeRange};
use analytics::domain::visit::VisitFields;
use analytics::domain::Event;
use analytics::startup::StartupError;
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::{
    EventChunks, ExportRequest, InsertOutcome, ReadBudget, Repository, StorageError, TimelineChunks,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::helpers::*;

/// A real DuckDB repository whose writes hit a defect: they panic.
struct DefectiveWrites(DuckDbRepository);

#[async_trait]
impl Repository for DefectiveWrites {
    async fn insert_batch(&self, _: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        panic!("a defect in the write path");
    }
    fn export(&self, request: ExportRequest) -> EventChunks {
        self.0.export(request)
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.0.ping().await
    }
    async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StorageError> {
        self.0.setting_or_init(name, value).await
    }
    async fn delete_setting(&self, name: &str) -> Result<(), StorageError> {
        self.0.delete_setting(name).await
    }
    async fn update_visits(
        &self,
        project_id: &str,
        visits: Vec<(String, VisitFields)>,
    ) -> Result<(), StorageError> {
        self.0.update_visits(project_id, visits).await
    }
    async fn query(
        &self,
        query: &EventQuery,
        budget: ReadBudget,
    ) -> Result<QueryRows, StorageError> {
        self.0.query(query, budget).await
    }
    fn timelines(&self, request: TimelineRequest, budget: ReadBudget) -> TimelineChunks {
        self.0.timelines(request, budget)
    }
    async fn time_bounds(
        &self,
        project: &str,
        budget: ReadBudget,
    ) -> Result<Option<TimeRange>, StorageError> {
        self.0.time_bounds(project, budget).await
    }
    async fn newest_received_at(
        &self,
        project: &str,
        since: DateTime<Utc>,
        budget: ReadBudget,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.0.newest_received_at(project, since, budget).await
    }
    async fn property_keys(
        &self,
        project: &str,
        range: TimeRange,
        event: Option<&str>,
        limit: usize,
        budget: ReadBudget,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        self.0
            .property_keys(project, range, event, limit, budget)
            .await
    }
    async fn close(&self) -> Result<(), StorageError> {
        self.0.close().await
    }
}

#[tokio::test]
async fn a_processor_that_dies_makes_the_service_drain_and_stop_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap();
    // Acknowledged once stored, not from the ingest journal.
    let app = spawn_app_over_with(dir.path(), Arc::new(DefectiveWrites(storage)), |config| {
        config.ingest.journal = Some(false);
    })
    .await;
    let (status, _) = crate::kafka::readiness(&app).await;
    assert_eq!(status, 200);

    let response = app
        .post("/v1/track", &json!({"userId": "u", "event": "e"}))
        .await;
    assert_eq!(
        response.status(),
        503,
        "the event was not stored, and the client is told so"
    );

    let stopped = app.stopped_by_itself(Duration::from_secs(30)).await;
    match stopped {
        Err(StartupError::WorkerStopped { worker, how }) => {
            assert_eq!(worker, "processor");
            assert!(how.contains("panicked"), "{how}");
        }
        other => panic!("expected the processor's failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_the_journal_acknowledged_before_the_processor_died_is_stored_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap();
    let app = spawn_app_over(dir.path(), Arc::new(DefectiveWrites(storage))).await;
    let response = app
        .post(
            "/v1/track",
            &json!({"userId": "u", "event": "e", "messageId": "kept"}),
        )
        .await;
    assert_eq!(response.status(), 200, "the journal holds the event");
    let stopped = app.stopped_by_itself(Duration::from_secs(30)).await;
    assert!(
        matches!(stopped, Err(StartupError::WorkerStopped { .. })),
        "{stopped:?}"
    );

    // The same journal, healthy storage: the event is replayed into it.
    let restarted = spawn_app_in(dir.path(), |_| {}).await;
    let exported = restarted.export().await;
    let ids: Vec<&str> = exported
        .iter()
        .filter_map(|event| event["messageId"].as_str())
        .collect();
    assert_eq!(ids, vec!["kept"]);
}
