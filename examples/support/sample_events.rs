//! Realistic Segment events for the load generator and the storage benchmark:
//! 60% track with five properties, 30% page, 10% identify with nested traits,
//! each with a full `context` (about 630 bytes of JSON per event).

use std::fmt::Write as _;

const EVENT_NAMES: [&str; 6] = [
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
    "Search Performed",
];
const PATHS: [&str; 5] = ["/", "/pricing", "/products/42", "/cart", "/blog/launch"];
const PLANS: [&str; 3] = ["free", "pro", "team"];

const REFERRERS: [&str; 3] = [
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://search.example/",
];

/// A browser's user agent: four families, their versions varied by user
/// (about 6,000 distinct strings, as a site sees in a day).
fn user_agent(user: usize) -> String {
    match user % 4 {
        0 | 1 => format!(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.{}.{} Safari/537.36",
            118 + user % 10,
            6000 + user % 600,
            user % 100
        ),
        2 => format!(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{} Mobile/15E148 Safari/604.1",
            user % 6,
            user % 6
        ),
        _ => format!(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.{}; rv:{}.0) Gecko/20100101 Firefox/{}.0",
            user % 5,
            115 + user % 12,
            115 + user % 12
        ),
    }
}

/// How the events' `messageId`s are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each benchmark uses one of them
pub enum MessageIds {
    /// Random UUIDv4s, as Segment's SDKs send them.
    Random,
    /// `lg-{connection}-{sequence}`: short, and increasing per connection.
    Sequential,
}

impl MessageIds {
    /// The style named on a command line: `random` or `sequential`.
    #[allow(dead_code)] // the load generator parses it; the other benchmarks do not
    pub fn parse(name: &str) -> Self {
        match name {
            "random" => MessageIds::Random,
            "sequential" => MessageIds::Sequential,
            other => panic!("--ids random|sequential, not {other}"),
        }
    }

    fn write(self, into: &mut String, connection: usize, sequence: u64) {
        match self {
            MessageIds::Random => {
                let _ = write!(into, "{}", uuid::Uuid::new_v4());
            }
            MessageIds::Sequential => {
                let _ = write!(into, "lg-{connection}-{sequence}");
            }
        }
    }
}

/// Appends one realistic event (about 600 bytes) to `body`, its
/// `messageId` made as `ids` says.
pub fn write_event(
    body: &mut String,
    connection: usize,
    sequence: u64,
    now: &str,
    ids: MessageIds,
) {
    let n = sequence as usize;
    let user = (connection * 7919 + n * 31) % 50_000;
    let path = PATHS[n % PATHS.len()];
    let mut message_id = String::with_capacity(36);
    ids.write(&mut message_id, connection, sequence);
    let common = format!(
        r#""messageId":"{message_id}","anonymousId":"anon-{user}","timestamp":"{now}","context":{{"ip":"192.0.2.{ip}","userAgent":"{agent}","locale":"en-US","timezone":"Europe/Berlin","library":{{"name":"analytics.js","version":"5.2.1"}},"page":{{"path":"{path}","url":"https://shop.example{path}?utm_source=newsletter&utm_medium=email","referrer":"{referrer}","title":"Shop"}}}}"#,
        ip = user % 250 + 1,
        agent = user_agent(user),
        referrer = REFERRERS[n % REFERRERS.len()],
    );
    match n % 10 {
        0..=5 => {
            let _ = write!(
                body,
                r#"{{"type":"track","event":"{}","userId":"user-{user}",{common},"properties":{{"product_id":"p-{}","price":{}.99,"currency":"EUR","plan":"{}","quantity":{}}}}}"#,
                EVENT_NAMES[n % EVENT_NAMES.len()],
                n % 500,
                n % 90 + 9,
                PLANS[user % PLANS.len()],
                n % 4 + 1
            );
        }
        6..=8 => {
            let _ = write!(
                body,
                r#"{{"type":"page","name":"Shop",{common},"properties":{{"path":"{path}","title":"Shop","search":"?utm_source=newsletter"}}}}"#
            );
        }
        _ => {
            let _ = write!(
                body,
                r#"{{"type":"identify","userId":"user-{user}",{common},"traits":{{"email":"user{user}@example.com","plan":"{}","company":{{"name":"Acme {}","employees":{}}}}}}}"#,
                PLANS[user % PLANS.len()],
                user % 100,
                user % 1000 + 1
            );
        }
    }
}

/// A `/v1/batch` body of `size` events with unique `messageId`s.
pub fn build_batch(connection: usize, first_sequence: u64, size: usize, ids: MessageIds) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut body = String::with_capacity(size * 700 + 64);
    body.push_str(r#"{"batch":["#);
    for i in 0..size {
        if i > 0 {
            body.push(',');
        }
        write_event(&mut body, connection, first_sequence + i as u64, &now, ids);
    }
    let _ = write!(body, r#"],"sentAt":"{now}"}}"#);
    body
}

/// The ingest context of the benchmark's project, received now.
#[allow(dead_code)] // the storage benchmarks use it; the load generator does not
fn bench_context() -> analytics::domain::segment::IngestContext<'static> {
    analytics::domain::segment::IngestContext {
        project_id: "bench",
        received_at: chrono::Utc::now(),
        max_future: chrono::Duration::days(1),
        client_ip: None,
        keep_ip: true,
    }
}

/// What parsing costs per event once the allocator has its pages: `total`
/// events with random ids parsed five times over, each round's events dropped
/// before the next, the fastest round.
#[allow(dead_code)] // the storage benchmark uses it; the load generator does not
pub fn steady_parse_cost(total: usize) -> std::time::Duration {
    use analytics::domain::segment::{IngestContext, Limits, Payload};
    let bodies: Vec<String> = (0..total.div_ceil(100))
        .map(|i| build_batch(0, i as u64 * 100, 100, MessageIds::Random))
        .collect();
    let context = IngestContext {
        keep_ip: false,
        ..bench_context()
    };
    (0..5)
        .map(|_| {
            let started = std::time::Instant::now();
            let mut events = 0;
            for body in &bodies {
                let payload = Payload::batch(body.as_bytes(), Limits::SEGMENT).expect("valid body");
                events += payload.into_events(context).events.len();
            }
            started.elapsed() / u32::try_from(events.max(1)).unwrap_or(u32::MAX)
        })
        .min()
        .unwrap_or_default()
}

/// `total` events of project `bench`, through the ingest parser, with the time
/// parsing took.
#[allow(dead_code)] // the storage benchmarks use it; the load generator does not
pub fn parsed_events(total: usize) -> (Vec<analytics::domain::Event>, std::time::Duration) {
    let bodies: Vec<String> = (0..total.div_ceil(100))
        .map(|i| build_batch(0, i as u64 * 100, 100, MessageIds::Sequential))
        .collect();
    use analytics::domain::segment::{Limits, Payload};
    let context = bench_context();
    let started = std::time::Instant::now();
    let mut events = Vec::with_capacity(total);
    for body in &bodies {
        let payload = Payload::batch(body.as_bytes(), Limits::SEGMENT).expect("valid body");
        events.extend(payload.into_events(context).events);
    }
    (events, started.elapsed())
}
