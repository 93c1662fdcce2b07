//! Background workers.

pub mod exporter;
pub mod kafka_consumer;
pub mod processor;
