//! Static checks of the deployment files, since no container engine or
//! cluster runs here: hadolint on the Dockerfile, the Compose specification's
//! JSON schema on docker-compose.yaml, Kubernetes' own schemas on the rendered
//! kustomization, promtool on the Prometheus files, the dashboard's shape, and
//! the service's own configuration loader on every configuration they carry.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use analytics::config::{CliOverrides, Config, StorageBackend};
use serde_json::Value;

#[path = "support/deploy_files.rs"]
mod deploy_files;

use deploy_files::{dashboard, dashboard_panels, read, repo_path, succeeds, tool};

#[path = "support/requirements.rs"]
mod requirements;

/// Whether every checker is on `PATH`; when one is not, the test calling
/// this returns at once (skipped, or failed under `scripts/test.sh`).
fn available(programs: &[&str]) -> bool {
    programs
        .iter()
        .all(|program| requirements::program(program))
}

/// The oldest Kubernetes version the manifests are checked against (the
/// `sleep` pre-stop action needs 1.30 or later).
const KUBERNETES_VERSION: &str = "1.33.0";

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).expect("valid YAML")
}

/// Loads the service configuration from a TOML text and `ANALYTICS_*` pairs,
/// as the binary would in the container.
fn load_config(toml: &str, env: &[(String, String)]) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("analytics.toml");
    std::fs::write(&file, toml).unwrap();
    let cli = CliOverrides {
        config_file: Some(file),
        ..CliOverrides::default()
    };
    Config::load(&cli, env.to_vec()).unwrap_or_else(|error| panic!("{error}"))
}

fn seconds(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

#[test]
fn the_dockerfile_passes_hadolint_and_ships_only_the_binary_and_its_data_as_non_root() {
    if !available(&["hadolint"]) {
        return;
    }
    succeeds(tool("hadolint").arg(repo_path("deploy/docker/Dockerfile")));
    let dockerfile = read("deploy/docker/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    let runtime = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    let copies: Vec<&str> = runtime
        .lines()
        .filter(|line| line.starts_with("COPY"))
        .collect();
    assert!(
        copies
            .iter()
            .all(|line| line.contains("--from=build") || line.contains("--from=reference-data")),
        "the runtime stage takes only build outputs: {copies:?}"
    );
    // The enrichment data it points the service at is what it copies in.
    for setting in [
        "ANALYTICS_ENRICH__USER_AGENT_REGEXES",
        "ANALYTICS_ENRICH__REFERRERS",
    ] {
        let at = runtime
            .find(setting)
            .unwrap_or_else(|| panic!("{setting} is set"));
        let path = runtime[at + setting.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap();
        assert!(
            copies.iter().any(|line| line.ends_with(path)),
            "{setting}={path} is copied in: {copies:?}"
        );
    }
    assert!(copies
        .iter()
        .any(|line| line.ends_with("/usr/local/bin/analytics")));
    let user = runtime
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(runtime.contains("HEALTHCHECK"));
    assert!(runtime.contains("\"healthcheck\""));
    // The dependency layer is built before the sources are copied.
    let build = &dockerfile[..dockerfile.rfind("\nFROM ").unwrap()];
    let manifests = build.find("COPY Cargo.toml Cargo.lock").unwrap();
    let first_build = build.find("cargo build").unwrap();
    let sources = build.find("COPY src").unwrap();
    assert!(manifests < first_build && first_build < sources);

    // .dockerignore lets through exactly what the build copies.
    let ignore = read(".dockerignore");
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|line| line.strip_prefix('!'))
        .collect();
    assert!(ignore.lines().any(|line| line == "*"), "{ignore}");
    for needed in ["Cargo.toml", "Cargo.lock", "src/"] {
        assert!(allowed.contains(&needed), "{needed} is not in the context");
    }
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    if !available(&["check-jsonschema"]) {
        return;
    }
    let compose_path = repo_path("deploy/docker/docker-compose.yaml");
    succeeds(
        tool("check-jsonschema")
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(&compose_path),
    );
    let compose = yaml(&read("deploy/docker/docker-compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for name in ["analytics", "clickhouse", "kafka", "prometheus", "grafana"] {
        let service = &services[name];
        assert!(service.is_object(), "{name} is missing");
        assert!(
            service["healthcheck"]["test"].is_array(),
            "{name} has no healthcheck"
        );
    }
    let depends_on = &services["analytics"]["depends_on"];
    assert_eq!(depends_on["clickhouse"]["condition"], "service_healthy");
    assert_eq!(
        depends_on["kafka-topics"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(
        services["kafka-topics"]["depends_on"]["kafka"]["condition"],
        "service_healthy"
    );
    let topics = services["kafka-topics"]["command"][0].as_str().unwrap();
    assert_eq!(
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"], "broker,controller",
        "one KRaft node"
    );
    let named_volumes = compose["volumes"].as_object().expect("named volumes");
    let directory = compose_path.parent().unwrap();
    for (name, service) in services {
        for mount in service["volumes"].as_array().into_iter().flatten() {
            let source = mount.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    directory.join(source).exists(),
                    "{name} mounts {source}, which does not exist"
                );
            } else {
                assert!(named_volumes.contains_key(source), "{name}: {source}");
            }
        }
    }

    // The service's configuration, as the container gets it.
    let config = load_config(
        &read("deploy/docker/analytics.toml"),
        &[(
            "ANALYTICS_STORAGE__PASSWORD".into(),
            "from-the-environment".into(),
        )],
    );
    assert_eq!(config.storage.backend, StorageBackend::Clickhouse);
    assert_eq!(config.storage.url, "http://clickhouse:8123");
    assert_eq!(config.storage.password.expose(), "from-the-environment");
    let kafka = config.kafka.as_ref().expect("kafka is configured");
    assert_eq!(kafka.brokers, "kafka:9092");
    for topic in [&kafka.topic, &kafka.dead_letter_topic] {
        assert!(
            topics.contains(&format!("--topic {topic} ")),
            "{topic} is not created: {topics}"
        );
    }
    let grace = seconds(
        services["analytics"]["stop_grace_period"]
            .as_str()
            .expect("stop_grace_period"),
    );
    assert!(grace > config.shutdown_timeout, "{grace:?}");
}

/// The kustomization rendered by `kubectl kustomize`, one value per object.
fn rendered_kubernetes() -> (String, Vec<Value>) {
    let output = succeeds(
        tool("kubectl")
            .arg("kustomize")
            .arg(repo_path("deploy/kubernetes")),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = text
        .split("\n---\n")
        .map(yaml)
        .filter(|object| !object.is_null())
        .collect();
    (text, objects)
}

#[test]
fn the_kubernetes_manifests_render_and_match_the_kubernetes_schemas() {
    if !available(&["kubectl", "kubernetes-validate"]) {
        return;
    }
    let (text, objects) = rendered_kubernetes();
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("rendered.yaml");
    std::fs::write(&rendered, &text).unwrap();
    succeeds(
        tool("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
            .arg(&rendered),
    );

    let by_kind: BTreeMap<&str, &Value> = objects
        .iter()
        .map(|object| (object["kind"].as_str().unwrap(), object))
        .collect();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(by_kind.contains_key(kind), "no {kind}");
    }
    let pod = &by_kind["Deployment"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());

    // The configuration the pod gets: the ConfigMap's file, then the Secret's variables.
    let config_map = by_kind["ConfigMap"]["data"]["analytics.toml"]
        .as_str()
        .unwrap();
    let secret_env: Vec<(String, String)> = by_kind["Secret"]["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    let config = load_config(config_map, &secret_env);
    assert_eq!(config.storage.backend, StorageBackend::Clickhouse);
    assert_eq!(config.projects.len(), 1, "projects come from the Secret");
    assert_eq!(config.projects[0].id, "shop");
    assert!(!config.projects[0].write_keys.is_empty());
    assert!(!config.storage.password.expose().is_empty());
    assert!(container["envFrom"][0]["secretRef"]["name"] == by_kind["Secret"]["metadata"]["name"]);

    // A stopping pod pauses, then drains within shutdown_timeout, before it is killed.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        Duration::from_secs(grace) > config.shutdown_timeout + Duration::from_secs(pause),
        "grace {grace}s, pause {pause}s, drain {:?}",
        config.shutdown_timeout
    );
}

#[test]
fn the_prometheus_files_pass_promtool() {
    if !available(&["promtool"]) {
        return;
    }
    succeeds(
        tool("promtool")
            .args(["check", "config", "--syntax-only"])
            .arg(repo_path("deploy/prometheus/prometheus.yml")),
    );
    succeeds(
        tool("promtool")
            .args(["check", "rules"])
            .arg(repo_path("deploy/prometheus/alerts.yml")),
    );
}

#[test]
fn the_dashboard_is_well_formed_with_a_datasource_variable() {
    let dashboard = dashboard();
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|variable| variable["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["query"], "prometheus");
    let reference = format!("${{{}}}", datasource["name"].as_str().unwrap());

    let mut ids = std::collections::HashSet::new();
    let mut titles = Vec::new();
    for panel in dashboard_panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title").to_owned();
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id reused"
        );
        let grid = &panel["gridPos"];
        for key in ["h", "w", "x", "y"] {
            assert!(grid[key].is_u64(), "{title}: gridPos.{key}");
        }
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], reference.as_str(), "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        let mut ref_ids = std::collections::HashSet::new();
        for target in targets {
            assert!(target["expr"].is_string(), "{title}");
            assert!(ref_ids.insert(target["refId"].as_str().unwrap()), "{title}");
            assert_eq!(target["datasource"]["uid"], reference.as_str(), "{title}");
        }
        titles.push(title);
    }
    let all = deploy_files::dashboard_expressions()
        .into_iter()
        .map(|(_, expr)| expr)
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "analytics_events_stored_total",
        "analytics_http_requests_total",
        "analytics_http_request_duration_seconds_bucket",
        "analytics_queue_depth_events",
        "analytics_kafka_consumer_lag_messages",
        "analytics_batch_flush_duration_seconds_bucket",
        "analytics_project_recent_events",
        "analytics_project_active_users",
        "analytics_project_ingest_freshness_seconds",
    ] {
        assert!(all.contains(needed), "no panel reads {needed}");
    }

    // Grafana's provisioning points at the file the compose file mounts.
    let provider = yaml(&read(
        "deploy/grafana/provisioning/dashboards/analytics.yaml",
    ));
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let compose = read("deploy/docker/docker-compose.yaml");
    assert!(compose.contains(&format!(
        "../grafana/analytics.json:{}/analytics.json",
        Path::new(path).display()
    )));
}
