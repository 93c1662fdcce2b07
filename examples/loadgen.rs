//! Ingest load generator: sends batches of realistic Segment events over
//! keep-alive HTTP connections and reports events/s and request latency.
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 \
//!     --write-key wk_... --connections 32 --batch 100 --seconds 20 [--ids random|sequential]
//! ```
//!
//! Every event has a unique `messageId` (a random UUIDv4 by default, as
//! Segment's SDKs send; `--ids sequential` sends short increasing ones), so
//! nothing is deduplicated away; only requests answered 200 (events durably
//! stored) count towards the rate. The report ends with the load
//! generator's own CPU time over the measured seconds, as a share of the
//! machine's cores: what it took from the server it measures.

#[path = "support/sample_events.rs"]
mod sample_events;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Options {
    url: String,
    write_key: String,
    connections: usize,
    batch: usize,
    seconds: u64,
    warmup_seconds: u64,
    ids: sample_events::MessageIds,
}

fn parse_options() -> Options {
    let mut options = Options {
        url: "http://127.0.0.1:8080".into(),
        write_key: String::new(),
        connections: 32,
        batch: 100,
        seconds: 20,
        warmup_seconds: 3,
        ids: sample_events::MessageIds::Random,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--url" => options.url = value(),
            "--write-key" => options.write_key = value(),
            "--connections" => options.connections = value().parse().expect("--connections N"),
            "--batch" => options.batch = value().parse().expect("--batch N"),
            "--seconds" => options.seconds = value().parse().expect("--seconds N"),
            "--warmup" => options.warmup_seconds = value().parse().expect("--warmup N"),
            "--ids" => options.ids = sample_events::MessageIds::parse(&value()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!options.write_key.is_empty(), "--write-key is required");
    options
}

#[derive(Default)]
struct Totals {
    all_ok_events: AtomicU64,
    ok_events: AtomicU64,
    ok_requests: AtomicU64,
    failed_requests: AtomicU64,
    request_bytes: AtomicU64,
}

async fn run_connection(
    connection: usize,
    options: Arc<Options>,
    measure_from: Instant,
    deadline: Instant,
    totals: Arc<Totals>,
) -> Vec<u32> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let url = format!("{}/v1/batch", options.url);
    let mut latencies = Vec::new();
    let mut sequence = 0_u64;
    while Instant::now() < deadline {
        let body = sample_events::build_batch(connection, sequence, options.batch, options.ids);
        sequence += options.batch as u64;
        let bytes = body.len() as u64;
        let started = Instant::now();
        let result = client
            .post(&url)
            .basic_auth(&options.write_key, Some(""))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let ok = match result {
            Ok(response) => {
                let ok = response.status() == 200;
                let _ = response.bytes().await;
                ok
            }
            Err(_) => false,
        };
        let elapsed = started.elapsed();
        if ok {
            totals
                .all_ok_events
                .fetch_add(options.batch as u64, Ordering::Relaxed);
        }
        if started < measure_from {
            continue;
        }
        if ok {
            totals.ok_requests.fetch_add(1, Ordering::Relaxed);
            totals
                .ok_events
                .fetch_add(options.batch as u64, Ordering::Relaxed);
            totals.request_bytes.fetch_add(bytes, Ordering::Relaxed);
            latencies.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        } else {
            totals.failed_requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    latencies
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank]) / 1000.0
}

/// CPU time this process has used so far (user and system, every thread),
/// from `/proc/self/stat` in clock ticks of 1/100 s.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// This process's CPU time at `instant`.
async fn cpu_at(instant: Instant) -> f64 {
    tokio::time::sleep_until(instant.into()).await;
    process_cpu_seconds()
}

#[tokio::main]
async fn main() {
    let options = Arc::new(parse_options());
    let totals = Arc::new(Totals::default());
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(options.warmup_seconds);
    let deadline = measure_from + Duration::from_secs(options.seconds);
    let tasks: Vec<_> = (0..options.connections)
        .map(|connection| {
            tokio::spawn(run_connection(
                connection,
                options.clone(),
                measure_from,
                deadline,
                totals.clone(),
            ))
        })
        .collect();
    let cpu_from = tokio::spawn(cpu_at(measure_from));
    let cpu_to = tokio::spawn(cpu_at(deadline));
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("connection task"));
    }
    let measured = deadline
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    latencies.sort_unstable();
    let events = totals.ok_events.load(Ordering::Relaxed);
    let requests = totals.ok_requests.load(Ordering::Relaxed);
    println!(
        "connections={} batch={} seconds={} acknowledged_events={} acknowledged_including_warmup={} requests={} failed_requests={}",
        options.connections,
        options.batch,
        options.seconds,
        events,
        totals.all_ok_events.load(Ordering::Relaxed),
        requests,
        totals.failed_requests.load(Ordering::Relaxed)
    );
    println!(
        "events_per_second={:.0} requests_per_second={:.0} mb_per_second={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        events as f64 / measured,
        requests as f64 / measured,
        totals.request_bytes.load(Ordering::Relaxed) as f64 / measured / 1e6,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
    );
    let cpu = cpu_to.await.expect("cpu sample") - cpu_from.await.expect("cpu sample");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "loadgen_cpu_seconds={cpu:.1} loadgen_cpu_share={:.1}% of {cores} cores",
        100.0 * cpu / measured / cores as f64
    );
}
