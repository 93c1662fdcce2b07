//! The HTTP API: router, shared state and handlers. Handlers authenticate,
//! read the request into a typed spec, and call the application layer.

pub mod analysis;
pub mod auth;
pub mod body;
mod client_address;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod health;
pub mod ingest;
pub mod middleware;
pub mod openapi;
pub mod plausible;
pub mod project;
pub mod query;
pub mod sdk_settings;
#[cfg(test)]
pub(crate) mod testing;
pub mod tracker;

use std::sync::Arc;

use axum::http::{HeaderName, Request, Uri};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::{IngestService, QueryService, VisitorIds};
use crate::domain::dependency::DependencyCheck;
use crate::domain::origin::OriginPattern;
use crate::domain::segment::Limits;
use crate::domain::ProjectRegistry;
use crate::telemetry::Metrics;
use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Projects and their keys.
    pub projects: Arc<ProjectRegistry>,
    /// The ingest use case.
    pub ingest: Arc<IngestService>,
    /// The read use cases.
    pub reads: Arc<QueryService>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Ingest size limits.
    pub limits: Limits,
    /// Cancelled once shutdown begins (readiness turns false).
    pub shutting_down: CancellationToken,
    /// What readiness checks besides storage: the Kafka broker, the workers.
    pub dependencies: Vec<Arc<dyn DependencyCheck>>,
    /// How browsers reach the service.
    pub web: WebAccess,
    /// Cookieless visitor ids, for browser events that carry none.
    pub visitors: Arc<VisitorIds>,
}

/// How browsers reach the service.
#[derive(Debug, Clone, Default)]
pub struct WebAccess {
    /// The service's address as browsers see it, for the settings documents
    /// SDKs fetch (`ingest.public_url`); `None`: the request's `Host`.
    pub public_url: Option<url::Url>,
    /// Origins whose pages may call the read API (`read.allowed_origins`);
    /// empty: none.
    pub read_origins: Vec<OriginPattern>,
    /// Peers whose forwarding headers name the client (`ingest.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether `/` serves the dashboard (`dashboard.enabled`).
    pub dashboard: bool,
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// Builds the router with every route and middleware.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(middleware::REQUEST_ID_HEADER);
    let metrics = state.metrics.clone();
    let panics = state.metrics.http_panics.clone();
    let ingest = Router::new()
        .route("/v1/track", post(ingest::track))
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/import", post(ingest::import))
        .route("/v1/t", post(ingest::track_short))
        .route("/v1/i", post(ingest::identify_short))
        .route("/v1/p", post(ingest::page_short))
        .route("/v1/s", post(ingest::screen_short))
        .route("/v1/g", post(ingest::group_short))
        .route("/v1/a", post(ingest::alias_short))
        .route("/v1/b", post(ingest::batch_short))
        .route("/v1/m", post(sdk_settings::analytics_js_telemetry))
        .route("/beacon/v1/batch", post(ingest::beacon_batch))
        .route("/api/event", post(plausible::plausible_event))
        .route(
            "/v1/projects/{write_key}/settings",
            get(sdk_settings::analytics_js_settings),
        )
        .route(
            "/sourceConfig",
            get(sdk_settings::rudderstack_source_config),
        )
        .route(
            "/sourceConfig/",
            get(sdk_settings::rudderstack_source_config),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.projects.clone(),
            cors::ingest_cors,
        ));
    let mut read = Router::new()
        .route("/v1/export", get(export::export))
        .route("/v1/query", post(query::query))
        .route("/v1/funnel", post(analysis::funnel))
        .route("/v1/retention", post(analysis::retention))
        .route("/v1/stickiness", post(analysis::stickiness))
        .route("/v1/lifecycle", post(analysis::lifecycle))
        .route("/v1/paths", post(analysis::paths))
        .route("/v1/events/names", get(query::event_names))
        .route("/v1/properties", get(query::properties))
        .route("/v1/project", get(project::project));
    if let Some(cors) = cors::read_cors(&state.web.read_origins) {
        read = read.layer(cors);
    }
    let mut pages = Router::new();
    if state.web.dashboard {
        pages = pages
            .route("/", get(dashboard::index))
            .route("/dashboard/{name}", get(dashboard::asset));
    }
    let api = Router::new()
        .merge(ingest)
        .merge(read)
        .merge(pages)
        .route("/js/script.js", get(tracker::script))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state);
    // Layers wrap what is above them: a panic becomes a 500 response, which
    // gets the request id, is counted, and is logged in the request's span.
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::ApiDoc::openapi()))
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(move |panic| {
            error::panic_response(&panics, panic)
        }))
        .layer(axum::middleware::from_fn(error::request_id_in_errors))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::record_metrics,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(middleware::REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
