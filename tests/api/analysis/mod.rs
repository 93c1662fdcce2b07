//! Funnels, retention, stickiness, lifecycle, paths and merged users, on a
//! generated event set, against the reference computations of
//! `reference.rs`: one suite, run on every storage backend.

mod dataset;
mod reference;

use chrono::Duration;
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_on, Backend, TestApp, READ_KEY, WRITE_KEY};
use dataset::{at, Call};
use reference::{Funnel, Period, Step};

const RANGE: [&str; 2] = ["2026-03-16", "2026-04-05"];
const TIMEZONE: &str = "Europe/Berlin";

fn berlin() -> Tz {
    TIMEZONE.parse().unwrap()
}

/// The range's instants: Berlin midnight on 16 March to Berlin midnight after 5 April.
fn range() -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    (at("2026-03-15T23:00:00Z"), at("2026-04-05T22:00:00Z"))
}

async fn seeded(backend: Backend) -> (TestApp, Vec<Call>) {
    let app = spawn_app_on(backend).await;
    let calls = dataset::calls();
    for chunk in calls.chunks(200) {
        let batch: Vec<Value> = chunk.iter().map(Call::json).collect();
        let response = app.post("/v1/batch", &json!({ "batch": batch })).await;
        assert_eq!(response.status(), 200);
    }
    (app, calls)
}

async fn ask(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, answer) = app.read_post(READ_KEY, path, &body).await;
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

fn funnel_request(f: &Funnel) -> Value {
    let mut request = json!({
        "steps": f.steps.iter().map(Step::json).collect::<Vec<_>>(),
        "window": format!("{}s", f.window.num_seconds()),
        "date_range": RANGE,
        "timezone": TIMEZONE,
        "order": f.order,
        "breakdown": "event:props:plan",
    });
    if f.skip_docs {
        request["filters"] = json!([["is_not", "event:page", ["/docs"]]]);
    }
    request
}

async fn funnels_match_the_reference(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    let three = vec![
        Step::named("view"),
        Step::named("signup"),
        Step::named("purchase"),
    ];
    let cases = [
        (three.clone(), Duration::days(1), "ordered", false),
        (three.clone(), Duration::days(1), "strict", false),
        (three.clone(), Duration::days(1), "any", false),
        (three.clone(), Duration::minutes(30), "ordered", true),
        (
            vec![
                Step::named("view"),
                Step {
                    name: "signup",
                    plan: Some("pro"),
                },
                Step::named("view"),
                Step::named("page"),
            ],
            Duration::days(3),
            "ordered",
            false,
        ),
    ];
    for (steps, window, order, skip_docs) in cases {
        let f = Funnel {
            steps,
            window,
            from,
            to,
            order,
            skip_docs,
        };
        let expected = reference::funnel(&calls, &f);
        let answer = ask(&app, "/v1/funnel", funnel_request(&f)).await;
        assert!(
            expected["steps"][0]["users"].as_u64().unwrap() > 5,
            "the case enters persons"
        );
        assert_eq!(answer["steps"], expected["steps"], "{order} {window}");
        assert_eq!(
            answer["breakdown"], expected["breakdown"],
            "{order} {window}"
        );
        assert_eq!(
            answer["meta"]["breakdown_values"],
            json!(expected["breakdown"].as_array().unwrap().len())
        );
    }
}

async fn retention_matches_the_reference(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    for (period, periods, first_time) in [
        (Period::Week, 4, false),
        (Period::Week, 4, true),
        (Period::Day, 10, false),
        (Period::Month, 2, true),
    ] {
        let expected = reference::retention(
            &calls,
            Step::named("signup"),
            Step::named("view"),
            period,
            periods,
            from,
            to,
            first_time,
            berlin(),
        );
        let answer = ask(
            &app,
            "/v1/retention",
            json!({
                "start_event": {"event": "signup"},
                "return_event": {"event": "view"},
                "period": period.name(),
                "periods": periods,
                "date_range": RANGE,
                "timezone": TIMEZONE,
                "cohort": if first_time { "first_time" } else { "recurring" },
            }),
        )
        .await;
        assert_eq!(
            answer["cohorts"], expected,
            "{period:?} first_time={first_time}"
        );
    }
}

async fn stickiness_and_lifecycle_match_the_reference(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    for period in [Period::Day, Period::Week] {
        let expected =
            reference::stickiness(&calls, Step::named("view"), period, from, to, berlin());
        let answer = ask(&app, "/v1/stickiness", json!({
            "event": {"event": "view"}, "period": period.name(), "date_range": RANGE, "timezone": TIMEZONE,
        }))
        .await;
        assert_eq!(answer["results"], expected, "stickiness by {period:?}");
    }
    for period in [Period::Day, Period::Week, Period::Month] {
        let expected =
            reference::lifecycle(&calls, Step::named("purchase"), period, from, to, berlin());
        let answer = ask(&app, "/v1/lifecycle", json!({
            "event": {"event": "purchase"}, "period": period.name(), "date_range": RANGE, "timezone": TIMEZONE,
        }))
        .await;
        assert_eq!(answer["periods"], expected, "lifecycle by {period:?}");
    }
}

async fn paths_match_the_reference(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    for (direction, depth, per_step) in [("next", 3, 3), ("previous", 2, 10), ("next", 5, 2)] {
        let expected = reference::paths(
            &calls,
            Step::named("signup"),
            direction == "next",
            depth,
            per_step,
            from,
            to,
        );
        let answer = ask(
            &app,
            "/v1/paths",
            json!({
                "start_event": {"event": "signup"}, "direction": direction, "depth": depth,
                "nodes_per_step": per_step, "date_range": RANGE, "timezone": TIMEZONE,
            }),
        )
        .await;
        assert_eq!(answer["nodes"], expected["nodes"], "{direction} {depth}");
        assert_eq!(answer["links"], expected["links"], "{direction} {depth}");
    }
}

async fn users_are_counted_as_merged_persons(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    let expected = reference::users_per_day(&calls, from, to, berlin());
    let answer = app
        .query(&json!({"metrics": ["users"], "dimensions": ["time:day"], "date_range": RANGE, "timezone": TIMEZONE}))
        .await;
    let rows: Vec<(String, u64)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["dimensions"][0].as_str().unwrap().to_owned(),
                row["metrics"][0].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, expected);
}

async fn march_users(app: &TestApp) -> u64 {
    let answer = app
        .query(&json!({"metrics": ["users"], "date_range": ["2026-03-01", "2026-03-31"]}))
        .await;
    answer["results"][0]["metrics"][0].as_u64().unwrap()
}

async fn a_link_merges_events_stored_before_it(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let first = json!({"batch": [
        {"type": "track", "event": "view", "anonymousId": "visitor", "timestamp": "2026-03-02T09:00:00Z"},
        {"type": "track", "event": "signup", "userId": "ada", "timestamp": "2026-03-02T09:05:00Z"},
        {"type": "track", "event": "view", "userId": "old-ada", "timestamp": "2026-03-01T09:05:00Z"},
    ]});
    assert_eq!(app.post("/v1/batch", &first).await.status(), 200);
    assert_eq!(march_users(&app).await, 3);
    let identify =
        json!({"userId": "ada", "anonymousId": "visitor", "timestamp": "2026-03-02T09:04:00Z"});
    assert_eq!(app.post("/v1/identify", &identify).await.status(), 200);
    assert_eq!(march_users(&app).await, 2, "the anonymous visitor is ada");
    let alias =
        json!({"userId": "ada", "previousId": "old-ada", "timestamp": "2026-03-03T09:00:00Z"});
    assert_eq!(app.post("/v1/alias", &alias).await.status(), 200);
    assert_eq!(march_users(&app).await, 1, "so is the old id");

    // The funnel runs across the link: viewed anonymously, signed up as ada.
    let answer = ask(
        &app,
        "/v1/funnel",
        json!({
            "steps": [{"event": "view"}, {"event": "signup"}], "window": "1h",
            "date_range": ["2026-03-02", "2026-03-02"], "timezone": "UTC",
        }),
    )
    .await;
    assert_eq!(answer["steps"][1]["users"], 1);
    assert_eq!(answer["steps"][1]["median_seconds_from_previous"], 300.0);
}

async fn bad_requests_name_the_field(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let cases = [
        (
            "/v1/funnel",
            json!({"steps": [{"event": "a"}], "date_range": "7d"}),
            "steps",
        ),
        (
            "/v1/funnel",
            json!({"steps": [{"event": "a"}, {"event": "b"}], "window": "7 days", "date_range": "7d"}),
            "window",
        ),
        (
            "/v1/funnel",
            json!({"steps": [{"event": "a"}, {"event": "b", "filters": [["is", "event:nope", ["x"]]]}], "date_range": "7d"}),
            "steps[1].filters[0][1]",
        ),
        (
            "/v1/funnel",
            json!({"steps": [{"event": "a"}, {"event": "b"}], "breakdown": "time:day", "date_range": "7d"}),
            "breakdown",
        ),
        (
            "/v1/retention",
            json!({"start_event": {"event": "a"}, "return_event": {"event": "b"}, "period": "week", "periods": 0, "date_range": "7d"}),
            "periods",
        ),
        (
            "/v1/paths",
            json!({"start_event": {"event": "a"}, "depth": 9, "date_range": "7d"}),
            "depth",
        ),
        (
            "/v1/lifecycle",
            json!({"event": {"event": ""}, "period": "day", "date_range": "7d"}),
            "event.event",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.read_post(READ_KEY, path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, _) = app
        .read_post(
            WRITE_KEY,
            "/v1/stickiness",
            &json!({"event": {"event": "a"}, "date_range": "7d"}),
        )
        .await;
    assert_eq!(status, 403, "a write key cannot read");
}

const SESSION_METRICS: [&str; 6] = [
    "sessions",
    "bounce_rate",
    "session_duration",
    "events_per_session",
    "users",
    "events",
];

async fn sessions_match_the_reference(backend: Backend) {
    let (app, calls) = seeded(backend).await;
    let (from, to) = range();
    let sessions = reference::sessions(&calls, from, to, berlin(), Duration::minutes(30));
    assert!(
        sessions.iter().any(|s| s.page_views == 1 && s.events == 1),
        "some sessions bounce"
    );

    let answer = ask(&app, "/v1/query", json!({
        "metrics": SESSION_METRICS, "dimensions": ["time:day"], "date_range": RANGE, "timezone": TIMEZONE,
    }))
    .await;
    let mut days: Vec<&str> = sessions.iter().map(|s| s.day.as_str()).collect();
    days.sort_unstable();
    days.dedup();
    let expected: Vec<Value> = days
        .iter()
        .map(|day| {
            let of_day: Vec<&reference::RefSession> =
                sessions.iter().filter(|s| s.day == *day).collect();
            json!({"dimensions": [day], "metrics": reference::session_metrics(&of_day)})
        })
        .collect();
    assert_eq!(answer["results"], json!(expected));

    // Plausible's names and definitions, per day.
    let answer = ask(&app, "/v1/query", json!({
        "metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"],
        "dimensions": ["time:day"], "date_range": RANGE, "timezone": TIMEZONE,
    }))
    .await;
    let expected: Vec<Value> = days
        .iter()
        .map(|day| {
            let of_day: Vec<&reference::RefSession> =
                sessions.iter().filter(|s| s.day == *day).collect();
            json!({"dimensions": [day], "metrics": reference::web_metrics(&of_day)})
        })
        .collect();
    assert_eq!(answer["results"], json!(expected));
    assert_eq!(
        answer["query"]["metrics"],
        json!([
            "visitors",
            "visits",
            "pageviews",
            "views_per_visit",
            "bounce_rate",
            "visit_duration"
        ])
    );

    // By entry and by exit page: most sessions first, then the page, unset last.
    for (dimension, page) in [
        (
            "session:entry_page",
            (|s: &reference::RefSession| s.entry_page)
                as fn(&reference::RefSession) -> Option<&'static str>,
        ),
        ("session:exit_page", |s: &reference::RefSession| s.exit_page),
    ] {
        let answer = ask(&app, "/v1/query", json!({
            "metrics": SESSION_METRICS, "dimensions": [dimension], "date_range": RANGE, "timezone": TIMEZONE,
            "order_by": [["sessions", "desc"]],
        }))
        .await;
        let mut pages: Vec<Option<&str>> = sessions.iter().map(page).collect();
        pages.sort_unstable();
        pages.dedup();
        let mut expected: Vec<(u64, Option<&str>, Value)> = pages
            .iter()
            .map(|p| {
                let of_page: Vec<&reference::RefSession> =
                    sessions.iter().filter(|s| page(s) == *p).collect();
                (
                    of_page.len() as u64,
                    *p,
                    reference::session_metrics(&of_page),
                )
            })
            .collect();
        expected.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.is_none().cmp(&b.1.is_none()))
                .then_with(|| a.1.cmp(&b.1))
        });
        let expected: Vec<Value> = expected
            .into_iter()
            .map(|(_, p, metrics)| json!({"dimensions": [p], "metrics": metrics}))
            .collect();
        assert_eq!(answer["results"], json!(expected), "{dimension}");
    }

    // Session metrics do not mix with numeric ones.
    let (status, answer) = app
        .read_post(
            READ_KEY,
            "/v1/query",
            &json!({"metrics": ["sessions", "sum:props.x"], "date_range": RANGE}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["field"], "metrics[1]");
}

crate::on_every_backend!(
    sessions_match_the_reference,
    funnels_match_the_reference,
    retention_matches_the_reference,
    stickiness_and_lifecycle_match_the_reference,
    paths_match_the_reference,
    users_are_counted_as_merged_persons,
    a_link_merges_events_stored_before_it,
    bad_requests_name_the_field,
);
