//! The conformance suite on DuckDB, and DuckDB's migrations.

use std::sync::Arc;

use analytics::storage::duckdb::schema::{applied_versions, latest_version, migrate_to};
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::Repository;

use crate::conformance;

fn open(dir: &tempfile::TempDir) -> Arc<dyn Repository> {
    Arc::new(
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap(),
    )
}

macro_rules! conformance_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            conformance::$name(open(&dir)).await;
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

fn schema_of(path: &std::path::Path) -> Vec<(String, String, String)> {
    let conn = DuckDbRepository::connect(path, &DuckDbOptions::default()).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT table_name, column_name, data_type FROM information_schema.columns
             WHERE table_schema = 'main' ORDER BY table_name, ordinal_position",
        )
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_old_file_and_a_fresh_one_reach_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.duckdb");
    let old = dir.path().join("old.duckdb");
    drop(DuckDbRepository::open(&fresh, &DuckDbOptions::default()).unwrap());

    let conn = DuckDbRepository::connect(&old, &DuckDbOptions::default()).unwrap();
    assert_eq!(migrate_to(&conn, 1).unwrap(), 1);
    assert_eq!(applied_versions(&conn).unwrap(), vec![1]);
    drop(conn);
    drop(DuckDbRepository::open(&old, &DuckDbOptions::default()).unwrap());

    assert_eq!(schema_of(&fresh), schema_of(&old));
    let conn = DuckDbRepository::connect(&old, &DuckDbOptions::default()).unwrap();
    let all: Vec<u32> = (1..=latest_version()).collect();
    assert_eq!(applied_versions(&conn).unwrap(), all);
    assert_eq!(
        migrate_to(&conn, latest_version()).unwrap(),
        0,
        "a second run changes nothing"
    );
}

#[tokio::test]
async fn events_stored_before_the_narrow_schema_survive_it_and_still_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.duckdb");
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    migrate_to(&conn, 2).unwrap();
    conn.execute_batch(
        "INSERT INTO events (project_id, message_id, type, event, user_id, timestamp,
                             received_at, properties, context, page_path, library_name,
                             prop_keys, prop_values, context_keys, context_values)
         VALUES ('shop', 'm-old', 'track', 'Signed Up', 'u1', '2026-03-01 10:00:00',
                 '2026-03-01 10:00:01', '{\"plan\":\"pro\"}', '{\"locale\":\"de-DE\"}',
                 '/signup', 'analytics.js', ['plan'], ['pro'], ['locale'], ['de-DE']);",
    )
    .unwrap();
    drop(conn);

    let repository = open_at(&path);
    let stored = conformance::export_all(repository.as_ref(), "shop").await;
    let [event] = &stored[..] else {
        panic!("{stored:?}")
    };
    assert_eq!(event.message_id, "m-old");
    assert_eq!(event.properties.as_deref(), Some(r#"{"plan":"pro"}"#));
    assert_eq!(event.context_fields.page_path.as_deref(), Some("/signup"));

    let again = conformance::events(
        "shop",
        serde_json::json!([
            {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m-old"}
        ]),
    );
    let outcome = repository.insert_batch(again.into()).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1));
}

fn open_at(path: &std::path::Path) -> Arc<dyn Repository> {
    Arc::new(DuckDbRepository::open(path, &DuckDbOptions::default()).unwrap())
}

#[test]
fn a_file_written_before_person_links_gets_the_links_of_its_identify_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.duckdb");
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    migrate_to(&conn, 4).unwrap();
    conn.execute_batch(
        "INSERT INTO users VALUES ('shop', 'visitor', 1), ('shop', 'ada', 2), ('shop', 'bob', 3);
         INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id, previous_id,
                             timestamp, received_at, user_index)
         VALUES ('shop', 'm1', 'track', 'view', NULL, 'visitor', NULL, '2026-03-01 10:00:00', '2026-03-01 10:00:00', 1),
                ('shop', 'm2', 'identify', NULL, 'ada', 'visitor', NULL, '2026-03-01 10:05:00', '2026-03-01 10:05:00', 2),
                ('shop', 'm3', 'track', 'view', 'bob', NULL, NULL, '2026-03-01 10:06:00', '2026-03-01 10:06:00', 3);",
    )
    .unwrap();
    drop(conn);

    drop(open_at(&path));
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    let links: Vec<(u32, u32)> = conn
        .prepare("SELECT user_index, person_index FROM person_links ORDER BY user_index")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(links, vec![(1, 2)], "the visitor is ada; bob stays himself");
}

#[tokio::test]
async fn a_key_moved_twice_in_one_batch_is_stored_with_its_last_person() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.duckdb");
    let repository = open_at(&path);
    // The visitor becomes ada, then ada is aliased to bob: the visitor's person
    // changes twice in the same batch.
    let batch = conformance::events(
        "shop",
        serde_json::json!([
            {"type": "identify", "anonymousId": "visitor", "userId": "ada", "messageId": "m1"},
            {"type": "alias", "previousId": "ada", "userId": "bob", "messageId": "m2"},
            {"type": "track", "userId": "bob", "event": "view", "messageId": "m3"},
        ]),
    );
    repository.insert_batch(batch.into()).await.unwrap();
    repository.close().await.unwrap();
    drop(repository);

    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    let links: Vec<(String, String)> = conn
        .prepare(
            "SELECT k.user_key, p.user_key FROM person_links l
             JOIN users k ON k.project_id = l.project_id AND k.user_index = l.user_index
             JOIN users p ON p.project_id = l.project_id AND p.user_index = l.person_index
             ORDER BY 1",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        links,
        vec![
            ("ada".into(), "bob".into()),
            ("visitor".into(), "bob".into())
        ]
    );
}

/// A file holding `count` events of 1,000 users of project `p1`, a
/// millisecond apart from 2026-03-01, written straight in SQL.
fn file_with_events(dir: &tempfile::TempDir, count: u64) -> std::path::PathBuf {
    let path = dir.path().join("many.duckdb");
    drop(DuckDbRepository::open(&path, &DuckDbOptions::default()).unwrap());
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO users SELECT 'p1', 'u' || u, u + 1 FROM range(1000) AS r(u);
         INSERT INTO events (project_id, message_id, type, event, user_id, timestamp, received_at, user_index)
         SELECT 'p1', 'm' || i, 'track', 'e' || (i % 7), 'u' || (i % 1000),
                TIMESTAMP '2026-03-01 00:00:00' + to_microseconds(i * 1000),
                TIMESTAMP '2026-03-01 00:00:00' + to_microseconds(i * 1000), i % 1000 + 1
         FROM range({count}) AS r(i);"
    ))
    .unwrap();
    path
}

#[tokio::test]
async fn reads_past_their_time_are_interrupted_and_the_database_goes_on() {
    use analytics::domain::analysis::TimelineRequest;
    use analytics::domain::query::TimeRange;
    use analytics::storage::{ReadBudget, StorageError};
    use futures::StreamExt;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let repository = open_at(&file_with_events(&dir, 2_000_000));
    let tight = ReadBudget {
        timeout: Duration::from_millis(1),
        max_rows: u64::MAX,
    };
    let request = TimelineRequest {
        project_id: "p1".into(),
        range: TimeRange {
            from: "2026-02-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-01T00:00:00Z".parse().unwrap(),
        },
        filter: None,
        matchers: Vec::new(),
        all_events: true,
        ordered_ties: true,
        labels: Vec::new(),
    };
    let mut stream = repository.timelines(request.clone(), tight);
    let mut outcome = None;
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            outcome = Some(error);
            break;
        }
    }
    assert!(
        matches!(outcome, Some(StorageError::TimedOut(t)) if t == Duration::from_millis(1)),
        "{outcome:?}"
    );
    assert!(
        stream.next().await.is_none(),
        "the stream ends with its error"
    );
    drop(stream);
    // Interrupted, not left running: the database goes on answering.
    repository.ping().await.unwrap();
    let bounds = repository.time_bounds("p1", tight).await;
    assert!(
        matches!(bounds, Ok(Some(_)) | Err(StorageError::TimedOut(_))),
        "{bounds:?}"
    );
    let mut events = 0;
    let mut all = repository.timelines(request, ReadBudget::UNLIMITED);
    while let Some(chunk) = all.next().await {
        events += chunk.unwrap().len();
    }
    assert_eq!(events, 2_000_000);
}

/// One track call of `shop` with `messageId` `message_id`.
fn one_message(message_id: &str) -> Arc<[analytics::domain::Event]> {
    conformance::events(
        "shop",
        serde_json::json!([
            {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": message_id}
        ]),
    )
    .into()
}

/// Creates the file at `path` holding `shop`'s message `message_id`, and
/// closes it.
async fn closed_file_with(path: &std::path::Path, message_id: &str) {
    let repository = open_at(path);
    repository
        .insert_batch(one_message(message_id))
        .await
        .unwrap();
    repository.close().await.unwrap();
}

/// The message index of the database file at `path`.
fn index_of(path: &std::path::Path) -> std::path::PathBuf {
    let mut index = path.as_os_str().to_owned();
    index.push(".messages");
    index.into()
}

/// How many of `shop`'s events the file holds.
async fn stored_count(repository: &dyn Repository) -> usize {
    conformance::export_all(repository, "shop").await.len()
}

#[tokio::test]
async fn a_lost_message_index_is_rebuilt_from_the_events_and_still_dedupes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.duckdb");
    closed_file_with(&path, "m-1").await;
    assert!(index_of(&path).is_dir(), "the index lives beside the file");
    std::fs::remove_dir_all(index_of(&path)).unwrap();

    let repository = open_at(&path);
    let outcome = repository.insert_batch(one_message("m-1")).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1));
    let outcome = repository.insert_batch(one_message("m-2")).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 0));
    assert_eq!(stored_count(repository.as_ref()).await, 2);
}

#[tokio::test]
async fn the_index_catches_up_with_a_write_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.duckdb");
    closed_file_with(&path, "m-1").await;
    // A write DuckDB committed and the index never heard of, as a crash
    // between the two leaves it: its row carries a later write number.
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).unwrap();
    conn.execute_batch(
        "INSERT INTO events (project_id, message_id, type, event, user_id, timestamp,
                             received_at, user_index, write_seq)
         SELECT project_id, 'm-crash', type, event, user_id, timestamp, received_at,
                user_index, write_seq + 1
         FROM events WHERE message_id = 'm-1';",
    )
    .unwrap();
    drop(conn);

    let repository = open_at(&path);
    let outcome = repository
        .insert_batch(one_message("m-crash"))
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1));
    // Writes after it are numbered past it, and are themselves recognised.
    repository.insert_batch(one_message("m-3")).await.unwrap();
    repository.close().await.unwrap();
    drop(repository);
    let repository = open_at(&path);
    let outcome = repository.insert_batch(one_message("m-3")).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1));
    assert_eq!(stored_count(repository.as_ref()).await, 3);
}

#[tokio::test]
async fn an_index_of_another_file_is_rebuilt_instead_of_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.duckdb");
    closed_file_with(&first, "m-1").await;
    // A fresh file next to the first one's index, as a file replaced by
    // another (a restored backup, a new file) would find it.
    let second = dir.path().join("second.duckdb");
    drop(open_at(&second));
    std::fs::remove_dir_all(index_of(&second)).unwrap();
    std::fs::rename(index_of(&first), index_of(&second)).unwrap();

    let repository = open_at(&second);
    let outcome = repository.insert_batch(one_message("m-1")).await.unwrap();
    assert_eq!(
        (outcome.inserted, outcome.duplicates),
        (1, 0),
        "a message the file never held is stored"
    );
    assert_eq!(stored_count(repository.as_ref()).await, 1);
}
