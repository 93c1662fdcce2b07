//! `analytics`: self-hosted, high-throughput event analytics.
//!
//! Layers, inside out: [`domain`] (events, projects, ingest rules), [`storage`]
//! (the `Repository` trait and its backends), [`workers`] (the processor that
//! batches writes), [`api`] (HTTP), with [`config`] and [`telemetry`] beside
//! them and [`startup`] wiring everything together.

pub mod api;
pub mod config;
pub mod domain;
pub mod kafka;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod workers;
