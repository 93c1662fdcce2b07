//! Wiring of the Kafka parts from the `[kafka]` section.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, KafkaConfig};
use crate::domain::dependency::DependencyCheck;
use crate::domain::{EventSink, ProjectRegistry};
use crate::enrich::Enricher;
use crate::kafka::consumer::create_consumer;
use crate::kafka::dead_letters::DeadLetterProducer;
use crate::kafka::health::BrokerCheck;
use crate::kafka::producer::EventProducer;
use crate::kafka::KafkaClientError;
use crate::telemetry::Metrics;
use crate::workers::kafka_consumer::decode::RecordDecoder;
use crate::workers::kafka_consumer::{ConsumerLimits, KafkaConsumerWorker};

/// Longest a readiness check waits for broker metadata.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// The Kafka parts a configuration asks for.
#[derive(Default)]
pub struct KafkaParts {
    /// The producer HTTP ingest submits to, with `ingest_via_kafka`.
    pub ingest_sink: Option<Arc<dyn EventSink>>,
    /// The consumer worker, with `consume`.
    pub consumer: Option<KafkaConsumerWorker>,
    /// The broker readiness check.
    pub check: Option<Arc<dyn DependencyCheck>>,
}

/// Builds the Kafka parts; `processor` is where consumed events go.
pub fn build(
    config: &Config,
    kafka: &KafkaConfig,
    projects: Arc<ProjectRegistry>,
    processor: Arc<dyn EventSink>,
    enricher: &Arc<Enricher>,
    metrics: &Metrics,
) -> Result<KafkaParts, KafkaClientError> {
    let mut parts = KafkaParts::default();
    let mut topics = Vec::new();
    let mut probe_client = None;
    if kafka.ingest_via_kafka {
        let producer = EventProducer::new(kafka, metrics.kafka.clone())?;
        probe_client = Some(producer.client().clone());
        topics.push(kafka.topic.clone());
        parts.ingest_sink = Some(Arc::new(producer));
    }
    if kafka.consume {
        let dead_letters = DeadLetterProducer::new(kafka, metrics.kafka.clone())?;
        probe_client.get_or_insert_with(|| dead_letters.client().clone());
        for topic in [&kafka.topic, &kafka.dead_letter_topic] {
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        let decoder = RecordDecoder {
            default_project: kafka
                .default_project
                .as_deref()
                .and_then(|id| projects.project(id)),
            projects,
            topic: kafka.topic.clone(),
            max_message_bytes: kafka.max_message_bytes,
            max_future: config.ingest.future_tolerance(),
            enricher: enricher.clone(),
        };
        let limits = ConsumerLimits {
            batch_max_messages: kafka.batch_max_messages,
            batch_max_wait: kafka.batch_max_wait,
            max_in_flight_batches: kafka.max_in_flight_batches,
            drain_timeout: config.shutdown_timeout,
        };
        parts.consumer = Some(KafkaConsumerWorker::new(
            create_consumer(kafka, metrics.kafka.clone())?,
            decoder,
            processor,
            Arc::new(dead_letters),
            limits,
            metrics.clone(),
        ));
    }
    if let Some(client) = probe_client {
        parts.check = Some(Arc::new(BrokerCheck::new(
            client,
            topics,
            BROKER_CHECK_TIMEOUT,
        )));
    }
    Ok(parts)
}
