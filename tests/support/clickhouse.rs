//! The test ClickHouse server: `scripts/test.sh` starts one on a free loopback
//! port and names it in `CLICKHOUSE_TEST_URL`. Each caller gets a
//! database of its own.

use analytics::storage::clickhouse::ClickHouseOptions;

#[path = "requirements.rs"]
pub mod requirements;

/// The test server's URL; `None` (the test is skipped) without one.
pub fn test_url() -> Option<String> {
    requirements::server("CLICKHOUSE_TEST_URL", "the test ClickHouse server")
}

/// Options for a fresh, uniquely named database on the test server; `None`
/// (the test is skipped) without one.
pub fn test_options() -> Option<ClickHouseOptions> {
    let url = test_url()?;
    Some(ClickHouseOptions::new(
        url,
        format!("test_{}", uuid::Uuid::new_v4().simple()),
    ))
}
