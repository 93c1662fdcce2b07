//! DuckDB's kept sessions answer every session query they take exactly as
//! folding the query's timeline does: once built, with writes not yet
//! refreshed (new events, late events, merges, visit columns set later),
//! after a refresh, and over ranges that cut sessions.

use std::sync::Arc;

use analytics::api::query::QueryRequest;
use analytics::domain::analysis::{fold_all, PersonFold};
use analytics::domain::query::{plan, PlanContext, QuerySpec, RowSource, SessionQuery};
use analytics::domain::visit::VisitFields;
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::{ReadBudget, Repository};
use futures::StreamExt;
use serde_json::json;

use crate::conformance::events;

const TIMEOUT_MINUTES: i64 = 30;

/// A small deterministic generator (the same events at every run).
pub(crate) struct Numbers(pub(crate) u64);

impl Numbers {
    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// `count` events of 12 visitors over three days of March 2026, bunched so
/// that sessions have several events, some at one instant; some visitors
/// sign in (an identify call merges them into a user).
pub(crate) fn random_events(
    numbers: &mut Numbers,
    prefix: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let pages = ["/", "/pricing", "/docs", "/blog"];
    (0..count)
        .map(|i| {
            let visitor = numbers.next(12);
            let day = numbers.next(3) + 1;
            let hour = [8, 9, 23, 0][numbers.next(4) as usize];
            let minute = numbers.next(4) * 15;
            let second = numbers.next(2) * 30;
            let timestamp = format!("2026-03-0{day}T{hour:02}:{minute:02}:{second:02}Z");
            let id = format!("{prefix}-{i}");
            let anonymous = format!("anon-{visitor}");
            match numbers.next(10) {
                0 if visitor.is_multiple_of(3) => json!({"type": "identify", "anonymousId": anonymous,
                    "userId": format!("user-{}", visitor / 3), "messageId": id, "timestamp": timestamp}),
                1..=3 => json!({"type": "track", "anonymousId": anonymous, "event": "signup",
                    "messageId": id, "timestamp": timestamp}),
                _ => json!({"type": "page", "anonymousId": anonymous, "messageId": id,
                    "timestamp": timestamp,
                    "context": {"page": {"path": pages[numbers.next(4) as usize]}}}),
            }
        })
        .collect()
}

/// How the rows of a request to `/v1/query` for project `p1` are computed.
pub(crate) fn planned_rows(body: serde_json::Value) -> RowSource {
    let request: QueryRequest = serde_json::from_value(body).unwrap();
    let context = PlanContext {
        project_id: "p1".into(),
        default_timezone: chrono_tz::Europe::Berlin,
        now: chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
            .unwrap()
            .to_utc(),
        data_bounds: None,
        session_timeout: chrono::Duration::minutes(TIMEOUT_MINUTES),
    };
    plan(&QuerySpec::try_from(request).unwrap(), &context)
        .unwrap()
        .rows
}

fn session_query(body: serde_json::Value) -> SessionQuery {
    match planned_rows(body) {
        RowSource::Sessions(query) => query,
        _ => panic!("a session query"),
    }
}

/// Session queries over ranges that cut sessions (local midnights, with
/// events around them) and ranges that hold them whole.
fn queries() -> Vec<SessionQuery> {
    let metrics = json!([
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "events",
        "events_per_session"
    ]);
    let mut queries = Vec::new();
    for (range, timezone) in [
        (json!(["2026-03-01", "2026-03-03"]), "Europe/Berlin"),
        (json!(["2026-03-02", "2026-03-02"]), "UTC"),
        (json!(["2026-03-01", "2026-03-02"]), "Asia/Kolkata"),
        (json!(["2026-02-01", "2026-03-31"]), "America/New_York"),
        (json!(["2026-03-03", "2026-03-04"]), "UTC"),
    ] {
        for dimensions in [
            json!([]),
            json!(["time:day"]),
            json!(["time:hour"]),
            json!(["session:entry_page"]),
            json!(["session:exit_page", "visit:channel"]),
            json!(["visit:source", "time:day"]),
            json!(["visit:country"]),
        ] {
            queries.push(session_query(json!({
                "metrics": metrics, "dimensions": dimensions, "date_range": range,
                "timezone": timezone, "pagination": {"limit": 1000}
            })));
        }
    }
    // Without `visitors`, distinct persons are not counted.
    queries.push(session_query(json!({
        "metrics": ["visits", "bounce_rate", "visit_duration"], "dimensions": ["time:day"],
        "date_range": ["2026-03-01", "2026-03-03"], "timezone": "Europe/Berlin"
    })));
    queries
}

/// Every query answers from kept sessions, and as its fold answers.
async fn answers_agree(repository: &dyn Repository, moment: &str) {
    answers_agree_on(repository, moment, queries()).await;
}

/// Each of `queries` answers from kept sessions, and as its fold answers.
async fn answers_agree_on(repository: &dyn Repository, moment: &str, queries: Vec<SessionQuery>) {
    for query in queries {
        let stored = repository
            .stored_sessions(&query, ReadBudget::UNLIMITED)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{moment}: kept sessions answer {query:?}"));
        let mut stream = repository.timelines(query.timeline(), ReadBudget::UNLIMITED);
        let mut timeline = Vec::new();
        while let Some(chunk) = stream.next().await {
            timeline.extend(chunk.unwrap());
        }
        let folded = fold_all(query.clone(), timeline);
        assert!(!folded.rows.is_empty());
        assert_eq!(
            query.answer_stored(stored),
            folded,
            "{moment}: {:?} over {:?}",
            query.dimensions,
            query.range
        );
    }
}

pub(crate) async fn insert(repository: &dyn Repository, batch: Vec<serde_json::Value>) {
    for part in batch.chunks(37) {
        repository
            .insert_batch(events("p1", json!(part)).into())
            .await
            .unwrap();
    }
}

async fn build(repository: &dyn Repository) {
    let timeout = chrono::Duration::minutes(TIMEOUT_MINUTES);
    for _ in 0..100 {
        if repository.keep_sessions("p1", timeout).await.unwrap() {
            return;
        }
    }
    panic!("kept sessions never got ready");
}

#[tokio::test]
async fn kept_sessions_answer_as_folding_events_does() {
    let dir = tempfile::tempdir().unwrap();
    let repository: Arc<dyn Repository> = Arc::new(
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap(),
    );
    let mut numbers = Numbers(7);
    insert(repository.as_ref(), random_events(&mut numbers, "a", 600)).await;
    let query = &queries()[0];
    assert_eq!(
        repository
            .stored_sessions(query, ReadBudget::UNLIMITED)
            .await
            .unwrap(),
        None,
        "not built yet: the query folds events"
    );
    build(repository.as_ref()).await;
    answers_agree(repository.as_ref(), "built").await;

    // Later writes, before any refresh: new and late events, merges, and a
    // repeated batch (duplicates are skipped).
    let later = random_events(&mut numbers, "b", 300);
    insert(repository.as_ref(), later.clone()).await;
    insert(repository.as_ref(), later[..50].to_vec()).await;
    answers_agree(repository.as_ref(), "written, not refreshed").await;

    let visits: Vec<(String, VisitFields)> = (0..600)
        .step_by(7)
        .map(|i| {
            let visit = VisitFields {
                channel: Some(["Direct", "Organic Search"][i % 2].to_owned()),
                source: Some(["Google", "Bing", "Newsletter"][i % 3].to_owned()),
                country: Some(["DE", "FR"][i % 2].to_owned()),
                ..VisitFields::default()
            };
            (format!("a-{i}"), visit)
        })
        .collect();
    repository.update_visits("p1", visits).await.unwrap();
    answers_agree(repository.as_ref(), "visit columns set").await;

    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "refreshed").await;

    insert(repository.as_ref(), random_events(&mut numbers, "c", 200)).await;
    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "refreshed again").await;

    // Events after every kept session of their visitors (the live case):
    // within the timeout they extend the last session, past it they start
    // new ones; a track call first leaves the entry page to the next view.
    let mut appended = Vec::new();
    for visitor in 0..12 {
        for (i, time) in [
            "2026-03-04T00:05:00Z",
            "2026-03-04T00:20:00Z",
            "2026-03-04T06:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            let id = format!("d-{visitor}-{i}");
            appended.push(if visitor % 4 == i {
                json!({"type": "track", "anonymousId": format!("anon-{visitor}"), "event": "signup",
                       "messageId": id, "timestamp": time})
            } else {
                json!({"type": "page", "anonymousId": format!("anon-{visitor}"), "messageId": id,
                       "timestamp": time, "context": {"page": {"path": "/later"}}})
            });
        }
    }
    insert(repository.as_ref(), appended[..18].to_vec()).await;
    repository.refresh_sessions().await.unwrap();
    insert(repository.as_ref(), appended[18..].to_vec()).await;
    answers_agree(repository.as_ref(), "appended, half refreshed").await;
    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "appended and refreshed").await;

    // Merges of visitors with kept sessions of their own over the three
    // days, some near each other's and some apart, one chained through
    // another in the same batch, and one into a user with no events.
    let merges = [
        ("anon-2", "anon-5"),
        ("anon-8", "anon-10"),
        ("anon-10", "anon-11"),
        ("anon-7", "user-new"),
    ];
    let merges: Vec<serde_json::Value> = merges
        .iter()
        .enumerate()
        .map(|(i, (previous, user))| {
            json!({"type": "alias", "previousId": previous, "userId": user,
                   "messageId": format!("e-{i}"), "timestamp": "2026-03-02T09:10:00Z"})
        })
        .collect();
    insert(repository.as_ref(), merges).await;
    answers_agree(repository.as_ref(), "merged, not refreshed").await;
    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "merged and refreshed").await;

    // Another timeout cuts other sessions: they are rebuilt, and until then
    // the queries fold events.
    let other = chrono::Duration::minutes(10);
    assert!(!repository.keep_sessions("p1", other).await.unwrap());
    assert_eq!(
        repository
            .stored_sessions(query, ReadBudget::UNLIMITED)
            .await
            .unwrap(),
        None
    );
    build(repository.as_ref()).await;
    answers_agree(repository.as_ref(), "rebuilt").await;
}

/// Session cells are built a day at a time after the sessions: writes to
/// days built and not built yet, refreshed in between, leave every answer
/// as folding events gives it, during the build and after it.
#[tokio::test]
async fn session_cells_answer_alike_while_they_are_built() {
    let dir = tempfile::tempdir().unwrap();
    let repository: Arc<dyn Repository> = Arc::new(
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap(),
    );
    let mut numbers = Numbers(11);
    insert(repository.as_ref(), random_events(&mut numbers, "a", 600)).await;
    let timeout = chrono::Duration::minutes(TIMEOUT_MINUTES);
    let query = &queries()[0];
    let mut steps = 0;
    while repository
        .stored_sessions(query, ReadBudget::UNLIMITED)
        .await
        .unwrap()
        .is_none()
    {
        assert!(!repository.keep_sessions("p1", timeout).await.unwrap());
        steps += 1;
        assert!(steps < 100, "kept sessions never got ready");
    }
    // The sessions in time order.
    assert!(!repository.keep_sessions("p1", timeout).await.unwrap());
    answers_agree(repository.as_ref(), "in time order").await;
    // The first day's cells.
    assert!(!repository.keep_sessions("p1", timeout).await.unwrap());
    answers_agree(repository.as_ref(), "first day of cells").await;

    // Events on the built day and on days not built yet, a merge, refreshed.
    insert(repository.as_ref(), random_events(&mut numbers, "b", 200)).await;
    insert(
        repository.as_ref(),
        vec![
            json!({"type": "alias", "previousId": "anon-1", "userId": "anon-4",
                    "messageId": "m-1", "timestamp": "2026-03-01T09:10:00Z"}),
        ],
    )
    .await;
    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "written during the build").await;

    build(repository.as_ref()).await;
    answers_agree(repository.as_ref(), "cells built").await;
    insert(repository.as_ref(), random_events(&mut numbers, "c", 200)).await;
    answers_agree(repository.as_ref(), "written after the build").await;
    repository.refresh_sessions().await.unwrap();
    answers_agree(repository.as_ref(), "refreshed after the build").await;
}

/// A session that starts in the range and crosses its end is read from
/// events, cut at the end; its person stays counted in the group of its
/// cell through another session of the same hour, and in the group the cut
/// session falls in.
#[tokio::test]
async fn a_session_crossing_the_end_leaves_the_others_of_its_hour_counted() {
    let dir = tempfile::tempdir().unwrap();
    let repository: Arc<dyn Repository> = Arc::new(
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap(),
    );
    let page = |id: &str, visitor: &str, at: &str, path: &str| {
        json!({"type": "page", "anonymousId": visitor, "messageId": id, "timestamp": at,
               "context": {"page": {"path": path}}})
    };
    insert(
        repository.as_ref(),
        vec![
            // One session ending on /x, then one whose last page before the
            // end is /docs and after it /x.
            page("a", "anon-1", "2026-03-02T23:00:00Z", "/x"),
            page("b", "anon-1", "2026-03-02T23:45:00Z", "/docs"),
            page("c", "anon-1", "2026-03-03T00:05:00Z", "/x"),
            page("d", "anon-2", "2026-03-02T23:10:00Z", "/x"),
            page("e", "anon-2", "2026-03-02T08:10:00Z", "/docs"),
        ],
    )
    .await;
    build(repository.as_ref()).await;
    let queries = [
        json!(["session:exit_page"]),
        json!(["time:day", "session:exit_page"]),
        json!(["time:hour"]),
        json!([]),
    ]
    .into_iter()
    .map(|dimensions| {
        session_query(json!({
            "metrics": ["visitors", "visits", "bounce_rate", "visit_duration"],
            "dimensions": dimensions, "date_range": ["2026-03-02", "2026-03-02"],
            "timezone": "UTC"
        }))
    })
    .collect();
    answers_agree_on(repository.as_ref(), "crossing the end", queries).await;
}
