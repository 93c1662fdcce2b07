//! The limits every read runs under, held in one place: a budget per read
//! (time and rows) and slots for the reads that cost the most (analyses and
//! exports), so that no client can exhaust the service.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus::IntCounterVec;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use super::error::{AppError, Limit};
use crate::config::ReadConfig;
use crate::storage::{EventChunks, ReadBudget};

/// Chunks of an export buffered ahead of a slow client.
const EXPORT_CHUNKS_AHEAD: usize = 2;

/// The read side's limits and the slots in use.
#[derive(Clone)]
pub struct ReadLimits {
    budget: ReadBudget,
    analyses: Arc<Semaphore>,
    max_analyses: usize,
    exports: Arc<Semaphore>,
    max_exports: usize,
    slot_wait: Duration,
    export_stall: Duration,
    refusals: IntCounterVec,
}

/// A slot for one costly read; released when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl ReadLimits {
    /// The limits of `config`; refusals are counted in `refusals` (by limit).
    pub fn new(config: &ReadConfig, refusals: IntCounterVec) -> Self {
        let max_analyses = config.max_concurrent_analyses.max(1);
        let max_exports = config.max_concurrent_exports.max(1);
        ReadLimits {
            budget: ReadBudget {
                timeout: config.timeout,
                max_rows: config.max_rows,
            },
            analyses: Arc::new(Semaphore::new(max_analyses)),
            max_analyses,
            exports: Arc::new(Semaphore::new(max_exports)),
            max_exports,
            slot_wait: config.slot_wait,
            export_stall: config.export_stall_timeout,
            refusals,
        }
    }

    /// What one read may spend.
    pub fn budget(&self) -> ReadBudget {
        self.budget
    }

    /// Counts a refusal and returns its error.
    pub fn refuse(&self, limit: Limit) -> AppError {
        self.refusals.with_label_values(&[limit.name()]).inc();
        AppError::Limit(limit)
    }

    /// Maps a read's error, counting the limits it reached.
    pub fn read_error(&self, error: impl Into<AppError>) -> AppError {
        match error.into() {
            AppError::Limit(limit) => self.refuse(limit),
            other => other,
        }
    }

    /// A slot for an analysis (or a session query), waiting at most `slot_wait`.
    pub async fn analysis_slot(&self) -> Result<Slot, AppError> {
        self.slot(&self.analyses, Limit::ConcurrentAnalyses(self.max_analyses))
            .await
    }

    /// A slot for an export, waiting at most `slot_wait`.
    pub async fn export_slot(&self) -> Result<Slot, AppError> {
        self.slot(&self.exports, Limit::ConcurrentExports(self.max_exports))
            .await
    }

    async fn slot(&self, slots: &Arc<Semaphore>, limit: Limit) -> Result<Slot, AppError> {
        match tokio::time::timeout(self.slot_wait, slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { _permit: permit }),
            Ok(Err(_)) => Err(AppError::Unavailable("the service is shutting down".into())),
            Err(_) => Err(self.refuse(limit)),
        }
    }

    /// Streams an export to its client, holding `slot` until it ends. A
    /// client that takes nothing for `export_stall_timeout` ends the export,
    /// so that a stalled client holds neither a slot nor a storage reader.
    pub fn stream_export(&self, chunks: EventChunks, slot: Slot) -> EventChunks {
        let (sender, receiver) = mpsc::channel(EXPORT_CHUNKS_AHEAD);
        let stall = self.export_stall;
        tokio::spawn(async move {
            let _slot = slot;
            let mut chunks = chunks;
            while let Some(chunk) = chunks.next().await {
                match sender.send_timeout(chunk, stall).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        tracing::warn!(
                            stall = %humantime::format_duration(stall),
                            "an export's client took nothing for read.export_stall_timeout; ending the export"
                        );
                        return;
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
        });
        ReceiverStream::new(receiver).boxed()
    }
}
