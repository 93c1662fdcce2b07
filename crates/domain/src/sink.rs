//! Where validated events go: the seam between ingest and storage.

use async_trait::async_trait;

use super::event::Event;

/// Takes validated events and answers once they are durable.
///
/// In embedded mode this is the processor's in-process queue; with Kafka it is a
/// producer. Either way, `Ok` means the events will not be lost, except those
/// it lists as refused, which were not stored and never will be.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Hands events over; resolves when they are durably stored (or refused).
    async fn submit(&self, events: Vec<Event>) -> Result<Submitted, SinkError>;
}

/// What became of the events of a successful submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Positions (in the submitted list) of the events storage refused, in
    /// order; every other event is stored.
    pub refused: Vec<usize>,
}

/// Why a sink could not take events. None of these stores anything that
/// the caller is not told about: the events of a failed submission may be
/// sent again, and duplicates are skipped by `messageId`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The queue is at capacity: the client should retry later.
    #[error("the ingest queue is full")]
    QueueFull,
    /// Storage could not write the events, after retries; a later attempt may work.
    #[error("storage could not write the events: {0}")]
    StorageUnavailable(String),
    /// Writing failed in a way that is a defect of the service.
    #[error("writing the events failed: {0}")]
    StorageFailed(String),
    /// The Kafka broker did not acknowledge the events in time.
    #[error("the Kafka broker did not acknowledge the events: {0}")]
    BrokerUnavailable(String),
    /// The service is shutting down and takes no more events.
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl SinkError {
    /// Whether sending the same events later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::StorageFailed(_))
    }
}
