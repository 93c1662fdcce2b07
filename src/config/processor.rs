//! The `[processor]` section: batching of the processor worker.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, StorageBackend};

/// Batching of the processor worker (group commit). Unset values take the
/// storage backend's defaults (see [`ProcessorConfig::batching`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// A batch is written as soon as it holds this many events.
    pub batch_max_events: usize,
    /// A batch stops waiting for more events once it holds this many.
    /// Default: `batch_max_events` on DuckDB; 1,000 on ClickHouse.
    pub batch_min_events: Option<usize>,
    /// A batch is written at the latest this long after its first event
    /// arrived. Default: 5 ms on DuckDB; 1 s on ClickHouse, which wants few,
    /// large inserts.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Option<Duration>,
    /// Attempts for a batch whose write fails before its senders get an error.
    pub write_attempts: u32,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            batch_max_events: 50_000,
            batch_min_events: None,
            batch_max_wait: None,
            write_attempts: 3,
        }
    }
}

/// How the processor batches, with every default resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most events in one write.
    pub max_events: usize,
    /// Events after which a batch is written without waiting for more.
    pub min_events: usize,
    /// Longest wait for more events after the first.
    pub max_wait: Duration,
    /// Attempts per write before the senders get an error.
    pub write_attempts: u32,
}

impl ProcessorConfig {
    /// The batching for `backend`: DuckDB commits small batches cheaply, so it
    /// lingers 5 ms; ClickHouse wants few large inserts, so a batch waits up to
    /// a second unless 1,000 events are already there.
    pub fn batching(&self, backend: StorageBackend) -> Batching {
        let (min_events, max_wait) = match backend {
            StorageBackend::Duckdb => (self.batch_max_events, Duration::from_millis(5)),
            StorageBackend::Clickhouse => (1_000, Duration::from_secs(1)),
        };
        Batching {
            max_events: self.batch_max_events,
            min_events: self
                .batch_min_events
                .unwrap_or(min_events)
                .clamp(1, self.batch_max_events.max(1)),
            max_wait: self.batch_max_wait.unwrap_or(max_wait),
            write_attempts: self.write_attempts,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_max_events == 0 {
            return Err(ConfigError::invalid(
                "processor.batch_max_events",
                "must be at least 1",
            ));
        }
        if self.write_attempts == 0 {
            return Err(ConfigError::invalid(
                "processor.write_attempts",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
