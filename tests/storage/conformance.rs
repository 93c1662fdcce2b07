//! The behaviour every `Repository` must show, whatever the backend.

use std::sync::Arc;

use analytics::domain::segment::{parse_time, IngestContext, Limits, Payload};
use analytics::domain::{Event, EventType};
use analytics::storage::{ExportRequest, Repository};
use futures::StreamExt;
use serde_json::json;

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    parse_time(text).unwrap()
}

/// Builds events through the real ingest parser, so that they look like stored ones.
pub fn events(project: &str, batch: serde_json::Value) -> Vec<Event> {
    let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap();
    let parsed = Payload::batch(&body, Limits::SEGMENT)
        .unwrap()
        .into_events(IngestContext {
            project_id: project,
            received_at: at("2026-03-10T12:00:00.5Z"),
            max_future: chrono::Duration::days(1),
        });
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    parsed.events
}

pub async fn export_all(repository: &dyn Repository, project: &str) -> Vec<Event> {
    export_range(repository, project, None, None).await
}

pub async fn export_range(
    repository: &dyn Repository,
    project: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Vec<Event> {
    let mut stream = repository.export(ExportRequest {
        project_id: project.to_owned(),
        from: from.map(at),
        to: to.map(at),
    });
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(chunk.expect("export chunk"));
    }
    all
}

pub async fn stored_events_read_back_field_for_field(repository: Arc<dyn Repository>) {
    let written = events(
        "p1",
        json!([
            {"type": "track", "userId": "u1", "anonymousId": "a1", "event": "Order Completed", "messageId": "m1",
             "timestamp": "2026-03-01T10:00:00.123456Z", "sentAt": "2026-03-01T10:00:01Z", "originalTimestamp": "2026-03-01T10:00:00Z",
             "properties": {"revenue": 9.5, "product": {"sku": "s-1"}, "tags": ["a"]},
             "context": {"ip": "203.0.113.1", "userAgent": "ua", "locale": "de-DE", "timezone": "Europe/Berlin",
                         "page": {"path": "/p", "referrer": "r", "search": "?utm_source=x", "title": "t", "url": "https://e.example/p?utm_source=x"},
                         "campaign": {"name": "n", "medium": "m", "term": "te", "content": "c"},
                         "library": {"name": "lib", "version": "1.0"}},
             "integrations": {"All": false}},
            {"type": "identify", "userId": "u1", "messageId": "m2", "timestamp": "2026-03-01T11:00:00Z", "traits": {"email": "e@x.example"}},
            {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m3", "timestamp": "2026-03-01T12:00:00Z"},
            {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m4", "timestamp": "2026-03-01T13:00:00Z"},
            {"type": "page", "anonymousId": "a2", "name": "Home", "messageId": "m5", "timestamp": "2026-03-01T14:00:00Z"},
            {"type": "screen", "anonymousId": "a2", "name": "Main", "messageId": "m6", "timestamp": "2026-03-01T15:00:00Z"}
        ]),
    );
    let outcome = repository
        .insert_batch(written.clone().into())
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 6);
    let read = export_all(repository.as_ref(), "p1").await;
    let mut expected = written;
    expected.sort_by(|a, b| (a.timestamp, &a.message_id).cmp(&(b.timestamp, &b.message_id)));
    assert_eq!(read, expected);
    // The track call's clock was corrected with sentAt, so it sorts last.
    assert_eq!(read[5].event_type, EventType::Track);
}

pub async fn duplicates_are_skipped_within_and_across_batches(repository: Arc<dyn Repository>) {
    let first = events(
        "p1",
        json!([
            {"type": "track", "userId": "u", "event": "a", "messageId": "dup", "properties": {"copy": 1}},
            {"type": "track", "userId": "u", "event": "a", "messageId": "dup", "properties": {"copy": 2}},
            {"type": "track", "userId": "u", "event": "b", "messageId": "one"}
        ]),
    );
    let outcome = repository.insert_batch(first.into()).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (2, 1));

    let second = events(
        "p1",
        json!([
            {"type": "track", "userId": "u", "event": "a", "messageId": "dup", "properties": {"copy": 3}},
            {"type": "track", "userId": "u", "event": "c", "messageId": "two"}
        ]),
    );
    let outcome = repository.insert_batch(second.into()).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 1));
    // The same messageId in another project is a different event.
    let other = events(
        "p2",
        json!([{"type": "track", "userId": "u", "event": "a", "messageId": "dup"}]),
    );
    assert_eq!(
        repository
            .insert_batch(other.into())
            .await
            .unwrap()
            .inserted,
        1
    );

    let stored = export_all(repository.as_ref(), "p1").await;
    assert_eq!(stored.len(), 3);
    let kept = stored.iter().find(|e| e.message_id == "dup").unwrap();
    assert_eq!(kept.properties.as_deref(), Some("{\"copy\":1}"));
}

pub async fn export_is_ordered_and_bounded(repository: Arc<dyn Repository>) {
    let written = events(
        "p1",
        json!([
            {"type": "track", "userId": "u", "event": "e", "messageId": "c", "timestamp": "2026-03-03T00:00:00Z"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "a", "timestamp": "2026-03-01T00:00:00Z"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "b2", "timestamp": "2026-03-02T00:00:00Z"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "b1", "timestamp": "2026-03-02T00:00:00Z"}
        ]),
    );
    repository.insert_batch(written.into()).await.unwrap();
    let ids = |events: Vec<Event>| events.into_iter().map(|e| e.message_id).collect::<Vec<_>>();
    assert_eq!(
        ids(export_all(repository.as_ref(), "p1").await),
        vec!["a", "b1", "b2", "c"]
    );
    let bounded = export_range(
        repository.as_ref(),
        "p1",
        Some("2026-03-02T00:00:00Z"),
        Some("2026-03-03T00:00:00Z"),
    )
    .await;
    assert_eq!(ids(bounded), vec!["b1", "b2"]);
    assert!(export_all(repository.as_ref(), "nobody").await.is_empty());
}

pub async fn settings_keep_their_first_value(repository: Arc<dyn Repository>) {
    assert_eq!(
        repository.setting_or_init("k", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        repository.setting_or_init("k", "second").await.unwrap(),
        "first"
    );
    assert_eq!(repository.setting_or_init("other", "x").await.unwrap(), "x");
}

pub async fn the_newest_receipt_is_read_within_the_event_time_bound(
    repository: Arc<dyn Repository>,
) {
    let mut batch = events(
        "p1",
        json!([
            {"type": "track", "userId": "u", "event": "old", "timestamp": "2026-03-01T00:00:00Z"},
            {"type": "track", "userId": "u", "event": "recent", "timestamp": "2026-03-10T11:00:00Z"},
            {"type": "track", "userId": "u", "event": "backfill", "timestamp": "2026-02-01T00:00:00Z"},
        ]),
    );
    batch[0].received_at = at("2026-03-01T00:00:01.25Z");
    batch[1].received_at = at("2026-03-10T11:00:00.75Z");
    // Received last of all, but timestamped long ago.
    batch[2].received_at = at("2026-03-10T12:30:00Z");
    let other = events(
        "p2",
        json!([{"type": "track", "userId": "u", "event": "elsewhere", "timestamp": "2026-03-10T11:59:00Z"}]),
    );
    repository.insert_batch(batch.into()).await.unwrap();
    repository.insert_batch(other.into()).await.unwrap();

    let newest = |since: &str| {
        let repository = repository.clone();
        let since = at(since);
        async move { repository.newest_received_at("p1", since).await.unwrap() }
    };
    assert_eq!(
        newest("2026-02-15T00:00:00Z").await,
        Some(at("2026-03-10T11:00:00.75Z"))
    );
    assert_eq!(
        newest("2026-01-01T00:00:00Z").await,
        Some(at("2026-03-10T12:30:00Z"))
    );
    assert_eq!(
        newest("2026-03-10T11:00:00Z").await,
        Some(at("2026-03-10T11:00:00.75Z")),
        "the bound is inclusive"
    );
    assert_eq!(
        newest("2026-03-10T11:00:00.000001Z").await,
        None,
        "and exact to the microsecond"
    );
    assert_eq!(
        repository
            .newest_received_at("nobody", at("2026-01-01T00:00:00Z"))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_closed_repository_refuses_work(repository: Arc<dyn Repository>) {
    repository.ping().await.unwrap();
    repository.close().await.unwrap();
    assert!(repository.ping().await.is_err());
    let batch = events(
        "p1",
        json!([{"type": "track", "userId": "u", "event": "late"}]),
    );
    assert!(repository.insert_batch(batch.into()).await.is_err());
}
