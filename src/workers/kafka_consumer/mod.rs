//! The Kafka consumer worker: reads the events topic, decodes each record as
//! HTTP ingest would, hands batches to the processor, and stores a batch's
//! offsets only once the processor has written it (at-least-once; `messageId`
//! dedup makes redelivery invisible).
//!
//! Batches are written in order but overlap: up to `max_in_flight_batches`
//! are outstanding at once, and offsets are stored strictly in batch order,
//! so a stored offset never passes an unwritten record. When that many are
//! outstanding (storage is slow or down) the consumer pauses its partitions
//! and keeps polling, so it stays in the group while memory stays bounded.
//! A batch whose write fails is retried with backoff until it succeeds or the
//! service stops; an event that storage refuses goes to the dead-letter topic
//! (reason `storage_rejected`) and the partition moves on. Dead letters are
//! produced before the batch's offsets are stored, so no record is ever
//! skipped silently.

pub mod batch;
pub mod decode;
mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::domain::EventSink;
use crate::kafka::consumer::EventConsumer;
use crate::kafka::dead_letters::DeadLetterSink;
use crate::kafka::PROJECT_HEADER;
use crate::telemetry::Metrics;
use batch::{Origin, PendingBatch};
use decode::{Decoded, Record, RecordDecoder};
use pipeline::BatchWriter;

/// Bounds of the consumer's pipeline.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerLimits {
    /// Records per batch handed to the processor.
    pub batch_max_messages: usize,
    /// Longest wait to fill a batch.
    pub batch_max_wait: Duration,
    /// Batches outstanding before fetching pauses.
    pub max_in_flight_batches: usize,
    /// Longest a shutdown waits for outstanding batches to be written.
    pub drain_timeout: Duration,
}

/// The worker; [`KafkaConsumerWorker::run`] drives it.
pub struct KafkaConsumerWorker {
    consumer: EventConsumer,
    topic: String,
    decoder: RecordDecoder,
    writer: Arc<BatchWriter>,
    limits: ConsumerLimits,
    metrics: Metrics,
}

impl KafkaConsumerWorker {
    /// Assembles the worker from its consumer, decoder and sinks.
    pub fn new(
        consumer: EventConsumer,
        decoder: RecordDecoder,
        sink: Arc<dyn EventSink>,
        dead_letters: Arc<dyn DeadLetterSink>,
        limits: ConsumerLimits,
        metrics: Metrics,
    ) -> Self {
        let writer = Arc::new(BatchWriter::new(sink, dead_letters, metrics.kafka.clone()));
        Self {
            consumer,
            topic: decoder.topic.clone(),
            decoder,
            writer,
            limits,
            metrics,
        }
    }

    /// Consumes until `stop` is cancelled; then stops fetching, writes the
    /// batch in hand and those outstanding, stores and commits their
    /// offsets, and leaves the group.
    pub async fn run(self, stop: CancellationToken) {
        let abandon = CancellationToken::new();
        let mut pending = PendingBatch::default();
        let mut in_flight = FuturesOrdered::new();
        let mut paused = false;
        let linger = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(linger);
        loop {
            let full = in_flight.len() >= self.limits.max_in_flight_batches;
            if full != paused {
                if full {
                    self.pause_read_partitions();
                } else {
                    self.resume_all();
                }
                paused = full;
                self.metrics.kafka.consumer_paused.set(i64::from(paused));
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(written) = in_flight.next(), if !in_flight.is_empty() => {
                    self.store_offsets(written);
                }
                () = &mut linger, if !pending.is_empty() => {
                    in_flight.push_back(self.writer.clone().write(std::mem::take(&mut pending), abandon.clone()));
                }
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        if paused {
                            // A partition read for the first time since it was
                            // assigned could not be paused before; now it can.
                            self.pause_partition(message.partition());
                        }
                        if pending.is_empty() {
                            linger.as_mut().reset(tokio::time::Instant::now() + self.limits.batch_max_wait);
                        }
                        self.accept(&message, &mut pending);
                        if pending.records >= self.limits.batch_max_messages {
                            in_flight.push_back(self.writer.clone().write(std::mem::take(&mut pending), abandon.clone()));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "kafka consume error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        if !pending.is_empty() {
            in_flight.push_back(self.writer.clone().write(pending, abandon.clone()));
        }
        self.drain(in_flight, abandon).await;
        self.close().await;
    }

    fn accept(&self, message: &BorrowedMessage<'_>, pending: &mut PendingBatch) {
        self.metrics.kafka.messages_consumed.inc();
        let project_header = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == PROJECT_HEADER)
                .and_then(|header| header.value)
        });
        let record = Record {
            key: message.key(),
            payload: message.payload(),
            project_header,
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message
                .timestamp()
                .to_millis()
                .and_then(chrono::DateTime::from_timestamp_millis),
        };
        match self.decoder.decode(&record) {
            Decoded::Event(event, clamped) => {
                if clamped {
                    self.metrics.events_clamped.inc();
                }
                let origin = Origin {
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key.map(<[u8]>::to_vec),
                    payload: record.payload.map(<[u8]>::to_vec),
                };
                pending.push_event(origin, *event);
            }
            Decoded::Dropped(reason) => {
                self.metrics.count_dropped(reason);
                pending.push_dropped(record.partition, record.offset);
            }
            Decoded::DeadLetter(letter) => {
                tracing::warn!(
                    reason = letter.reason,
                    message = %letter.message,
                    partition = letter.partition,
                    offset = letter.offset,
                    "kafka record goes to the dead-letter topic"
                );
                pending.push_dead_letter(letter);
            }
        }
    }

    /// Stores the offsets a written batch allows; `None` (abandoned at
    /// shutdown) stores nothing, so those records are read again.
    fn store_offsets(&self, written: Option<std::collections::BTreeMap<i32, i64>>) {
        let Some(offsets) = written else { return };
        let mut list = TopicPartitionList::new();
        for (partition, next) in offsets {
            if let Err(error) =
                list.add_partition_offset(&self.topic, partition, Offset::Offset(next))
            {
                tracing::warn!(%error, partition, "cannot record an offset to store");
            }
        }
        if let Err(error) = self.consumer.store_offsets(&list) {
            // Partitions revoked meanwhile: their new owner re-reads the
            // records, which dedup makes harmless.
            tracing::info!(%error, "offsets not stored (partitions revoked?)");
        }
    }

    /// Pauses every assigned partition that a record was read from.
    ///
    /// librdkafka resumes a paused partition from the position after the
    /// last record the application read, and drops what it had prefetched.
    /// A partition nothing was read from since its assignment has no such
    /// position, so pausing it would skip its prefetched records: it is
    /// paused when its first record arrives instead.
    fn pause_read_partitions(&self) {
        let positions = match self.consumer.position() {
            Ok(positions) => positions,
            Err(error) => {
                tracing::warn!(%error, "cannot read the consumer's positions");
                return;
            }
        };
        let mut readable = TopicPartitionList::new();
        for element in positions.elements() {
            if let Offset::Offset(_) = element.offset() {
                readable.add_partition(element.topic(), element.partition());
            }
        }
        if let Err(error) = self.consumer.pause(&readable) {
            tracing::warn!(%error, "cannot pause fetching");
        }
        tracing::debug!(
            partitions = readable.count(),
            "kafka fetching paused: storage is behind"
        );
    }

    fn pause_partition(&self, partition: i32) {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        if let Err(error) = self.consumer.pause(&list) {
            tracing::warn!(%error, partition, "cannot pause fetching");
        }
    }

    fn resume_all(&self) {
        let resumed = self
            .consumer
            .assignment()
            .and_then(|assignment| self.consumer.resume(&assignment));
        if let Err(error) = resumed {
            tracing::warn!(%error, "cannot resume fetching");
        }
    }

    async fn drain(
        &self,
        mut in_flight: FuturesOrdered<pipeline::WriteFuture>,
        abandon: CancellationToken,
    ) {
        let deadline = tokio::time::sleep(self.limits.drain_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                written = in_flight.next() => match written {
                    Some(written) => self.store_offsets(written),
                    None => break,
                },
                () = &mut deadline, if !abandon.is_cancelled() => {
                    tracing::warn!("kafka batches still unwritten at the shutdown timeout; they will be read again");
                    abandon.cancel();
                }
            }
        }
    }

    async fn close(self) {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "final offset commit failed"),
        }
        self.consumer.unsubscribe();
        let consumer = self.consumer;
        // Closing leaves the group; librdkafka blocks while it does.
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        tracing::info!("kafka consumer stopped");
    }
}
