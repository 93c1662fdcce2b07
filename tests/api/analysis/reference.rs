//! Straightforward computations of every analysis over the generated calls,
//! written from the definitions, to check the service's answers against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::dataset::Call;

/// An event specification: a name, and optionally the plan property it must have.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub name: &'static str,
    pub plan: Option<&'static str>,
}

impl Step {
    pub fn named(name: &'static str) -> Self {
        Step { name, plan: None }
    }

    pub fn matches(&self, call: &Call) -> bool {
        call.name() == self.name && self.plan.is_none_or(|plan| call.plan == Some(plan))
    }

    pub fn json(&self) -> Value {
        match self.plan {
            None => json!({"event": self.name}),
            Some(plan) => {
                json!({"event": self.name, "filters": [["is", "event:props:plan", [plan]]]})
            }
        }
    }
}

/// Each key's person: keys joined by identify and alias calls, transitively.
pub fn person_of(calls: &[Call]) -> HashMap<String, String> {
    let mut person: HashMap<String, String> = HashMap::new();
    for call in calls {
        person.insert(call.key().to_owned(), call.key().to_owned());
    }
    let links: Vec<(String, String)> = calls
        .iter()
        .filter_map(|call| {
            let user = call.user_id.clone()?;
            let other = match call.kind {
                "identify" => call.anonymous_id.clone()?,
                "alias" => call.previous_id.clone()?,
                _ => return None,
            };
            Some((other, user))
        })
        .collect();
    // Relabel until every linked pair has one label (the smallest key).
    loop {
        let mut changed = false;
        for (a, b) in &links {
            let pa = person.get(a).cloned().unwrap_or_else(|| a.clone());
            let pb = person.get(b).cloned().unwrap_or_else(|| b.clone());
            if pa != pb {
                let (keep, drop) = if pa < pb { (pa, pb) } else { (pb, pa) };
                for value in person.values_mut() {
                    if *value == drop {
                        *value = keep.clone();
                    }
                }
                person.insert(a.clone(), keep.clone());
                person.insert(b.clone(), keep.clone());
                changed = true;
            }
        }
        if !changed {
            return person;
        }
    }
}

/// Each person's calls that `keep` accepts, by time then `messageId`.
pub fn timelines(calls: &[Call], keep: impl Fn(&Call) -> bool) -> BTreeMap<String, Vec<&Call>> {
    let person = person_of(calls);
    let mut by_person: BTreeMap<String, Vec<&Call>> = BTreeMap::new();
    for call in calls.iter().filter(|c| keep(c)) {
        by_person
            .entry(person[call.key()].clone())
            .or_default()
            .push(call);
    }
    for events in by_person.values_mut() {
        events.sort_by(|a, b| (a.at, &a.message_id).cmp(&(b.at, &b.message_id)));
    }
    by_person
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

fn seconds(micros: f64) -> f64 {
    (micros / 1_000.0).round() / 1_000.0
}

fn micros(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_microseconds().unwrap()
}

/// A funnel question.
pub struct Funnel {
    pub steps: Vec<Step>,
    pub window: Duration,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub order: &'static str,
    /// Only calls whose page is not /docs.
    pub skip_docs: bool,
}

/// (steps reached, microseconds per step after the first, entry call).
type Attempt<'a> = (usize, Vec<i64>, &'a Call);

fn attempt_ordered<'a>(f: &Funnel, events: &[&'a Call], entry: usize) -> Attempt<'a> {
    let start = events[entry];
    let mut times = Vec::new();
    let mut current = entry;
    for step in &f.steps[1..] {
        let next = (current + 1..events.len())
            .find(|&p| step.matches(events[p]) && events[p].at - start.at <= f.window);
        match next {
            Some(p) => {
                times.push(micros(events[current].at, events[p].at));
                current = p;
            }
            None => break,
        }
    }
    (times.len() + 1, times, start)
}

fn attempt_strict<'a>(f: &Funnel, events: &[&'a Call], entry: usize) -> Attempt<'a> {
    let start = events[entry];
    let mut times = Vec::new();
    for (k, step) in f.steps.iter().enumerate().skip(1) {
        match events.get(entry + k) {
            Some(e) if step.matches(e) && e.at - start.at <= f.window => {
                times.push(micros(events[entry + k - 1].at, e.at));
            }
            _ => break,
        }
    }
    (times.len() + 1, times, start)
}

fn attempt_any<'a>(f: &Funnel, events: &[&'a Call], entry: usize) -> Attempt<'a> {
    let start = events[entry];
    let mut completed: Vec<DateTime<Utc>> = Vec::new();
    for step in &f.steps {
        let first = events[entry..]
            .iter()
            .find(|e| step.matches(e) && e.at - start.at <= f.window);
        match first {
            Some(e) => {
                let done = completed.last().map_or(e.at, |last| (*last).max(e.at));
                completed.push(done);
            }
            None => break,
        }
    }
    let times = completed.windows(2).map(|w| micros(w[0], w[1])).collect();
    (completed.len(), times, start)
}

fn step_json(f: &Funnel, users: &[u64], times: &[Vec<i64>]) -> Value {
    let steps: Vec<Value> = (0..f.steps.len())
        .map(|k| {
            let mut sorted = times[k].clone();
            sorted.sort_unstable();
            let (median, average) = if k == 0 || sorted.is_empty() {
                (Value::Null, Value::Null)
            } else {
                let n = sorted.len();
                let median = if n % 2 == 1 {
                    sorted[n / 2] as f64
                } else {
                    (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
                };
                let average = sorted.iter().sum::<i64>() as f64 / n as f64;
                (json!(seconds(median)), json!(seconds(average)))
            };
            json!({
                "event": f.steps[k].name,
                "users": users[k],
                "conversion_from_first": share(users[k], users[0]),
                "conversion_from_previous": share(users[k], if k == 0 { users[0] } else { users[k - 1] }),
                "median_seconds_from_previous": median,
                "average_seconds_from_previous": average,
            })
        })
        .collect();
    json!(steps)
}

/// Persons per step, and each step's times from the one before.
type Tally = (Vec<u64>, Vec<Vec<i64>>);

/// `{"steps": [...], "breakdown": [...]}` with the breakdown on `plan`.
pub fn funnel(calls: &[Call], f: &Funnel) -> Value {
    let timelines = timelines(calls, |c| {
        c.at >= f.from && c.at < f.to + f.window && !(f.skip_docs && c.path == Some("/docs"))
    });
    let n = f.steps.len();
    let mut groups: BTreeMap<Option<&str>, Tally> = BTreeMap::new();
    let mut overall = (vec![0u64; n], vec![Vec::new(); n]);
    for events in timelines.values() {
        let mut best: Option<Attempt> = None;
        for (entry, call) in events.iter().enumerate() {
            let is_entry = if f.order == "any" {
                f.steps.iter().any(|s| s.matches(call))
            } else {
                f.steps[0].matches(call)
            };
            if !is_entry || call.at >= f.to {
                continue;
            }
            let attempt = match f.order {
                "strict" => attempt_strict(f, events, entry),
                "any" => attempt_any(f, events, entry),
                _ => attempt_ordered(f, events, entry),
            };
            if attempt.0 == 0 {
                continue;
            }
            // The latest entry among those that got furthest.
            if best.as_ref().is_none_or(|b| attempt.0 >= b.0) {
                best = Some(attempt);
            }
        }
        let Some((reached, times, entry)) = best else {
            continue;
        };
        let group = groups
            .entry(entry.plan)
            .or_insert_with(|| (vec![0; n], vec![Vec::new(); n]));
        for k in 0..reached {
            overall.0[k] += 1;
            group.0[k] += 1;
            if k > 0 {
                overall.1[k].push(times[k - 1]);
                group.1[k].push(times[k - 1]);
            }
        }
    }
    let mut breakdown: Vec<(Option<&str>, Tally)> = groups.into_iter().collect();
    breakdown.sort_by(|a, b| {
        (b.1).0[0]
            .cmp(&(a.1).0[0])
            .then_with(|| a.0.is_none().cmp(&b.0.is_none()))
            .then_with(|| a.0.cmp(&b.0))
    });
    json!({
        "steps": step_json(f, &overall.0, &overall.1),
        "breakdown": breakdown.iter().map(|(value, (users, times))| json!({
            "value": value, "steps": step_json(f, users, times)
        })).collect::<Vec<_>>(),
    })
}

/// A calendar period's first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The first local day of the period holding `time`.
    pub fn of(self, time: DateTime<Utc>, tz: Tz) -> NaiveDate {
        let date = time.with_timezone(&tz).date_naive();
        match self {
            Period::Day => date,
            Period::Week => date - Duration::days(date.weekday().num_days_from_monday() as i64),
            Period::Month => date.with_day(1).unwrap(),
        }
    }

    pub fn next(self, first: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => first + Duration::days(1),
            Period::Week => first + Duration::days(7),
            Period::Month => first.checked_add_months(Months::new(1)).unwrap(),
        }
    }

    /// The periods from the one holding `from` to the one holding `to - 1µs`.
    pub fn covering(self, from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<NaiveDate> {
        let last = self.of(to - Duration::microseconds(1), tz);
        let mut periods = vec![self.of(from, tz)];
        while *periods.last().unwrap() < last {
            periods.push(self.next(*periods.last().unwrap()));
        }
        periods
    }
}

pub fn label(first: NaiveDate, tz: Tz) -> String {
    tz.from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Cohorts as the answer lists them.
#[allow(clippy::too_many_arguments)]
pub fn retention(
    calls: &[Call],
    start: Step,
    back: Step,
    period: Period,
    periods: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    first_time: bool,
    tz: Tz,
) -> Value {
    let timelines = timelines(calls, |_| true);
    let cohorts = period.covering(from, to, tz);
    let mut rows = Vec::new();
    for cohort in &cohorts {
        let mut later = vec![*cohort];
        for _ in 1..periods {
            later.push(period.next(*later.last().unwrap()));
        }
        let mut size = 0u64;
        let mut returned = vec![0u64; periods];
        for events in timelines.values() {
            let member = if first_time {
                events
                    .iter()
                    .find(|e| start.matches(e))
                    .is_some_and(|first| {
                        first.at >= from && first.at < to && period.of(first.at, tz) == *cohort
                    })
            } else {
                events.iter().any(|e| {
                    start.matches(e) && e.at >= from && e.at < to && period.of(e.at, tz) == *cohort
                })
            };
            if !member {
                continue;
            }
            size += 1;
            for (k, p) in later.iter().enumerate() {
                if events
                    .iter()
                    .any(|e| back.matches(e) && period.of(e.at, tz) == *p)
                {
                    returned[k] += 1;
                }
            }
        }
        rows.push(json!({
            "period": label(*cohort, tz),
            "size": size,
            "returned": returned,
            "share": returned.iter().map(|&n| share(n, size)).collect::<Vec<_>>(),
        }));
    }
    json!(rows)
}

/// `[{"periods": N, "users": X}]` for N from 1 to the periods of the range.
pub fn stickiness(
    calls: &[Call],
    step: Step,
    period: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Value {
    let timelines = timelines(calls, |c| c.at >= from && c.at < to && step.matches(c));
    let total = period.covering(from, to, tz).len();
    let mut counts = vec![0u64; total + 1];
    for events in timelines.values() {
        let active: BTreeSet<NaiveDate> = events.iter().map(|e| period.of(e.at, tz)).collect();
        counts[active.len()] += 1;
    }
    json!((1..=total)
        .map(|n| json!({"periods": n, "users": counts[n]}))
        .collect::<Vec<_>>())
}

/// Per period: new, returning, resurrecting, dormant.
pub fn lifecycle(
    calls: &[Call],
    step: Step,
    period: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Value {
    let timelines = timelines(calls, |c| step.matches(c));
    let periods = period.covering(from, to, tz);
    let mut rows = Vec::new();
    for (i, p) in periods.iter().enumerate() {
        let before = if i == 0 {
            // The period before the first: step back one day at a time.
            period.of(
                tz.from_local_datetime(&p.and_hms_opt(0, 0, 0).unwrap())
                    .earliest()
                    .unwrap()
                    .to_utc()
                    - Duration::hours(1),
                tz,
            )
        } else {
            periods[i - 1]
        };
        let (mut new, mut returning, mut resurrecting, mut dormant) = (0, 0, 0, 0);
        for events in timelines.values() {
            let active: BTreeSet<NaiveDate> = events.iter().map(|e| period.of(e.at, tz)).collect();
            let first = *active.iter().next().unwrap();
            let now = active.contains(p);
            let was = active.contains(&before);
            if now && first == *p {
                new += 1;
            } else if now && was {
                returning += 1;
            } else if now {
                resurrecting += 1;
            } else if was {
                dormant += 1;
            }
        }
        rows.push(
            json!({"period": label(*p, tz), "new": new, "returning": returning,
                         "resurrecting": resurrecting, "dormant": dormant}),
        );
    }
    json!(rows)
}

/// Nodes and links from each person's first start call.
pub fn paths(
    calls: &[Call],
    start: Step,
    next: bool,
    depth: usize,
    per_step: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Value {
    let timelines = timelines(calls, |c| c.at >= from && c.at < to);
    let mut walks: Vec<Vec<String>> = Vec::new();
    for events in timelines.values() {
        let Some(anchor) = events.iter().position(|e| start.matches(e)) else {
            continue;
        };
        let walk: Vec<String> = if next {
            events[anchor..]
                .iter()
                .take(depth + 1)
                .map(|e| e.name().to_owned())
                .collect()
        } else {
            events[..=anchor]
                .iter()
                .rev()
                .take(depth + 1)
                .map(|e| e.name().to_owned())
                .collect()
        };
        walks.push(walk);
    }
    let ranked = |counts: HashMap<String, u64>| {
        let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    };
    let mut nodes = Vec::new();
    for step in 0..=depth {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for walk in walks.iter().filter(|w| w.len() > step) {
            *counts.entry(walk[step].clone()).or_default() += 1;
        }
        let kept: Vec<String> = ranked(counts)
            .into_iter()
            .take(per_step)
            .map(|(n, _)| n)
            .collect();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for walk in walks.iter_mut().filter(|w| w.len() > step) {
            if !kept.contains(&walk[step]) {
                walk[step] = "(other)".into();
            }
            *counts.entry(walk[step].clone()).or_default() += 1;
        }
        for (event, users) in ranked(counts) {
            nodes.push(json!({"step": step, "event": event, "users": users}));
        }
    }
    let mut links = Vec::new();
    for step in 1..=depth {
        let mut counts: HashMap<(String, String), u64> = HashMap::new();
        for walk in walks.iter().filter(|w| w.len() > step) {
            *counts
                .entry((walk[step - 1].clone(), walk[step].clone()))
                .or_default() += 1;
        }
        let mut counts: Vec<((String, String), u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for ((source, target), users) in counts {
            links.push(json!({"step": step, "source": source, "target": target, "users": users}));
        }
    }
    json!({"nodes": nodes, "links": links})
}

/// Distinct persons per local day with any call.
pub fn users_per_day(
    calls: &[Call],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Vec<(String, u64)> {
    let timelines = timelines(calls, |c| c.at >= from && c.at < to);
    let mut days: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for events in timelines.values() {
        let active: BTreeSet<NaiveDate> = events.iter().map(|e| Period::Day.of(e.at, tz)).collect();
        for day in active {
            *days.entry(day).or_default() += 1;
        }
    }
    days.into_iter()
        .map(|(day, users)| (label(day, tz), users))
        .collect()
}

/// One session of the reference.
pub struct RefSession {
    pub day: String,
    pub person: String,
    pub events: u64,
    pub page_views: u64,
    pub duration_us: i64,
    pub entry_page: Option<&'static str>,
    pub exit_page: Option<&'static str>,
}

/// Every person's sessions: runs of calls in the range with gaps of at most `timeout`.
pub fn sessions(
    calls: &[Call],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
    timeout: Duration,
) -> Vec<RefSession> {
    let mut sessions: Vec<RefSession> = Vec::new();
    for (person, events) in timelines(calls, |c| c.at >= from && c.at < to) {
        let mut start = 0;
        for i in 0..events.len() {
            let ends = i + 1 == events.len() || events[i + 1].at - events[i].at > timeout;
            if !ends {
                continue;
            }
            let run = &events[start..=i];
            let pages: Vec<&&Call> = run.iter().filter(|c| c.kind == "page").collect();
            sessions.push(RefSession {
                day: label(Period::Day.of(run[0].at, tz), tz),
                person: person.clone(),
                events: run.len() as u64,
                page_views: pages.len() as u64,
                duration_us: micros(run[0].at, run[run.len() - 1].at),
                entry_page: pages.first().and_then(|c| c.path),
                exit_page: pages.last().and_then(|c| c.path),
            });
            start = i + 1;
        }
    }
    sessions
}

/// `[sessions, bounce_rate, session_duration, events_per_session, users, events]` of some sessions.
pub fn session_metrics(sessions: &[&RefSession]) -> Value {
    let n = sessions.len() as f64;
    let round = |value: f64, decimals: i32| {
        let scale = 10f64.powi(decimals);
        (value * scale).round() / scale
    };
    let bounces = sessions
        .iter()
        .filter(|s| s.page_views == 1 && s.events == 1)
        .count() as f64;
    let events: u64 = sessions.iter().map(|s| s.events).sum();
    let duration: i64 = sessions.iter().map(|s| s.duration_us).sum();
    let persons: BTreeSet<&str> = sessions.iter().map(|s| s.person.as_str()).collect();
    json!([
        sessions.len(),
        round(bounces * 100.0 / n, 1),
        round(duration as f64 / 1e6 / n, 3),
        round(events as f64 / n, 4),
        persons.len(),
        events,
    ])
}

/// Plausible's `[visitors, visits, pageviews, views_per_visit, bounce_rate,
/// visit_duration]` of some sessions.
pub fn web_metrics(sessions: &[&RefSession]) -> Value {
    let n = sessions.len() as f64;
    let round = |value: f64, decimals: i32| {
        let scale = 10f64.powi(decimals);
        (value * scale).round() / scale
    };
    let persons: BTreeSet<&str> = sessions.iter().map(|s| s.person.as_str()).collect();
    let page_views: u64 = sessions.iter().map(|s| s.page_views).sum();
    let bounces = sessions
        .iter()
        .filter(|s| s.page_views == 1 && s.events == 1)
        .count() as f64;
    let duration: i64 = sessions.iter().map(|s| s.duration_us).sum();
    json!([
        persons.len(),
        sessions.len(),
        page_views,
        round(page_views as f64 / n, 2),
        round(bounces * 100.0 / n, 1),
        round(duration as f64 / 1e6 / n, 3),
    ])
}
