//! The `[kafka]` section: brokers, topics, the consumer group and the pipeline's bounds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Kafka settings. Without a `[kafka]` section nothing about Kafka starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic of events: one Segment-shaped JSON message per record.
    pub topic: String,
    /// Consumer group of the consumer worker.
    pub group_id: String,
    /// Where messages that can never be stored go, with the reason in headers.
    pub dead_letter_topic: String,
    /// HTTP ingest produces to `topic` instead of the in-process queue.
    pub ingest_via_kafka: bool,
    /// Run the consumer worker (set `false` on HTTP-only nodes).
    pub consume: bool,
    /// Project of messages that name none (no `writeKey`, no project header).
    pub default_project: Option<String>,
    /// Largest message the consumer accepts; larger ones are dead-lettered.
    pub max_message_bytes: usize,
    /// Most messages the consumer hands to the processor at once.
    pub batch_max_messages: usize,
    /// Longest the consumer waits to fill a batch.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    /// Batches written or being written at once; the consumer pauses fetching
    /// when this many are outstanding, which bounds its memory.
    pub max_in_flight_batches: usize,
    /// How long the producer tries to deliver a message before the HTTP
    /// request gets 503 (librdkafka `message.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub produce_timeout: Duration,
    /// Further librdkafka settings (e.g. `"security.protocol" = "SASL_SSL"`),
    /// applied to every client; values are masked in logs.
    pub options: BTreeMap<String, Secret>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topic: "events".into(),
            group_id: "analytics".into(),
            dead_letter_topic: "events_dlq".into(),
            ingest_via_kafka: false,
            consume: true,
            default_project: None,
            max_message_bytes: 1024 * 1024,
            batch_max_messages: 5_000,
            batch_max_wait: Duration::from_millis(100),
            max_in_flight_batches: 4,
            produce_timeout: Duration::from_secs(10),
            options: BTreeMap::new(),
        }
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`.
fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl KafkaConfig {
    /// Checks what deserialisation cannot; `project_ids` are the configured
    /// projects (empty: only the development project `default` exists).
    pub fn validate(&self, project_ids: &[&str]) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("kafka.{key}"),
            message,
        };
        if self.brokers.trim().is_empty() {
            return Err(invalid(
                "brokers",
                "is required: comma-separated host:port".into(),
            ));
        }
        for (key, topic) in [
            ("topic", &self.topic),
            ("dead_letter_topic", &self.dead_letter_topic),
        ] {
            if !is_topic_name(topic) {
                return Err(invalid(
                    key,
                    format!("{topic:?} is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)"),
                ));
            }
        }
        if self.dead_letter_topic == self.topic {
            return Err(invalid(
                "dead_letter_topic",
                "must differ from kafka.topic".into(),
            ));
        }
        if self.group_id.trim().is_empty() {
            return Err(invalid("group_id", "must not be empty".into()));
        }
        if let Some(project) = &self.default_project {
            let known = if project_ids.is_empty() {
                project == crate::domain::project::DEVELOPMENT_PROJECT_ID
            } else {
                project_ids.contains(&project.as_str())
            };
            if !known {
                return Err(invalid(
                    "default_project",
                    format!("{project:?} is not a configured project"),
                ));
            }
        }
        for (key, value) in [
            ("max_message_bytes", self.max_message_bytes),
            ("batch_max_messages", self.batch_max_messages),
            ("max_in_flight_batches", self.max_in_flight_batches),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if self.produce_timeout < Duration::from_millis(1) {
            return Err(invalid("produce_timeout", "must be at least 1ms".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KafkaConfig {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            ..KafkaConfig::default()
        }
    }

    fn error_key(config: &KafkaConfig, projects: &[&str]) -> String {
        match config.validate(projects).unwrap_err() {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn defaults_with_brokers_are_valid() {
        assert!(config().validate(&[]).is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(error_key(&KafkaConfig::default(), &[]), "kafka.brokers");
        let bad_topic = KafkaConfig {
            topic: "events/x".into(),
            ..config()
        };
        assert_eq!(error_key(&bad_topic, &[]), "kafka.topic");
        let same = KafkaConfig {
            dead_letter_topic: "events".into(),
            ..config()
        };
        assert_eq!(error_key(&same, &[]), "kafka.dead_letter_topic");
        let unknown = KafkaConfig {
            default_project: Some("shop".into()),
            ..config()
        };
        assert_eq!(error_key(&unknown, &["blog"]), "kafka.default_project");
        assert!(unknown.validate(&["blog", "shop"]).is_ok());
        let zero = KafkaConfig {
            max_in_flight_batches: 0,
            ..config()
        };
        assert_eq!(error_key(&zero, &[]), "kafka.max_in_flight_batches");
    }

    #[test]
    fn the_development_project_may_be_the_default_when_none_is_configured() {
        let config = KafkaConfig {
            default_project: Some("default".into()),
            ..config()
        };
        assert!(config.validate(&[]).is_ok());
    }
}
