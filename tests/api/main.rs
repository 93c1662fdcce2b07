//! HTTP-level tests: each starts its own service on port 0 with a fresh database.

mod analysis;
mod auth;
mod browser_sdks;
mod browsers;
mod clickhouse;
mod dashboard;
mod enrichment;
mod export;
mod exporter;
mod helpers;
mod ingest;
mod kafka;
mod lifecycle;
mod limits;
mod operations;
mod plausible;
mod prometheus;
mod query;
mod read_limits;
mod refusals;
mod schemathesis;
mod sdk;
mod supervision;
mod tcp_proxy;
