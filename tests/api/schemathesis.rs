//! The live service against its contract, fuzzed by schemathesis (PyPI)
//! from `api/openapi.yaml`: every operation, with a write key for ingest and
//! a read key for the rest. No answer may be a server error, and every
//! answer must match the schema the contract gives its status.

use std::process::Stdio;

use crate::helpers::*;

/// Test cases per operation: enough to reach every member's shapes, few
/// enough for a few minutes of CI.
const EXAMPLES: &str = "25";

/// Runs schemathesis on the operations `filter` selects, authorised by `key`.
async fn fuzz(key: &str, filter: &[&str]) {
    if !requirements::program("schemathesis") {
        return;
    }
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let contract = concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.yaml");
    let output = tokio::process::Command::new("schemathesis")
        .current_dir(work.path())
        .args(["run", contract, "--url", &app.address])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", EXAMPLES, "--seed", "20261201"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--no-color",
        ])
        .args(["--request-timeout", "30"])
        .args(filter)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    app.stop().await;
}

#[tokio::test]
async fn ingest_answers_every_generated_request_within_its_contract() {
    fuzz(WRITE_KEY, &["--include-tag", "ingest"]).await;
}

#[tokio::test]
async fn reads_answer_every_generated_request_within_their_contract() {
    fuzz(READ_KEY, &["--exclude-tag", "ingest"]).await;
}
