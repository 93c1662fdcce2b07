//! A generated event set for the analysis suites: persons who browse
//! anonymously and sign up, aliases, repeated and out-of-order steps, events
//! at the same instant, at conversion-window edges and around the
//! daylight-saving change in Berlin (29 March 2026).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// One generated call.
#[derive(Debug, Clone)]
pub struct Call {
    /// `track`, `page`, `identify` or `alias`.
    pub kind: &'static str,
    pub event: Option<&'static str>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub previous_id: Option<String>,
    pub at: DateTime<Utc>,
    pub message_id: String,
    pub plan: Option<&'static str>,
    pub path: Option<&'static str>,
}

impl Call {
    /// The name analyses see: the event, else the call type.
    pub fn name(&self) -> &str {
        self.event.unwrap_or(self.kind)
    }

    /// The key the call is stored under: `userId`, else `anonymousId`.
    pub fn key(&self) -> &str {
        self.user_id
            .as_deref()
            .or(self.anonymous_id.as_deref())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        let mut call = json!({
            "type": self.kind,
            "messageId": self.message_id,
            "timestamp": self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let object = call.as_object_mut().unwrap();
        for (field, value) in [
            ("event", self.event.map(str::to_owned)),
            ("userId", self.user_id.clone()),
            ("anonymousId", self.anonymous_id.clone()),
            ("previousId", self.previous_id.clone()),
        ] {
            if let Some(value) = value {
                object.insert(field.into(), json!(value));
            }
        }
        if let Some(plan) = self.plan {
            object.insert("properties".into(), json!({"plan": plan}));
        }
        if let Some(path) = self.path {
            object.insert("context".into(), json!({"page": {"path": path}}));
        }
        call
    }
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

pub const NAMES: [&str; 4] = ["view", "signup", "activate", "purchase"];
const PATHS: [&str; 3] = ["/", "/pricing", "/docs"];
const PLANS: [Option<&str>; 3] = [Some("pro"), Some("free"), None];

struct Builder {
    calls: Vec<Call>,
    random: Random,
}

impl Builder {
    fn push(
        &mut self,
        kind: &'static str,
        event: Option<&'static str>,
        key: Key,
        at: DateTime<Utc>,
    ) -> &mut Call {
        let message_id = format!("m{:016x}", self.random.next());
        let (user_id, anonymous_id) = match key {
            Key::User(user) => (Some(user), None),
            Key::Anonymous(anonymous) => (None, Some(anonymous)),
        };
        self.calls.push(Call {
            kind,
            event,
            user_id,
            anonymous_id,
            previous_id: None,
            at,
            message_id,
            plan: None,
            path: None,
        });
        self.calls.last_mut().unwrap()
    }

    fn random_event(&mut self, key: Key, at: DateTime<Utc>) {
        let plan = self.random.pick(&PLANS);
        if self.random.below(4) == 0 {
            let path = self.random.pick(&PATHS);
            let call = self.push("page", None, key, at);
            call.path = Some(path);
        } else {
            let name = self.random.pick(&NAMES);
            let call = self.push("track", Some(name), key, at);
            call.plan = plan;
        }
    }
}

#[derive(Debug, Clone)]
enum Key {
    User(String),
    Anonymous(String),
}

/// The calls, in no particular order.
pub fn calls() -> Vec<Call> {
    let mut b = Builder {
        calls: Vec::new(),
        random: Random(0x5eed_1234_abcd_0001),
    };
    let start = at("2026-03-14T00:00:00Z");
    let span_seconds = 31 * 86_400;
    for person in 0..60 {
        let user = format!("u{person}");
        let anonymous = format!("a{person}");
        let style = b.random.below(5);
        let events = 4 + b.random.below(18);
        let identify_at = b.random.below(events);
        let mut previous: Option<DateTime<Utc>> = None;
        for i in 0..events {
            let time = match previous {
                // Same instant as the event before.
                Some(time) if b.random.below(6) == 0 => time,
                // A few minutes after it, inside short windows.
                Some(time) if b.random.below(3) == 0 => {
                    time + Duration::seconds(b.random.below(3_600) as i64)
                }
                _ => start + Duration::seconds(b.random.below(span_seconds) as i64),
            };
            previous = Some(time);
            let key = match style {
                // Anonymous only.
                0 => Key::Anonymous(anonymous.clone()),
                // Anonymous, then identified part-way through.
                1 | 2 if i < identify_at => Key::Anonymous(anonymous.clone()),
                _ => Key::User(user.clone()),
            };
            b.random_event(key, time);
            if (style == 1 || style == 2) && i == identify_at {
                let call = b.push("identify", None, Key::User(user.clone()), time);
                call.anonymous_id = Some(anonymous.clone());
            }
        }
        if style == 3 {
            // Events under an old id, aliased to the user later.
            let old = format!("old{person}");
            let time = start + Duration::seconds(b.random.below(span_seconds) as i64);
            b.random_event(Key::User(old.clone()), time);
            b.random_event(Key::User(old.clone()), time + Duration::minutes(5));
            let call = b.push(
                "alias",
                None,
                Key::User(user.clone()),
                time + Duration::days(20),
            );
            call.previous_id = Some(old);
        }
    }
    edge_cases(&mut b);
    b.calls
}

/// Hand-placed persons for the edges of windows, days and ranges.
fn edge_cases(b: &mut Builder) {
    let user = |name: &str| Key::User(name.to_owned());
    // Exactly one window (1 day) from view to signup, and one second more.
    b.push(
        "track",
        Some("view"),
        user("edge-in"),
        at("2026-03-20T10:00:00Z"),
    );
    b.push(
        "track",
        Some("signup"),
        user("edge-in"),
        at("2026-03-21T10:00:00Z"),
    );
    b.push(
        "track",
        Some("view"),
        user("edge-out"),
        at("2026-03-20T10:00:00Z"),
    );
    b.push(
        "track",
        Some("signup"),
        user("edge-out"),
        at("2026-03-21T10:00:01Z"),
    );
    // Around Berlin's spring-forward day: its first and last instants, and the next day's first.
    for time in [
        "2026-03-28T23:00:00Z",
        "2026-03-29T21:59:59Z",
        "2026-03-29T22:00:00Z",
    ] {
        b.push("track", Some("view"), user("dst"), at(time));
        b.push("track", Some("signup"), user("dst"), at(time));
    }
    // Steps in reverse order, then in order.
    for (name, time) in [
        ("purchase", "2026-03-22T08:00:00Z"),
        ("signup", "2026-03-22T08:01:00Z"),
        ("view", "2026-03-22T08:02:00Z"),
        ("signup", "2026-03-22T08:03:00Z"),
        ("purchase", "2026-03-22T08:04:00Z"),
    ] {
        b.push("track", Some(name), user("reverse"), at(time));
    }
    // Two attempts that reach the same step: the later one counts (1 minute, not 10).
    for (name, time) in [
        ("view", "2026-03-23T09:00:00Z"),
        ("signup", "2026-03-23T09:10:00Z"),
        ("view", "2026-03-23T09:20:00Z"),
        ("signup", "2026-03-23T09:21:00Z"),
    ] {
        b.push("track", Some(name), user("retry"), at(time));
    }
    // Merged mid-funnel: view anonymously, identify, then sign up and buy.
    let anonymous = Key::Anonymous("anon-mid".into());
    b.push(
        "track",
        Some("view"),
        anonymous.clone(),
        at("2026-03-24T09:00:00Z"),
    );
    let call = b.push("identify", None, user("mid"), at("2026-03-24T09:10:00Z"));
    call.anonymous_id = Some("anon-mid".into());
    b.push(
        "track",
        Some("signup"),
        user("mid"),
        at("2026-03-24T09:20:00Z"),
    );
    b.push(
        "track",
        Some("purchase"),
        anonymous,
        at("2026-03-24T09:30:00Z"),
    );
    // Entry at the range's first instant (Berlin midnight), and just before it.
    b.push(
        "track",
        Some("view"),
        user("range-start"),
        at("2026-03-15T23:00:00Z"),
    );
    b.push(
        "track",
        Some("signup"),
        user("range-start"),
        at("2026-03-15T23:30:00Z"),
    );
    b.push(
        "track",
        Some("view"),
        user("range-before"),
        at("2026-03-15T22:59:59.999999Z"),
    );
    b.push(
        "track",
        Some("signup"),
        user("range-before"),
        at("2026-03-15T23:30:00Z"),
    );
}
