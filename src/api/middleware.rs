//! Request metrics and request ids.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::telemetry::Metrics;

/// Header carrying the request id, honoured from the request or generated.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Counts requests and observes their latency, labelled by route template.
pub async fn record_metrics(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_request_duration
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}
