//! `/metrics` as Prometheus sees it: `promtool check metrics` finds no
//! problem, the catalogue in docs/metrics.md matches what is published, and a
//! real Prometheus server scrapes the service, answers PromQL with the
//! ingested count, and evaluates every dashboard and alerting expression.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

#[path = "../support/deploy_files.rs"]
mod deploy_files;

use deploy_files::{
    alert_expressions, as_sent_by_grafana, catalogue, dashboard_expressions, metric_names, read,
    tool,
};

/// Whether every program is on `PATH` (else the test returns: skipped, or
/// failed under `scripts/test.sh`).
fn available(programs: &[&str]) -> bool {
    programs
        .iter()
        .all(|program| crate::helpers::requirements::program(program))
}

/// A service that has ingested `events` events and run its exporter.
async fn busy_app(events: usize) -> TestApp {
    let app = spawn_app_with(|config| {
        config.exporter.interval = Duration::from_millis(200);
    })
    .await;
    let batch: Vec<Value> = (0..events)
        .map(|i| json!({"type": "track", "userId": format!("user-{}", i % 7), "event": "signup"}))
        .collect();
    assert_eq!(
        app.post("/v1/batch", &json!({ "batch": batch }))
            .await
            .status(),
        200
    );
    // One rejected event, so that the labelled counters have series too.
    app.post(
        "/v1/batch",
        &json!({"batch": [{"type": "track", "userId": "u"}]}),
    )
    .await;
    app
}

/// `name -> type` of every `# TYPE` line.
fn published_families(metrics: &str) -> BTreeMap<String, String> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn promtool_finds_no_problem_in_the_metrics_output() {
    if !available(&["promtool"]) {
        return;
    }
    let app = busy_app(5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("analytics_project_active_users{"),
        "{metrics}"
    );
    let mut promtool = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let problems = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && problems.trim().is_empty(),
        "{problems}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_catalogue_lists_every_published_metric_with_its_type() {
    let app = busy_app(5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = published_families(&app.metrics().await);
    let catalogue = catalogue();
    assert!(published.len() >= 20, "{published:?}");
    for (name, kind) in &published {
        assert_eq!(
            catalogue.get(name),
            Some(kind),
            "{name} ({kind}) is published but docs/metrics.md says otherwise"
        );
    }
    let code: String = ["metrics.rs", "kafka_metrics.rs", "exporter_metrics.rs"]
        .iter()
        .map(|file| read(&format!("src/telemetry/{file}")))
        .collect();
    for name in catalogue.keys() {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "docs/metrics.md lists {name}, which the code does not define"
        );
    }
    let expressions = dashboard_expressions()
        .into_iter()
        .chain(alert_expressions());
    for (title, expr) in expressions {
        for name in metric_names(&expr) {
            assert!(
                catalogue.contains_key(&name),
                "{title} reads {name}, which is not in docs/metrics.md"
            );
        }
    }
    app.stop().await;
}

/// A Prometheus server on a free loopback port, stopped on drop.
struct PrometheusServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    fn scraping(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: analytics\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tool("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        PrometheusServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Runs an instant query; `Err` carries Prometheus's error.
    async fn query(&self, client: &reqwest::Client, promql: &str) -> Result<Value, String> {
        let response = client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let body: Value = response.json().await.map_err(|error| error.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"]["result"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// Polls `promql` until its first sample's value is `expected`.
    async fn wait_for_value(&self, client: &reqwest::Client, promql: &str, expected: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            if let Ok(result) = self.query(client, promql).await {
                let value = result[0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok());
                if value == Some(expected) {
                    return;
                }
                last = result;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{promql} never gave {expected}; last answer: {last}");
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_service_and_evaluates_every_dashboard_and_alert_expression() {
    if !available(&["prometheus"]) {
        return;
    }
    let app = busy_app(37).await;
    let target = app.address.trim_start_matches("http://").to_owned();
    let prometheus = PrometheusServer::scraping(&target);
    let client = reqwest::Client::new();

    prometheus
        .wait_for_value(&client, "sum(analytics_events_stored_total)", 37.0)
        .await;
    prometheus
        .wait_for_value(
            &client,
            r#"max by (project) (analytics_project_active_users{project="shop", window="5m"})"#,
            7.0,
        )
        .await;

    let expressions = dashboard_expressions()
        .into_iter()
        .chain(alert_expressions());
    let mut checked = 0;
    for (title, expr) in expressions {
        let sent = as_sent_by_grafana(&expr);
        if let Err(error) = prometheus.query(&client, &sent).await {
            panic!("{title}: {sent}\n{error}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} expressions");
    // The dashboard's business panel reads the exporter's gauge as published.
    let (_, users_panel) = dashboard_expressions()
        .into_iter()
        .find(|(title, _)| title == "Active users")
        .expect("an Active users panel");
    let result = prometheus
        .query(&client, &as_sent_by_grafana(&users_panel))
        .await
        .unwrap();
    let five_minutes = result
        .as_array()
        .unwrap()
        .iter()
        .find(|series| series["metric"]["project"] == "shop" && series["metric"]["window"] == "5m")
        .expect("shop's 5m series");
    assert_eq!(five_minutes["value"][1], "7");
    drop(prometheus);
    app.stop().await;
}
