//! Storage tests: one conformance suite run against every backend, plus backend specifics.

mod conformance;
mod duckdb;
