//! The `[storage]` section.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, DUCKDB_FILE_NAME};
use crate::storage::clickhouse::schema::is_identifier;

/// Storage backends the service can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Embedded DuckDB file (the default).
    Duckdb,
    /// A ClickHouse server or cluster.
    Clickhouse,
}

/// DuckDB's default memory limit: what the service needs at 100 million
/// events with little time lost (docs/benchmarks.md), instead of DuckDB's
/// own 80% of the machine's memory.
pub const DEFAULT_MEMORY_LIMIT: &str = "512MB";

/// Storage settings. `path` and `memory_limit` apply to DuckDB; `url`,
/// `database`, `user`, `password` and `cluster` to ClickHouse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Which backend stores the events.
    pub backend: StorageBackend,
    /// Path of the DuckDB database file.
    pub path: PathBuf,
    /// DuckDB's memory limit (default [`DEFAULT_MEMORY_LIMIT`]): beyond it
    /// DuckDB spills sorts and joins to a directory beside the file. A
    /// machine with memory to spare may raise it (`"8GB"`).
    pub memory_limit: Option<String>,
    /// ClickHouse HTTP endpoint.
    pub url: String,
    /// ClickHouse database, created on first start.
    pub database: String,
    /// ClickHouse user.
    pub user: String,
    /// ClickHouse password (or `ANALYTICS_STORAGE__PASSWORD`).
    pub password: Secret,
    /// ClickHouse cluster name: DDL runs `ON CLUSTER` and events go through
    /// `Distributed` tables. Unset on a single server.
    pub cluster: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Duckdb,
            path: PathBuf::from("data").join(DUCKDB_FILE_NAME),
            memory_limit: Some(DEFAULT_MEMORY_LIMIT.into()),
            url: "http://127.0.0.1:8123".into(),
            database: "analytics".into(),
            user: "default".into(),
            password: Secret::default(),
            cluster: None,
        }
    }
}

impl StorageConfig {
    /// Checks the settings of the chosen backend.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            StorageBackend::Duckdb => {
                if self.path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid("storage.path", "must not be empty"));
                }
            }
            StorageBackend::Clickhouse => {
                if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        "storage.url",
                        format!("{:?} is not an http:// or https:// URL", self.url),
                    ));
                }
                if !is_identifier(&self.database) {
                    return Err(ConfigError::invalid(
                        "storage.database",
                        format!("{:?}: use letters, digits and underscores", self.database),
                    ));
                }
                if let Some(cluster) = self.cluster.as_deref().filter(|c| !is_identifier(c)) {
                    return Err(ConfigError::invalid(
                        "storage.cluster",
                        format!("{cluster:?}: use letters, digits and underscores"),
                    ));
                }
            }
        }
        Ok(())
    }
}
