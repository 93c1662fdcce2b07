//! HTTP ingest through Kafka: validated events are produced, acknowledged by
//! the broker, then consumed into storage; a broker that does not answer
//! turns into 503, never into a silent loss.

use std::time::Duration;

use serde_json::json;

use super::broker::{self, brokers, create_topics};
use super::{kafka_section, readiness, settle_at, use_kafka, EVENT_TIME};
use crate::enrichment::CHROME_WINDOWS;
use crate::helpers::{metric_value, spawn_app_with};

#[tokio::test]
async fn http_events_travel_through_the_topic_keyed_by_project_and_user() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let app = spawn_app_with(|config| {
        let mut section = kafka_section(&brokers, &topic, &dead_letters);
        section.ingest_via_kafka = true;
        use_kafka(config, section);
    })
    .await;
    let (status, body) = readiness(&app).await;
    assert_eq!(
        (status, &body["checks"]["kafka"]),
        (200, &json!("ok")),
        "{body}"
    );

    let response = app
        .post(
            "/v1/batch",
            &json!({"batch": [
                {"type": "track", "event": "Signed Up", "userId": "ann", "messageId": "h1", "timestamp": EVENT_TIME,
                 "context": {"userAgent": CHROME_WINDOWS}},
                {"type": "page", "anonymousId": "v-9", "name": "Pricing", "timestamp": EVENT_TIME},
                {"type": "track", "userId": "ann"},
                {"type": "identify", "userId": "ann", "traits": {"plan": "pro"}, "timestamp": EVENT_TIME},
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected"][0]["index"], 2);
    assert_eq!(body["rejected"][0]["field"], "event");

    assert_eq!(settle_at(&app, 3, Duration::from_secs(30)).await, 3);
    let records = broker::read_topic(&brokers, &topic, 3, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 3);
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(rdkafka::Message::key(r).unwrap()).into_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["shop:ann", "shop:ann", "shop:v-9"]);
    for record in &records {
        assert_eq!(
            broker::header(record, "analytics-project").as_deref(),
            Some("shop")
        );
        let value: serde_json::Value =
            serde_json::from_slice(rdkafka::Message::payload(record).unwrap()).unwrap();
        assert!(
            value["receivedAt"].is_string() && value["messageId"].is_string(),
            "{value}"
        );
        assert!(
            value.get("writeKey").is_none(),
            "keys never travel: {value}"
        );
        // The sender's address travels, for the consumer to locate it.
        assert_eq!(value["context"]["ip"], "127.0.0.1", "{value}");
    }
    // What was stored is what the HTTP tier validated, field for field.
    let exported = app.export().await;
    let signed_up = exported.iter().find(|e| e["messageId"] == "h1").unwrap();
    assert_eq!(signed_up["event"], "Signed Up");
    assert_eq!(signed_up["timestamp"], "2026-03-10T10:00:00Z");
    // The consumer enriched it and dropped the address (store_ip is off).
    assert!(
        exported.iter().all(|e| e["context"]["ip"].is_null()),
        "{exported:?}"
    );
    if crate::enrichment::regexes_installed() {
        let answer = app
            .query(&json!({"metrics": ["events"], "date_range": ["2026-03-01", "2026-03-31"],
                           "dimensions": ["visit:browser"], "filters": [["is", "event:name", ["Signed Up"]]]}))
            .await;
        assert_eq!(
            answer["results"],
            json!([{"dimensions": ["Chrome"], "metrics": [1]}])
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_broker_that_does_not_acknowledge_gets_503_and_readiness_says_so() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|config| {
        let mut section = kafka_section(&format!("127.0.0.1:{port}"), "events", "events_dlq");
        section.ingest_via_kafka = true;
        section.consume = false;
        section.produce_timeout = Duration::from_secs(1);
        use_kafka(config, section);
    })
    .await;
    let response = app
        .post("/v1/track", &json!({"userId": "u", "event": "e"}))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "broker_unavailable");

    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body["checks"]["kafka"], "ok", "{body}");
    assert_eq!(body["checks"]["storage"], "ok", "{body}");
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_kafka_produce_errors_total{target=\"events\"}"
        ),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, "analytics_events_accepted_total"),
        0.0
    );
    app.stop().await;
}
