//! `GET /v1/project`: what a read key's project is, for clients that show
//! it (the dashboard's header, its periods in the project's timezone).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::{auth, AppState};

/// The project of the read key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "shop", "timezone": "Europe/Berlin", "domains": ["shop.example"], "session_timeout_seconds": 1800, "shared": false}))]
pub struct ProjectInfo {
    /// The project's id.
    pub id: String,
    /// IANA timezone in which its reports are cut by default.
    pub timezone: String,
    /// The site domains its browser events come from.
    pub domains: Vec<String>,
    /// The longest gap between two events of one session, in seconds.
    pub session_timeout_seconds: i64,
    /// Whether the key is the project's share token (the shared overview).
    pub shared: bool,
}

/// The project a read key (or its share token) opens.
#[utoipa::path(
    get,
    path = "/v1/project",
    tag = "query",
    responses(
        (status = 200, description = "The project", body = ProjectInfo),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn project(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ProjectInfo>, ApiError> {
    let (project, shared) = auth::authorize_view(&state.projects, &headers)?;
    Ok(Json(ProjectInfo {
        id: project.id.clone(),
        timezone: project.timezone.name().to_owned(),
        domains: project.domains.clone(),
        session_timeout_seconds: project.session_timeout.num_seconds(),
        shared,
    }))
}
