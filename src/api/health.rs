//! Liveness, readiness and the Prometheus endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Longest a readiness check waits for storage.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Health of the service and of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok` or what is wrong.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<&'static str, String>,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        checks: BTreeMap::new(),
    })
}

/// Readiness: storage and every other dependency (the Kafka broker, when
/// configured) answer, and the service is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = HealthResponse),
        (status = 503, description = "A dependency is down, or the service is draining", body = HealthResponse),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut checks = BTreeMap::new();
    let storage = match tokio::time::timeout(READINESS_TIMEOUT, state.reads.storage_ready()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", READINESS_TIMEOUT.as_secs()),
    };
    let mut ready = storage == "ok";
    checks.insert("storage", storage);
    for dependency in &state.dependencies {
        let status = match tokio::time::timeout(READINESS_TIMEOUT, dependency.check()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(problem)) => problem,
            Err(_) => format!("no answer within {} s", READINESS_TIMEOUT.as_secs()),
        };
        ready &= status == "ok";
        checks.insert(dependency.name(), status);
    }
    if state.shutting_down.is_cancelled() {
        checks.insert("service", "shutting down".to_owned());
        ready = false;
    }
    let (status, label) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(HealthResponse {
            status: label,
            checks,
        }),
    )
}

/// Metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::*;
    use crate::storage::testing::FakeRepository;

    fn state(repository: Arc<FakeRepository>) -> AppState {
        crate::api::testing::state(repository, crate::api::testing::projects())
    }

    async fn readiness(state: AppState) -> (StatusCode, serde_json::Value) {
        let response = readyz(State(state)).await.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn readiness_reports_unreachable_storage() {
        let repository = Arc::new(FakeRepository::default());
        let (status, _) = readiness(state(repository.clone())).await;
        assert_eq!(status, StatusCode::OK);
        repository.unreachable.store(true, Ordering::SeqCst);
        let (status, body) = readiness(state(repository)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["checks"]["storage"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
    }

    struct Broker(Option<&'static str>);

    #[async_trait::async_trait]
    impl crate::domain::dependency::DependencyCheck for Broker {
        fn name(&self) -> &'static str {
            "kafka"
        }
        async fn check(&self) -> Result<(), String> {
            self.0.map_or(Ok(()), |problem| Err(problem.to_owned()))
        }
    }

    #[tokio::test]
    async fn readiness_includes_every_dependency() {
        let mut state = state(Arc::new(FakeRepository::default()));
        state.dependencies = vec![Arc::new(Broker(None))];
        let (status, body) = readiness(state.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["checks"]["kafka"], "ok");
        state.dependencies = vec![Arc::new(Broker(Some("brokers unreachable")))];
        let (status, body) = readiness(state).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["kafka"], "brokers unreachable");
        assert_eq!(body["checks"]["storage"], "ok");
    }

    #[tokio::test]
    async fn readiness_turns_false_while_draining() {
        let state = state(Arc::new(FakeRepository::default()));
        state.shutting_down.cancel();
        let (status, body) = readiness(state).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["service"], "shutting down");
    }
}
