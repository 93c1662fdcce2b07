use std::io::Write;

use chrono::SubsecRound;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::helpers::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn each_single_event_endpoint_stores_its_type() {
    let app = spawn_app().await;
    let calls = [
        (
            "/v1/track",
            json!({"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}}),
        ),
        (
            "/v1/identify",
            json!({"userId": "u1", "traits": {"email": "u1@example.com"}}),
        ),
        (
            "/v1/page",
            json!({"anonymousId": "a1", "name": "Pricing", "properties": {"path": "/pricing"}}),
        ),
        ("/v1/screen", json!({"anonymousId": "a1", "name": "Home"})),
        (
            "/v1/group",
            json!({"userId": "u1", "groupId": "g1", "traits": {"plan": "team"}}),
        ),
        ("/v1/alias", json!({"userId": "u1", "previousId": "a1"})),
    ];
    for (index, (path, body)) in calls.iter().enumerate() {
        let mut body = body.clone();
        body["timestamp"] = json!(format!("2026-03-01T10:00:0{index}Z"));
        let response = app.post(path, &body).await;
        assert_eq!(response.status(), 200, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            json!({"success": true, "accepted": 1, "rejected": []})
        );
    }
    let events = app.export().await;
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec!["track", "identify", "page", "screen", "group", "alias"]
    );
    assert_eq!(events[0]["event"], "Signed Up");
    assert_eq!(events[0]["properties"], json!({"plan": "pro"}));
    assert_eq!(events[1]["traits"], json!({"email": "u1@example.com"}));
    assert_eq!(events[2]["name"], "Pricing");
    assert_eq!(events[4]["groupId"], "g1");
    assert_eq!(events[5]["previousId"], "a1");
    for event in &events {
        assert_eq!(
            event["messageId"].as_str().unwrap().len(),
            36,
            "generated messageId"
        );
        assert!(event["receivedAt"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn stored_events_keep_the_segment_shape() {
    let app = spawn_app().await;
    let sent = json!({
        "userId": "u42",
        "anonymousId": "anon-42",
        "event": "Order Completed",
        "messageId": "msg-42",
        "timestamp": "2026-03-01T10:00:00.123Z",
        "properties": {"revenue": 19.99, "items": [{"sku": "a"}], "coupon": null},
        "context": {
            "ip": "198.51.100.7",
            "userAgent": "Mozilla/5.0",
            "page": {"path": "/checkout", "referrer": "https://search.example/", "title": "Checkout", "url": "https://shop.example/checkout?utm_source=news"},
            "campaign": {"name": "spring", "medium": "email"},
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "locale": "de-DE",
            "timezone": "Europe/Berlin"
        },
        "integrations": {"All": true}
    });
    assert_eq!(app.post("/v1/track", &sent).await.status(), 200);
    let events = app.export().await;
    let stored = &events[0];
    for field in [
        "userId",
        "anonymousId",
        "event",
        "messageId",
        "properties",
        "integrations",
    ] {
        assert_eq!(stored[field], sent[field], "{field}");
    }
    // The IP serves enrichment and is not kept, unless the project says so.
    let mut context = sent["context"].clone();
    context.as_object_mut().unwrap().remove("ip");
    assert_eq!(stored["context"], context);
    assert_eq!(stored["type"], "track");
    assert_eq!(stored["timestamp"], "2026-03-01T10:00:00.123Z");
}

#[tokio::test]
async fn a_project_that_keeps_ips_stores_the_senders_or_the_one_sent() {
    let app = spawn_app_with(|config| config.projects[0].store_ip = true).await;
    let sent = json!({"batch": [
        {"type": "track", "userId": "u", "event": "a", "messageId": "own",
         "context": {"ip": "198.51.100.7"}},
        {"type": "track", "userId": "u", "event": "b", "messageId": "socket"}
    ]});
    assert_eq!(app.post("/v1/batch", &sent).await.status(), 200);
    let events = app.export().await;
    let ip_of =
        |id: &str| events.iter().find(|e| e["messageId"] == id).unwrap()["context"]["ip"].clone();
    assert_eq!(ip_of("own"), "198.51.100.7");
    assert_eq!(ip_of("socket"), "127.0.0.1");
}

#[tokio::test]
async fn a_batch_stores_valid_events_and_lists_rejected_ones_by_index() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/v1/batch",
            &json!({"batch": [
                {"type": "track", "userId": "u1", "event": "ok-1"},
                {"type": "track", "userId": "u1"},
                {"type": "teleport", "userId": "u1"},
                {"type": "identify", "traits": {"a": 1}},
                {"type": "track", "userId": "u1", "event": "ok-2", "properties": "not an object"},
                {"type": "page", "anonymousId": "a1", "timestamp": "half past ten"},
                {"type": "track", "anonymousId": "a1", "event": "ok-3"}
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    let rejected: Vec<(u64, &str, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "missing_field", "event"),
            (2, "unknown_type", "type"),
            (3, "missing_field", "userId"),
            (4, "invalid_field", "properties"),
            (5, "invalid_field", "timestamp"),
        ]
    );
    let names: Vec<_> = app
        .export()
        .await
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&json!("ok-1")) && names.contains(&json!("ok-3")));

    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_events_rejected_total{reason=\"missing_field\"}"
        ),
        2.0
    );
    assert_eq!(
        metric_value(&metrics, "analytics_events_accepted_total{type=\"track\"}"),
        2.0
    );
}

#[tokio::test]
async fn a_request_with_nothing_valid_answers_400_with_each_reason() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/v1/batch",
            &json!({"batch": [{"type": "track", "userId": "u"}, 7]}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_events");
    assert_eq!(body["error"]["rejected"][0]["field"], "event");
    assert_eq!(body["error"]["rejected"][1]["code"], "not_an_object");

    let single = app.post("/v1/alias", &json!({"userId": "u"})).await;
    assert_eq!(single.status(), 400);
    let body: Value = single.json().await.unwrap();
    assert_eq!(body["error"]["rejected"][0]["field"], "previousId");
}

#[tokio::test]
async fn malformed_json_answers_400_with_the_position() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-type", "application/json")
        .body("{\n  \"batch\": [\n    {\"type\": \"track\",, }\n  ]\n}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 3 column 22"), "{message}");
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&json!({"batch": [
        {"type": "track", "userId": "u", "event": "zipped-1"},
        {"type": "track", "userId": "u", "event": "zipped-2"}
    ]}))
    .unwrap();
    let response = app
        .client
        .post(app.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.export().await.len(), 2);

    let unsupported = app
        .client
        .post(app.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-encoding", "br")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), 415);
}

#[tokio::test]
async fn a_message_id_is_stored_once_across_requests() {
    let app = spawn_app().await;
    let event =
        json!({"userId": "u", "event": "Paid", "messageId": "pay-1", "properties": {"n": 1}});
    for _ in 0..3 {
        assert_eq!(app.post("/v1/track", &event).await.status(), 200);
    }
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "pay-1", "properties": {"n": 2}},
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "pay-2"},
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "pay-2"}
    ]});
    assert_eq!(app.post("/v1/batch", &batch).await.status(), 200);
    let events = app.export().await;
    let ids: Vec<_> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let first = events.iter().find(|e| e["messageId"] == "pay-1").unwrap();
    assert_eq!(first["properties"]["n"], 1, "the first stored copy wins");
    // The same messageId in another project is another event.
    let other = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(OTHER_WRITE_KEY, Some(""))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(app.export_with(OTHER_READ_KEY, "").await.len(), 1);
    let metrics = app.metrics().await;
    // Two repeats of pay-1 alone, one in the batch, and pay-2's second copy.
    assert_eq!(
        metric_value(&metrics, "analytics_events_deduplicated_total"),
        4.0
    );
}

#[tokio::test]
async fn client_clock_skew_is_corrected_with_sent_at() {
    let app = spawn_app().await;
    // The device clock is one hour fast: it stamped the event 30 s before sending.
    let device_now = chrono::Utc::now() + chrono::Duration::hours(1);
    let original = device_now - chrono::Duration::seconds(30);
    let before = chrono::Utc::now();
    let event = json!({
        "userId": "u", "event": "Skewed",
        "originalTimestamp": original.to_rfc3339(),
        "sentAt": device_now.to_rfc3339()
    });
    assert_eq!(app.post("/v1/track", &event).await.status(), 200);
    let after = chrono::Utc::now();
    let stored = &app.export().await[0];
    let timestamp =
        chrono::DateTime::parse_from_rfc3339(stored["timestamp"].as_str().unwrap()).unwrap();
    let received =
        chrono::DateTime::parse_from_rfc3339(stored["receivedAt"].as_str().unwrap()).unwrap();
    assert!(received >= before && received <= after);
    assert_eq!(received - timestamp, chrono::Duration::seconds(30));
    // Times are kept to the microsecond.
    let original = original.trunc_subsecs(6);
    assert_eq!(
        stored["originalTimestamp"].as_str().unwrap(),
        original.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
}

#[tokio::test]
async fn far_future_events_are_clamped_and_counted() {
    let app = spawn_app().await;
    let future = chrono::Utc::now() + chrono::Duration::days(3);
    let event =
        json!({"userId": "u", "event": "From the future", "timestamp": future.to_rfc3339()});
    assert_eq!(app.post("/v1/track", &event).await.status(), 200);
    let stored = &app.export().await[0];
    assert_eq!(stored["timestamp"], stored["receivedAt"]);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_events_clamped_total"),
        1.0
    );
}

#[tokio::test]
async fn a_batch_context_merges_into_each_event() {
    let app = spawn_app().await;
    let batch = json!({
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}, "locale": "en-US"},
        "batch": [
            {"type": "track", "userId": "u", "event": "a", "context": {"locale": "fr-FR"}},
            {"type": "track", "userId": "u", "event": "b"}
        ]
    });
    assert_eq!(app.post("/v1/batch", &batch).await.status(), 200);
    let events = app.export().await;
    let by_name = |name: &str| events.iter().find(|e| e["event"] == name).unwrap().clone();
    assert_eq!(
        by_name("a")["context"],
        json!({"locale": "fr-FR", "library": {"name": "analytics-python", "version": "2.3.3"}})
    );
    assert_eq!(by_name("b")["context"]["locale"], "en-US");
}
