//! `spawn_app()`: a fresh service on port 0 with its own temporary database.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use analytics::config::{Config, ProjectConfig, Secret, StorageBackend};
use analytics::startup::{Application, StartupError};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WRITE_KEY: &str = "wk_test_shop_0001";
pub const READ_KEY: &str = "rk_test_shop_0001";
pub const OTHER_WRITE_KEY: &str = "wk_test_other_0001";
pub const OTHER_READ_KEY: &str = "rk_test_other_0001";

/// A running service and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    _temp: Option<tempfile::TempDir>,
}

/// The configuration every test starts from: two projects, storage in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_timeout: Duration::from_secs(10),
        projects: vec![
            ProjectConfig {
                timezone: "Europe/Berlin".into(),
                write_keys: vec![Secret::new(WRITE_KEY)],
                read_keys: vec![Secret::new(READ_KEY)],
                ..ProjectConfig::new("shop")
            },
            ProjectConfig {
                write_keys: vec![Secret::new(OTHER_WRITE_KEY)],
                read_keys: vec![Secret::new(OTHER_READ_KEY)],
                ..ProjectConfig::new("other")
            },
        ],
        ..Config::default()
    };
    config.storage.path = dir.join("analytics.duckdb");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    config.enrich.user_agent_regexes = repository.join(&config.enrich.user_agent_regexes);
    config.enrich.referrers = repository.join(&config.enrich.referrers);
    config.processor.batch_max_wait = Some(Duration::from_millis(1));
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

#[path = "../support/clickhouse.rs"]
pub mod clickhouse_support;

pub use clickhouse_support::requirements;

/// Whether the test ClickHouse server is there; when it is not, the test
/// calling this returns at once (skipped, or failed under `scripts/test.sh`).
pub fn clickhouse_available() -> bool {
    clickhouse_support::test_url().is_some()
}

/// A storage backend the shared suites run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded DuckDB file in a temporary directory.
    DuckDb,
    /// A fresh database on the test ClickHouse server.
    ClickHouse,
}

impl Backend {
    /// Points `config` at this backend.
    pub fn configure(self, config: &mut Config) {
        if self == Backend::ClickHouse {
            let options = clickhouse_support::test_options()
                .expect("tests on ClickHouse check clickhouse_available() first");
            config.storage.backend = StorageBackend::Clickhouse;
            config.storage.url = options.url;
            config.storage.database = options.database;
        }
    }
}

/// A fresh service storing its events in `backend`.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(|config| backend.configure(config)).await
}

/// Runs each named `async fn(Backend)` once per backend, as
/// `NAME::duckdb` and `NAME::clickhouse`, with the same expectations.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::helpers::Backend;

                #[tokio::test]
                async fn duckdb() {
                    super::$name(Backend::DuckDb).await;
                }

                #[tokio::test]
                async fn clickhouse() {
                    if $crate::helpers::clickhouse_available() {
                        super::$name(Backend::ClickHouse).await;
                    }
                }
            }
        )*
    };
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_app_in(temp.path(), tweak).await;
    app._temp = Some(temp);
    app
}

/// Starts a service on the database in `dir` (which the caller keeps).
pub async fn spawn_app_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(dir);
    tweak(&mut config);
    let application = Application::build(config).await.expect("app builds");
    serve(application)
}

/// Starts a service over an open repository (storage in `dir` unused).
pub async fn spawn_app_over(
    dir: &Path,
    repository: std::sync::Arc<dyn analytics::storage::Repository>,
) -> TestApp {
    spawn_app_over_with(dir, repository, |_| {}).await
}

/// Starts a service over an open repository, its configuration tweaked.
pub async fn spawn_app_over_with(
    dir: &Path,
    repository: std::sync::Arc<dyn analytics::storage::Repository>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(dir);
    tweak(&mut config);
    let application = Application::build_on(config, repository)
        .await
        .expect("app builds");
    serve(application)
}

fn serve(application: Application) -> TestApp {
    let address = format!("http://{}", application.local_addr());
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = signal.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server: Some(server),
        _temp: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs JSON with the shop's write key as HTTP Basic user.
    /// GETs a path without a key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .basic_auth(WRITE_KEY, Some(""))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Exports the shop's events (all of them).
    pub async fn export(&self) -> Vec<Value> {
        self.export_with(READ_KEY, "").await
    }

    pub async fn export_with(&self, read_key: &str, query: &str) -> Vec<Value> {
        let response = self
            .client
            .get(self.url(&format!("/v1/export{query}")))
            .bearer_auth(read_key)
            .send()
            .await
            .expect("export sent");
        assert_eq!(response.status(), 200, "export failed");
        let text = response.text().await.expect("export body");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    /// POSTs a query with a key as Bearer token; returns the status and the JSON body.
    pub async fn query_with(&self, key: &str, body: &Value) -> (u16, Value) {
        self.read_post(key, "/v1/query", body).await
    }

    /// POSTs JSON to a read endpoint with a key as Bearer token; returns the
    /// status and the JSON body.
    pub async fn read_post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("query sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Runs a query with the shop's read key and expects an answer.
    pub async fn query(&self, body: &Value) -> Value {
        let (status, answer) = self.query_with(READ_KEY, body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// GETs a read endpoint with a key; returns the status and the JSON body.
    pub async fn get_json(&self, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Shuts down gracefully and waits for the service to stop.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.begin_stop();
        self.wait_stopped().await
    }

    pub fn begin_stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn wait_stopped(mut self) -> Option<tempfile::TempDir> {
        self.server
            .take()
            .unwrap()
            .await
            .expect("server task")
            .expect("clean stop");
        self._temp.take()
    }

    /// Waits (at most `timeout`) for the service to stop by itself; its result.
    pub async fn stopped_by_itself(
        mut self,
        timeout: std::time::Duration,
    ) -> Result<(), StartupError> {
        let server = self.server.take().unwrap();
        tokio::time::timeout(timeout, server)
            .await
            .expect("the service stops by itself")
            .expect("server task")
    }
}

/// The value of a metric line `name{labels} value`, summing all series whose text starts so.
pub fn metric_value(metrics: &str, series_prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(series_prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn track(user: &str, event: &str) -> Value {
    serde_json::json!({"userId": user, "event": event})
}
