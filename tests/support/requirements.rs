//! What a test needs beyond the code: a test server, a tool on `PATH`, a
//! Python module. `scripts/test.sh` installs and starts all of them and sets
//! `ANALYTICS_TEST_REQUIRE_ALL=1`, so that a missing one fails the test; a
//! plain `cargo test` skips the tests whose needs are missing and prints why.

#![allow(dead_code)]

use std::io::Write;
use std::process::Command;

/// Set by `scripts/test.sh`: every requirement must be met.
const REQUIRE_ALL: &str = "ANALYTICS_TEST_REQUIRE_ALL";

/// Reports that `what` is missing: a failure under `scripts/test.sh`, a
/// printed skip otherwise (written to the terminal itself, so that the test
/// harness, which keeps a passing test's output to itself, shows it).
pub fn missing(what: &str) {
    if std::env::var_os(REQUIRE_ALL).is_some() {
        panic!("{what} is missing; scripts/setup-dev.sh installs it and scripts/test.sh starts it");
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped: {test}: {what} is missing (scripts/test.sh provides it)"
    );
}

/// The value of the environment variable that names a test server, if set.
pub fn server(variable: &str, what: &str) -> Option<String> {
    let value = std::env::var(variable).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        missing(&format!("{what} (${variable})"));
    }
    value
}

/// Whether `program` is on `PATH`.
pub fn program(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        missing(&format!("the program {program}"));
    }
    found
}

/// Whether Python imports `module`.
pub fn python_module(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        missing(&format!("the Python module {module}"));
    }
    found
}

/// Whether the file at `path` (relative to the repository) exists.
pub fn file(path: &str, what: &str) -> bool {
    let found = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .exists();
    if !found {
        missing(what);
    }
    found
}
