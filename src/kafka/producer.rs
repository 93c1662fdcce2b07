//! HTTP ingest through Kafka: an [`EventSink`] that produces each event to the
//! events topic and answers once the broker has acknowledged all of them.

use async_trait::async_trait;
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use super::{
    reliable_producer_config, KafkaClientError, KafkaConfig, Producer, TracingContext,
    PROJECT_HEADER,
};
use crate::domain::{wire, Event, EventSink, SinkError, Submitted};
use crate::telemetry::kafka_metrics::KafkaMetrics;

/// Produces validated events to the events topic (`acks=all`, idempotent).
///
/// Records are keyed by project and user, so one user's events share a
/// partition and stay in order; the project travels in the
/// [`PROJECT_HEADER`] header. `submit` resolves only when every record is
/// acknowledged; if any is not, the request fails (503) and the client
/// resends, which `messageId` dedup makes harmless.
pub struct EventProducer {
    producer: Producer,
    topic: String,
    queue_timeout: std::time::Duration,
    metrics: KafkaMetrics,
}

impl EventProducer {
    /// Creates the producer; it connects lazily.
    pub fn new(config: &KafkaConfig, metrics: KafkaMetrics) -> Result<Self, KafkaClientError> {
        let producer = reliable_producer_config(config)
            .create_with_context(TracingContext)
            .map_err(|e| KafkaClientError::new("creating the events producer", e))?;
        Ok(Self {
            producer,
            topic: config.topic.clone(),
            queue_timeout: config.produce_timeout,
            metrics,
        })
    }

    /// The underlying client, for readiness checks.
    pub fn client(&self) -> &Producer {
        &self.producer
    }
}

/// The partitioning key: one user's events of one project go to one partition.
pub fn record_key(event: &Event) -> String {
    let user = event
        .user_id
        .as_deref()
        .or(event.anonymous_id.as_deref())
        .unwrap_or_default();
    format!("{}:{user}", event.project_id)
}

#[async_trait]
impl EventSink for EventProducer {
    async fn submit(&self, events: Vec<Event>) -> Result<Submitted, SinkError> {
        let mut records = Vec::with_capacity(events.len());
        for event in &events {
            let mut payload = Vec::with_capacity(512);
            wire::write_json(&mut payload, event)
                .map_err(|e| SinkError::BrokerUnavailable(format!("encoding an event: {e}")))?;
            records.push((record_key(event), payload));
        }
        let deliveries = events.iter().zip(&records).map(|(event, (key, payload))| {
            let headers = OwnedHeaders::new().insert(Header {
                key: PROJECT_HEADER,
                value: Some(event.project_id.as_str()),
            });
            let record = FutureRecord::to(&self.topic)
                .key(key.as_str())
                .payload(payload.as_slice())
                .headers(headers);
            // Waits for room in librdkafka's local queue at most this long;
            // delivery itself is bounded by `message.timeout.ms`.
            self.producer
                .send(record, Timeout::After(self.queue_timeout))
        });
        let results = join_all(deliveries).await;
        let failed: Vec<_> = results
            .into_iter()
            .filter_map(|result| result.err().map(|(error, _)| error))
            .collect();
        match failed.first() {
            // The consumer writes them; refusals go to the dead-letter topic there.
            None => Ok(Submitted::default()),
            Some(error) => {
                self.metrics
                    .produce_errors
                    .with_label_values(&["events"])
                    .inc_by(failed.len() as u64);
                tracing::warn!(%error, failed = failed.len(), total = events.len(), "producing events failed");
                Err(SinkError::BrokerUnavailable(error.to_string()))
            }
        }
    }
}
