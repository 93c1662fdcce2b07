use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::helpers::*;

async fn status_and_message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn an_event_over_32_kb_is_refused_with_413() {
    let app = spawn_app().await;
    let big = json!({"userId": "u", "event": "big", "properties": {"blob": "x".repeat(33 * 1024)}});
    let (status, message) = status_and_message(app.post("/v1/track", &big).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("32 KB"), "{message}");

    let just_under =
        json!({"userId": "u", "event": "fits", "properties": {"blob": "x".repeat(31 * 1024)}});
    assert_eq!(app.post("/v1/track", &just_under).await.status(), 200);
}

#[tokio::test]
async fn an_oversized_event_in_a_batch_is_rejected_alone() {
    let app = spawn_app().await;
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "small"},
        {"type": "track", "userId": "u", "event": "big", "properties": {"blob": "x".repeat(33 * 1024)}}
    ]});
    let response = app.post("/v1/batch", &batch).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["code"], "too_large");
    assert!(body["rejected"][0]["message"]
        .as_str()
        .unwrap()
        .contains("32 KB"));

    let only_big = json!({"batch": [batch["batch"][1].clone()]});
    assert_eq!(app.post("/v1/batch", &only_big).await.status(), 413);
}

#[tokio::test]
async fn a_request_over_500_kb_is_refused_with_413() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..40)
        .map(|i| json!({"type": "track", "userId": "u", "event": format!("e{i}"), "properties": {"pad": "y".repeat(14 * 1024)}}))
        .collect();
    let (status, message) =
        status_and_message(app.post("/v1/batch", &json!({"batch": events})).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("500 KB"), "{message}");
    assert!(app.export().await.is_empty());
}

#[tokio::test]
async fn more_than_2500_events_are_refused_with_413() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..2501)
        .map(|_| json!({"type": "track", "userId": "u", "event": "e"}))
        .collect();
    let (status, message) =
        status_and_message(app.post("/v1/batch", &json!({"batch": events})).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("2500"), "{message}");

    let events: Vec<Value> = (0..2500)
        .map(
            |i| json!({"type": "track", "userId": "u", "event": "e", "messageId": format!("m{i}")}),
        )
        .collect();
    let response = app.post("/v1/batch", &json!({"batch": events})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.export().await.len(), 2500);
}

#[tokio::test]
async fn a_zip_bomb_is_refused_without_being_buffered() {
    let app = spawn_app().await;
    // 64 MB of spaces compress to about 64 KB.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let block = vec![b' '; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&block).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 500 * 1024);
    let response = app
        .client
        .post(app.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    let (status, message) = status_and_message(response).await;
    assert_eq!(status, 413);
    assert!(message.contains("decompressed"), "{message}");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let app = spawn_app_with(|config| {
        config.ingest.queue_capacity = 3;
        config.processor.batch_max_wait = Some(std::time::Duration::from_millis(800));
    })
    .await;
    let first = {
        let client = app.client.clone();
        let url = app.url("/v1/batch");
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(WRITE_KEY, Some(""))
                .json(&json!({"batch": [
                    {"type": "track", "userId": "u", "event": "a"},
                    {"type": "track", "userId": "u", "event": "b"}
                ]}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = app
        .post(
            "/v1/batch",
            &json!({"batch": [
                {"type": "track", "userId": "u", "event": "c"},
                {"type": "track", "userId": "u", "event": "d"}
            ]}),
        )
        .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full");
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(app.export().await.len(), 2);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_queue_rejections_total"),
        1.0
    );
}
