//! The baseline for ClickHouse ingest: the load generator's kind of events,
//! parsed and flattened into `events` rows beforehand, then sent straight to
//! ClickHouse as `INSERT INTO bench_raw.events FORMAT JSONEachRow`, one batch
//! per request, one request at a time. Only the inserts are timed.
//!
//! ```text
//! bench_clickhouse_insert --url http://127.0.0.1:8123 [--events 1000000] [--batch 20000]
//! ```

use std::time::Instant;

use analytics::storage::clickhouse::rows::EventRow;
use analytics::storage::clickhouse::{server_version, ClickHouseOptions, ClickHouseRepository};

#[path = "support/sample_events.rs"]
mod sample_events;

fn option(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = option(&args, "--url").expect("--url");
    let total: usize = option(&args, "--events").map_or(1_000_000, |v| v.parse().expect("N"));
    let batch: usize = option(&args, "--batch").map_or(20_000, |v| v.parse().expect("N"));
    // The same schema as the service's, in a database of its own.
    let options = ClickHouseOptions::new(url.clone(), "bench_raw");
    drop(
        ClickHouseRepository::open(&options)
            .await
            .expect("create the schema"),
    );
    let version = server_version(&options).await.expect("server version");
    let settings: &[(&str, &str)] = if version.needs_low_cardinality_setting() {
        &[("allow_experimental_low_cardinality_type", "1")]
    } else {
        &[]
    };
    let (events, _) = sample_events::parsed_events(total);
    let bodies: Vec<String> = events
        .chunks(batch)
        .map(|chunk| {
            let mut body = String::from("INSERT INTO bench_raw.events FORMAT JSONEachRow\n");
            for event in chunk {
                body.push_str(&serde_json::to_string(&EventRow::from(event)).expect("JSON"));
                body.push('\n');
            }
            body
        })
        .collect();
    let megabytes = bodies.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    let client = reqwest::Client::new();
    let started = Instant::now();
    for body in bodies {
        let response = client
            .post(&url)
            .query(settings)
            .body(body)
            .send()
            .await
            .expect("insert sent");
        let status = response.status();
        assert!(
            status.is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "raw_jsoneachrow_events={} batch={batch} seconds={seconds:.2} events_per_second={:.0} megabytes={megabytes:.0}",
        events.len(),
        events.len() as f64 / seconds
    );
}
