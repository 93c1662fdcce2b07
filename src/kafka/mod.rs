//! Kafka clients (librdkafka through `rdkafka`): the producer behind HTTP
//! ingest, the dead-letter producer, the consumer of the consumer worker, and
//! the broker readiness check.

pub mod config;
pub mod consumer;
pub mod dead_letters;
pub mod health;
pub mod producer;

pub use config::KafkaConfig;

use rdkafka::ClientConfig;

/// Header naming the project of a record (written by HTTP ingest).
pub const PROJECT_HEADER: &str = "analytics-project";

/// A Kafka client could not be created or failed.
#[derive(Debug, thiserror::Error)]
#[error("kafka {context}: {source}")]
pub struct KafkaClientError {
    /// What was being done.
    pub context: &'static str,
    /// librdkafka's error.
    #[source]
    pub source: rdkafka::error::KafkaError,
}

impl KafkaClientError {
    fn new(context: &'static str, source: rdkafka::error::KafkaError) -> Self {
        Self { context, source }
    }
}

/// Settings every client shares: brokers, client id and the user's `options`.
fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "analytics");
    for (key, value) in &config.options {
        client.set(key, value.expose());
    }
    client
}

/// Settings of a producer that loses nothing: every in-sync replica
/// acknowledges, retries cannot reorder or duplicate, and delivery gives up
/// (and reports) after `produce_timeout`.
fn reliable_producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = client_config(config);
    client
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            config.produce_timeout.as_millis().to_string(),
        );
    client
}

/// Client context that sends librdkafka's log lines and errors to `tracing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingContext;

impl rdkafka::ClientContext for TracingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, line: &str) {
        forward_log(level, facility, line);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, reason, "kafka client error");
    }
}

/// Forwards one librdkafka log line to `tracing` at the matching level.
pub(crate) fn forward_log(level: rdkafka::config::RDKafkaLogLevel, facility: &str, line: &str) {
    use rdkafka::config::RDKafkaLogLevel as Level;
    match level {
        Level::Emerg | Level::Alert | Level::Critical | Level::Error => {
            tracing::error!(target: "librdkafka", facility, "{line}")
        }
        Level::Warning => tracing::warn!(target: "librdkafka", facility, "{line}"),
        Level::Notice | Level::Info => tracing::info!(target: "librdkafka", facility, "{line}"),
        Level::Debug => tracing::debug!(target: "librdkafka", facility, "{line}"),
    }
}

/// The producer type of the service: logs go to `tracing`.
pub type Producer = rdkafka::producer::FutureProducer<TracingContext>;
