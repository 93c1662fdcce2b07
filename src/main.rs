//! The `analytics` binary: parse flags, load configuration, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use analytics::config::{process_env, CliOverrides, Config};
use analytics::startup::{probe, Application};
use analytics::telemetry::logging;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "analytics",
    version,
    about = "Self-hosted, high-throughput event analytics"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the OpenAPI document (YAML).
    Openapi,
    /// Exit 0 when the instance configured here answers `/healthz` with 200
    /// (for container health checks).
    Healthcheck,
}

#[derive(Debug, Clone, Default, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (also ANALYTICS_CONFIG).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", global = true)]
    listen: Option<String>,
    /// Directory for the DuckDB file (DIR/analytics.duckdb).
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT", global = true)]
    log_format: Option<String>,
}

/// Ingest allocates many small strings per event; mimalloc handles that far
/// better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for invalid configuration.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            print!("{}", analytics::api::openapi::openapi_yaml());
            ExitCode::SUCCESS
        }
        Some(Command::Healthcheck) => healthcheck(cli.serve),
        Some(Command::Serve) | None => serve(cli.serve),
    }
}

/// Longest the health check waits for the connection and for the answer.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

fn healthcheck(args: ServeArgs) -> ExitCode {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let address = probe::probe_address(config.listen);
    match probe::probe(address, "/healthz", HEALTHCHECK_TIMEOUT) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("analytics: unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: ServeArgs) -> Result<Config, ExitCode> {
    let overrides = CliOverrides {
        config_file: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        log_format: args.log_format,
    };
    Config::load(&overrides, process_env()).map_err(|error| {
        eprintln!("analytics: invalid configuration: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    logging::init(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("analytics: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("analytics: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let storage = config.storage.path.display().to_string();
    let app = Application::build(config).await?;
    if let Some(keys) = app.development_keys() {
        tracing::warn!(
            project = "default",
            write_key = keys.write_key.expose(),
            read_key = keys.read_key.expose(),
            "NO PROJECT IS CONFIGURED: serving a `default` project with DEVELOPMENT KEYS. \
             Anyone who can reach this port can use them. Configure [[projects]] before exposing the service."
        );
    }
    tracing::info!(address = %app.local_addr(), storage = %storage, "listening");
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
