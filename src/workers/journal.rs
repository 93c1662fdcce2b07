//! Acknowledgement from the ingest journal: a request's events are answered
//! once they are on disk in the journal (one `fdatasync` for every request
//! waiting), not once storage has them; the processor writes them to
//! storage after, in batches as large as the load makes them.
//!
//! - [`JournalSink`] takes room in the processor's queue (or answers 503),
//!   encodes the events as one record ([`crate::domain::record`]) and hands
//!   it to the journal's thread, which appends every record waiting, syncs
//!   once, queues each record's events for the processor and answers.
//! - The processor tells [`JournalHandle::stored`] which records storage
//!   has; the thread releases them (the journal deletes the segments that
//!   hold only those).
//! - At start, [`replay`] queues the records a stop left unreleased (a crash,
//!   or storage refusing writes at shutdown) before any new one: storage
//!   skips the events it stored already by their `messageId`.
//! - Reads wait until storage holds every event acknowledged before they
//!   began ([`IngestProgress::caught_up`]), so that a client reads its
//!   own writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use analytics_journal::{Journal, JournalError, Replay};
use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use super::processor::{Place, QueueSink, StoredRecords};
use crate::app::ReadBarrier;
use crate::domain::dependency::DependencyCheck;
use crate::domain::{record, Event, EventSink, SinkError, Submitted};

/// Most records one sync takes; the rest wait for the next.
const MAX_RECORDS_PER_SYNC: usize = 4_096;

/// What the journal's thread is asked to do.
enum Command {
    Append(Append),
    Release(u64),
}

struct Append {
    record: Vec<u8>,
    events: Vec<Event>,
    place: Place,
    reply: oneshot::Sender<Result<(), SinkError>>,
}

/// How far ingest is: the last record acknowledged, the last stored.
#[derive(Debug)]
pub struct IngestProgress {
    acknowledged: AtomicU64,
    stored: watch::Sender<u64>,
}

impl IngestProgress {
    fn new(acknowledged: u64, stored: u64) -> Self {
        IngestProgress {
            acknowledged: AtomicU64::new(acknowledged),
            stored: watch::Sender::new(stored),
        }
    }
}

#[async_trait]
impl ReadBarrier for IngestProgress {
    async fn caught_up(&self, patience: Duration) {
        let target = self.acknowledged.load(Ordering::Acquire);
        let mut stored = self.stored.subscribe();
        let waited = tokio::time::timeout(patience, stored.wait_for(|&s| s >= target)).await;
        if waited.is_err() {
            tracing::warn!(
                record = target,
                ?patience,
                "a read did not wait longer for storage to hold the events acknowledged before it"
            );
        }
    }
}

/// The processor's side: tells the journal what storage holds.
pub struct JournalHandle {
    commands: Sender<Command>,
    progress: Arc<IngestProgress>,
}

impl StoredRecords for JournalHandle {
    fn stored(&self, through: u64) {
        self.progress.stored.send_if_modified(|stored| {
            let newer = through > *stored;
            *stored = (*stored).max(through);
            newer
        });
        // A closed channel means the thread stopped: the next start replays.
        let _ = self.commands.send(Command::Release(through));
    }
}

/// The ingest side: an [`EventSink`] that answers once events are journaled.
pub struct JournalSink {
    queue: Arc<QueueSink>,
    commands: Sender<Command>,
    failed: Arc<AtomicBool>,
}

#[async_trait]
impl EventSink for JournalSink {
    async fn submit(&self, events: Vec<Event>) -> Result<Submitted, SinkError> {
        if events.is_empty() {
            return Ok(Submitted::default());
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(journal_failed());
        }
        let place = self.queue.reserve(events.len())?;
        let mut record = Vec::with_capacity(events.len() * 768);
        record::encode(&mut record, &events);
        let (reply, answer) = oneshot::channel();
        let append = Command::Append(Append {
            record,
            events,
            place,
            reply,
        });
        self.commands
            .send(append)
            .map_err(|_| SinkError::ShuttingDown)?;
        answer.await.unwrap_or(Err(SinkError::ShuttingDown))?;
        Ok(Submitted::default())
    }
}

fn journal_failed() -> SinkError {
    SinkError::StorageUnavailable("the ingest journal cannot write (see the service log)".into())
}

/// Readiness: the journal still writes.
pub struct JournalCheck {
    failed: Arc<AtomicBool>,
}

#[async_trait]
impl DependencyCheck for JournalCheck {
    fn name(&self) -> &'static str {
        "ingest journal"
    }

    async fn check(&self) -> Result<(), String> {
        if self.failed.load(Ordering::Acquire) {
            return Err("the ingest journal failed to write; see the service log".into());
        }
        Ok(())
    }
}

/// The journal's thread and the parts that talk to it.
pub struct JournalParts {
    /// For ingest.
    pub sink: Arc<JournalSink>,
    /// For the processor.
    pub handle: Arc<JournalHandle>,
    /// For reads.
    pub progress: Arc<IngestProgress>,
    /// For readiness.
    pub check: Arc<JournalCheck>,
    /// The thread; it ends once every sink and handle is gone.
    pub thread: JoinHandle<()>,
}

/// Starts the journal's thread over `journal`, queueing into `queue`.
pub fn start(journal: Journal, queue: Arc<QueueSink>) -> std::io::Result<JournalParts> {
    let (commands, receiver) = mpsc::channel();
    // Every record on disk was acknowledged, those of a replay included.
    let acknowledged = journal.next_sequence() - 1;
    let progress = Arc::new(IngestProgress::new(acknowledged, journal.released()));
    let failed = Arc::new(AtomicBool::new(false));
    let thread = {
        let (queue, progress, failed) = (queue.clone(), progress.clone(), failed.clone());
        std::thread::Builder::new()
            .name("ingest-journal".into())
            .spawn(move || run(journal, &receiver, &queue, &progress, &failed))?
    };
    Ok(JournalParts {
        sink: Arc::new(JournalSink {
            queue,
            commands: commands.clone(),
            failed: failed.clone(),
        }),
        handle: Arc::new(JournalHandle {
            commands,
            progress: progress.clone(),
        }),
        progress,
        check: Arc::new(JournalCheck { failed }),
        thread,
    })
}

fn run(
    mut journal: Journal,
    commands: &Receiver<Command>,
    queue: &QueueSink,
    progress: &IngestProgress,
    failed: &AtomicBool,
) {
    let mut appends = Vec::new();
    while let Ok(first) = commands.recv() {
        let mut release = None;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Append(append) => appends.push(append),
                Command::Release(through) => release = release.max(Some(through)),
            }
            if appends.len() < MAX_RECORDS_PER_SYNC {
                next = commands.try_recv().ok();
            }
        }
        if !appends.is_empty() {
            write(&mut journal, &mut appends, queue, progress, failed);
        }
        if let Some(through) = release {
            if let Err(error) = journal.release(through) {
                tracing::warn!(%error, "releasing journal records failed; they are replayed at the next start");
            }
        }
    }
}

fn write(
    journal: &mut Journal,
    appends: &mut Vec<Append>,
    queue: &QueueSink,
    progress: &IngestProgress,
    failed: &AtomicBool,
) {
    if failed.load(Ordering::Acquire) {
        for append in appends.drain(..) {
            let _ = append.reply.send(Err(journal_failed()));
        }
        return;
    }
    let synced = appends
        .iter()
        .map(|append| journal.append(&append.record))
        .collect::<Result<Vec<u64>, JournalError>>()
        .and_then(|records| journal.sync().map(|()| records));
    match synced {
        Ok(records) => {
            if let Some(&last) = records.last() {
                progress.acknowledged.store(last, Ordering::Release);
            }
            for (append, record) in appends.drain(..).zip(records) {
                // Queued or not (stopping), the record is on disk: a stop
                // before storage has it leaves it to the next start.
                let _ = queue.forward_journaled(append.place, append.events, record);
                let _ = append.reply.send(Ok(()));
            }
        }
        Err(error) => {
            // What the disk holds of this write is unknown: no more appends.
            tracing::error!(%error, "the ingest journal cannot write; ingest answers 503 until the service restarts");
            failed.store(true, Ordering::Release);
            for append in appends.drain(..) {
                let _ = append.reply.send(Err(journal_failed()));
            }
        }
    }
}

/// What a replay found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Records queued again.
    pub records: u64,
    /// Their events.
    pub events: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A record is not one the service wrote.
    #[error("journal record {record}: {source}")]
    Record {
        /// Its number.
        record: u64,
        /// What is wrong with it.
        source: record::RecordError,
    },
    /// The service stops before the replay could queue everything.
    #[error("the service stopped during the journal replay")]
    Stopped,
}

/// Queues the records of `replay` for the processor, in order, waiting for
/// room in the queue; returns once every one is queued.
pub async fn replay(replay: Replay, queue: &QueueSink) -> Result<Replayed, ReplayError> {
    let (records, mut received) = tokio::sync::mpsc::channel(16);
    let reader = tokio::task::spawn_blocking(move || {
        for item in replay {
            let decoded = item.map_err(ReplayError::from).and_then(|(number, bytes)| {
                record::decode(&bytes)
                    .map(|events| (number, events))
                    .map_err(|source| ReplayError::Record {
                        record: number,
                        source,
                    })
            });
            let failed = decoded.is_err();
            if records.blocking_send(decoded).is_err() || failed {
                return;
            }
        }
    });
    let mut replayed = Replayed::default();
    while let Some(decoded) = received.recv().await {
        let (number, events) = decoded?;
        let count = events.len();
        let place = queue.reserve_waiting(count).await?;
        queue.forward_journaled(place, events, number)?;
        replayed.records += 1;
        replayed.events += count as u64;
    }
    let _ = reader.await;
    Ok(replayed)
}

impl From<SinkError> for ReplayError {
    fn from(_: SinkError) -> Self {
        ReplayError::Stopped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use analytics_journal::JournalOptions;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::Batching;
    use crate::storage::testing::{track_event, FakeRepository};
    use crate::telemetry::Metrics;
    use crate::workers::processor;

    fn events(prefix: &str, count: usize) -> Vec<Event> {
        (0..count)
            .map(|i| track_event("p", &format!("{prefix}{i}"), "u"))
            .collect()
    }

    fn batching() -> Batching {
        Batching {
            max_events: 1_000,
            min_events: 1,
            max_wait: Duration::from_millis(1),
            write_attempts: 2,
        }
    }

    struct Running {
        parts: JournalParts,
        stop: CancellationToken,
        worker: tokio::task::JoinHandle<()>,
        queue: Arc<QueueSink>,
    }

    fn run_on(dir: &std::path::Path, repository: Arc<FakeRepository>) -> (Running, Replay) {
        let (queue, processor) = processor::queue(10_000, batching(), repository, Metrics::new());
        let (journal, replay) = Journal::open(dir, JournalOptions::default()).unwrap();
        let parts = start(journal, queue.clone()).unwrap();
        let processor = processor.releasing_to(parts.handle.clone());
        let stop = CancellationToken::new();
        let worker = tokio::spawn(processor.run(stop.clone()));
        (
            Running {
                parts,
                stop,
                worker,
                queue,
            },
            replay,
        )
    }

    async fn stop(running: Running) {
        running.stop.cancel();
        running.worker.await.unwrap();
        let Running { parts, .. } = running;
        drop(parts.sink);
        drop(parts.handle);
        tokio::task::spawn_blocking(move || parts.thread.join().unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn events_are_acknowledged_from_the_journal_then_stored_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let repository = Arc::new(FakeRepository {
            delay: Duration::from_millis(300),
            ..FakeRepository::default()
        });
        let (running, _) = run_on(dir.path(), repository.clone());
        let started = std::time::Instant::now();
        running.parts.sink.submit(events("a", 10)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "the answer does not wait for storage"
        );
        assert!(repository.stored.lock().unwrap().is_empty());
        // A read waits until storage holds what was acknowledged.
        running
            .parts
            .progress
            .caught_up(Duration::from_secs(10))
            .await;
        assert_eq!(repository.stored.lock().unwrap().len(), 10);
        stop(running).await;
        let (journal, mut replay) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        assert_eq!(journal.released(), 1);
        assert!(replay.next().is_none(), "nothing left to replay");
    }

    #[tokio::test]
    async fn what_storage_did_not_take_before_a_stop_is_replayed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(FakeRepository {
            failures: AtomicU32::new(u32::MAX),
            ..FakeRepository::default()
        });
        let (running, _) = run_on(dir.path(), failing.clone());
        running.parts.sink.submit(events("a", 5)).await.unwrap();
        running.parts.sink.submit(events("b", 7)).await.unwrap();
        stop(running).await;
        assert!(failing.stored.lock().unwrap().is_empty());

        let repository = Arc::new(FakeRepository::default());
        let (running, replay) = run_on(dir.path(), repository.clone());
        let replayed = super::replay(replay, &running.queue).await.unwrap();
        assert_eq!(
            replayed,
            Replayed {
                records: 2,
                events: 12
            }
        );
        running.parts.sink.submit(events("c", 1)).await.unwrap();
        running
            .parts
            .progress
            .caught_up(Duration::from_secs(10))
            .await;
        let stored = repository.stored.lock().unwrap().clone();
        assert_eq!(stored.len(), 13);
        assert_eq!(stored.first().map(String::as_str), Some("a0"));
        assert_eq!(stored.last().map(String::as_str), Some("c0"));
        stop(running).await;
        let (_, mut replay) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        assert!(replay.next().is_none());
    }

    #[tokio::test]
    async fn a_write_that_fails_for_a_while_is_tried_until_storage_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let repository = Arc::new(FakeRepository {
            failures: AtomicU32::new(4),
            ..FakeRepository::default()
        });
        let (running, _) = run_on(dir.path(), repository.clone());
        running.parts.sink.submit(events("a", 3)).await.unwrap();
        running
            .parts
            .progress
            .caught_up(Duration::from_secs(10))
            .await;
        assert_eq!(repository.stored.lock().unwrap().len(), 3);
        stop(running).await;
    }
}
