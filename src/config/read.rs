//! The `[read]` section: the limits every query, analysis and export runs under.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::domain::origin::OriginPattern;

/// Limits of the read side, so that no client can exhaust the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadConfig {
    /// Longest one read of storage may run (ClickHouse `max_execution_time`;
    /// DuckDB is interrupted). Exports are bounded by `export_stall_timeout` instead.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most event rows one request may read: rows scanned on ClickHouse
    /// (`max_rows_to_read`), and on every backend the rows an analysis or a
    /// session query reads.
    pub max_rows: u64,
    /// Analyses (funnels, retention, stickiness, lifecycle, paths) and session
    /// queries computed at once.
    pub max_concurrent_analyses: usize,
    /// Exports streaming at once.
    pub max_concurrent_exports: usize,
    /// How long a request waits for one of those slots before it is refused
    /// with 429.
    #[serde(with = "humantime_serde")]
    pub slot_wait: Duration,
    /// An export whose client takes nothing for this long is ended.
    #[serde(with = "humantime_serde")]
    pub export_stall_timeout: Duration,
    /// Web origins whose pages may call the read API from a browser (a
    /// dashboard on another host). Empty (the default): none.
    pub allowed_origins: Vec<String>,
}

impl Default for ReadConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_rows: 500_000_000,
            max_concurrent_analyses: 4,
            max_concurrent_exports: 2,
            slot_wait: Duration::from_secs(10),
            export_stall_timeout: Duration::from_secs(60),
            allowed_origins: Vec::new(),
        }
    }
}

impl ReadConfig {
    /// `allowed_origins`, parsed; validation has refused what does not parse.
    pub fn origins(&self) -> Vec<OriginPattern> {
        self.allowed_origins
            .iter()
            .filter_map(|origin| OriginPattern::parse(origin).ok())
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (index, origin) in self.allowed_origins.iter().enumerate() {
            OriginPattern::parse(origin).map_err(|error| {
                ConfigError::invalid(format!("read.allowed_origins[{index}]"), error.to_string())
            })?;
        }
        for (key, value) in [
            ("read.timeout", self.timeout),
            ("read.export_stall_timeout", self.export_stall_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err(ConfigError::invalid(key, "must be at least 1ms"));
            }
        }
        for (key, value) in [
            ("read.max_rows", self.max_rows),
            (
                "read.max_concurrent_analyses",
                self.max_concurrent_analyses as u64,
            ),
            (
                "read.max_concurrent_exports",
                self.max_concurrent_exports as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
