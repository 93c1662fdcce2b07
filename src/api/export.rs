//! `GET /v1/export`: a project's stored events as NDJSON, streamed.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::{auth, AppState};
use crate::app::ExportSpec;
use crate::domain::clock::start_of_day;
use crate::domain::segment::parse_time;
use crate::domain::wire;

/// Time range of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Start: an ISO-8601 date-time (inclusive), or a date (`2026-03-01`, from the start
    /// of that day in the project's timezone). Default: the first event.
    pub from: Option<String>,
    /// End: an ISO-8601 date-time (exclusive), or a date (through the end of that day in
    /// the project's timezone). Default: the last event.
    pub to: Option<String>,
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

fn resolve_bound(
    field: &'static str,
    value: Option<&str>,
    timezone: Tz,
    bound: Bound,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let day = match bound {
            Bound::Start => Some(date),
            Bound::End => date.succ_opt(),
        };
        return day
            .and_then(|d| start_of_day(d, timezone))
            .map(Some)
            .ok_or_else(|| ApiError::InvalidParameter {
                field,
                message: format!("{value:?} is out of range"),
            });
    }
    parse_time(value)
        .map(Some)
        .ok_or_else(|| ApiError::InvalidParameter {
            field,
            message: format!("{value:?} is neither an ISO-8601 date-time nor a date (YYYY-MM-DD)"),
        })
}

/// Streams the key's project's events as NDJSON in timestamp order.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "export",
    params(ExportParams),
    responses(
        (status = 200, description = "One Segment-shaped event per line, with `receivedAt`, in timestamp order", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "A bad `from` or `to`", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
        (status = 429, description = "Too many exports at once; see Retry-After", body = ErrorBody),
        (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
        (status = 503, description = "Storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let project = auth::authorize_read(&state.projects, &headers)?;
    let from = resolve_bound(
        "from",
        params.from.as_deref(),
        project.timezone,
        Bound::Start,
    )?;
    let to = resolve_bound("to", params.to.as_deref(), project.timezone, Bound::End)?;
    let chunks = state
        .reads
        .export(&project, ExportSpec { from, to })
        .await?;
    let lines = chunks.map(|chunk| {
        let events = chunk.map_err(|error| {
            tracing::error!(%error, "export failed while streaming");
            std::io::Error::other(error.to_string())
        })?;
        let mut buffer = Vec::with_capacity(events.len() * 512);
        for event in &events {
            wire::write_json_line(&mut buffer, event).map_err(std::io::Error::other)?;
        }
        Ok::<_, std::io::Error>(buffer)
    });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_in_the_project_timezone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let from = resolve_bound("from", Some("2026-03-29"), berlin, Bound::Start).unwrap();
        let to = resolve_bound("to", Some("2026-03-29"), berlin, Bound::End).unwrap();
        assert_eq!(from, parse_time("2026-03-28T23:00:00Z"));
        // The day of the spring change has 23 hours.
        assert_eq!(to, parse_time("2026-03-29T22:00:00Z"));
        let exact = resolve_bound(
            "from",
            Some("2026-03-01T10:00:00+02:00"),
            berlin,
            Bound::Start,
        );
        assert_eq!(exact.unwrap(), parse_time("2026-03-01T08:00:00Z"));
        assert!(resolve_bound("from", Some("soon"), berlin, Bound::Start).is_err());
    }
}
