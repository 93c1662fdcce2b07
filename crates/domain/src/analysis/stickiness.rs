//! Stickiness: how many persons did an event on exactly N distinct periods
//! (days, weeks or months) of the range, for every N.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    AnalysisMeta, EventSpec, LocalClock, Period, PersonFold, Scope, ScopeSpec, TimelineEvent,
    TimelineRequest,
};
use crate::query::{Filter, PlanContext, QueryError};

/// Stickiness as clients ask it.
#[derive(Debug, Clone, PartialEq)]
pub struct StickinessSpec {
    /// The range, its timezone and filters.
    pub scope: ScopeSpec,
    /// The event counted.
    pub event: EventSpec,
    /// Length of a period.
    pub period: Period,
}

/// A checked stickiness request.
#[derive(Debug, Clone)]
pub struct StickinessPlan {
    scope: Scope,
    event: Filter,
    period: Period,
}

impl StickinessPlan {
    /// Checks a spec.
    pub fn new(spec: &StickinessSpec, context: &PlanContext) -> Result<Self, QueryError> {
        Ok(StickinessPlan {
            scope: Scope::resolve(context, &spec.scope)?,
            event: spec.event.matcher("event")?,
            period: spec.period,
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

/// Persons by their number of active periods, so far.
pub struct StickinessTally {
    clock: LocalClock,
    by_count: HashMap<u64, u64>,
}

impl PersonFold for StickinessPlan {
    type Tally = StickinessTally;
    type Output = StickinessAnswer;

    fn timeline(&self) -> TimelineRequest {
        StickinessPlan::timeline(self)
    }

    fn start(&self) -> StickinessTally {
        StickinessTally {
            clock: LocalClock::new(self.scope.timezone, self.scope.range),
            by_count: HashMap::new(),
        }
    }

    fn add_person(&self, tally: &mut StickinessTally, person: &[TimelineEvent]) {
        let mut periods: Vec<i64> = person
            .iter()
            .map(|e| self.period.index_of_micros(e.timestamp_us, &tally.clock))
            .collect();
        periods.dedup();
        *tally.by_count.entry(periods.len() as u64).or_default() += 1;
    }

    fn finish(&self, tally: StickinessTally) -> StickinessAnswer {
        let tz = self.scope.timezone;
        let covering = self.period.covering(self.scope.range, tz);
        let total = (covering.end() - covering.start() + 1).max(0) as u64;
        StickinessAnswer {
            results: (1..=total)
                .map(|periods| StickinessRow {
                    periods,
                    users: tally.by_count.get(&periods).copied().unwrap_or(0),
                })
                .collect(),
            total_periods: total,
            meta: AnalysisMeta::default(),
            query: json!({
                "period": self.period.as_str(),
                "date_range": self.scope.described_range(),
                "timezone": tz.name(),
            }),
        }
    }
}

super::analysis!(StickinessPlan, StickinessSpec, StickinessAnswer);
