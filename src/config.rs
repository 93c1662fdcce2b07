//! Service configuration: defaults < TOML file < `ANALYTICS_*` environment < CLI flags.
//!
//! Loading ([`Config::load`]) merges the layers with `figment`; validation
//! ([`Config::validate`]) checks every value that deserialisation cannot, and
//! reports the key by its dotted path (`projects[0].timezone`) so that an
//! operator knows what to fix.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::kafka::KafkaConfig;

/// Name of the environment variable that points at the TOML file.
pub const CONFIG_FILE_ENV: &str = "ANALYTICS_CONFIG";
/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "ANALYTICS_";
/// File name of the DuckDB database inside `--data-dir`.
pub const DUCKDB_FILE_NAME: &str = "analytics.duckdb";

/// The whole configuration of the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where events are stored.
    pub storage: StorageConfig,
    /// Projects, each with its own keys and timezone. Empty: a development
    /// project named `default` is created at start.
    pub projects: Vec<ProjectConfig>,
    /// Limits and policies of HTTP ingest.
    pub ingest: IngestConfig,
    /// Batching of the processor worker.
    pub processor: ProcessorConfig,
    /// Kafka: the consumer worker and HTTP ingest through a topic. Absent: no Kafka.
    pub kafka: Option<KafkaConfig>,
    /// The exporter worker's business gauges on `/metrics`.
    pub exporter: ExporterConfig,
    /// Logging.
    pub log: LogConfig,
    /// How long a graceful shutdown may take to drain requests and the queue.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: StorageConfig::default(),
            projects: Vec::new(),
            ingest: IngestConfig::default(),
            processor: ProcessorConfig::default(),
            kafka: None,
            exporter: ExporterConfig::default(),
            log: LogConfig::default(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Storage backends the service can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Embedded DuckDB file (the default).
    Duckdb,
    /// A ClickHouse server or cluster.
    Clickhouse,
}

/// Storage settings. `path` and `memory_limit` apply to DuckDB; `url`,
/// `database`, `user`, `password` and `cluster` to ClickHouse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Which backend stores the events.
    pub backend: StorageBackend,
    /// Path of the DuckDB database file.
    pub path: PathBuf,
    /// DuckDB memory limit (e.g. `"2GB"`); unset lets DuckDB choose.
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
            memory_limit: None,
            url: "http://127.0.0.1:8123".into(),
            database: "analytics".into(),
            user: "default".into(),
            password: Secret::default(),
            cluster: None,
        }
    }
}

/// One project: a tenant with its own keys and reporting timezone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Stable identifier, stored with every event.
    pub id: String,
    /// IANA timezone in which reports are cut by default.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Keys that may send events.
    #[serde(default)]
    pub write_keys: Vec<Secret>,
    /// Keys that may read (query, export).
    #[serde(default)]
    pub read_keys: Vec<Secret>,
    /// A session ends after this long without an event (default `30m`).
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
}

fn default_session_timeout() -> Duration {
    crate::domain::project::DEFAULT_SESSION_TIMEOUT
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Ingest limits and time policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Events with a timestamp further than this after `receivedAt` are clamped to `receivedAt`.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Capacity of the in-process queue, in events; a full queue answers 503.
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
            batch_max_events: 20_000,
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
}

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
    fn validate(&self) -> Result<(), ConfigError> {
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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `analytics=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// A key or password that must never appear in logs: `Debug` prints a mask.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // An environment value made of digits (`ANALYTICS_STORAGE__PASSWORD=1234`)
        // arrives as a number; it is still the text of a secret.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Unsigned(u64),
            Signed(i64),
        }
        Ok(Secret(match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Unsigned(number) => number.to_string(),
            Raw::Signed(number) => number.to_string(),
        }))
    }
}

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The key itself; call only where it is compared or deliberately shown.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Values given on the command line; each overrides every other layer.
#[derive(Debug, Default, Clone)]
pub struct CliOverrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--data-dir DIR`: the DuckDB file goes to `DIR/analytics.duckdb`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format text|json`.
    pub log_format: Option<String>,
}

/// A configuration value that is missing, malformed or contradictory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file given by `--config` or `ANALYTICS_CONFIG` does not exist.
    #[error("config file {path}: not found")]
    FileNotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// A value could not be parsed or has the wrong type.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        let key = if error.path.is_empty() {
            "config".to_owned()
        } else {
            error.path.join(".")
        };
        let source = error
            .metadata
            .as_ref()
            .map(|metadata| format!(" (from {})", metadata.name))
            .unwrap_or_default();
        Self::invalid(key, format!("{}{source}", error.kind))
    }
}

impl Config {
    /// Loads and validates the configuration from every layer.
    ///
    /// `env` is the process environment (passed in so that tests can supply their own).
    pub fn load(
        cli: &CliOverrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let file = cli.config_file.clone().or_else(|| {
            env.iter()
                .find(|(name, _)| name == CONFIG_FILE_ENV)
                .map(|(_, value)| PathBuf::from(value))
        });

        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::FileNotFound { path: path.clone() });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(env_provider(&env));
        figment = apply_cli(figment, cli);

        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that deserialisation cannot check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_storage()?;
        if self.ingest.queue_capacity == 0 {
            return Err(ConfigError::invalid(
                "ingest.queue_capacity",
                "must be at least 1",
            ));
        }
        if self.processor.batch_max_events == 0 {
            return Err(ConfigError::invalid(
                "processor.batch_max_events",
                "must be at least 1",
            ));
        }
        if self.processor.write_attempts == 0 {
            return Err(ConfigError::invalid(
                "processor.write_attempts",
                "must be at least 1",
            ));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::invalid("log.level", error.to_string()));
        }
        self.exporter.validate()?;
        self.validate_projects()?;
        if let Some(kafka) = &self.kafka {
            let ids: Vec<&str> = self.projects.iter().map(|p| p.id.as_str()).collect();
            kafka.validate(&ids)?;
        }
        Ok(())
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
        let storage = &self.storage;
        match storage.backend {
            StorageBackend::Duckdb => {
                if storage.path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid("storage.path", "must not be empty"));
                }
            }
            StorageBackend::Clickhouse => {
                if !(storage.url.starts_with("http://") || storage.url.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        "storage.url",
                        format!("{:?} is not an http:// or https:// URL", storage.url),
                    ));
                }
                let identifier = crate::storage::clickhouse::schema::is_identifier;
                if !identifier(&storage.database) {
                    return Err(ConfigError::invalid(
                        "storage.database",
                        format!(
                            "{:?}: use letters, digits and underscores",
                            storage.database
                        ),
                    ));
                }
                if let Some(cluster) = storage.cluster.as_deref().filter(|c| !identifier(c)) {
                    return Err(ConfigError::invalid(
                        "storage.cluster",
                        format!("{cluster:?}: use letters, digits and underscores"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_projects(&self) -> Result<(), ConfigError> {
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        for (index, project) in self.projects.iter().enumerate() {
            let at = |field: &str| format!("projects[{index}].{field}");
            if !is_valid_project_id(&project.id) {
                return Err(ConfigError::invalid(
                    at("id"),
                    format!(
                        "{:?} is not a valid project id (1 to 64 characters: letters, digits, '-', '_')",
                        project.id
                    ),
                ));
            }
            if !ids.insert(project.id.as_str()) {
                return Err(ConfigError::invalid(
                    at("id"),
                    format!("project id {:?} is used twice", project.id),
                ));
            }
            if project.timezone.parse::<chrono_tz::Tz>().is_err() {
                return Err(ConfigError::invalid(
                    at("timezone"),
                    format!("{:?} is not an IANA timezone name", project.timezone),
                ));
            }
            if project.session_timeout.is_zero() {
                return Err(ConfigError::invalid(
                    at("session_timeout"),
                    "must be longer than zero, e.g. \"30m\"",
                ));
            }
            if project.write_keys.is_empty() {
                return Err(ConfigError::invalid(
                    at("write_keys"),
                    "at least one write key is required",
                ));
            }
            for (field, list) in [
                ("write_keys", &project.write_keys),
                ("read_keys", &project.read_keys),
            ] {
                for (key_index, key) in list.iter().enumerate() {
                    let name = format!("projects[{index}].{field}[{key_index}]");
                    if key.expose().len() < 8 || key.expose().chars().any(char::is_whitespace) {
                        return Err(ConfigError::invalid(
                            name,
                            "a key must be at least 8 characters with no whitespace",
                        ));
                    }
                    if !keys.insert(key.expose()) {
                        return Err(ConfigError::invalid(
                            name,
                            "this key is already used (keys are unique across projects and kinds)",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Project ids are short and safe to use in paths, metrics and SQL literals.
pub fn is_valid_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn env_provider(env: &[(String, String)]) -> Serialized<figment::value::Dict> {
    // Built from the given pairs rather than `figment::providers::Env`, which reads
    // the real process environment, so that tests stay hermetic. `__` nests keys.
    let mut root = figment::value::Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == CONFIG_FILE_ENV || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        insert_path(&mut root, &path, parse_env_value(value));
    }
    Serialized::globals(root)
}

fn parse_env_value(raw: &str) -> figment::value::Value {
    // Same rules as figment's `Env`: TOML-like scalars and arrays, else a string.
    raw.parse::<figment::value::Value>()
        .unwrap_or_else(|_| figment::value::Value::from(raw.to_owned()))
}

fn insert_path(dict: &mut figment::value::Dict, path: &[String], value: figment::value::Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = dict
                .entry(head.clone())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn apply_cli(mut figment: Figment, cli: &CliOverrides) -> Figment {
    if let Some(listen) = &cli.listen {
        figment = figment.merge(Serialized::global("listen", listen));
    }
    if let Some(dir) = &cli.data_dir {
        figment = figment.merge(Serialized::global(
            "storage.path",
            data_file_in(dir).display().to_string(),
        ));
    }
    if let Some(format) = &cli.log_format {
        figment = figment.merge(Serialized::global("log.format", format));
    }
    figment
}

/// Path of the DuckDB file inside a data directory.
pub fn data_file_in(dir: &Path) -> PathBuf {
    dir.join(DUCKDB_FILE_NAME)
}

/// The process's `ANALYTICS_*` variables, for [`Config::load`].
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(key, _)| key.starts_with(ENV_PREFIX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write_toml(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_duckdb_in_data() {
        let config = Config::load(&CliOverrides::default(), env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.storage.backend, StorageBackend::Duckdb);
        assert_eq!(config.storage.path, PathBuf::from("data/analytics.duckdb"));
        assert!(config.projects.is_empty());
    }

    #[test]
    fn layers_override_in_order_file_env_flags() {
        let file = write_toml(
            r#"
            listen = "127.0.0.1:9000"
            [storage]
            path = "from-file.duckdb"
            [ingest]
            max_future = "2h"
            [[projects]]
            id = "shop"
            timezone = "Europe/Berlin"
            write_keys = ["wk_shop_12345"]
            read_keys = ["rk_shop_12345"]
            "#,
        );
        let cli = CliOverrides {
            config_file: Some(file.path().to_owned()),
            ..CliOverrides::default()
        };
        let config = Config::load(&cli, env(&[])).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.storage.path, PathBuf::from("from-file.duckdb"));
        assert_eq!(config.ingest.max_future, Duration::from_secs(7200));
        assert_eq!(config.projects[0].timezone, "Europe/Berlin");

        let config = Config::load(
            &cli,
            env(&[
                ("ANALYTICS_LISTEN", "127.0.0.1:9001"),
                ("ANALYTICS_STORAGE__PATH", "from-env.duckdb"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.storage.path, PathBuf::from("from-env.duckdb"));

        let cli = CliOverrides {
            listen: Some("127.0.0.1:9002".into()),
            data_dir: Some(PathBuf::from("/srv/analytics")),
            ..cli
        };
        let config = Config::load(
            &cli,
            env(&[
                ("ANALYTICS_LISTEN", "127.0.0.1:9001"),
                ("ANALYTICS_STORAGE__PATH", "from-env.duckdb"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9002);
        assert_eq!(
            config.storage.path,
            PathBuf::from("/srv/analytics/analytics.duckdb")
        );
    }

    #[test]
    fn exporter_settings_are_checked_by_key() {
        let config = Config::load(
            &CliOverrides::default(),
            env(&[
                ("ANALYTICS_EXPORTER__INTERVAL", "30s"),
                ("ANALYTICS_EXPORTER__TOP_EVENTS", "25"),
            ]),
        )
        .unwrap();
        assert_eq!(config.exporter.interval, Duration::from_secs(30));
        assert_eq!(config.exporter.top_events, 25);
        for (name, value, key) in [
            ("ANALYTICS_EXPORTER__INTERVAL", "0s", "exporter.interval"),
            ("ANALYTICS_EXPORTER__TOP_EVENTS", "0", "exporter.top_events"),
            (
                "ANALYTICS_EXPORTER__TOP_EVENTS",
                "101",
                "exporter.top_events",
            ),
            (
                "ANALYTICS_EXPORTER__FRESHNESS_LOOKBACK",
                "10s",
                "exporter.freshness_lookback",
            ),
        ] {
            let error = Config::load(&CliOverrides::default(), env(&[(name, value)])).unwrap_err();
            assert!(
                error.to_string().starts_with(key),
                "{name}={value}: {error}"
            );
        }
    }

    #[test]
    fn clickhouse_storage_comes_from_the_environment_with_its_password_masked() {
        let config = Config::load(
            &CliOverrides::default(),
            env(&[
                ("ANALYTICS_STORAGE__BACKEND", "clickhouse"),
                ("ANALYTICS_STORAGE__URL", "http://10.0.0.5:8123"),
                ("ANALYTICS_STORAGE__DATABASE", "events_prod"),
                ("ANALYTICS_STORAGE__PASSWORD", "123456"),
            ]),
        )
        .unwrap();
        assert_eq!(config.storage.backend, StorageBackend::Clickhouse);
        assert_eq!(config.storage.url, "http://10.0.0.5:8123");
        assert_eq!(config.storage.database, "events_prod");
        assert_eq!(config.storage.password.expose(), "123456");
        assert!(!format!("{config:?}").contains("123456"));
        let batching = config.processor.batching(config.storage.backend);
        assert_eq!(batching.max_wait, Duration::from_secs(1));
        assert_eq!(batching.min_events, 1_000);

        let error = load_error("[storage]\nbackend = \"clickhouse\"\ndatabase = \"a-b\"\n");
        assert!(error.starts_with("storage.database:"), "{error}");
        let error = load_error("[storage]\nbackend = \"clickhouse\"\nurl = \"tcp://x:9000\"\n");
        assert!(error.starts_with("storage.url:"), "{error}");
    }

    #[test]
    fn kafka_starts_only_with_its_section_and_reads_the_environment() {
        assert!(Config::load(&CliOverrides::default(), env(&[]))
            .unwrap()
            .kafka
            .is_none());
        let config = Config::load(
            &CliOverrides::default(),
            env(&[
                ("ANALYTICS_KAFKA__BROKERS", "10.0.0.7:9092,10.0.0.8:9092"),
                ("ANALYTICS_KAFKA__TOPIC", "clicks"),
                ("ANALYTICS_KAFKA__INGEST_VIA_KAFKA", "true"),
            ]),
        )
        .unwrap();
        let kafka = config.kafka.unwrap();
        assert_eq!(kafka.brokers, "10.0.0.7:9092,10.0.0.8:9092");
        assert_eq!(kafka.topic, "clicks");
        assert!(kafka.ingest_via_kafka);
        assert_eq!(kafka.dead_letter_topic, "events_dlq");

        let error = load_error("[kafka]\ntopic = \"events\"\n");
        assert!(error.starts_with("kafka.brokers:"), "{error}");
    }

    #[test]
    fn config_file_can_come_from_the_environment() {
        let file = write_toml("listen = \"127.0.0.1:9100\"\n");
        let config = Config::load(
            &CliOverrides::default(),
            env(&[(CONFIG_FILE_ENV, file.path().to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9100);
    }

    fn load_error(toml: &str) -> String {
        let file = write_toml(toml);
        let cli = CliOverrides {
            config_file: Some(file.path().to_owned()),
            ..CliOverrides::default()
        };
        Config::load(&cli, env(&[])).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_key() {
        let error = load_error("listen = \"not-an-address\"\n");
        assert!(error.starts_with("listen:"), "{error}");

        let error = load_error("[storage]\nbackend = \"sqlite\"\n");
        assert!(error.starts_with("storage.backend:"), "{error}");

        let error = load_error("[storage]\nnonsense = 1\n");
        assert!(error.contains("nonsense"), "{error}");

        let error = load_error(
            "[[projects]]\nid = \"shop\"\ntimezone = \"Mars/Olympus\"\nwrite_keys = [\"wk_12345678\"]\n",
        );
        assert_eq!(
            error,
            "projects[0].timezone: \"Mars/Olympus\" is not an IANA timezone name"
        );

        let error = load_error("[[projects]]\nid = \"shop\"\nwrite_keys = []\n");
        assert!(error.starts_with("projects[0].write_keys:"), "{error}");

        let error = load_error(
            "[[projects]]\nid = \"a\"\nwrite_keys = [\"wk_12345678\"]\n[[projects]]\nid = \"b\"\nwrite_keys = [\"wk_12345678\"]\n",
        );
        assert!(error.starts_with("projects[1].write_keys[0]:"), "{error}");

        let error =
            load_error("[[projects]]\nid = \"no spaces\"\nwrite_keys = [\"wk_12345678\"]\n");
        assert!(error.starts_with("projects[0].id:"), "{error}");

        let error = load_error("[processor]\nbatch_max_wait = \"soon\"\n");
        assert!(error.starts_with("processor.batch_max_wait:"), "{error}");
    }

    #[test]
    fn missing_config_file_is_reported() {
        let cli = CliOverrides {
            config_file: Some(PathBuf::from("/nonexistent/analytics.toml")),
            ..CliOverrides::default()
        };
        let error = Config::load(&cli, env(&[])).unwrap_err().to_string();
        assert_eq!(error, "config file /nonexistent/analytics.toml: not found");
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let project = ProjectConfig {
            id: "shop".into(),
            timezone: "UTC".into(),
            write_keys: vec![Secret::new("wk_supersecret")],
            read_keys: vec![],
            session_timeout: Duration::from_secs(1800),
        };
        let printed = format!("{project:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
    }
}
