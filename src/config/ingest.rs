//! The `[ingest]` section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Ingest limits and time policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Events with a timestamp further than this after `receivedAt` are clamped to `receivedAt`.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Capacity of the in-process queue, in events; a full queue answers 503.
    /// At least the largest batch a request (2,500 events) or the Kafka
    /// consumer (`kafka.batch_max_messages`) hands over at once.
    pub queue_capacity: usize,
}

impl IngestConfig {
    /// `max_future` as a signed duration, for comparisons with event times.
    pub fn future_tolerance(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.max_future).unwrap_or(chrono::Duration::MAX)
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_future: Duration::from_secs(24 * 3600),
            queue_capacity: 200_000,
        }
    }
}
