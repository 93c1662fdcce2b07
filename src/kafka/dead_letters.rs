//! The dead-letter topic: records that can never be stored, kept as they came
//! with the reason and their origin in headers.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use super::{reliable_producer_config, KafkaClientError, KafkaConfig, Producer, TracingContext};
use crate::telemetry::kafka_metrics::KafkaMetrics;

/// Header: machine-readable reason (`malformed_json`, `missing_field`, ...).
pub const REASON_HEADER: &str = "analytics-error-reason";
/// Header: human-readable reason, naming the field at fault when there is one.
pub const MESSAGE_HEADER: &str = "analytics-error-message";
/// Header: topic the record was read from.
pub const SOURCE_TOPIC_HEADER: &str = "analytics-source-topic";
/// Header: partition the record was read from (decimal).
pub const SOURCE_PARTITION_HEADER: &str = "analytics-source-partition";
/// Header: offset of the record in its partition (decimal).
pub const SOURCE_OFFSET_HEADER: &str = "analytics-source-offset";

/// A record that can never be stored, with why and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's key, unchanged.
    pub key: Option<Vec<u8>>,
    /// The record's value, unchanged.
    pub payload: Option<Vec<u8>>,
    /// Machine-readable reason (also the metric label).
    pub reason: &'static str,
    /// Human-readable reason.
    pub message: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Where the consumer worker sends dead letters.
#[async_trait::async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Sends one dead letter; resolves once it is durable.
    async fn send(&self, letter: &DeadLetter) -> Result<(), String>;
}

#[async_trait::async_trait]
impl DeadLetterSink for DeadLetterProducer {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        self.produce(letter).await.map_err(|e| e.to_string())
    }
}

/// Produces dead letters (`acks=all`, idempotent).
pub struct DeadLetterProducer {
    producer: Producer,
    topic: String,
    source_topic: String,
    metrics: KafkaMetrics,
}

impl DeadLetterProducer {
    /// Creates the producer; it connects lazily.
    pub fn new(config: &KafkaConfig, metrics: KafkaMetrics) -> Result<Self, KafkaClientError> {
        let producer = reliable_producer_config(config)
            .create_with_context(TracingContext)
            .map_err(|e| KafkaClientError::new("creating the dead-letter producer", e))?;
        Ok(Self {
            producer,
            topic: config.dead_letter_topic.clone(),
            source_topic: config.topic.clone(),
            metrics,
        })
    }

    /// The underlying client, for readiness checks.
    pub fn client(&self) -> &Producer {
        &self.producer
    }

    /// Produces one dead letter; resolves once the broker acknowledged it.
    pub async fn produce(&self, letter: &DeadLetter) -> Result<(), rdkafka::error::KafkaError> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: REASON_HEADER,
                value: Some(letter.reason),
            })
            .insert(Header {
                key: MESSAGE_HEADER,
                value: Some(letter.message.as_str()),
            })
            .insert(Header {
                key: SOURCE_TOPIC_HEADER,
                value: Some(self.source_topic.as_str()),
            })
            .insert(Header {
                key: SOURCE_PARTITION_HEADER,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: SOURCE_OFFSET_HEADER,
                value: Some(offset.as_str()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &letter.payload {
            record = record.payload(payload.as_slice());
        }
        match self.producer.send(record, Timeout::Never).await {
            Ok(_) => {
                self.metrics
                    .dead_letters
                    .with_label_values(&[letter.reason])
                    .inc();
                Ok(())
            }
            Err((error, _)) => {
                self.metrics
                    .produce_errors
                    .with_label_values(&["dead_letters"])
                    .inc();
                Err(error)
            }
        }
    }
}
