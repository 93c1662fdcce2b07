//! Reading answers: `POST /v1/query`, and the discovery endpoints
//! `GET /v1/events/names` and `GET /v1/properties` for building query UIs.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::analysis::off_runtime;
use super::error::{ApiError, ErrorBody};
use super::{auth, AppState};
use crate::domain::query::{
    answer, plan, resolve_timezone, session_rows, session_timeline, Answer, DateRangeSpec, Metric,
    MetricValue, PlanContext, QueryError, QueryRequest, TimeRange,
};
use crate::domain::Project;

/// Most names or keys a discovery endpoint lists.
const DISCOVERY_LIMIT: u64 = 1_000;

pub(super) async fn plan_context(
    state: &AppState,
    project: &Project,
    spec: &DateRangeSpec,
) -> Result<PlanContext, ApiError> {
    let data_bounds = match spec {
        DateRangeSpec::All => state.repository.time_bounds(&project.id).await?,
        _ => None,
    };
    Ok(PlanContext {
        project_id: project.id.clone(),
        default_timezone: project.timezone,
        now: Utc::now(),
        data_bounds,
        session_timeout: project.session_timeout,
    })
}

async fn run(
    state: &AppState,
    project: &Project,
    request: &QueryRequest,
) -> Result<Answer, ApiError> {
    let spec = DateRangeSpec::parse(&request.date_range)?;
    let context = plan_context(state, project, &spec).await?;
    let plan = plan(request, &context)?;
    if plan.is_session_query() {
        let events = state.repository.timelines(&session_timeline(&plan)).await?;
        let rows = off_runtime({
            let plan = plan.clone();
            move || session_rows(&plan, &events)
        })
        .await?;
        return Ok(answer(&plan, rows, None));
    }
    let total_users = async {
        if !plan.metrics.contains(&Metric::Percentage) {
            return Ok(None);
        }
        let totals = state.repository.query(&plan.total_users()).await?;
        Ok(totals
            .rows
            .first()
            .and_then(|row| match row.metrics.first() {
                Some(MetricValue::Count(users)) => Some(*users),
                _ => None,
            }))
    };
    let (rows, total_users) = tokio::try_join!(state.repository.query(&plan), total_users)?;
    Ok(answer(&plan, rows, total_users))
}

/// Metrics broken down by dimensions over a date range, in the project's timezone.
#[utoipa::path(
    post,
    path = "/v1/query",
    tag = "query",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer", body = Answer, example = json!({
            "results": [
                {"dimensions": ["2026-03-29T00:00:00+01:00", "signup"], "metrics": [42, 40, 129.5]}
            ],
            "meta": {"time_labels": ["2026-03-29T00:00:00+01:00"], "total_rows": 1, "has_more": false, "took_ms": 3},
            "query": {
                "metrics": ["events", "users", "sum:props.revenue"],
                "date_range": ["2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59.999999+02:00"],
                "timezone": "Europe/Berlin",
                "dimensions": ["time:day", "event:name"],
                "order_by": [["time:day", "asc"], ["event:name", "asc"]],
                "include": {"time_labels": true, "total_rows": true},
                "pagination": {"limit": 10000, "offset": 0}
            }
        })),
        (status = 400, description = "A query that names an unknown metric, dimension, operator or range, with the part at fault in `field`", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer>, ApiError> {
    let started = Instant::now();
    let project = auth::authorize_read(&state.projects, &headers)?;
    let request: QueryRequest = serde_json::from_slice(&body)
        .map_err(|error| QueryError::new("body", error.to_string()))?;
    let mut answer = run(&state, &project, &request).await?;
    answer.meta.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(Json(answer))
}

/// Range of a discovery request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscoveryParams {
    /// `30d` (default), `today`, `7d`, `month`, `all`, ... or `FROM,TO` dates.
    pub date_range: Option<String>,
    /// IANA timezone; default: the project's.
    pub timezone: Option<String>,
    /// Only events of this name (`GET /v1/properties`).
    pub event: Option<String>,
}

impl DiscoveryParams {
    fn date_range(&self) -> Value {
        match self.date_range.as_deref().map(str::trim) {
            None | Some("") => json!("30d"),
            Some(text) => match text.split_once(',') {
                Some((from, to)) => json!([from.trim(), to.trim()]),
                None => json!(text),
            },
        }
    }

    fn timezone(&self, project: &Project) -> Result<Tz, ApiError> {
        Ok(resolve_timezone(
            self.timezone.as_deref(),
            project.timezone,
        )?)
    }
}

/// A name or key with how many events carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Seen {
    /// The event name or property key.
    pub name: String,
    /// Events in the range.
    pub events: u64,
}

/// What a discovery endpoint found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeenList {
    /// Most frequent first (at most 1,000).
    pub items: Vec<Seen>,
    /// The range searched, as absolute date-times in the timezone used.
    pub date_range: [String; 2],
}

async fn resolve_range(
    state: &AppState,
    project: &Project,
    params: &DiscoveryParams,
) -> Result<(TimeRange, Tz), ApiError> {
    let timezone = params.timezone(project)?;
    let spec = DateRangeSpec::parse(&params.date_range())?;
    let context = plan_context(state, project, &spec).await?;
    let range = spec.resolve(timezone, context.now, context.data_bounds)?;
    Ok((range, timezone))
}

/// Event names seen in a range, with counts.
#[utoipa::path(
    get,
    path = "/v1/events/names",
    tag = "query",
    params(DiscoveryParams),
    responses(
        (status = 200, description = "Event names, most frequent first", body = SeenList),
        (status = 400, description = "A bad range or timezone", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn event_names(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<DiscoveryParams>,
) -> Result<Json<SeenList>, ApiError> {
    let project = auth::authorize_read(&state.projects, &headers)?;
    let timezone = params.timezone(&project)?;
    let request: QueryRequest = serde_json::from_value(json!({
        "metrics": ["events"],
        "dimensions": ["event:name"],
        "date_range": params.date_range(),
        "timezone": timezone.name(),
        "pagination": {"limit": DISCOVERY_LIMIT},
    }))
    .expect("a well-formed request");
    let answer = run(&state, &project, &request).await?;
    let items = answer
        .results
        .into_iter()
        .filter_map(|row| {
            Some(Seen {
                name: row.dimensions.into_iter().next()??,
                events: row.metrics.first()?.as_u64()?,
            })
        })
        .collect();
    let date_range = serde_json::from_value(answer.query["date_range"].clone()).unwrap_or_default();
    Ok(Json(SeenList { items, date_range }))
}

/// Property (and trait) keys seen in a range, with counts; top-level keys.
#[utoipa::path(
    get,
    path = "/v1/properties",
    tag = "query",
    params(DiscoveryParams),
    responses(
        (status = 200, description = "Property keys, most frequent first", body = SeenList),
        (status = 400, description = "A bad range or timezone", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn properties(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<DiscoveryParams>,
) -> Result<Json<SeenList>, ApiError> {
    let project = auth::authorize_read(&state.projects, &headers)?;
    let (range, timezone) = resolve_range(&state, &project, &params).await?;
    let keys = state
        .repository
        .property_keys(
            &project.id,
            range,
            params.event.as_deref(),
            DISCOVERY_LIMIT as usize,
        )
        .await?;
    Ok(Json(SeenList {
        items: keys
            .into_iter()
            .map(|(name, events)| Seen { name, events })
            .collect(),
        date_range: DateRangeSpec::describe(range, timezone),
    }))
}
