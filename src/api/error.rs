//! The API's error type and its one mapping to HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::query::QueryError;
use crate::domain::segment::{PayloadError, RejectCode, Rejection};
use crate::domain::SinkError;
use crate::storage::StorageError;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key, or a key that authorises nothing here.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key that does not allow this request (a write key reading).
    #[error("{0}")]
    Forbidden(String),
    /// A query the planner refuses.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The request body exceeds a size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The body cannot be used at all.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Every event of the request was rejected.
    #[error("no valid event in the request: {} rejected", rejected.len())]
    NoValidEvents {
        /// Each rejected event.
        rejected: Vec<Rejection>,
    },
    /// A parameter with a bad value.
    #[error("{field}: {message}")]
    InvalidParameter {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The ingest path could not take the events.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such route.
    #[error("no route for {0}")]
    NotFound(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `unauthorized`, `payload_too_large`, `invalid_events`.
    pub code: &'static str,
    /// Human-readable explanation naming the field or limit at fault.
    pub message: String,
    /// The field or parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For ingest: every rejected event, by index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<Rejection>>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Query(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Payload(
                PayloadError::EventTooLarge { .. } | PayloadError::TooManyEvents { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Payload(_) | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NoValidEvents { rejected } => {
                if rejected.iter().all(|r| r.code == RejectCode::TooLarge) {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                }
            }
            ApiError::Sink(_) | ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Query(_) => "invalid_query",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::Payload(PayloadError::MalformedJson { .. }) => "malformed_json",
            ApiError::Payload(PayloadError::NotAnObject) => "not_an_object",
            ApiError::Payload(PayloadError::EventTooLarge { .. }) => "event_too_large",
            ApiError::Payload(PayloadError::TooManyEvents { .. }) => "too_many_events",
            ApiError::Payload(PayloadError::InvalidField { .. }) => "invalid_field",
            ApiError::NoValidEvents { .. } => "invalid_events",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::Sink(SinkError::QueueFull) => "queue_full",
            ApiError::Sink(SinkError::ShuttingDown) => "shutting_down",
            ApiError::Sink(SinkError::StorageUnavailable(_)) | ApiError::Storage(_) => {
                "storage_unavailable"
            }
            ApiError::Sink(SinkError::BrokerUnavailable(_)) => "broker_unavailable",
            ApiError::NotFound(_) => "not_found",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Payload(PayloadError::InvalidField { field, .. })
            | ApiError::InvalidParameter { field, .. } => Some((*field).to_owned()),
            ApiError::Query(error) => Some(error.path.clone()),
            _ => None,
        }
    }

    fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            ApiError::Sink(SinkError::QueueFull) => Some(1),
            ApiError::Sink(_) | ApiError::Storage(_) => Some(5),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        }
        let retry_after = self.retry_after_seconds();
        let detail = ErrorDetail {
            code: self.code(),
            message: self.to_string(),
            field: self.field(),
            rejected: match self {
                ApiError::NoValidEvents { rejected } => Some(rejected),
                _ => None,
            },
        };
        let mut response = (status, Json(ErrorBody { error: detail })).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
