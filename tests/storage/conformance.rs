//! The behaviour every `Repository` must show, whatever the backend.

use std::sync::Arc;

use analytics::api::query::QueryRequest;
use analytics::domain::analysis::{TimelineEvent, TimelineRequest};
use analytics::domain::query::{
    plan, DimensionValue, EventDimension, EventQuery, Filter, MetricValue, PlanContext, QueryRows,
    QuerySpec, RowSource, Test, TimeRange,
};
use analytics::domain::segment::{parse_time, IngestContext, Limits, Payload};
use analytics::domain::visit::VisitFields;
use analytics::domain::{Event, EventType};
use analytics::storage::{ExportRequest, ReadBudget, Repository};
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
            client_ip: None,
            keep_ip: true,
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
        without_visit: false,
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
    let mut written = written;
    written[0].visit = VisitFields {
        browser: Some("Firefox".into()),
        browser_version: Some("126.0".into()),
        os: Some("Windows".into()),
        os_version: Some("10".into()),
        device: Some("desktop".into()),
        country: Some("DE".into()),
        region: Some("DE-BE".into()),
        city: Some("Berlin".into()),
        referrer_domain: Some("news.ycombinator.com".into()),
        source: Some("Hacker News".into()),
        channel: Some("Organic Social".into()),
    };
    let outcome = repository
        .insert_batch(written.clone().into())
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 6);
    let read = export_all(repository.as_ref(), "p1").await;
    // What enrichment read (user agent, IP) is no column of its own.
    let mut expected: Vec<Event> = written
        .into_iter()
        .map(|mut event| {
            event.context_fields.user_agent = None;
            event.context_fields.ip = None;
            event
        })
        .collect();
    expected.sort_by(|a, b| (a.timestamp, &a.message_id).cmp(&(b.timestamp, &b.message_id)));
    assert_eq!(read, expected);
    // The track call's clock was corrected with sentAt, so it sorts last.
    assert_eq!(read[5].event_type, EventType::Track);
    // The events without visit attributes: all but the track call.
    let mut bare = repository.export(ExportRequest {
        project_id: "p1".into(),
        from: None,
        to: None,
        without_visit: true,
    });
    let mut ids = Vec::new();
    while let Some(chunk) = bare.next().await {
        ids.extend(chunk.unwrap().into_iter().map(|event| event.message_id));
    }
    assert_eq!(ids, ["m2", "m3", "m4", "m5", "m6"]);
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

    // A deleted setting takes a new first value (ClickHouse deletes in the
    // background, so this waits for it, within ten seconds).
    repository.delete_setting("k").await.unwrap();
    repository.delete_setting("never-set").await.unwrap();
    let mut value = String::new();
    for _ in 0..100 {
        value = repository.setting_or_init("k", "after").await.unwrap();
        if value == "after" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(value, "after");
    assert_eq!(repository.setting_or_init("other", "y").await.unwrap(), "x");
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
        async move {
            repository
                .newest_received_at("p1", since, ReadBudget::UNLIMITED)
                .await
                .unwrap()
        }
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
            .newest_received_at("nobody", at("2026-01-01T00:00:00Z"), ReadBudget::UNLIMITED)
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

/// The event query a `/v1/query` body plans into, for project `p1` in Berlin.
fn event_query(body: serde_json::Value) -> EventQuery {
    let request: QueryRequest = serde_json::from_value(body).unwrap();
    let context = PlanContext {
        project_id: "p1".into(),
        default_timezone: chrono_tz::Europe::Berlin,
        now: at("2026-04-01T00:00:00Z"),
        data_bounds: None,
        session_timeout: chrono::Duration::minutes(30),
    };
    match plan(&QuerySpec::try_from(request).unwrap(), &context)
        .unwrap()
        .rows
    {
        RowSource::Events(query) => query,
        _ => panic!("storage runs event queries only"),
    }
}

/// Events of three persons in March 2026 (`anon-1` becomes `u1`), and one of
/// another project.
async fn read_fixture(repository: &dyn Repository) {
    let batch = events(
        "p1",
        json!([
            {"type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "e1", "timestamp": "2026-03-01T09:00:00Z",
             "context": {"page": {"path": "/"}}},
            {"type": "track", "anonymousId": "anon-1", "event": "signup", "messageId": "e2", "timestamp": "2026-03-01T09:05:00Z",
             "properties": {"plan": "pro", "price": 10}},
            {"type": "identify", "userId": "u1", "anonymousId": "anon-1", "messageId": "e3", "timestamp": "2026-03-01T09:06:00Z",
             "traits": {"email": "u1@example.com"}},
            {"type": "track", "userId": "u1", "event": "purchase", "messageId": "e4", "timestamp": "2026-03-02T23:30:00Z",
             "properties": {"plan": "pro", "price": 25.5}},
            {"type": "track", "userId": "u2", "event": "signup", "messageId": "e6", "timestamp": "2026-03-02T10:00:00Z",
             "properties": {"plan": "team"}},
            {"type": "track", "userId": "u2", "event": "purchase", "messageId": "e5", "timestamp": "2026-03-02T10:00:00Z",
             "properties": {"plan": "team", "price": "4.5"}},
            {"type": "page", "userId": "u3", "name": "Pricing", "messageId": "e7", "timestamp": "2026-03-09T12:00:00Z",
             "context": {"page": {"path": "/pricing"}}}
        ]),
    );
    repository.insert_batch(batch.into()).await.unwrap();
    let other = events(
        "p2",
        json!([{"type": "track", "userId": "u1", "event": "signup", "timestamp": "2026-03-01T09:00:00Z"}]),
    );
    repository.insert_batch(other.into()).await.unwrap();
}

fn counts(rows: &QueryRows) -> Vec<(Vec<DimensionValue>, Vec<MetricValue>)> {
    rows.rows
        .iter()
        .map(|row| (row.dimensions.clone(), row.metrics.clone()))
        .collect()
}

fn text(value: &str) -> DimensionValue {
    DimensionValue::Text(Some(value.to_owned()))
}

pub async fn queries_count_group_and_filter_one_project(repository: Arc<dyn Repository>) {
    read_fixture(repository.as_ref()).await;
    let budget = ReadBudget::UNLIMITED;
    let march = json!(["2026-03-01", "2026-03-31"]);
    let by_name = event_query(json!({
        "metrics": ["events", "users", "sum:props.price"], "date_range": march,
        "dimensions": ["event:name"], "include": {"total_rows": true}
    }));
    let rows = repository.query(&by_name, budget).await.unwrap();
    assert_eq!(rows.total_rows, 4);
    assert_eq!(
        counts(&rows),
        vec![
            (
                vec![text("page")],
                vec![
                    MetricValue::Count(2),
                    MetricValue::Count(2),
                    MetricValue::Number(None)
                ]
            ),
            (
                vec![text("purchase")],
                vec![
                    MetricValue::Count(2),
                    MetricValue::Count(2),
                    MetricValue::Number(Some(30.0))
                ]
            ),
            (
                vec![text("signup")],
                vec![
                    MetricValue::Count(2),
                    MetricValue::Count(2),
                    MetricValue::Number(Some(10.0))
                ]
            ),
            (
                vec![text("identify")],
                vec![
                    MetricValue::Count(1),
                    MetricValue::Count(1),
                    MetricValue::Number(None)
                ]
            ),
        ],
        "ordered by events, then by name; the anonymous visitor and u1 are one person"
    );

    let page_views = event_query(json!({
        "metrics": ["pageviews", "events"], "date_range": march, "dimensions": ["user:id"]
    }));
    let rows = repository.query(&page_views, budget).await.unwrap();
    let count = |n| MetricValue::Count(n);
    assert_eq!(
        counts(&rows),
        vec![
            (vec![text("anon-1")], vec![count(1), count(2)]),
            (vec![text("u3")], vec![count(1), count(1)]),
            (vec![text("u1")], vec![count(0), count(2)]),
            (vec![text("u2")], vec![count(0), count(2)]),
        ],
        "page views are the page calls among the events"
    );

    let by_day = event_query(json!({
        "metrics": ["users"], "date_range": ["2026-03-01", "2026-03-03"], "dimensions": ["time:day"],
        "filters": ["is", "event:name", ["purchase", "signup"]]
    }));
    let rows = repository.query(&by_day, budget).await.unwrap();
    let day = |date: &str| {
        DimensionValue::LocalBucket(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        )
    };
    // 23:30 UTC on 2 March is 3 March in Berlin.
    assert_eq!(
        counts(&rows),
        vec![
            (vec![day("2026-03-01")], vec![MetricValue::Count(1)]),
            (vec![day("2026-03-02")], vec![MetricValue::Count(1)]),
            (vec![day("2026-03-03")], vec![MetricValue::Count(1)]),
        ]
    );

    let paged = event_query(json!({
        "metrics": ["events"], "date_range": march, "dimensions": ["event:props:plan"],
        "filters": ["gt", "event:props:price", [5]], "pagination": {"limit": 1, "offset": 0}
    }));
    let rows = repository.query(&paged, budget).await.unwrap();
    assert_eq!(
        counts(&rows),
        vec![(vec![text("pro")], vec![MetricValue::Count(2)])]
    );
    assert_eq!(rows.total_rows, 1);

    let totals = repository
        .query(&by_name.total_users(), budget)
        .await
        .unwrap();
    assert_eq!(counts(&totals), vec![(vec![], vec![MetricValue::Count(3)])]);
}

/// Collects a timeline stream, checking that chunks are never empty.
async fn collect_timeline(
    repository: &dyn Repository,
    request: TimelineRequest,
) -> Vec<TimelineEvent> {
    let mut stream = repository.timelines(request, ReadBudget::UNLIMITED);
    let mut events = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(!chunk.is_empty(), "a chunk holds events");
        events.extend(chunk);
    }
    events
}

pub async fn timelines_stream_each_person_in_time_order(repository: Arc<dyn Repository>) {
    read_fixture(repository.as_ref()).await;
    let name = |names: &[&str]| {
        Filter::is(
            EventDimension::Name,
            names.iter().map(|n| (*n).to_owned()).collect(),
        )
    };
    let request = TimelineRequest {
        project_id: "p1".into(),
        range: TimeRange {
            from: at("2026-03-01T00:00:00Z"),
            to: at("2026-04-01T00:00:00Z"),
        },
        filter: None,
        matchers: vec![name(&["signup"]), name(&["purchase"])],
        all_events: false,
        ordered_ties: true,
        labels: vec![
            EventDimension::Property("plan".into()),
            EventDimension::Name,
        ],
    };
    let events = collect_timeline(repository.as_ref(), request.clone()).await;
    // Persons are numbers stable within one answer: compare their order only.
    let persons: Vec<u64> = events.iter().map(|e| e.person).collect();
    assert_eq!(persons.len(), 4);
    assert_eq!(
        persons[0], persons[1],
        "anon-1's signup and u1's purchase are one person"
    );
    assert_eq!(persons[2], persons[3]);
    assert_ne!(persons[0], persons[2]);
    let shape: Vec<(i64, u64, Vec<Option<String>>)> = events
        .iter()
        .map(|e| (e.timestamp_us, e.matches, e.labels.clone()))
        .collect();
    let micros = |t: &str| at(t).timestamp_micros();
    let labels = |plan: &str, name: &str| vec![Some(plan.to_owned()), Some(name.to_owned())];
    let mut by_person = vec![
        vec![
            (micros("2026-03-01T09:05:00Z"), 1, labels("pro", "signup")),
            (micros("2026-03-02T23:30:00Z"), 2, labels("pro", "purchase")),
        ],
        // Same instant: messageId order (e5 before e6).
        vec![
            (
                micros("2026-03-02T10:00:00Z"),
                2,
                labels("team", "purchase"),
            ),
            (micros("2026-03-02T10:00:00Z"), 1, labels("team", "signup")),
        ],
    ];
    let mut seen = vec![shape[..2].to_vec(), shape[2..].to_vec()];
    by_person.sort();
    seen.sort();
    assert_eq!(seen, by_person);

    let every = collect_timeline(
        repository.as_ref(),
        TimelineRequest {
            all_events: true,
            matchers: vec![Filter::is(EventDimension::Type, vec!["page".into()])],
            labels: Vec::new(),
            ordered_ties: false,
            filter: Some(Filter::Condition {
                dimension: EventDimension::Name,
                test: Test::Equals(vec!["identify".into()]),
                negated: true,
            }),
            ..request
        },
    )
    .await;
    assert_eq!(every.len(), 6, "every event but the identify call");
    assert_eq!(every.iter().filter(|e| e.matches == 1).count(), 2);
    assert!(every.iter().all(|e| e.labels.is_empty()));
    assert!(
        every
            .windows(2)
            .all(|w| w[0].person != w[1].person || w[0].timestamp_us <= w[1].timestamp_us),
        "each person's events in time order"
    );
    let mut runs = every.clone();
    runs.dedup_by_key(|e| e.person);
    assert_eq!(runs.len(), 3, "each person's events are contiguous");
}

pub async fn time_bounds_and_property_keys_read_one_project(repository: Arc<dyn Repository>) {
    let budget = ReadBudget::UNLIMITED;
    assert_eq!(repository.time_bounds("p1", budget).await.unwrap(), None);
    read_fixture(repository.as_ref()).await;
    assert_eq!(
        repository.time_bounds("p1", budget).await.unwrap(),
        Some(TimeRange {
            from: at("2026-03-01T09:00:00Z"),
            to: at("2026-03-09T12:00:00Z"),
        })
    );
    let march = TimeRange {
        from: at("2026-03-01T00:00:00Z"),
        to: at("2026-04-01T00:00:00Z"),
    };
    assert_eq!(
        repository
            .property_keys("p1", march, None, 10, budget)
            .await
            .unwrap(),
        vec![
            ("plan".to_owned(), 4),
            ("price".to_owned(), 3),
            ("email".to_owned(), 1)
        ]
    );
    assert_eq!(
        repository
            .property_keys("p1", march, Some("signup"), 1, budget)
            .await
            .unwrap(),
        vec![("plan".to_owned(), 2)]
    );
    assert!(repository
        .property_keys("p2", march, None, 10, budget)
        .await
        .unwrap()
        .is_empty());
}
