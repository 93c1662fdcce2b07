//! Writing events to ClickHouse and reading them back.
//!
//! Dedup guarantee: a batch first drops repeats within itself, then every
//! `(project, messageId)` that `message_ids` already holds (a primary-key
//! lookup); the rest goes to `events` and then to `message_ids`. With one
//! writer per database this stores each message once. If the second insert
//! fails after the first succeeded, the retried batch writes those events
//! again; such copies share `(project, day, messageId)`, so `events`'
//! `ReplacingMergeTree` collapses them, and queries count each once until it has.

use std::collections::{BTreeMap, HashSet};

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::rows::EventRow;
use crate::domain::Event;
use crate::storage::{first_occurrences, ExportRequest, InsertOutcome, StorageError};

/// `events` and `message_ids` of one database.
#[derive(Clone)]
pub struct EventTables {
    client: Client,
    database: String,
}

/// `messageId`s looked up per query.
const LOOKUP_CHUNK: usize = 1_000;

#[derive(Debug, Row, Serialize, Deserialize)]
struct MessageIdRow {
    project_id: String,
    message_id: String,
}

fn failed(context: &str, error: clickhouse::error::Error) -> StorageError {
    match error {
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
            StorageError::Unavailable(format!("ClickHouse {context}: {error}"))
        }
        other => StorageError::Backend(format!("ClickHouse {context}: {other}")),
    }
}

impl EventTables {
    /// The tables of `database` (migrated), through `client`.
    pub fn new(client: Client, database: &str) -> Self {
        EventTables {
            // Inserts name their table alone; the client selects the database.
            client: client.with_database(database),
            database: database.to_owned(),
        }
    }

    async fn stored_ids(
        &self,
        project_id: &str,
        message_ids: &[&str],
    ) -> Result<HashSet<String>, StorageError> {
        let mut found = HashSet::new();
        // A tuple (not an array: older servers refuse one after IN), in chunks
        // that keep the query text far below `max_query_size`.
        for chunk in message_ids.chunks(LOOKUP_CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let mut query = self
                .client
                .query(&format!(
                    "SELECT message_id FROM {}.message_ids WHERE project_id = ? AND message_id IN ({placeholders})",
                    self.database
                ))
                .bind(project_id);
            for id in chunk {
                query = query.bind(*id);
            }
            let rows: Vec<String> = query
                .fetch_all()
                .await
                .map_err(|e| failed("reading message_ids", e))?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Stores the events not stored before; see the module's dedup guarantee.
    pub async fn insert(&self, events: &[Event]) -> Result<InsertOutcome, StorageError> {
        let deduplicated = first_occurrences(events);
        let unique = deduplicated.as_deref().unwrap_or(events);
        let mut by_project: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for event in unique {
            by_project
                .entry(event.project_id.as_str())
                .or_default()
                .push(event.message_id.as_str());
        }
        let mut stored = HashSet::new();
        for (project, ids) in by_project {
            for id in self.stored_ids(project, &ids).await? {
                stored.insert((project.to_owned(), id));
            }
        }
        let fresh: Vec<&Event> = unique
            .iter()
            .filter(|e| !stored.contains(&(e.project_id.clone(), e.message_id.clone())))
            .collect();
        if !fresh.is_empty() {
            let mut insert = self
                .client
                .insert::<EventRow>("events")
                .await
                .map_err(|e| failed("inserting events", e))?;
            for event in &fresh {
                insert
                    .write(&EventRow::from(*event))
                    .await
                    .map_err(|e| failed("inserting events", e))?;
            }
            insert
                .end()
                .await
                .map_err(|e| failed("inserting events", e))?;

            let mut ids = self
                .client
                .insert::<MessageIdRow>("message_ids")
                .await
                .map_err(|e| failed("inserting message_ids", e))?;
            for event in &fresh {
                ids.write(&MessageIdRow {
                    project_id: event.project_id.clone(),
                    message_id: event.message_id.clone(),
                })
                .await
                .map_err(|e| failed("inserting message_ids", e))?;
            }
            ids.end()
                .await
                .map_err(|e| failed("inserting message_ids", e))?;
        }
        Ok(InsertOutcome {
            inserted: fresh.len(),
            duplicates: events.len() - fresh.len(),
        })
    }

    /// A project's events in timestamp order (one copy of each message).
    pub async fn export(&self, request: &ExportRequest) -> Result<Vec<Event>, StorageError> {
        let from = request.from.map_or(i64::MIN, |t| t.timestamp_micros());
        let to = request.to.map_or(i64::MAX, |t| t.timestamp_micros());
        let rows: Vec<EventRow> = self
            .client
            .query(&format!(
                "SELECT ?fields FROM {}.events
                 WHERE project_id = ? AND timestamp_us >= ? AND timestamp_us < ?
                 ORDER BY timestamp_us, message_id, version DESC
                 LIMIT 1 BY message_id",
                self.database
            ))
            .bind(&request.project_id)
            .bind(from)
            .bind(to)
            .fetch_all()
            .await
            .map_err(|e| failed("exporting", e))?;
        rows.into_iter()
            .map(|row| Event::try_from(row).map_err(StorageError::Backend))
            .collect()
    }
}
