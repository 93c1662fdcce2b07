//! Where validated events go: the seam between ingest and storage.

use async_trait::async_trait;

use super::event::Event;

/// Takes validated events and answers once they are durable.
///
/// In embedded mode this is the processor's in-process queue; with Kafka it is a
/// producer. Either way, `Ok` means the events will not be lost.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Hands events over; resolves when they are durably stored (or rejected).
    async fn submit(&self, events: Vec<Event>) -> Result<(), SinkError>;
}

/// Why a sink could not take events. None of these stores anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The queue is at capacity: the client should retry later.
    #[error("the ingest queue is full")]
    QueueFull,
    /// Storage failed to write the events after retries.
    #[error("storage could not write the events: {0}")]
    StorageUnavailable(String),
    /// The Kafka broker did not acknowledge the events in time.
    #[error("the Kafka broker did not acknowledge the events: {0}")]
    BrokerUnavailable(String),
    /// The service is shutting down and takes no more events.
    #[error("the service is shutting down")]
    ShuttingDown,
}
