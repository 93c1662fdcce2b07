//! The test ClickHouse server: `scripts/test.sh` starts one on a free loopback
//! port and names it in `CLICKHOUSE_TEST_URL`. Each caller gets a
//! database of its own.

use analytics::storage::clickhouse::ClickHouseOptions;

/// Options for a fresh, uniquely named database on the test server.
pub fn test_options() -> ClickHouseOptions {
    let url = std::env::var("CLICKHOUSE_TEST_URL").expect(
        "CLICKHOUSE_TEST_URL names the test ClickHouse server; run the suite with scripts/test.sh",
    );
    ClickHouseOptions::new(url, format!("test_{}", uuid::Uuid::new_v4().simple()))
}
