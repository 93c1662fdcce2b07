//! The operations files of the repository (dashboard, alerting rules, metrics
//! catalogue) as tests read them, and the external checkers they run.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The text of a repository file.
pub fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// An external checker; the suite fails with a hint when it is not installed.
pub fn tool(program: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run scripts/setup-dev.sh (CI runs it through scripts/test.sh)"
    );
    Command::new(program)
}

/// Runs a checker and fails the test with its output unless it succeeds.
pub fn succeeds(command: &mut Command) -> Output {
    let output = command.output().expect("the checker runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The Grafana dashboard.
pub fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/analytics.json")).expect("the dashboard is JSON")
}

/// Every panel of the dashboard, rows' nested panels included.
pub fn dashboard_panels(dashboard: &Value) -> Vec<&Value> {
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
    }
    panels
}

/// `(panel title, PromQL)` of every dashboard query.
pub fn dashboard_expressions() -> Vec<(String, String)> {
    let dashboard = dashboard();
    dashboard_panels(&dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| {
                    let expr = target["expr"].as_str().expect("every target has an expr");
                    (title.clone(), expr.to_owned())
                })
        })
        .collect()
}

/// `(alert name, PromQL)` of every alerting rule.
pub fn alert_expressions() -> Vec<(String, String)> {
    let rules: Value =
        serde_norway::from_str(&read("deploy/prometheus/alerts.yml")).expect("the rules are YAML");
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").iter())
        .map(|rule| {
            (
                rule["alert"].as_str().expect("alert name").to_owned(),
                rule["expr"].as_str().expect("expr").to_owned(),
            )
        })
        .collect()
}

/// A dashboard expression with Grafana's variables replaced, as Prometheus
/// receives it from Grafana.
pub fn as_sent_by_grafana(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$instance", ".*")
        .replace("$project", ".*")
}

/// The metric families of `docs/metrics.md`: name and type, from the rows of
/// its tables (`| `name` | type | labels | meaning |`).
pub fn catalogue() -> BTreeMap<String, String> {
    read("docs/metrics.md")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.get(2)?;
            name.starts_with("analytics_")
                .then(|| (name.to_owned(), (*kind).to_owned()))
        })
        .collect()
}

/// Metric names a PromQL expression reads, with histogram suffixes removed.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(start) = expr[i..].find("analytics_").map(|offset| i + offset) {
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |offset| start + offset);
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !preceded_by_word {
            let name = &expr[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.push(family.to_owned());
        }
        i = end;
    }
    names
}
