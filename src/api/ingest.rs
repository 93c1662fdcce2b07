//! The Segment HTTP Tracking API: `/v1/track`, `/v1/identify`, ..., `/v1/batch`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::{auth, body, AppState};
use crate::domain::segment::{IngestContext, Payload, Rejection};
use crate::domain::{EventType, KeyKind};

/// Answer to an ingest request whose events (all or some) were stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Always `true`: the accepted events are durably stored.
    pub success: bool,
    /// Events stored (duplicates of stored `messageId`s count as accepted).
    pub accepted: usize,
    /// Events of the request that were rejected, by index, with the reason.
    pub rejected: Vec<Rejection>,
}

/// One Segment message. Only the fields below are interpreted; others are ignored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SegmentMessage {
    /// Message type; required in a batch, implied by the endpoint otherwise.
    #[serde(rename = "type")]
    pub event_type: Option<EventType>,
    /// Event name; required for `track`.
    pub event: Option<String>,
    /// Page or screen name.
    pub name: Option<String>,
    /// Known user id; `userId` or `anonymousId` is required.
    pub user_id: Option<String>,
    /// Device or browser id; `userId` or `anonymousId` is required.
    pub anonymous_id: Option<String>,
    /// Dedup key: a message sent twice with the same id is stored once. Generated when absent.
    pub message_id: Option<String>,
    /// ISO-8601 time of the event.
    pub timestamp: Option<String>,
    /// ISO-8601 device time of the event; corrected for clock skew with `sentAt`.
    pub original_timestamp: Option<String>,
    /// ISO-8601 device time when the message was sent.
    pub sent_at: Option<String>,
    /// Event properties (track, page, screen).
    pub properties: Option<BTreeMap<String, Value>>,
    /// User or group traits (identify, group).
    pub traits: Option<BTreeMap<String, Value>>,
    /// Context: `ip`, `userAgent`, `page`, `campaign`, `library`, `locale`, `timezone`, ...
    pub context: Option<BTreeMap<String, Value>>,
    /// Group id; required for `group`.
    pub group_id: Option<String>,
    /// Former id; required for `alias`.
    pub previous_id: Option<String>,
    /// Destinations settings, stored as given.
    pub integrations: Option<BTreeMap<String, Value>>,
    /// Write key, when not sent in the `Authorization` header.
    pub write_key: Option<String>,
}

/// A batch of Segment messages.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct BatchRequest {
    /// Up to 2,500 messages, each with its `type`.
    pub batch: Vec<SegmentMessage>,
    /// Context merged into each message's own (the message's values win).
    pub context: Option<BTreeMap<String, Value>>,
    /// ISO-8601 device time when the batch was sent; applies to messages without their own.
    pub sent_at: Option<String>,
    /// Write key, when not sent in the `Authorization` header.
    pub write_key: Option<String>,
}

#[derive(Clone, Copy)]
enum Shape {
    Single(EventType),
    Batch,
}

async fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    request_body: Body,
    shape: Shape,
) -> Result<Json<IngestResponse>, ApiError> {
    let received_at = Utc::now();
    let header_key = auth::header_key(headers)?;
    let header_project = match header_key.as_deref() {
        Some(key) => Some(auth::authorize(&state.projects, Some(key), KeyKind::Write)?),
        None => None,
    };
    let limits = state.limits;
    let bytes = body::read_limited(headers, request_body, limits.max_request_bytes).await?;
    let payload = match shape {
        Shape::Single(event_type) => Payload::single(&bytes, event_type, limits)?,
        Shape::Batch => Payload::batch(&bytes, limits)?,
    };
    let project = match header_project {
        Some(project) => project,
        None => auth::authorize(&state.projects, payload.write_key(), KeyKind::Write)?,
    };
    let parsed = payload.into_events(IngestContext {
        project_id: &project.id,
        received_at,
        max_future: state.max_future,
    });

    let metrics = &state.metrics;
    for rejection in &parsed.rejected {
        metrics
            .events_rejected
            .with_label_values(&[rejection.code.as_str()])
            .inc();
    }
    metrics.events_clamped.inc_by(parsed.clamped as u64);
    if parsed.events.is_empty() && !parsed.rejected.is_empty() {
        return Err(ApiError::NoValidEvents {
            rejected: parsed.rejected,
        });
    }

    let mut per_type = [0_u64; EventType::ALL.len()];
    for event in &parsed.events {
        per_type[event.event_type as usize] += 1;
    }
    let accepted = parsed.events.len();
    state.sink.submit(parsed.events).await?;
    for (event_type, count) in EventType::ALL.iter().zip(per_type) {
        if count > 0 {
            metrics
                .events_accepted
                .with_label_values(&[event_type.as_str()])
                .inc_by(count);
        }
    }
    Ok(Json(IngestResponse {
        success: true,
        accepted,
        rejected: parsed.rejected,
    }))
}

macro_rules! single_event_endpoint {
    ($handler:ident, $path:literal, $event_type:expr, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post,
            path = $path,
            tag = "ingest",
            summary = $summary,
            request_body(content = SegmentMessage, description = "One message; at most 32 KB. `Content-Encoding: gzip` is accepted."),
            responses(
                (status = 200, description = "Stored", body = IngestResponse),
                (status = 400, description = "Malformed JSON or an invalid message", body = ErrorBody),
                (status = 401, description = "Missing or unknown write key", body = ErrorBody),
                (status = 413, description = "Over 32 KB per event or 500 KB per request", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
                (status = 503, description = "Queue full, storage unavailable, or the Kafka broker did not acknowledge; see Retry-After", body = ErrorBody),
            ),
            security(("write_key_basic" = []), ("bearer" = []))
        )]
        pub async fn $handler(
            State(state): State<AppState>,
            headers: HeaderMap,
            request_body: Body,
        ) -> Result<Json<IngestResponse>, ApiError> {
            ingest(&state, &headers, request_body, Shape::Single($event_type)).await
        }
    };
}

single_event_endpoint!(
    track,
    "/v1/track",
    EventType::Track,
    "Record a user action."
);
single_event_endpoint!(
    identify,
    "/v1/identify",
    EventType::Identify,
    "Tie a user to their traits."
);
single_event_endpoint!(page, "/v1/page", EventType::Page, "Record a web page view.");
single_event_endpoint!(
    screen,
    "/v1/screen",
    EventType::Screen,
    "Record a mobile screen view."
);
single_event_endpoint!(
    group,
    "/v1/group",
    EventType::Group,
    "Tie a user to a group."
);
single_event_endpoint!(
    alias,
    "/v1/alias",
    EventType::Alias,
    "Link a previous identity to a user."
);

macro_rules! batch_endpoint {
    ($handler:ident, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post,
            path = $path,
            tag = "ingest",
            summary = $summary,
            request_body(content = BatchRequest, description = "Up to 2,500 messages, 500 KB after decompression. `Content-Encoding: gzip` is accepted."),
            responses(
                (status = 200, description = "Valid messages stored; rejected ones listed by index", body = IngestResponse),
                (status = 400, description = "Malformed JSON, or no valid message (each listed by index)", body = ErrorBody),
                (status = 401, description = "Missing or unknown write key", body = ErrorBody),
                (status = 413, description = "Over 2,500 events or 500 KB", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
                (status = 503, description = "Queue full, storage unavailable, or the Kafka broker did not acknowledge; see Retry-After", body = ErrorBody),
            ),
            security(("write_key_basic" = []), ("bearer" = []))
        )]
        pub async fn $handler(
            State(state): State<AppState>,
            headers: HeaderMap,
            request_body: Body,
        ) -> Result<Json<IngestResponse>, ApiError> {
            ingest(&state, &headers, request_body, Shape::Batch).await
        }
    };
}

batch_endpoint!(batch, "/v1/batch", "Send several messages of any type.");
batch_endpoint!(
    import,
    "/v1/import",
    "Send several messages of any type (alias of /v1/batch)."
);

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::api::{router, AppState};
    use crate::config::{ProcessorConfig, ProjectConfig, Secret};
    use crate::domain::segment::Limits;
    use crate::domain::ProjectRegistry;
    use crate::storage::testing::FakeRepository;
    use crate::telemetry::Metrics;
    use crate::workers::processor;

    #[tokio::test]
    async fn a_write_that_keeps_failing_answers_503_with_retry_after() {
        let repository = Arc::new(FakeRepository {
            failures: AtomicU32::new(100),
            ..FakeRepository::default()
        });
        let metrics = Metrics::new();
        let config = ProcessorConfig {
            write_attempts: 2,
            ..ProcessorConfig::default()
        };
        let (sink, worker) = processor::queue(
            100,
            config.batching(crate::config::StorageBackend::Duckdb),
            repository.clone(),
            metrics.clone(),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(worker.run(stop.clone()));
        let projects = ProjectRegistry::from_config(&[ProjectConfig {
            id: "p".into(),
            timezone: "UTC".into(),
            write_keys: vec![Secret::new("wk_unit_test_1")],
            read_keys: vec![],
            session_timeout: std::time::Duration::from_secs(1800),
        }]);
        let app = router(AppState {
            projects: Arc::new(projects),
            sink,
            repository,
            metrics: metrics.clone(),
            limits: Limits::SEGMENT,
            max_future: chrono::Duration::days(1),
            shutting_down: tokio_util::sync::CancellationToken::new(),
            dependencies: Vec::new(),
        });
        let request = Request::post("/v1/track")
            .header("authorization", "Bearer wk_unit_test_1")
            .body(axum::body::Body::from(r#"{"userId":"u","event":"e"}"#))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "storage_unavailable");
        assert_eq!(
            metrics
                .batch_flush_errors
                .with_label_values(&["gave_up"])
                .get(),
            1
        );
        assert_eq!(
            metrics.events_accepted.with_label_values(&["track"]).get(),
            0
        );
        stop.cancel();
        worker.await.unwrap();
    }
}
