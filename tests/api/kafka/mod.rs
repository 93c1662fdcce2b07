//! The Kafka paths against a real Kafka-protocol broker: the consumer worker,
//! dead letters, HTTP ingest through the topic, and faults.

pub mod broker;
mod consumer;
mod crash;
mod faults;
mod http;

use std::time::{Duration, Instant};

use analytics::config::{Config, KafkaConfig};
use serde_json::{json, Value};

use crate::helpers::{metric_value, TestApp, WRITE_KEY};

/// Every event of these tests happens on this day, inside [`count_events`]'s range.
pub const EVENT_TIME: &str = "2026-03-10T10:00:00Z";

/// The `[kafka]` section of a test: its own topics and group, short lingers.
pub fn kafka_section(brokers: &str, topic: &str, dead_letters: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        dead_letter_topic: dead_letters.to_owned(),
        group_id: format!("{topic}_group"),
        batch_max_wait: Duration::from_millis(20),
        produce_timeout: Duration::from_secs(10),
        ..KafkaConfig::default()
    }
}

/// Points `config` at Kafka.
pub fn use_kafka(config: &mut Config, section: KafkaConfig) {
    config.kafka = Some(section);
}

/// A Segment track message naming the shop by its write key.
pub fn track_message(message_id: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": message_id,
        "timestamp": EVENT_TIME,
        "properties": {"revenue": 10},
        "writeKey": WRITE_KEY,
    }))
    .unwrap()
}

/// Track messages `prefix-0` .. `prefix-(count-1)` for ten users.
pub fn track_messages(prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| track_message(&format!("{prefix}-{i}"), &format!("user-{}", i % 10)))
        .collect()
}

/// Stored events of the shop in March 2026, by the query API.
pub async fn count_events(app: &TestApp) -> u64 {
    count_events_at(&app.client, &app.address).await
}

/// [`count_events`] of the service at `base_url`.
pub async fn count_events_at(client: &reqwest::Client, base_url: &str) -> u64 {
    let response = client
        .post(format!("{base_url}/v1/query"))
        .bearer_auth(crate::helpers::READ_KEY)
        .json(&json!({"metrics": ["events"], "date_range": ["2026-03-01", "2026-03-31"]}))
        .send()
        .await
        .expect("query sent");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON answer");
    answer["results"]
        .get(0)
        .and_then(|row| row["metrics"][0].as_u64())
        .unwrap_or(0)
}

/// Polls until the shop holds `expected` events, then checks that the count
/// stays there (nothing doubled by a late redelivery); returns the count seen.
pub async fn settle_at(app: &TestApp, expected: u64, timeout: Duration) -> u64 {
    settle_at_url(&app.client, &app.address, expected, timeout).await
}

/// [`settle_at`] for the service at `base_url`.
pub async fn settle_at_url(
    client: &reqwest::Client,
    base_url: &str,
    expected: u64,
    timeout: Duration,
) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut count = count_events_at(client, base_url).await;
    while count < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        count = count_events_at(client, base_url).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    count_events_at(client, base_url).await
}

/// Polls a metric until `ready` holds for its value or the timeout passes.
pub async fn wait_for_metric(
    app: &TestApp,
    series: &str,
    ready: impl Fn(f64) -> bool,
    timeout: Duration,
) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let value = metric_value(&app.metrics().await, series);
        if ready(value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz`: status and body.
pub async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
