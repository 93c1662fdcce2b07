//! Building and running the service: storage, workers, HTTP server, graceful shutdown.

mod development;
mod journal;
mod kafka;
pub mod probe;
pub mod supervision;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::app::backfill::VisitBackfill;
use crate::app::upkeep::StoreUpkeep;
use crate::app::{IngestService, QueryService, ReadLimits, VisitorIds};
use crate::config::{Config, StorageBackend};
use crate::domain::dependency::DependencyCheck;
use crate::domain::segment::Limits;
use crate::domain::EventSink;
use crate::enrich::{EnrichError, Enricher};
use crate::storage::clickhouse::{ClickHouseOptions, ClickHouseRepository};
use crate::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use crate::storage::{Repository, StorageError};
use crate::telemetry::Metrics;
use crate::workers::exporter::Exporter;
use crate::workers::kafka_consumer::KafkaConsumerWorker;
use crate::workers::processor::{self, Processor, QueueSink};
pub use development::DevelopmentKeys;
use supervision::WorkerHealth;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Storage could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A Kafka client could not be created.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaClientError),
    /// An enrichment data file is present but does not load.
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    /// The ingest journal could not be opened.
    #[error(transparent)]
    Journal(analytics_journal::JournalError),
    /// The journal's records could not be queued again.
    #[error("replaying the ingest journal: {0}")]
    Replay(crate::workers::journal::ReplayError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(std::io::Error),
    /// A worker stopped by itself; the service drained and stopped.
    #[error("the {worker} stopped: {how}")]
    WorkerStopped {
        /// The worker.
        worker: &'static str,
        /// How it stopped.
        how: String,
    },
}

/// A service instance, built and bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    config: Config,
    state: AppState,
    queue: Arc<QueueSink>,
    processor: Processor,
    consumer: Option<KafkaConsumerWorker>,
    exporter: Option<Exporter>,
    repository: Arc<dyn Repository>,
    workers: Arc<WorkerHealth>,
    development_keys: Option<DevelopmentKeys>,
    backfill: VisitBackfill,
    upkeep: StoreUpkeep,
    journal: Option<journal::JournalRun>,
}

/// Opens the configured storage backend.
pub async fn open_repository(config: &Config) -> Result<Arc<dyn Repository>, StorageError> {
    let storage = &config.storage;
    match storage.backend {
        StorageBackend::Duckdb => {
            let options = DuckDbOptions {
                memory_limit: config.storage.memory_limit.clone(),
            };
            Ok(Arc::new(DuckDbRepository::open(
                &config.storage.path,
                &options,
            )?))
        }
        StorageBackend::Clickhouse => {
            let options = ClickHouseOptions {
                url: storage.url.clone(),
                database: storage.database.clone(),
                user: storage.user.clone(),
                password: storage.password.expose().to_owned(),
                cluster: storage.cluster.clone(),
            };
            Ok(Arc::new(ClickHouseRepository::open(&options).await?))
        }
    }
}

impl Application {
    /// Opens storage, prepares the workers and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let repository = open_repository(&config).await?;
        Self::build_on(config, repository).await
    }

    /// Prepares the workers and binds the listener over an open repository
    /// (the configured storage section is not read).
    pub async fn build_on(
        mut config: Config,
        repository: Arc<dyn Repository>,
    ) -> Result<Self, StartupError> {
        let development_keys = if config.projects.is_empty() {
            let keys = DevelopmentKeys::stored_or_new(repository.as_ref()).await?;
            config.projects.push(keys.project_config());
            Some(keys)
        } else {
            None
        };
        let metrics = Metrics::new();
        let (queue, mut processor) = processor::queue(
            config.ingest.queue_capacity,
            config.processor.batching(config.storage.backend),
            repository.clone(),
            metrics.clone(),
        );
        let journal = match config.journal_dir() {
            Some(dir) => Some(journal::open(&dir, queue.clone())?),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    address: config.listen,
                    source,
                })?;
        let projects = Arc::new(crate::config::registry(&config.projects));
        let (enricher, coverage) = Enricher::load(&config.enrich, config.ingest.drop_bots)?;
        for missing in &coverage.missing {
            tracing::warn!("enrichment: {missing}");
        }
        let enricher = Arc::new(enricher);
        let backfill = VisitBackfill::new(repository.clone(), enricher.clone(), projects.clone());
        let upkeep = StoreUpkeep::new(repository.clone(), projects.clone());
        let kafka_parts = match &config.kafka {
            Some(kafka) => kafka::build(
                &config,
                kafka,
                projects.clone(),
                queue.clone(),
                &enricher,
                &metrics,
            )?,
            None => kafka::KafkaParts::default(),
        };
        let limits = ReadLimits::new(&config.read, metrics.read_limit_refusals.clone());
        let mut reads = QueryService::new(repository.clone(), limits);
        if let Some((parts, _)) = &journal {
            reads = reads.waiting_at(parts.progress.clone());
        }
        let reads = Arc::new(reads);
        let exporter = config.exporter.enabled.then(|| {
            Exporter::new(
                reads.clone(),
                projects.clone(),
                metrics.exporter.clone(),
                config.exporter.clone(),
            )
        });
        // Through Kafka, the consumer enriches what HTTP ingest produces.
        let workers = Arc::new(WorkerHealth::default());
        let mut dependencies: Vec<Arc<dyn DependencyCheck>> = vec![workers.clone()];
        dependencies.extend(kafka_parts.check);
        let (sink, ingest_enricher, journal): (Arc<dyn EventSink>, _, _) =
            match (kafka_parts.ingest_sink, journal) {
                (Some(producer), _) => (producer, None, None),
                (None, Some((parts, replay))) => {
                    processor = processor.releasing_to(parts.handle);
                    dependencies.push(parts.check);
                    let run = journal::JournalRun {
                        replay,
                        thread: parts.thread,
                    };
                    (parts.sink, Some(enricher), Some(run))
                }
                (None, None) => (queue.clone(), Some(enricher), None),
            };
        let state = AppState {
            projects,
            ingest: Arc::new(IngestService::new(
                sink,
                ingest_enricher,
                metrics.clone(),
                config.ingest.future_tolerance(),
            )),
            reads,
            metrics,
            limits: Limits::SEGMENT,
            shutting_down: CancellationToken::new(),
            dependencies,
            visitors: Arc::new(VisitorIds::new(repository.clone())),
            web: api::WebAccess {
                public_url: config.ingest.public_url(),
                read_origins: config.read.origins(),
                trusted_proxies: config.ingest.trusted_proxies(),
                dashboard: config.dashboard.enabled,
            },
        };
        Ok(Self {
            listener,
            config,
            state,
            queue,
            processor,
            consumer: kafka_parts.consumer,
            exporter,
            repository,
            workers,
            development_keys,
            backfill,
            upkeep,
            journal,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Keys of the generated development project, when no project is configured.
    pub fn development_keys(&self) -> Option<&DevelopmentKeys> {
        self.development_keys.as_ref()
    }

    /// Serves until `shutdown` resolves, or a worker stops by itself, then
    /// drains: stops accepting, lets in-flight requests finish, writes
    /// everything queued, closes storage. A stopped worker makes it return
    /// [`StartupError::WorkerStopped`] once drained.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Application {
            listener,
            config,
            state,
            queue,
            processor,
            consumer,
            exporter,
            repository,
            workers,
            backfill,
            upkeep,
            journal,
            ..
        } = self;
        let stop_backfill = CancellationToken::new();
        let backfill_task = tokio::spawn(backfill.run(stop_backfill.clone()));
        let upkeep_task = tokio::spawn(upkeep.run(stop_backfill.clone()));
        let stop_processor = CancellationToken::new();
        let processor_task = workers.supervise(
            "processor",
            &stop_processor,
            processor.run(stop_processor.clone()),
        );
        let journal_thread = match journal {
            Some(run) => {
                journal::replay(run.replay, &queue).await?;
                Some(run.thread)
            }
            None => None,
        };
        let stop_consumer = CancellationToken::new();
        let consumer_task = consumer.map(|worker| {
            workers.supervise(
                "kafka consumer",
                &stop_consumer,
                worker.run(stop_consumer.clone()),
            )
        });
        let stop_exporter = CancellationToken::new();
        let exporter_task = exporter.map(|worker| {
            workers.supervise(
                "exporter",
                &stop_exporter,
                worker.run(stop_exporter.clone()),
            )
        });

        let shutting_down = state.shutting_down.clone();
        let signalled = shutting_down.clone();
        let failures = workers.clone();
        let app = api::router(state);
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = failures.failure() => {}
            }
            tracing::info!("shutting down: no new connections; draining requests and the queue");
            signalled.cancel();
        });
        let drain_deadline = async {
            shutting_down.cancelled().await;
            tokio::time::sleep(config.shutdown_timeout).await;
        };
        let served = tokio::select! {
            result = server => result.map_err(StartupError::Serve),
            () = drain_deadline => {
                tracing::warn!(timeout = ?config.shutdown_timeout, "requests still open after the shutdown timeout; closing them");
                Ok(())
            }
        };

        stop_backfill.cancel();
        let _ = backfill_task.await;
        let _ = upkeep_task.await;
        stop_exporter.cancel();
        if let Some(task) = exporter_task {
            let _ = task.await;
        }
        // Then the consumer, before the processor: it still needs the
        // processor to write the batches it holds before it stores their offsets.
        stop_consumer.cancel();
        if let Some(task) = consumer_task {
            let _ = task.await;
        }
        queue.close();
        stop_processor.cancel();
        let _ = processor_task.await;
        if let Some(thread) = journal_thread {
            journal::stop(thread).await;
        }
        if let Err(error) = repository.close().await {
            tracing::warn!(%error, "closing storage failed");
        }
        tracing::info!("stopped");
        served?;
        match workers.stopped() {
            Some(stopped) => Err(StartupError::WorkerStopped {
                worker: stopped.worker,
                how: stopped.how,
            }),
            None => Ok(()),
        }
    }
}
