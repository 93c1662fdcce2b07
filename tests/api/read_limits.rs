//! The read side under careless or hostile clients: inputs that once
//! panicked get a 400 naming the field, reads stop at their limits with a
//! 4xx naming the setting, a stalled export lets go of its slot, and every
//! error body carries the request id.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_every_backend;

/// 30 events of 10 persons: page, signup, purchase each, in March 2026.
fn thirty_events() -> Value {
    let events: Vec<Value> = (0..30)
        .map(|i| {
            let (event, minute) = match i % 3 {
                0 => (json!({"type": "page", "name": "Home"}), 0),
                1 => (json!({"type": "track", "event": "signup"}), 1),
                _ => (json!({"type": "track", "event": "purchase"}), 2),
            };
            let mut event = event;
            event["userId"] = json!(format!("u{}", i / 3));
            event["messageId"] = json!(format!("m{i}"));
            event["timestamp"] = json!(format!("2026-03-10T10:{minute:02}:00Z"));
            event
        })
        .collect();
    json!({ "batch": events })
}

fn funnel() -> Value {
    json!({"steps": [{"event": "signup"}, {"event": "purchase"}], "date_range": ["2026-03-01", "2026-03-31"]})
}

#[tokio::test]
async fn inputs_that_once_panicked_are_refused_by_field() {
    let app = spawn_app().await;
    let (status, body) = app
        .read_post(
            READ_KEY,
            "/v1/funnel",
            &json!({"steps": [{"event": "a"}, {"event": "b"}], "window": "9999999999999999d", "date_range": "7d"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "window");
    assert_eq!(
        body["error"]["message"],
        "window: must be between 1s and 366d"
    );

    for breakdown in ["session:entry_page", "session:exit_page", "time:day"] {
        let mut request = funnel();
        request["breakdown"] = json!(breakdown);
        let (status, body) = app.read_post(READ_KEY, "/v1/funnel", &request).await;
        assert_eq!(status, 400, "{breakdown}: {body}");
        assert_eq!(body["error"]["field"], "breakdown");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("takes an event or user dimension"),
            "{body}"
        );
    }

    let (status, body) = app
        .query_with(
            READ_KEY,
            &json!({"metrics": ["events"], "date_range": ["0001-01-01", "9999-12-31"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "date_range[0]");

    let (status, body) = app
        .query_with(
            READ_KEY,
            &json!({"metrics": ["events"], "date_range": "7d", "pagination": {"offset": u64::MAX}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "pagination.offset");
    app.stop().await;
}

async fn analyses_stop_at_the_row_limit_naming_the_setting(backend: Backend) {
    let app = spawn_app_with(|config| {
        backend.configure(config);
        config.read.max_rows = 10;
    })
    .await;
    assert_eq!(app.post("/v1/batch", &thirty_events()).await.status(), 200);
    let session_query =
        json!({"metrics": ["sessions"], "date_range": ["2026-03-01", "2026-03-31"]});
    for (path, body) in [("/v1/funnel", funnel()), ("/v1/query", session_query)] {
        let (status, answer) = app.read_post(READ_KEY, path, &body).await;
        assert_eq!(status, 422, "{path}: {answer}");
        let error = &answer["error"];
        assert_eq!(error["code"], "limit_exceeded");
        assert_eq!(error["setting"], "read.max_rows");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("more than 10 event rows"),
            "{error}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "analytics_read_limit_refusals_total{limit=\"rows\"}"
        ) >= 2.0,
        "{metrics}"
    );
    app.stop().await;
}

on_every_backend!(analyses_stop_at_the_row_limit_naming_the_setting);

#[tokio::test]
async fn clickhouse_also_stops_aggregate_queries_at_the_rows_they_scan() {
    if !clickhouse_available() {
        return;
    }
    let app = spawn_app_with(|config| {
        Backend::ClickHouse.configure(config);
        config.read.max_rows = 10;
    })
    .await;
    assert_eq!(app.post("/v1/batch", &thirty_events()).await.status(), 200);
    let (status, answer) = app
        .query_with(
            READ_KEY,
            &json!({"metrics": ["events"], "date_range": ["2026-03-01", "2026-03-31"]}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["setting"], "read.max_rows");
    app.stop().await;
}

#[tokio::test]
async fn error_bodies_carry_the_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/query"))
        .bearer_auth(READ_KEY)
        .header("x-request-id", "req-1234")
        .json(&json!({"metrics": ["hits"], "date_range": "7d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-request-id"], "req-1234");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "req-1234");
    assert_eq!(body["error"]["field"], "metrics[0]");

    let generated = app.client.get(app.url("/v1/export")).send().await.unwrap();
    assert_eq!(generated.status(), 401);
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = generated.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn made_up_methods_are_one_metric_label() {
    let app = spawn_app().await;
    for method in ["BREW", "PROPFIND", "XYZZY"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/v1/query"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let metrics = app.metrics().await;
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    for made_up in ["BREW", "PROPFIND", "XYZZY"] {
        assert!(!metrics.contains(made_up), "{made_up} is a label value");
    }
    app.stop().await;
}

/// Events stored by [`fill`].
const FILLED: usize = 50_000;

/// [`FILLED`] events of about 500 bytes: exported, far more than the
/// sockets between server and client can buffer.
async fn fill(app: &TestApp) {
    for chunk in 0..FILLED / 1_000 {
        let events: Vec<Value> = (0..1_000)
            .map(|i| {
                json!({"type": "track", "userId": format!("u{i}"), "event": "filler",
                       "messageId": format!("f{chunk}-{i}"), "timestamp": "2026-03-10T10:00:00Z",
                       "properties": {"pad": "p".repeat(300)}})
            })
            .collect();
        let response = app.post("/v1/batch", &json!({ "batch": events })).await;
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_stalled_export_holds_its_slot_only_until_the_stall_timeout() {
    let app = spawn_app_with(|config| {
        config.read.max_concurrent_exports = 1;
        config.read.slot_wait = Duration::from_millis(100);
        config.read.export_stall_timeout = Duration::from_millis(800);
    })
    .await;
    fill(&app).await;
    // A client that reads the headers and then nothing.
    let stalled = app
        .client
        .get(app.url("/v1/export"))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(stalled.status(), 200);

    let (status, body) = app.get_json(READ_KEY, "/v1/export").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "busy");
    assert_eq!(body["error"]["setting"], "read.max_concurrent_exports");

    // Ingest goes on meanwhile.
    let event = json!({"userId": "u", "event": "during", "messageId": "during-stall"});
    assert_eq!(app.post("/v1/track", &event).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let exported = app.export().await;
    assert_eq!(exported.len(), FILLED + 1, "the slot is free again");
    drop(stalled);
    app.stop().await;
}
