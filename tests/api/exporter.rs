//! The exporter worker on real storage: business gauges on `/metrics` match
//! what was ingested, on every backend, and a storage outage shows as errors
//! and missing gauges, never as a crash.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::helpers::{metric_value, spawn_app_with, Backend, TestApp, OTHER_WRITE_KEY};
use crate::on_every_backend;
use crate::tcp_proxy::TcpProxy;

/// How often the exporter runs in these tests.
const INTERVAL: Duration = Duration::from_millis(200);

async fn exporting_app(backend: Backend) -> TestApp {
    spawn_app_with(|config| {
        backend.configure(config);
        config.exporter.interval = INTERVAL;
        config.exporter.top_events = 2;
    })
    .await
}

/// Polls `/metrics` until `ready` accepts it, for at most 20 seconds.
async fn metrics_when(app: &TestApp, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = app.metrics().await;
        if ready(&metrics) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gauges never got there:\n{metrics}"
        );
        tokio::time::sleep(INTERVAL / 2).await;
    }
}

fn gauge(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn business_gauges_match_what_was_ingested(backend: Backend) {
    let app = exporting_app(backend).await;
    let two_hours_ago = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let three_days_ago = (Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let mut batch = Vec::new();
    for (user, event, times) in [("a", "signup", 2), ("b", "signup", 2), ("a", "view", 3)] {
        for _ in 0..times {
            batch.push(json!({"type": "track", "userId": user, "event": event}));
        }
    }
    batch.push(json!({"type": "track", "userId": "c", "event": "click"}));
    // An anonymous visitor who turns out to be `a`: one person, not two.
    batch.push(json!({"type": "track", "anonymousId": "anon-1", "event": "click"}));
    batch.push(json!({"type": "identify", "anonymousId": "anon-1", "userId": "a"}));
    // Active today but not in the last 5 minutes; and long ago.
    batch
        .push(json!({"type": "track", "userId": "d", "event": "view", "timestamp": two_hours_ago}));
    batch.push(
        json!({"type": "track", "userId": "e", "event": "view", "timestamp": three_days_ago}),
    );
    assert_eq!(
        app.post("/v1/batch", &json!({ "batch": batch }))
            .await
            .status(),
        200
    );
    let other = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(OTHER_WRITE_KEY, Some(""))
        .json(&json!({"userId": "z", "event": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    let shop_events = "analytics_project_recent_events{event=\"signup\",project=\"shop\"}";
    let other_events = "analytics_project_recent_events{event=\"ping\",project=\"other\"}";
    // A run of the exporter after both projects' events were stored.
    let metrics = metrics_when(&app, |m| {
        gauge(m, shop_events) == Some(4.0) && gauge(m, other_events) == Some(1.0)
    })
    .await;
    let recent = |event: &str| {
        gauge(
            &metrics,
            &format!("analytics_project_recent_events{{event=\"{event}\",project=\"shop\"}}"),
        )
    };
    // Top 2 names, then the rest: click x2 and the identify call.
    assert_eq!(recent("view"), Some(3.0), "{metrics}");
    assert_eq!(recent("(other)"), Some(3.0), "{metrics}");
    assert_eq!(recent("click"), None, "beyond the top names: {metrics}");
    let users = |project: &str, window: &str| {
        gauge(
            &metrics,
            &format!("analytics_project_active_users{{project=\"{project}\",window=\"{window}\"}}"),
        )
    };
    assert_eq!(
        users("shop", "5m"),
        Some(3.0),
        "a (merged with anon-1), b, c: {metrics}"
    );
    assert_eq!(users("shop", "1d"), Some(4.0), "and d: {metrics}");
    assert_eq!(users("other", "5m"), Some(1.0), "{metrics}");
    assert_eq!(
        gauge(
            &metrics,
            "analytics_project_recent_events{event=\"ping\",project=\"other\"}"
        ),
        Some(1.0)
    );
    let freshness = gauge(
        &metrics,
        "analytics_project_ingest_freshness_seconds{project=\"shop\"}",
    )
    .unwrap();
    assert!((0.0..60.0).contains(&freshness), "{freshness}");
    assert_eq!(
        metric_value(&metrics, "analytics_exporter_errors_total"),
        0.0
    );
    app.stop().await;
}

on_every_backend!(business_gauges_match_what_was_ingested);

#[tokio::test]
async fn a_storage_outage_shows_as_errors_and_missing_gauges_then_recovers() {
    if !crate::helpers::clickhouse_available() {
        return;
    }
    let proxy = TcpProxy::in_front_of_clickhouse().await;
    let app = spawn_app_with(|config| {
        Backend::ClickHouse.configure(config);
        config.storage.url = proxy.url();
        config.exporter.interval = INTERVAL;
    })
    .await;
    assert_eq!(
        app.post("/v1/track", &crate::helpers::track("u", "e"))
            .await
            .status(),
        200
    );
    let series = "analytics_project_active_users{project=\"shop\",window=\"5m\"}";
    metrics_when(&app, |m| gauge(m, series) == Some(1.0)).await;

    proxy.set_up(false);
    let metrics = metrics_when(&app, |m| {
        metric_value(m, "analytics_exporter_errors_total") >= 2.0 && gauge(m, series).is_none()
    })
    .await;
    assert!(
        metric_value(
            &metrics,
            "analytics_exporter_errors_total{query=\"recent_totals\"}"
        ) >= 1.0,
        "{metrics}"
    );
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the service keeps running");
    let failed_at = metric_value(
        &metrics,
        "analytics_exporter_last_success_timestamp_seconds",
    );

    proxy.set_up(true);
    let metrics = metrics_when(&app, |m| gauge(m, series) == Some(1.0)).await;
    assert!(
        metric_value(
            &metrics,
            "analytics_exporter_last_success_timestamp_seconds"
        ) > failed_at,
        "{metrics}"
    );
    app.stop().await;
}
