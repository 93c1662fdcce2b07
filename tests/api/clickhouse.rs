//! The service on ClickHouse through an outage: readiness reports it, ingest
//! answers 503 while it cannot write, and both recover by themselves.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::tcp_proxy::TcpProxy;

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn batch(ids: &[&str]) -> serde_json::Value {
    let events: Vec<_> = ids
        .iter()
        .map(|id| json!({"type": "track", "userId": "u", "event": "e", "messageId": id}))
        .collect();
    json!({ "batch": events })
}

#[tokio::test]
async fn an_outage_is_reported_answered_503_and_recovered_from_without_loss() {
    if !crate::helpers::clickhouse_available() {
        return;
    }
    let proxy = TcpProxy::in_front_of_clickhouse().await;
    let app = spawn_app_with(|config| {
        Backend::ClickHouse.configure(config);
        config.storage.url = proxy.url();
    })
    .await;

    assert_eq!(
        app.post("/v1/batch", &batch(&["a1", "a2"])).await.status(),
        200
    );
    assert_eq!(readiness(&app).await.0, 200);

    proxy.set_up(false);
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["storage"]
            .as_str()
            .unwrap()
            .contains("ClickHouse"),
        "{body}"
    );
    let refused = app.post("/v1/batch", &batch(&["b1"])).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));

    proxy.set_up(true);
    let mut ready = false;
    for _ in 0..50 {
        if readiness(&app).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readiness did not recover");
    // The client sends the refused batch again, then carries on.
    assert_eq!(app.post("/v1/batch", &batch(&["b1"])).await.status(), 200);
    assert_eq!(
        app.post("/v1/batch", &batch(&["c1", "a1"])).await.status(),
        200
    );

    let mut ids: Vec<String> = app
        .export()
        .await
        .into_iter()
        .map(|event| event["messageId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2", "b1", "c1"]);
}
