use serde_json::{json, Value};

use crate::helpers::*;

async fn send_at(app: &TestApp, id: &str, timestamp: &str) {
    let event = json!({"userId": "u", "event": id, "messageId": id, "timestamp": timestamp});
    assert_eq!(app.post("/v1/track", &event).await.status(), 200);
}

fn ids(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn export_is_in_timestamp_order_and_filters_by_range() {
    let app = spawn_app().await;
    // Sent out of order; the shop's timezone is Europe/Berlin (UTC+1 in February).
    send_at(&app, "c", "2026-02-03T12:00:00Z").await;
    send_at(&app, "a", "2026-02-01T00:30:00Z").await;
    send_at(&app, "d", "2026-02-03T23:30:00Z").await;
    send_at(&app, "b", "2026-01-31T22:59:59Z").await;

    assert_eq!(ids(&app.export().await), vec!["b", "a", "c", "d"]);
    // Exact instants: from inclusive, to exclusive.
    let query = "?from=2026-02-01T00:30:00Z&to=2026-02-03T23:30:00Z";
    assert_eq!(ids(&app.export_with(READ_KEY, query).await), vec!["a", "c"]);
    // Dates are whole days in the project's timezone: Berlin's 2026-02-01 starts at 23:00 UTC.
    let query = "?from=2026-02-01&to=2026-02-03";
    assert_eq!(ids(&app.export_with(READ_KEY, query).await), vec!["a", "c"]);
    let query = "?from=2026-02-04";
    assert_eq!(ids(&app.export_with(READ_KEY, query).await), vec!["d"]);
}

#[tokio::test]
async fn bad_ranges_answer_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?from=tomorrowish", "from"),
        ("?to=2026-13-01", "to"),
        ("?from=2026-03-02&to=2026-03-01", "to"),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/v1/export{query}")))
            .bearer_auth(READ_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn a_large_export_streams_every_event() {
    let app = spawn_app().await;
    let mut expected = 0;
    for chunk in 0..4 {
        let events: Vec<Value> = (0..2_000)
            .map(|i| json!({"type": "track", "userId": format!("u{i}"), "event": "bulk", "messageId": format!("{chunk}-{i}"), "properties": {"i": i}}))
            .collect();
        expected += events.len();
        assert_eq!(
            app.post("/v1/batch", &json!({"batch": events}))
                .await
                .status(),
            200
        );
    }
    let response = app
        .client
        .get(app.url("/v1/export"))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let text = response.text().await.unwrap();
    assert_eq!(text.lines().count(), expected);
}
