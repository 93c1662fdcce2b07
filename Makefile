# Common tasks. Build output lives outside the checkout so that clones share it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/analytics/target

.PHONY: build run test lint fmt openapi bench bench-query bench-clickhouse bench-query-clickhouse bench-kafka bench-kafka-clickhouse clean

build: ## Release build of the service
	cargo build --release

run: ## Run the service on its embedded default (127.0.0.1:8080, ./data)
	cargo run --release

test: ## The whole test suite, as CI runs it
	scripts/test.sh

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all --check
	cargo clippy --release --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

openapi: ## Regenerate api/openapi.yaml from the code
	scripts/generate.sh

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

clean:
	cargo clean
