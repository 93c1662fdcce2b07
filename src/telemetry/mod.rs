//! Logs and metrics.

pub mod exporter_metrics;
pub mod kafka_metrics;
pub mod logging;
pub mod metrics;

pub use metrics::Metrics;

/// Registers collectors whose names are fixed in the code, so a clash is a bug.
pub(crate) fn register_all(
    registry: &prometheus::Registry,
    collectors: Vec<Box<dyn prometheus::core::Collector>>,
) {
    for collector in collectors {
        registry.register(collector).expect("unique metric names");
    }
}
