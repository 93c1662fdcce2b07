//! Background workers.

pub mod kafka_consumer;
pub mod processor;
