//! Versioned, idempotent ClickHouse migrations, recorded in `schema_migrations`.
//!
//! The layout follows Plausible's `events_v2` and PostHog's `sharded_events`:
//! - `ReplacingMergeTree`, partitioned by month, ordered by project, day, event
//!   name and `message_id`: one project's time range reads few granules, a
//!   filter on event names (the most common filter) reads only that name's
//!   granules of each day, and a repeated `(project, day, messageId)` collapses
//!   in background merges; the version column keeps the copy received first.
//! - Two columns the server computes at insert: `event_name` (the event, or
//!   the call type for page, identify, ... calls) and `user_hash`, a 64-bit
//!   hash of the user (`userId`, else `anonymousId`) that distinct users are
//!   counted over, which is several times faster than hashing the strings at
//!   query time (two users collide with odds of about n²/2⁶⁵).
//! - Times as `DateTime` (for partitions and ranges) plus microseconds as
//!   `Int64` columns, since `DateTime64` does not exist on older servers.
//! - Low-cardinality strings as `LowCardinality(String)`; optional fields
//!   `Nullable` so that answers match the other backend's (unset is not "").
//! - Properties (traits for identify and group) and context flattened into
//!   parallel `Array(String)` key/value columns, which every version can filter
//!   and group on; the original JSON texts are kept for export.
//! - `message_ids` remembers every stored `(project, messageId)` under a primary
//!   key, so the writer drops repeats before they reach `events`. A
//!   materialized view fills it from the same `INSERT` that writes the events.
//!
//! In cluster mode every statement runs `ON CLUSTER`; each table is a
//! replicated local table (`events_local`, ...) on every shard behind a
//! `Distributed` table with the plain name, sharded by `(project, messageId)`
//! so that a message and its copies always meet on one shard.

use clickhouse::Client;

use super::storage_error;
use crate::storage::StorageError;

/// Whether a database or cluster name can be written into DDL as it is
/// (names cannot be bound as parameters).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where the schema lives: a database on one server, or on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Database name (letters, digits, underscores).
    pub database: String,
    /// Cluster name from the servers' `remote_servers`, for the cluster form.
    pub cluster: Option<String>,
}

impl Layout {
    /// The single-server layout of `database`.
    pub fn single(database: &str) -> Self {
        Layout {
            database: database.to_owned(),
            cluster: None,
        }
    }

    fn check(&self) -> Result<(), StorageError> {
        if !is_identifier(&self.database) {
            return Err(StorageError::Rejected(format!(
                "database name {:?}: use letters, digits and underscores",
                self.database
            )));
        }
        if let Some(cluster) = &self.cluster {
            if !is_identifier(cluster) {
                return Err(StorageError::Rejected(format!(
                    "cluster name {cluster:?}: use letters, digits and underscores"
                )));
            }
        }
        Ok(())
    }

    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map_or_else(String::new, |cluster| format!(" ON CLUSTER {cluster}"))
    }

    /// `ALTER TABLE ... DELETE WHERE condition` on the rows of table `name`
    /// (the local tables of every shard in cluster mode).
    pub fn delete_statement(&self, name: &str, condition: &str) -> String {
        format!(
            "ALTER TABLE {}{} DELETE WHERE {condition}",
            self.storage_table(name),
            self.on_cluster()
        )
    }

    /// `ALTER TABLE ... UPDATE assignments WHERE condition` on the rows of
    /// `name`: a mutation, applied in the background.
    pub fn update_statement(&self, name: &str, assignments: &str, condition: &str) -> String {
        format!(
            "ALTER TABLE {}{} UPDATE {assignments} WHERE {condition}",
            self.storage_table(name),
            self.on_cluster()
        )
    }

    /// The table that holds the rows of `name`: `name` itself, or `name_local`.
    fn storage_table(&self, name: &str) -> String {
        match self.cluster {
            Some(_) => format!("{}.{name}_local", self.database),
            None => format!("{}.{name}", self.database),
        }
    }

    /// `CREATE TABLE` for a table of the schema: one table, or local tables
    /// plus a `Distributed` one in cluster mode.
    fn table(&self, table: &Table) -> Vec<String> {
        let engine = match &self.cluster {
            None => format!("{}({})", table.engine, table.engine_arguments),
            Some(_) => {
                let path = format!(
                    "'/clickhouse/tables/{{shard}}/{}/{}_local', '{{replica}}'",
                    self.database, table.name
                );
                let arguments = if table.engine_arguments.is_empty() {
                    path
                } else {
                    format!("{path}, {}", table.engine_arguments)
                };
                format!("Replicated{}({arguments})", table.engine)
            }
        };
        let mut statements = vec![format!(
            "CREATE TABLE IF NOT EXISTS {}{} ({}) ENGINE = {engine} {}",
            self.storage_table(table.name),
            self.on_cluster(),
            table.columns,
            table.layout
        )];
        if let Some(cluster) = &self.cluster {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name}{on} AS {local} ENGINE = Distributed({cluster}, {db}, {name}_local, {key})",
                db = self.database,
                name = table.name,
                on = self.on_cluster(),
                local = self.storage_table(table.name),
                key = table.shard_key,
            ));
        }
        statements
    }
}

/// One table of the schema.
struct Table {
    name: &'static str,
    columns: &'static str,
    /// `MergeTree` family engine, without the `Replicated` prefix.
    engine: &'static str,
    engine_arguments: &'static str,
    /// `PARTITION BY` / `ORDER BY` clauses.
    layout: &'static str,
    /// Sharding expression of the `Distributed` table (cluster mode).
    shard_key: &'static str,
}

const EVENTS: Table = Table {
    name: "events",
    columns: "
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
        version                 UInt64,
        event_name              LowCardinality(String) MATERIALIZED coalesce(event, type),
        user_hash               UInt64 MATERIALIZED cityHash64(coalesce(user_id, anonymous_id, ''))",
    engine: "ReplacingMergeTree",
    engine_arguments: "version",
    layout: "PARTITION BY toYYYYMM(timestamp) ORDER BY (project_id, toDate(timestamp), event_name, message_id)",
    shard_key: "cityHash64(project_id, message_id)",
};

const MESSAGE_IDS: Table = Table {
    name: "message_ids",
    columns: "project_id LowCardinality(String), message_id String",
    engine: "ReplacingMergeTree",
    engine_arguments: "",
    layout: "ORDER BY (project_id, message_id)",
    shard_key: "cityHash64(project_id, message_id)",
};

const SETTINGS: Table = Table {
    name: "settings",
    columns: "name String, value String, version UInt64",
    engine: "ReplacingMergeTree",
    engine_arguments: "version",
    layout: "ORDER BY name",
    shard_key: "cityHash64(name)",
};

const PERSON_LINKS: Table = Table {
    name: "person_links",
    columns:
        "project_id LowCardinality(String), user_hash UInt64, person_hash UInt64, version UInt64",
    engine: "ReplacingMergeTree",
    engine_arguments: "version",
    layout: "ORDER BY (project_id, user_hash)",
    shard_key: "user_hash",
};

fn person_links_table(layout: &Layout) -> Vec<String> {
    layout.table(&PERSON_LINKS)
}

fn events_tables(layout: &Layout) -> Vec<String> {
    [EVENTS, MESSAGE_IDS, SETTINGS]
        .iter()
        .flat_map(|table| layout.table(table))
        .collect()
}

/// Ids are recorded by the same `INSERT` that stores the events: a write that
/// reached the server is recognised when it is retried.
fn message_ids_view(layout: &Layout) -> Vec<String> {
    vec![format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_ids_from_events{on} TO {ids}
         AS SELECT project_id, message_id FROM {events}",
        db = layout.database,
        on = layout.on_cluster(),
        ids = layout.storage_table("message_ids"),
        events = layout.storage_table("events"),
    )]
}

/// Device, location and source as real columns, on the table that holds
/// the rows and (in cluster mode) the `Distributed` one in front of it: one
/// statement per column (older servers have no `ADD COLUMN IF NOT
/// EXISTS`), a column that exists already counting as added.
fn visit_columns(layout: &Layout) -> Vec<String> {
    let mut tables = vec![layout.storage_table("events")];
    if layout.cluster.is_some() {
        tables.push(format!("{}.events", layout.database));
    }
    tables
        .iter()
        .flat_map(|table| {
            crate::domain::visit::COLUMNS.iter().map(move |column| {
                format!(
                    "ALTER TABLE {table}{} ADD COLUMN {column} Nullable(String)",
                    layout.on_cluster()
                )
            })
        })
        .collect()
}

/// Whether a failed `ADD COLUMN` failed because the column is there (a
/// migration interrupted after it): code 44 with the server's wording.
fn column_exists_already(error: &clickhouse::error::Error) -> bool {
    let text = error.to_string();
    super::errors::server_code(&text) == Some(44) && text.contains("already exists")
}

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Position in the history, from 1.
    pub version: u32,
    /// Short description.
    pub name: &'static str,
    /// The statements, in order, for a layout.
    pub statements: fn(&Layout) -> Vec<String>,
}

/// The whole schema history, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        statements: events_tables,
    },
    Migration {
        version: 2,
        name: "message ids recorded by a materialized view",
        statements: message_ids_view,
    },
    Migration {
        version: 3,
        name: "person links",
        statements: person_links_table,
    },
    Migration {
        version: 4,
        name: "visit attributes",
        statements: visit_columns,
    },
];

/// The version that created `person_links`; the links of events stored
/// before it are applied by the repository when it runs.
pub const PERSON_LINKS_VERSION: u32 = 3;

/// The latest schema version.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Versions applied to `database`, ascending.
pub async fn applied_versions(client: &Client, database: &str) -> Result<Vec<u32>, StorageError> {
    let mut versions: Vec<u32> = client
        .query(&format!("SELECT version FROM {database}.schema_migrations"))
        .fetch_all()
        .await
        .map_err(|e| storage_error("reading schema_migrations", e))?;
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Every statement of the schema up to `target`, for a layout (what
/// [`migrate_to`] would run on an empty server, after creating the database).
pub fn statements_up_to(layout: &Layout, target: u32) -> Vec<String> {
    MIGRATIONS
        .iter()
        .filter(|m| m.version <= target)
        .flat_map(|m| (m.statements)(layout))
        .collect()
}

/// The database and the migration history table, created before any migration.
pub fn bootstrap_statements(layout: &Layout) -> Vec<String> {
    let database = &layout.database;
    let on_cluster = layout.on_cluster();
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"),
        // Recorded per server: in cluster mode each node keeps its own history,
        // and every statement is idempotent, so a node that missed one catches up.
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.schema_migrations{on_cluster} (
                version     UInt32,
                name        String,
                applied_at  DateTime DEFAULT now()
            ) ENGINE = MergeTree ORDER BY version"
        ),
    ]
}

/// Creates the database if needed and applies every migration up to `target`
/// that it lacks; returns how many ran.
pub async fn migrate_to(
    client: &Client,
    layout: &Layout,
    target: u32,
) -> Result<usize, StorageError> {
    layout.check()?;
    let database = &layout.database;
    for statement in bootstrap_statements(layout) {
        client
            .query(&statement)
            .execute()
            .await
            .map_err(|e| storage_error("creating the database", e))?;
    }
    let applied = applied_versions(client, database).await?;
    let mut ran = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version <= target) {
        if applied.contains(&migration.version) {
            continue;
        }
        // ClickHouse has no transactions: each statement is idempotent, so a
        // migration interrupted half way is completed by the next start.
        for statement in (migration.statements)(layout) {
            match client.query(&statement).execute().await {
                Ok(()) => {}
                Err(error)
                    if statement.contains(" ADD COLUMN ") && column_exists_already(&error) => {}
                Err(error) => {
                    return Err(StorageError::Migration {
                        version: migration.version,
                        name: migration.name,
                        message: error.to_string(),
                    })
                }
            }
        }
        client
            .query(&format!(
                "INSERT INTO {database}.schema_migrations (version, name) VALUES (?, ?)"
            ))
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await
            .map_err(|e| storage_error("recording the migration", e))?;
        ran += 1;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_server_gets_plain_tables() {
        let statements = statements_up_to(&Layout::single("analytics"), latest_version());
        assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS analytics.events ("));
        assert!(statements[0].contains("ENGINE = ReplacingMergeTree(version) PARTITION BY"));
        assert!(statements.iter().all(|s| !s.contains("ON CLUSTER")));
        assert!(statements.iter().all(|s| !s.contains("Distributed")));
        assert!(statements
            .iter()
            .any(|s| s.contains("MATERIALIZED VIEW") && s.contains("TO analytics.message_ids")));
        assert!(statements
            .iter()
            .any(|s| s.starts_with("CREATE TABLE IF NOT EXISTS analytics.person_links (")));
        assert_eq!(
            statements.last().unwrap(),
            "ALTER TABLE analytics.events ADD COLUMN channel Nullable(String)"
        );
    }

    #[test]
    fn a_cluster_gets_replicated_local_tables_behind_distributed_ones() {
        let layout = Layout {
            database: "analytics".into(),
            cluster: Some("main".into()),
        };
        let statements = statements_up_to(&layout, latest_version());
        assert!(statements.iter().all(|s| s.contains(" ON CLUSTER main")));
        assert!(statements[0]
            .starts_with("CREATE TABLE IF NOT EXISTS analytics.events_local ON CLUSTER main ("));
        assert!(statements[0].contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}', version)"
        ));
        assert_eq!(
            statements[1],
            "CREATE TABLE IF NOT EXISTS analytics.events ON CLUSTER main AS analytics.events_local \
             ENGINE = Distributed(main, analytics, events_local, cityHash64(project_id, message_id))"
        );
        let view = statements
            .iter()
            .find(|s| s.contains("MATERIALIZED VIEW"))
            .unwrap();
        assert!(view.contains("TO analytics.message_ids_local"), "{view}");
        assert!(view.contains("FROM analytics.events_local"), "{view}");
        // New columns reach the local tables and the distributed one.
        for table in ["analytics.events_local", "analytics.events"] {
            let added =
                format!("ALTER TABLE {table} ON CLUSTER main ADD COLUMN city Nullable(String)");
            assert!(statements.contains(&added), "{added}");
        }
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        assert!(Layout::single("a; DROP TABLE b").check().is_err());
        let layout = Layout {
            database: "ok".into(),
            cluster: Some("x y".into()),
        };
        assert!(layout.check().is_err());
        assert!(Layout::single("ok_1").check().is_ok());
    }
}
