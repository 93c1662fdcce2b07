use serde_json::{json, Value};

use crate::helpers::*;

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_write_key_form_is_accepted() {
    let app = spawn_app().await;
    let basic = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(WRITE_KEY, None::<&str>)
        .json(&json!({"userId": "u1", "event": "basic", "messageId": "a1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let bearer = app
        .client
        .post(app.url("/v1/track"))
        .bearer_auth(WRITE_KEY)
        .json(&json!({"userId": "u1", "event": "bearer", "messageId": "a2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let in_body = app
        .client
        .post(app.url("/v1/track"))
        .json(&json!({"writeKey": WRITE_KEY, "userId": "u1", "event": "body", "messageId": "a3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_body.status(), 200);
    let in_batch = app
        .client
        .post(app.url("/v1/batch"))
        .json(&json!({"writeKey": WRITE_KEY, "batch": [{"type": "track", "userId": "u1", "event": "batch", "messageId": "a4"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_batch.status(), 200);

    let names: Vec<_> = app
        .export()
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["basic", "batch", "bearer", "body"]);
}

#[tokio::test]
async fn missing_and_unknown_keys_get_401_with_json() {
    let app = spawn_app().await;
    let missing = app
        .client
        .post(app.url("/v1/track"))
        .json(&track("u", "e"))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(missing).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));

    let unknown = app
        .client
        .post(app.url("/v1/track"))
        .bearer_auth("wk_nobody_knows_me")
        .json(&track("u", "e"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown).await.0, 401);

    let unknown_in_body = app
        .client
        .post(app.url("/v1/track"))
        .json(&json!({"writeKey": "wk_nobody_knows_me", "userId": "u", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown_in_body).await.0, 401);

    let read_key_for_ingest = app
        .client
        .post(app.url("/v1/track"))
        .bearer_auth(READ_KEY)
        .json(&track("u", "e"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(read_key_for_ingest).await.0, 401);

    let write_key_for_export = app
        .client
        .get(app.url("/v1/export"))
        .bearer_auth(WRITE_KEY)
        .send()
        .await
        .unwrap();
    // A write key is known, but it may not read: 403, not 401.
    assert_eq!(
        error_code(write_key_for_export).await,
        (403, "forbidden".to_owned())
    );

    let no_key_for_export = app.client.get(app.url("/v1/export")).send().await.unwrap();
    assert_eq!(error_code(no_key_for_export).await.0, 401);

    assert!(app.export().await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_bad_header_key_is_refused_even_with_a_good_body_key() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/track"))
        .bearer_auth("wk_nobody_knows_me")
        .json(&json!({"writeKey": WRITE_KEY, "userId": "u", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn projects_are_isolated() {
    let app = spawn_app().await;
    app.post("/v1/track", &track("shop-user", "shop-event"))
        .await;
    let other = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(OTHER_WRITE_KEY, Some(""))
        .json(&track("other-user", "other-event"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    let shop = app.export().await;
    assert_eq!(shop.len(), 1);
    assert_eq!(shop[0]["event"], "shop-event");
    let other = app.export_with(OTHER_READ_KEY, "").await;
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["event"], "other-event");
}
