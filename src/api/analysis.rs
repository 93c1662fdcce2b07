//! Product analytics: `POST /v1/funnel`, `/v1/retention`, `/v1/stickiness`,
//! `/v1/lifecycle` and `/v1/paths` (read key). Each plans the request in the
//! domain, reads the timeline it needs from storage, and computes the answer
//! off the async runtime.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::query::plan_context;
use super::{auth, AppState};
use crate::domain::analysis::funnel::{FunnelAnswer, FunnelPlan, FunnelRequest};
use crate::domain::analysis::lifecycle::{LifecycleAnswer, LifecyclePlan, LifecycleRequest};
use crate::domain::analysis::paths::{PathsAnswer, PathsPlan, PathsRequest};
use crate::domain::analysis::retention::{RetentionAnswer, RetentionPlan, RetentionRequest};
use crate::domain::analysis::stickiness::{StickinessAnswer, StickinessPlan, StickinessRequest};
use crate::domain::analysis::{Analysis, ScopedRequest};
use crate::domain::query::{DateRangeSpec, QueryError};
use crate::storage::StorageError;

/// Runs CPU-bound work over read events on a blocking thread, so that it
/// never stalls the async runtime.
pub(super) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Storage(StorageError::Backend(format!("computing failed: {e}"))))
}

/// Plans, reads and answers one analysis request.
async fn analyse<A: Analysis>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<A::Answer, ApiError> {
    let started = Instant::now();
    let project = auth::authorize_read(&state.projects, headers)?;
    let request: A::Request =
        serde_json::from_slice(body).map_err(|error| QueryError::new("body", error.to_string()))?;
    let spec = DateRangeSpec::parse(request.date_range())?;
    let context = plan_context(state, &project, &spec).await?;
    let plan = A::plan(&request, &context)?;
    let events = state.repository.timelines(&plan.timeline()).await?;
    let mut answer = off_runtime(move || plan.answer(&events)).await?;
    *A::took_ms(&mut answer) = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(answer)
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
                (status = 503, description = "Storage unavailable", body = ErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Json<$answer>, ApiError> {
            analyse::<$plan>(&state, &headers, &body).await.map(Json)
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
