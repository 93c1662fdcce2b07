//! Browsers as clients: CORS on ingest (and only where configured on reads),
//! the documents analytics.js and RudderStack load, their paths and bodies.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_TYPE, ORIGIN, VARY,
};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, READ_KEY, WRITE_KEY};

const PAGE: &str = "https://shop.example";

fn header(response: &Response, name: impl reqwest::header::AsHeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header(ORIGIN, origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,x-retry-count",
        )
        .send()
        .await
        .unwrap()
}

/// POSTs `body` as analytics.js does: `text/plain`, the key inside, from a page.
async fn post_from_page(app: &TestApp, path: &str, origin: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .header(ORIGIN, origin)
        .header(CONTENT_TYPE, "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// GETs without any key in the headers; the status and the JSON body.
async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn page_view(name: &str) -> Value {
    json!({
        "writeKey": WRITE_KEY,
        "anonymousId": "visitor-1",
        "name": name,
        "properties": {"path": "/pricing"},
        "context": {"userAgent": "Mozilla/5.0", "page": {"path": "/pricing"}}
    })
}

#[tokio::test]
async fn a_preflight_is_answered_with_what_the_page_asked_for() {
    let app = spawn_app().await;
    for path in [
        "/v1/t",
        "/v1/batch",
        "/beacon/v1/batch",
        "/v1/projects/x/settings",
    ] {
        let response = preflight(&app, path, PAGE).await;
        assert_eq!(response.status(), 204, "{path}");
        assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), PAGE);
        assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_CREDENTIALS), "true");
        assert_eq!(
            header(&response, ACCESS_CONTROL_ALLOW_HEADERS),
            "authorization,content-type,x-retry-count"
        );
        assert_eq!(header(&response, ACCESS_CONTROL_MAX_AGE), "86400");
        assert!(header(&response, VARY).contains("origin"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn analytics_js_paths_store_text_plain_bodies_and_mirror_the_origin() {
    let app = spawn_app().await;
    let response = post_from_page(&app, "/v1/p", PAGE, &page_view("Pricing")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), PAGE);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_CREDENTIALS), "true");
    assert!(header(&response, VARY).contains("origin"));

    let mut track = page_view("ignored");
    track["event"] = json!("Signed Up");
    let response = post_from_page(&app, "/v1/t", PAGE, &track).await;
    assert_eq!(response.status(), 200);

    let batch = json!({"writeKey": WRITE_KEY, "batch": [
        {"type": "identify", "anonymousId": "visitor-1", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "track", "anonymousId": "visitor-1", "event": "Upgraded"}
    ]});
    let response = post_from_page(&app, "/v1/b", PAGE, &batch).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 2);

    let stored = app.export().await;
    let kinds: Vec<(&str, &str)> = stored
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["event"].as_str().or(e["name"].as_str()).unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("page", "Pricing"),
        ("track", "Signed Up"),
        ("identify", ""),
        ("track", "Upgraded"),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    assert_eq!(stored.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn analytics_js_telemetry_is_answered_and_not_stored() {
    let app = spawn_app().await;
    let response = post_from_page(
        &app,
        "/v1/m",
        PAGE,
        &json!({"series": [{"type": "Counter"}]}),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), PAGE);
    assert!(app.export().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_analytics_js_settings_send_every_event_here_and_nowhere_else() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url(&format!("/v1/projects/{WRITE_KEY}/settings")))
        .header(ORIGIN, PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), PAGE);
    let settings: Value = response.json().await.unwrap();
    let integrations = settings["integrations"].as_object().unwrap();
    assert_eq!(integrations.keys().collect::<Vec<_>>(), ["Segment.io"]);
    let segment = &integrations["Segment.io"];
    assert_eq!(segment["apiKey"], WRITE_KEY);
    let host = app.address.trim_start_matches("http://");
    assert_eq!(segment["apiHost"], format!("{host}/v1"));
    assert_eq!(segment["protocol"], "http");
    assert_eq!(settings["metrics"]["sampleRate"], 0);
    assert_eq!(settings["remotePlugins"], json!([]));

    let unknown = app
        .client
        .get(app.url("/v1/projects/wk_nobody_0001/settings"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let read_key = app
        .client
        .get(app.url(&format!("/v1/projects/{READ_KEY}/settings")))
        .send()
        .await
        .unwrap();
    assert_eq!(read_key.status(), 404, "a read key is not a source");
    app.stop().await;
}

#[tokio::test]
async fn a_public_url_is_what_the_settings_point_browsers_at() {
    let app = spawn_app_with(|config| {
        config.ingest.public_url = Some("https://analytics.shop.example/collect/".into());
    })
    .await;
    let (_, settings) = get(&app, &format!("/v1/projects/{WRITE_KEY}/settings")).await;
    let segment = &settings["integrations"]["Segment.io"];
    assert_eq!(segment["apiHost"], "analytics.shop.example/collect/v1");
    assert_eq!(segment["protocol"], "https");
    app.stop().await;
}

#[tokio::test]
async fn rudderstack_loads_its_source_and_sends_beacons_with_the_key_in_the_query() {
    let app = spawn_app().await;
    let (status, config) = get(
        &app,
        &format!("/sourceConfig/?p=npm&v=3.11.0&writeKey={WRITE_KEY}"),
    )
    .await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["source"]["enabled"], true);
    assert_eq!(config["source"]["writeKey"], WRITE_KEY);
    assert_eq!(config["source"]["destinations"], json!([]));
    let basic = app
        .client
        .get(app.url("/sourceConfig"))
        .basic_auth(WRITE_KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let (status, _) = get(&app, "/sourceConfig?writeKey=wk_nobody_0001").await;
    assert_eq!(status, 401);

    let beacon = json!({"batch": [
        {"type": "page", "anonymousId": "visitor-2", "name": "Home"},
        {"type": "track", "anonymousId": "visitor-2", "event": "Clicked"}
    ], "sentAt": "2026-12-01T10:00:00.000Z"});
    let response = post_from_page(
        &app,
        &format!("/beacon/v1/batch?writeKey={WRITE_KEY}"),
        PAGE,
        &beacon,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), PAGE);
    assert_eq!(app.export().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_project_listing_its_origins_refuses_other_pages_with_403() {
    let app = spawn_app_with(|config| {
        for project in &mut config.projects {
            project.allowed_origins = vec![PAGE.into(), "https://*.blog.example".into()];
        }
    })
    .await;
    let refused = post_from_page(
        &app,
        "/v1/p",
        "https://elsewhere.example",
        &page_view("Home"),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        header(&refused, ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://elsewhere.example",
        "the page may read why it was refused"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert_eq!(body["error"]["setting"], "projects[].allowed_origins");
    assert!(body["error"]["message"].as_str().unwrap().contains("shop"));

    let preflight_refused = preflight(&app, "/v1/p", "https://elsewhere.example").await;
    assert_eq!(preflight_refused.status(), 403);
    assert_eq!(header(&preflight_refused, ACCESS_CONTROL_ALLOW_ORIGIN), "");

    for origin in [PAGE, "https://www.blog.example"] {
        assert_eq!(preflight(&app, "/v1/p", origin).await.status(), 204);
        let accepted = post_from_page(&app, "/v1/p", origin, &page_view("Home")).await;
        assert_eq!(accepted.status(), 200, "{origin}");
    }
    let server_side = app
        .post(
            "/v1/page",
            &json!({"anonymousId": "server", "name": "Home"}),
        )
        .await;
    assert_eq!(server_side.status(), 200, "no Origin: not a browser");
    assert_eq!(app.export().await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn read_routes_answer_pages_only_from_configured_origins() {
    let closed = spawn_app().await;
    let response = preflight(&closed, "/v1/query", PAGE).await;
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), "");
    let response = closed
        .client
        .get(closed.url("/v1/events/names"))
        .bearer_auth(READ_KEY)
        .header(ORIGIN, PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), "");
    closed.stop().await;

    let open = spawn_app_with(|config| {
        config.read.allowed_origins = vec!["https://dashboard.example".into()];
    })
    .await;
    let response = preflight(&open, "/v1/query", "https://dashboard.example").await;
    assert!(response.status().is_success());
    assert_eq!(
        header(&response, ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://dashboard.example"
    );
    let response = preflight(&open, "/v1/query", PAGE).await;
    assert_eq!(header(&response, ACCESS_CONTROL_ALLOW_ORIGIN), "");
    open.stop().await;
}

#[tokio::test]
async fn the_tracker_is_served_as_javascript_and_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/js/script.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
    let tag = header(&response, "etag").to_owned();
    assert!(tag.starts_with('"') && tag.len() > 2, "{tag}");
    let script = response.text().await.unwrap();
    assert!(script.contains("/api/event"));
    assert!(script.len() < 8 * 1024, "a few KB: {} bytes", script.len());
    let again = app
        .client
        .get(app.url("/js/script.js"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.text().await.unwrap(), "");
}
