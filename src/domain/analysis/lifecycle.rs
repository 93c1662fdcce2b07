//! Lifecycle: per period, the persons who did an event for the first time
//! ever (`new`), again after the period before (`returning`), again after at
//! least one period without it (`resurrecting`), and those who did it in the
//! period before but not in this one (`dormant`, a positive count).
//!
//! Periods are whole local days, weeks or months: the ones the range
//! overlaps. Activity before the range decides who is new and who resurrects.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    persons, AnalysisMeta, EventSpec, LocalClock, Period, Scope, TimelineEvent, TimelineRequest,
};
use crate::domain::query::time_buckets::label;
use crate::domain::query::{PlanContext, QueryError, TimeRange};

/// Most periods one lifecycle answer covers.
const MAX_PERIODS: i64 = 1_000;

/// `POST /v1/lifecycle`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": {"event": "page"}, "period": "week", "date_range": ["2026-01-05", "2026-03-29"]}))]
pub struct LifecycleRequest {
    /// The event that makes a person active.
    pub event: EventSpec,
    /// `day`, `week` (from Monday) or `month`, local to the timezone.
    pub period: Period,
    /// As in `/v1/query`.
    #[schema(value_type = Object)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
}

/// A checked lifecycle request.
#[derive(Debug, Clone)]
pub struct LifecyclePlan {
    scope: Scope,
    event: crate::domain::query::Filter,
    period: Period,
}

impl LifecyclePlan {
    /// Checks a request.
    pub fn new(request: &LifecycleRequest, context: &PlanContext) -> Result<Self, QueryError> {
        let plan = LifecyclePlan {
            scope: Scope::resolve(context, request)?,
            event: request.event.matcher("event")?,
            period: request.period,
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

/// Classifies every person in every period.
pub fn lifecycle(plan: &LifecyclePlan, events: &[TimelineEvent]) -> LifecycleAnswer {
    let tz = plan.scope.timezone;
    let range = plan.periods();
    let clock = LocalClock::new(tz, plan.read_range());
    let mut periods: Vec<LifecyclePeriod> = range
        .clone()
        .map(|index| LifecyclePeriod {
            period: label(plan.period.start(index, tz), tz),
            ..LifecyclePeriod::default()
        })
        .collect();
    for person in persons(events) {
        let active: BTreeSet<i64> = person
            .iter()
            .map(|e| plan.period.index_of_micros(e.timestamp_us, &clock))
            .collect();
        let Some(&first_active) = active.first() else {
            continue;
        };
        for (slot, index) in periods.iter_mut().zip(range.clone()) {
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
    LifecycleAnswer {
        periods,
        meta: AnalysisMeta::default(),
        query: json!({
            "period": plan.period.as_str(),
            "date_range": plan.scope.described_range(),
            "timezone": tz.name(),
        }),
    }
}

super::analysis!(LifecyclePlan, LifecycleRequest, LifecycleAnswer, lifecycle);
