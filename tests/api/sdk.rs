//! Real client libraries against the service: they must work unchanged.

use serde_json::{json, Value};

use crate::helpers::*;

/// Runs `program script HOST WRITE_KEY` and returns the shop's stored events by messageId.
async fn send_with(app: &TestApp, program: &str, script: &str) -> impl Fn(&str) -> Value {
    let output = tokio::process::Command::new(program)
        .arg(format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(&app.address)
        .arg(WRITE_KEY)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("{program} runs (scripts/setup-dev.sh installs the library): {e}")
        });
    assert!(
        output.status.success(),
        "the library reported errors: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = app.export().await;
    assert_eq!(events.len(), 6, "{events:?}");
    move |id: &str| -> Value {
        events
            .iter()
            .find(|e| e["messageId"] == id)
            .unwrap_or_else(|| panic!("{id} stored: {events:?}"))
            .clone()
    }
}

#[tokio::test]
async fn segments_python_library_works_unchanged() {
    if !requirements::python_module("segment.analytics") {
        return;
    }
    let app = spawn_app().await;
    let by_id = send_with(&app, "python3", "segment_python.py").await;
    let track = by_id("sdk-track");
    assert_eq!(track["type"], "track");
    assert_eq!(track["event"], "Order Completed");
    assert_eq!(
        track["properties"],
        json!({"revenue": 42.5, "currency": "EUR"})
    );
    assert_eq!(track["context"]["library"]["name"], "analytics-python");
    assert!(track["sentAt"].is_string(), "the batch's sentAt is applied");
    assert_eq!(by_id("sdk-identify")["traits"]["plan"], "pro");
    assert_eq!(by_id("sdk-page")["name"], "Getting Started");
    assert_eq!(by_id("sdk-screen")["type"], "screen");
    assert_eq!(by_id("sdk-group")["groupId"], "acme");
    assert_eq!(by_id("sdk-alias")["previousId"], "sdk-anon");
}

#[tokio::test]
async fn segments_node_library_works_unchanged() {
    if !requirements::program("node")
        || !requirements::file(
            "tests/sdk/node/node_modules/@segment/analytics-node",
            "the npm package @segment/analytics-node",
        )
    {
        return;
    }
    let app = spawn_app().await;
    let by_id = send_with(&app, "node", "node/send.mjs").await;
    let track = by_id("node-track");
    assert_eq!(track["event"], "Plan Upgraded");
    assert_eq!(track["properties"], json!({"plan": "team", "seats": 5}));
    // The library sends `timestamp` and the batch's `sentAt`; skew correction
    // (receivedAt - (sentAt - timestamp)) moves it by the request's transit time only.
    let stored =
        chrono::DateTime::parse_from_rfc3339(track["timestamp"].as_str().unwrap()).unwrap();
    let sent = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:30:00Z").unwrap();
    let shift = (stored - sent).num_milliseconds();
    assert!((0..5_000).contains(&shift), "shifted by {shift} ms");
    assert_eq!(
        track["context"]["library"]["name"],
        "@segment/analytics-node"
    );
    assert_eq!(
        by_id("node-identify")["traits"]["email"],
        "node@example.com"
    );
    assert_eq!(by_id("node-page")["anonymousId"], "node-anon");
    assert_eq!(by_id("node-screen")["name"], "Settings");
    assert_eq!(by_id("node-group")["groupId"], "globex");
    assert_eq!(by_id("node-alias")["previousId"], "node-anon");
}
