//! The ClickHouse backend against a real server: `scripts/test.sh` starts one
//! on a free loopback port and names it in `ANALYTICS_TEST_CLICKHOUSE_URL`.

use analytics::storage::clickhouse::schema::{applied_versions, latest_version, migrate_to};
use analytics::storage::clickhouse::{server_client, server_version, ClickHouseOptions};

fn options() -> ClickHouseOptions {
    let url = std::env::var("ANALYTICS_TEST_CLICKHOUSE_URL").expect(
        "ANALYTICS_TEST_CLICKHOUSE_URL names the test ClickHouse server; run the suite with scripts/test.sh",
    );
    ClickHouseOptions {
        url,
        database: format!("test_{}", uuid::Uuid::new_v4().simple()),
        user: "default".into(),
        password: String::new(),
    }
}

#[tokio::test]
async fn migrations_create_the_database_once_and_a_second_run_changes_nothing() {
    let options = options();
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);

    let ran = migrate_to(&client, &options.database, latest_version())
        .await
        .unwrap();
    assert_eq!(ran, latest_version() as usize);
    let all: Vec<u32> = (1..=latest_version()).collect();
    assert_eq!(
        applied_versions(&client, &options.database).await.unwrap(),
        all
    );

    let tables: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&options.database)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        tables,
        ["events", "message_ids", "schema_migrations", "settings"]
    );

    assert_eq!(
        migrate_to(&client, &options.database, latest_version())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        applied_versions(&client, &options.database).await.unwrap(),
        all
    );
}

#[tokio::test]
async fn a_database_name_that_is_not_an_identifier_is_refused() {
    let options = options();
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);
    assert!(migrate_to(&client, "x; DROP TABLE y", 1).await.is_err());
}
