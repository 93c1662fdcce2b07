//! Background workers.

pub mod exporter;
pub mod journal;
pub mod kafka_consumer;
pub mod processor;
