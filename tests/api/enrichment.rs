//! Enrichment at ingest: browser, OS and device from the user agent (uap-core's
//! regexes), bots dropped and counted, location from the client's address
//! (MaxMind's test database), the client's address through trusted proxies
//! only, and source and channel from the referrer and the URL.

use analytics::config::EnrichConfig;
use analytics::domain::segment::{IngestContext, Limits, Payload};
use analytics::domain::{Event, Project};
use analytics::enrich::Enricher;
use serde_json::{json, Value};

use crate::helpers::*;

pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1";
const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const FIREFOX_ANDROID: &str =
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HEADLESS_CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36";

/// Whether uap-core's regexes are installed (skips, or fails under scripts/test.sh).
pub fn regexes_installed() -> bool {
    requirements::file(
        "reference-data/node_modules/uap-core/regexes.yaml",
        "the reference data (npm ci --prefix reference-data)",
    )
}

fn page_view(id: &str, user_agent: &str) -> Value {
    json!({"type": "page", "anonymousId": format!("visitor-{id}"), "messageId": id,
           "context": {"userAgent": user_agent,
                       "page": {"path": "/", "url": "https://shop.example/"}}})
}

/// Rows of a query over the shop's last week, as (dimensions, first metric).
async fn breakdown(app: &TestApp, dimensions: &[&str]) -> Vec<(Vec<Value>, Value)> {
    rows(
        app,
        json!({"metrics": ["events"], "dimensions": dimensions}),
    )
    .await
    .into_iter()
    .map(|(dimensions, mut metrics)| (dimensions, metrics.swap_remove(0)))
    .collect()
}

async fn browsers_systems_and_devices_are_recognised_and_bots_are_not_stored(backend: Backend) {
    if !regexes_installed() {
        return;
    }
    let app = spawn_app_on(backend).await;
    let batch = json!({"batch": [
        page_view("chrome", CHROME_WINDOWS),
        page_view("iphone", SAFARI_IPHONE),
        page_view("ipad", SAFARI_IPAD),
        page_view("android", FIREFOX_ANDROID),
        page_view("googlebot", GOOGLEBOT),
        page_view("headless", HEADLESS_CHROME),
    ]});
    let response = app.post("/v1/batch", &batch).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 6, "bots are acknowledged: {answer}");
    assert_eq!(
        breakdown(
            &app,
            &[
                "visit:browser",
                "visit:browser_version",
                "visit:os",
                "visit:os_version",
                "visit:device"
            ]
        )
        .await,
        vec![
            (
                vec![
                    json!("Chrome"),
                    json!("124.0"),
                    json!("Windows"),
                    json!("10"),
                    json!("desktop")
                ],
                json!(1)
            ),
            (
                vec![
                    json!("Firefox Mobile"),
                    json!("125.0"),
                    json!("Android"),
                    json!("14"),
                    json!("mobile")
                ],
                json!(1)
            ),
            (
                vec![
                    json!("Mobile Safari"),
                    json!("16.6"),
                    json!("iOS"),
                    json!("16.6"),
                    json!("tablet")
                ],
                json!(1)
            ),
            (
                vec![
                    json!("Mobile Safari"),
                    json!("17.4"),
                    json!("iOS"),
                    json!("17.4"),
                    json!("mobile")
                ],
                json!(1)
            ),
        ]
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "analytics_events_dropped_total{reason=\"bot_user_agent\"}"
        ),
        2.0
    );
}

async fn with_drop_bots_off_bots_are_stored_as_such(backend: Backend) {
    let app = spawn_app_with(|config| {
        backend.configure(config);
        config.ingest.drop_bots = false;
    })
    .await;
    let batch = json!({"batch": [page_view("googlebot", GOOGLEBOT)]});
    assert_eq!(app.post("/v1/batch", &batch).await.status(), 200);
    assert_eq!(
        breakdown(&app, &["visit:device"]).await,
        vec![(vec![json!("bot")], json!(1))]
    );
}

/// MaxMind's test database, when setup-dev.sh fetched it.
fn geoip_database() -> Option<std::path::PathBuf> {
    let path = requirements::server("ANALYTICS_TEST_GEOIP_DATABASE", "MaxMind's test database")?;
    let path = std::path::PathBuf::from(path);
    if !path.exists() {
        requirements::missing(&format!("MaxMind's test database at {}", path.display()));
        return None;
    }
    Some(path)
}

async fn locations_come_from_the_sent_ip_or_a_trusted_proxys_word_only(backend: Backend) {
    let Some(database) = geoip_database() else {
        return;
    };
    let app = spawn_app_with(|config| {
        backend.configure(config);
        config.enrich.geoip_database = Some(database);
        config.ingest.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let sent_ip = json!({"userId": "a", "event": "e", "context": {"ip": "89.160.20.115"}});
    assert_eq!(app.post("/v1/track", &sent_ip).await.status(), 200);
    let forwarded = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("x-forwarded-for", "81.2.69.142")
        .json(&json!({"userId": "b", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);
    assert_eq!(
        breakdown(&app, &["visit:country", "visit:region", "visit:city"]).await,
        vec![
            (
                vec![json!("GB"), json!("GB-ENG"), json!("London")],
                json!(1)
            ),
            (
                vec![json!("SE"), json!("SE-E"), json!("Linköping")],
                json!(1)
            ),
        ]
    );
    // No IP is kept by default.
    assert!(app
        .export()
        .await
        .iter()
        .all(|e| e["context"]["ip"].is_null()));

    // The same header from a peer that is not trusted names nobody.
    let untrusting = spawn_app_with(|config| {
        backend.configure(config);
        config.enrich.geoip_database = geoip_database();
    })
    .await;
    let spoofed = untrusting
        .client
        .post(untrusting.url("/v1/track"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("x-forwarded-for", "81.2.69.142")
        .json(&json!({"userId": "c", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 200);
    assert_eq!(
        breakdown(&untrusting, &["visit:country"]).await,
        vec![(vec![Value::Null], json!(1))]
    );
}

/// A page view of `person` at `minutes` after `start`, from `referrer`.
fn visit_page(
    person: &str,
    start: chrono::DateTime<chrono::Utc>,
    minutes: i64,
    path: &str,
    referrer: &str,
) -> Value {
    let at = start + chrono::Duration::minutes(minutes);
    json!({"type": "page", "anonymousId": person, "messageId": format!("{person}-{minutes}"),
           "timestamp": at.to_rfc3339(),
           "context": {"userAgent": CHROME_WINDOWS,
                       "page": {"path": path, "url": format!("https://shop.example{path}"),
                                "referrer": referrer}}})
}

/// Rows of a query over the shop's last week, as (dimensions, metrics).
async fn rows(app: &TestApp, query: Value) -> Vec<(Vec<Value>, Vec<Value>)> {
    let mut query = query;
    query["date_range"] = json!("7d");
    let (status, body) = app.query_with(READ_KEY, &query).await;
    assert_eq!(status, 200, "{body}");
    let mut rows: Vec<_> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["dimensions"].as_array().unwrap().clone(),
                row["metrics"].as_array().unwrap().clone(),
            )
        })
        .collect();
    rows.sort_by_key(|(dimensions, _)| format!("{dimensions:?}"));
    rows
}

async fn a_visit_is_counted_under_the_source_of_its_first_page(backend: Backend) {
    if !regexes_installed() {
        return;
    }
    let app = spawn_app_on(backend).await;
    let start = chrono::Utc::now() - chrono::Duration::days(2);
    let mut signup = visit_page("a", start, 3, "/pricing", "https://shop.example/");
    signup["type"] = json!("track");
    signup["event"] = json!("signup");
    let batch = json!({"batch": [
        // a: from Google, on through the site, and back two hours later from a newsletter.
        visit_page("a", start, 0, "/", "https://www.google.com/"),
        visit_page("a", start, 2, "/pricing", "https://shop.example/"),
        signup,
        visit_page("a", start, 120, "/?utm_source=newsletter&utm_medium=email", ""),
        // b: typed the address, then a second page.
        visit_page("b", start, 10, "/pricing", ""),
        visit_page("b", start, 11, "/docs", "https://shop.example/pricing"),
    ]});
    let response = app.post("/v1/batch", &batch).await;
    assert_eq!(response.status(), 200);

    // Session metrics: each visit under its first event's source.
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visitors", "visits", "pageviews", "events", "bounce_rate"],
                          "dimensions": ["visit:source"]})
        )
        .await,
        vec![
            (
                vec![Value::Null],
                vec![json!(1), json!(1), json!(2), json!(2), json!(0.0)]
            ),
            (
                vec![json!("Google")],
                vec![json!(1), json!(1), json!(2), json!(3), json!(0.0)]
            ),
            (
                vec![json!("newsletter")],
                vec![json!(1), json!(1), json!(1), json!(1), json!(100.0)]
            ),
        ]
    );
    // Event metrics: every event of a visit under the visit's channel, not
    // under the site that its later pages refer to.
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visitors", "events", "pageviews"],
                          "dimensions": ["visit:channel", "visit:referrer_domain"]})
        )
        .await,
        vec![
            (
                vec![json!("Direct"), Value::Null],
                vec![json!(1), json!(2), json!(2)]
            ),
            (
                vec![json!("Email"), Value::Null],
                vec![json!(1), json!(1), json!(1)]
            ),
            (
                vec![json!("Organic Search"), json!("google.com")],
                vec![json!(1), json!(3), json!(2)]
            ),
        ]
    );
    // Pages of the visits from one source; the percentage of their visitors.
    assert_eq!(
        rows(&app, json!({"metrics": ["visitors", "pageviews", "percentage"],
                          "dimensions": ["event:page"],
                          "filters": [["is", "visit:source", ["Google"]], ["is", "event:type", ["page"]]]})).await,
        vec![
            (vec![json!("/")], vec![json!(1), json!(1), json!(100.0)]),
            (vec![json!("/pricing")], vec![json!(1), json!(1), json!(100.0)]),
        ]
    );
    // Sources of the visitors who saw /pricing, and a negated visit filter.
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visitors"], "dimensions": ["visit:source"],
                          "filters": [["is", "event:page", ["/pricing"]]]})
        )
        .await,
        vec![
            (vec![Value::Null], vec![json!(1)]),
            (vec![json!("Google")], vec![json!(1)]),
        ]
    );
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visits", "visitors"],
                          "filters": ["not", ["is", "visit:channel", ["Direct"]]]})
        )
        .await,
        vec![(vec![], vec![json!(2), json!(1)])]
    );
    // Conversion rates: of all visitors, and of the visitors of each source.
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visitors", "conversion_rate"], "dimensions": ["event:name"]})
        )
        .await,
        vec![
            (vec![json!("page")], vec![json!(2), json!(100.0)]),
            (vec![json!("signup")], vec![json!(1), json!(50.0)]),
        ]
    );
    assert_eq!(
        rows(
            &app,
            json!({"metrics": ["visitors", "conversion_rate"], "dimensions": ["visit:channel"],
                          "filters": [["is", "event:name", ["signup"]]]})
        )
        .await,
        vec![(vec![json!("Organic Search")], vec![json!(1), json!(100.0)])]
    );
    assert_eq!(
        rows(&app, json!({"metrics": ["conversion_rate"],
                          "filters": [["is", "event:name", ["signup"]], ["is", "event:page", ["/pricing"]]]})).await,
        vec![(vec![], vec![json!(50.0)])],
        "a and b saw /pricing; a signed up"
    );
    let (status, body) = app
        .query_with(
            READ_KEY,
            &json!({"metrics": ["visitors", "conversion_rate"], "date_range": "7d"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "metrics[1]", "{body}");
    // A visit's condition and an event's in one `or` cannot be told apart.
    let (status, body) = app
        .query_with(READ_KEY, &json!({"metrics": ["events"], "date_range": "7d",
            "filters": [["or", [["is", "visit:source", ["Google"]], ["is", "event:page", ["/"]]]]]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "filters[0]", "{body}");
}

/// Events as an earlier version stored them: parsed, never enriched.
fn unenriched(batch: Value) -> Vec<Event> {
    let payload = Payload::batch(batch.to_string().as_bytes(), Limits::SEGMENT).unwrap();
    payload
        .into_events(IngestContext {
            project_id: "shop",
            received_at: chrono::Utc::now(),
            max_future: chrono::Duration::days(1),
            client_ip: None,
            keep_ip: true,
        })
        .events
}

async fn events_stored_before_enrichment_get_what_their_context_allows(backend: Backend) {
    if !regexes_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    backend.configure(&mut config);
    let repository = analytics::startup::open_repository(&config).await.unwrap();
    let mut from_google = page_view("old-1", CHROME_WINDOWS);
    from_google["context"]["page"]["referrer"] = json!("https://www.google.com/search");
    let server_side =
        json!({"type": "track", "userId": "server", "event": "invoice_paid", "messageId": "old-2"});
    let events =
        unenriched(json!({"batch": [from_google, server_side, page_view("old-3", SAFARI_IPHONE)]}));
    assert!(events.iter().all(|e| e.visit.is_empty()));
    repository.insert_batch(events.into()).await.unwrap();

    let app = spawn_app_over(dir.path(), repository.clone()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let expected = vec![
        (vec![Value::Null, Value::Null, Value::Null], json!(1)),
        (
            vec![json!("Chrome"), json!("desktop"), json!("Organic Search")],
            json!(1),
        ),
        (
            vec![json!("Mobile Safari"), json!("mobile"), json!("Direct")],
            json!(1),
        ),
    ];
    loop {
        let found = breakdown(&app, &["visit:browser", "visit:device", "visit:channel"]).await;
        if found == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backfill sets the columns: {found:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

crate::on_every_backend!(
    events_stored_before_enrichment_get_what_their_context_allows,
    a_visit_is_counted_under_the_source_of_its_first_page,
    browsers_systems_and_devices_are_recognised_and_bots_are_not_stored,
    with_drop_bots_off_bots_are_stored_as_such,
    locations_come_from_the_sent_ip_or_a_trusted_proxys_word_only,
);

#[tokio::test]
async fn a_geoip_database_that_does_not_open_stops_the_start_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.mmdb");
    std::fs::write(&broken, b"not a database").unwrap();
    let mut config = test_config(dir.path());
    config.enrich.geoip_database = Some(broken);
    let error = analytics::startup::Application::build(config)
        .await
        .err()
        .expect("the start fails");
    assert!(error.to_string().contains("broken.mmdb"), "{error}");
}

/// The shop's enricher over the repository's reference data.
fn enricher() -> Enricher {
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let defaults = EnrichConfig::default();
    let config = EnrichConfig {
        user_agent_regexes: repository.join(defaults.user_agent_regexes),
        referrers: repository.join(defaults.referrers),
        geoip_database: None,
    };
    let (enricher, coverage) = Enricher::load(&config, true).expect("the reference data loads");
    assert_eq!(coverage.missing, Vec::<String>::new());
    enricher
}

fn enriched(enricher: &Enricher, project: &Project, page_url: &str, referrer: &str) -> Event {
    let body =
        json!({"anonymousId": "v", "context": {"page": {"url": page_url, "referrer": referrer}}});
    let payload = Payload::single(
        body.to_string().as_bytes(),
        analytics::domain::EventType::Page,
        Limits::SEGMENT,
    )
    .unwrap();
    let mut parsed = payload.into_events(IngestContext {
        project_id: &project.id,
        received_at: chrono::Utc::now(),
        max_future: chrono::Duration::days(1),
        client_ip: None,
        keep_ip: false,
    });
    let mut event = parsed.events.pop().expect("a valid event");
    assert_eq!(enricher.enrich(project, &mut event), None);
    event
}

#[test]
fn sources_and_channels_come_from_the_referrer_list_the_url_and_the_sites_domains() {
    if !regexes_installed() {
        return;
    }
    let enricher = enricher();
    let mut project = Project::new("shop", chrono_tz::UTC);
    project.domains = vec!["shop.example".into()];
    let cases = [
        // (page URL, referrer) -> (referrer domain, source, channel)
        (
            ("https://shop.example/", "https://www.google.com/"),
            (Some("google.com"), Some("Google"), "Organic Search"),
        ),
        (
            ("https://shop.example/?gclid=x", "https://www.google.de/"),
            (Some("google.de"), Some("Google"), "Paid Search"),
        ),
        (
            (
                "https://shop.example/",
                "https://news.ycombinator.com/item?id=1",
            ),
            (
                Some("news.ycombinator.com"),
                Some("Hacker News"),
                "Organic Social",
            ),
        ),
        (
            ("https://shop.example/", "https://m.facebook.com/"),
            (Some("m.facebook.com"), Some("Facebook"), "Organic Social"),
        ),
        (
            ("https://shop.example/", "https://mail.google.com/"),
            (Some("mail.google.com"), Some("Gmail"), "Email"),
        ),
        (
            ("https://shop.example/", "https://blog.partner.test/post"),
            (
                Some("blog.partner.test"),
                Some("blog.partner.test"),
                "Referral",
            ),
        ),
        (
            (
                "https://shop.example/?utm_source=newsletter&utm_medium=email",
                "",
            ),
            (None, Some("newsletter"), "Email"),
        ),
        (
            ("https://shop.example/?utm_source=google&utm_medium=cpc", ""),
            (None, Some("google"), "Paid Search"),
        ),
        (
            ("https://shop.example/?ref=producthunt", ""),
            (None, Some("producthunt"), "Referral"),
        ),
        (
            ("https://shop.example/pricing", "https://shop.example/"),
            (None, None, "Direct"),
        ),
        (
            ("https://shop.example/pricing", "https://blog.shop.example/"),
            (None, None, "Direct"),
        ),
        (("https://shop.example/", ""), (None, None, "Direct")),
    ];
    for ((url, referrer), (domain, source, channel)) in cases {
        let visit = enriched(&enricher, &project, url, referrer).visit;
        assert_eq!(
            (
                visit.referrer_domain.as_deref(),
                visit.source.as_deref(),
                visit.channel.as_deref()
            ),
            (domain, source, Some(channel)),
            "{url} from {referrer:?}"
        );
    }
}
