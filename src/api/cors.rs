//! Cross-origin access for browsers.
//!
//! Ingest routes answer any page (or the pages its project lists in
//! `allowed_origins`): preflights are answered here, the request's `Origin`
//! is mirrored with credentials allowed, and whatever headers the page asks
//! for are allowed, since analytics.js and RudderStack send their own
//! (`Authorization: Basic`, `X-Retry-Count`, `AnonymousId`). A preflight
//! carries no key, so it is answered when any project accepts the origin;
//! the request that follows is checked against its own project
//! ([`check_origin`]). Read routes get CORS only for `read.allowed_origins`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use super::middleware::REQUEST_ID_HEADER;
use crate::domain::origin::OriginPattern;
use crate::domain::{Project, ProjectRegistry};

/// How long a browser may cache a preflight's answer (a day; browsers cap it lower).
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 86_400;

const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
const EXPOSED_HEADERS: &str = "retry-after, x-request-id";

/// CORS for the ingest routes (a middleware over them).
pub async fn ingest_cors(
    State(projects): State<Arc<ProjectRegistry>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        let mut response = next.run(request).await;
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("origin"));
        return response;
    };
    if is_preflight(&request) {
        return preflight(&projects, &origin, request.headers());
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    allow_origin(headers, origin);
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.append(VARY, HeaderValue::from_static("origin"));
    response
}

/// The page's origin mirrored, with credentials allowed (what analytics.js'
/// `credentials: include` requests need).
fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight(projects: &ProjectRegistry, origin: &HeaderValue, request: &HeaderMap) -> Response {
    let text = origin.to_str().unwrap_or_default();
    if !projects
        .projects()
        .iter()
        .any(|project| project.allowed_origins.allows(text))
    {
        return ApiError::OriginNotAllowed(format!(
            "origin {text:?} is not in any project's allowed_origins"
        ))
        .into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow_origin(headers, origin.clone());
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    if let Some(requested) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS),
    );
    headers.insert(
        VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    response
}

/// Refuses a browser request whose `Origin` its project does not accept
/// (403 `origin_not_allowed`). Requests without an `Origin` (servers, SDKs
/// outside browsers) are not concerned.
pub fn check_origin(project: &Project, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let text = origin.to_str().unwrap_or_default();
    if project.allowed_origins.allows(text) {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed(format!(
            "origin {text:?} is not in the allowed_origins of project {:?}",
            project.id
        )))
    }
}

/// CORS for the read routes: only pages of `origins` may call them; `None`
/// when the list is empty (no CORS headers at all).
pub fn read_cors(origins: &[OriginPattern]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins = origins.to_vec();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                let text = origin.to_str().unwrap_or_default();
                origins.iter().any(|pattern| pattern.matches(text))
            }))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ])
            .expose_headers([
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderName::from_static(REQUEST_ID_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(u64::from(
                PREFLIGHT_MAX_AGE_SECONDS,
            ))),
    )
}
