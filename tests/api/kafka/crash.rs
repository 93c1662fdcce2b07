//! kill -9 of the service in the middle of a stream, then a restart: the
//! stored count equals the number of distinct messages produced.

use std::time::Duration;

use super::broker::{self, brokers, create_topics};
use super::{settle_at_url, track_messages};
use crate::helpers::{metric_value, READ_KEY, WRITE_KEY};

// Shared with tests/binary.rs, which also reads the log lines.
#[path = "../../support/process.rs"]
mod process;

fn config_file(dir: &std::path::Path, brokers: &str, topic: &str, dead_letters: &str) -> String {
    let path = dir.join("analytics.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[storage]
path = "{db}"

[[projects]]
id = "shop"
timezone = "UTC"
write_keys = ["{WRITE_KEY}"]
read_keys = ["{READ_KEY}"]

[kafka]
brokers = "{brokers}"
topic = "{topic}"
dead_letter_topic = "{dead_letters}"
group_id = "{topic}_group"
batch_max_messages = 500
batch_max_wait = "20ms"

# The killed member is noticed after this long, not the default 45 s.
[kafka.options]
"session.timeout.ms" = "6000"
"#,
            db = dir.join("analytics.duckdb").display(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn start(config: &str) -> process::Running {
    let mut command = process::analytics();
    command.args([
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    process::start(command)
}

async fn stored_so_far(client: &reqwest::Client, address: &str) -> f64 {
    match client.get(format!("{address}/metrics")).send().await {
        Ok(response) => metric_value(
            &response.text().await.unwrap_or_default(),
            "analytics_kafka_messages_stored_total",
        ),
        Err(_) => 0.0,
    }
}

#[tokio::test]
async fn kill_9_mid_stream_then_restart_stores_each_distinct_message_once() {
    let Some(brokers) = brokers() else {
        return;
    };
    let (topic, dead_letters) = create_topics(&brokers).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &brokers, &topic, &dead_letters);
    let client = reqwest::Client::new();

    // 20,000 records: 18,000 distinct messages, 2,000 of them sent twice,
    // produced in waves while the service reads.
    let producing = tokio::spawn({
        let (brokers, topic) = (brokers.clone(), topic.clone());
        async move {
            let producer = broker::producer(&brokers);
            for wave in 0..18 {
                let mut values = track_messages(&format!("w{wave}"), 1_000);
                if wave < 2 {
                    values.extend(track_messages(&format!("w{}", wave + 10), 1_000));
                }
                broker::produce(&producer, &topic, &values).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    let mut running = start(&config);
    let mut stored = 0.0;
    for _ in 0..300 {
        stored = stored_so_far(&client, &running.address).await;
        if stored >= 3_000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored >= 3_000.0, "the service was storing when killed");
    running.child.kill().expect("SIGKILL");
    running.child.wait().unwrap();
    producing.await.unwrap();
    // Restart once the group has dropped the killed member (its session
    // timeout is 6 s here). Tansu's coordinator gives a member that joins
    // while a dead one is still listed an empty assignment and does not
    // rebalance when the dead one expires; Apache Kafka does.
    tokio::time::sleep(Duration::from_secs(8)).await;

    let mut restarted = start(&config);
    let count = settle_at_url(
        &client,
        &restarted.address,
        18_000,
        Duration::from_secs(120),
    )
    .await;
    if count != 18_000 {
        // The restarted service's log, to see where it stopped.
        for log in &restarted.startup_logs {
            eprintln!("{log}");
        }
        for line in restarted.lines.try_iter() {
            eprintln!("{line}");
        }
    }
    assert_eq!(count, 18_000, "nothing lost, nothing doubled");
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}
