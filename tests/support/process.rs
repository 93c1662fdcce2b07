//! The `analytics` binary as a child process, with its JSON log lines.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Path of the binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_analytics");

/// The binary, with no `ANALYTICS_*` or `RUST_LOG` of the test's environment.
pub fn analytics() -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("ANALYTICS_")) {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    command
}

/// A running service and its log lines.
pub struct Running {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// JSON log lines read so far and later.
    pub lines: mpsc::Receiver<String>,
    /// The lines read while waiting for the address.
    pub startup_logs: Vec<Value>,
}

/// Starts `command` (which must log JSON to stdout) and waits for the log
/// line that gives its listening address.
pub fn start(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut startup_logs = Vec::new();
    loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service did not log its address");
        };
        let log: Value = serde_json::from_str(&line).expect("JSON log line");
        let address = log["address"].as_str().map(|a| format!("http://{a}"));
        startup_logs.push(log);
        if let Some(address) = address {
            return Running {
                child,
                address,
                lines,
                startup_logs,
            };
        }
    }
}
