//! Stickiness: how many persons did an event on exactly N distinct periods
//! (days, weeks or months) of the range, for every N.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    persons, AnalysisMeta, EventSpec, LocalClock, Period, Scope, TimelineEvent, TimelineRequest,
};
use crate::domain::query::{PlanContext, QueryError};

/// `POST /v1/stickiness`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": {"event": "purchase"}, "period": "day", "date_range": "30d"}))]
pub struct StickinessRequest {
    /// The event counted.
    pub event: EventSpec,
    /// `day` (default), `week` or `month`, local to the timezone.
    #[serde(default = "default_period")]
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

fn default_period() -> Period {
    Period::Day
}

/// A checked stickiness request.
#[derive(Debug, Clone)]
pub struct StickinessPlan {
    scope: Scope,
    event: crate::domain::query::Filter,
    period: Period,
}

impl StickinessPlan {
    /// Checks a request.
    pub fn new(request: &StickinessRequest, context: &PlanContext) -> Result<Self, QueryError> {
        Ok(StickinessPlan {
            scope: Scope::resolve(context, request)?,
            event: request.event.matcher("event")?,
            period: request.period,
        })
    }

    /// The event's occurrences in the range.
    pub fn timeline(&self) -> TimelineRequest {
        self.scope
            .timeline(self.scope.range, vec![self.event.clone()])
    }
}

/// Persons active on exactly `periods` periods.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StickinessRow {
    /// Distinct periods with the event.
    pub periods: u64,
    /// Persons with that many.
    pub users: u64,
}

/// The answer of `POST /v1/stickiness`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StickinessAnswer {
    /// One row per N from 1 to the periods of the range.
    pub results: Vec<StickinessRow>,
    /// Periods the range overlaps.
    pub total_periods: u64,
    /// Facts about the answer.
    pub meta: AnalysisMeta,
    /// The request, normalised.
    #[schema(value_type = Object)]
    pub query: Value,
}

/// Counts persons by their number of active periods.
pub fn stickiness(plan: &StickinessPlan, events: &[TimelineEvent]) -> StickinessAnswer {
    let tz = plan.scope.timezone;
    let covering = plan.period.covering(plan.scope.range, tz);
    let clock = LocalClock::new(tz, plan.scope.range);
    let total = (covering.end() - covering.start() + 1).max(0) as u64;
    let mut by_count: HashMap<u64, u64> = HashMap::new();
    for person in persons(events) {
        let mut periods: Vec<i64> = person
            .iter()
            .map(|e| plan.period.index_of_micros(e.timestamp_us, &clock))
            .collect();
        periods.dedup();
        *by_count.entry(periods.len() as u64).or_default() += 1;
    }
    StickinessAnswer {
        results: (1..=total)
            .map(|periods| StickinessRow {
                periods,
                users: by_count.get(&periods).copied().unwrap_or(0),
            })
            .collect(),
        total_periods: total,
        meta: AnalysisMeta::default(),
        query: json!({
            "period": plan.period.as_str(),
            "date_range": plan.scope.described_range(),
            "timezone": tz.name(),
        }),
    }
}

super::analysis!(
    StickinessPlan,
    StickinessRequest,
    StickinessAnswer,
    stickiness
);
