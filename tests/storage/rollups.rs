//! DuckDB's rollups answer every event query they take exactly as the same
//! query over events does: while they are built a day at a time with writes
//! between the steps, once built, with writes not yet folded in (new and
//! late events, repeated batches, merges), after a refresh, after visit
//! columns change on stored events, and over ranges whose ends cut hours.

use std::sync::Arc;

use analytics::domain::query::{EventQuery, RowSource};
use analytics::domain::visit::VisitFields;
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::{ReadBudget, Repository};
use serde_json::json;

use crate::kept_sessions::{insert, planned_rows, random_events, Numbers};

fn event_query(body: serde_json::Value) -> EventQuery {
    match planned_rows(body) {
        RowSource::Events(query) => query,
        _ => panic!("an event query"),
    }
}

/// Event queries that rollups take: counts by time, name and type, filtered
/// on name and type, over ranges on whole hours and ranges that cut them
/// (a half-hour timezone), across a change to summer time.
fn queries() -> Vec<EventQuery> {
    let mut queries = Vec::new();
    for (range, timezone) in [
        (json!(["2026-03-01", "2026-03-03"]), "Europe/Berlin"),
        (json!(["2026-03-02", "2026-03-02"]), "UTC"),
        (json!(["2026-02-01", "2026-03-31"]), "America/New_York"),
        (
            json!(["2026-03-01T08:20:00Z", "2026-03-03T09:10:00Z"]),
            "UTC",
        ),
    ] {
        for dimensions in [
            json!([]),
            json!(["time:day"]),
            json!(["time:hour"]),
            json!(["time:week"]),
            json!(["time:month"]),
            json!(["event:name"]),
            json!(["event:type", "time:day"]),
        ] {
            for (metrics, filters) in [
                // Without names, types or page views: the hours' totals.
                (json!(["users", "events"]), json!([])),
                (json!(["events", "users", "pageviews"]), json!([])),
                (
                    json!(["events", "users", "pageviews"]),
                    json!(["is", "event:name", ["signup", "page"]]),
                ),
                (
                    json!(["users"]),
                    json!([
                        "and",
                        [
                            ["is_not", "event:type", ["identify"]],
                            ["contains", "event:name", ["g"]]
                        ]
                    ]),
                ),
            ] {
                queries.push(event_query(json!({
                    "metrics": metrics, "dimensions": dimensions,
                    "date_range": range, "timezone": timezone, "filters": filters,
                    "pagination": {"limit": 1000}
                })));
            }
        }
    }
    // Cells by page and by visit attributes, filtered on their type and
    // value, without time buckets (whole UTC days from day cells) and with.
    for (range, timezone) in [
        (json!(["2026-03-01", "2026-03-03"]), "Europe/Berlin"),
        (json!(["2026-03-02", "2026-03-03"]), "UTC"),
        (
            json!(["2026-03-01T08:20:00Z", "2026-03-03T09:10:00Z"]),
            "UTC",
        ),
    ] {
        for (metrics, dimensions, filters) in [
            (
                json!(["users", "pageviews"]),
                json!(["event:page"]),
                json!(["is", "event:type", ["page"]]),
            ),
            (
                json!(["users", "events"]),
                json!(["event:page", "event:type"]),
                json!([]),
            ),
            (json!(["users"]), json!(["visit:country"]), json!([])),
            (
                json!(["users", "events"]),
                json!(["visit:browser", "time:day"]),
                json!([]),
            ),
            (
                json!(["users", "events"]),
                json!(["time:day"]),
                json!(["is", "visit:country", ["DE"]]),
            ),
            (
                json!(["users"]),
                json!([]),
                json!(["is_not", "visit:country", ["FR"]]),
            ),
            (
                json!(["events"]),
                json!(["visit:city"]),
                json!(["is_set", "visit:city"]),
            ),
            (
                json!(["users", "pageviews"]),
                json!(["event:page"]),
                json!([
                    "and",
                    [
                        ["contains", "event:page", ["o"]],
                        ["is_not", "event:type", ["track"]]
                    ]
                ]),
            ),
        ] {
            queries.push(event_query(json!({
                "metrics": metrics, "dimensions": dimensions,
                "date_range": range, "timezone": timezone, "filters": filters,
                "order_by": [[metrics[0], "desc"]], "pagination": {"limit": 1000}
            })));
        }
    }
    // A half-hour offset: without time buckets the hours inside still count.
    queries.push(event_query(json!({
        "metrics": ["users", "events"], "dimensions": ["event:name"],
        "date_range": ["2026-03-01", "2026-03-02"], "timezone": "Asia/Kolkata",
        "order_by": [["users", "desc"]], "pagination": {"limit": 2, "offset": 1}
    })));
    queries.push(event_query(
        json!({"metrics": ["users"], "date_range": "all"}),
    ));
    queries
}

/// Every query answers from the rollups of `kept` as from the events of `plain`.
async fn answers_agree(kept: &DuckDbRepository, plain: &dyn Repository, moment: &str) {
    for query in queries() {
        assert!(query.fits_rollups(), "{query:?}");
        let from_rollups = kept
            .query_from_rollups(&query)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{moment}: rollups answer {query:?}"));
        let over_events = plain.query(&query, ReadBudget::UNLIMITED).await.unwrap();
        assert!(!over_events.rows.is_empty(), "{moment}: {query:?}");
        assert_eq!(
            from_rollups, over_events,
            "{moment}: {:?} by {:?} over {:?}",
            query.metrics, query.dimensions, query.range
        );
    }
}

/// Visit columns for some of the events `prefix-0`, `prefix-1`, ...: a
/// browser, a country and a city.
fn visits(prefix: &str, count: usize, step: usize, shift: usize) -> Vec<(String, VisitFields)> {
    (0..count)
        .step_by(step)
        .map(|i| {
            let visit = VisitFields {
                browser: Some(["Chrome", "Firefox", "Safari"][(i + shift) % 3].to_owned()),
                country: Some(["DE", "FR"][(i + shift) % 2].to_owned()),
                city: (i % 4 != 0).then(|| ["Berlin", "Paris", "Lyon"][(i + shift) % 3].to_owned()),
                ..VisitFields::default()
            };
            (format!("{prefix}-{i}"), visit)
        })
        .collect()
}

async fn update_both(
    kept: &DuckDbRepository,
    plain: &dyn Repository,
    visits: Vec<(String, VisitFields)>,
) {
    kept.update_visits("p1", visits.clone()).await.unwrap();
    plain.update_visits("p1", visits).await.unwrap();
}

async fn insert_both(
    kept: &DuckDbRepository,
    plain: &dyn Repository,
    batch: Vec<serde_json::Value>,
) {
    insert(kept, batch.clone()).await;
    insert(plain, batch).await;
}

fn open(dir: &tempfile::TempDir, name: &str) -> DuckDbRepository {
    DuckDbRepository::open(&dir.path().join(name), &DuckDbOptions::default()).unwrap()
}

#[tokio::test]
async fn rollups_answer_as_events_do() {
    let dir = tempfile::tempdir().unwrap();
    let kept = open(&dir, "kept.duckdb");
    let plain: Arc<dyn Repository> = Arc::new(open(&dir, "plain.duckdb"));
    let mut numbers = Numbers(11);
    insert_both(&kept, plain.as_ref(), random_events(&mut numbers, "a", 600)).await;
    update_both(&kept, plain.as_ref(), visits("a", 600, 2, 0)).await;
    let query = &queries()[0];
    assert_eq!(
        kept.query_from_rollups(query).await.unwrap(),
        None,
        "not built yet"
    );

    // Built a day at a time; writes between the steps land before and
    // after the day being built, and repeat stored events.
    assert!(!kept.keep_rollups("p1").await.unwrap());
    let during = random_events(&mut numbers, "b", 300);
    insert_both(&kept, plain.as_ref(), during.clone()).await;
    insert_both(&kept, plain.as_ref(), during[..40].to_vec()).await;
    // Visit columns set on events of days built and not yet built.
    update_both(&kept, plain.as_ref(), visits("a", 600, 3, 1)).await;
    kept.refresh_rollups().await.unwrap();
    let mut steps = 1;
    while !kept.keep_rollups("p1").await.unwrap() {
        steps += 1;
        assert!(steps < 100, "the build never ends");
    }
    assert!(
        steps >= 3,
        "three days take three steps at least, took {steps}"
    );
    answers_agree(&kept, plain.as_ref(), "built").await;

    // Later writes, before any refresh: new and late events, merges, and a
    // batches that repeat stored events (they count once).
    let later = random_events(&mut numbers, "c", 300);
    insert_both(&kept, plain.as_ref(), later[..150].to_vec()).await;
    // Batches of stored and new events alike: only the new ones count.
    insert_both(&kept, plain.as_ref(), later[100..].to_vec()).await;
    answers_agree(&kept, plain.as_ref(), "written, not refreshed").await;

    kept.refresh_rollups().await.unwrap();
    answers_agree(&kept, plain.as_ref(), "refreshed").await;

    // Visit columns changed on stored events (also on events whose deltas
    // are not folded in yet): their hours are read from events until the
    // refresh recomputes them.
    insert_both(&kept, plain.as_ref(), random_events(&mut numbers, "f", 100)).await;
    update_both(&kept, plain.as_ref(), visits("a", 600, 5, 2)).await;
    update_both(&kept, plain.as_ref(), visits("f", 100, 2, 1)).await;
    answers_agree(&kept, plain.as_ref(), "visit columns changed").await;
    kept.refresh_rollups().await.unwrap();
    answers_agree(&kept, plain.as_ref(), "visit columns recomputed").await;

    insert_both(&kept, plain.as_ref(), random_events(&mut numbers, "d", 200)).await;
    kept.refresh_rollups().await.unwrap();
    insert_both(&kept, plain.as_ref(), random_events(&mut numbers, "e", 100)).await;
    answers_agree(&kept, plain.as_ref(), "half refreshed").await;
    kept.refresh_rollups().await.unwrap();
    answers_agree(&kept, plain.as_ref(), "refreshed again").await;

    // The service's queries use the rollups: same answers through `query`.
    for query in queries() {
        assert_eq!(
            kept.query(&query, ReadBudget::UNLIMITED).await.unwrap(),
            plain.query(&query, ReadBudget::UNLIMITED).await.unwrap()
        );
    }
}

#[tokio::test]
async fn queries_rollups_cannot_answer_read_events() {
    let reading = |body| event_query(body).fits_rollups();
    for body in [
        json!({"metrics": ["events"], "dimensions": ["time:minute"], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["event:url"], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["event:page", "visit:country"], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["visit:country"], "filters": ["is", "event:page", ["/"]], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["event:name"], "filters": ["is", "visit:country", ["DE"]], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["visit:browser_version"], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "filters": ["matches", "event:name", ["^s"]], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["sum:props.amount"], "date_range": ["2026-03-01", "2026-03-01"]}),
        json!({"metrics": ["events"], "dimensions": ["time:day"], "timezone": "Asia/Kolkata", "date_range": ["2026-03-01", "2026-03-01"]}),
    ] {
        assert!(!reading(body.clone()), "{body}");
    }
    assert!(reading(
        json!({"metrics": ["events"], "dimensions": ["time:day"], "date_range": ["2026-03-01", "2026-03-01"]})
    ));
}
