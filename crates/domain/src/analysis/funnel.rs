//! Funnels: how many persons went through a sequence of steps within a
//! conversion window, with the time each step took.
//!
//! Rules:
//! - A person enters at a first-step event inside the date range; later steps
//!   may happen after the range ends, within the window of that event.
//! - `ordered` (default): each step is a later event of the person than the
//!   step before (other events may come between). `strict`: each step is the
//!   person's very next event. `any`: the steps may happen in any order, all
//!   within one window.
//! - A person counts once, at the furthest step they reached. Their
//!   conversion is the latest entry that reached that step, and its steps are
//!   each the earliest that continue it; the times between steps and the
//!   breakdown value (read on the entry event) come from that conversion.
//! - In `any` order, step `k` is reached when steps 1..k all happened in one
//!   window that starts at a funnel event in the range, and its time is how
//!   much later steps 1..k were complete than steps 1..k-1.

use std::collections::HashMap;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    seconds, share, EventSpec, PersonFold, Scope, ScopeSpec, TimelineEvent, TimelineRequest,
};
use crate::query::{EventDimension, Filter, PlanContext, QueryError, TimeRange};

/// Fewest and most steps of a funnel.
const MIN_STEPS: usize = 2;
const MAX_STEPS: usize = 20;
/// Breakdown values returned when the request names no limit, and at most.
const DEFAULT_BREAKDOWN_LIMIT: u32 = 25;
const MAX_BREAKDOWN_LIMIT: u32 = 1_000;

/// How steps must follow each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepOrder {
    /// Each step is the person's next event.
    Strict,
    /// Each step comes after the one before; other events may come between.
    #[default]
    Ordered,
    /// The steps may come in any order.
    Any,
}

/// Window of a funnel whose spec names none.
pub const DEFAULT_WINDOW: Duration = Duration::days(14);

/// A funnel as clients ask it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelSpec {
    /// The range in which persons enter the funnel, its timezone and filters.
    pub scope: ScopeSpec,
    /// 2 to 20 steps.
    pub steps: Vec<EventSpec>,
    /// Conversion window from the first step; `None` for [`DEFAULT_WINDOW`].
    pub window: Option<Duration>,
    /// How steps must follow each other.
    pub order: StepOrder,
    /// A dimension read on each person's first-step event.
    pub breakdown: Option<EventDimension>,
    /// Breakdown values returned; `None` for the default (25).
    pub breakdown_limit: Option<u32>,
}

/// A checked funnel request.
#[derive(Debug, Clone)]
pub struct FunnelPlan {
    /// Timezone, range, filters.
    pub scope: Scope,
    /// Step names, for the answer.
    pub names: Vec<String>,
    /// The steps' filters.
    pub matchers: Vec<Filter>,
    /// Conversion window.
    pub window: Duration,
    /// Step order.
    pub order: StepOrder,
    /// Breakdown dimension.
    pub breakdown: Option<EventDimension>,
    /// Breakdown values returned.
    pub breakdown_limit: usize,
}

impl FunnelPlan {
    /// Checks a spec.
    pub fn new(spec: &FunnelSpec, context: &PlanContext) -> Result<Self, QueryError> {
        if !(MIN_STEPS..=MAX_STEPS).contains(&spec.steps.len()) {
            return Err(QueryError::new(
                "steps",
                format!("a funnel has {MIN_STEPS} to {MAX_STEPS} steps"),
            ));
        }
        let scope = Scope::resolve(context, &spec.scope)?;
        let matchers = spec
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| step.matcher(&format!("steps[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let window = spec.window.unwrap_or(DEFAULT_WINDOW);
        if window <= Duration::zero() || window > Duration::days(super::MAX_WINDOW_DAYS) {
            return Err(QueryError::new(
                "window",
                format!("must be between 1s and {}d", super::MAX_WINDOW_DAYS),
            ));
        }
        let limit = spec.breakdown_limit.unwrap_or(DEFAULT_BREAKDOWN_LIMIT);
        super::check_count(limit, "breakdown_limit", 1..=MAX_BREAKDOWN_LIMIT)?;
        Ok(FunnelPlan {
            scope,
            names: spec.steps.iter().map(|s| s.event.clone()).collect(),
            matchers,
            window,
            order: spec.order,
            breakdown: spec.breakdown.clone(),
            breakdown_limit: limit as usize,
        })
    }

    /// The events the funnel reads: entries in the range, later steps until
    /// one window after it.
    pub fn timeline(&self) -> TimelineRequest {
        let range = TimeRange {
            from: self.scope.range.from,
            to: self
                .scope
                .range
                .to
                .checked_add_signed(self.window)
                .unwrap_or(self.scope.range.to),
        };
        let mut request = self.scope.timeline(range, self.matchers.clone());
        request.all_events = self.order == StepOrder::Strict;
        request.ordered_ties = true;
        request.labels = self.breakdown.iter().cloned().collect();
        request
    }

    /// The request as the answer echoes it.
    pub fn normalized(&self) -> Value {
        json!({
            "steps": self.names,
            "window_seconds": self.window.num_seconds(),
            "order": self.order,
            "date_range": self.scope.described_range(),
            "timezone": self.scope.timezone.name(),
            "breakdown": self.breakdown.as_ref().map(ToString::to_string),
        })
    }
}

/// One person's conversion: the steps reached, and the microseconds each
/// step after the first took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Steps reached, from 1.
    pub reached: usize,
    /// Time from the step before, for steps 2..=reached.
    pub step_times_us: Vec<i64>,
    /// Position of the entry event in the person's events.
    pub entry: usize,
}

/// The conversion of one person (events in order), if they entered.
pub fn convert(plan: &FunnelPlan, events: &[TimelineEvent]) -> Option<Conversion> {
    let steps = plan.matchers.len();
    let window = plan.window.num_microseconds().unwrap_or(i64::MAX);
    let range_end = plan.scope.range.to.timestamp_micros();
    let enters = |e: &TimelineEvent| e.timestamp_us < range_end;
    match plan.order {
        StepOrder::Ordered => ordered(events, steps, window, enters),
        StepOrder::Strict => strict(events, steps, window, enters),
        StepOrder::Any => any_order(events, steps, window, enters),
    }
}

/// Latest entry per step reached so far; then the earliest continuation.
fn ordered(
    events: &[TimelineEvent],
    steps: usize,
    window: i64,
    enters: impl Fn(&TimelineEvent) -> bool,
) -> Option<Conversion> {
    // entry[k]: the latest entry position from which step k+1 was reached.
    let mut entry: Vec<Option<usize>> = vec![None; steps];
    for (position, event) in events.iter().enumerate() {
        for k in (1..steps).rev() {
            if let Some(start) = entry[k - 1] {
                if event.matches(k) && event.timestamp_us - events[start].timestamp_us <= window {
                    entry[k] = Some(entry[k].map_or(start, |current| current.max(start)));
                }
            }
        }
        if event.matches(0) && enters(event) {
            entry[0] = Some(position);
        }
    }
    let reached = entry.iter().rposition(Option::is_some)? + 1;
    let start = entry[reached - 1]?;
    let deadline = events[start].timestamp_us.saturating_add(window);
    let mut step_times_us = Vec::with_capacity(reached - 1);
    let mut current = start;
    for k in 1..reached {
        let next = (current + 1..events.len())
            .take_while(|&p| events[p].timestamp_us <= deadline)
            .find(|&p| events[p].matches(k))?;
        step_times_us.push(events[next].timestamp_us - events[current].timestamp_us);
        current = next;
    }
    Some(Conversion {
        reached,
        step_times_us,
        entry: start,
    })
}

/// Chains of consecutive events; the latest entry of the longest chain.
fn strict(
    events: &[TimelineEvent],
    steps: usize,
    window: i64,
    enters: impl Fn(&TimelineEvent) -> bool,
) -> Option<Conversion> {
    // chains[k]: the entry of a chain that reached step k+1 at the previous event.
    let mut chains: Vec<Option<usize>> = vec![None; steps];
    let mut best: Option<(usize, usize)> = None; // (reached, entry)
    for (position, event) in events.iter().enumerate() {
        let mut next: Vec<Option<usize>> = vec![None; steps];
        for k in 1..steps {
            if let Some(start) = chains[k - 1] {
                if event.matches(k) && event.timestamp_us - events[start].timestamp_us <= window {
                    next[k] = Some(start);
                }
            }
        }
        if event.matches(0) && enters(event) {
            next[0] = Some(position);
        }
        for (k, start) in next.iter().enumerate() {
            if let Some(start) = *start {
                let reached = k + 1;
                if best.is_none_or(|(r, s)| reached > r || (reached == r && start > s)) {
                    best = Some((reached, start));
                }
            }
        }
        chains = next;
    }
    let (reached, start) = best?;
    let step_times_us = (start + 1..start + reached)
        .map(|p| events[p].timestamp_us - events[p - 1].timestamp_us)
        .collect();
    Some(Conversion {
        reached,
        step_times_us,
        entry: start,
    })
}

/// Windows that start at each funnel event in the range.
fn any_order(
    events: &[TimelineEvent],
    steps: usize,
    window: i64,
    enters: impl Fn(&TimelineEvent) -> bool,
) -> Option<Conversion> {
    // Positions of each step's events, ascending.
    let mut positions: Vec<Vec<usize>> = vec![Vec::new(); steps];
    for (position, event) in events.iter().enumerate() {
        for (k, list) in positions.iter_mut().enumerate() {
            if event.matches(k) {
                list.push(position);
            }
        }
    }
    let mut best: Option<(usize, usize, Vec<i64>)> = None;
    for (start, event) in events.iter().enumerate() {
        if event.matches == 0 || !enters(event) {
            continue;
        }
        let deadline = event.timestamp_us.saturating_add(window);
        // The earliest time of each step within the window, while every step so far has one.
        let mut completed = Vec::with_capacity(steps);
        let mut complete_at = i64::MIN;
        for list in &positions {
            let first = list.partition_point(|&p| p < start);
            match list.get(first).map(|&p| events[p].timestamp_us) {
                Some(time) if time <= deadline => {
                    complete_at = complete_at.max(time);
                    completed.push(complete_at);
                }
                _ => break,
            }
        }
        let reached = completed.len();
        if reached > 0 && best.as_ref().is_none_or(|(r, _, _)| reached >= *r) {
            best = Some((reached, start, completed));
        }
    }
    let (reached, start, completed) = best?;
    Some(Conversion {
        reached,
        step_times_us: completed.windows(2).map(|w| w[1] - w[0]).collect(),
        entry: start,
    })
}

/// One step of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepResult {
    /// The step's event name.
    pub event: String,
    /// Persons who reached it.
    pub users: u64,
    /// Share of the first step's persons (4 decimals).
    pub conversion_from_first: f64,
    /// Share of the previous step's persons (4 decimals).
    pub conversion_from_previous: f64,
    /// Median seconds from the previous step (null for the first).
    pub median_seconds_from_previous: Option<f64>,
    /// Average seconds from the previous step (null for the first).
    pub average_seconds_from_previous: Option<f64>,
}

/// The persons of one group, step by step.
#[derive(Debug, Default)]
struct Tally {
    users: Vec<u64>,
    times: Vec<Vec<i64>>,
}

impl Tally {
    fn new(steps: usize) -> Self {
        Tally {
            users: vec![0; steps],
            times: vec![Vec::new(); steps],
        }
    }

    fn add(&mut self, conversion: &Conversion) {
        for k in 0..conversion.reached {
            self.users[k] += 1;
            if k > 0 {
                self.times[k].push(conversion.step_times_us[k - 1]);
            }
        }
    }

    fn steps(mut self, names: &[String]) -> Vec<StepResult> {
        let first = self.users[0];
        (0..names.len())
            .map(|k| {
                let times = &mut self.times[k];
                times.sort_unstable();
                let (median, average) = if k == 0 || times.is_empty() {
                    (None, None)
                } else {
                    let middle = times.len() / 2;
                    let median = if times.len() % 2 == 1 {
                        times[middle] as f64
                    } else {
                        (times[middle - 1] as f64 + times[middle] as f64) / 2.0
                    };
                    let total: i128 = times.iter().map(|&t| i128::from(t)).sum();
                    let average = total as f64 / times.len() as f64;
                    (Some(seconds(median)), Some(seconds(average)))
                };
                StepResult {
                    event: names[k].clone(),
                    users: self.users[k],
                    conversion_from_first: share(self.users[k], first),
                    conversion_from_previous: share(
                        self.users[k],
                        if k == 0 { first } else { self.users[k - 1] },
                    ),
                    median_seconds_from_previous: median,
                    average_seconds_from_previous: average,
                }
            })
            .collect()
    }
}

/// The funnel of one breakdown value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BreakdownResult {
    /// The value on the persons' entry events (null: unset).
    pub value: Option<String>,
    /// The steps, as in the overall funnel.
    pub steps: Vec<StepResult>,
}

/// Facts about a funnel answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FunnelMeta {
    /// Distinct breakdown values before the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown_values: Option<usize>,
    /// Time spent answering, in milliseconds.
    pub took_ms: u64,
}

/// The answer of `POST /v1/funnel`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FunnelAnswer {
    /// Every step, over all persons.
    pub steps: Vec<StepResult>,
    /// Per breakdown value (most persons entered first), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<BreakdownResult>>,
    /// Facts about the answer.
    pub meta: FunnelMeta,
    /// The request, normalised.
    #[schema(value_type = Object)]
    pub query: Value,
}

/// Persons counted so far: over all, and per breakdown value.
pub struct FunnelTally {
    overall: Tally,
    groups: HashMap<Option<String>, Tally>,
}

impl PersonFold for FunnelPlan {
    type Tally = FunnelTally;
    type Output = FunnelAnswer;

    fn timeline(&self) -> TimelineRequest {
        FunnelPlan::timeline(self)
    }

    fn start(&self) -> FunnelTally {
        FunnelTally {
            overall: Tally::new(self.names.len()),
            groups: HashMap::new(),
        }
    }

    fn add_person(&self, tally: &mut FunnelTally, events: &[TimelineEvent]) {
        let Some(conversion) = convert(self, events) else {
            return;
        };
        tally.overall.add(&conversion);
        if self.breakdown.is_some() {
            let steps = self.names.len();
            tally
                .groups
                .entry(events[conversion.entry].label().map(str::to_owned))
                .or_insert_with(|| Tally::new(steps))
                .add(&conversion);
        }
    }

    fn finish(&self, tally: FunnelTally) -> FunnelAnswer {
        let breakdown_values = self.breakdown.as_ref().map(|_| tally.groups.len());
        let breakdown = self.breakdown.as_ref().map(|_| {
            let mut groups: Vec<(Option<String>, Tally)> = tally.groups.into_iter().collect();
            groups.sort_by(|(a, x), (b, y)| {
                y.users[0]
                    .cmp(&x.users[0])
                    .then_with(|| a.is_none().cmp(&b.is_none()))
                    .then_with(|| a.cmp(b))
            });
            groups
                .into_iter()
                .take(self.breakdown_limit)
                .map(|(value, tally)| BreakdownResult {
                    value,
                    steps: tally.steps(&self.names),
                })
                .collect()
        });
        FunnelAnswer {
            steps: tally.overall.steps(&self.names),
            breakdown,
            meta: FunnelMeta {
                breakdown_values,
                took_ms: 0,
            },
            query: self.normalized(),
        }
    }
}

super::analysis!(FunnelPlan, FunnelSpec, FunnelAnswer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fold_all;
    use crate::query::DateRangeSpec;
    use chrono::{DateTime, NaiveDate};

    fn plan(order: StepOrder, steps: usize) -> FunnelPlan {
        let context = PlanContext {
            project_id: "p".into(),
            default_timezone: chrono_tz::UTC,
            now: DateTime::parse_from_rfc3339("2026-03-31T00:00:00Z")
                .unwrap()
                .to_utc(),
            data_bounds: None,
            session_timeout: Duration::minutes(30),
        };
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let spec = FunnelSpec {
            scope: ScopeSpec {
                date_range: DateRangeSpec::Dates(day, day),
                timezone: None,
                filter: None,
            },
            steps: (0..steps)
                .map(|i| EventSpec {
                    event: format!("s{i}"),
                    filter: None,
                })
                .collect(),
            window: Some(Duration::seconds(10)),
            order,
            breakdown: None,
            breakdown_limit: None,
        };
        FunnelPlan::new(&spec, &context).unwrap()
    }

    fn day_start() -> i64 {
        DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .timestamp_micros()
    }

    /// Events `(seconds into the range, matched steps)`.
    fn timeline(events: &[(i64, &[usize])]) -> Vec<TimelineEvent> {
        events
            .iter()
            .map(|(second, steps)| TimelineEvent {
                person: 1,
                timestamp_us: day_start() + second * 1_000_000,
                matches: steps.iter().map(|k| 1u64 << k).sum(),
                labels: Vec::new(),
            })
            .collect()
    }

    fn reached(
        order: StepOrder,
        steps: usize,
        events: &[(i64, &[usize])],
    ) -> Option<(usize, Vec<i64>)> {
        convert(&plan(order, steps), &timeline(events)).map(|c| {
            (
                c.reached,
                c.step_times_us.iter().map(|t| t / 1_000_000).collect(),
            )
        })
    }

    #[test]
    fn ordered_takes_the_latest_entry_that_gets_furthest() {
        let events: &[(i64, &[usize])] = &[(0, &[0]), (5, &[0]), (6, &[1]), (20, &[2])];
        assert_eq!(reached(StepOrder::Ordered, 3, events), Some((2, vec![1])));
        // Step 3 within 10 s of the second entry.
        let events: &[(i64, &[usize])] = &[(0, &[0]), (5, &[0]), (6, &[1]), (15, &[2])];
        assert_eq!(
            reached(StepOrder::Ordered, 3, events),
            Some((3, vec![1, 9]))
        );
        // Out of order steps do not count; the window is inclusive.
        let events: &[(i64, &[usize])] = &[(0, &[1]), (1, &[0]), (11, &[1])];
        assert_eq!(reached(StepOrder::Ordered, 2, events), Some((2, vec![10])));
        assert_eq!(reached(StepOrder::Ordered, 2, &[(0, &[1])]), None);
    }

    #[test]
    fn a_repeated_step_needs_two_events() {
        let events: &[(i64, &[usize])] = &[(0, &[0, 2]), (1, &[1])];
        assert_eq!(reached(StepOrder::Ordered, 3, events), Some((2, vec![1])));
        let events: &[(i64, &[usize])] = &[(0, &[0, 2]), (1, &[1]), (1, &[0, 2])];
        assert_eq!(
            reached(StepOrder::Ordered, 3, events),
            Some((3, vec![1, 0]))
        );
    }

    #[test]
    fn strict_needs_the_very_next_event() {
        let events: &[(i64, &[usize])] = &[(0, &[0]), (1, &[]), (2, &[1])];
        assert_eq!(reached(StepOrder::Strict, 2, events), Some((1, vec![])));
        let events: &[(i64, &[usize])] = &[(0, &[0]), (1, &[]), (2, &[0]), (3, &[1])];
        assert_eq!(reached(StepOrder::Strict, 2, events), Some((2, vec![1])));
    }

    #[test]
    fn any_order_counts_steps_done_in_one_window() {
        let events: &[(i64, &[usize])] = &[(0, &[2]), (3, &[1]), (4, &[0])];
        assert_eq!(reached(StepOrder::Any, 3, events), Some((3, vec![0, 0])));
        let events: &[(i64, &[usize])] = &[(0, &[1]), (4, &[0]), (30, &[2])];
        assert_eq!(reached(StepOrder::Any, 3, events), Some((2, vec![0])));
        let events: &[(i64, &[usize])] = &[(0, &[0]), (4, &[1]), (8, &[2])];
        assert_eq!(reached(StepOrder::Any, 3, events), Some((3, vec![4, 4])));
    }

    #[test]
    fn entries_after_the_range_do_not_count() {
        let after = 86_400;
        let events: &[(i64, &[usize])] = &[(after, &[0]), (after + 1, &[1])];
        assert_eq!(reached(StepOrder::Ordered, 2, events), None);
        let events: &[(i64, &[usize])] = &[(after - 1, &[0]), (after + 1, &[1])];
        assert_eq!(reached(StepOrder::Ordered, 2, events), Some((2, vec![2])));
    }

    #[test]
    fn answers_count_each_person_once_with_median_and_average() {
        let plan = plan(StepOrder::Ordered, 2);
        let mut events = Vec::new();
        for (person, gap) in [(1u64, 2i64), (2, 4), (3, 9)] {
            for (second, step) in [(0, 0), (gap, 1)] {
                events.push(TimelineEvent {
                    person,
                    timestamp_us: day_start() + second * 1_000_000,
                    matches: 1 << step,
                    labels: Vec::new(),
                });
            }
        }
        events.push(TimelineEvent {
            person: 4,
            timestamp_us: day_start(),
            matches: 1,
            labels: Vec::new(),
        });
        let answer = fold_all(plan, events);
        assert_eq!(answer.steps[0].users, 4);
        assert_eq!(answer.steps[1].users, 3);
        assert_eq!(answer.steps[1].conversion_from_first, 0.75);
        assert_eq!(answer.steps[1].median_seconds_from_previous, Some(4.0));
        assert_eq!(answer.steps[1].average_seconds_from_previous, Some(5.0));
        assert_eq!(answer.steps[0].median_seconds_from_previous, None);
    }
}
