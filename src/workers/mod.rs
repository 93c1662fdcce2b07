//! Background workers.

pub mod processor;
