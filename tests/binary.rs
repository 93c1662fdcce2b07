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

/// Every stored event of the development project, as NDJSON.
async fn export(running: &Running) -> String {
    reqwest::Client::new()
        .get(format!("{}/v1/export", running.address))
        .bearer_auth(&running.read_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
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
    assert_eq!(export(&running).await.lines().count(), 50);
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

/// Sends batches of new events until the service stops answering; returns
/// the `messageId`s of every batch it acknowledged.
async fn send_until_gone(address: String, write_key: String, sender: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for batch in 0.. {
        let ids: Vec<String> = (0..50).map(|i| format!("s{sender}-b{batch}-{i}")).collect();
        let events: Vec<_> = ids
            .iter()
            .map(|id| json!({"type": "track", "userId": "u", "event": "e", "messageId": id}))
            .collect();
        let answer = client
            .post(format!("{address}/v1/batch"))
            .basic_auth(&write_key, Some(""))
            .json(&json!({ "batch": events }))
            .send()
            .await;
        match answer {
            Ok(response) if response.status() == 200 => acknowledged.extend(ids),
            Ok(response) if response.status() == 503 => {}
            _ => break,
        }
    }
    acknowledged
}

#[tokio::test]
async fn every_event_acknowledged_before_a_kill_is_stored_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(dir.path());
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            tokio::spawn(send_until_gone(
                running.address.clone(),
                running.write_key.clone(),
                sender,
            ))
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    running.child.kill().expect("SIGKILL");
    running.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(
        acknowledged.len() > 1_000,
        "{} acknowledged",
        acknowledged.len()
    );

    let running = start(dir.path());
    let export = export(&running).await;
    let stored: std::collections::HashSet<String> = export
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["messageId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        stored.len(),
        export.lines().count(),
        "no event stored twice"
    );
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(3)]
    );
    terminate(running);
}
