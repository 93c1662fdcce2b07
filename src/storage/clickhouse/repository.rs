//! [`ClickHouseRepository`]: the [`Repository`] on a ClickHouse server or cluster.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clickhouse::query::Query;
use clickhouse::{Client, Row};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::schema::{applied_versions, latest_version, migrate_to, Layout, PERSON_LINKS_VERSION};
use super::writer::EventTables;
use super::{query, server_client, server_version, storage_error, ClickHouseOptions};
use crate::domain::analysis::TimelineRequest;
use crate::domain::query::{EventQuery, QueryRows, TimeRange};
use crate::domain::visit::VisitFields;
use crate::domain::Event;
use crate::storage::{
    EventChunks, ExportRequest, InsertOutcome, ReadBudget, Repository, StorageError, TimelineChunks,
};

/// `messageId`s per visit-column mutation: the statement stays well under
/// the server's query size limit.
const UPDATE_IDS_PER_STATEMENT: usize = 1_000;

/// Events stored in ClickHouse.
pub struct ClickHouseRepository {
    /// Client with the database selected.
    client: Client,
    /// Where the tables are (for statements on the tables that hold rows).
    layout: Layout,
    tables: EventTables,
    closed: AtomicBool,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct SettingRow {
    name: String,
    value: String,
    version: u64,
}

/// The stored value of a setting: the highest version, which is the value
/// stored first (see `setting_or_init`).
pub(super) fn setting_query(client: &Client, name: &str) -> Query {
    client
        .query("SELECT value FROM settings WHERE name = ? ORDER BY version DESC LIMIT 1")
        .bind(name)
}

fn closed() -> StorageError {
    StorageError::Unavailable("the ClickHouse repository is closed".into())
}

impl ClickHouseRepository {
    /// Connects, reads the server's version, and creates or migrates the schema.
    pub async fn open(options: &ClickHouseOptions) -> Result<Self, StorageError> {
        let version = server_version(options).await?;
        let mut client = server_client(options, version);
        if options.cluster.is_some() {
            // Inserts into a `Distributed` table answer once every shard has
            // the rows, so that an acknowledged event is stored.
            client = client.with_setting("insert_distributed_sync", "1");
        }
        let layout = Layout {
            database: options.database.clone(),
            cluster: options.cluster.clone(),
        };
        let had_person_links = applied_versions(&client, &options.database)
            .await
            .is_ok_and(|versions| versions.contains(&PERSON_LINKS_VERSION));
        let ran = migrate_to(&client, &layout, latest_version()).await?;
        tracing::info!(
            server = %format!("{}.{}", version.major, version.minor),
            database = %options.database,
            migrations = ran,
            "ClickHouse storage ready"
        );
        let tables = EventTables::new(client.clone(), &options.database);
        if !had_person_links {
            tables.link_stored_events().await?;
        }
        Ok(ClickHouseRepository {
            client: client.with_database(&options.database),
            layout,
            tables,
            closed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            Err(closed())
        } else {
            Ok(())
        }
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        setting_query(&self.client, name)
            .fetch_optional::<String>()
            .await
            .map_err(|e| storage_error("reading a setting", e))
    }
}

#[async_trait]
impl Repository for ClickHouseRepository {
    async fn insert_batch(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        self.check_open()?;
        self.tables.insert(events).await
    }

    fn export(&self, request: ExportRequest) -> EventChunks {
        if let Err(error) = self.check_open() {
            return stream::once(async move { Err(error) }).boxed();
        }
        self.tables.export(&request)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.check_open()?;
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(drop)
            .map_err(|e| storage_error("ping", e))
    }

    async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StorageError> {
        self.check_open()?;
        if let Some(stored) = self.setting(name).await? {
            return Ok(stored);
        }
        // Earlier writes get higher versions, so that when two instances
        // initialise at once both end up reading the first value.
        let now = chrono::Utc::now().timestamp_micros();
        let row = SettingRow {
            name: name.to_owned(),
            value: value.to_owned(),
            version: u64::MAX - u64::try_from(now).unwrap_or(0),
        };
        let failed = |e| storage_error("storing a setting", e);
        let mut insert = self
            .client
            .insert::<SettingRow>("settings")
            .await
            .map_err(failed)?;
        insert.write(&row).await.map_err(failed)?;
        insert.end().await.map_err(failed)?;
        Ok(self.setting(name).await?.unwrap_or(row.value))
    }

    async fn delete_setting(&self, name: &str) -> Result<(), StorageError> {
        self.check_open()?;
        // A mutation: rare (a visitor salt a day), applied in the background.
        self.client
            .query(&self.layout.delete_statement("settings", "name = ?"))
            .bind(name)
            .execute()
            .await
            .map_err(|e| storage_error("deleting a setting", e))
    }

    async fn update_visits(
        &self,
        project_id: &str,
        visits: Vec<(String, VisitFields)>,
    ) -> Result<(), StorageError> {
        self.check_open()?;
        // Mutations, applied in the background: one per distinct set of
        // values (events of one browser and referrer share theirs).
        let mut groups: HashMap<VisitFields, Vec<String>> = HashMap::new();
        for (message_id, visit) in visits {
            groups.entry(visit).or_default().push(message_id);
        }
        for (visit, message_ids) in groups {
            let assignments = visit
                .columns()
                .map(|(name, value)| match value {
                    Some(_) => format!("{name} = ?"),
                    None => format!("{name} = NULL"),
                })
                .join(", ");
            for ids in message_ids.chunks(UPDATE_IDS_PER_STATEMENT) {
                let statement = self.layout.update_statement(
                    "events",
                    &assignments,
                    "project_id = ? AND has(?, message_id)",
                );
                let mut query = self.client.query(&statement);
                for value in visit.columns().into_iter().filter_map(|(_, value)| value) {
                    query = query.bind(value);
                }
                query
                    .bind(project_id)
                    .bind(ids)
                    .execute()
                    .await
                    .map_err(|e| storage_error("updating visit columns", e))?;
            }
        }
        Ok(())
    }

    async fn query(
        &self,
        query: &EventQuery,
        budget: ReadBudget,
    ) -> Result<QueryRows, StorageError> {
        self.check_open()?;
        query::run(&self.client, query, budget).await
    }

    fn timelines(&self, request: TimelineRequest, budget: ReadBudget) -> TimelineChunks {
        if let Err(error) = self.check_open() {
            return stream::once(async move { Err(error) }).boxed();
        }
        query::timelines(&self.client, &request, budget)
    }

    async fn time_bounds(
        &self,
        project_id: &str,
        budget: ReadBudget,
    ) -> Result<Option<TimeRange>, StorageError> {
        self.check_open()?;
        query::time_bounds(&self.client, project_id, budget).await
    }

    async fn newest_received_at(
        &self,
        project_id: &str,
        since: DateTime<Utc>,
        budget: ReadBudget,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.check_open()?;
        query::newest_received_at(&self.client, project_id, since, budget).await
    }

    async fn property_keys(
        &self,
        project_id: &str,
        range: TimeRange,
        event: Option<&str>,
        limit: usize,
        budget: ReadBudget,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        self.check_open()?;
        query::property_keys(&self.client, project_id, range, event, limit, budget).await
    }

    async fn close(&self) -> Result<(), StorageError> {
        // Every acknowledged write has already reached the server.
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
