//! Current ClickHouse versions accept every statement the backend sends and
//! answer as the 18.16 test server does. chdb (ClickHouse 26.x in-process,
//! from PyPI) runs the schema's DDL, loads the fixture the 18.16 server
//! stored, then runs the final text of every read: each query shape of the
//! query API, discovery, timelines, the dedup lookup and export. Their outputs
//! must match.

use std::io::Write;
use std::process::{Command, Stdio};

use analytics::api::query::QueryRequest;
use analytics::domain::query::{plan, EventQuery, PlanContext, QuerySpec, RowSource, TimeRange};
use analytics::storage::clickhouse::schema::{
    bootstrap_statements, latest_version, statements_up_to, Layout,
};
use analytics::storage::clickhouse::{read_statement_texts, ClickHouseRepository};
use analytics::storage::Repository;
use serde_json::{json, Value};

use crate::clickhouse::support;
use crate::conformance;

const PROJECT: &str = "shop";

fn fixture() -> Value {
    json!([
        {"type": "track", "event": "signup", "userId": "u1", "messageId": "m1", "timestamp": "2026-03-02T09:00:00Z",
         "properties": {"plan": "pro", "revenue": 10, "cart": {"items": 3}},
         "context": {"page": {"path": "/signup", "url": "https://shop.example/signup?utm_source=news"},
                     "campaign": {"source": "news", "medium": "email"}, "library": {"name": "analytics.js"}, "locale": "de-DE"}},
        {"type": "track", "event": "purchase", "userId": "u1", "messageId": "m2", "timestamp": "2026-03-03T11:00:00.250Z",
         "properties": {"plan": "pro", "revenue": 25.5}},
        {"type": "track", "event": "purchase", "anonymousId": "a9", "messageId": "m3", "timestamp": "2026-03-03T12:00:00Z",
         "properties": {"plan": "team", "revenue": "12"}},
        {"type": "track", "event": "purchase", "userId": "u2", "messageId": "m4", "timestamp": "2026-03-29T01:30:00Z",
         "properties": {"revenue": "n/a"}},
        {"type": "page", "name": "Home", "userId": "u3", "messageId": "m5", "timestamp": "2026-03-29T00:59:59Z",
         "context": {"page": {"path": "/", "referrer": "https://google.com/"}, "app": {"version": "2.1"}}},
        {"type": "identify", "userId": "u3", "messageId": "m6", "timestamp": "2026-03-04T07:05:00Z",
         "traits": {"plan": "pro", "email": "u3@example.com"}},
        {"type": "group", "userId": "u3", "groupId": "g1", "messageId": "m7", "timestamp": "2026-03-31T22:30:00Z",
         "traits": {"plan": "team"}},
        {"type": "screen", "anonymousId": "a2", "name": "Main", "messageId": "m8", "timestamp": "2026-02-28T23:30:00Z"},
        // a9 is u1: users are counted through person_links.
        {"type": "identify", "userId": "u1", "anonymousId": "a9", "messageId": "m9", "timestamp": "2026-03-03T12:30:00Z"}
    ])
}

fn requests() -> Vec<Value> {
    let march = json!(["2026-03-01", "2026-03-31"]);
    let mut requests = vec![
        json!({"metrics": ["events", "users", "sum:props.revenue", "avg:props.revenue", "min:props.revenue", "max:props.revenue", "percentage"]}),
        json!({"metrics": ["events", "users", "pageviews"], "dimensions": ["event:name", "event:type"]}),
        json!({"metrics": ["events"], "dimensions": ["event:page", "event:url", "event:referrer", "event:library", "event:locale"]}),
        json!({"metrics": ["events"], "dimensions": ["event:utm_source", "event:utm_medium", "user:id"]}),
        json!({"metrics": ["users"], "dimensions": ["event:props:plan", "event:props:cart.items", "event:context:app.version"]}),
        json!({"metrics": ["events"], "dimensions": ["time:month", "event:name"]}),
        json!({"metrics": ["events"], "dimensions": ["time:week"]}),
        json!({"metrics": ["events"], "dimensions": ["time:hour"], "date_range": ["2026-03-28", "2026-03-30"]}),
        json!({"metrics": ["events"], "dimensions": ["time:minute"], "date_range": ["2026-03-29", "2026-03-29"]}),
        json!({"metrics": ["events", "users"], "dimensions": ["time:day"], "include": {"time_labels": true}, "timezone": "Asia/Kolkata"}),
        json!({"metrics": ["events"], "dimensions": ["event:name"], "order_by": [["event:name", "desc"]],
               "pagination": {"limit": 1, "offset": 1}, "include": {"total_rows": true}}),
    ];
    let filters = [
        json!(["is", "event:name", ["purchase", "Home"]]),
        json!(["is_not", "event:props:plan", ["pro"]]),
        json!(["contains", "event:page", ["sign"]]),
        json!(["contains_not", "event:url", ["utm"]]),
        json!(["matches", "user:id", ["^u[12]$"]]),
        json!(["matches_not", "event:props:plan", ["^t"]]),
        json!(["gt", "event:props:revenue", ["11"]]),
        json!(["lte", "event:props:revenue", ["12"]]),
        json!(["is_set", "event:context:app.version"]),
        json!(["is_not_set", "event:props:plan"]),
        json!([
            "or",
            [
                ["is", "event:type", ["page"]],
                ["not", ["gte", "event:props:revenue", ["20"]]]
            ]
        ]),
    ];
    for filter in filters {
        requests.push(json!({"metrics": ["events", "users"], "filters": [filter]}));
    }
    for request in &mut requests {
        let object = request.as_object_mut().unwrap();
        object.entry("date_range").or_insert(march.clone());
    }
    requests
}

fn plans() -> Vec<EventQuery> {
    let context = PlanContext {
        project_id: PROJECT.into(),
        default_timezone: chrono_tz::Europe::Berlin,
        now: chrono::Utc::now(),
        data_bounds: None,
        session_timeout: chrono::Duration::minutes(30),
    };
    requests()
        .into_iter()
        .map(|request| {
            let request: QueryRequest = serde_json::from_value(request.clone()).unwrap();
            let spec = QuerySpec::try_from(request).unwrap();
            match plan(&spec, &context).unwrap().rows {
                RowSource::Events(query) => query,
                _ => panic!("storage runs event queries only"),
            }
        })
        .collect()
}

/// Runs each query on the test server, as `TabSeparated` text.
async fn run_on_test_server(url: &str, database: &str, queries: &[String]) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut outputs = Vec::new();
    for query in queries {
        let response = client
            .post(url)
            .query(&[
                ("database", database),
                ("allow_experimental_low_cardinality_type", "1"),
            ])
            .body(format!("{query} FORMAT TabSeparated"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{text}\n{query}");
        outputs.push(text);
    }
    outputs
}

fn run_on_chdb(database: &str, setup: Vec<String>, queries: &[String]) -> (String, Vec<Value>) {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/chdb_runner.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let job = json!({"database": database, "setup": setup, "queries": queries});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chdb failed (install it with scripts/setup-dev.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        answer["version"].as_str().unwrap().to_owned(),
        answer["results"].as_array().unwrap().clone(),
    )
}

/// Field-by-field equality, numbers compared as numbers (servers print
/// floating-point values with different digits).
fn same_output(old: &str, new: &str) -> bool {
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect()
    };
    let (old, new) = (rows(old), rows(new));
    old.len() == new.len()
        && old.iter().zip(&new).all(|(a, b)| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x == y
                        || matches!((x.parse::<f64>(), y.parse::<f64>()),
                            (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(1.0))
                })
        })
}

#[tokio::test]
async fn current_clickhouse_runs_every_statement_and_answers_like_the_test_server() {
    let Some(options) = support::test_options() else {
        return;
    };
    if !support::requirements::python_module("chdb") {
        return;
    }
    let repository = ClickHouseRepository::open(&options).await.unwrap();
    let events = conformance::events(PROJECT, fixture());
    repository.insert_batch(events.into()).await.unwrap();
    repository
        .setting_or_init("development.write_key", "wk_development_0001")
        .await
        .unwrap();

    let range = TimeRange {
        from: "2026-02-01T00:00:00Z".parse().unwrap(),
        to: "2026-05-01T00:00:00Z".parse().unwrap(),
    };
    let queries = read_statement_texts(&options, PROJECT, range, &plans());
    let old = run_on_test_server(&options.url, &options.database, &queries).await;
    let answered = old.iter().filter(|output| !output.is_empty()).count();
    assert!(
        answered * 10 >= queries.len() * 9,
        "most statements return rows on the fixture"
    );

    let layout = Layout::single(&options.database);
    let mut setup = bootstrap_statements(&layout);
    setup.extend(statements_up_to(&layout, latest_version()));
    // The stored rows, as JSON; `message_ids` fills itself through its view.
    for table in ["events", "settings", "person_links"] {
        let rows = reqwest::Client::new()
            .post(&options.url)
            .body(format!(
                "SELECT * FROM {}.{table} FORMAT JSONEachRow",
                options.database
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        setup.push(format!(
            "INSERT INTO {}.{table} FORMAT JSONEachRow\n{rows}",
            options.database
        ));
    }

    let (version, new) = run_on_chdb(&options.database, setup, &queries);
    assert!(
        version.split('.').next().unwrap().parse::<u32>().unwrap() >= 23,
        "{version}"
    );
    assert_eq!(new.len(), queries.len());
    for ((query, old), new) in queries.iter().zip(&old).zip(&new) {
        let new = new["tsv"]
            .as_str()
            .unwrap_or_else(|| panic!("ClickHouse {version} refused:\n{query}\n{}", new["error"]));
        assert!(
            same_output(old, new),
            "answers differ on ClickHouse {version}:\n{query}\n18.16:\n{old}\n{version}:\n{new}"
        );
    }
}
