//! Storage benchmark: what one event costs to parse and to write, without HTTP.
//!
//! ```text
//! cargo run --release --example bench_storage -- --events 200000 --batch 2500
//! ```
//!
//! 1. parses and validates realistic `/v1/batch` bodies (the ingest parser),
//!    once into events kept for the writes (the allocator's first touch of
//!    their memory included), then again as a running service does, each
//!    round's events dropped before the next; then enriches the events (user agent, referrer, and location when
//!    `--geoip FILE` names a database), once with every user agent new to
//!    the cache and once more as the cache knows them;
//! 2. writes the events through the DuckDB repository in batches, as the
//!    processor does (one transaction each), then closes it (final checkpoint);
//! 3. for scale, the same rows copied with SQL into a table of the core columns
//!    only (no JSON texts, no context columns): the floor of a row's write cost.
//!
//! `--keep FILE` copies the file the repository wrote (after step 2) to
//! `FILE`, e.g. as the rows of `scripts/bench-duckdb-alone.py`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use analytics::config::EnrichConfig;
use analytics::domain::{Event, Project};
use analytics::enrich::Enricher;
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::Repository;

#[path = "support/sample_events.rs"]
mod sample_events;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CORE_COLUMNS: &str = "project_id, message_id, type, event, name, user_id, anonymous_id, \
    group_id, previous_id, timestamp, original_timestamp, sent_at, received_at";

/// The value given after `flag`, if any.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
}

fn option(args: &[String], flag: &str, default: usize) -> usize {
    flag_value(args, flag).map_or(default, |v| {
        v.parse().unwrap_or_else(|_| panic!("{flag} N"))
    })
}

fn per_event(elapsed: Duration, events: usize) -> String {
    format!(
        "{:.1} µs/event",
        elapsed.as_secs_f64() * 1e6 / events as f64
    )
}

/// Enriches `events` twice with the reference data (as installed by
/// `npm ci --prefix reference-data`), printing the cost per event.
fn enrich(args: &[String], events: &mut [Event]) {
    let geoip = flag_value(args, "--geoip").map(std::path::PathBuf::from);
    let config = EnrichConfig {
        geoip_database: geoip,
        ..EnrichConfig::default()
    };
    let (enricher, coverage) = Enricher::load(&config, true).expect("the reference data loads");
    for missing in coverage.missing {
        println!("enrichment without data: {missing}");
    }
    let project = Project::new("bench", chrono_tz::UTC);
    for pass in ["first sight of each user agent", "user agents cached"] {
        let started = Instant::now();
        let mut bots = 0;
        for event in events.iter_mut() {
            bots += usize::from(enricher.enrich(&project, event).is_some());
        }
        println!(
            "enrich, {pass}: {} ({bots} bots)",
            per_event(started.elapsed(), events.len())
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total = option(&args, "--events", 200_000);
    let batch = option(&args, "--batch", 2_500);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bench.duckdb");

    let (mut events, parsing) = sample_events::parsed_events(total);
    println!("parse and validate: {}", per_event(parsing, events.len()));
    println!(
        "parse and validate, steady (random ids, each round's events dropped): {:.1} µs/event",
        sample_events::steady_parse_cost(total).as_secs_f64() * 1e6
    );
    enrich(&args, &mut events);

    let repository = DuckDbRepository::open(&path, &DuckDbOptions::default()).expect("open");
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let chunk: Arc<[Event]> = chunk.to_vec().into();
        repository.insert_batch(chunk).await.expect("insert");
    }
    let writing = started.elapsed();
    let started = Instant::now();
    repository.close().await.expect("close");
    let closing = started.elapsed();
    println!(
        "repository writes, batches of {batch}: {} (+ {} for the final checkpoint)",
        per_event(writing, events.len()),
        per_event(closing, events.len())
    );
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!("file size: {} bytes/event", bytes / events.len() as u64);
    if let Some(kept) = flag_value(&args, "--keep") {
        std::fs::copy(&path, kept).expect("copying the written file");
        println!("kept the written file as {kept}");
    }

    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).expect("connect");
    conn.execute_batch(&format!(
        "CREATE TABLE source AS SELECT row_number() OVER () AS n, {CORE_COLUMNS} FROM events;
         CREATE TABLE core AS SELECT {CORE_COLUMNS} FROM events LIMIT 0;
         ALTER TABLE core ADD PRIMARY KEY (project_id, message_id);
         CHECKPOINT;"
    ))
    .expect("prepare core table");
    let started = Instant::now();
    for first in (0..events.len()).step_by(batch) {
        conn.execute_batch(&format!(
            "INSERT INTO core SELECT {CORE_COLUMNS} FROM source WHERE n > {first} AND n <= {}",
            first + batch
        ))
        .expect("copy");
    }
    conn.execute_batch("CHECKPOINT;").expect("checkpoint");
    println!(
        "core columns only (SQL copy, same batches): {}",
        per_event(started.elapsed(), events.len())
    );
}
