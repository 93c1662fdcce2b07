# Common tasks. They build where `cargo build --release` does (./target, or
# CARGO_TARGET_DIR when set), so that every task shares one build.

.PHONY: help setup build run test lint fmt generate openapi check-deploy docker-build compose-up k8s-render bench bench-query bench-clickhouse bench-query-clickhouse bench-kafka bench-kafka-clickhouse clean
.DEFAULT_GOAL := help

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-24s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install everything the tests need on Debian (ClickHouse, Tansu, kcat, Prometheus, checkers); idempotent
	scripts/setup-dev.sh

build: ## Release build of the service
	cargo build --release

run: ## Run the service on its embedded default (127.0.0.1:8080, ./data)
	cargo run --release

test: ## The whole test suite, as CI runs it
	scripts/test.sh

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

generate: ## Regenerate api/openapi.yaml from the code
	scripts/generate.sh

openapi: generate ## Same as generate

check-deploy: ## Static checks of the Dockerfile, compose file, Kubernetes manifests, dashboard and alerts
	cargo nextest run --release --test deploy

docker-build: ## Build the container image (needs a Docker engine)
	docker build -f deploy/docker/Dockerfile -t analytics:local .

compose-up: ## The service with ClickHouse, Kafka, Prometheus and Grafana (needs Docker)
	docker compose -f deploy/docker/docker-compose.yaml up --build

k8s-render: ## Print the Kubernetes manifests as kustomize renders them
	kubectl kustomize deploy/kubernetes

bench: ## Ingest benchmark (events/s, latency, peak memory)
	scripts/bench-ingest.sh

bench-query: ## Query benchmark (10 million events, answer times)
	scripts/bench-query.sh

bench-clickhouse: ## Ingest benchmark on a local ClickHouse, with ClickHouse's own insert rate
	scripts/bench-ingest.sh --backend clickhouse --connections 32 --batch 500

bench-query-clickhouse: ## Query benchmark on a local ClickHouse (10 million events)
	scripts/bench-query.sh --backend clickhouse

bench-kafka: ## Kafka to DuckDB throughput, beside a bare librdkafka consumer
	scripts/bench-kafka.sh --backend duckdb

bench-kafka-clickhouse: ## Kafka to ClickHouse throughput, beside a bare librdkafka consumer
	scripts/bench-kafka.sh --backend clickhouse

clean: ## Remove build output
	cargo clean
