//! Storage tests: one conformance suite run against every backend, plus backend specifics.

mod clickhouse;
mod conformance;
mod duckdb;
mod kept_sessions;
mod modern_clickhouse;
mod rollups;
