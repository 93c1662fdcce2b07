//! Retention: of the persons who did a start event in a period (the cohort),
//! how many did a return event in each later period.
//!
//! `returned[k]` counts the cohort's persons with a return event in the k-th
//! period after the cohort's own (k = 0: the cohort's period itself). In the
//! `recurring` form a person joins the cohort of every period in the range in
//! which they did the start event; in the `first_time` form only the cohort of
//! the period of their first start event ever, when that falls in the range.
//! Periods that have not begun yet are left out of `returned`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    check_count, persons, share, AnalysisMeta, EventSpec, LocalClock, Period, Scope, TimelineEvent,
    TimelineRequest,
};
use crate::domain::query::{PlanContext, QueryError, TimeRange};

/// Most periods in a cohort's row.
const MAX_PERIODS: u32 = 400;

/// Which persons make up a cohort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CohortKind {
    /// Persons who did the start event in the period.
    #[default]
    Recurring,
    /// Persons whose first start event ever falls in the period.
    FirstTime,
}

/// `POST /v1/retention`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "start_event": {"event": "signup"},
    "return_event": {"event": "page"},
    "period": "week",
    "periods": 12,
    "date_range": ["2026-01-05", "2026-03-29"],
    "cohort": "first_time"
}))]
pub struct RetentionRequest {
    /// The event that puts a person in a cohort.
    pub start_event: EventSpec,
    /// The event that counts as a return.
    pub return_event: EventSpec,
    /// `day`, `week` (from Monday) or `month`, local to the timezone.
    pub period: Period,
    /// Periods in each cohort's row, its own included (1 to 400): `returned`
    /// has this many entries.
    pub periods: u32,
    /// As in `/v1/query`: the range of the cohorts' start events.
    #[schema(value_type = Object)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    /// `recurring` (default) or `first_time`.
    #[serde(default)]
    pub cohort: CohortKind,
}

/// A checked retention request.
#[derive(Debug, Clone)]
pub struct RetentionPlan {
    scope: Scope,
    start: crate::domain::query::Filter,
    back: crate::domain::query::Filter,
    period: Period,
    periods: u32,
    cohort: CohortKind,
}

impl RetentionPlan {
    /// Checks a request.
    pub fn new(request: &RetentionRequest, context: &PlanContext) -> Result<Self, QueryError> {
        check_count(request.periods, "periods", 1..=MAX_PERIODS)?;
        let scope = Scope::resolve(context, request)?;
        Ok(RetentionPlan {
            start: request.start_event.matcher("start_event")?,
            back: request.return_event.matcher("return_event")?,
            scope,
            period: request.period,
            periods: request.periods,
            cohort: request.cohort,
        })
    }

    fn cohorts(&self) -> std::ops::RangeInclusive<i64> {
        self.period.covering(self.scope.range, self.scope.timezone)
    }

    /// The span read: start events in the range (all earlier ones too for
    /// `first_time`) and return events until the last cohort's last period ends.
    fn read_range(&self) -> TimeRange {
        let last = *self.cohorts().end() + i64::from(self.periods) - 1;
        // Returns count from the start of the first cohort's period, which
        // may begin before the range.
        let from = match self.cohort {
            CohortKind::Recurring => self
                .period
                .start(*self.cohorts().start(), self.scope.timezone),
            CohortKind::FirstTime => chrono::DateTime::UNIX_EPOCH,
        };
        TimeRange {
            from: from.min(self.scope.range.from),
            to: self.period.start(last + 1, self.scope.timezone),
        }
    }

    /// Start and return events over [`RetentionPlan::read_range`].
    pub fn timeline(&self) -> TimelineRequest {
        self.scope.timeline(
            self.read_range(),
            vec![self.start.clone(), self.back.clone()],
        )
    }
}

/// One cohort of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Cohort {
    /// The cohort's period: its local start, with offset.
    pub period: String,
    /// Persons in the cohort.
    pub size: u64,
    /// Persons who returned in each period from the cohort's own on.
    pub returned: Vec<u64>,
    /// `returned` as shares of `size` (4 decimals).
    pub share: Vec<f64>,
}

/// The answer of `POST /v1/retention`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RetentionAnswer {
    /// One cohort per period of the range, oldest first.
    pub cohorts: Vec<Cohort>,
    /// Facts about the answer.
    pub meta: AnalysisMeta,
    /// The request, normalised.
    #[schema(value_type = Object)]
    pub query: Value,
}

/// Computes the cohorts over timelines ordered by person.
pub fn retention(plan: &RetentionPlan, events: &[TimelineEvent]) -> RetentionAnswer {
    let (tz, period) = (plan.scope.timezone, plan.period);
    let clock = LocalClock::new(tz, plan.read_range());
    let cohorts = plan.cohorts();
    let in_range = |e: &TimelineEvent| {
        e.timestamp_us >= plan.scope.range.from.timestamp_micros()
            && e.timestamp_us < plan.scope.range.to.timestamp_micros()
    };
    // (cohort, k) -> persons
    let mut sizes: BTreeMap<i64, u64> = BTreeMap::new();
    let mut returns: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for person in persons(events) {
        let starts: Vec<i64> = match plan.cohort {
            CohortKind::Recurring => {
                let mut periods: Vec<i64> = person
                    .iter()
                    .filter(|e| e.matches(0) && in_range(e))
                    .map(|e| period.index_of_micros(e.timestamp_us, &clock))
                    .collect();
                periods.dedup();
                periods
            }
            CohortKind::FirstTime => person
                .iter()
                .find(|e| e.matches(0))
                .filter(|e| in_range(e))
                .map(|e| period.index_of_micros(e.timestamp_us, &clock))
                .into_iter()
                .collect(),
        };
        if starts.is_empty() {
            continue;
        }
        let returned: HashSet<i64> = person
            .iter()
            .filter(|e| e.matches(1))
            .map(|e| period.index_of_micros(e.timestamp_us, &clock))
            .collect();
        for cohort in starts {
            *sizes.entry(cohort).or_default() += 1;
            for k in 0..i64::from(plan.periods) {
                if returned.contains(&(cohort + k)) {
                    *returns.entry((cohort, k)).or_default() += 1;
                }
            }
        }
    }
    let current = period.index(plan.scope.now, tz);
    let cohorts = cohorts
        .map(|cohort| {
            let size = sizes.get(&cohort).copied().unwrap_or(0);
            let returned: Vec<u64> = (0..i64::from(plan.periods))
                .take_while(|k| cohort + k <= current)
                .map(|k| returns.get(&(cohort, k)).copied().unwrap_or(0))
                .collect();
            Cohort {
                period: crate::domain::query::time_buckets::label(period.start(cohort, tz), tz),
                size,
                share: returned.iter().map(|&n| share(n, size)).collect(),
                returned,
            }
        })
        .collect();
    RetentionAnswer {
        cohorts,
        meta: AnalysisMeta::default(),
        query: json!({
            "period": period.as_str(),
            "periods": plan.periods,
            "cohort": plan.cohort,
            "date_range": plan.scope.described_range(),
            "timezone": tz.name(),
        }),
    }
}

super::analysis!(RetentionPlan, RetentionRequest, RetentionAnswer, retention);
