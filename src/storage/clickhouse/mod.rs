//! The ClickHouse backend, for deployments beyond one machine: the client,
//! server-version detection, the schema, the writer, the query executor and
//! the [`ClickHouseRepository`] built on them.

mod errors;
mod flatten;
mod persons;
mod query;
mod repository;
pub mod rows;
pub mod schema;
mod tsv;
pub mod writer;

use crate::domain::query::{EventQuery, TimeRange};
pub use repository::ClickHouseRepository;

use clickhouse::Client;

use crate::storage::StorageError;

/// Where and how to reach ClickHouse.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding the tables; created when missing.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Cluster name for the cluster form of the schema (`ON CLUSTER`,
    /// `Distributed` tables); `None` on a single server.
    pub cluster: Option<String>,
}

impl ClickHouseOptions {
    /// A single server's `database`, as user `default` without a password.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ClickHouseOptions {
            url: url.into(),
            database: database.into(),
            user: "default".into(),
            password: String::new(),
            cluster: None,
        }
    }
}

/// A server's version, read at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Major version, e.g. 18 or 25.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `version()` output such as `18.16.1` or `25.3.2.39`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        Some(ServerVersion {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }

    /// Old servers (before 19.x) need `allow_experimental_low_cardinality_type`;
    /// current ones reject the setting as unknown.
    pub fn needs_low_cardinality_setting(self) -> bool {
        self.major < 19
    }
}

/// Maps a client error by its kind (see [`errors`]), for an operation
/// without read limits.
pub(crate) fn storage_error(context: &str, error: clickhouse::error::Error) -> StorageError {
    errors::classify(context, error, errors::Limits::default())
}

fn base_client(options: &ClickHouseOptions) -> Client {
    Client::default()
        .with_url(&options.url)
        .with_user(&options.user)
        .with_password(&options.password)
        // The crate's schema check sends a setting that 18.x does not know.
        .with_validation(false)
}

/// Reads the server's version.
pub async fn server_version(options: &ClickHouseOptions) -> Result<ServerVersion, StorageError> {
    let text: String = base_client(options)
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(|e| storage_error("reading the version", e))?;
    ServerVersion::parse(&text).ok_or_else(|| {
        StorageError::Unavailable(format!("unrecognised ClickHouse version {text:?}"))
    })
}

/// A client for the server (no database selected), with the settings its version needs.
pub fn server_client(options: &ClickHouseOptions, version: ServerVersion) -> Client {
    let client = base_client(options);
    if version.needs_low_cardinality_setting() {
        client.with_setting("allow_experimental_low_cardinality_type", "1")
    } else {
        client
    }
}

/// The final SQL text of every read this backend sends (each query's page and
/// row count, discovery, timelines, the dedup lookup, export, settings), values filled in, for
/// running the same statements on other server versions.
pub fn read_statement_texts(
    options: &ClickHouseOptions,
    project_id: &str,
    range: TimeRange,
    queries: &[EventQuery],
) -> Vec<String> {
    let client = base_client(options).with_database(&options.database);
    let mut texts: Vec<String> = queries
        .iter()
        .flat_map(|query| query::compiled_query(&client, query))
        .collect();
    texts.extend(query::discovery_texts(&client, project_id, range));
    texts.extend(query::timeline_texts(&client, project_id, range));
    texts.push(
        repository::setting_query(&client, "development.write_key")
            .sql_display()
            .to_string(),
    );
    texts.extend(writer::EventTables::new(client, &options.database).read_texts(project_id));
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_old_servers_get_the_setting() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        assert!(old.needs_low_cardinality_setting());
        let current = ServerVersion::parse("25.3.2.39").unwrap();
        assert!(!current.needs_low_cardinality_setting());
        assert!(ServerVersion::parse("dev").is_none());
    }
}
