//! Service configuration: defaults < TOML file < `ANALYTICS_*` environment < CLI flags.
//!
//! Loading ([`Config::load`]) merges the layers with `figment`; validation
//! ([`Config::validate`]) checks every value that deserialisation cannot, and
//! reports the key by its dotted path (`projects[0].timezone`) so that an
//! operator knows what to fix. Each section has its own module.

mod dashboard;
mod enrich;
mod exporter;
mod ingest;
mod kafka;
mod layers;
mod log;
mod processor;
mod projects;
mod read;
mod secret;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use dashboard::DashboardConfig;
pub use enrich::EnrichConfig;
pub use exporter::{ExporterConfig, MAX_EXPORTER_TOP_EVENTS};
pub use ingest::IngestConfig;
pub use kafka::KafkaConfig;
pub use layers::{data_file_in, process_env, CliOverrides};
pub use log::{LogConfig, LogFormat};
pub use processor::{Batching, ProcessorConfig};
pub use projects::{is_valid_project_id, registry, ProjectConfig};
pub use read::ReadConfig;
pub use secret::Secret;
pub use storage::{StorageBackend, StorageConfig};

use crate::domain::segment::Limits;

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
    /// The data files of enrichment (user agents, referrers, locations).
    pub enrich: EnrichConfig,
    /// Batching of the processor worker.
    pub processor: ProcessorConfig,
    /// Limits of queries, analyses and exports.
    pub read: ReadConfig,
    /// Kafka: the consumer worker and HTTP ingest through a topic. Absent: no Kafka.
    pub kafka: Option<KafkaConfig>,
    /// The exporter worker's business gauges on `/metrics`.
    pub exporter: ExporterConfig,
    /// The web dashboard at `/`.
    pub dashboard: DashboardConfig,
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
            enrich: EnrichConfig::default(),
            processor: ProcessorConfig::default(),
            read: ReadConfig::default(),
            kafka: None,
            exporter: ExporterConfig::default(),
            dashboard: DashboardConfig::default(),
            log: LogConfig::default(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
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
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
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
        figment = figment.merge(layers::env_provider(&env));
        figment = layers::apply_cli(figment, cli);

        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that deserialisation cannot check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.storage.validate()?;
        self.validate_queue()?;
        self.ingest.validate()?;
        if self.ingest.journal == Some(true)
            && self.storage.backend == StorageBackend::Clickhouse
            && self.ingest.journal_dir.is_none()
        {
            return Err(ConfigError::invalid(
                "ingest.journal_dir",
                "is required for a journal with the ClickHouse backend (a directory on local disk)",
            ));
        }
        self.processor.validate()?;
        self.read.validate()?;
        self.log.validate()?;
        self.exporter.validate()?;
        projects::validate(&self.projects)?;
        if let Some(kafka) = &self.kafka {
            let ids: Vec<&str> = self.projects.iter().map(|p| p.id.as_str()).collect();
            kafka.validate(&ids)?;
        }
        Ok(())
    }

    /// The directory of the ingest journal, when HTTP ingest acknowledges
    /// from one (see [`IngestConfig::journal`]).
    pub fn journal_dir(&self) -> Option<PathBuf> {
        if self.kafka.is_some() {
            return None;
        }
        let ingest = &self.ingest;
        match (self.storage.backend, ingest.journal) {
            (_, Some(false)) | (StorageBackend::Clickhouse, None) => None,
            (StorageBackend::Duckdb, _) => Some(ingest.journal_dir.clone().unwrap_or_else(|| {
                let mut path = self.storage.path.clone().into_os_string();
                path.push(".journal");
                PathBuf::from(path)
            })),
            (StorageBackend::Clickhouse, Some(true)) => ingest.journal_dir.clone(),
        }
    }

    /// The queue must hold the largest batch handed over at once, or that
    /// batch could never be taken and its sender would wait forever.
    fn validate_queue(&self) -> Result<(), ConfigError> {
        let capacity = self.ingest.queue_capacity;
        let request = Limits::SEGMENT.max_batch_events;
        if capacity < request {
            return Err(ConfigError::invalid(
                "ingest.queue_capacity",
                format!(
                    "{capacity} is smaller than the largest batch request ({request} events per /v1/batch); set it to at least {request}"
                ),
            ));
        }
        if let Some(kafka) = self.kafka.as_ref().filter(|kafka| kafka.consume) {
            if capacity < kafka.batch_max_messages {
                return Err(ConfigError::invalid(
                    "ingest.queue_capacity",
                    format!(
                        "{capacity} is smaller than kafka.batch_max_messages ({}), the batch the Kafka consumer hands over at once; raise ingest.queue_capacity or lower kafka.batch_max_messages",
                        kafka.batch_max_messages
                    ),
                ));
            }
        }
        Ok(())
    }
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
    fn a_queue_smaller_than_the_largest_batch_is_refused_naming_both_keys() {
        let error = Config::load(
            &CliOverrides::default(),
            env(&[("ANALYTICS_INGEST__QUEUE_CAPACITY", "2499")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("ingest.queue_capacity: 2499"), "{error}");
        assert!(error.contains("2500 events per /v1/batch"), "{error}");
        assert!(Config::load(
            &CliOverrides::default(),
            env(&[("ANALYTICS_INGEST__QUEUE_CAPACITY", "2500")]),
        )
        .is_ok());

        let kafka = [
            ("ANALYTICS_KAFKA__BROKERS", "127.0.0.1:9092"),
            ("ANALYTICS_KAFKA__BATCH_MAX_MESSAGES", "5000"),
            ("ANALYTICS_INGEST__QUEUE_CAPACITY", "3000"),
        ];
        let error = Config::load(&CliOverrides::default(), env(&kafka))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ingest.queue_capacity: 3000"), "{error}");
        assert!(error.contains("kafka.batch_max_messages (5000)"), "{error}");
        // A node that does not consume hands no Kafka batch to the queue.
        let mut http_only = kafka.to_vec();
        http_only.push(("ANALYTICS_KAFKA__CONSUME", "false"));
        assert!(Config::load(&CliOverrides::default(), env(&http_only)).is_ok());
    }

    #[test]
    fn origins_proxies_domains_and_the_public_url_that_do_not_parse_are_refused_by_key() {
        let file = write_toml(
            r#"
            [[projects]]
            id = "shop"
            write_keys = ["wk_shop_12345"]
            allowed_origins = ["https://shop.example", "shop.example/checkout"]
            "#,
        );
        let cli = CliOverrides {
            config_file: Some(file.path().to_owned()),
            ..CliOverrides::default()
        };
        let error = Config::load(&cli, env(&[])).unwrap_err().to_string();
        assert!(
            error.starts_with("projects[0].allowed_origins[1]: \"shop.example/checkout\""),
            "{error}"
        );
        for (variable, value, key) in [
            (
                "ANALYTICS_READ__ALLOWED_ORIGINS",
                "[\"https://x.example/path\"]",
                "read.allowed_origins[0]",
            ),
            (
                "ANALYTICS_INGEST__PUBLIC_URL",
                "ftp://files.example",
                "ingest.public_url",
            ),
            (
                "ANALYTICS_INGEST__PUBLIC_URL",
                "not a url",
                "ingest.public_url",
            ),
            (
                "ANALYTICS_INGEST__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"proxy.internal\"]",
                "ingest.trusted_proxies[1]",
            ),
            (
                "ANALYTICS_PROJECTS",
                "[{id = \"shop\", write_keys = [\"wk_shop_12345\"], domains = [\"https://shop.example\"]}]",
                "projects[0].domains[0]",
            ),
            (
                "ANALYTICS_PROJECTS",
                "[{id = \"a\", write_keys = [\"wk_a_12345678\"], domains = [\"shop.example\"]}, {id = \"b\", write_keys = [\"wk_b_12345678\"], domains = [\"www.shop.example\"]}]",
                "projects[1].domains[0]",
            ),
        ] {
            let error = Config::load(&CliOverrides::default(), env(&[(variable, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(key), "{value}: {error}");
        }
        let config = Config::load(
            &CliOverrides::default(),
            env(&[
                (
                    "ANALYTICS_READ__ALLOWED_ORIGINS",
                    "[\"https://*.example.com\"]",
                ),
                (
                    "ANALYTICS_INGEST__PUBLIC_URL",
                    "https://analytics.example/collect",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(config.read.origins().len(), 1);
        assert_eq!(
            config.ingest.public_url().unwrap().as_str(),
            "https://analytics.example/collect"
        );
    }
}
