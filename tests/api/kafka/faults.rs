//! Faults around the consumer: storage down for a while, a broker restart.

use std::time::Duration;

use super::broker::{self, brokers, create_topic, create_topics, OwnBroker};
use super::{kafka_section, settle_at, track_messages, use_kafka, wait_for_metric};
use crate::helpers::{metric_value, spawn_app_with, Backend};
use crate::tcp_proxy::TcpProxy;

#[tokio::test]
async fn storage_down_for_a_while_pauses_the_consumer_and_loses_nothing() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    if !crate::helpers::clickhouse_available() {
        return;
    }
    let proxy = TcpProxy::in_front_of_clickhouse().await;
    let app = spawn_app_with(|config| {
        Backend::ClickHouse.configure(config);
        config.storage.url = proxy.url();
        config.processor.write_attempts = 1;
        let mut section = kafka_section(&brokers, &topic, &dead_letters);
        // Small batches, one at a time: an outage fills the pipeline at once.
        section.batch_max_messages = 50;
        section.max_in_flight_batches = 1;
        use_kafka(config, section);
    })
    .await;
    let producer = broker::producer(&brokers);
    broker::produce(&producer, &topic, &track_messages("before", 300)).await;
    assert_eq!(settle_at(&app, 300, Duration::from_secs(60)).await, 300);

    proxy.set_up(false);
    broker::produce(&producer, &topic, &track_messages("during", 300)).await;
    let retries = wait_for_metric(
        &app,
        "analytics_kafka_write_retries_total",
        |v| v >= 3.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(retries >= 3.0, "writes are retried while storage is down");
    let paused = wait_for_metric(
        &app,
        "analytics_kafka_consumer_paused",
        |v| v == 1.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(paused, 1.0, "fetching pauses while the pipeline is full");
    let consumed = metric_value(
        &app.metrics().await,
        "analytics_kafka_messages_consumed_total",
    );
    assert!(
        consumed < 600.0,
        "a paused consumer does not read the whole outage into memory: {consumed}"
    );

    proxy.set_up(true);
    assert_eq!(settle_at(&app, 600, Duration::from_secs(90)).await, 600);
    assert_eq!(
        metric_value(&app.metrics().await, "analytics_kafka_consumer_paused"),
        0.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_broker_restart_is_survived_without_loss_or_doubles() {
    let Some(mut own) = OwnBroker::start() else {
        return;
    };
    let brokers = own.brokers();
    let topic = broker::unique_topic("events");
    let dead_letters = format!("{topic}_dlq");
    create_topic(&brokers, &topic, 3).await;
    create_topic(&brokers, &dead_letters, 1).await;
    let app = spawn_app_with(|config| {
        use_kafka(config, kafka_section(&brokers, &topic, &dead_letters));
    })
    .await;
    broker::produce(
        &broker::producer(&brokers),
        &topic,
        &track_messages("first", 200),
    )
    .await;
    assert_eq!(settle_at(&app, 200, Duration::from_secs(60)).await, 200);

    let own = tokio::task::spawn_blocking(move || {
        own.restart();
        own
    })
    .await
    .unwrap();
    broker::produce(
        &broker::producer(&brokers),
        &topic,
        &track_messages("second", 200),
    )
    .await;
    assert_eq!(settle_at(&app, 400, Duration::from_secs(90)).await, 400);
    app.stop().await;
    drop(own);
}
