//! The layers below the TOML file's: `ANALYTICS_*` environment variables and
//! command-line flags, each as a `figment` provider.

use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;

use super::{CONFIG_FILE_ENV, DUCKDB_FILE_NAME, ENV_PREFIX};

/// Values given on the command line; each overrides every other layer.
#[derive(Debug, Default, Clone)]
pub struct CliOverrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--data-dir DIR`: the DuckDB file goes to `DIR/analytics.duckdb`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format text|json`.
    pub log_format: Option<String>,
}

/// The `ANALYTICS_*` variables of `env` as nested settings (`__` nests keys).
pub(super) fn env_provider(env: &[(String, String)]) -> Serialized<figment::value::Dict> {
    // Built from the given pairs rather than `figment::providers::Env`, which reads
    // the real process environment, so that tests stay hermetic.
    let mut root = figment::value::Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == CONFIG_FILE_ENV || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        insert_path(&mut root, &path, parse_env_value(value));
    }
    Serialized::globals(root)
}

fn parse_env_value(raw: &str) -> figment::value::Value {
    // Same rules as figment's `Env`: TOML-like scalars and arrays, else a string.
    raw.parse::<figment::value::Value>()
        .unwrap_or_else(|_| figment::value::Value::from(raw.to_owned()))
}

fn insert_path(dict: &mut figment::value::Dict, path: &[String], value: figment::value::Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = dict
                .entry(head.clone())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Merges the flags over `figment`.
pub(super) fn apply_cli(mut figment: Figment, cli: &CliOverrides) -> Figment {
    if let Some(listen) = &cli.listen {
        figment = figment.merge(Serialized::global("listen", listen));
    }
    if let Some(dir) = &cli.data_dir {
        figment = figment.merge(Serialized::global(
            "storage.path",
            data_file_in(dir).display().to_string(),
        ));
    }
    if let Some(format) = &cli.log_format {
        figment = figment.merge(Serialized::global("log.format", format));
    }
    figment
}

/// Path of the DuckDB file inside a data directory.
pub fn data_file_in(dir: &Path) -> PathBuf {
    dir.join(DUCKDB_FILE_NAME)
}

/// The process's `ANALYTICS_*` variables, for [`super::Config::load`].
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(key, _)| key.starts_with(ENV_PREFIX))
        .collect()
}
