//! The conformance suite on a real ClickHouse server, and what is particular
//! to ClickHouse: migrations and the dedup of a write that landed unanswered.

use std::sync::Arc;

use analytics::storage::clickhouse::schema::{
    applied_versions, latest_version, migrate_to, Layout,
};
use analytics::storage::clickhouse::{
    server_client, server_version, ClickHouseOptions, ClickHouseRepository,
};
use analytics::storage::Repository;
use serde_json::json;

use crate::conformance;

#[path = "../support/clickhouse.rs"]
pub mod support;

async fn open(options: &ClickHouseOptions) -> Arc<dyn Repository> {
    Arc::new(ClickHouseRepository::open(options).await.unwrap())
}

macro_rules! conformance_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(options) = support::test_options() else {
                return;
            };
            conformance::$name(open(&options).await).await;
        }
    };
}

conformance_test!(stored_events_read_back_field_for_field);
conformance_test!(duplicates_are_skipped_within_and_across_batches);
conformance_test!(export_is_ordered_and_bounded);
conformance_test!(settings_keep_their_first_value);
conformance_test!(the_newest_receipt_is_read_within_the_event_time_bound);
conformance_test!(a_closed_repository_refuses_work);
conformance_test!(queries_count_group_and_filter_one_project);
conformance_test!(timelines_stream_each_person_in_time_order);
conformance_test!(time_bounds_and_property_keys_read_one_project);

#[tokio::test]
async fn migrations_create_the_database_once_and_a_second_run_changes_nothing() {
    let Some(options) = support::test_options() else {
        return;
    };
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);
    let layout = Layout::single(&options.database);

    let ran = migrate_to(&client, &layout, latest_version())
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
        [
            "events",
            "message_ids",
            "message_ids_from_events",
            "person_links",
            "schema_migrations",
            "settings"
        ]
    );

    // A second start (the repository opening) changes nothing.
    drop(ClickHouseRepository::open(&options).await.unwrap());
    assert_eq!(
        migrate_to(&client, &layout, latest_version())
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
async fn a_migration_interrupted_between_its_columns_completes_at_the_next_start() {
    let Some(options) = support::test_options() else {
        return;
    };
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);
    let layout = Layout::single(&options.database);
    let before = latest_version() - 1;
    migrate_to(&client, &layout, before).await.unwrap();
    // The first column of the visit attributes landed, then the process died.
    client
        .query(&format!(
            "ALTER TABLE {}.events ADD COLUMN browser Nullable(String)",
            options.database
        ))
        .execute()
        .await
        .unwrap();

    assert_eq!(
        migrate_to(&client, &layout, latest_version())
            .await
            .unwrap(),
        1
    );
    let columns: Vec<String> = client
        .query("SELECT name FROM system.columns WHERE database = ? AND table = 'events' AND name IN ('browser', 'channel') ORDER BY name")
        .bind(&options.database)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(columns, ["browser", "channel"]);
}

#[tokio::test]
async fn a_database_name_that_is_not_an_identifier_is_refused() {
    let Some(mut options) = support::test_options() else {
        return;
    };
    options.database = "x; DROP TABLE y".into();
    assert!(ClickHouseRepository::open(&options).await.is_err());
}

#[tokio::test]
async fn a_write_that_landed_without_an_answer_is_not_stored_again() {
    let Some(options) = support::test_options() else {
        return;
    };
    let repository = open(&options).await;
    let batch = conformance::events(
        "p1",
        json!([
            {"type": "track", "userId": "u", "event": "e", "messageId": "landed"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "new"}
        ]),
    );
    // The first attempt reached the server, but its answer was lost: the
    // events are there, written by a plain INSERT like the writer's.
    let version = server_version(&options).await.unwrap();
    let client = server_client(&options, version);
    client
        .query(&format!(
            "INSERT INTO {}.events (project_id, message_id, type, event, user_id, timestamp, timestamp_us, received_at_us, version)
             VALUES ('p1', 'landed', 'track', 'e', 'u', 0, 0, 0, 1)",
            options.database
        ))
        .execute()
        .await
        .unwrap();
    // The retry finds it through message_ids, filled by the same INSERT.
    let outcome = repository.insert_batch(batch.into()).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 1));
    let ids: Vec<String> = conformance::export_all(repository.as_ref(), "p1")
        .await
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(ids, ["landed", "new"]);
}
