//! The dashboard: its embedded files as served (types, caching, gzip, the
//! content security policy, nothing from another origin, the size), the
//! option that turns it off, the project endpoint it reads, and the page
//! itself in headless Chromium.

use std::io::Read;

use analytics::api::dashboard::{ASSETS, CONTENT_SECURITY_POLICY};
use serde_json::{json, Value};

use crate::helpers::*;

fn path_of(name: &str) -> String {
    format!("/dashboard/{name}")
}

#[tokio::test]
async fn every_embedded_file_answers_with_its_type_the_policy_and_a_tag() {
    let app = spawn_app().await;
    for asset in ASSETS {
        for path in [path_of(asset.name), "/".to_owned()] {
            if path == "/" && asset.name != "index.html" {
                continue;
            }
            let response = app.client.get(app.url(&path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let headers = response.headers().clone();
            assert_eq!(headers["content-type"], asset.content_type, "{path}");
            assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert!(headers.get("content-encoding").is_none(), "{path}");
            assert_eq!(response.bytes().await.unwrap().as_ref(), asset.body);

            let tag = headers["etag"].to_str().unwrap().to_owned();
            let unchanged = app
                .client
                .get(app.url(&path))
                .header("if-none-match", &tag)
                .send()
                .await
                .unwrap();
            assert_eq!(unchanged.status(), 304, "{path}");

            let gzipped = app
                .client
                .get(app.url(&path))
                .header("accept-encoding", "br, gzip;q=0.8")
                .send()
                .await
                .unwrap();
            assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{path}");
            let compressed = gzipped.bytes().await.unwrap();
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_ref())
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, asset.body, "{path}");
        }
    }
    let missing = app.get("/dashboard/missing.js").await;
    assert_eq!(missing.status(), 404);
}

#[test]
fn no_file_loads_from_another_origin_and_the_page_stays_small() {
    let mut total = 0;
    for asset in ASSETS {
        let text = std::str::from_utf8(asset.body).unwrap();
        total += asset.body.len();
        for scheme in ["http://", "https://"] {
            for (at, _) in text.match_indices(scheme) {
                // The SVG namespace names elements; nothing is fetched from it.
                assert!(
                    text[at..].starts_with("http://www.w3.org/2000/svg"),
                    "{} names an address: {}",
                    asset.name,
                    &text[at..(at + 60).min(text.len())]
                );
            }
        }
        assert!(
            !text.contains("<script>"),
            "{}: no inline script",
            asset.name
        );
        assert!(
            !text.contains(" style=\""),
            "{}: no inline style",
            asset.name
        );
    }
    assert!(total < 150 * 1024, "the dashboard is {total} bytes");
}

#[tokio::test]
async fn with_the_dashboard_off_the_api_alone_is_served() {
    let app = spawn_app_with(|config| config.dashboard.enabled = false).await;
    assert_eq!(app.get("/").await.status(), 404);
    assert_eq!(app.get("/dashboard/app.js").await.status(), 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_read_key_opens_its_project_and_a_write_key_does_not() {
    let app = spawn_app().await;
    let answer = app
        .client
        .get(app.url("/v1/project"))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "shop", "timezone": "Europe/Berlin", "domains": [], "session_timeout_seconds": 1800, "shared": false})
    );
    let refused = app
        .client
        .get(app.url("/v1/project"))
        .bearer_auth(WRITE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// What tests/browser/dashboard.mjs saw of the dashboard at `address`.
async fn drive(address: &str) -> Value {
    let screenshots = std::env::var("ANALYTICS_TEST_SCREENSHOTS").ok();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!(
            "{}/tests/browser/dashboard.mjs",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(address)
        .arg(READ_KEY)
        .args(screenshots);
    crate::browser_sdks::node_json(command).await
}

/// A reverse proxy serving `upstream` under `/analytics`, as a site's web
/// server would: the prefix is taken off before the request goes on.
async fn under_a_sub_path(upstream: String) -> String {
    use axum::response::IntoResponse;
    let client = reqwest::Client::new();
    let proxy = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let Some(rest) = target.strip_prefix("/analytics") else {
                return (axum::http::StatusCode::NOT_FOUND, "outside the sub-path").into_response();
            };
            let (method, headers) = (request.method().clone(), request.headers().clone());
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let mut forwarded = client
                .request(method, format!("{upstream}{rest}"))
                .body(body);
            for (name, value) in &headers {
                if name != "host" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let Ok(answer) = forwarded.send().await else {
                return axum::http::StatusCode::BAD_GATEWAY.into_response();
            };
            let mut response = axum::http::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "transfer-encoding" && name != "connection" {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response
                .body(axum::body::Body::from(bytes))
                .unwrap()
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    format!("http://{address}/analytics")
}

#[tokio::test]
async fn the_page_works_under_a_reverse_proxys_sub_path() {
    if !crate::browser_sdks::browser_available("playwright-core") {
        return;
    }
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/batch", &visits()).await.status(), 200);
    let seen = drive(&under_a_sub_path(app.address.clone()).await).await;
    // Every request stays under /analytics (else it counts as foreign).
    assert_eq!(seen["foreignRequests"], json!([]), "{seen}");
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    assert_eq!(seen["consoleErrorsBefore"], json!([]), "{seen}");
    assert_eq!(seen["stats"][0], json!(["Unique visitors", "4"]), "{seen}");
    assert_eq!(seen["filteredStats"][0], "3", "{seen}");
}

/// Visits of the last days (from Google, from nowhere, one signing up) and
/// one from Google ten days ago.
fn visits() -> Value {
    let now = chrono::Utc::now();
    let page = |visitor: &str, minutes: i64, path: &str, referrer: &str| {
        json!({"type": "page", "anonymousId": visitor,
               "timestamp": (now - chrono::Duration::minutes(minutes)).to_rfc3339(),
               "context": {"userAgent": crate::enrichment::CHROME_WINDOWS,
                           "page": {"path": path, "url": format!("https://shop.example{path}"), "referrer": referrer}}})
    };
    json!({"batch": [
        page("a", 3000, "/", "https://www.google.com/"),
        page("a", 2998, "/pricing", "https://shop.example/"),
        page("b", 1500, "/", ""),
        page("c", 600, "/docs", "https://www.google.com/"),
        page("d", 14_400, "/blog", "https://www.google.com/"),
        {"type": "track", "event": "Signup", "anonymousId": "c", "properties": {"plan": "pro"},
         "timestamp": (now - chrono::Duration::minutes(599)).to_rfc3339(),
         "context": {"page": {"path": "/docs", "url": "https://shop.example/docs"}}},
    ]})
}

async fn the_page_signs_in_shows_the_overview_and_filters_by_a_clicked_row(backend: Backend) {
    if !crate::browser_sdks::browser_available("playwright-core") {
        return;
    }
    let app = spawn_app_on(backend).await;
    assert_eq!(app.post("/v1/batch", &visits()).await.status(), 200);
    let seen = drive(&app.address).await;
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    assert_eq!(seen["consoleErrorsBefore"], json!([]), "{seen}");
    assert_eq!(seen["foreignRequests"], json!([]), "{seen}");
    assert_eq!(seen["ready"], true, "the page marks itself ready: {seen}");
    assert_eq!(seen["project"], "shop · Europe/Berlin");
    assert_eq!(seen["keyInUrl"], false);
    assert_eq!(
        seen["stats"],
        json!([
            ["Unique visitors", "4"],
            ["Total visits", "4"],
            ["Total pageviews", "5"],
            ["Views per visit", "1.25"],
            ["Bounce rate", "50%"],
            ["Visit duration", "45s"]
        ]),
        "{seen}"
    );
    let sources = &seen["panels"][0];
    assert_eq!(sources["title"], "Sources");
    assert_eq!(
        sources["rows"],
        json!(["Organic Search", "Direct"]),
        "{seen}"
    );
    assert_eq!(seen["panels"][4]["rows"], json!(["Signup"]), "{seen}");
    // Clicking "Organic Search" keeps the visits from Google: a, c and d.
    assert_eq!(seen["clickedSource"], "Organic Search");
    assert_eq!(seen["pills"], json!(["channel is Organic Search"]));
    assert_eq!(seen["filteredStats"][0], "3", "{seen}");
    assert_eq!(seen["reopenedStats"], seen["filteredStats"]);
    assert_eq!(seen["reopenedPills"], seen["pills"]);
    assert!(seen["filteredUrl"]
        .as_str()
        .unwrap()
        .contains("visit%3Achannel"));
    // The last 7 days against the 7 before (d's visit): every stat but the
    // duration, which was 0 before, shows its change.
    assert_eq!(seen["phoneDeltas"], 5, "{seen}");
    // Of the four visitors who viewed a page, c signed up a minute later.
    assert_eq!(
        seen["funnel"],
        json!([
            ["1. page", "4 entered"],
            ["2. Signup", "1 (25.0% of all, 25.0% of the step before); 3 dropped off; median 1m after the step before"]
        ]),
        "{seen}"
    );
    let cohort_persons: u64 = seen["cohortSizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|size| size.as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(cohort_persons, 4, "one day's cohort per visitor: {seen}");
    // The funnel by channel shows both channels (a's entry may be either of
    // its two pages, so their order is not asserted); Signup's plan shows.
    let mut split: Vec<&str> = seen["funnelBreakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    split.sort_unstable();
    assert_eq!(split, ["Direct", "Organic Search"], "{seen}");
    assert_eq!(
        seen["goalProperties"],
        json!([{"tabs": ["plan"], "rows": ["pro"]}]),
        "{seen}"
    );
    for view in ["paths", "stickiness", "lifecycle"] {
        let drawn = seen["views"][view].as_array().unwrap();
        assert!(!drawn.is_empty(), "{view} draws its answer: {seen}");
    }
    assert!(
        seen["views"]["paths"][0]
            .as_str()
            .unwrap()
            .starts_with("page"),
        "{seen}"
    );
    assert_eq!(
        seen["views"]["stickiness"][0], "1 of 30 days4",
        "the four visitors each viewed pages on one day: {seen}"
    );
    // Four sessions: a's two pages a couple of minutes apart, the others
    // one page each (c's signup is an event, not a page).
    assert_eq!(
        seen["sessionStats"],
        json!([
            ["Sessions", "4"],
            ["Average duration", "45s"],
            ["Bounce rate", "50%"],
            ["Pages per session", "1.25"],
            ["Events per session", "1.5"]
        ]),
        "{seen}"
    );
    let entry_pages: Vec<&str> = seen["sessionRows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap())
        .collect();
    assert_eq!(entry_pages, ["/", "/blog", "/docs"], "{seen}");
    assert_eq!(seen["sessionRows"][0][1], "2", "{seen}");
    assert!(
        seen["panelError"]
            .as_str()
            .unwrap()
            .contains("unknown dimension \"event:nope\""),
        "{seen}"
    );
    assert_eq!(seen["brokenPanels"], 5);
}

#[tokio::test]
async fn a_share_token_reads_the_overview_and_nothing_else() {
    let app = spawn_app_with(|config| {
        config.projects[0].share_token =
            Some(analytics::config::Secret::new("share_shop_0001_public"));
    })
    .await;
    assert_eq!(app.post("/v1/batch", &visits()).await.status(), 200);
    let token = "share_shop_0001_public";
    let (status, project) = app.get_json(token, "/v1/project").await;
    assert_eq!(
        (status, &project["shared"]),
        (200, &json!(true)),
        "{project}"
    );
    let (status, answer) = app
        .query_with(
            token,
            &json!({"metrics": ["visitors"], "date_range": "30d"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["metrics"][0], 4);
    for (path, body) in [
        (
            "/v1/funnel",
            json!({"steps": [{"event": "page"}, {"event": "Signup"}], "date_range": "30d"}),
        ),
        (
            "/v1/paths",
            json!({"start_event": {"event": "page"}, "date_range": "30d"}),
        ),
    ] {
        let (status, refused) = app.read_post(token, path, &body).await;
        assert_eq!(status, 403, "{path}: {refused}");
        assert!(refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("share token"));
    }
    let (status, _) = app.get_json(token, "/v1/export").await;
    assert_eq!(status, 403);
    let (status, _) = app.get_json(token, "/v1/events/names").await;
    assert_eq!(status, 403);
    // The project's read key says it is no shared view.
    let (_, project) = app.get_json(READ_KEY, "/v1/project").await;
    assert_eq!(project["shared"], false);
}

crate::on_every_backend!(the_page_signs_in_shows_the_overview_and_filters_by_a_clicked_row);
