//! Plausible's events API: `POST /api/event` picks the project by domain,
//! knows the visitor by a daily-salted hash of address and user agent (no
//! cookie, no stored address), and names the field at fault when refusing.

use std::sync::Arc;

use analytics::app::VisitorIds;
use analytics::domain::visitor::{salt_setting, visitor_id, Salt};
use analytics::domain::Project;
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::Repository;
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, ORIGIN, USER_AGENT};
use serde_json::{json, Value};

use crate::enrichment::CHROME_WINDOWS;
use crate::helpers::*;

const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";

async fn site() -> TestApp {
    spawn_app_with(|config| {
        config.projects[0].domains = vec!["shop.example".into()];
        config.projects[1].domains = vec!["blog.example".into()];
        config.projects[1].allowed_origins = vec!["https://blog.example".into()];
    })
    .await
}

/// Sends `body` as Plausible's tracker does: `text/plain`, with a user agent.
async fn send(app: &TestApp, user_agent: Option<&str>, body: &Value) -> (u16, String) {
    let mut request = app
        .client
        .post(app.url("/api/event"))
        .header(CONTENT_TYPE, "text/plain")
        .body(body.to_string());
    if let Some(agent) = user_agent {
        request = request.header(USER_AGENT, agent);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn page_view(path: &str, referrer: &str) -> Value {
    json!({"n": "pageview", "u": format!("https://shop.example{path}"), "d": "shop.example", "r": referrer})
}

#[tokio::test]
async fn page_views_and_custom_events_are_stored_for_the_project_of_their_domain() {
    let app = site().await;
    for body in [
        page_view("/", "https://www.google.com/"),
        page_view("/pricing", "https://shop.example/"),
        json!({"name": "Signup", "url": "https://shop.example/pricing", "domain": "www.shop.example",
               "props": {"plan": "pro"}, "revenue": {"amount": 49, "currency": "usd"}}),
    ] {
        assert_eq!(
            send(&app, Some(CHROME_WINDOWS), &body).await,
            (202, "ok".into())
        );
    }
    assert_eq!(
        send(&app, Some(FIREFOX_MAC), &page_view("/", "")).await.0,
        202
    );
    let events = app.export().await;
    assert_eq!(events.len(), 4, "{events:?}");
    let chrome: Vec<&Value> = events
        .iter()
        .filter(|e| e["context"]["userAgent"] == CHROME_WINDOWS)
        .collect();
    let visitor = chrome[0]["anonymousId"].as_str().unwrap();
    assert_eq!(visitor.len(), 32);
    assert!(
        chrome.iter().all(|e| e["anonymousId"] == visitor),
        "one visitor: {chrome:?}"
    );
    let firefox = events
        .iter()
        .find(|e| e["context"]["userAgent"] == FIREFOX_MAC)
        .unwrap();
    assert_ne!(
        firefox["anonymousId"], visitor,
        "another browser, another visitor"
    );
    // Nothing of the address is stored.
    assert!(events.iter().all(|e| e["context"]["ip"].is_null()));

    let signup = events.iter().find(|e| e["event"] == "Signup").unwrap();
    assert_eq!(signup["type"], "track");
    assert_eq!(
        signup["properties"],
        json!({"plan": "pro", "revenue": 49, "currency": "USD"})
    );
    assert_eq!(signup["context"]["page"]["path"], "/pricing");
    let (status, other) = app
        .query_with(
            OTHER_READ_KEY,
            &json!({"metrics": ["events"], "date_range": "7d"}),
        )
        .await;
    assert_eq!(
        (status, &other["results"][0]["metrics"][0]),
        (200, &json!(0))
    );

    if crate::enrichment::regexes_installed() {
        let (status, answer) = app
            .query_with(
                READ_KEY,
                &json!({"metrics": ["events", "users"], "date_range": "7d",
                        "dimensions": ["visit:browser"], "filters": [["is", "event:type", ["page"]]]}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["results"],
            json!([{"dimensions": ["Chrome"], "metrics": [2, 1]},
                   {"dimensions": ["Firefox"], "metrics": [1, 1]}])
        );
    }
}

#[tokio::test]
async fn bad_events_are_refused_naming_the_field() {
    let app = site().await;
    let cases = [
        (
            Some(CHROME_WINDOWS),
            json!({"u": "https://shop.example/", "d": "shop.example"}),
            400,
            "name",
        ),
        (
            Some(CHROME_WINDOWS),
            json!({"n": "pageview", "d": "shop.example"}),
            400,
            "url",
        ),
        (
            Some(CHROME_WINDOWS),
            json!({"n": "pageview", "u": "https://x.example/"}),
            400,
            "domain",
        ),
        (
            Some(CHROME_WINDOWS),
            json!({"n": "pageview", "u": "https://x.example/", "d": "x.example"}),
            400,
            "domain",
        ),
        (None, page_view("/", ""), 400, "User-Agent"),
    ];
    for (agent, body, status, field) in cases {
        let response = {
            let mut request = app
                .client
                .post(app.url("/api/event"))
                .body(body.to_string());
            if let Some(agent) = agent {
                request = request.header(USER_AGENT, agent);
            }
            request.send().await.unwrap()
        };
        assert_eq!(response.status().as_u16(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    // A page of another origin than the blog's own.
    let refused = app
        .client
        .post(app.url("/api/event"))
        .header(USER_AGENT, CHROME_WINDOWS)
        .header(ORIGIN, "https://evil.example")
        .body(
            json!({"n": "pageview", "u": "https://blog.example/", "d": "blog.example"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(app.export().await.is_empty());
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn salts_are_one_a_day_kept_in_storage_and_deleted_two_days_later() {
    let dir = tempfile::tempdir().unwrap();
    let repository: Arc<dyn Repository> = Arc::new(
        DuckDbRepository::open(&dir.path().join("a.duckdb"), &DuckDbOptions::default()).unwrap(),
    );
    let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
    repository
        .setting_or_init(&salt_setting(day("2026-11-28")), &Salt([1; 16]).to_hex())
        .await
        .unwrap();
    let project = Project::new("shop", chrono_tz::UTC);
    let ip = Some("198.51.100.7".parse().unwrap());
    let visitors = VisitorIds::new(repository.clone());

    let evening = visitors
        .id(&project, ip, "UA", at("2026-11-30T23:50:00Z"))
        .await
        .unwrap();
    let stored = repository
        .setting_or_init(&salt_setting(day("2026-11-30")), "unused")
        .await
        .unwrap();
    let salt = Salt::from_hex(&stored).expect("a stored salt");
    assert_eq!(evening, visitor_id(salt, "shop", ip, "UA"));
    // The day before yesterday's salt is gone.
    assert_eq!(
        repository
            .setting_or_init(&salt_setting(day("2026-11-28")), "fresh")
            .await
            .unwrap(),
        "fresh"
    );

    // Just after midnight the visit goes on under the same id...
    let after_midnight = visitors
        .id(&project, ip, "UA", at("2026-12-01T00:10:00Z"))
        .await
        .unwrap();
    assert_eq!(after_midnight, evening);
    // ...and a restarted service (same storage) agrees on the day's id.
    let restarted = VisitorIds::new(repository.clone());
    let new_day = restarted
        .id(&project, ip, "UA", at("2026-12-01T09:00:00Z"))
        .await
        .unwrap();
    assert_ne!(new_day, evening, "a new day, a new id");
    let later = visitors
        .id(&project, ip, "UA", at("2026-12-01T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        later, new_day,
        "past the session timeout the day's own salt counts"
    );
}

#[tokio::test]
async fn with_the_headers_plausibles_docs_prescribe_the_forwarded_client_is_the_visitor_and_bots_are_not_stored(
) {
    let app = spawn_app_with(|config| {
        config.projects[0].domains = vec!["shop.example".into()];
        config.ingest.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    // A server sending for browsers: User-Agent, X-Forwarded-For, Content-Type.
    let send_for = |client: &'static str, agent: &'static str| {
        app.client
            .post(app.url("/api/event"))
            .header(USER_AGENT, agent)
            .header("x-forwarded-for", client)
            .header(CONTENT_TYPE, "application/json")
            .body(page_view("/", "").to_string())
            .send()
    };
    for (client, agent) in [
        ("203.0.113.1", CHROME_WINDOWS),
        ("203.0.113.1", CHROME_WINDOWS),
        ("203.0.113.2", CHROME_WINDOWS),
        ("203.0.113.3", crate::enrichment::GOOGLEBOT),
    ] {
        let response = send_for(client, agent).await.unwrap();
        assert_eq!(response.status(), 202, "{client} {agent}");
    }
    let events = app.export().await;
    assert_eq!(
        events.len(),
        3,
        "the bot's page view is not stored: {events:?}"
    );
    let mut visitors: Vec<&str> = events
        .iter()
        .map(|e| e["anonymousId"].as_str().unwrap())
        .collect();
    visitors.sort_unstable();
    visitors.dedup();
    assert_eq!(
        visitors.len(),
        2,
        "one visitor per forwarded client: {events:?}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "analytics_events_dropped_total"),
        1.0
    );
}
