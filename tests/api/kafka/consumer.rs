//! The consumer worker: records from a plain producer land in storage once
//! each; bad ones go to the dead-letter topic with their reason; two members
//! of one group share the partitions.

use std::time::Duration;

use serde_json::json;

use super::broker::{self, brokers, create_topics};
use super::{
    count_events, kafka_section, settle_at, track_message, track_messages, use_kafka,
    wait_for_metric, EVENT_TIME,
};
use analytics::config::{KafkaConfig, Secret};
use analytics::storage::clickhouse::ClickHouseOptions;

use crate::helpers::{
    clickhouse_support, metric_value, spawn_app_in, spawn_app_with, Backend, TestApp,
};
use crate::on_every_backend;

async fn plain_producer_records_are_stored_once_and_queryable(backend: Backend) {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let producer = broker::producer(&brokers);
    // 400 messages, 40 of them sent twice, and 20 naming the project by header.
    let mut values = track_messages("m", 400);
    values.extend(track_messages("m", 40));
    broker::produce(&producer, &topic, &values).await;
    let by_header: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            serde_json::to_vec(&json!({
                "type": "page", "anonymousId": format!("visitor-{i}"), "name": "Home",
                "messageId": format!("h-{i}"), "timestamp": EVENT_TIME,
            }))
            .unwrap()
        })
        .collect();
    broker::produce_with_header(
        &producer,
        &topic,
        &by_header,
        Some(("analytics-project", "shop")),
    )
    .await;

    let app = spawn_app_with(|config| {
        backend.configure(config);
        use_kafka(config, kafka_section(&brokers, &topic, &dead_letters));
    })
    .await;
    assert_eq!(settle_at(&app, 420, Duration::from_secs(60)).await, 420);
    let answer = app
        .query(
            &json!({"metrics": ["events", "users"], "date_range": ["2026-03-01", "2026-03-31"],
                       "dimensions": ["event:type"], "order_by": [["event:type", "asc"]]}),
        )
        .await;
    assert_eq!(
        answer["results"],
        json!([
            {"dimensions": ["page"], "metrics": [20, 20]},
            {"dimensions": ["track"], "metrics": [400, 10]},
        ])
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_kafka_messages_consumed_total"),
        460.0
    );
    assert_eq!(
        metric_value(&metrics, "analytics_kafka_messages_stored_total"),
        460.0
    );
    assert_eq!(
        metric_value(&metrics, "analytics_kafka_dead_letters_total"),
        0.0
    );
    app.stop().await;
}

on_every_backend!(plain_producer_records_are_stored_once_and_queryable);

#[tokio::test]
async fn consumed_events_are_enriched_as_http_ones_and_bots_are_consumed_without_being_stored() {
    let Some(brokers) = brokers() else {
        return;
    };
    if !crate::enrichment::regexes_installed() {
        return;
    }
    let (topic, dead_letters) = create_topics(&brokers).await;
    let producer = broker::producer(&brokers);
    let message = |id: &str, user_agent: &str| {
        serde_json::to_vec(&json!({
            "type": "page", "anonymousId": id, "messageId": id, "timestamp": EVENT_TIME,
            "context": {"userAgent": user_agent, "page": {"url": "https://shop.example/"}},
            "writeKey": crate::helpers::WRITE_KEY,
        }))
        .unwrap()
    };
    let values = vec![
        message("person", crate::enrichment::CHROME_WINDOWS),
        message("crawler", crate::enrichment::GOOGLEBOT),
        message("person-2", crate::enrichment::CHROME_WINDOWS),
    ];
    broker::produce(&producer, &topic, &values).await;
    let app = spawn_app_with(|config| {
        use_kafka(config, kafka_section(&brokers, &topic, &dead_letters));
    })
    .await;
    let dropped = wait_for_metric(
        &app,
        "analytics_events_dropped_total{reason=\"bot_user_agent\"}",
        |count| count >= 1.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(dropped, 1.0);
    assert_eq!(settle_at(&app, 2, Duration::from_secs(60)).await, 2);
    let answer = app
        .query(
            &json!({"metrics": ["events"], "date_range": ["2026-03-01", "2026-03-31"],
                       "dimensions": ["visit:browser", "visit:device"]}),
        )
        .await;
    assert_eq!(
        answer["results"],
        json!([{"dimensions": ["Chrome", "desktop"], "metrics": [2]}])
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_kafka_dead_letters_total"),
        0.0
    );
    app.stop().await;
}

#[tokio::test]
async fn records_that_can_never_be_stored_go_to_the_dead_letter_topic_with_their_reason() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let producer = broker::producer(&brokers);
    let bad: [(&[u8], &str); 4] = [
        (b"{\"type\": \"track\",", "malformed_json"),
        (
            br#"{"type":"track","userId":"u","writeKey":"wk_test_shop_0001"}"#,
            "missing_field",
        ),
        (
            br#"{"type":"track","event":"x","userId":"u","writeKey":"wk_nobody_000"}"#,
            "unknown_write_key",
        ),
        (
            br#"{"type":"track","event":"x","userId":"u"}"#,
            "no_project",
        ),
    ];
    let mut values = vec![track_message("good-1", "u1")];
    values.extend(bad.iter().map(|(value, _)| value.to_vec()));
    values.push(track_message("good-2", "u2"));
    // One partition's worth of order is enough: send them one by one.
    for value in &values {
        broker::produce(&producer, &topic, std::slice::from_ref(value)).await;
    }

    let app = spawn_app_with(|config| {
        use_kafka(config, kafka_section(&brokers, &topic, &dead_letters));
    })
    .await;
    assert_eq!(settle_at(&app, 2, Duration::from_secs(30)).await, 2);
    let letters = broker::read_topic(&brokers, &dead_letters, 4, Duration::from_secs(30)).await;
    assert_eq!(letters.len(), 4);
    for (value, reason) in bad {
        let letter = letters
            .iter()
            .find(|letter| rdkafka::Message::payload(*letter) == Some(value))
            .unwrap_or_else(|| panic!("no dead letter for {reason}"));
        assert_eq!(
            broker::header(letter, "analytics-error-reason").as_deref(),
            Some(reason)
        );
        assert!(!broker::header(letter, "analytics-error-message")
            .unwrap()
            .is_empty());
        assert_eq!(
            broker::header(letter, "analytics-source-topic"),
            Some(topic.clone())
        );
        let partition: i32 = broker::header(letter, "analytics-source-partition")
            .unwrap()
            .parse()
            .unwrap();
        let offset: i64 = broker::header(letter, "analytics-source-offset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((0..3).contains(&partition) && offset >= 0);
    }
    let seen = wait_for_metric(
        &app,
        "analytics_kafka_dead_letters_total",
        |v| v >= 4.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(seen, 4.0);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_kafka_dead_letters_total{reason=\"malformed_json\"}"
        ),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_commits_what_was_stored_so_a_restart_reads_nothing_twice() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let mut section = kafka_section(&brokers, &topic, &dead_letters);
    // No periodic commit: only the shutdown commit can move the group on.
    // Statistics (lag) often enough to watch.
    section.options = [
        ("auto.commit.interval.ms", "600000"),
        ("statistics.interval.ms", "200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Secret::new(v)))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let producer = broker::producer(&brokers);
    broker::produce(&producer, &topic, &track_messages("first", 300)).await;
    let app = spawn_app_in(dir.path(), |config| use_kafka(config, section.clone())).await;
    assert_eq!(settle_at(&app, 300, Duration::from_secs(30)).await, 300);
    app.stop().await;

    broker::produce(&producer, &topic, &track_messages("second", 100)).await;
    let app = spawn_app_in(dir.path(), |config| use_kafka(config, section)).await;
    assert_eq!(settle_at(&app, 400, Duration::from_secs(30)).await, 400);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_kafka_messages_consumed_total"),
        100.0,
        "the first run's records were committed at shutdown, so none is read again"
    );
    // Lag counts from the committed offsets: the 100 new records, committed
    // by nobody yet, across the three partitions.
    let lag = wait_for_metric(
        &app,
        "analytics_kafka_consumer_lag_messages",
        |v| v == 100.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(lag, 100.0);
    let partitions = app
        .metrics()
        .await
        .matches("analytics_kafka_consumer_lag_messages{")
        .count();
    assert_eq!(partitions, 3);
    app.stop().await;
}

/// A group member writing to `storage`, a ClickHouse database that other
/// members share, as a scaled-out deployment does.
async fn member(storage: &ClickHouseOptions, section: &KafkaConfig) -> TestApp {
    let (storage, section) = (storage.clone(), section.clone());
    spawn_app_with(move |config| {
        Backend::ClickHouse.configure(config);
        config.storage.url = storage.url;
        config.storage.database = storage.database;
        use_kafka(config, section);
    })
    .await
}

/// Waits until the members hold all three partitions between them, each some.
async fn wait_until_each_holds_partitions(apps: &[TestApp]) {
    let mut assigned = vec![0.0; apps.len()];
    for _ in 0..150 {
        for (i, app) in apps.iter().enumerate() {
            assigned[i] = metric_value(&app.metrics().await, "analytics_kafka_assigned_partitions");
        }
        if assigned.iter().all(|&n| n > 0.0) && assigned.iter().sum::<f64>() == 3.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("partitions not shared: {assigned:?}");
}

async fn consumed_by_each(apps: &[TestApp]) -> Vec<f64> {
    let mut consumed = Vec::new();
    for app in apps {
        consumed.push(metric_value(
            &app.metrics().await,
            "analytics_kafka_messages_consumed_total",
        ));
    }
    consumed
}

#[tokio::test]
async fn two_consumers_in_one_group_share_the_partitions() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let section = kafka_section(&brokers, &topic, &dead_letters);
    let Some(storage) = clickhouse_support::test_options() else {
        return;
    };
    let apps = vec![
        member(&storage, &section).await,
        member(&storage, &section).await,
    ];
    wait_until_each_holds_partitions(&apps).await;

    broker::produce(
        &broker::producer(&brokers),
        &topic,
        &track_messages("s", 3_000),
    )
    .await;
    assert_eq!(
        settle_at(&apps[0], 3_000, Duration::from_secs(60)).await,
        3_000
    );
    assert_eq!(count_events(&apps[1]).await, 3_000);
    let consumed = consumed_by_each(&apps).await;
    assert!(
        consumed.iter().all(|&n| n > 0.0),
        "each member consumed a share: {consumed:?}"
    );
    assert_eq!(consumed.iter().sum::<f64>(), 3_000.0, "{consumed:?}");
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
async fn a_rebalance_commits_what_was_stored_before_partitions_move() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let mut section = kafka_section(&brokers, &topic, &dead_letters);
    // No periodic commit: only the commit before revocation can move the group on.
    section
        .options
        .insert("auto.commit.interval.ms".into(), Secret::new("600000"));
    let Some(storage) = clickhouse_support::test_options() else {
        return;
    };
    let producer = broker::producer(&brokers);
    let first = member(&storage, &section).await;
    broker::produce(&producer, &topic, &track_messages("early", 600)).await;
    assert_eq!(settle_at(&first, 600, Duration::from_secs(30)).await, 600);

    // A second member joins: the first gives up partitions, committing first.
    let apps = vec![first, member(&storage, &section).await];
    wait_until_each_holds_partitions(&apps).await;
    broker::produce(&producer, &topic, &track_messages("late", 600)).await;
    assert_eq!(
        settle_at(&apps[0], 1_200, Duration::from_secs(60)).await,
        1_200
    );
    let consumed = consumed_by_each(&apps).await;
    assert_eq!(
        consumed.iter().sum::<f64>(),
        1_200.0,
        "the joining member re-read nothing the first had stored: {consumed:?}"
    );
    for app in apps {
        app.stop().await;
    }
}
