//! Supervision of the background workers: a worker that stops by itself
//! (returns or panics while the service runs) fails readiness at once and
//! makes the service drain and exit with an error, so that a supervisor
//! (systemd, Kubernetes) restarts it rather than leave it answering
//! `shutting_down` to every request.

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::dependency::DependencyCheck;

/// The first worker that stopped by itself, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedWorker {
    /// The worker: `processor`, `kafka consumer`, `exporter`.
    pub worker: &'static str,
    /// How it stopped.
    pub how: String,
}

/// The workers' health; readiness reports it as the `workers` check.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    stopped: Mutex<Option<StoppedWorker>>,
    failed: CancellationToken,
}

impl WorkerHealth {
    /// The first worker that stopped by itself, if one did.
    pub fn stopped(&self) -> Option<StoppedWorker> {
        self.stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Resolves once a worker has stopped by itself.
    pub async fn failure(&self) {
        self.failed.cancelled().await;
    }

    fn record(&self, worker: &'static str, how: String) {
        let mut stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        stopped.get_or_insert(StoppedWorker { worker, how });
        self.failed.cancel();
    }

    /// Runs a worker on its own task; when it ends before `stop` asked it
    /// to, records it as stopped. The handle resolves when the worker has
    /// ended.
    pub fn supervise(
        self: &Arc<Self>,
        worker: &'static str,
        stop: &CancellationToken,
        run: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let task = tokio::spawn(run);
        let (health, stop) = (self.clone(), stop.clone());
        tokio::spawn(async move {
            let ended = task.await;
            if stop.is_cancelled() {
                if let Err(error) = ended {
                    tracing::error!(worker, %error, "a worker failed while stopping");
                }
                return;
            }
            let how = match ended {
                Ok(()) => "it returned".to_owned(),
                Err(error) if error.is_panic() => format!("it panicked: {error}"),
                Err(error) => format!("it was cancelled: {error}"),
            };
            tracing::error!(worker, how = %how, "a worker stopped by itself; the service drains and exits");
            health.record(worker, how);
        })
    }
}

#[async_trait]
impl DependencyCheck for WorkerHealth {
    fn name(&self) -> &'static str {
        "workers"
    }

    async fn check(&self) -> Result<(), String> {
        match self.stopped() {
            None => Ok(()),
            Some(StoppedWorker { worker, how }) => Err(format!("the {worker} stopped: {how}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_worker_that_panics_fails_the_check_at_once() {
        let health = Arc::new(WorkerHealth::default());
        let stop = CancellationToken::new();
        let handle = health.supervise("processor", &stop, async {
            panic!("a defect");
        });
        tokio::time::timeout(Duration::from_secs(5), health.failure())
            .await
            .expect("the failure is signalled");
        handle.await.unwrap();
        let problem = health.check().await.unwrap_err();
        assert!(
            problem.starts_with("the processor stopped: it panicked"),
            "{problem}"
        );
    }

    #[tokio::test]
    async fn a_worker_asked_to_stop_is_no_failure() {
        let health = Arc::new(WorkerHealth::default());
        let stop = CancellationToken::new();
        let handle = health.supervise("exporter", &stop, {
            let stop = stop.clone();
            async move { stop.cancelled().await }
        });
        assert_eq!(health.check().await, Ok(()));
        stop.cancel();
        handle.await.unwrap();
        assert_eq!(health.check().await, Ok(()));
        assert!(health.stopped().is_none());
    }

    #[tokio::test]
    async fn a_worker_that_returns_early_is_a_failure() {
        let health = Arc::new(WorkerHealth::default());
        let handle = health.supervise("kafka consumer", &CancellationToken::new(), async {});
        handle.await.unwrap();
        assert_eq!(
            health.stopped(),
            Some(StoppedWorker {
                worker: "kafka consumer",
                how: "it returned".into()
            })
        );
    }
}
