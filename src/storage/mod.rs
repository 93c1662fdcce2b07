//! Event storage: the [`Repository`] trait every backend implements, and its errors.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::domain::analysis::sessions::StoredSessions;
use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{EventQuery, QueryRows, SessionQuery, TimeRange};
use crate::domain::visit::VisitFields;
use crate::domain::Event;

pub mod clickhouse;
pub mod duckdb;
mod sql;
#[cfg(test)]
pub mod testing;

/// A storage operation that failed, by what a caller can do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The backend cannot be reached, is overloaded or is closed: a retry
    /// later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the data or the statement, and would refuse it
    /// again: retrying is pointless.
    #[error("storage refused the operation: {0}")]
    Rejected(String),
    /// A read ran longer than its budget.
    #[error("the read ran longer than {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// A read went through more rows than its budget.
    #[error("the read went through more than {0} rows")]
    TooManyRows(u64),
    /// A defect here rather than in storage: a storage task that panicked, a
    /// result of an unexpected shape.
    #[error("storage failed internally: {0}")]
    Internal(String),
    /// The schema could not be brought up to date.
    #[error("schema migration {version} ({name}) failed: {message}")]
    Migration {
        /// Version of the failing migration.
        version: u32,
        /// Its name.
        name: &'static str,
        /// The backend's message.
        message: String,
    },
}

impl StorageError {
    /// Whether the same operation may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// The error of a storage task that did not finish: a panic is a
    /// defect; a task cancelled at shutdown means storage is going away.
    pub fn from_join(error: tokio::task::JoinError) -> Self {
        if error.is_panic() {
            StorageError::Internal(format!("a storage task panicked: {error}"))
        } else {
            StorageError::Unavailable(format!("a storage task was cancelled: {error}"))
        }
    }
}

/// What one read of storage may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    /// Longest the read may run.
    pub timeout: Duration,
    /// Most rows it may go through (scanned where the backend counts them,
    /// else returned).
    pub max_rows: u64,
}

impl ReadBudget {
    /// A generous budget, for maintenance reads and tests.
    pub const UNLIMITED: ReadBudget = ReadBudget {
        timeout: Duration::from_secs(3_600),
        max_rows: u64::MAX,
    };
}

/// What a batch insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Events newly stored.
    pub inserted: usize,
    /// Events skipped because their `(project, messageId)` was already stored.
    pub duplicates: usize,
}

/// Which events to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// The project whose events are read.
    pub project_id: String,
    /// Earliest event time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Latest event time, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Only events stored without any visit attribute (what enrichment
    /// added later may fill in).
    pub without_visit: bool,
}

/// ` AND` the visit columns are all unset, in SQL both backends read.
pub(crate) fn without_visit_sql() -> String {
    crate::domain::visit::COLUMNS
        .iter()
        .map(|column| format!(" AND {column} IS NULL"))
        .collect()
}

/// Events in timestamp order, a chunk at a time, so that exports never load all in memory.
pub type EventChunks = BoxStream<'static, Result<Vec<Event>, StorageError>>;

/// A timeline in person and time order, a chunk at a time; dropping it stops
/// the read.
pub type TimelineChunks = BoxStream<'static, Result<Vec<TimelineEvent>, StorageError>>;

/// The storage interface of the service. Backends: [`duckdb::DuckDbRepository`],
/// [`clickhouse::ClickHouseRepository`].
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// Stores a batch in one transaction. An event whose `(project, messageId)` is
    /// already stored, or appears earlier in the batch, is skipped.
    async fn insert_batch(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError>;

    /// Streams a project's events ordered by timestamp (then `messageId`).
    fn export(&self, request: ExportRequest) -> EventChunks;

    /// Answers when storage can serve reads and writes.
    async fn ping(&self) -> Result<(), StorageError>;

    /// Returns the stored value of a setting, storing `value` first if it has none.
    async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StorageError>;

    /// Deletes a setting (nothing when there is none).
    async fn delete_setting(&self, name: &str) -> Result<(), StorageError>;

    /// Sets the visit columns of stored events of a project, by `messageId`
    /// (events stored before enrichment derived them). Where a backend
    /// applies such changes in the background (ClickHouse), reads see them
    /// once applied.
    async fn update_visits(
        &self,
        project_id: &str,
        visits: Vec<(String, VisitFields)>,
    ) -> Result<(), StorageError>;

    /// Runs an event query over its project only.
    async fn query(
        &self,
        query: &EventQuery,
        budget: ReadBudget,
    ) -> Result<QueryRows, StorageError>;

    /// A project's events that a timeline request selects, with their person
    /// and the matchers they satisfy, ordered by person and time (and
    /// `messageId` when the request orders ties), streamed.
    fn timelines(&self, request: TimelineRequest, budget: ReadBudget) -> TimelineChunks;

    /// A session query from the sessions the backend keeps cut at write
    /// time, with the events of those it cannot use (see [`StoredSessions`]);
    /// `None` when it keeps none that answer the query, for the caller to
    /// fold its timeline.
    async fn stored_sessions(
        &self,
        _query: &SessionQuery,
        _budget: ReadBudget,
    ) -> Result<Option<StoredSessions>, StorageError> {
        Ok(None)
    }

    /// Takes the sessions a backend keeps for a project one step towards
    /// being cut with `timeout`; `true` once they are (at once for backends
    /// that keep none).
    async fn keep_sessions(
        &self,
        _project_id: &str,
        _timeout: chrono::Duration,
    ) -> Result<bool, StorageError> {
        Ok(true)
    }

    /// Recuts the kept sessions that writes touched since the last refresh.
    async fn refresh_sessions(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Takes the rollups a backend keeps for a project one step towards
    /// being built; `true` once they are (at once for backends that keep
    /// none).
    async fn keep_rollups(&self, _project_id: &str) -> Result<bool, StorageError> {
        Ok(true)
    }

    /// Folds what writes added to the rollups since the last refresh into them.
    async fn refresh_rollups(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Time of the first and the last stored event of a project, if it has any.
    async fn time_bounds(
        &self,
        project_id: &str,
        budget: ReadBudget,
    ) -> Result<Option<TimeRange>, StorageError>;

    /// The newest `receivedAt` among a project's events timestamped at or
    /// after `since`, if there is one. Bounding the event time keeps the read
    /// to recent data on every backend.
    async fn newest_received_at(
        &self,
        project_id: &str,
        since: DateTime<Utc>,
        budget: ReadBudget,
    ) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Property and trait keys of a project's events in a range (of one event name
    /// when given), with how many events carry each, most used first.
    async fn property_keys(
        &self,
        project_id: &str,
        range: TimeRange,
        event: Option<&str>,
        limit: usize,
        budget: ReadBudget,
    ) -> Result<Vec<(String, u64)>, StorageError>;

    /// Flushes and releases the storage; later calls fail.
    async fn close(&self) -> Result<(), StorageError>;
}

/// Positions of the first event of each `(project, messageId)` in the batch, in order.
pub(crate) fn first_occurrence_indices(events: &[Event]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(events.len());
    (0..events.len())
        .filter(|&i| seen.insert((&events[i].project_id, &events[i].message_id)))
        .collect()
}

/// Keeps the first event of each `(project, messageId)` in the batch; `None`
/// when the batch repeats none.
pub(crate) fn first_occurrences(events: &[Event]) -> Option<Vec<Event>> {
    let unique = first_occurrence_indices(events);
    (unique.len() < events.len()).then(|| unique.into_iter().map(|i| events[i].clone()).collect())
}
