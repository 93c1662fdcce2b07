//! `analytics`: self-hosted, high-throughput event analytics.
//!
//! Layers, inside out: [`domain`] (its own crate: events, projects, ingest
//! rules, query planning and analyses, no I/O), [`storage`] (the `Repository`
//! trait and its backends) and [`kafka`], [`app`] (the use cases, with the
//! limits they run under), [`workers`] (the processor that batches writes,
//! the Kafka consumer, the exporter) and [`api`] (HTTP), with [`config`] and
//! [`telemetry`] beside them and [`startup`] wiring everything together.

pub use analytics_domain as domain;

pub mod api;
pub mod app;
pub mod config;
pub mod enrich;
pub mod kafka;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod workers;
