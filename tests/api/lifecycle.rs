use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn events_survive_a_restart_and_dedup_spans_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |_| {}).await;
    for i in 0..5 {
        let event = json!({"userId": "u", "event": "persisted", "messageId": format!("p{i}")});
        assert_eq!(app.post("/v1/track", &event).await.status(), 200);
    }
    app.stop().await;

    let app = spawn_app_in(dir.path(), |_| {}).await;
    assert_eq!(app.export().await.len(), 5);
    let again = json!({"userId": "u", "event": "persisted", "messageId": "p3"});
    assert_eq!(app.post("/v1/track", &again).await.status(), 200);
    let fresh = json!({"userId": "u", "event": "persisted", "messageId": "p5"});
    assert_eq!(app.post("/v1/track", &fresh).await.status(), 200);
    assert_eq!(app.export().await.len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_writes_queued_events_before_stopping() {
    let dir = tempfile::tempdir().unwrap();
    // A long linger keeps the events queued when shutdown begins.
    let mut app = spawn_app_in(dir.path(), |config| {
        config.processor.batch_max_wait = Some(Duration::from_secs(3));
    })
    .await;
    let mut requests = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/v1/track");
        requests.push(tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(WRITE_KEY, Some(""))
                .json(&json!({"userId": "u", "event": "queued", "messageId": format!("q{i}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_queue_depth_events"),
        20.0,
        "{metrics}"
    );
    app.begin_stop();
    let mut acknowledged = 0;
    for request in requests {
        if matches!(request.await.unwrap(), Ok(200)) {
            acknowledged += 1;
        }
    }
    assert_eq!(
        acknowledged, 20,
        "in-flight requests are answered during the drain"
    );
    app.wait_stopped().await;

    let app = spawn_app_in(dir.path(), |_| {}).await;
    assert_eq!(app.export().await.len(), 20);
    app.stop().await;
}
