//! An in-memory [`Repository`] for unit tests: records batches, fails on demand.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{QueryPlan, QueryRows, TimeRange};
use crate::domain::{ContextFields, Event, EventType};
use crate::storage::{EventChunks, ExportRequest, InsertOutcome, Repository, StorageError};

/// Records the size of each written batch; fails the first `failures` writes.
#[derive(Default)]
pub struct FakeRepository {
    /// Sizes of the batches written, in order.
    pub batches: Mutex<Vec<usize>>,
    /// Writes still to fail.
    pub failures: AtomicU32,
    /// Pause before each write.
    pub delay: Duration,
    /// Whether `ping` fails.
    pub unreachable: AtomicBool,
}

impl FakeRepository {
    fn reachable(&self) -> Result<(), StorageError> {
        if self.unreachable.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Repository for FakeRepository {
    async fn insert_batch(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        tokio::time::sleep(self.delay).await;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StorageError::Unavailable("disk on fire".into()));
        }
        self.batches.lock().unwrap().push(events.len());
        Ok(InsertOutcome {
            inserted: events.len(),
            duplicates: 0,
        })
    }

    fn export(&self, _: ExportRequest) -> EventChunks {
        Box::pin(futures::stream::empty())
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.reachable()
    }

    async fn setting_or_init(&self, _: &str, value: &str) -> Result<String, StorageError> {
        Ok(value.to_owned())
    }

    async fn query(&self, _: &QueryPlan) -> Result<QueryRows, StorageError> {
        self.reachable()?;
        Ok(QueryRows::default())
    }

    async fn timelines(&self, _: &TimelineRequest) -> Result<Vec<TimelineEvent>, StorageError> {
        Ok(Vec::new())
    }

    async fn time_bounds(&self, _: &str) -> Result<Option<TimeRange>, StorageError> {
        Ok(None)
    }

    async fn newest_received_at(
        &self,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.reachable()?;
        Ok(None)
    }

    async fn property_keys(
        &self,
        _: &str,
        _: TimeRange,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        Ok(Vec::new())
    }

    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A minimal valid track event of `user` in `project`, timestamped now.
pub fn track_event(project: &str, message_id: &str, user: &str) -> Event {
    let now = chrono::Utc::now();
    Event {
        project_id: project.into(),
        message_id: message_id.into(),
        event_type: EventType::Track,
        event: Some("e".into()),
        name: None,
        user_id: Some(user.into()),
        anonymous_id: None,
        group_id: None,
        previous_id: None,
        timestamp: now,
        original_timestamp: None,
        sent_at: None,
        received_at: now,
        properties: None,
        traits: None,
        context: None,
        integrations: None,
        context_fields: ContextFields::default(),
    }
}
