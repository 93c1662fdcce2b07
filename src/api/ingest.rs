//! The Segment HTTP Tracking API: `/v1/track`, `/v1/identify`, ..., `/v1/batch`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::WriteKeyQuery;
use super::client_address::ClientAddress;
use super::error::{ApiError, ErrorBody};
use super::{auth, body, cors, AppState};
use crate::domain::segment::{Payload, Rejection};
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
    ClientAddress(sender): ClientAddress,
    headers: &HeaderMap,
    query_key: Option<String>,
    request_body: Body,
    shape: Shape,
) -> Result<Json<IngestResponse>, ApiError> {
    let received_at = Utc::now();
    let header_key = match auth::header_key(headers)? {
        Some(key) => Some(key),
        None => query_key,
    };
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
    cors::check_origin(&project, headers)?;
    let outcome = state
        .ingest
        .ingest(&project, payload, sender, received_at)
        .await?;
    Ok(Json(IngestResponse {
        success: true,
        accepted: outcome.accepted,
        rejected: outcome.rejected,
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
                (status = 403, description = "A browser page whose origin the project's allowed_origins does not list", body = ErrorBody),
                (status = 413, description = "Over 32 KB per event or 500 KB per request", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
                (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
                (status = 503, description = "Queue full, storage unavailable, or the Kafka broker did not acknowledge; see Retry-After", body = ErrorBody),
            ),
            security(("write_key_basic" = []), ("bearer" = []))
        )]
        pub async fn $handler(
            State(state): State<AppState>,
            sender: ClientAddress,
            headers: HeaderMap,
            request_body: Body,
        ) -> Result<Json<IngestResponse>, ApiError> {
            ingest(&state, sender, &headers, None, request_body, Shape::Single($event_type)).await
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
                (status = 403, description = "A browser page whose origin the project's allowed_origins does not list", body = ErrorBody),
                (status = 413, description = "Over 2,500 events or 500 KB", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
                (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
                (status = 503, description = "Queue full, storage unavailable, or the Kafka broker did not acknowledge; see Retry-After", body = ErrorBody),
            ),
            security(("write_key_basic" = []), ("bearer" = []))
        )]
        pub async fn $handler(
            State(state): State<AppState>,
            sender: ClientAddress,
            headers: HeaderMap,
            request_body: Body,
        ) -> Result<Json<IngestResponse>, ApiError> {
            ingest(&state, sender, &headers, None, request_body, Shape::Batch).await
        }
    };
}

batch_endpoint!(batch, "/v1/batch", "Send several messages of any type.");
batch_endpoint!(
    import,
    "/v1/import",
    "Send several messages of any type (alias of /v1/batch)."
);

// analytics.js posts to the first letter of each type.
single_event_endpoint!(
    track_short,
    "/v1/t",
    EventType::Track,
    "Record a user action (analytics.js' path for /v1/track)."
);
single_event_endpoint!(
    identify_short,
    "/v1/i",
    EventType::Identify,
    "Tie a user to their traits (analytics.js' path for /v1/identify)."
);
single_event_endpoint!(
    page_short,
    "/v1/p",
    EventType::Page,
    "Record a web page view (analytics.js' path for /v1/page)."
);
single_event_endpoint!(
    screen_short,
    "/v1/s",
    EventType::Screen,
    "Record a mobile screen view (analytics.js' path for /v1/screen)."
);
single_event_endpoint!(
    group_short,
    "/v1/g",
    EventType::Group,
    "Tie a user to a group (analytics.js' path for /v1/group)."
);
single_event_endpoint!(
    alias_short,
    "/v1/a",
    EventType::Alias,
    "Link a previous identity to a user (analytics.js' path for /v1/alias)."
);
batch_endpoint!(
    batch_short,
    "/v1/b",
    "Send several messages of any type (analytics.js' path for /v1/batch)."
);

/// A batch sent with `navigator.sendBeacon` (RudderStack's beacon transport):
/// the write key rides in the query string.
#[utoipa::path(
    post,
    path = "/beacon/v1/batch",
    tag = "ingest",
    summary = "Send several messages from navigator.sendBeacon (RudderStack).",
    params(WriteKeyQuery),
    request_body(content = BatchRequest, description = "Up to 2,500 messages, 500 KB, usually sent as text/plain."),
    responses(
        (status = 200, description = "Valid messages stored; rejected ones listed by index", body = IngestResponse),
        (status = 400, description = "Malformed JSON, or no valid message (each listed by index)", body = ErrorBody),
        (status = 401, description = "Missing or unknown write key", body = ErrorBody),
        (status = 403, description = "A browser page whose origin the project's allowed_origins does not list", body = ErrorBody),
        (status = 413, description = "Over 2,500 events or 500 KB", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
        (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
        (status = 503, description = "Queue full, storage unavailable, or the Kafka broker did not acknowledge; see Retry-After", body = ErrorBody),
    ),
    security(("write_key_basic" = []), ("bearer" = []), ())
)]
pub async fn beacon_batch(
    State(state): State<AppState>,
    Query(query): Query<WriteKeyQuery>,
    sender: ClientAddress,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest(
        &state,
        sender,
        &headers,
        query.write_key,
        request_body,
        Shape::Batch,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use crate::api::router;
    use crate::api::testing::{projects, state_with, WRITE_KEY};
    use crate::config::ReadConfig;
    use crate::storage::testing::FakeRepository;

    async fn post(
        app: axum::Router,
        path: &str,
        body: Value,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {WRITE_KEY}"))
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let body = axum::body::to_bytes(response.into_body(), 100_000)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_write_that_keeps_failing_answers_503_with_retry_after() {
        let repository = Arc::new(FakeRepository {
            failures: AtomicU32::new(100),
            ..FakeRepository::default()
        });
        let (state, worker) = state_with(repository, projects(), ReadConfig::default());
        let metrics = state.metrics.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(worker.run(stop.clone()));
        let (status, headers, body) = post(
            router(state),
            "/v1/track",
            json!({"userId": "u", "event": "e"}),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "5");
        assert_eq!(body["error"]["code"], "storage_unavailable");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("disk on fire"),
            "the backend's message stays in the log: {body}"
        );
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

    #[tokio::test]
    async fn an_event_storage_refuses_is_rejected_alone_by_index() {
        let repository = Arc::new(FakeRepository::default());
        repository.refuse(&["bad"]);
        let (state, worker) = state_with(repository.clone(), projects(), ReadConfig::default());
        let metrics = state.metrics.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(worker.run(stop.clone()));
        let batch = json!({"batch": [
            {"type": "track", "userId": "u", "event": "e", "messageId": "good1"},
            {"type": "track", "userId": "u"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "bad"},
            {"type": "track", "userId": "u", "event": "e", "messageId": "good2"}
        ]});
        let (status, _, body) = post(router(state), "/v1/batch", batch).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["accepted"], 2);
        let rejected = body["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 2);
        assert_eq!(
            (rejected[0]["index"].clone(), rejected[0]["code"].clone()),
            (json!(1), json!("missing_field"))
        );
        assert_eq!(
            (rejected[1]["index"].clone(), rejected[1]["code"].clone()),
            (json!(2), json!("storage_rejected"))
        );
        assert_eq!(*repository.stored.lock().unwrap(), ["good1", "good2"]);
        assert_eq!(
            metrics.events_accepted.with_label_values(&["track"]).get(),
            2
        );
        stop.cancel();
        worker.await.unwrap();
    }
}
