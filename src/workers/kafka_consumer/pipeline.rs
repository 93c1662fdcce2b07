//! Writing one consumed batch: dead letters to their topic, events to the
//! processor, each retried with backoff until it succeeds or the worker
//! abandons it at shutdown; events that storage refuses become dead letters
//! of their own (reason `storage_rejected`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::batch::PendingBatch;
use crate::domain::{EventSink, SinkError};
use crate::kafka::dead_letters::{DeadLetter, DeadLetterSink};
use crate::telemetry::kafka_metrics::KafkaMetrics;

/// First pause after a failed attempt; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Dead-letter reason of an event that storage refused.
pub const STORAGE_REJECTED: &str = "storage_rejected";

/// A batch being written: resolves to the offsets to store, or `None` when
/// abandoned (nothing may be stored then).
pub type WriteFuture = Pin<Box<dyn Future<Output = Option<BTreeMap<i32, i64>>> + Send>>;

/// Writes consumed batches.
pub struct BatchWriter {
    sink: Arc<dyn EventSink>,
    dead_letters: Arc<dyn DeadLetterSink>,
    metrics: KafkaMetrics,
}

impl BatchWriter {
    /// A writer handing events to `sink` and dead letters to `dead_letters`.
    pub fn new(
        sink: Arc<dyn EventSink>,
        dead_letters: Arc<dyn DeadLetterSink>,
        metrics: KafkaMetrics,
    ) -> Self {
        Self {
            sink,
            dead_letters,
            metrics,
        }
    }

    /// Writes `batch`; see [`WriteFuture`].
    pub fn write(self: Arc<Self>, batch: PendingBatch, abandon: CancellationToken) -> WriteFuture {
        Box::pin(async move {
            let started = Instant::now();
            for letter in &batch.dead_letters {
                if !self.send_dead_letter(letter, &abandon).await {
                    return None;
                }
            }
            let events = batch.events.len();
            if events > 0 {
                let mut backoff = FIRST_BACKOFF;
                let submitted = loop {
                    match self.sink.submit(batch.events.clone()).await {
                        Ok(submitted) => break submitted,
                        Err(SinkError::ShuttingDown) => return None,
                        Err(error) => {
                            self.metrics.write_retries.inc();
                            if !matches!(error, SinkError::QueueFull) {
                                tracing::warn!(%error, events, "consumed batch not stored; retrying");
                            }
                            if !pause(&mut backoff, &abandon).await {
                                return None;
                            }
                        }
                    }
                };
                for &position in &submitted.refused {
                    let Some(origin) = batch.origins.get(position) else {
                        continue;
                    };
                    let letter = origin.dead_letter(
                        STORAGE_REJECTED,
                        "storage refused the event; it was not stored".to_owned(),
                    );
                    tracing::warn!(
                        partition = letter.partition,
                        offset = letter.offset,
                        "storage refused a kafka record; it goes to the dead-letter topic"
                    );
                    if !self.send_dead_letter(&letter, &abandon).await {
                        return None;
                    }
                }
                let stored = events - submitted.refused.len();
                self.metrics.messages_stored.inc_by(stored as u64);
                self.metrics
                    .batch_write_duration
                    .observe(started.elapsed().as_secs_f64());
            }
            Some(batch.next_offsets)
        })
    }

    /// Sends one dead letter, retrying until it is durable; `false` if
    /// abandoned meanwhile.
    async fn send_dead_letter(&self, letter: &DeadLetter, abandon: &CancellationToken) -> bool {
        let mut backoff = FIRST_BACKOFF;
        while let Err(error) = self.dead_letters.send(letter).await {
            tracing::warn!(%error, partition = letter.partition, offset = letter.offset, "dead letter not delivered; retrying");
            if !pause(&mut backoff, abandon).await {
                return false;
            }
        }
        true
    }
}

/// Sleeps for `backoff` (then doubles it); `false` if abandoned meanwhile.
async fn pause(backoff: &mut Duration, abandon: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
            true
        }
        () = abandon.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::{Event, Submitted};
    use crate::storage::testing::track_event;
    use crate::telemetry::Metrics;
    use crate::workers::kafka_consumer::batch::{malformed_record, origin};

    /// A sink failing its first `failures` submissions, and refusing the
    /// events whose `messageId` is in `refused`.
    #[derive(Default)]
    struct FlakySink {
        failures: AtomicU32,
        refused: Vec<&'static str>,
        stored: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl EventSink for FlakySink {
        async fn submit(&self, events: Vec<Event>) -> Result<Submitted, SinkError> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::StorageUnavailable("connection refused".into()));
            }
            let mut submitted = Submitted::default();
            let mut stored = self.stored.lock().unwrap();
            for (position, event) in events.into_iter().enumerate() {
                if self.refused.contains(&event.message_id.as_str()) {
                    submitted.refused.push(position);
                } else {
                    stored.push(event.message_id);
                }
            }
            Ok(submitted)
        }
    }

    #[derive(Default)]
    struct RecordingLetters {
        failures: AtomicU32,
        sent: Mutex<Vec<(i64, &'static str)>>,
    }

    #[async_trait]
    impl DeadLetterSink for RecordingLetters {
        async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("broker down".into());
            }
            self.sent
                .lock()
                .unwrap()
                .push((letter.offset, letter.reason));
            Ok(())
        }
    }

    fn batch() -> PendingBatch {
        let mut batch = PendingBatch::default();
        batch.push_event(origin(0, 5), track_event("p", "m5", "u"));
        batch.push_dead_letter(malformed_record(0, 6));
        batch.push_event(origin(0, 7), track_event("p", "m7", "u"));
        batch
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_write_is_retried_until_it_lands_then_offsets_are_released() {
        let sink = Arc::new(FlakySink {
            failures: AtomicU32::new(3),
            ..FlakySink::default()
        });
        let letters = Arc::new(RecordingLetters {
            failures: AtomicU32::new(2),
            ..RecordingLetters::default()
        });
        let metrics = Metrics::new();
        let writer = Arc::new(BatchWriter::new(
            sink.clone(),
            letters.clone(),
            metrics.kafka.clone(),
        ));
        let offsets = writer.write(batch(), CancellationToken::new()).await;
        assert_eq!(offsets, Some(BTreeMap::from([(0, 8)])));
        assert_eq!(*sink.stored.lock().unwrap(), ["m5", "m7"]);
        assert_eq!(*letters.sent.lock().unwrap(), [(6, "malformed_json")]);
        assert_eq!(metrics.kafka.write_retries.get(), 3);
        assert_eq!(metrics.kafka.messages_stored.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_write_releases_no_offset() {
        let sink = Arc::new(FlakySink {
            failures: AtomicU32::new(u32::MAX),
            ..FlakySink::default()
        });
        let metrics = Metrics::new();
        let writer = Arc::new(BatchWriter::new(
            sink.clone(),
            Arc::new(RecordingLetters::default()),
            metrics.kafka.clone(),
        ));
        let abandon = CancellationToken::new();
        let write = tokio::spawn(writer.write(batch(), abandon.clone()));
        tokio::time::sleep(Duration::from_secs(30)).await;
        abandon.cancel();
        assert_eq!(write.await.unwrap(), None);
        assert!(sink.stored.lock().unwrap().is_empty());
        assert!(metrics.kafka.write_retries.get() >= 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_event_goes_to_the_dead_letter_topic_and_the_batch_moves_on() {
        let sink = Arc::new(FlakySink {
            refused: vec!["m7"],
            ..FlakySink::default()
        });
        let letters = Arc::new(RecordingLetters::default());
        let metrics = Metrics::new();
        let writer = Arc::new(BatchWriter::new(
            sink.clone(),
            letters.clone(),
            metrics.kafka.clone(),
        ));
        let offsets = writer.write(batch(), CancellationToken::new()).await;
        assert_eq!(offsets, Some(BTreeMap::from([(0, 8)])));
        assert_eq!(*sink.stored.lock().unwrap(), ["m5"]);
        assert_eq!(
            *letters.sent.lock().unwrap(),
            [(6, "malformed_json"), (7, STORAGE_REJECTED)]
        );
        assert_eq!(metrics.kafka.messages_stored.get(), 1);
        assert_eq!(metrics.kafka.write_retries.get(), 0);
    }
}
