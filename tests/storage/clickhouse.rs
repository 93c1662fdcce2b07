//! The ClickHouse backend against a real server: `scripts/test.sh` starts one
//! on a free loopback port and names it in `ANALYTICS_TEST_CLICKHOUSE_URL`.

use analytics::storage::clickhouse::schema::{applied_versions, latest_version, migrate_to};
use analytics::storage::clickhouse::writer::EventTables;
use analytics::storage::clickhouse::{server_client, server_version, ClickHouseOptions};
use analytics::storage::ExportRequest;
use serde_json::json;

use crate::conformance;

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

async fn migrated_tables() -> EventTables {
    let options = options();
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);
    migrate_to(&client, &options.database, latest_version())
        .await
        .unwrap();
    EventTables::new(client, &options.database)
}

async fn export_all(tables: &EventTables, project: &str) -> Vec<analytics::domain::Event> {
    tables
        .export(&ExportRequest {
            project_id: project.into(),
            from: None,
            to: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn events_read_back_field_for_field_with_microseconds() {
    let tables = migrated_tables().await;
    let written = conformance::events(
        "p1",
        json!([
            {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1",
             "timestamp": "2026-03-01T10:00:00.123456Z", "originalTimestamp": "2026-03-01T10:00:00Z",
             "properties": {"revenue": 9.5, "product": {"sku": "s-1"}},
             "context": {"locale": "de-DE", "page": {"path": "/p", "url": "https://e.example/p?utm_source=x"}},
             "integrations": {"All": false}},
            {"type": "identify", "userId": "u1", "messageId": "m2", "timestamp": "2026-03-01T11:00:00Z",
             "traits": {"email": "e@x.example"}}
        ]),
    );
    let outcome = tables.insert(&written).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (2, 0));
    assert_eq!(export_all(&tables, "p1").await, written);
    assert!(export_all(&tables, "p2").await.is_empty());
}

#[tokio::test]
async fn repeated_message_ids_are_stored_once_within_and_across_batches() {
    let tables = migrated_tables().await;
    let batch = |ids: &[&str]| {
        let items: Vec<_> = ids
            .iter()
            .map(|id| json!({"type": "track", "userId": "u", "event": "e", "messageId": id}))
            .collect();
        conformance::events("p1", json!(items))
    };
    let first = tables.insert(&batch(&["a", "b", "a"])).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (2, 1));
    let second = tables.insert(&batch(&["b", "c"])).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (1, 1));
    let ids: Vec<String> = export_all(&tables, "p1")
        .await
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(ids.len(), 3);
    // The same id in another project is another message.
    let other = conformance::events(
        "p2",
        json!([{"type": "track", "userId": "u", "event": "e", "messageId": "a"}]),
    );
    assert_eq!(tables.insert(&other).await.unwrap().inserted, 1);
}
