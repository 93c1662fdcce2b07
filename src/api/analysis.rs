//! Product analytics: `POST /v1/funnel`, `/v1/retention`, `/v1/stickiness`,
//! `/v1/lifecycle` and `/v1/paths` (read key). Each reads its request into
//! the analysis' spec and has the application layer answer it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::query::{parse_body, DateRange, FilterExpression};
use super::{auth, AppState};
use crate::domain::analysis::funnel::{FunnelAnswer, FunnelPlan, FunnelSpec, StepOrder};
use crate::domain::analysis::lifecycle::{LifecycleAnswer, LifecyclePlan, LifecycleSpec};
use crate::domain::analysis::paths::{Direction, PathsAnswer, PathsPlan, PathsSpec};
use crate::domain::analysis::retention::{
    CohortKind, RetentionAnswer, RetentionPlan, RetentionSpec,
};
use crate::domain::analysis::stickiness::{StickinessAnswer, StickinessPlan, StickinessSpec};
use crate::domain::analysis::{parse_window, Analysis, EventSpec, Period, ScopeSpec};
use crate::domain::query::{
    parse_filters, parse_timezone, DateRangeSpec, QueryError, RequestedDimension,
};

/// An event name with optional filters, as analyses name their steps.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventSpec)]
pub struct EventRequest {
    /// The event name (`track` calls), or the call type (`page`, `screen`,
    /// `identify`, ...) for other calls.
    pub event: String,
    /// Filters on the event, in the `/v1/query` filter syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
}

impl EventRequest {
    /// The spec of the event named at `path` (its filters' errors name it).
    fn spec(&self, path: &str) -> Result<EventSpec, QueryError> {
        let filter = match &self.filters {
            Some(value) => parse_filters(value)
                .map_err(|e| QueryError::new(format!("{path}.{}", e.path), e.message))?,
            None => None,
        };
        Ok(EventSpec {
            event: self.event.clone(),
            filter,
        })
    }
}

/// The members every analysis request shares with `/v1/query`.
fn scope(
    date_range: &Value,
    timezone: Option<&str>,
    filters: Option<&Value>,
) -> Result<ScopeSpec, QueryError> {
    Ok(ScopeSpec {
        date_range: DateRangeSpec::parse(date_range)?,
        timezone: timezone.map(parse_timezone).transpose()?,
        filter: filters.map(parse_filters).transpose()?.flatten(),
    })
}

/// `POST /v1/funnel`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "steps": [{"event": "page", "filters": [["is", "event:page", ["/pricing"]]]}, {"event": "signup"}, {"event": "purchase"}],
    "window": "7d",
    "date_range": "30d",
    "order": "ordered",
    "breakdown": "event:props:plan"
}))]
pub struct FunnelRequest {
    /// 2 to 20 steps.
    pub steps: Vec<EventRequest>,
    /// Conversion window from the first step, e.g. `"30m"`, `"7d"` (default `"14d"`).
    #[serde(default)]
    pub window: Option<String>,
    /// As in `/v1/query`: the range in which persons enter the funnel.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
    /// `strict`, `ordered` (default) or `any`.
    #[serde(default)]
    pub order: StepOrder,
    /// A dimension read on each person's first-step event, e.g. `event:props:plan`.
    #[serde(default)]
    pub breakdown: Option<String>,
    /// Breakdown values returned, most entered first (default 25, at most 1,000).
    #[serde(default)]
    pub breakdown_limit: Option<u32>,
}

impl TryFrom<FunnelRequest> for FunnelSpec {
    type Error = QueryError;

    fn try_from(request: FunnelRequest) -> Result<Self, QueryError> {
        Ok(FunnelSpec {
            scope: scope(
                &request.date_range,
                request.timezone.as_deref(),
                request.filters.as_ref(),
            )?,
            steps: request
                .steps
                .iter()
                .enumerate()
                .map(|(i, step)| step.spec(&format!("steps[{i}]")))
                .collect::<Result<_, _>>()?,
            window: request
                .window
                .as_deref()
                .map(|text| parse_window(text, "window"))
                .transpose()?,
            order: request.order,
            breakdown: request
                .breakdown
                .as_deref()
                .map(|name| {
                    RequestedDimension::parse_event(name, "a funnel breakdown")
                        .map_err(|message| QueryError::new("breakdown", message))
                })
                .transpose()?,
            breakdown_limit: request.breakdown_limit,
        })
    }
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
    pub start_event: EventRequest,
    /// The event that counts as a return.
    pub return_event: EventRequest,
    /// `day`, `week` (from Monday) or `month`, local to the timezone.
    pub period: Period,
    /// Periods in each cohort's row, its own included (1 to 400): `returned`
    /// has this many entries.
    pub periods: u32,
    /// As in `/v1/query`: the range of the cohorts' start events.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
    /// `recurring` (default) or `first_time`.
    #[serde(default)]
    pub cohort: CohortKind,
}

impl TryFrom<RetentionRequest> for RetentionSpec {
    type Error = QueryError;

    fn try_from(request: RetentionRequest) -> Result<Self, QueryError> {
        Ok(RetentionSpec {
            scope: scope(
                &request.date_range,
                request.timezone.as_deref(),
                request.filters.as_ref(),
            )?,
            start_event: request.start_event.spec("start_event")?,
            return_event: request.return_event.spec("return_event")?,
            period: request.period,
            periods: request.periods,
            cohort: request.cohort,
        })
    }
}

/// `POST /v1/stickiness`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": {"event": "purchase"}, "period": "day", "date_range": "30d"}))]
pub struct StickinessRequest {
    /// The event counted.
    pub event: EventRequest,
    /// `day` (default), `week` or `month`, local to the timezone.
    #[serde(default = "default_period")]
    pub period: Period,
    /// As in `/v1/query`.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
}

fn default_period() -> Period {
    Period::Day
}

impl TryFrom<StickinessRequest> for StickinessSpec {
    type Error = QueryError;

    fn try_from(request: StickinessRequest) -> Result<Self, QueryError> {
        Ok(StickinessSpec {
            scope: scope(
                &request.date_range,
                request.timezone.as_deref(),
                request.filters.as_ref(),
            )?,
            event: request.event.spec("event")?,
            period: request.period,
        })
    }
}

/// `POST /v1/lifecycle`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": {"event": "page"}, "period": "week", "date_range": ["2026-01-05", "2026-03-29"]}))]
pub struct LifecycleRequest {
    /// The event that makes a person active.
    pub event: EventRequest,
    /// `day`, `week` (from Monday) or `month`, local to the timezone.
    pub period: Period,
    /// As in `/v1/query`.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
}

impl TryFrom<LifecycleRequest> for LifecycleSpec {
    type Error = QueryError;

    fn try_from(request: LifecycleRequest) -> Result<Self, QueryError> {
        Ok(LifecycleSpec {
            scope: scope(
                &request.date_range,
                request.timezone.as_deref(),
                request.filters.as_ref(),
            )?,
            event: request.event.spec("event")?,
            period: request.period,
        })
    }
}

/// `POST /v1/paths`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"start_event": {"event": "signup"}, "direction": "next", "depth": 3, "date_range": "30d"}))]
pub struct PathsRequest {
    /// The event paths start from.
    pub start_event: EventRequest,
    /// `next` (default) or `previous`.
    #[serde(default)]
    pub direction: Direction,
    /// Steps followed (1 to 5, default 3).
    #[serde(default)]
    pub depth: Option<u32>,
    /// Names kept per step, the rest grouped as `(other)` (1 to 100, default 10).
    #[serde(default)]
    pub nodes_per_step: Option<u32>,
    /// As in `/v1/query`.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
}

impl TryFrom<PathsRequest> for PathsSpec {
    type Error = QueryError;

    fn try_from(request: PathsRequest) -> Result<Self, QueryError> {
        Ok(PathsSpec {
            scope: scope(
                &request.date_range,
                request.timezone.as_deref(),
                request.filters.as_ref(),
            )?,
            start_event: request.start_event.spec("start_event")?,
            direction: request.direction,
            depth: request.depth,
            nodes_per_step: request.nodes_per_step,
        })
    }
}

/// Authorises, reads the request into `A`'s spec, and answers it.
async fn analyse<A, R>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<A::Answer, ApiError>
where
    A: Analysis,
    R: serde::de::DeserializeOwned,
    A::Spec: TryFrom<R, Error = QueryError>,
{
    let project = auth::authorize_read(&state.projects, headers)?;
    let request: R = parse_body(body)?;
    let spec = A::Spec::try_from(request)?;
    Ok(state.reads.analyse::<A>(&project, &spec).await?)
}

/// Declares one analysis endpoint: its handler and its OpenAPI description.
macro_rules! analysis_endpoint {
    ($name:ident, $path:literal, $plan:ty, $request:ty, $answer:ty, $summary:literal, $answered:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post,
            path = $path,
            tag = "analysis",
            request_body = $request,
            responses(
                (status = 200, description = $answered, body = $answer),
                (status = 400, description = "A bad request, with the part at fault in `field`", body = ErrorBody),
                (status = 401, description = "Missing or unknown read key", body = ErrorBody),
                (status = 403, description = "A write key", body = ErrorBody),
                (status = 422, description = "The analysis reaches a limit of the read side (rows read, time); `setting` names it", body = ErrorBody),
                (status = 429, description = "Too many analyses at once; see Retry-After", body = ErrorBody),
                (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
                (status = 503, description = "Storage unavailable; see Retry-After", body = ErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Json<$answer>, ApiError> {
            analyse::<$plan, $request>(&state, &headers, &body)
                .await
                .map(Json)
        }
    };
}

analysis_endpoint!(
    funnel,
    "/v1/funnel",
    FunnelPlan,
    FunnelRequest,
    FunnelAnswer,
    "Persons through a sequence of steps within a conversion window.",
    "Persons per step, overall and per breakdown value"
);

analysis_endpoint!(
    retention,
    "/v1/retention",
    RetentionPlan,
    RetentionRequest,
    RetentionAnswer,
    "Cohorts by the period of a start event, and their returns in later periods.",
    "One cohort per period of the range"
);

analysis_endpoint!(
    stickiness,
    "/v1/stickiness",
    StickinessPlan,
    StickinessRequest,
    StickinessAnswer,
    "Persons by the number of distinct periods on which they did an event.",
    "Persons per number of active periods"
);

analysis_endpoint!(
    lifecycle,
    "/v1/lifecycle",
    LifecyclePlan,
    LifecycleRequest,
    LifecycleAnswer,
    "New, returning, resurrecting and dormant persons per period.",
    "Persons by state, per period"
);

analysis_endpoint!(
    paths,
    "/v1/paths",
    PathsPlan,
    PathsRequest,
    PathsAnswer,
    "The most common events after (or before) a start event, step by step.",
    "Nodes and links per step"
);
