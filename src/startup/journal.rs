//! The ingest journal at start: opened (cutting off what a crash left of a
//! record), its thread started, its replay handed to [`super::Application::run_until`],
//! which queues it before serving.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use analytics_journal::{Journal, JournalOptions, Replay};

use super::StartupError;
use crate::workers::journal::{self, JournalParts};
use crate::workers::processor::QueueSink;

/// Longest the service waits, when stopping, for the journal's thread to
/// release what storage took.
const THREAD_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What is left of the journal once its parts are handed out.
pub(super) struct JournalRun {
    /// The records to queue before serving.
    pub replay: Replay,
    /// The journal's thread.
    pub thread: JoinHandle<()>,
}

/// Opens the journal in `dir` and starts its thread, queueing into `queue`.
pub(super) fn open(
    dir: &Path,
    queue: Arc<QueueSink>,
) -> Result<(JournalParts, Replay), StartupError> {
    let (journal, replay) =
        Journal::open(dir, JournalOptions::default()).map_err(StartupError::Journal)?;
    tracing::info!(dir = %dir.display(), next_record = journal.next_sequence(), released = journal.released(), "ingest journal opened");
    let parts = journal::start(journal, queue).map_err(|e| {
        StartupError::Journal(analytics_journal::JournalError::Io {
            path: dir.to_owned(),
            source: e,
        })
    })?;
    Ok((parts, replay))
}

/// Queues the replay; returns once every record is queued.
pub(super) async fn replay(replay: Replay, queue: &QueueSink) -> Result<(), StartupError> {
    let replayed = journal::replay(replay, queue)
        .await
        .map_err(StartupError::Replay)?;
    if replayed.records > 0 {
        tracing::info!(
            records = replayed.records,
            events = replayed.events,
            "replayed the journal records storage did not hold at the last stop"
        );
    }
    Ok(())
}

/// Waits a while for the journal's thread to finish its last releases.
pub(super) async fn stop(thread: JoinHandle<()>) {
    let joined = tokio::task::spawn_blocking(move || thread.join());
    if tokio::time::timeout(THREAD_STOP_TIMEOUT, joined)
        .await
        .is_err()
    {
        tracing::warn!("the ingest journal's thread did not stop in time; the next start replays what it did not release");
    }
}
