//! What browser SDKs fetch before they send: the settings document of
//! Segment's analytics.js (`cdnURL` pointed here), RudderStack's source
//! configuration, and a sink for analytics.js' own telemetry.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{self, WriteKeyQuery};
use super::error::{ApiError, ErrorBody};
use super::{cors, AppState};
use crate::domain::KeyKind;

/// Where browsers reach the service: `(protocol, host[:port][/path])`.
fn public_base(state: &AppState, headers: &HeaderMap) -> Result<(String, String), ApiError> {
    if let Some(url) = &state.web.public_url {
        let mut host = url.host_str().unwrap_or_default().to_owned();
        if let Some(port) = url.port() {
            host.push_str(&format!(":{port}"));
        }
        host.push_str(url.path().trim_end_matches('/'));
        return Ok((url.scheme().to_owned(), host));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty() && host.bytes().all(is_host_byte))
        .ok_or_else(|| ApiError::InvalidParameter {
            field: "Host",
            message: "the request has no usable Host header; set ingest.public_url".into(),
        })?;
    Ok(("http".to_owned(), host.to_owned()))
}

fn is_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b':' | b'[' | b']')
}

/// The settings document analytics.js loads from `{cdnURL}/v1/projects/{writeKey}/settings`.
#[utoipa::path(
    get,
    path = "/v1/projects/{write_key}/settings",
    tag = "browsers",
    summary = "Settings for Segment's analytics.js.",
    description = "Load `@segment/analytics-next` with `cdnURL` set to this service: it fetches this document, which makes it send every event here (`integrations[\"Segment.io\"].apiHost`) with its remote telemetry off and no other destination.",
    params(("write_key" = String, Path, description = "A write key of the project")),
    responses(
        (status = 200, description = "The settings document", body = Object),
        (status = 400, description = "No usable Host header and no ingest.public_url", body = ErrorBody),
        (status = 403, description = "The page's origin is not in the project's allowed_origins", body = ErrorBody),
        (status = 404, description = "Unknown write key", body = ErrorBody),
    )
)]
pub async fn analytics_js_settings(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = state
        .projects
        .authorize(&write_key, KeyKind::Write)
        .ok_or_else(|| ApiError::NotFound("no project has this write key".into()))?;
    cors::check_origin(&project, &headers)?;
    let (protocol, host) = public_base(&state, &headers)?;
    Ok(Json(json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{host}/v1"),
                "protocol": protocol,
            }
        },
        "plan": {
            "track": { "__default": { "enabled": true, "integrations": {} } },
            "identify": { "__default": { "enabled": true } },
            "group": { "__default": { "enabled": true } },
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": { "sampleRate": 0 },
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    })))
}

/// analytics.js' telemetry (`/v1/m`): answered, not stored.
#[utoipa::path(
    post,
    path = "/v1/m",
    tag = "browsers",
    summary = "Accept analytics.js' own telemetry, and store nothing.",
    request_body(content = Object, description = "Whatever analytics.js reports about itself"),
    responses((status = 204, description = "Accepted and discarded"))
)]
pub async fn analytics_js_telemetry() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// RudderStack's source configuration, loaded from `{configUrl}/sourceConfig`.
#[utoipa::path(
    get,
    path = "/sourceConfig",
    tag = "browsers",
    summary = "Source configuration for RudderStack's JavaScript SDK.",
    description = "Load the RudderStack SDK with `configUrl` and the data plane URL set to this service: this document enables the source with no destinations, so events are sent here alone.",
    params(WriteKeyQuery),
    responses(
        (status = 200, description = "The source configuration", body = Object),
        (status = 401, description = "Missing or unknown write key", body = ErrorBody),
        (status = 403, description = "The page's origin is not in the project's allowed_origins", body = ErrorBody),
    ),
    security(("write_key_basic" = []), ())
)]
pub async fn rudderstack_source_config(
    State(state): State<AppState>,
    Query(query): Query<WriteKeyQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = match auth::header_key(&headers)? {
        Some(key) => Some(key),
        None => query.write_key,
    };
    let project = auth::authorize(&state.projects, key.as_deref(), KeyKind::Write)?;
    cors::check_origin(&project, &headers)?;
    Ok(Json(json!({
        "isHosted": false,
        "source": {
            "id": project.id,
            "name": project.id,
            "writeKey": key,
            "workspaceId": project.id,
            "enabled": true,
            "config": {
                "statsCollection": {
                    "errors": { "enabled": false },
                    "metrics": { "enabled": false },
                }
            },
            "destinations": [],
        }
    })))
}
