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
    check_count, share, AnalysisMeta, EventSpec, LocalClock, Period, PersonFold, Scope, ScopeSpec,
    TimelineEvent, TimelineRequest,
};
use crate::query::{Filter, PlanContext, QueryError, TimeRange};

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

/// Retention as clients ask it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionSpec {
    /// The range of the cohorts' start events, its timezone and filters.
    pub scope: ScopeSpec,
    /// The event that puts a person in a cohort.
    pub start_event: EventSpec,
    /// The event that counts as a return.
    pub return_event: EventSpec,
    /// Length of a cohort's period.
    pub period: Period,
    /// Periods in each cohort's row, its own included (1 to 400).
    pub periods: u32,
    /// Which persons make up a cohort.
    pub cohort: CohortKind,
}

/// A checked retention request.
#[derive(Debug, Clone)]
pub struct RetentionPlan {
    scope: Scope,
    start: Filter,
    back: Filter,
    period: Period,
    periods: u32,
    cohort: CohortKind,
}

impl RetentionPlan {
    /// Checks a spec.
    pub fn new(spec: &RetentionSpec, context: &PlanContext) -> Result<Self, QueryError> {
        check_count(spec.periods, "periods", 1..=MAX_PERIODS)?;
        Ok(RetentionPlan {
            start: spec.start_event.matcher("start_event")?,
            back: spec.return_event.matcher("return_event")?,
            scope: Scope::resolve(context, &spec.scope)?,
            period: spec.period,
            periods: spec.periods,
            cohort: spec.cohort,
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

/// Cohort sizes and returns counted so far.
#[derive(Debug)]
pub struct RetentionTally {
    clock: LocalClock,
    sizes: BTreeMap<i64, u64>,
    /// (cohort, k) -> persons who returned k periods after the cohort's.
    returns: BTreeMap<(i64, i64), u64>,
}

impl PersonFold for RetentionPlan {
    type Tally = RetentionTally;
    type Output = RetentionAnswer;

    fn timeline(&self) -> TimelineRequest {
        RetentionPlan::timeline(self)
    }

    fn start(&self) -> RetentionTally {
        RetentionTally {
            clock: LocalClock::new(self.scope.timezone, self.read_range()),
            sizes: BTreeMap::new(),
            returns: BTreeMap::new(),
        }
    }

    fn add_person(&self, tally: &mut RetentionTally, person: &[TimelineEvent]) {
        let (period, clock) = (self.period, &tally.clock);
        let in_range = |e: &TimelineEvent| {
            e.timestamp_us >= self.scope.range.from.timestamp_micros()
                && e.timestamp_us < self.scope.range.to.timestamp_micros()
        };
        let starts: Vec<i64> = match self.cohort {
            CohortKind::Recurring => {
                let mut periods: Vec<i64> = person
                    .iter()
                    .filter(|e| e.matches(0) && in_range(e))
                    .map(|e| period.index_of_micros(e.timestamp_us, clock))
                    .collect();
                periods.dedup();
                periods
            }
            CohortKind::FirstTime => person
                .iter()
                .find(|e| e.matches(0))
                .filter(|e| in_range(e))
                .map(|e| period.index_of_micros(e.timestamp_us, clock))
                .into_iter()
                .collect(),
        };
        if starts.is_empty() {
            return;
        }
        let returned: HashSet<i64> = person
            .iter()
            .filter(|e| e.matches(1))
            .map(|e| period.index_of_micros(e.timestamp_us, clock))
            .collect();
        for cohort in starts {
            *tally.sizes.entry(cohort).or_default() += 1;
            for k in 0..i64::from(self.periods) {
                if returned.contains(&(cohort + k)) {
                    *tally.returns.entry((cohort, k)).or_default() += 1;
                }
            }
        }
    }

    fn finish(&self, tally: RetentionTally) -> RetentionAnswer {
        let (tz, period) = (self.scope.timezone, self.period);
        let current = period.index(self.scope.now, tz);
        let cohorts = self
            .cohorts()
            .map(|cohort| {
                let size = tally.sizes.get(&cohort).copied().unwrap_or(0);
                let returned: Vec<u64> = (0..i64::from(self.periods))
                    .take_while(|k| cohort + k <= current)
                    .map(|k| tally.returns.get(&(cohort, k)).copied().unwrap_or(0))
                    .collect();
                Cohort {
                    period: crate::query::time_buckets::label(period.start(cohort, tz), tz),
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
                "periods": self.periods,
                "cohort": self.cohort,
                "date_range": self.scope.described_range(),
                "timezone": tz.name(),
            }),
        }
    }
}

super::analysis!(RetentionPlan, RetentionSpec, RetentionAnswer);
