//! Plausible's events API, `POST /api/event`: what Plausible's tracker (and
//! ours, `/js/script.js`) and server-side callers send. The `domain` picks
//! the project among those that list it in their `domains`; the visitor is
//! the cookieless id of the sender's address and user agent.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::Utc;

use super::client_address::ClientAddress;
use super::error::{ApiError, ErrorBody};
use super::{body, cors, AppState};
use crate::domain::plausible::{PlausibleEvent, MAX_BODY_BYTES};
use crate::domain::segment::Payload;

/// Record a page view or a custom event, as Plausible's events API does.
#[utoipa::path(
    post,
    path = "/api/event",
    tag = "browsers",
    summary = "Record an event sent as Plausible's events API sends it.",
    description = "The body (JSON, whatever the `Content-Type`) names the event (`name`/`n`: `pageview` or a custom name), the page (`url`/`u`), the site (`domain`/`d`, one of a project's `domains`), and optionally `referrer`/`r`, `props`/`p`, `revenue`/`$` (`{\"amount\", \"currency\"}`) and `h` (hash-based routing). The visitor is a daily-salted hash of the sender's address and `User-Agent`: no cookie, no stored address. Answers 202 `ok` once stored (bots' events are acknowledged and not stored).",
    request_body(content = Object, description = "A Plausible event, at most 32 KB"),
    responses(
        (status = 202, description = "Stored (or dropped as a bot's)", body = String),
        (status = 400, description = "A field missing or malformed (named in `field`), no User-Agent, or a domain no project lists", body = ErrorBody),
        (status = 403, description = "The page's origin is not in the project's allowed_origins", body = ErrorBody),
        (status = 413, description = "Over 32 KB", body = ErrorBody),
        (status = 503, description = "Queue full or storage unavailable; see Retry-After", body = ErrorBody),
    )
)]
pub async fn plausible_event(
    State(state): State<AppState>,
    ClientAddress(sender): ClientAddress,
    headers: HeaderMap,
    request_body: Body,
) -> Result<(StatusCode, &'static str), ApiError> {
    let received_at = Utc::now();
    // Bodies over the limit are refused here, with 413.
    let bytes = body::read_limited(&headers, request_body, MAX_BODY_BYTES).await?;
    let event = PlausibleEvent::parse(&bytes)?;
    let project = event
        .domains
        .iter()
        .find_map(|domain| state.projects.by_domain(domain))
        .ok_or_else(|| ApiError::UnknownDomain(event.domains.join(",")))?;
    cors::check_origin(&project, &headers)?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .filter(|agent| !agent.trim().is_empty())
        .ok_or_else(|| ApiError::InvalidParameter {
            field: "User-Agent",
            message: "the request needs the browser's User-Agent header (a server sending for a browser passes the browser's)".into(),
        })?
        .to_owned();
    let visitor = state
        .visitors
        .id(&project, sender.ip, &user_agent, received_at)
        .await?;
    let (message, event_type) = event.into_segment(&visitor, &user_agent);
    let payload = Payload::built(message, event_type);
    state
        .ingest
        .ingest(&project, payload, sender, received_at)
        .await?;
    Ok((StatusCode::ACCEPTED, "ok"))
}
