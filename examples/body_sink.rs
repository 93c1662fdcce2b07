//! A server that reads each request's body and answers 200, and does nothing
//! else: the ceiling that HTTP and the load generator leave on this machine,
//! against which the ingest benchmark sets the service's figure.
//!
//! ```text
//! cargo run --release --example body_sink -- --listen 127.0.0.1:18079
//! ```
//!
//! It runs on the same runtime and HTTP stack as the service (tokio, axum),
//! answers every path, and stops on SIGTERM or Ctrl-C.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::Router;

/// Reads the whole body (as the service must before it parses) and answers
/// what the service answers to a stored batch.
async fn accept(body: Bytes) -> (StatusCode, &'static str) {
    std::hint::black_box(body.len());
    (StatusCode::OK, r#"{"success":true}"#)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:18079".to_owned();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => listen = args.next().expect("--listen ADDRESS"),
            other => panic!("unknown flag {other}"),
        }
    }
    let app = Router::new().fallback(accept);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind the listen address");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
        .expect("serve");
}
