//! Events that storage refuses, on a real ClickHouse server made to refuse
//! them (a materialized column that fails for one event name): the writer
//! isolates them, the rest of every batch is stored, and each refusal is
//! reported; over HTTP by index, over Kafka on the dead-letter topic.

use std::time::Duration;

use analytics::storage::clickhouse::ClickHouseOptions;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::kafka::{
    broker, count_events, kafka_section, settle_at, track_message, use_kafka, EVENT_TIME,
};

/// Makes the server refuse every event named `poison` in `options`' database
/// (migrated already): inserting one fails on the server, as bad data does.
async fn poison(options: &ClickHouseOptions) {
    let statement = format!(
        "ALTER TABLE {}.events ADD COLUMN poisoned UInt8 MATERIALIZED throwIf(event_name = 'poison')",
        options.database
    );
    let response = reqwest::Client::new()
        .post(&options.url)
        .body(statement)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_success(), "{}", response.text().await.unwrap());
}

/// A service on a fresh ClickHouse database that refuses `poison` events.
async fn poisoned_app(tweak: impl FnOnce(&mut analytics::config::Config)) -> Option<TestApp> {
    let options = clickhouse_support::test_options()?;
    let database = options.clone();
    let app = spawn_app_with(move |config| {
        Backend::ClickHouse.configure(config);
        config.storage.database = database.database;
        tweak(config);
    })
    .await;
    poison(&options).await;
    Some(app)
}

fn track(id: &str, event: &str) -> Value {
    json!({"type": "track", "userId": "u", "event": event, "messageId": id, "timestamp": EVENT_TIME})
}

#[tokio::test]
async fn a_refused_event_is_rejected_by_index_and_the_others_of_its_group_are_stored() {
    let Some(app) = poisoned_app(|config| {
        // One flush for all three requests.
        config.processor.batch_max_wait = Some(Duration::from_millis(300));
        config.processor.batch_min_events = Some(1_000);
    })
    .await
    else {
        return;
    };
    let bodies = [
        json!({"batch": [track("a1", "signup"), track("a2", "signup")]}),
        json!({"batch": [track("b1", "signup"), track("b2", "poison"), track("b3", "purchase")]}),
        json!({"batch": [track("c1", "purchase")]}),
    ];
    let mut requests = Vec::new();
    for body in bodies {
        let (client, url) = (app.client.clone(), app.url("/v1/batch"));
        requests.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .basic_auth(WRITE_KEY, Some(""))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }));
    }
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    assert_eq!(
        answers[0],
        (200, json!({"success": true, "accepted": 2, "rejected": []}))
    );
    assert_eq!(answers[2].0, 200);
    let (status, body) = &answers[1];
    assert_eq!(*status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["code"], "storage_rejected");

    let mut stored: Vec<String> = app
        .export()
        .await
        .iter()
        .map(|event| event["messageId"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    assert_eq!(stored, ["a1", "a2", "b1", "b3", "c1"]);

    let only = app.post("/v1/track", &track("alone", "poison")).await;
    assert_eq!(only.status(), 400);
    let body: Value = only.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_events");
    assert_eq!(body["error"]["rejected"][0]["code"], "storage_rejected");
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_events_rejected_total{reason=\"storage_rejected\"}"
        ),
        2.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refused_kafka_record_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let Some(brokers) = broker::brokers() else {
        return;
    };
    let (topic, dead_letters) = broker::create_topics(&brokers).await;
    let poisoned = serde_json::to_vec(&json!({
        "type": "track", "event": "poison", "userId": "u", "messageId": "k-poison",
        "timestamp": EVENT_TIME, "writeKey": WRITE_KEY
    }))
    .unwrap();
    let producer = broker::producer(&brokers);
    // One partition: the poisoned record sits between the good ones.
    for value in [
        track_message("k-1", "u1"),
        poisoned.clone(),
        track_message("k-2", "u2"),
    ] {
        broker::produce_to_partition(&producer, &topic, 0, &value).await;
    }
    let section = kafka_section(&brokers, &topic, &dead_letters);
    let Some(app) = poisoned_app(move |config| use_kafka(config, section)).await else {
        return;
    };
    assert_eq!(settle_at(&app, 2, Duration::from_secs(60)).await, 2);
    let letters = broker::read_topic(&brokers, &dead_letters, 1, Duration::from_secs(30)).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(rdkafka::Message::payload(letter), Some(poisoned.as_slice()));
    assert_eq!(
        broker::header(letter, "analytics-error-reason").as_deref(),
        Some("storage_rejected")
    );
    assert_eq!(
        broker::header(letter, "analytics-source-offset").as_deref(),
        Some("1")
    );
    // The partition goes on.
    broker::produce_to_partition(&producer, &topic, 0, &track_message("k-3", "u3")).await;
    assert_eq!(settle_at(&app, 3, Duration::from_secs(60)).await, 3);
    assert_eq!(count_events(&app).await, 3);
    app.stop().await;
}
