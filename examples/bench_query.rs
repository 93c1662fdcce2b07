//! Query benchmark.
//!
//! ```text
//! bench_query generate --path FILE [--events 10000000] [--linked]
//! bench_query copy-to-clickhouse --path FILE --url http://127.0.0.1:8123 --database bench
//! bench_query run --url http://127.0.0.1:18082 --read-key rk_... [--runs 20] [--server-pid PID] [--only TEXT]
//! ```
//!
//! `generate` fills a fresh DuckDB file (project `bench`) with events spread over
//! the 90 days before 2026-11-24 (generated in chunks of 10 million, each
//! a slice of the 90 days, so that any count fits in memory): 100,000 users (70% identified, the rest
//! anonymous), 50 event
//! names with a skewed popularity, 20 property keys per event, page and library
//! context, random UUIDv4 `messageId`s as Segment's SDKs send, stored in time
//! order as ingest stores them (the repository then indexes their messages); with `--linked`, every
//! anonymous user is merged into an identified one (identity links). `copy-to-clickhouse`
//! writes the same events into ClickHouse (the service's schema) and merges
//! their parts, as background merges would. `run` sends each benchmark query `--runs` times after two warm-ups
//! and prints p50 and p99 of the answer time. The requests cover `/v1/query`,
//! sessions per day over 30 and 90 days, a 4-step funnel, weekly retention,
//! the queries of the dashboard's overview and 5-step paths (`--only TEXT` keeps the queries whose label contains TEXT).
//! With `--server-pid`, the service's peak resident memory is reset before
//! each query (`/proc/PID/clear_refs`) and read after its runs, so each query
//! reports the memory it needed.

use std::time::Instant;

use analytics::storage::clickhouse::rows::EventRow;
use analytics::storage::clickhouse::{
    server_client, server_version, ClickHouseOptions, ClickHouseRepository,
};
use analytics::storage::duckdb::{DuckDbOptions, DuckDbRepository};
use analytics::storage::{ExportRequest, ReadBudget, Repository};
use futures::StreamExt;
use serde_json::{json, Value};

fn option(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// `hash(i, salt) % modulo` as SQL, for deterministic pseudo-random columns.
fn pick(salt: u32, modulo: u64) -> String {
    format!("CAST(hash(i, {salt}) % {modulo} AS BIGINT)")
}

/// `values[hash(seed, salt) % len]` as SQL: one of `values`, picked by `seed`.
fn one_of(seed: &str, salt: u32, values: &[&str]) -> String {
    let list = values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "[{list}][1 + CAST(hash({seed}, {salt}) % {} AS BIGINT)]",
        values.len()
    )
}

/// The visit columns as enrichment fills them: the device and location are
/// the user's (one of a few browsers, systems and cities), the source the
/// event's own (half of them direct, the rest from search, social and
/// referring sites).
fn visit_columns(user: &str) -> Vec<(&'static str, String)> {
    let place = format!("CAST(hash({user}, 41) % 8 AS BIGINT)");
    let of_place = |values: [&str; 8]| {
        format!(
            "[{}][1 + {place}]",
            values.map(|v| format!("'{v}'")).join(",")
        )
    };
    let referrer = pick(42, 10);
    let of_referrer = |values: [&str; 10]| {
        format!(
            "[{}][1 + {referrer}]",
            values
                .map(|v| if v.is_empty() {
                    "NULL".to_owned()
                } else {
                    format!("'{v}'")
                })
                .join(",")
        )
    };
    vec![
        (
            "browser",
            one_of(
                user,
                43,
                &[
                    "Chrome",
                    "Chrome",
                    "Chrome",
                    "Mobile Safari",
                    "Firefox",
                    "Edge",
                    "Safari",
                    "Samsung Internet",
                ],
            ),
        ),
        (
            "browser_version",
            one_of(user, 44, &["124.0", "125.0", "126.0", "17.4"]),
        ),
        (
            "os",
            one_of(
                user,
                45,
                &[
                    "Windows", "Windows", "Mac OS X", "iOS", "Android", "Android", "Linux",
                ],
            ),
        ),
        (
            "os_version",
            one_of(user, 46, &["10", "11", "14.4", "17.4"]),
        ),
        (
            "device",
            one_of(
                user,
                47,
                &[
                    "desktop", "desktop", "desktop", "mobile", "mobile", "tablet",
                ],
            ),
        ),
        (
            "country",
            of_place(["US", "US", "DE", "DE", "GB", "FR", "IN", "BR"]),
        ),
        (
            "region",
            of_place([
                "US-CA", "US-NY", "DE-BE", "DE-BY", "GB-ENG", "FR-IDF", "IN-MH", "BR-SP",
            ]),
        ),
        (
            "city",
            of_place([
                "San Francisco",
                "New York",
                "Berlin",
                "Munich",
                "London",
                "Paris",
                "Mumbai",
                "São Paulo",
            ]),
        ),
        (
            "referrer_domain",
            of_referrer([
                "",
                "",
                "",
                "",
                "",
                "google.com",
                "google.com",
                "duckduckgo.com",
                "news.ycombinator.com",
                "github.com",
            ]),
        ),
        (
            "source",
            of_referrer([
                "",
                "",
                "",
                "",
                "",
                "Google",
                "Google",
                "DuckDuckGo",
                "Hacker News",
                "GitHub",
            ]),
        ),
        (
            "channel",
            of_referrer([
                "Direct",
                "Direct",
                "Direct",
                "Direct",
                "Direct",
                "Organic Search",
                "Organic Search",
                "Organic Search",
                "Organic Social",
                "Referral",
            ]),
        ),
    ]
}

/// Events generated per statement: DuckDB sorts each chunk by time in
/// memory (about 2 GB for 10 million events).
const CHUNK_EVENTS: u64 = 10_000_000;

/// The span of the generated events: the 90 days before 2026-11-24.
const SPAN_US: u64 = 90 * 86_400 * 1_000_000;

/// The statement generating events `first..end`, of `chunks` equal time
/// slices the `chunk`-th, so that chunks appended in order keep the table in
/// time order, as ingest stores it.
fn generation_sql(first: u64, end: u64, chunk: u64, chunks: u64) -> String {
    let user = pick(1, 100_000);
    let identified = format!("{user} % 10 < 7");
    let name = format!(
        "'event_' || lpad(CAST(floor(50 * pow({} / 1000000.0, 2)) AS INTEGER)::VARCHAR, 2, '0')",
        pick(3, 1_000_000)
    );
    let mut properties = vec![
        format!(
            "'\"plan\":\"' || ['free','pro','team'][1 + {}] || '\"'",
            pick(4, 3)
        ),
        format!("'\"category\":\"c' || {} || '\"'", pick(5, 30)),
        format!("'\"price\":' || ({} / 100.0)::VARCHAR", pick(6, 20_000)),
        format!("'\"quantity\":' || (1 + {})::VARCHAR", pick(7, 5)),
    ];
    for key in 4..20u32 {
        properties.push(format!(
            "'\"p{key}\":\"v' || {} || '\"'",
            pick(10 + key, 10)
        ));
    }
    let properties = format!("'{{' || {} || '}}'", properties.join(" || ',' || "));
    let path = format!("'/p/' || {}", pick(8, 200));
    let visit = visit_columns(&user);
    format!(
        "INSERT INTO events (project_id, message_id, type, event, name, user_id, anonymous_id,
                             timestamp, received_at, properties, context, page_path, page_url,
                             library_name, locale, user_index, {visit_names})
         SELECT 'bench', uuid()::VARCHAR, CASE WHEN {is_page} THEN 'page' ELSE 'track' END,
                CASE WHEN {is_page} THEN NULL ELSE {name} END,
                CASE WHEN {is_page} THEN 'Page' END,
                CASE WHEN {identified} THEN 'user-' || {user} END,
                'anon-' || {user},
                ts, ts, {properties},
                '{{\"page\":{{\"path\":\"' || {path} || '\"}},\"library\":{{\"name\":\"analytics.js\"}},\"locale\":\"en-US\"}}',
                {path}, 'https://shop.example' || {path}, 'analytics.js', 'en-US', {user} + 1,
                {visit_values}
         FROM (
             SELECT i, TIMESTAMP '2026-08-26 00:00:00' + to_microseconds(CAST({slice_start} + {offset} AS BIGINT)) AS ts
             FROM range({first}, {end}) AS r(i)
         )
         ORDER BY ts",
        visit_names = visit.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
        visit_values = visit.iter().map(|(_, value)| value.as_str()).collect::<Vec<_>>().join(",\n                "),
        is_page = format!("{} < 3", pick(9, 10)),
        slice_start = chunk * (SPAN_US / chunks),
        offset = pick(30, SPAN_US / chunks),
    )
}

async fn generate(args: &[String]) {
    let path = option(args, "--path").expect("--path FILE");
    let events: u64 =
        option(args, "--events").map_or(10_000_000, |v| v.parse().expect("--events N"));
    let path = std::path::PathBuf::from(path);
    drop(DuckDbRepository::open(&path, &DuckDbOptions::default()).expect("create the file"));
    let conn = DuckDbRepository::connect(&path, &DuckDbOptions::default()).expect("open");
    let started = Instant::now();
    conn.execute_batch(
        "INSERT INTO users
         SELECT 'bench', CASE WHEN u % 10 < 7 THEN 'user-' ELSE 'anon-' END || u, u + 1
         FROM range(100000) AS r(u);",
    )
    .expect("users");
    let chunks = events.div_ceil(CHUNK_EVENTS).max(1);
    for chunk in 0..chunks {
        let first = chunk * events / chunks;
        let end = (chunk + 1) * events / chunks;
        conn.execute_batch(&generation_sql(first, end, chunk, chunks))
            .expect("generate");
        if chunks > 1 {
            println!(
                "chunk {} of {chunks}: {end} events after {:.0} s",
                chunk + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // The events carry their visit columns, as ingest stores them: there is
    // nothing for the one-time backfill of older events to do.
    conn.execute(
        "INSERT OR IGNORE INTO settings (name, value) VALUES (?, 'done')",
        [analytics::app::backfill::SETTING],
    )
    .expect("settings");
    if args.iter().any(|a| a == "--linked") {
        // Each anonymous user (30%) merged into an identified one, as identify calls would.
        conn.execute_batch(
            "INSERT INTO person_links
             SELECT 'bench', u + 1, u - u % 10 + 1 FROM range(100000) AS r(u) WHERE u % 10 >= 7;",
        )
        .expect("person links");
    }
    conn.execute_batch("CHECKPOINT;").expect("checkpoint");
    drop(conn);
    println!(
        "generated {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The events went in behind the repository's back: opening it adds
    // their keys to the message index, as a migrated file's are.
    let indexing = Instant::now();
    let repository = DuckDbRepository::open(&path, &DuckDbOptions::default()).expect("index");
    repository.close().await.expect("close after indexing");
    println!(
        "indexed their messages in {:.1} s",
        indexing.elapsed().as_secs_f64()
    );
}

/// Events per ClickHouse insert while copying.
const COPY_BATCH: usize = 500_000;
/// DuckDB's buffer pool while the copy reads the source file.
const COPY_MEMORY_LIMIT: &str = "1GB";

async fn copy_to_clickhouse(args: &[String]) {
    let path = option(args, "--path").expect("--path FILE");
    // The export sorts what it reads: a day at a time, under a bounded
    // buffer pool, so that a copy of any size stays within memory.
    let source = DuckDbRepository::open(
        path.as_ref(),
        &DuckDbOptions {
            memory_limit: Some(COPY_MEMORY_LIMIT.into()),
        },
    )
    .expect("open");
    let options = ClickHouseOptions::new(
        option(args, "--url").expect("--url"),
        option(args, "--database").unwrap_or_else(|| "bench".into()),
    );
    // The service's schema; then the rows go straight in (they are unique).
    drop(
        ClickHouseRepository::open(&options)
            .await
            .expect("connect to ClickHouse"),
    );
    let version = server_version(&options).await.expect("version");
    let client = server_client(&options, version).with_database(&options.database);
    let started = Instant::now();
    let Some(bounds) = source
        .time_bounds("bench", ReadBudget::UNLIMITED)
        .await
        .expect("time bounds")
    else {
        println!("copied 0 events to ClickHouse");
        return;
    };
    let mut insert = client.insert::<EventRow>("events").await.expect("insert");
    let mut copied = 0;
    let mut day = bounds.from;
    while day <= bounds.to {
        let next = day + chrono::Duration::days(1);
        let mut chunks = source.export(ExportRequest {
            project_id: "bench".into(),
            from: Some(day),
            to: Some(next),
            without_visit: false,
        });
        while let Some(chunk) = chunks.next().await {
            for event in chunk.expect("export chunk") {
                insert.write(&EventRow::from(&event)).await.expect("row");
                copied += 1;
                if copied % COPY_BATCH == 0 {
                    insert.end().await.expect("insert");
                    insert = client.insert::<EventRow>("events").await.expect("insert");
                }
            }
        }
        day = next;
    }
    insert.end().await.expect("insert");
    println!(
        "copied {copied} events to ClickHouse in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "stored on disk: {} MB",
        table_bytes(&client).await / 1_000_000
    );
    // Queries are timed on settled data, as after the background merges;
    // a partition at a time, so that a merge needs room for one partition's
    // copy, not the table's.
    let started = Instant::now();
    for table in ["events", "message_ids"] {
        let partitions: Vec<String> = client
            .query(
                "SELECT DISTINCT partition FROM system.parts
                 WHERE database = currentDatabase() AND table = ? AND active",
            )
            .bind(table)
            .fetch_all()
            .await
            .expect("partitions");
        for partition in partitions {
            client
                .query(&format!(
                    "OPTIMIZE TABLE {table} PARTITION {partition} FINAL"
                ))
                .execute()
                .await
                .expect("optimize");
        }
    }
    println!(
        "merged the parts in {:.1} s; stored on disk: {} MB",
        started.elapsed().as_secs_f64(),
        table_bytes(&client).await / 1_000_000
    );
}

/// Bytes on disk of the active parts of the database's tables.
async fn table_bytes(client: &clickhouse::Client) -> u64 {
    client
        .query(
            "SELECT sum(bytes_on_disk) FROM system.parts
             WHERE database = currentDatabase() AND active",
        )
        .fetch_one()
        .await
        .expect("part sizes")
}

/// The benchmark requests: (label, path, body).
fn queries() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "30 days x time:day x events, users",
            "/v1/query",
            json!({"metrics": ["events", "users"], "date_range": ["2026-10-25", "2026-11-23"],
                   "dimensions": ["time:day"], "include": {"time_labels": true}}),
        ),
        (
            "top 10 event:props:category for one event name, 30 days",
            "/v1/query",
            json!({"metrics": ["events", "users"], "date_range": ["2026-10-25", "2026-11-23"],
                   "dimensions": ["event:props:category"],
                   "filters": ["is", "event:name", ["event_03"]],
                   "pagination": {"limit": 10}}),
        ),
        (
            "all-range users",
            "/v1/query",
            json!({"metrics": ["users"], "date_range": "all"}),
        ),
        (
            "sessions per day, 30 days",
            "/v1/query",
            json!({"metrics": ["sessions", "bounce_rate", "session_duration"], "dimensions": ["time:day"],
                   "date_range": ["2026-10-25", "2026-11-23"]}),
        ),
        (
            "sessions per day, 90 days",
            "/v1/query",
            json!({"metrics": ["sessions", "bounce_rate", "session_duration"], "dimensions": ["time:day"],
                   "date_range": ["2026-08-26", "2026-11-23"]}),
        ),
        (
            "4-step funnel, 30 days, 7-day window",
            "/v1/funnel",
            json!({"steps": [{"event": "event_00"}, {"event": "event_01"}, {"event": "event_02"}, {"event": "event_03"}],
                   "window": "7d", "date_range": ["2026-10-25", "2026-11-23"]}),
        ),
        (
            "weekly retention, 12 weeks",
            "/v1/retention",
            json!({"start_event": {"event": "event_00"}, "return_event": {"event": "event_01"},
                   "period": "week", "periods": 12, "date_range": ["2026-08-31", "2026-11-22"]}),
        ),
        // What the dashboard's overview sends for the last 30 days.
        (
            "overview: top stats",
            "/v1/query",
            json!({"metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"],
                   "date_range": ["2026-10-25", "2026-11-23"], "filters": []}),
        ),
        (
            "overview: graph, visitors by day",
            "/v1/query",
            json!({"metrics": ["visitors"], "date_range": ["2026-10-25", "2026-11-23"], "dimensions": ["time:day"],
                   "filters": [], "include": {"time_labels": true}}),
        ),
        (
            "overview: sources (visitors by visit:channel)",
            "/v1/query",
            overview_panel("visit:channel", json!(["visitors"]), json!([])),
        ),
        (
            "overview: top pages",
            "/v1/query",
            overview_panel(
                "event:page",
                json!(["visitors", "pageviews"]),
                json!([["is", "event:type", ["page"]]]),
            ),
        ),
        (
            "overview: countries",
            "/v1/query",
            overview_panel("visit:country", json!(["visitors"]), json!([])),
        ),
        (
            "overview: browsers",
            "/v1/query",
            overview_panel("visit:browser", json!(["visitors"]), json!([])),
        ),
        (
            "overview: goals with conversion rates",
            "/v1/query",
            overview_panel(
                "event:name",
                json!(["visitors", "events", "conversion_rate"]),
                json!([["is", "event:type", ["track"]]]),
            ),
        ),
        (
            "5-step paths, 90 days",
            "/v1/paths",
            json!({"start_event": {"event": "event_00"}, "direction": "next", "depth": 5,
                   "date_range": ["2026-08-26", "2026-11-23"]}),
        ),
    ]
}

/// A panel of the dashboard's overview: the top 10 of `dimension` over the
/// last 30 days of the data.
fn overview_panel(dimension: &str, metrics: Value, filters: Value) -> Value {
    json!({"metrics": metrics, "date_range": ["2026-10-25", "2026-11-23"], "dimensions": [dimension],
           "filters": filters, "order_by": [["visitors", "desc"]], "include": {"total_rows": true},
           "pagination": {"limit": 10, "offset": 0}})
}

/// Rows of an answer, whatever its shape.
fn answer_rows(answer: &Value) -> usize {
    ["results", "steps", "cohorts", "nodes"]
        .iter()
        .find_map(|key| answer[key].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// The peak resident memory of a process, in MB (Linux `VmHWM`).
fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024)
}

/// Resets a process's peak resident memory to its current size.
fn reset_peak_rss(pid: u32) {
    if let Err(error) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak memory of {pid}: {error}");
    }
}

async fn run(args: &[String]) {
    let url = option(args, "--url").expect("--url");
    let key = option(args, "--read-key").expect("--read-key");
    let runs: usize = option(args, "--runs").map_or(20, |v| v.parse().expect("--runs N"));
    let server: Option<u32> =
        option(args, "--server-pid").map(|v| v.parse().expect("--server-pid PID"));
    let only = option(args, "--only");
    let client = reqwest::Client::new();
    let selected = queries()
        .into_iter()
        .filter(|(label, _, _)| only.as_deref().is_none_or(|text| label.contains(text)));
    let mut overall_peak = 0;
    'queries: for (label, path, query) in selected {
        if let Some(pid) = server {
            reset_peak_rss(pid);
        }
        let mut times = Vec::with_capacity(runs);
        let mut answer = Value::Null;
        for attempt in 0..runs + 2 {
            let started = Instant::now();
            let response = client
                .post(format!("{url}{path}"))
                .bearer_auth(&key)
                .json(&query)
                .send()
                .await
                .expect("query sent");
            if response.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
                // A read limit refused it: a figure of the benchmark too.
                let refusal: Value = response.json().await.expect("JSON error");
                println!(
                    "{label}: refused after {:.0} ms: {}",
                    started.elapsed().as_secs_f64() * 1e3,
                    refusal["error"]["message"]
                        .as_str()
                        .unwrap_or("(no message)")
                );
                continue 'queries;
            }
            assert!(
                response.status().is_success(),
                "{label}: {}",
                response.status()
            );
            answer = response.json().await.expect("JSON answer");
            if attempt >= 2 {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        let percentile = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        let peak = server.and_then(peak_rss_mb);
        overall_peak = overall_peak.max(peak.unwrap_or(0));
        let memory = peak
            .map(|mb| format!(", service peak RSS {mb} MB"))
            .unwrap_or_default();
        println!(
            "{label}: p50 {:.0} ms, p99 {:.0} ms, {} rows{memory}",
            percentile(0.5),
            percentile(0.99),
            answer_rows(&answer)
        );
    }
    if server.is_some() {
        println!("service peak RSS over the run: {overall_peak} MB");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => generate(&args).await,
        Some("copy-to-clickhouse") => copy_to_clickhouse(&args).await,
        Some("run") => run(&args).await,
        _ => eprintln!("usage: bench_query generate --path FILE [--events N] | copy-to-clickhouse --path FILE --url URL [--database DB] | run --url URL --read-key KEY [--runs N] [--server-pid PID] [--only TEXT]"),
    }
}
