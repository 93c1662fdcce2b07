//! Prometheus metrics of one service instance.
//!
//! Naming follows Prometheus rules: the `analytics_` prefix, base units
//! (`_seconds`, `_bytes`), `_total` for counters. Label values are bounded:
//! route templates, status codes, reject codes and event types, never ids or keys.

use super::exporter_metrics::ExporterMetrics;
use super::kafka_metrics::KafkaMetrics;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric the service publishes, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route template, method and status code.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by route template and method.
    pub http_request_duration: HistogramVec,
    /// Handlers that panicked (each answered 500).
    pub http_panics: IntCounter,
    /// Reads refused or stopped at a limit, by limit.
    pub read_limit_refusals: IntCounterVec,
    /// Events accepted (validated and handed to storage) by type.
    pub events_accepted: IntCounterVec,
    /// Events rejected by reason.
    pub events_rejected: IntCounterVec,
    /// Valid events not stored by policy (bots), by reason.
    pub events_dropped: IntCounterVec,
    /// Events whose future timestamp was clamped to `receivedAt`.
    pub events_clamped: IntCounter,
    /// Events written to storage.
    pub events_stored: IntCounter,
    /// Events skipped by storage as duplicates of a stored `messageId`.
    pub events_deduplicated: IntCounter,
    /// Events per written batch.
    pub batch_flush_size: Histogram,
    /// Time to write one batch.
    pub batch_flush_duration: Histogram,
    /// Failed batch writes, by whether a retry followed (`retry`) or senders got the error (`gave_up`).
    pub batch_flush_errors: IntCounterVec,
    /// Events waiting in the ingest queue or being written.
    pub queue_depth: IntGauge,
    /// Capacity of the ingest queue, in events.
    pub queue_capacity: IntGauge,
    /// Requests refused because the queue was full.
    pub queue_rejections: IntCounter,
    /// The Kafka consumer worker and producers.
    pub kafka: KafkaMetrics,
    /// The exporter worker's business gauges and health.
    pub exporter: ExporterMetrics,
}

impl Metrics {
    /// Counts an acknowledged event that is not stored, by reason.
    pub fn count_dropped(&self, reason: crate::enrich::BotReason) {
        self.events_dropped
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "analytics_http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "analytics_http_request_duration_seconds",
                "HTTP request latency by route and method.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let http_panics = IntCounter::new(
            "analytics_http_panics_total",
            "HTTP handlers that panicked; each was answered 500.",
        )
        .expect("valid metric");
        let read_limit_refusals = IntCounterVec::new(
            Opts::new(
                "analytics_read_limit_refusals_total",
                "Reads refused or stopped at a limit of the read side, by limit.",
            ),
            &["limit"],
        )
        .expect("valid metric");
        let events_accepted = IntCounterVec::new(
            Opts::new(
                "analytics_events_accepted_total",
                "Events accepted by type.",
            ),
            &["type"],
        )
        .expect("valid metric");
        let events_rejected = IntCounterVec::new(
            Opts::new(
                "analytics_events_rejected_total",
                "Events rejected by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let events_dropped = IntCounterVec::new(
            Opts::new(
                "analytics_events_dropped_total",
                "Valid events acknowledged but not stored by policy (ingest.drop_bots), by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let events_clamped = IntCounter::new(
            "analytics_events_clamped_total",
            "Events whose future timestamp was clamped to their receipt time.",
        )
        .expect("valid metric");
        let events_stored = IntCounter::new(
            "analytics_events_stored_total",
            "Events newly written to storage.",
        )
        .expect("valid metric");
        let events_deduplicated = IntCounter::new(
            "analytics_events_deduplicated_total",
            "Events skipped because their messageId was already stored.",
        )
        .expect("valid metric");
        let batch_flush_size = Histogram::with_opts(
            HistogramOpts::new(
                "analytics_batch_flush_size_events",
                "Events per written batch.",
            )
            .buckets(vec![
                1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0, 50000.0,
            ]),
        )
        .expect("valid metric");
        let batch_flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "analytics_batch_flush_duration_seconds",
                "Time to write one batch.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric");
        let batch_flush_errors = IntCounterVec::new(
            Opts::new(
                "analytics_batch_flush_errors_total",
                "Failed batch writes, by outcome (retry or gave_up).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new(
            "analytics_queue_depth_events",
            "Events waiting in the ingest queue or being written.",
        )
        .expect("valid metric");
        let queue_capacity = IntGauge::new(
            "analytics_queue_capacity_events",
            "Capacity of the ingest queue in events.",
        )
        .expect("valid metric");
        let queue_rejections = IntCounter::new(
            "analytics_queue_rejections_total",
            "Ingest requests refused with 503 because the queue was full.",
        )
        .expect("valid metric");

        let kafka = KafkaMetrics::register(&registry);
        let exporter = ExporterMetrics::register(&registry);
        let metrics = Self {
            registry,
            http_requests,
            http_request_duration,
            http_panics,
            read_limit_refusals,
            events_accepted,
            events_rejected,
            events_dropped,
            events_clamped,
            events_stored,
            events_deduplicated,
            batch_flush_size,
            batch_flush_duration,
            batch_flush_errors,
            queue_depth,
            queue_capacity,
            queue_rejections,
            kafka,
            exporter,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_requests.clone()),
            Box::new(self.http_request_duration.clone()),
            Box::new(self.http_panics.clone()),
            Box::new(self.read_limit_refusals.clone()),
            Box::new(self.events_accepted.clone()),
            Box::new(self.events_rejected.clone()),
            Box::new(self.events_dropped.clone()),
            Box::new(self.events_clamped.clone()),
            Box::new(self.events_stored.clone()),
            Box::new(self.events_deduplicated.clone()),
            Box::new(self.batch_flush_size.clone()),
            Box::new(self.batch_flush_duration.clone()),
            Box::new(self.batch_flush_errors.clone()),
            Box::new(self.queue_depth.clone()),
            Box::new(self.queue_capacity.clone()),
            Box::new(self.queue_rejections.clone()),
        ];
        super::register_all(&self.registry, collectors);
    }

    /// The registry, for components that add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
