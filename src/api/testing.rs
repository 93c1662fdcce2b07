//! The state of a router over a fake repository, for unit tests.

use std::sync::Arc;

use crate::api::AppState;
use crate::app::{IngestService, QueryService, ReadLimits};
use crate::config::{ProcessorConfig, ProjectConfig, ReadConfig, Secret, StorageBackend};
use crate::domain::segment::Limits;
use crate::domain::ProjectRegistry;
use crate::storage::testing::FakeRepository;
use crate::telemetry::Metrics;
use crate::workers::processor;

/// Write key of the test project `p`.
pub const WRITE_KEY: &str = "wk_unit_test_1";
/// Read key of the test project `p`.
pub const READ_KEY: &str = "rk_unit_test_1";

/// One project, `p`, with [`WRITE_KEY`] and [`READ_KEY`].
pub fn projects() -> ProjectRegistry {
    crate::config::registry(&[ProjectConfig {
        write_keys: vec![Secret::new(WRITE_KEY)],
        read_keys: vec![Secret::new(READ_KEY)],
        ..ProjectConfig::new("p")
    }])
}

/// State over `repository`, with a processor queue that nothing drains
/// (spawn [`processor_for`]'s worker to have events written).
pub fn state(repository: Arc<FakeRepository>, projects: ProjectRegistry) -> AppState {
    state_with(repository, projects, ReadConfig::default()).0
}

/// State over `repository` with read limits `read`, and the processor worker
/// that writes what it ingests.
pub fn state_with(
    repository: Arc<FakeRepository>,
    projects: ProjectRegistry,
    read: ReadConfig,
) -> (AppState, processor::Processor) {
    let metrics = Metrics::new();
    let batching = ProcessorConfig {
        write_attempts: 2,
        ..ProcessorConfig::default()
    }
    .batching(StorageBackend::Duckdb);
    let (sink, worker) = processor::queue(10_000, batching, repository.clone(), metrics.clone());
    let limits = ReadLimits::new(&read, metrics.read_limit_refusals.clone());
    let state = AppState {
        projects: Arc::new(projects),
        ingest: Arc::new(IngestService::new(
            sink,
            Some(Arc::new(crate::enrich::Enricher::minimal(true))),
            metrics.clone(),
            chrono::Duration::days(1),
        )),
        reads: Arc::new(QueryService::new(repository.clone(), limits)),
        visitors: Arc::new(crate::app::VisitorIds::new(repository)),
        metrics,
        limits: Limits::SEGMENT,
        shutting_down: tokio_util::sync::CancellationToken::new(),
        dependencies: Vec::new(),
        web: crate::api::WebAccess::default(),
    };
    (state, worker)
}
