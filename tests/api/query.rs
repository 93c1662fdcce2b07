//! `POST /v1/query` and the discovery endpoints, with exact answers on a
//! hand-built event set: one suite, run on every storage backend.

use serde_json::{json, Value};

use crate::helpers::{spawn_app_on, Backend, TestApp, OTHER_READ_KEY, READ_KEY, WRITE_KEY};

/// The shop's events in March 2026 (project timezone Europe/Berlin).
fn march_events() -> Value {
    json!({"batch": [
        {"type": "track", "event": "signup", "userId": "u1", "timestamp": "2026-03-02T09:00:00Z",
         "properties": {"plan": "pro", "revenue": 10},
         "context": {"page": {"path": "/signup"}, "campaign": {"source": "news"},
                     "library": {"name": "analytics.js"}, "locale": "de-DE"}},
        {"type": "track", "event": "signup", "userId": "u2", "timestamp": "2026-03-02T10:00:00Z",
         "properties": {"plan": "free"},
         "context": {"page": {"path": "/signup", "referrer": "https://google.com/"}}},
        {"type": "track", "event": "purchase", "userId": "u1", "timestamp": "2026-03-03T11:00:00Z",
         "properties": {"plan": "pro", "revenue": 25.5, "cart": {"items": 3}}},
        {"type": "track", "event": "purchase", "anonymousId": "a9", "timestamp": "2026-03-03T12:00:00Z",
         "properties": {"plan": "team", "revenue": "12"}},
        {"type": "track", "event": "purchase", "userId": "u2", "timestamp": "2026-03-05T08:00:00Z",
         "properties": {"revenue": "n/a"}},
        {"type": "page", "name": "Home", "userId": "u3", "timestamp": "2026-03-04T07:00:00Z",
         "context": {"page": {"path": "/", "url": "https://shop.example/?utm_source=ads&utm_medium=cpc"},
                     "app": {"version": "2.1"}}},
        {"type": "identify", "userId": "u3", "timestamp": "2026-03-04T07:05:00Z",
         "traits": {"plan": "pro", "email": "u3@example.com"}},
        // 00:30 on 1 March in Berlin, still February in UTC.
        {"type": "track", "event": "signup", "userId": "u4", "timestamp": "2026-02-28T23:30:00Z",
         "properties": {"plan": "free"}}
    ]})
}

async fn seeded(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend).await;
    let response = app.post("/v1/batch", &march_events()).await;
    assert_eq!(response.status(), 200);
    app
}

fn march(extra: Value) -> Value {
    let mut query = json!({"date_range": ["2026-03-01", "2026-03-31"]});
    query
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    query
}

fn rows(answer: &Value) -> Vec<(Vec<Value>, Vec<Value>)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["dimensions"].as_array().unwrap().clone(),
                row["metrics"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

/// Events matching a filter, over March.
async fn count_where(app: &TestApp, filters: Value) -> u64 {
    let answer = app
        .query(&march(json!({"metrics": ["events"], "filters": filters})))
        .await;
    answer["results"][0]["metrics"][0].as_u64().unwrap()
}

async fn totals_count_events_users_and_numeric_properties(backend: Backend) {
    let app = seeded(backend).await;
    let answer = app
        .query(&march(json!({"metrics": [
            "events", "users", "sum:props.revenue", "avg:props.revenue",
            "min:props.revenue", "max:props.revenue"
        ]})))
        .await;
    // "12" counts as a number; "n/a" is skipped.
    assert_eq!(
        answer["results"],
        json!([{"dimensions": [], "metrics": [8, 5, 47.5, 15.833333, 10.0, 25.5]}])
    );
    assert_eq!(
        answer["query"]["date_range"],
        json!([
            "2026-03-01T00:00:00+01:00",
            "2026-03-31T23:59:59.999999+02:00"
        ])
    );
    assert_eq!(answer["query"]["timezone"], "Europe/Berlin");
}

async fn breakdowns_sort_by_the_first_metric_then_by_dimension(backend: Backend) {
    let app = seeded(backend).await;
    let answer = app
        .query(&march(
            json!({"metrics": ["events", "users", "percentage"], "dimensions": ["event:name"]}),
        ))
        .await;
    assert_eq!(
        rows(&answer),
        vec![
            (
                vec![json!("purchase")],
                vec![json!(3), json!(3), json!(60.0)]
            ),
            (vec![json!("signup")], vec![json!(3), json!(3), json!(60.0)]),
            (
                vec![json!("identify")],
                vec![json!(1), json!(1), json!(20.0)]
            ),
            (vec![json!("page")], vec![json!(1), json!(1), json!(20.0)]),
        ]
    );
}

async fn every_dimension_reads_its_field(backend: Backend) {
    let app = seeded(backend).await;
    let values = |answer: Value| -> Vec<(Value, u64)> {
        rows(&answer)
            .into_iter()
            .map(|(d, m)| (d[0].clone(), m[0].as_u64().unwrap()))
            .collect()
    };
    let by = |dimension: &str| {
        march(
            json!({"metrics": ["events"], "dimensions": [dimension], "order_by": [[dimension, "asc"]]}),
        )
    };
    assert_eq!(
        values(app.query(&by("event:type")).await),
        vec![
            (json!("identify"), 1),
            (json!("page"), 1),
            (json!("track"), 6)
        ]
    );
    assert_eq!(
        values(app.query(&by("event:page")).await),
        vec![(json!("/"), 1), (json!("/signup"), 2), (Value::Null, 5)]
    );
    assert_eq!(
        values(app.query(&by("event:url")).await),
        vec![
            (
                json!("https://shop.example/?utm_source=ads&utm_medium=cpc"),
                1
            ),
            (Value::Null, 7)
        ]
    );
    assert_eq!(
        values(app.query(&by("event:referrer")).await),
        vec![(json!("https://google.com/"), 1), (Value::Null, 7)]
    );
    assert_eq!(
        values(app.query(&by("event:utm_source")).await),
        vec![(json!("ads"), 1), (json!("news"), 1), (Value::Null, 6)]
    );
    assert_eq!(
        values(app.query(&by("event:utm_medium")).await),
        vec![(json!("cpc"), 1), (Value::Null, 7)]
    );
    for empty in ["event:utm_campaign", "event:utm_term", "event:utm_content"] {
        assert_eq!(
            values(app.query(&by(empty)).await),
            vec![(Value::Null, 8)],
            "{empty}"
        );
    }
    assert_eq!(
        values(app.query(&by("event:library")).await),
        vec![(json!("analytics.js"), 1), (Value::Null, 7)]
    );
    assert_eq!(
        values(app.query(&by("event:locale")).await),
        vec![(json!("de-DE"), 1), (Value::Null, 7)]
    );
    // Traits of identify calls count as properties.
    assert_eq!(
        values(app.query(&by("event:props:plan")).await),
        vec![
            (json!("free"), 2),
            (json!("pro"), 3),
            (json!("team"), 1),
            (Value::Null, 2)
        ]
    );
    assert_eq!(
        values(app.query(&by("event:props:cart.items")).await),
        vec![(json!("3"), 1), (Value::Null, 7)]
    );
    assert_eq!(
        values(app.query(&by("event:context:app.version")).await),
        vec![(json!("2.1"), 1), (Value::Null, 7)]
    );
    assert_eq!(
        values(app.query(&by("user:id")).await),
        vec![
            (json!("a9"), 1),
            (json!("u1"), 2),
            (json!("u2"), 2),
            (json!("u3"), 2),
            (json!("u4"), 1)
        ]
    );
}

async fn each_filter_operator_and_their_nesting(backend: Backend) {
    let app = seeded(backend).await;
    assert_eq!(
        count_where(&app, json!(["is", "event:name", ["signup", "purchase"]])).await,
        6
    );
    assert_eq!(
        count_where(&app, json!(["is", "event:props:plan", ["pro"]])).await,
        3
    );
    // Events without the property match the negations.
    assert_eq!(
        count_where(&app, json!(["is_not", "event:props:plan", ["pro"]])).await,
        5
    );
    assert_eq!(
        count_where(&app, json!(["contains", "event:page", ["sign"]])).await,
        2
    );
    assert_eq!(
        count_where(&app, json!(["contains_not", "event:page", ["sign"]])).await,
        6
    );
    assert_eq!(
        count_where(
            &app,
            json!(["matches", "event:referrer", ["google\\.com/$"]])
        )
        .await,
        1
    );
    assert_eq!(
        count_where(
            &app,
            json!(["matches_not", "event:name", ["^sign", "^pur"]])
        )
        .await,
        2
    );
    assert_eq!(
        count_where(&app, json!(["gt", "event:props:revenue", [12]])).await,
        1
    );
    assert_eq!(
        count_where(&app, json!(["gte", "event:props:revenue", [12]])).await,
        2
    );
    assert_eq!(
        count_where(&app, json!(["lt", "event:props:revenue", ["12"]])).await,
        1
    );
    assert_eq!(
        count_where(&app, json!(["lte", "event:props:revenue", [25.5]])).await,
        3
    );
    assert_eq!(
        count_where(&app, json!(["is_set", "event:props:plan"])).await,
        6
    );
    assert_eq!(
        count_where(&app, json!(["is_not_set", "event:props:plan"])).await,
        2
    );
    assert_eq!(
        count_where(
            &app,
            json!([
                "or",
                [
                    ["is", "event:name", ["signup"]],
                    [
                        "and",
                        [
                            ["is", "event:name", ["purchase"]],
                            ["not", ["is", "user:id", ["u1"]]]
                        ]
                    ]
                ]
            ])
        )
        .await,
        5
    );
    assert_eq!(
        count_where(
            &app,
            json!([
                ["is", "event:name", ["signup"]],
                ["is", "event:props:plan", ["free"]]
            ])
        )
        .await,
        2
    );
    assert_eq!(
        count_where(&app, json!(["not", ["is_set", "event:props:plan"]])).await,
        2
    );
}

async fn pagination_reports_totals_and_what_is_left(backend: Backend) {
    let app = seeded(backend).await;
    let answer = app
        .query(&march(json!({
            "metrics": ["events"], "dimensions": ["event:name"],
            "include": {"total_rows": true}, "pagination": {"limit": 2, "offset": 1}
        })))
        .await;
    let names: Vec<Value> = rows(&answer)
        .into_iter()
        .map(|(d, _)| d[0].clone())
        .collect();
    assert_eq!(names, vec![json!("signup"), json!("identify")]);
    assert_eq!(answer["meta"]["total_rows"], 4);
    assert_eq!(answer["meta"]["has_more"], true);
    assert!(answer["meta"]["warning"]
        .as_str()
        .unwrap()
        .contains("4 rows match"));

    let answer = app
        .query(&march(json!({"metrics": ["events"], "dimensions": ["event:name"], "order_by": [["event:name", "desc"]]})))
        .await;
    let names: Vec<Value> = rows(&answer)
        .into_iter()
        .map(|(d, _)| d[0].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            json!("signup"),
            json!("purchase"),
            json!("page"),
            json!("identify")
        ]
    );
    assert_eq!(answer["meta"]["has_more"], false);
}

async fn days_are_cut_in_the_query_timezone_with_every_label(backend: Backend) {
    let app = seeded(backend).await;
    let answer = app
        .query(&march(json!({"metrics": ["events"], "dimensions": ["time:day"], "include": {"time_labels": true}})))
        .await;
    let labels = answer["meta"]["time_labels"].as_array().unwrap();
    assert_eq!(labels.len(), 31);
    assert_eq!(labels[0], "2026-03-01T00:00:00+01:00");
    assert_eq!(
        labels[29], "2026-03-30T00:00:00+02:00",
        "after the change to summer time"
    );
    let counts: Vec<u64> = rows(&answer)
        .iter()
        .map(|(_, m)| m[0].as_u64().unwrap())
        .collect();
    assert_eq!(&counts[..6], &[1, 2, 2, 2, 1, 0]);
    assert_eq!(counts.iter().sum::<u64>(), 8);
    assert_eq!(rows(&answer)[1].0, vec![json!("2026-03-02T00:00:00+01:00")]);

    // In UTC the 00:30 signup belongs to February.
    let answer = app
        .query(&march(json!({"metrics": ["events"], "timezone": "UTC"})))
        .await;
    assert_eq!(answer["results"][0]["metrics"][0], 7);

    let weeks = app
        .query(&march(
            json!({"metrics": ["events"], "dimensions": ["time:week"]}),
        ))
        .await;
    assert_eq!(
        rows(&weeks),
        vec![
            (vec![json!("2026-02-23T00:00:00+01:00")], vec![json!(1)]),
            (vec![json!("2026-03-02T00:00:00+01:00")], vec![json!(7)]),
        ]
    );
    let months = app
        .query(&march(
            json!({"metrics": ["users"], "dimensions": ["time:month"]}),
        ))
        .await;
    assert_eq!(
        rows(&months),
        vec![(vec![json!("2026-03-01T00:00:00+01:00")], vec![json!(5)])]
    );
}

async fn send_at(app: &TestApp, times: &[&str]) {
    let batch: Vec<Value> = times
        .iter()
        .map(|t| json!({"type": "track", "event": "tick", "userId": "u", "timestamp": t}))
        .collect();
    let response = app.post("/v1/batch", &json!({ "batch": batch })).await;
    assert_eq!(response.status(), 200);
}

fn labelled_counts(answer: &Value) -> Vec<(String, u64)> {
    rows(answer)
        .into_iter()
        .filter(|(_, m)| m[0].as_u64().unwrap() > 0)
        .map(|(d, m)| (d[0].as_str().unwrap().to_owned(), m[0].as_u64().unwrap()))
        .collect()
}

async fn daylight_saving_days_keep_real_hours_in_berlin_and_new_york(backend: Backend) {
    let app = spawn_app_on(backend).await;
    // Berlin, 25 October 2026: 02:30 happens twice. New York, 8 March 2026: no 02:xx.
    send_at(
        &app,
        &[
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:30:00Z",
        ],
    )
    .await;

    let hours = |zone: &str, day: &str| {
        json!({"metrics": ["events"], "date_range": [day, day], "timezone": zone,
               "dimensions": ["time:hour"], "include": {"time_labels": true}})
    };
    let berlin = app.query(&hours("Europe/Berlin", "2026-10-25")).await;
    assert_eq!(berlin["meta"]["time_labels"].as_array().unwrap().len(), 25);
    assert_eq!(
        labelled_counts(&berlin),
        vec![
            ("2026-10-25T02:00:00+02:00".into(), 1),
            ("2026-10-25T02:00:00+01:00".into(), 1)
        ]
    );
    let new_york = app.query(&hours("America/New_York", "2026-03-08")).await;
    assert_eq!(
        new_york["meta"]["time_labels"].as_array().unwrap().len(),
        23
    );
    assert_eq!(
        labelled_counts(&new_york),
        vec![
            ("2026-03-08T01:00:00-05:00".into(), 1),
            ("2026-03-08T03:00:00-04:00".into(), 1)
        ]
    );

    let days = |zone: &str, day: &str| {
        json!({"metrics": ["events"], "date_range": [day, day], "timezone": zone,
               "dimensions": ["time:day"], "include": {"time_labels": true}})
    };
    let berlin = app.query(&days("Europe/Berlin", "2026-10-25")).await;
    assert_eq!(
        berlin["meta"]["time_labels"],
        json!(["2026-10-25T00:00:00+02:00"])
    );
    assert_eq!(
        labelled_counts(&berlin),
        vec![("2026-10-25T00:00:00+02:00".into(), 2)]
    );
    let new_york = app.query(&days("America/New_York", "2026-03-08")).await;
    assert_eq!(
        labelled_counts(&new_york),
        vec![("2026-03-08T00:00:00-05:00".into(), 2)]
    );
}

async fn half_hour_zones_bucket_on_their_own_hours(backend: Backend) {
    let app = spawn_app_on(backend).await;
    // 00:15 on 2 March in Kolkata (+05:30).
    send_at(&app, &["2026-03-01T18:45:00Z"]).await;
    let query = |dimension: &str| {
        json!({"metrics": ["events"], "date_range": ["2026-03-01", "2026-03-03"],
               "timezone": "Asia/Kolkata", "dimensions": [dimension]})
    };
    assert_eq!(
        labelled_counts(&app.query(&query("time:day")).await),
        vec![("2026-03-02T00:00:00+05:30".into(), 1)]
    );
    assert_eq!(
        labelled_counts(&app.query(&query("time:hour")).await),
        vec![("2026-03-02T00:00:00+05:30".into(), 1)]
    );
    assert_eq!(
        labelled_counts(&app.query(&query("time:minute")).await),
        vec![("2026-03-02T00:15:00+05:30".into(), 1)]
    );
}

async fn relative_ranges_are_computed_from_now(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let now = chrono::Utc::now();
    let ago = |days: i64| {
        (now - chrono::Duration::days(days) - chrono::Duration::seconds(1)).to_rfc3339()
    };
    let times = [ago(0), ago(1), ago(3), ago(40), ago(400)];
    send_at(&app, &times.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let count = |range: &str| {
        let app = &app;
        let range = range.to_owned();
        async move {
            let answer = app
                .query(&json!({"metrics": ["events"], "date_range": range, "timezone": "UTC"}))
                .await;
            answer["results"][0]["metrics"][0].as_u64().unwrap()
        }
    };
    let today = now.date_naive();
    let dates: Vec<chrono::NaiveDate> = times
        .iter()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .date_naive()
        })
        .collect();
    let expected = |keep: &dyn Fn(chrono::NaiveDate) -> bool| {
        dates.iter().filter(|d| keep(**d)).count() as u64
    };
    use chrono::Datelike;
    assert_eq!(count("today").await, expected(&|d| d == today));
    assert_eq!(
        count("yesterday").await,
        expected(&|d| d == today.pred_opt().unwrap())
    );
    assert_eq!(
        count("7d").await,
        expected(&|d| d > today - chrono::Duration::days(7))
    );
    assert_eq!(
        count("30d").await,
        expected(&|d| d > today - chrono::Duration::days(30))
    );
    assert_eq!(
        count("month").await,
        expected(&|d| d.year() == today.year() && d.month() == today.month())
    );
    assert_eq!(count("year").await, expected(&|d| d.year() == today.year()));
    assert_eq!(count("all").await, 5);
}

async fn a_read_key_sees_its_own_project_only(backend: Backend) {
    let app = seeded(backend).await;
    let query = march(json!({"metrics": ["events"]}));
    let (status, answer) = app.query_with(OTHER_READ_KEY, &query).await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][0]["metrics"][0], 0);
    let (status, names) = app
        .get_json(
            OTHER_READ_KEY,
            "/v1/events/names?date_range=2026-03-01,2026-03-31",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(names["items"], json!([]));
}

async fn keys_are_checked_and_bad_queries_name_their_fault(backend: Backend) {
    let app = seeded(backend).await;
    let query = march(json!({"metrics": ["events"]}));
    let (status, body) = app.query_with(WRITE_KEY, &query).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = app.query_with("rk_nobody", &query).await;
    assert_eq!(status, 401);

    let (status, body) = app
        .query_with(
            READ_KEY,
            &march(json!({"metrics": ["events"], "filters": [
                ["is", "event:name", ["a"]], ["is", "event:prop:plan", ["pro"]]
            ]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_query");
    assert_eq!(body["error"]["field"], "filters[1][1]");
    assert_eq!(
        body["error"]["message"],
        "filters[1][1]: unknown dimension \"event:prop:plan\""
    );

    let (status, body) = app
        .query_with(
            READ_KEY,
            &march(json!({"metrics": ["events"], "filters": ["matches", "event:page", ["(["]]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("filters[2][0]"))
    );

    let (status, body) = app
        .query_with(READ_KEY, &json!({"metrics": ["events"]}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("date_range"),
        "{body}"
    );
}

async fn event_names_and_property_keys_are_listed_with_counts(backend: Backend) {
    let app = seeded(backend).await;
    let (status, names) = app
        .get_json(
            READ_KEY,
            "/v1/events/names?date_range=2026-03-01,2026-03-31",
        )
        .await;
    assert_eq!(status, 200, "{names}");
    assert_eq!(
        names["items"],
        json!([
            {"name": "purchase", "events": 3}, {"name": "signup", "events": 3},
            {"name": "identify", "events": 1}, {"name": "page", "events": 1}
        ])
    );
    let (status, keys) = app
        .get_json(
            READ_KEY,
            "/v1/properties?event=purchase&date_range=2026-03-01,2026-03-31",
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(
        keys["items"],
        json!([{"name": "revenue", "events": 3}, {"name": "plan", "events": 2}, {"name": "cart", "events": 1}])
    );
    let (status, _) = app.get_json(WRITE_KEY, "/v1/properties").await;
    assert_eq!(status, 403);
}

async fn a_compared_period_is_answered_in_the_same_request(backend: Backend) {
    let app = seeded(backend).await;
    let answer = app
        .query(
            &json!({"metrics": ["events", "visits"], "dimensions": ["time:day"],
                       "date_range": ["2026-03-04", "2026-03-05"], "compare": "previous_period",
                       "include": {"time_labels": true}}),
        )
        .await;
    let counts = |answer: &Value| -> Vec<(Value, Value, Value)> {
        rows(answer)
            .into_iter()
            .map(|(d, m)| (d[0].clone(), m[0].clone(), m[1].clone()))
            .collect()
    };
    assert_eq!(
        counts(&answer),
        [
            (json!("2026-03-04T00:00:00+01:00"), json!(2), json!(1)),
            (json!("2026-03-05T00:00:00+01:00"), json!(1), json!(1)),
        ]
    );
    let before = &answer["comparison"];
    assert_eq!(
        counts(before),
        [
            (json!("2026-03-02T00:00:00+01:00"), json!(2), json!(2)),
            (json!("2026-03-03T00:00:00+01:00"), json!(2), json!(2)),
        ],
        "{answer}"
    );
    assert_eq!(
        before["query"]["date_range"],
        json!([
            "2026-03-02T00:00:00+01:00",
            "2026-03-03T23:59:59.999999+01:00"
        ])
    );
    assert_eq!(before["meta"]["time_labels"].as_array().unwrap().len(), 2);
    assert!(before.get("comparison").is_none());

    // A year earlier there was nothing; a range of its own is answered as given.
    let yearly = app
        .query(&march(
            json!({"metrics": ["events"], "compare": "year_over_year"}),
        ))
        .await;
    assert_eq!(yearly["results"][0]["metrics"][0], 8);
    assert_eq!(yearly["comparison"]["results"][0]["metrics"][0], 0);
    assert_eq!(
        yearly["comparison"]["query"]["date_range"][0],
        "2025-03-01T00:00:00+01:00"
    );
    let custom = app
        .query(&march(
            json!({"metrics": ["events"], "compare": ["2026-03-02", "2026-03-02"]}),
        ))
        .await;
    assert_eq!(custom["comparison"]["results"][0]["metrics"][0], 2);
    // Without compare, no comparison.
    let plain = app.query(&march(json!({"metrics": ["events"]}))).await;
    assert!(plain.get("comparison").is_none());

    for (compare, range, field) in [
        (json!("last_week"), json!("30d"), "compare"),
        (json!("previous_period"), json!("all"), "compare"),
        (
            json!(["2026-03-05", "2026-03-01"]),
            json!("30d"),
            "compare[1]",
        ),
    ] {
        let (status, refused) = app
            .query_with(
                READ_KEY,
                &json!({"metrics": ["events"], "date_range": range, "compare": compare}),
            )
            .await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"]["field"], field, "{refused}");
    }
}

crate::on_every_backend!(
    totals_count_events_users_and_numeric_properties,
    breakdowns_sort_by_the_first_metric_then_by_dimension,
    every_dimension_reads_its_field,
    each_filter_operator_and_their_nesting,
    pagination_reports_totals_and_what_is_left,
    days_are_cut_in_the_query_timezone_with_every_label,
    daylight_saving_days_keep_real_hours_in_berlin_and_new_york,
    half_hour_zones_bucket_on_their_own_hours,
    relative_ranges_are_computed_from_now,
    a_read_key_sees_its_own_project_only,
    keys_are_checked_and_bad_queries_name_their_fault,
    event_names_and_property_keys_are_listed_with_counts,
    a_compared_period_is_answered_in_the_same_request,
);
