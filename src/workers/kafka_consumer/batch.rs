//! A batch of consumed records on its way to storage, with the offsets it
//! lets the consumer store once it is written.

use std::collections::BTreeMap;

use crate::domain::Event;
use crate::kafka::dead_letters::DeadLetter;

/// Where a valid event was read, kept so that if storage refuses the event
/// it goes to the dead-letter topic exactly as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The record's key.
    pub key: Option<Vec<u8>>,
    /// The record's value.
    pub payload: Option<Vec<u8>>,
}

impl Origin {
    /// The dead letter of this record, for `reason`.
    pub fn dead_letter(&self, reason: &'static str, message: String) -> DeadLetter {
        DeadLetter {
            key: self.key.clone(),
            payload: self.payload.clone(),
            reason,
            message,
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Records read since the last hand-over, split into events and dead letters.
#[derive(Debug, Default)]
pub struct PendingBatch {
    /// Valid events.
    pub events: Vec<Event>,
    /// Where each event was read, parallel to `events`.
    pub origins: Vec<Origin>,
    /// Records that go to the dead-letter topic.
    pub dead_letters: Vec<DeadLetter>,
    /// Per partition, the offset to resume from once this batch is stored.
    pub next_offsets: BTreeMap<i32, i64>,
    /// Records in the batch.
    pub records: usize,
}

impl PendingBatch {
    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Adds a valid record's event.
    pub fn push_event(&mut self, origin: Origin, event: Event) {
        self.events.push(event);
        self.advance(origin.partition, origin.offset);
        self.origins.push(origin);
    }

    /// Adds a record that goes to the dead-letter topic.
    pub fn push_dead_letter(&mut self, letter: DeadLetter) {
        let (partition, offset) = (letter.partition, letter.offset);
        self.dead_letters.push(letter);
        self.advance(partition, offset);
    }

    /// Adds a record that is consumed without being stored (a bot's event
    /// under `ingest.drop_bots`).
    pub fn push_dropped(&mut self, partition: i32, offset: i64) {
        self.advance(partition, offset);
    }

    fn advance(&mut self, partition: i32, offset: i64) {
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        self.records += 1;
    }
}

/// The origin of a record at `partition`/`offset`, for tests.
#[cfg(test)]
pub(crate) fn origin(partition: i32, offset: i64) -> Origin {
    Origin {
        partition,
        offset,
        key: None,
        payload: Some(format!("{{\"offset\": {offset}}}").into_bytes()),
    }
}

/// A dead letter of a malformed record at `partition`/`offset`, for tests.
#[cfg(test)]
pub(crate) fn malformed_record(partition: i32, offset: i64) -> DeadLetter {
    DeadLetter {
        key: None,
        payload: Some(b"{".to_vec()),
        reason: "malformed_json",
        message: "bad".into(),
        partition,
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::track_event;

    #[test]
    fn offsets_resume_after_the_last_record_of_each_partition() {
        let mut batch = PendingBatch::default();
        assert!(batch.is_empty());
        batch.push_event(origin(0, 10), track_event("p", "a", "u"));
        batch.push_event(origin(1, 3), track_event("p", "b", "u"));
        batch.push_dead_letter(malformed_record(0, 11));
        batch.push_event(origin(1, 4), track_event("p", "c", "u"));
        assert_eq!(batch.records, 4);
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.origins[2].offset, 4);
        assert_eq!(batch.next_offsets, BTreeMap::from([(0, 12), (1, 5)]));
    }
}
