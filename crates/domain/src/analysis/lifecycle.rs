//! Lifecycle: per period, the persons who did an event for the first time
//! ever (`new`), again after the period before (`returning`), again after at
//! least one period without it (`resurrecting`), and those who did it in the
//! period before but not in this one (`dormant`, a positive count).
//!
//! Periods are whole local days, weeks or months: the ones the range
//! overlaps. Activity before the range decides who is new and who resurrects.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    AnalysisMeta, EventSpec, LocalClock, Period, PersonFold, Scope, ScopeSpec, TimelineEvent,
    TimelineRequest,
};
use crate::query::time_buckets::label;
use crate::query::{Filter, PlanContext, QueryError, TimeRange};

/// Most periods one lifecycle answer covers.
const MAX_PERIODS: i64 = 1_000;

/// Lifecycle as clients ask it.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleSpec {
    /// The range, its timezone and filters.
    pub scope: ScopeSpec,
    /// The event that makes a person active.
    pub event: EventSpec,
    /// Length of a period.
    pub period: Period,
}

/// A checked lifecycle request.
#[derive(Debug, Clone)]
pub struct LifecyclePlan {
    scope: Scope,
    event: Filter,
    period: Period,
}

impl LifecyclePlan {
    /// Checks a spec.
    pub fn new(spec: &LifecycleSpec, context: &PlanContext) -> Result<Self, QueryError> {
        let plan = LifecyclePlan {
            scope: Scope::resolve(context, &spec.scope)?,
            event: spec.event.matcher("event")?,
            period: spec.period,
        };
        let periods = plan.periods();
        if periods.end() - periods.start() >= MAX_PERIODS {
            return Err(QueryError::new(
                "period",
                format!("the range has more than {MAX_PERIODS} periods; choose a longer period"),
            ));
        }
        Ok(plan)
    }

    fn periods(&self) -> std::ops::RangeInclusive<i64> {
        self.period.covering(self.scope.range, self.scope.timezone)
    }

    /// The span read: all time before the end of the last period.
    fn read_range(&self) -> TimeRange {
        TimeRange {
            from: DateTime::UNIX_EPOCH.min(self.scope.range.from),
            to: self
                .period
                .start(self.periods().end() + 1, self.scope.timezone),
        }
    }

    /// Every occurrence of the event over [`LifecyclePlan::read_range`].
    pub fn timeline(&self) -> TimelineRequest {
        self.scope
            .timeline(self.read_range(), vec![self.event.clone()])
    }
}

/// The persons of one period, by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct LifecyclePeriod {
    /// The period's local start, with offset.
    pub period: String,
    /// First time ever.
    pub new: u64,
    /// Active in the period before too.
    pub returning: u64,
    /// Active before, but not in the period before.
    pub resurrecting: u64,
    /// Active in the period before, not in this one.
    pub dormant: u64,
}

/// The answer of `POST /v1/lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LifecycleAnswer {
    /// One entry per period, oldest first.
    pub periods: Vec<LifecyclePeriod>,
    /// Facts about the answer.
    pub meta: AnalysisMeta,
    /// The request, normalised.
    #[schema(value_type = Object)]
    pub query: Value,
}

/// The periods' counts so far.
pub struct LifecycleTally {
    clock: LocalClock,
    periods: Vec<LifecyclePeriod>,
}

impl PersonFold for LifecyclePlan {
    type Tally = LifecycleTally;
    type Output = LifecycleAnswer;

    fn timeline(&self) -> TimelineRequest {
        LifecyclePlan::timeline(self)
    }

    fn start(&self) -> LifecycleTally {
        let tz = self.scope.timezone;
        LifecycleTally {
            clock: LocalClock::new(tz, self.read_range()),
            periods: self
                .periods()
                .map(|index| LifecyclePeriod {
                    period: label(self.period.start(index, tz), tz),
                    ..LifecyclePeriod::default()
                })
                .collect(),
        }
    }

    fn add_person(&self, tally: &mut LifecycleTally, person: &[TimelineEvent]) {
        let active: BTreeSet<i64> = person
            .iter()
            .map(|e| self.period.index_of_micros(e.timestamp_us, &tally.clock))
            .collect();
        let Some(&first_active) = active.first() else {
            return;
        };
        for (slot, index) in tally.periods.iter_mut().zip(self.periods()) {
            let now = active.contains(&index);
            let before = active.contains(&(index - 1));
            match (now, before) {
                (true, _) if index == first_active => slot.new += 1,
                (true, true) => slot.returning += 1,
                (true, false) => slot.resurrecting += 1,
                (false, true) => slot.dormant += 1,
                (false, false) => {}
            }
        }
    }

    fn finish(&self, tally: LifecycleTally) -> LifecycleAnswer {
        LifecycleAnswer {
            periods: tally.periods,
            meta: AnalysisMeta::default(),
            query: json!({
                "period": self.period.as_str(),
                "date_range": self.scope.described_range(),
                "timezone": self.scope.timezone.name(),
            }),
        }
    }
}

super::analysis!(LifecyclePlan, LifecycleSpec, LifecycleAnswer);
