//! The API's error type and its one mapping to HTTP responses.
//!
//! Client errors say what is wrong and where. Server errors are of two kinds:
//! a retryable one (503 with `Retry-After`: the queue is full, storage is
//! unavailable) and a permanent one (500 `internal`: a defect). Neither
//! carries internal details: those go to the log, under the request id that
//! every error body repeats ([`request_id_in_errors`]).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::middleware::REQUEST_ID_HEADER;
use crate::app::AppError;
use crate::domain::plausible::PlausibleError;
use crate::domain::query::QueryError;
use crate::domain::segment::{PayloadError, RejectCode, Rejection};
use crate::domain::SinkError;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key, or a key that authorises nothing here.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key that does not allow this request (a write key reading).
    #[error("{0}")]
    Forbidden(String),
    /// A browser page whose origin the project does not accept.
    #[error("{0}")]
    OriginNotAllowed(String),
    /// The request body exceeds a size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The body cannot be used at all.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A parameter with a bad value.
    #[error("{field}: {message}")]
    InvalidParameter {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// A Plausible event that is not one.
    #[error(transparent)]
    Plausible(#[from] PlausibleError),
    /// A site domain that no project lists.
    #[error("no project lists the domain {0:?} in its domains")]
    UnknownDomain(String),
    /// A use case failed.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::App(AppError::Invalid(error))
    }
}

impl From<SinkError> for ApiError {
    fn from(error: SinkError) -> Self {
        ApiError::App(AppError::Sink(error))
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `unauthorized`, `payload_too_large`,
    /// `invalid_events`, `limit_exceeded`, `internal`.
    pub code: &'static str,
    /// Human-readable explanation naming the field or limit at fault.
    pub message: String,
    /// The field or parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The configuration setting behind the refusal (a limit reached, an
    /// origin not allowed), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<&'static str>,
    /// For ingest: every rejected event, by index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<Rejection>>,
    /// The request's id (`X-Request-Id`), under which the service logs what
    /// happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Payload(
                PayloadError::EventTooLarge { .. } | PayloadError::TooManyEvents { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Payload(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::Plausible(_)
            | ApiError::UnknownDomain(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::App(error) => match error {
                AppError::Invalid(_) | AppError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
                AppError::NoValidEvents { rejected } => {
                    if rejected.iter().all(|r| r.code == RejectCode::TooLarge) {
                        StatusCode::PAYLOAD_TOO_LARGE
                    } else {
                        StatusCode::BAD_REQUEST
                    }
                }
                AppError::Limit(limit) if limit.is_busy() => StatusCode::TOO_MANY_REQUESTS,
                AppError::Limit(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AppError::Sink(SinkError::StorageFailed(_)) | AppError::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                AppError::Sink(_) | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::Payload(PayloadError::MalformedJson { .. }) => "malformed_json",
            ApiError::Payload(PayloadError::NotAnObject) => "not_an_object",
            ApiError::Payload(PayloadError::EventTooLarge { .. }) => "event_too_large",
            ApiError::Payload(PayloadError::TooManyEvents { .. }) => "too_many_events",
            ApiError::Payload(PayloadError::InvalidField { .. }) => "invalid_field",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::Plausible(_) => "invalid_field",
            ApiError::UnknownDomain(_) => "unknown_domain",
            ApiError::App(error) => match error {
                AppError::Invalid(_) => "invalid_query",
                AppError::InvalidParameter { .. } => "invalid_parameter",
                AppError::NoValidEvents { .. } => "invalid_events",
                AppError::Limit(limit) if limit.is_busy() => "busy",
                AppError::Limit(_) => "limit_exceeded",
                AppError::Sink(SinkError::QueueFull) => "queue_full",
                AppError::Sink(SinkError::ShuttingDown) => "shutting_down",
                AppError::Sink(SinkError::StorageUnavailable(_)) | AppError::Unavailable(_) => {
                    "storage_unavailable"
                }
                AppError::Sink(SinkError::BrokerUnavailable(_)) => "broker_unavailable",
                AppError::Sink(SinkError::StorageFailed(_)) | AppError::Internal(_) => "internal",
            },
        }
    }

    /// The message clients see: server errors say what to do, not what broke.
    fn message(&self) -> String {
        match self {
            ApiError::App(AppError::Sink(SinkError::StorageFailed(_)) | AppError::Internal(_)) => {
                "an internal error occurred; the service log has the details under this request's id".into()
            }
            ApiError::App(
                AppError::Sink(SinkError::StorageUnavailable(_)) | AppError::Unavailable(_),
            ) => "storage is unavailable right now; retry after the Retry-After delay".into(),
            ApiError::App(AppError::Sink(SinkError::BrokerUnavailable(_))) => {
                "the Kafka broker did not acknowledge the events; retry after the Retry-After delay"
                    .into()
            }
            other => other.to_string(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Payload(PayloadError::InvalidField { field, .. })
            | ApiError::InvalidParameter { field, .. }
            | ApiError::App(AppError::InvalidParameter { field, .. }) => Some((*field).to_owned()),
            ApiError::App(AppError::Invalid(error)) => Some(error.path.clone()),
            ApiError::Plausible(error) => Some(error.field.to_owned()),
            ApiError::UnknownDomain(_) => Some("domain".to_owned()),
            _ => None,
        }
    }

    fn setting(&self) -> Option<&'static str> {
        match self {
            ApiError::App(AppError::Limit(limit)) => Some(limit.setting()),
            ApiError::OriginNotAllowed(_) => Some("projects[].allowed_origins"),
            ApiError::UnknownDomain(_) => Some("projects[].domains"),
            _ => None,
        }
    }

    fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            ApiError::App(AppError::Sink(SinkError::QueueFull) | AppError::Limit(_))
                if self.status() != StatusCode::UNPROCESSABLE_ENTITY =>
            {
                Some(1)
            }
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => Some(5),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        }
        let retry_after = self.retry_after_seconds();
        let detail = ErrorDetail {
            code: self.code(),
            message: self.message(),
            field: self.field(),
            setting: self.setting(),
            rejected: match self {
                ApiError::App(AppError::NoValidEvents { rejected }) => Some(rejected),
                _ => None,
            },
            request_id: None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: detail.clone(),
            }),
        )
            .into_response();
        response.extensions_mut().insert(detail);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Puts the request's id into the body of every error response, so that a
/// client can quote it and an operator find the log lines.
pub async fn request_id_in_errors(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    let (Some(id), Some(mut detail)) = (id, response.extensions_mut().remove::<ErrorDetail>())
    else {
        return response;
    };
    detail.request_id = Some(id);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = Json(ErrorBody { error: detail })
        .into_response()
        .into_body();
    Response::from_parts(parts, body)
}

/// The response of a handler that panicked: 500 `internal`, counted in
/// `panics` and logged (with the request id, from the request's span).
pub fn panic_response(
    panics: &prometheus::IntCounter,
    panic: Box<dyn std::any::Any + Send + 'static>,
) -> Response {
    panics.inc();
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::App(AppError::Internal(format!("a handler panicked: {message}"))).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::api::router;
    use crate::api::testing::{projects, state, READ_KEY};
    use crate::storage::testing::FakeRepository;

    async fn query(repository: Arc<FakeRepository>) -> (StatusCode, serde_json::Value, String) {
        let state = state(repository, projects());
        let metrics = state.metrics.clone();
        let request = Request::post("/v1/query")
            .header("authorization", format!("Bearer {READ_KEY}"))
            .header("x-request-id", "req-42")
            .body(axum::body::Body::from(
                r#"{"metrics": ["events"], "date_range": "7d"}"#,
            ))
            .unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap(),
            metrics.render(),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_its_request_id_and_is_counted() {
        let repository = Arc::new(FakeRepository::default());
        repository.panics.store(true, Ordering::SeqCst);
        let (status, body, metrics) = query(repository).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["request_id"], "req-42");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("defect"),
            "details stay in the log: {message}"
        );
        assert!(
            metrics.contains("analytics_http_panics_total 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains(
                r#"analytics_http_requests_total{method="POST",route="/v1/query",status="500"} 1"#
            ),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn unavailable_storage_answers_503_without_its_detail() {
        let repository = Arc::new(FakeRepository::default());
        repository.unreachable.store(true, Ordering::SeqCst);
        let (status, body, _) = query(repository).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "storage_unavailable");
        assert!(!body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
        assert_eq!(body["error"]["request_id"], "req-42");
    }
}
