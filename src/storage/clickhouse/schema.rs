//! Versioned, idempotent ClickHouse migrations, recorded in `schema_migrations`.
//!
//! The layout follows Plausible's `events_v2` and PostHog's `sharded_events`:
//! - `ReplacingMergeTree`, partitioned by month, ordered by project, day and
//!   `message_id`, so that one project's time range reads few granules and a
//!   repeated `(project, day, messageId)` collapses in background merges; the
//!   version column keeps the copy received first.
//! - Times as `DateTime` (for partitions and ranges) plus microseconds as
//!   `Int64` columns, since `DateTime64` does not exist on older servers.
//! - Low-cardinality strings as `LowCardinality(String)`; optional fields
//!   `Nullable` so that answers match the other backend's (unset is not "").
//! - Properties (traits for identify and group) and context flattened into
//!   parallel `Array(String)` key/value columns, which every version can filter
//!   and group on; the original JSON texts are kept for export.
//! - `message_ids` remembers every stored `(project, messageId)` under a primary
//!   key, so the writer drops repeats before they reach `events`.

use clickhouse::Client;

use crate::storage::StorageError;

/// One schema change: statements run in order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Position in the history, from 1.
    pub version: u32,
    /// Short description.
    pub name: &'static str,
    /// Statements; `{db}` stands for the database name.
    pub statements: &'static [&'static str],
}

/// The whole schema history, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "events",
    statements: &[
        "CREATE TABLE IF NOT EXISTS {db}.events (
            project_id              LowCardinality(String),
            message_id              String,
            type                    LowCardinality(String),
            event                   Nullable(String),
            name                    Nullable(String),
            user_id                 Nullable(String),
            anonymous_id            Nullable(String),
            group_id                Nullable(String),
            previous_id             Nullable(String),
            timestamp               DateTime('UTC'),
            timestamp_us            Int64,
            original_timestamp_us   Nullable(Int64),
            sent_at_us              Nullable(Int64),
            received_at_us          Int64,
            properties              Nullable(String),
            traits                  Nullable(String),
            context                 Nullable(String),
            integrations            Nullable(String),
            page_path               Nullable(String),
            page_referrer           Nullable(String),
            page_url                Nullable(String),
            utm_campaign            Nullable(String),
            utm_source              Nullable(String),
            utm_medium              Nullable(String),
            utm_term                Nullable(String),
            utm_content             Nullable(String),
            library_name            Nullable(String),
            locale                  Nullable(String),
            prop_keys               Array(String),
            prop_values             Array(String),
            context_keys            Array(String),
            context_values          Array(String),
            version                 UInt64
        )
        ENGINE = ReplacingMergeTree(version)
        PARTITION BY toYYYYMM(timestamp)
        ORDER BY (project_id, toDate(timestamp), message_id)",
        "CREATE TABLE IF NOT EXISTS {db}.message_ids (
            project_id  LowCardinality(String),
            message_id  String
        )
        ENGINE = ReplacingMergeTree
        ORDER BY (project_id, message_id)",
        "CREATE TABLE IF NOT EXISTS {db}.settings (
            name        String,
            value       String,
            version     UInt64
        )
        ENGINE = ReplacingMergeTree(version)
        ORDER BY name",
    ],
}];

/// The latest schema version.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

fn backend(context: &str, error: clickhouse::error::Error) -> StorageError {
    StorageError::Backend(format!("{context}: {error}"))
}

/// Versions applied to `database`, ascending.
pub async fn applied_versions(client: &Client, database: &str) -> Result<Vec<u32>, StorageError> {
    let mut versions: Vec<u32> = client
        .query(&format!("SELECT version FROM {database}.schema_migrations"))
        .fetch_all()
        .await
        .map_err(|e| backend("reading schema_migrations", e))?;
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Creates the database if needed and applies every migration up to `target`
/// that it lacks; returns how many ran.
pub async fn migrate_to(
    client: &Client,
    database: &str,
    target: u32,
) -> Result<usize, StorageError> {
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StorageError::Backend(format!(
            "database name {database:?}: use letters, digits and underscores"
        )));
    }
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .map_err(|e| backend("creating the database", e))?;
    client
        .query(&format!(
            "CREATE TABLE IF NOT EXISTS {database}.schema_migrations (
                version     UInt32,
                name        String,
                applied_at  DateTime DEFAULT now()
            ) ENGINE = MergeTree ORDER BY version"
        ))
        .execute()
        .await
        .map_err(|e| backend("creating schema_migrations", e))?;
    let applied = applied_versions(client, database).await?;
    let mut ran = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version <= target) {
        if applied.contains(&migration.version) {
            continue;
        }
        // ClickHouse has no transactions: each statement is idempotent, so a
        // migration interrupted half way is completed by the next start.
        for statement in migration.statements {
            client
                .query(&statement.replace("{db}", database))
                .execute()
                .await
                .map_err(|e| StorageError::Migration {
                    version: migration.version,
                    name: migration.name,
                    message: e.to_string(),
                })?;
        }
        client
            .query(&format!(
                "INSERT INTO {database}.schema_migrations (version, name) VALUES (?, ?)"
            ))
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await
            .map_err(|e| backend("recording the migration", e))?;
        ran += 1;
    }
    Ok(ran)
}
