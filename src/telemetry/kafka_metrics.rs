//! Metrics of the Kafka consumer worker and producers.
//!
//! Label values stay bounded: dead-letter reasons are a fixed set, `topic` is
//! one of the configured topics, and `partition` is bounded by the topic's
//! partition count.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every Kafka metric, registered in the instance's registry.
#[derive(Clone)]
pub struct KafkaMetrics {
    /// Records read from the events topic.
    pub messages_consumed: IntCounter,
    /// Records whose events storage acknowledged (duplicates included).
    pub messages_stored: IntCounter,
    /// Records sent to the dead-letter topic, by reason.
    pub dead_letters: IntCounterVec,
    /// Messages between the stored offset and the end of each partition.
    pub consumer_lag: IntGaugeVec,
    /// Time from handing a consumed batch to the processor until it is stored.
    pub batch_write_duration: Histogram,
    /// Failed attempts to write a consumed batch (each is retried).
    pub write_retries: IntCounter,
    /// 1 while the consumer has paused fetching because storage lags behind.
    pub consumer_paused: IntGauge,
    /// Partitions of the events topic assigned to this consumer.
    pub assigned_partitions: IntGauge,
    /// Failed produce attempts, by target (`events` or `dead_letters`).
    pub produce_errors: IntCounterVec,
}

impl KafkaMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
            messages_consumed: IntCounter::new(
                "analytics_kafka_messages_consumed_total",
                "Records read from the events topic.",
            )
            .expect("valid metric"),
            messages_stored: IntCounter::new(
                "analytics_kafka_messages_stored_total",
                "Records whose events storage acknowledged, duplicates included.",
            )
            .expect("valid metric"),
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "analytics_kafka_dead_letters_total",
                    "Records sent to the dead-letter topic, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "analytics_kafka_consumer_lag_messages",
                    "Messages between the committed offset and the end of the partition.",
                ),
                &["topic", "partition"],
            )
            .expect("valid metric"),
            batch_write_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "analytics_kafka_batch_write_duration_seconds",
                    "Time from handing a consumed batch to the processor until it is stored.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )
            .expect("valid metric"),
            write_retries: IntCounter::new(
                "analytics_kafka_write_retries_total",
                "Failed attempts to store a consumed batch; each is retried.",
            )
            .expect("valid metric"),
            consumer_paused: IntGauge::new(
                "analytics_kafka_consumer_paused",
                "1 while the consumer has paused fetching because storage lags behind.",
            )
            .expect("valid metric"),
            assigned_partitions: IntGauge::new(
                "analytics_kafka_assigned_partitions",
                "Partitions of the events topic assigned to this consumer.",
            )
            .expect("valid metric"),
            produce_errors: IntCounterVec::new(
                Opts::new(
                    "analytics_kafka_produce_errors_total",
                    "Failed produce attempts, by target (events or dead_letters).",
                ),
                &["target"],
            )
            .expect("valid metric"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.messages_consumed.clone()),
            Box::new(metrics.messages_stored.clone()),
            Box::new(metrics.dead_letters.clone()),
            Box::new(metrics.consumer_lag.clone()),
            Box::new(metrics.batch_write_duration.clone()),
            Box::new(metrics.write_retries.clone()),
            Box::new(metrics.consumer_paused.clone()),
            Box::new(metrics.assigned_partitions.clone()),
            Box::new(metrics.produce_errors.clone()),
        ];
        super::register_all(registry, collectors);
        metrics
    }
}
