//! Kafka clients (librdkafka through `rdkafka`): the producer behind HTTP
//! ingest, the dead-letter producer, the consumer of the consumer worker, and
//! the broker readiness check.

pub mod consumer;
pub mod dead_letters;
pub mod health;
pub mod producer;

pub use crate::config::KafkaConfig;

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

/// A client's settings in three layers: `defaults` (which the user's
/// `options` may change), then the user's `options`, then `guarantees`
/// (which they may not: the settings that make delivery safe).
fn client_config(
    config: &KafkaConfig,
    defaults: &[(&str, &str)],
    guarantees: &[(&str, &str)],
) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("client.id", "analytics");
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    for (key, value) in &config.options {
        client.set(key, value.expose());
    }
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in guarantees {
        client.set(*key, *value);
    }
    client
}

/// Settings of a producer that loses nothing: every in-sync replica
/// acknowledges, retries cannot reorder or duplicate, and delivery gives up
/// (and reports) after `produce_timeout`.
fn reliable_producer_config(config: &KafkaConfig) -> ClientConfig {
    let timeout = config.produce_timeout.as_millis().to_string();
    client_config(
        config,
        &[("linger.ms", "5")],
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", &timeout),
        ],
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn options_change_defaults_but_never_the_delivery_guarantees() {
        let config = KafkaConfig {
            brokers: "10.0.0.1:9092".into(),
            options: [
                ("linger.ms", "50"),
                ("acks", "1"),
                ("security.protocol", "SASL_SSL"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Secret::new(v)))
            .collect(),
            ..KafkaConfig::default()
        };
        let client = reliable_producer_config(&config);
        assert_eq!(client.get("linger.ms"), Some("50"));
        assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(client.get("acks"), Some("all"));
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        assert_eq!(client.get("message.timeout.ms"), Some("10000"));
        assert_eq!(client.get("bootstrap.servers"), Some("10.0.0.1:9092"));
    }
}
