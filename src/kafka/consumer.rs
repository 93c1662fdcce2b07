//! The consumer of the events topic: a consumer-group member that stores
//! offsets only when told (after the write) and commits them in the
//! background, on rebalance and on close.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Statistics};

use super::{client_config, forward_log, KafkaClientError, KafkaConfig};
use crate::telemetry::kafka_metrics::KafkaMetrics;

/// The consumer type of the consumer worker.
pub type EventConsumer = rdkafka::consumer::StreamConsumer<ConsumerEvents>;

/// Reacts to the consumer's life: statistics (lag), rebalances, logs.
pub struct ConsumerEvents {
    metrics: KafkaMetrics,
}

impl ClientContext for ConsumerEvents {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, line: &str) {
        forward_log(level, facility, line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, reason, "kafka consumer error");
    }

    fn stats(&self, statistics: Statistics) {
        for (topic_name, topic) in &statistics.topics {
            for (partition, stats) in &topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue;
                // a lag of -1 means not known yet.
                if *partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                self.metrics
                    .consumer_lag
                    .with_label_values(&[topic_name.as_str(), &partition.to_string()])
                    .set(stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for ConsumerEvents {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                // Whatever was stored (written to storage) is committed before
                // another member takes the partitions over.
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                    Err(error) => {
                        tracing::warn!(%error, "committing before a rebalance failed")
                    }
                }
                for element in partitions.elements() {
                    let _ = self
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[element.topic(), &element.partition().to_string()]);
                }
                let remaining = self.metrics.assigned_partitions.get() - partitions.count() as i64;
                self.metrics.assigned_partitions.set(remaining.max(0));
                tracing::info!(partitions = partitions.count(), "kafka partitions revoked");
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "kafka rebalance failed"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned: Vec<String> = partitions
                .elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect();
            tracing::info!(?assigned, "kafka partitions assigned");
            self.metrics
                .assigned_partitions
                .add(partitions.count() as i64);
        }
    }
}

/// Creates the group member and subscribes it to the events topic.
///
/// Offsets are stored by the worker after each write
/// (`enable.auto.offset.store=false`, which `kafka.options` cannot change)
/// and committed every second (`auto.commit.interval.ms`), before a
/// rebalance and on close; a new group starts at the earliest record.
pub fn create_consumer(
    config: &KafkaConfig,
    metrics: KafkaMetrics,
) -> Result<EventConsumer, KafkaClientError> {
    let context = ConsumerEvents { metrics };
    let defaults = [
        ("auto.commit.interval.ms", "1000"),
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "5000"),
        // Bounds what librdkafka prefetches.
        ("queued.max.messages.kbytes", "16384"),
    ];
    let guarantees = [
        ("group.id", config.group_id.as_str()),
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "false"),
    ];
    let consumer: EventConsumer = client_config(config, &defaults, &guarantees)
        .create_with_context(context)
        .map_err(|e| KafkaClientError::new("creating the consumer", e))?;
    consumer
        .subscribe(&[config.topic.as_str()])
        .map_err(|e| KafkaClientError::new("subscribing to the events topic", e))?;
    Ok(consumer)
}
