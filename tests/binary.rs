//! Tests of the `analytics` binary itself: configuration errors, development keys, SIGTERM.

use std::process::Command;

use serde_json::json;

#[path = "support/process.rs"]
mod process;

use process::analytics;

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("analytics.toml");
    std::fs::write(
        &file,
        "[[projects]]\nid = \"shop\"\ntimezone = \"Europe/Atlantis\"\nwrite_keys = [\"wk_shop_000001\"]\n",
    )
    .unwrap();
    let output = analytics().arg("--config").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("projects[0].timezone"), "{stderr}");
    assert!(stderr.contains("Europe/Atlantis"), "{stderr}");

    let output = analytics()
        .env("ANALYTICS_LISTEN", "localhost-ish")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen"));
}

#[test]
fn the_openapi_command_prints_the_committed_contract() {
    let output = analytics().arg("openapi").output().unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.yaml")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}

/// A running binary and the development keys its logs told us.
struct Running {
    child: std::process::Child,
    address: String,
    write_key: String,
    read_key: String,
    lines: std::sync::mpsc::Receiver<String>,
}

fn start(data_dir: &std::path::Path) -> Running {
    let mut command = analytics();
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data_dir);
    let running = process::start(command);
    let warning = running
        .startup_logs
        .iter()
        .find(|log| log["write_key"].is_string())
        .expect("development keys are logged");
    assert_eq!(warning["level"], "WARN");
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains("DEVELOPMENT KEYS"));
    Running {
        write_key: warning["write_key"].as_str().unwrap().to_owned(),
        read_key: warning["read_key"].as_str().unwrap().to_owned(),
        child: running.child,
        address: running.address,
        lines: running.lines,
    }
}

fn terminate(mut running: Running) -> Vec<String> {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = running.child.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    running.lines.try_iter().collect()
}

#[tokio::test]
async fn development_project_keys_persist_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path());
    assert!(running.write_key.starts_with("wk_"));
    let client = reqwest::Client::new();
    let mut pending = Vec::new();
    for i in 0..50 {
        let request = client
            .post(format!("{}/v1/track", running.address))
            .basic_auth(&running.write_key, Some(""))
            .json(&json!({"userId": "u", "event": "e", "messageId": format!("m{i}")}))
            .send();
        pending.push(tokio::spawn(request));
    }
    for request in pending {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    let (write_key, read_key) = (running.write_key.clone(), running.read_key.clone());
    let later_logs = terminate(running);
    assert!(
        later_logs
            .iter()
            .all(|line| !line.contains(&write_key) && !line.contains(&read_key)),
        "keys are never logged after start-up"
    );
    assert!(dir.path().join("analytics.duckdb").exists());

    let running = start(dir.path());
    assert_eq!(
        running.write_key, write_key,
        "the development keys survive a restart"
    );
    let export = client
        .get(format!("{}/v1/export", running.address))
        .bearer_auth(&running.read_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(export.lines().count(), 50);
    terminate(running);
}

#[test]
fn the_healthcheck_command_follows_the_running_instance() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path());
    let listen = running.address.trim_start_matches("http://").to_owned();
    let healthcheck = || {
        analytics()
            .args(["healthcheck", "--listen", &listen])
            .output()
            .unwrap()
    };
    let output = healthcheck();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    terminate(running);
    let output = healthcheck();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unhealthy"));
}
