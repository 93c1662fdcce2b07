//! Logs and metrics.

pub mod exporter_metrics;
pub mod kafka_metrics;
pub mod logging;
pub mod metrics;

pub use metrics::Metrics;
