//! Writing events to ClickHouse and reading them back.
//!
//! Dedup guarantee: a batch first drops repeats within itself, then every
//! `(project, messageId)` that `message_ids` already holds (a primary-key
//! lookup); the rest goes to `events` in one `INSERT`, one block, which the
//! `message_ids_from_events` view also records in `message_ids`. An insert
//! that reached the server before its answer was lost is therefore recognised
//! when the processor retries it. As long as one writer at a time handles a
//! given message (the service writes its batches one after another), each
//! message is stored once and queries never see a copy.
//!
//! The backstop, for a message that two service instances receive at the same
//! moment: copies share `(project, day, messageId)`, so `events`'
//! `ReplacingMergeTree` collapses them in a background merge.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clickhouse::query::Query;
use clickhouse::{Client, Row};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::persons;
use super::rows::EventRow;
use super::storage_error;
use crate::domain::identity::{declared_link, identity_link};
use crate::domain::{Event, EventType};
use crate::storage::{
    first_occurrence_indices, without_visit_sql, EventChunks, ExportRequest, InsertOutcome,
    StorageError,
};

/// The identity fields of a stored identify or alias call.
#[derive(Debug, Row, serde::Deserialize)]
struct IdentityCall {
    project_id: String,
    #[serde(rename = "type")]
    event_type: String,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    previous_id: Option<String>,
}

/// `events` and `message_ids` of one database.
#[derive(Clone)]
pub struct EventTables {
    client: Client,
    database: String,
}

/// `messageId`s looked up per query; a batch's lookups run concurrently.
const LOOKUP_CHUNK: usize = 1_000;

/// Longest wait for the server to take a chunk of an insert.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for the server's answer to a whole insert; a write that times
/// out is retried, and the retry recognises it if it landed after all.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Lookups of one batch in flight at once.
const LOOKUP_CONCURRENCY: usize = 4;

/// Events per chunk of an export.
const EXPORT_CHUNK: usize = 1_000;

impl EventTables {
    /// The tables of `database` (migrated), through `client`.
    pub fn new(client: Client, database: &str) -> Self {
        EventTables {
            // Inserts name their table alone; the client selects the database.
            client: client.with_database(database),
            database: database.to_owned(),
        }
    }

    /// The `message_ids` of `project_id` among `message_ids`.
    fn lookup_query(&self, project_id: &str, message_ids: &[&str]) -> Query {
        // A tuple (not an array: older servers refuse one after IN); callers
        // send chunks that keep the text far below `max_query_size`.
        let placeholders = persons::placeholders(message_ids.len());
        let query = self
            .client
            .query(&format!(
                "SELECT message_id FROM {}.message_ids WHERE project_id = ? AND message_id IN ({placeholders})",
                self.database
            ))
            .bind(project_id);
        message_ids.iter().fold(query, |query, id| query.bind(*id))
    }

    fn export_query(&self, request: &ExportRequest) -> Query {
        let from = request.from.map_or(i64::MIN, |t| t.timestamp_micros());
        let to = request.to.map_or(i64::MAX, |t| t.timestamp_micros());
        self.client
            .query(&format!(
                "SELECT {} FROM {}.events
                 WHERE project_id = ? AND timestamp_us >= ? AND timestamp_us < ?{}
                 ORDER BY timestamp_us, message_id",
                EventRow::COLUMN_NAMES.join(", "),
                self.database,
                if request.without_visit {
                    without_visit_sql()
                } else {
                    String::new()
                },
            ))
            .bind(&request.project_id)
            .bind(from)
            .bind(to)
    }

    /// The final text of the writer's reads: a dedup lookup and an export.
    pub(super) fn read_texts(&self, project_id: &str) -> Vec<String> {
        let export = ExportRequest {
            project_id: project_id.to_owned(),
            from: None,
            to: None,
            without_visit: true,
        };
        vec![
            self.lookup_query(project_id, &["m1", "m2", "missing"])
                .sql_display()
                .to_string(),
            self.export_query(&export).sql_display().to_string(),
        ]
    }

    /// The ids among `message_ids` that `project_id` has stored.
    async fn stored_among(
        &self,
        project_id: &str,
        message_ids: &[&str],
    ) -> Result<Vec<String>, StorageError> {
        self.lookup_query(project_id, message_ids)
            .fetch_all()
            .await
            .map_err(|e| storage_error("reading message_ids", e))
    }

    /// Stores the events not stored before; see the module's dedup guarantee.
    pub async fn insert(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        let started = std::time::Instant::now();
        // Rows are built (properties flattened) on a blocking thread while the
        // lookups wait for the server.
        let all = events.clone();
        let rows = tokio::task::spawn_blocking(move || {
            all.iter().map(EventRow::from).collect::<Vec<EventRow>>()
        });
        let unique = first_occurrence_indices(&events);
        let mut by_project: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for event in unique.iter().map(|&i| &events[i]) {
            by_project
                .entry(event.project_id.as_str())
                .or_default()
                .push(event.message_id.as_str());
        }
        let mut chunks: Vec<(&str, &[&str])> = Vec::new();
        for (project, ids) in &by_project {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                chunks.push((project, chunk));
            }
        }
        let mut lookups = Vec::with_capacity(chunks.len());
        for &(project, chunk) in &chunks {
            lookups.push(self.stored_among(project, chunk));
        }
        let found: Vec<Vec<String>> = stream::iter(lookups)
            .buffered(LOOKUP_CONCURRENCY)
            .try_collect()
            .await?;
        let mut stored: HashMap<&str, HashSet<String>> = HashMap::new();
        for (&(project, _), ids) in chunks.iter().zip(found) {
            stored.entry(project).or_default().extend(ids);
        }
        let looked_up = started.elapsed();
        let rows = rows.await.map_err(StorageError::from_join)?;
        // The first copy of each message that is not stored yet.
        let fresh: Vec<usize> = unique
            .iter()
            .copied()
            .filter(|&i| {
                let event = &events[i];
                !stored
                    .get(event.project_id.as_str())
                    .is_some_and(|ids| ids.contains(&event.message_id))
            })
            .collect();
        // Links first: when the events' insert fails, the retry applies them
        // again, which changes nothing.
        let mut links: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for event in fresh.iter().map(|&i| &events[i]) {
            if let Some(link) = identity_link(event) {
                links
                    .entry(event.project_id.as_str())
                    .or_default()
                    .push(link);
            }
        }
        persons::apply_by_project(&self.client, &links).await?;
        if !fresh.is_empty() {
            let failed = |e| storage_error("inserting events", e);
            let mut insert = self
                .client
                .insert::<EventRow>("events")
                .await
                .map_err(failed)?
                .with_timeouts(Some(SEND_TIMEOUT), Some(ANSWER_TIMEOUT));
            for &i in &fresh {
                insert.write(&rows[i]).await.map_err(failed)?;
            }
            insert.end().await.map_err(failed)?;
        }
        tracing::debug!(
            events = events.len(),
            lookup_ms = looked_up.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "ClickHouse batch written"
        );
        Ok(InsertOutcome {
            inserted: fresh.len(),
            duplicates: events.len() - fresh.len(),
        })
    }

    /// Applies the links of every stored identify and alias call, oldest
    /// first (for databases written before links were kept).
    pub async fn link_stored_events(&self) -> Result<(), StorageError> {
        let rows: Vec<IdentityCall> = self
            .client
            .query(&format!(
                "SELECT project_id, type, user_id, anonymous_id, previous_id FROM {}.events
                 WHERE type IN ('identify', 'alias') AND user_id IS NOT NULL
                 ORDER BY timestamp_us, message_id",
                self.database
            ))
            .fetch_all()
            .await
            .map_err(|e| storage_error("reading identify and alias calls", e))?;
        let mut links: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for call in &rows {
            let Ok(event_type) = call.event_type.parse::<EventType>() else {
                continue;
            };
            if let Some(link) = declared_link(
                event_type,
                call.user_id.as_deref(),
                call.anonymous_id.as_deref(),
                call.previous_id.as_deref(),
            ) {
                links
                    .entry(call.project_id.as_str())
                    .or_default()
                    .push(link);
            }
        }
        persons::apply_by_project(&self.client, &links).await
    }

    /// Streams a project's events in timestamp order, a chunk at a time.
    pub fn export(&self, request: &ExportRequest) -> EventChunks {
        let cursor = self.export_query(request).fetch::<EventRow>();
        let cursor = match cursor {
            Ok(cursor) => cursor,
            Err(error) => {
                return stream::once(async move { Err(storage_error("exporting", error)) }).boxed()
            }
        };
        stream::try_unfold(Some(cursor), |state| async move {
            let Some(mut cursor) = state else {
                return Ok(None);
            };
            let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
            while chunk.len() < EXPORT_CHUNK {
                match cursor
                    .next()
                    .await
                    .map_err(|e| storage_error("exporting", e))?
                {
                    Some(row) => chunk.push(Event::try_from(row).map_err(StorageError::Internal)?),
                    None if chunk.is_empty() => return Ok(None),
                    None => return Ok(Some((chunk, None))),
                }
            }
            Ok(Some((chunk, Some(cursor))))
        })
        .boxed()
    }
}
