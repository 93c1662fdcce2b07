//! The processor: drains the in-process ingest queue and writes events in batches.
//!
//! Requests wait for their events to be written (group commit): the worker takes
//! every request waiting in the queue, up to `max_events`, lingering at most
//! `max_wait` for more while it holds fewer than `min_events` (see
//! [`Batching`]), writes them in one storage transaction, and
//! only then answers each request. Throughput therefore grows with load instead
//! of being bounded by one write per request. The queue is bounded in events;
//! when it is full, [`QueueSink::submit`] fails at once with
//! [`SinkError::QueueFull`] so that the API can answer 503.
//!
//! A write that storage cannot do now is retried (`write_attempts`), then
//! reported to its senders. A write that storage refuses (it would refuse
//! it again) is split in halves, and each half written, until the events at
//! fault stand alone: those are refused, every other event is stored, and
//! each sender learns which of its events were refused (see [`isolate`]).
//!
//! Events that the ingest journal acknowledged already (see
//! [`super::journal`]) come with their journal record instead of a sender
//! waiting: nobody is answered, a write that fails is tried again until
//! storage takes it, and once a batch is stored its records are released.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use crate::config::Batching;
use crate::domain::{Event, EventSink, SinkError, Submitted};
use crate::storage::{InsertOutcome, Repository, StorageError};
use crate::telemetry::Metrics;

/// First pause after a failed write; doubled on each further attempt.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Longest pause between writes of journaled events that storage does not take.
const MAX_JOURNALED_BACKOFF: Duration = Duration::from_secs(5);

/// Most events one flush may refuse. Past it, storage refusing that much is
/// taken for a fault of its own: the rest of the flush is reported as not
/// written (senders may retry) rather than refused.
const MAX_REFUSED_PER_FLUSH: usize = 64;

struct WriteRequest {
    events: Vec<Event>,
    reply: Reply,
    permit: OwnedSemaphorePermit,
}

impl WriteRequest {
    /// The journal record of a journaled request.
    fn record(&self) -> Option<u64> {
        match self.reply {
            Reply::Journaled(record) => Some(record),
            Reply::Waiting(_) => None,
        }
    }
}

/// Who learns that a request's events are stored.
enum Reply {
    /// A sender waiting for the outcome.
    Waiting(oneshot::Sender<Result<Submitted, SinkError>>),
    /// Nobody: the journal acknowledged the events, as its record number `.0`.
    Journaled(u64),
}

/// Told the journal records that are stored, so that the journal lets them go.
pub trait StoredRecords: Send + Sync {
    /// Every record up to `through` is stored.
    fn stored(&self, through: u64);
}

/// The ingest side of the queue: an [`EventSink`] that answers once events are stored.
pub struct QueueSink {
    sender: mpsc::UnboundedSender<WriteRequest>,
    capacity: Arc<Semaphore>,
    /// Events the queue holds at most.
    limit: u32,
    metrics: Metrics,
}

#[async_trait]
impl EventSink for QueueSink {
    async fn submit(&self, events: Vec<Event>) -> Result<Submitted, SinkError> {
        if events.is_empty() {
            return Ok(Submitted::default());
        }
        let place = self.reserve(events.len())?;
        let (reply, answer) = oneshot::channel();
        self.send(place, events, Reply::Waiting(reply))?;
        answer.await.unwrap_or(Err(SinkError::ShuttingDown))
    }
}

/// Room in the queue for one request's events.
pub struct Place {
    permit: OwnedSemaphorePermit,
}

impl QueueSink {
    /// Takes room for `count` events, or says why there is none.
    pub fn reserve(&self, count: usize) -> Result<Place, SinkError> {
        let count = u32::try_from(count).map_err(|_| SinkError::QueueFull)?;
        match self.capacity.clone().try_acquire_many_owned(count) {
            Ok(permit) => Ok(Place { permit }),
            Err(TryAcquireError::NoPermits) => {
                self.metrics.queue_rejections.inc();
                Err(SinkError::QueueFull)
            }
            Err(TryAcquireError::Closed) => Err(SinkError::ShuttingDown),
        }
    }

    /// Waits for room for `count` events (all the queue has, should it hold
    /// fewer): for events that must be queued, such as a journal's replay.
    pub async fn reserve_waiting(&self, count: usize) -> Result<Place, SinkError> {
        let count = u32::try_from(count).unwrap_or(u32::MAX).min(self.limit);
        match self.capacity.clone().acquire_many_owned(count).await {
            Ok(permit) => Ok(Place { permit }),
            Err(_) => Err(SinkError::ShuttingDown),
        }
    }

    /// Queues events the journal acknowledged as record `record`, in the room taken for them.
    pub fn forward_journaled(
        &self,
        place: Place,
        events: Vec<Event>,
        record: u64,
    ) -> Result<(), SinkError> {
        self.send(place, events, Reply::Journaled(record))
    }

    fn send(&self, place: Place, events: Vec<Event>, reply: Reply) -> Result<(), SinkError> {
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        self.metrics.queue_depth.add(count);
        let request = WriteRequest {
            events,
            reply,
            permit: place.permit,
        };
        if self.sender.send(request).is_err() {
            self.metrics.queue_depth.sub(count);
            return Err(SinkError::ShuttingDown);
        }
        Ok(())
    }

    /// Refuses further events; those already queued are still written.
    pub fn close(&self) {
        self.capacity.close();
    }
}

/// The worker that owns the receiving end of the queue.
pub struct Processor {
    receiver: mpsc::UnboundedReceiver<WriteRequest>,
    repository: Arc<dyn Repository>,
    batching: Batching,
    metrics: Metrics,
    journal: Option<Arc<dyn StoredRecords>>,
    /// The first journal record given up at a stop: none from it on is released.
    given_up: AtomicU64,
}

/// Creates a queue holding at most `capacity` events, with its sink and worker.
pub fn queue(
    capacity: usize,
    batching: Batching,
    repository: Arc<dyn Repository>,
    metrics: Metrics,
) -> (Arc<QueueSink>, Processor) {
    let (sender, receiver) = mpsc::unbounded_channel();
    metrics
        .queue_capacity
        .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    let limit = u32::try_from(capacity.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let sink = Arc::new(QueueSink {
        sender,
        capacity: Arc::new(Semaphore::new(limit as usize)),
        limit,
        metrics: metrics.clone(),
    });
    let processor = Processor {
        receiver,
        repository,
        batching,
        metrics,
        journal: None,
        given_up: AtomicU64::new(u64::MAX),
    };
    (sink, processor)
}

impl Processor {
    /// Tells `journal` which of its records are stored.
    pub fn releasing_to(mut self, journal: Arc<dyn StoredRecords>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Runs until `stop` is cancelled, then writes whatever is still queued and returns.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                request = self.receiver.recv() => match request {
                    Some(request) => request,
                    None => return,
                },
                () = stop.cancelled() => break,
            };
            let batch = self.collect_batch(first, &stop).await;
            self.flush(batch, &stop).await;
        }
        self.drain(&stop).await;
    }

    /// Writes every request still in the queue, in batches.
    async fn drain(&mut self, stop: &CancellationToken) {
        loop {
            let mut batch = Vec::new();
            let mut events = 0;
            while events < self.batching.max_events {
                match self.receiver.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            self.flush(batch, stop).await;
        }
    }

    async fn collect_batch(
        &mut self,
        first: WriteRequest,
        stop: &CancellationToken,
    ) -> Vec<WriteRequest> {
        let deadline = tokio::time::Instant::now() + self.batching.max_wait;
        let mut events = first.events.len();
        let mut batch = vec![first];
        while events < self.batching.max_events {
            let next = match self.receiver.try_recv() {
                Ok(request) => request,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                // Enough to write: take what is there, wait for nothing more.
                Err(mpsc::error::TryRecvError::Empty) if events >= self.batching.min_events => {
                    break
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    let waited = tokio::select! {
                        waited = tokio::time::timeout_at(deadline, self.receiver.recv()) => waited,
                        () = stop.cancelled() => break,
                    };
                    match waited {
                        Ok(Some(request)) => request,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            events += next.events.len();
            batch.push(next);
        }
        batch
    }

    /// Writes a batch and answers its senders; journaled requests whose
    /// write failed are written again, after a pause, until storage takes
    /// them or `stop` is cancelled (their senders were answered already:
    /// the journal keeps them for the next start).
    async fn flush(&self, mut batch: Vec<WriteRequest>, stop: &CancellationToken) {
        let mut backoff = RETRY_BACKOFF;
        loop {
            let failed = self.flush_once(batch).await;
            if failed.is_empty() {
                return;
            }
            if stop.is_cancelled() {
                let first = failed.iter().filter_map(WriteRequest::record).min();
                if let Some(first) = first {
                    self.given_up.fetch_min(first, Ordering::AcqRel);
                }
                tracing::error!(requests = failed.len(), "journaled events not stored before stopping; the journal replays them at the next start");
                return;
            }
            tracing::error!(requests = failed.len(), pause = ?backoff, "journaled events not stored yet; writing them again");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.cancelled() => {}
            }
            backoff = (backoff * 2).min(MAX_JOURNALED_BACKOFF);
            batch = failed;
        }
    }

    /// One attempt at a batch; returns the journaled requests not written.
    async fn flush_once(&self, batch: Vec<WriteRequest>) -> Vec<WriteRequest> {
        let total: usize = batch.iter().map(|r| r.events.len()).sum();
        let mut events = Vec::with_capacity(total);
        let mut requests = Vec::with_capacity(batch.len());
        for request in batch {
            let start = events.len();
            events.extend(request.events);
            requests.push((start..events.len(), request.reply, request.permit));
        }
        let events: Arc<[Event]> = events.into();
        let outcome = isolate(self, events.clone()).await;
        if !outcome.refused.is_empty() {
            self.metrics
                .events_rejected
                .with_label_values(&["storage_rejected"])
                .inc_by(outcome.refused.len() as u64);
        }
        let mut failed = Vec::new();
        let mut stored_through = None;
        let mut first_failed = None;
        for (span, reply, permit) in requests {
            let answer = outcome.reply_for(&span);
            match reply {
                Reply::Waiting(reply) => {
                    self.leave_queue(span.len());
                    let _ = reply.send(answer);
                    drop(permit);
                }
                Reply::Journaled(record) if answer.is_err() => {
                    first_failed.get_or_insert(record);
                    failed.push(WriteRequest {
                        events: events[span].to_vec(),
                        reply: Reply::Journaled(record),
                        permit,
                    });
                }
                Reply::Journaled(record) => {
                    self.leave_queue(span.len());
                    for position in answer.map(|s| s.refused).unwrap_or_default() {
                        let event = &events[span.start + position];
                        tracing::error!(project = %event.project_id, message_id = %event.message_id, record, "storage refused an event the journal had acknowledged; it is not stored");
                    }
                    stored_through = Some(record);
                    drop(permit);
                }
            }
        }
        // Records arrive in order: release up to the first not stored.
        let through = match (first_failed, stored_through) {
            (Some(first), _) => first.checked_sub(1),
            (None, through) => through,
        };
        let given_up = self.given_up.load(Ordering::Acquire);
        let through = through.map(|through| through.min(given_up.saturating_sub(1)));
        if let (Some(journal), Some(through)) = (&self.journal, through) {
            journal.stored(through);
        }
        failed
    }

    fn leave_queue(&self, events: usize) {
        self.metrics
            .queue_depth
            .sub(i64::try_from(events).unwrap_or(i64::MAX));
    }

    /// Writes `events`, retrying what storage cannot do now; a refusal is
    /// returned at once (retrying it is pointless).
    async fn write_with_retries(&self, events: Arc<[Event]>) -> Result<(), Failure> {
        let mut backoff = RETRY_BACKOFF;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let error = match self.repository.insert_batch(events.clone()).await {
                Ok(outcome) => {
                    self.record_write(started, events.len(), outcome);
                    return Ok(());
                }
                Err(error) => error,
            };
            if let StorageError::Rejected(_) = error {
                self.metrics
                    .batch_flush_errors
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::warn!(%error, events = events.len(), "storage refused a batch; isolating the events at fault");
                return Err(Failure::Refused);
            }
            if error.is_retryable() && attempt < self.batching.write_attempts {
                self.metrics
                    .batch_flush_errors
                    .with_label_values(&["retry"])
                    .inc();
                tracing::warn!(%error, attempt, events = events.len(), "batch write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
                continue;
            }
            self.metrics
                .batch_flush_errors
                .with_label_values(&["gave_up"])
                .inc();
            tracing::error!(%error, attempt, events = events.len(), "batch write failed; reporting to senders");
            return Err(Failure::Failed(if error.is_retryable() {
                SinkError::StorageUnavailable(error.to_string())
            } else {
                SinkError::StorageFailed(error.to_string())
            }));
        }
    }

    fn record_write(&self, started: Instant, events: usize, outcome: InsertOutcome) {
        let m = &self.metrics;
        m.batch_flush_duration
            .observe(started.elapsed().as_secs_f64());
        m.batch_flush_size.observe(events as f64);
        m.events_stored.inc_by(outcome.inserted as u64);
        m.events_deduplicated.inc_by(outcome.duplicates as u64);
    }
}

/// Why some events of a flush were not written.
enum Failure {
    /// Storage refused them.
    Refused,
    /// Storage could not write them; their senders get this error.
    Failed(SinkError),
}

/// What a flush did with its events, by position.
#[derive(Debug, Default)]
struct FlushOutcome {
    /// Events storage refused, ascending.
    refused: Vec<usize>,
    /// Spans not written, with the error their senders get.
    failed: Vec<(Range<usize>, SinkError)>,
}

impl FlushOutcome {
    /// The answer of the request whose events are `span`: the first error
    /// touching it, else the positions refused within it.
    fn reply_for(&self, span: &Range<usize>) -> Result<Submitted, SinkError> {
        let overlaps = |other: &Range<usize>| other.start < span.end && span.start < other.end;
        if let Some((_, error)) = self.failed.iter().find(|(failed, _)| overlaps(failed)) {
            return Err(error.clone());
        }
        Ok(Submitted {
            refused: self
                .refused
                .iter()
                .filter(|&&position| span.contains(&position))
                .map(|&position| position - span.start)
                .collect(),
        })
    }
}

/// Writes a flush; when storage refuses a part, splits it in halves until
/// each refused part is a single event. Halves are written in order, so a
/// batch with one bad event costs about `2 log2(n)` writes.
async fn isolate(processor: &Processor, events: Arc<[Event]>) -> FlushOutcome {
    let mut outcome = FlushOutcome::default();
    // Spans still to write, the next on top.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..events.len());
    while let Some(span) = pending.pop() {
        let part: Arc<[Event]> = if span.len() == events.len() {
            events.clone()
        } else {
            events[span.clone()].to_vec().into()
        };
        match processor.write_with_retries(part).await {
            Ok(()) => {}
            Err(Failure::Refused) if outcome.refused.len() >= MAX_REFUSED_PER_FLUSH => {
                outcome.failed.push((
                    span,
                    SinkError::StorageUnavailable(format!(
                        "storage refused more than {MAX_REFUSED_PER_FLUSH} events of one batch"
                    )),
                ));
            }
            Err(Failure::Refused) if span.len() == 1 => {
                let event = &events[span.start];
                tracing::warn!(project = %event.project_id, message_id = %event.message_id, "storage refused an event; it is not stored");
                outcome.refused.push(span.start);
            }
            Err(Failure::Refused) => {
                let middle = span.start + span.len() / 2;
                pending.push(middle..span.end);
                pending.push(span.start..middle);
            }
            Err(Failure::Failed(error)) => outcome.failed.push((span, error)),
        }
    }
    outcome.refused.sort_unstable();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{track_event, FakeRepository};
    use std::sync::atomic::AtomicU32;

    fn events(count: usize) -> Vec<Event> {
        (0..count)
            .map(|i| track_event("p", &format!("m{i}"), "u"))
            .collect()
    }

    fn batching(max_wait_ms: u64) -> Batching {
        Batching {
            max_events: 1_000,
            min_events: 1_000,
            max_wait: Duration::from_millis(max_wait_ms),
            write_attempts: 3,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_write() {
        let repository = Arc::new(FakeRepository::default());
        let metrics = Metrics::new();
        let (sink, processor) = queue(10_000, batching(200), repository.clone(), metrics.clone());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let submits: Vec<_> = (0..5)
            .map(|_| {
                let sink = sink.clone();
                tokio::spawn(async move { sink.submit(events(10)).await })
            })
            .collect();
        for submit in submits {
            submit.await.unwrap().unwrap();
        }
        assert_eq!(*repository.batches.lock().unwrap(), vec![50]);
        assert_eq!(metrics.events_stored.get(), 50);
        assert_eq!(metrics.queue_depth.get(), 0);
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_batch_is_written_without_waiting() {
        let repository = Arc::new(FakeRepository::default());
        let (sink, processor) = queue(10_000, batching(60_000), repository.clone(), Metrics::new());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        tokio::time::timeout(Duration::from_secs(5), sink.submit(events(1_000)))
            .await
            .expect("a full batch must not wait for the linger time")
            .unwrap();
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn a_batch_past_its_minimum_stops_waiting_for_more() {
        let repository = Arc::new(FakeRepository::default());
        let policy = Batching {
            min_events: 50,
            ..batching(60_000)
        };
        let (sink, processor) = queue(10_000, policy, repository.clone(), Metrics::new());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        tokio::time::timeout(Duration::from_secs(5), sink.submit(events(60)))
            .await
            .expect("a batch of at least min_events must not wait for the linger time")
            .unwrap();
        assert_eq!(*repository.batches.lock().unwrap(), vec![60]);
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn failed_writes_are_retried() {
        let repository = Arc::new(FakeRepository {
            failures: AtomicU32::new(2),
            ..FakeRepository::default()
        });
        let metrics = Metrics::new();
        let (sink, processor) = queue(100, batching(0), repository.clone(), metrics.clone());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        sink.submit(events(3)).await.unwrap();
        assert_eq!(*repository.batches.lock().unwrap(), vec![3]);
        assert_eq!(
            metrics
                .batch_flush_errors
                .with_label_values(&["retry"])
                .get(),
            2
        );
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn a_write_that_keeps_failing_is_reported_to_the_sender() {
        let repository = Arc::new(FakeRepository {
            failures: AtomicU32::new(10),
            ..FakeRepository::default()
        });
        let (sink, processor) = queue(100, batching(0), repository.clone(), Metrics::new());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let error = sink.submit(events(3)).await.unwrap_err();
        assert!(
            matches!(error, SinkError::StorageUnavailable(ref m) if m.contains("disk on fire"))
        );
        assert!(repository.batches.lock().unwrap().is_empty());
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_closed_one_says_so() {
        let repository = Arc::new(FakeRepository {
            delay: Duration::from_millis(300),
            ..FakeRepository::default()
        });
        let metrics = Metrics::new();
        let (sink, processor) = queue(10, batching(0), repository, metrics.clone());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let first = {
            let sink = sink.clone();
            tokio::spawn(async move { sink.submit(events(8)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sink.submit(events(5)).await, Err(SinkError::QueueFull));
        assert_eq!(metrics.queue_rejections.get(), 1);
        first.await.unwrap().unwrap();
        sink.close();
        assert_eq!(sink.submit(events(1)).await, Err(SinkError::ShuttingDown));
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn stopping_writes_what_is_queued() {
        let repository = Arc::new(FakeRepository::default());
        let (sink, processor) = queue(10_000, batching(5_000), repository.clone(), Metrics::new());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let pending = {
            let sink = sink.clone();
            tokio::spawn(async move { sink.submit(events(7)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        pending.await.unwrap().unwrap();
        worker.await.unwrap();
        assert_eq!(*repository.batches.lock().unwrap(), vec![7]);
    }

    fn named(prefix: &str, count: usize) -> Vec<Event> {
        (0..count)
            .map(|i| track_event("p", &format!("{prefix}{i}"), "u"))
            .collect()
    }

    #[tokio::test]
    async fn a_refused_event_is_isolated_and_the_rest_of_the_group_is_stored() {
        let repository = Arc::new(FakeRepository::default());
        repository.refuse(&["b3"]);
        let metrics = Metrics::new();
        let (sink, processor) = queue(10_000, batching(200), repository.clone(), metrics.clone());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let submits: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|prefix| {
                let sink = sink.clone();
                tokio::spawn(async move { sink.submit(named(prefix, 10)).await })
            })
            .collect();
        let mut answers = Vec::new();
        for submit in submits {
            answers.push(submit.await.unwrap().unwrap());
        }
        assert_eq!(answers[0].refused, Vec::<usize>::new());
        assert_eq!(answers[1].refused, vec![3]);
        assert_eq!(answers[2].refused, Vec::<usize>::new());
        let stored = repository.stored.lock().unwrap().clone();
        assert_eq!(stored.len(), 29);
        assert!(!stored.contains(&"b3".to_owned()));
        assert!(stored.contains(&"b2".to_owned()) && stored.contains(&"b4".to_owned()));
        assert_eq!(
            metrics
                .events_rejected
                .with_label_values(&["storage_rejected"])
                .get(),
            1
        );
        // Halves down to the one event: no retries of a refusal.
        assert_eq!(
            metrics
                .batch_flush_errors
                .with_label_values(&["retry"])
                .get(),
            0
        );
        stop.cancel();
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn storage_refusing_too_much_is_reported_as_not_written() {
        let repository = Arc::new(FakeRepository::default());
        let ids: Vec<String> = (0..100).map(|i| format!("x{i}")).collect();
        repository.refuse(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let (sink, processor) = queue(10_000, batching(0), repository.clone(), Metrics::new());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        let error = sink.submit(named("x", 100)).await.unwrap_err();
        assert!(
            matches!(error, SinkError::StorageUnavailable(ref m) if m.contains("more than 64"))
        );
        assert!(repository.stored.lock().unwrap().is_empty());
        stop.cancel();
        worker.await.unwrap();
    }
}
