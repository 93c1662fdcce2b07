//! An in-memory [`Repository`] for unit tests: records batches, fails on demand.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{EventQuery, QueryRows, TimeRange};
use crate::domain::{ContextFields, Event, EventType};
use crate::storage::{
    EventChunks, ExportRequest, InsertOutcome, ReadBudget, Repository, StorageError, TimelineChunks,
};

/// Records the size of each written batch; fails the first `failures` writes.
#[derive(Default)]
pub struct FakeRepository {
    /// Sizes of the batches written, in order.
    pub batches: Mutex<Vec<usize>>,
    /// `messageId`s of the events written, in order.
    pub stored: Mutex<Vec<String>>,
    /// Writes still to fail as unavailable.
    pub failures: AtomicU32,
    /// `messageId`s that storage refuses: a batch holding one fails as rejected.
    pub refused: Mutex<HashSet<String>>,
    /// Pause before each write.
    pub delay: Duration,
    /// Whether `ping` and reads fail.
    pub unreachable: AtomicBool,
    /// Whether a query panics (in the caller's task), as a defect would.
    pub panics: AtomicBool,
    /// The events every timeline read returns, in chunks of `timeline_chunk`.
    pub timeline: Vec<TimelineEvent>,
    /// Events per timeline chunk (all in one when 0).
    pub timeline_chunk: usize,
    /// Pause before each timeline chunk.
    pub timeline_delay: Duration,
}

impl FakeRepository {
    fn reachable(&self) -> Result<(), StorageError> {
        if self.unreachable.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }

    /// Makes storage refuse the events with these `messageId`s.
    pub fn refuse(&self, message_ids: &[&str]) {
        let mut refused = self.refused.lock().unwrap();
        refused.extend(message_ids.iter().map(|id| (*id).to_owned()));
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
        {
            let refused = self.refused.lock().unwrap();
            if let Some(event) = events.iter().find(|e| refused.contains(&e.message_id)) {
                return Err(StorageError::Rejected(format!(
                    "cannot store {}",
                    event.message_id
                )));
            }
        }
        self.batches.lock().unwrap().push(events.len());
        let mut stored = self.stored.lock().unwrap();
        stored.extend(events.iter().map(|e| e.message_id.clone()));
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

    async fn delete_setting(&self, _: &str) -> Result<(), StorageError> {
        self.reachable()
    }

    async fn update_visits(
        &self,
        _: &str,
        _: Vec<(String, crate::domain::visit::VisitFields)>,
    ) -> Result<(), StorageError> {
        self.reachable()
    }

    async fn query(&self, _: &EventQuery, _: ReadBudget) -> Result<QueryRows, StorageError> {
        self.reachable()?;
        assert!(!self.panics.load(Ordering::SeqCst), "a defect in storage");
        Ok(QueryRows::default())
    }

    fn timelines(&self, _: TimelineRequest, _: ReadBudget) -> TimelineChunks {
        if let Err(error) = self.reachable() {
            return stream::once(async move { Err(error) }).boxed();
        }
        let size = if self.timeline_chunk == 0 {
            self.timeline.len().max(1)
        } else {
            self.timeline_chunk
        };
        let chunks: Vec<Result<Vec<TimelineEvent>, StorageError>> = self
            .timeline
            .chunks(size)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        let delay = self.timeline_delay;
        stream::iter(chunks)
            .then(move |chunk| async move {
                tokio::time::sleep(delay).await;
                chunk
            })
            .boxed()
    }

    async fn time_bounds(&self, _: &str, _: ReadBudget) -> Result<Option<TimeRange>, StorageError> {
        self.reachable()?;
        Ok(None)
    }

    async fn newest_received_at(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: ReadBudget,
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
        _: ReadBudget,
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
        visit: Default::default(),
    }
}
