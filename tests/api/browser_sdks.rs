//! Real browsers: headless Chromium loads a page on another origin that
//! sends to the service with Segment's analytics.js or RudderStack's SDK
//! (from npm, pointed at the service), or with the service's own tracker
//! (`/js/script.js`), and clicks through it (`tests/browser/drive.mjs`).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

const DRIVER: &str = "tests/browser/drive.mjs";

/// What the page's browser calls itself: Chromium's own agent without the
/// `Headless` marker, which would make its events a bot's.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// Whether Node, Chromium and the driver's npm packages are installed.
pub fn browser_available(package: &str) -> bool {
    requirements::program("node")
        && requirements::program("chromium")
        && crate::enrichment::regexes_installed()
        && requirements::file(
            &format!("tests/browser/node_modules/{package}"),
            &format!("the npm package {package} (tests/browser)"),
        )
}

/// What the driver saw the page do.
struct PageRun {
    report: Value,
}

impl PageRun {
    /// Paths of the page's requests to the service, with their statuses.
    fn requests(&self) -> Vec<(String, u16)> {
        self.report["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap().to_owned(),
                    r["status"].as_u64().unwrap() as u16,
                )
            })
            .collect()
    }
}

/// What a browser driver run by `command` (node and its arguments) printed
/// as JSON, once it finished successfully within two minutes.
pub async fn node_json(mut command: tokio::process::Command) -> Value {
    command.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the browser finishes within two minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the page ran: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("the driver prints JSON")
}

/// Runs the driver's `scenario` against `app`, at most two minutes.
async fn run_page(app: &TestApp, scenario: &str) -> PageRun {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!("{}/{DRIVER}", env!("CARGO_MANIFEST_DIR")))
        .arg(&app.address)
        .arg(WRITE_KEY)
        .arg(scenario)
        .env("USER_AGENT", USER_AGENT);
    let report = node_json(command).await;
    assert_eq!(report["pageErrors"], serde_json::json!([]), "{report}");
    assert_eq!(report["consoleErrors"], serde_json::json!([]), "{report}");
    PageRun { report }
}

/// Browser, OS and device of the shop's events, with their counts.
async fn devices(app: &TestApp) -> Value {
    let (status, body) = app
        .query_with(
            READ_KEY,
            &serde_json::json!({"metrics": ["events"],
                                "dimensions": ["visit:browser", "visit:os", "visit:device"],
                                "date_range": "7d"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"].clone()
}

/// The stored events of one scenario, by their time, once `expected` have
/// arrived (an SDK may call back before its request is answered), or
/// whatever is stored after five seconds.
async fn stored_in_order(app: &TestApp, expected: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut events = app.export().await;
    while events.len() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = app.export().await;
    }
    events.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
    events
}

fn kinds(events: &[Value]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| {
            let label = e["event"]
                .as_str()
                .or(e["name"].as_str())
                .or(e["userId"].as_str())
                .unwrap_or("");
            (e["type"].as_str().unwrap(), label)
        })
        .collect()
}

/// The stored event of this kind and label; requests sent at once may
/// arrive in any order, so events are found, not indexed.
fn find<'a>(events: &'a [Value], kind: &str, label: &str) -> &'a Value {
    let index = kinds(events)
        .iter()
        .position(|k| *k == (kind, label))
        .unwrap_or_else(|| panic!("a {kind} {label:?} is stored: {events:#?}"));
    &events[index]
}

/// What both SDKs must have stored: four events, once each, from the page's
/// browser, on the paths it was on.
fn assert_the_visit_arrived(events: &[Value], run: &PageRun, first_path: &str) {
    let mut seen = kinds(events);
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("identify", "user-1"),
            ("page", "Home"),
            ("page", "Pricing"),
            ("track", "Signed Up"),
        ],
        "{events:#?}"
    );
    let user_agent = run.report["userAgent"].as_str().unwrap();
    assert_eq!(user_agent, USER_AGENT);
    for event in events {
        assert_eq!(event["context"]["userAgent"], user_agent, "{event}");
    }
    assert_eq!(
        find(events, "page", "Home")["context"]["page"]["path"],
        first_path
    );
    assert_eq!(
        find(events, "track", "Signed Up")["properties"]["plan"],
        "pro"
    );
    assert_eq!(
        find(events, "page", "Pricing")["context"]["page"]["path"],
        "/pricing"
    );
    assert_eq!(
        find(events, "identify", "user-1")["traits"]["email"],
        "ada@shop.example"
    );
    let visitor = &events[0]["anonymousId"];
    assert!(visitor.as_str().is_some_and(|id| !id.is_empty()));
    assert!(events.iter().all(|e| e["anonymousId"] == *visitor));
}

#[tokio::test]
async fn segments_analytics_js_sends_from_a_page_on_another_origin() {
    if !browser_available("@segment/analytics-next") {
        return;
    }
    let app = spawn_app().await;
    let run = run_page(&app, "segment").await;
    let requests = run.requests();
    assert_eq!(
        requests[0],
        (format!("/v1/projects/{WRITE_KEY}/settings"), 200),
        "analytics.js loads its settings from the service: {requests:?}"
    );
    // Requests sent at once may be answered in any order.
    let mut sends: Vec<_> = requests[1..]
        .iter()
        .map(|(p, s)| (p.as_str(), *s))
        .collect();
    sends.sort_unstable();
    assert_eq!(
        sends,
        [
            ("/v1/i", 200),
            ("/v1/p", 200),
            ("/v1/p", 200),
            ("/v1/t", 200)
        ]
    );
    let events = stored_in_order(&app, 4).await;
    assert_the_visit_arrived(&events, &run, "/segment.html");
    assert_eq!(
        devices(&app).await,
        serde_json::json!([{"dimensions": ["Chrome", "Linux", "desktop"], "metrics": [4]}])
    );
    assert_eq!(
        find(&events, "page", "Home")["context"]["library"]["name"],
        "analytics.js"
    );
}

#[tokio::test]
async fn rudderstacks_sdk_sends_from_a_page_on_another_origin() {
    if !browser_available("@rudderstack/analytics-js") {
        return;
    }
    let app = spawn_app().await;
    let run = run_page(&app, "rudderstack").await;
    let requests = run.requests();
    assert_eq!(
        requests[0],
        ("/sourceConfig/".to_owned(), 200),
        "the SDK loads its source configuration from the service: {requests:?}"
    );
    assert!(
        requests[1..].iter().all(|(_, status)| *status == 200),
        "{requests:?}"
    );
    let events = stored_in_order(&app, 4).await;
    assert_the_visit_arrived(&events, &run, "/rudderstack.html");
    assert_eq!(
        devices(&app).await,
        serde_json::json!([{"dimensions": ["Chrome", "Linux", "desktop"], "metrics": [4]}])
    );
    assert_eq!(
        find(&events, "page", "Home")["context"]["library"]["name"],
        "RudderLabs JavaScript SDK"
    );
}

#[tokio::test]
async fn our_tracker_sends_page_views_clicks_custom_events_and_engagement() {
    if !browser_available("playwright-core") {
        return;
    }
    let app = spawn_app_with(|config| config.projects[0].domains = vec!["shop.test".into()]).await;
    let run = run_page(&app, "tracker").await;
    let requests = run.requests();
    assert_eq!(
        requests[0],
        ("/js/script.js".to_owned(), 200),
        "{requests:?}"
    );
    assert!(
        requests[1..]
            .iter()
            .all(|request| *request == ("/api/event".to_owned(), 202)),
        "{requests:?}"
    );
    let events = stored_in_order(&app, 7).await;
    let of = |e: &Value| {
        (
            e["type"].as_str().unwrap().to_owned(),
            e["event"].as_str().unwrap_or("").to_owned(),
            e["context"]["page"]["path"].as_str().unwrap().to_owned(),
        )
    };
    let mut seen: Vec<(String, String, String)> = events.iter().map(of).collect();
    seen.sort_unstable();
    let mut expected: Vec<(String, String, String)> = [
        ("page", "", "/tracker.html"),
        ("track", "Signup", "/tracker.html"),
        ("track", "engagement", "/tracker.html"),
        ("page", "", "/pricing"),
        ("track", "Outbound Link: Click", "/pricing"),
        ("track", "File Download", "/pricing"),
        ("track", "engagement", "/pricing"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "{events:#?}");
    let named = |name: &str, path: &str| {
        events
            .iter()
            .find(|e| {
                e["event"].as_str().unwrap_or("") == name && e["context"]["page"]["path"] == path
            })
            .unwrap()
    };
    assert_eq!(
        named("Signup", "/tracker.html")["properties"]["plan"],
        "pro"
    );
    assert_eq!(
        named("Outbound Link: Click", "/pricing")["properties"]["url"],
        "https://partner.example/offer"
    );
    assert!(named("File Download", "/pricing")["properties"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/files/guide.pdf"));
    let engagement = named("engagement", "/pricing");
    assert_eq!(engagement["properties"]["scroll_depth"], 100);
    assert!(engagement["properties"]["engagement_time_ms"].is_u64());
    assert_eq!(
        named("", "/tracker.html")["context"]["page"]["referrer"],
        "https://news.ycombinator.com/"
    );
    // One cookieless visitor, no address kept.
    let visitor = events[0]["anonymousId"].as_str().unwrap();
    assert_eq!(visitor.len(), 32);
    assert!(events.iter().all(|e| e["anonymousId"] == visitor));
    assert!(events.iter().all(|e| e["context"]["ip"].is_null()));
    assert_eq!(
        devices(&app).await,
        serde_json::json!([{"dimensions": ["Chrome", "Linux", "desktop"], "metrics": [7]}])
    );
}

#[tokio::test]
async fn our_tracker_sends_nothing_from_localhost_or_an_opted_out_browser() {
    if !browser_available("playwright-core") {
        return;
    }
    let app = spawn_app_with(|config| config.projects[0].domains = vec!["shop.test".into()]).await;
    let run = run_page(&app, "tracker-ignored").await;
    assert_eq!(
        run.report["ignored"],
        serde_json::json!(["localhost", "opted out"]),
        "{}",
        run.report
    );
    let requests = run.requests();
    assert!(
        requests.iter().all(|(path, _)| path == "/js/script.js"),
        "{requests:?}"
    );
    assert!(app.export().await.is_empty());
}
