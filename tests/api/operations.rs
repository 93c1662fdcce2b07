use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["storage"], "ok");
}

#[tokio::test]
async fn metrics_use_route_templates_and_count_requests() {
    let app = spawn_app().await;
    app.post("/v1/track", &track("u", "counted")).await;
    app.client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    let metrics = app.metrics().await;
    for name in [
        "analytics_http_requests_total",
        "analytics_http_request_duration_seconds_bucket",
        "analytics_events_accepted_total",
        "analytics_batch_flush_size_events_bucket",
        "analytics_batch_flush_duration_seconds_bucket",
        "analytics_queue_depth_events",
        "analytics_events_stored_total",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_http_requests_total{method=\"POST\",route=\"/v1/track\",status=\"200\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(metrics.contains("route=\"unmatched\""));
    assert!(
        !metrics.contains("/no/such/path"),
        "raw paths never become labels"
    );
    // Acknowledged from the ingest journal: storage takes the event a moment later.
    let mut stored = metric_value(&metrics, "analytics_events_stored_total");
    for _ in 0..100 {
        if stored == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stored = metric_value(&app.metrics().await, "analytics_events_stored_total");
    }
    assert_eq!(stored, 1.0);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    let honoured = app
        .client
        .post(app.url("/v1/track"))
        .header("x-request-id", "trace-me-123")
        .json(&track("u", "e"))
        .send()
        .await
        .unwrap();
    assert_eq!(honoured.status(), 401);
    assert_eq!(honoured.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn unknown_routes_answer_404_json() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_committed_openapi_file_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.yaml"))
            .expect("api/openapi.yaml exists; run scripts/generate.sh");
    let generated = analytics::api::openapi::openapi_yaml();
    assert!(
        committed == generated,
        "api/openapi.yaml is out of date with the code: run scripts/generate.sh"
    );
    assert!(generated.starts_with("openapi: 3.1"));
    for path in [
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/v1/export",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            generated.contains(&format!("  {path}:\n")),
            "{path} is documented"
        );
    }
}

#[tokio::test]
async fn the_contract_and_its_reference_page_are_served_offline() {
    let app = spawn_app().await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["info"]["title"], "analytics");
    assert!(spec["paths"]["/v1/batch"]["post"].is_object());

    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "no asset is loaded from the internet"
    );
    let script = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
}
