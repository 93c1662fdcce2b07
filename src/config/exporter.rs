//! The `[exporter]` section: the business gauges on `/metrics`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The exporter worker: business gauges computed from storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterConfig {
    /// Whether the worker runs.
    pub enabled: bool,
    /// Time between two computations.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Event names per project published by `analytics_project_recent_events`;
    /// the rest are summed under `(other)`.
    pub top_events: usize,
    /// How far back, by event time, the freshness gauge looks for the newest
    /// receipt; a project with nothing that recent reads as this stale.
    #[serde(with = "humantime_serde")]
    pub freshness_lookback: Duration,
}

/// Most event names per project the exporter may publish.
pub const MAX_EXPORTER_TOP_EVENTS: usize = 100;

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(15),
            top_events: 10,
            freshness_lookback: Duration::from_secs(24 * 3600),
        }
    }
}

impl ExporterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::invalid(
                "exporter.interval",
                "must be longer than zero",
            ));
        }
        if !(1..=MAX_EXPORTER_TOP_EVENTS).contains(&self.top_events) {
            return Err(ConfigError::invalid(
                "exporter.top_events",
                format!("must be between 1 and {MAX_EXPORTER_TOP_EVENTS}"),
            ));
        }
        if self.freshness_lookback < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "exporter.freshness_lookback",
                "must be at least 1m",
            ));
        }
        Ok(())
    }
}
