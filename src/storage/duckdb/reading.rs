//! Reads under a budget: each runs on a reader connection off the async
//! runtime and is interrupted when it outlasts its time; timelines stream
//! through a small channel, so a read never holds more than a few batches.

use std::sync::Arc;

use duckdb::{Connection, InterruptHandle};
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::query;
use crate::domain::analysis::TimelineRequest;
use crate::storage::{ReadBudget, StorageError, TimelineChunks};

/// Batches of a timeline read ahead of the analysis consuming them.
const TIMELINE_BATCHES_AHEAD: usize = 4;

/// Interrupts its connection's running statement when dropped, unless
/// disarmed because the read finished.
struct Interrupt(Option<Arc<InterruptHandle>>);

impl Interrupt {
    fn new(conn: &Connection) -> Self {
        Interrupt(Some(conn.interrupt_handle()))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.interrupt();
        }
    }
}

/// Runs `read` on `conn` off the runtime; past the budget's time the
/// statement is interrupted and the read answers [`StorageError::TimedOut`].
pub(super) async fn bounded<T: Send + 'static>(
    conn: Connection,
    budget: ReadBudget,
    read: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let interrupt = Interrupt::new(&conn);
    let task = tokio::task::spawn_blocking(move || read(&conn));
    match tokio::time::timeout(budget.timeout, task).await {
        Ok(joined) => {
            interrupt.disarm();
            joined.map_err(StorageError::from_join)?
        }
        // `interrupt` is dropped here, which stops the statement.
        Err(_) => Err(StorageError::TimedOut(budget.timeout)),
    }
}

/// Streams a timeline read on `conn`: dropping the stream, or reaching the
/// budget's time, interrupts the statement.
pub(super) fn timelines(
    conn: Connection,
    request: TimelineRequest,
    budget: ReadBudget,
) -> TimelineChunks {
    let interrupt = Interrupt::new(&conn);
    let (sender, receiver) = mpsc::channel(TIMELINE_BATCHES_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = query::stream_timelines(&conn, &request, &sender) {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let deadline = tokio::time::Instant::now() + budget.timeout;
    stream::unfold(Some((receiver, interrupt)), move |state| async move {
        let (mut receiver, interrupt) = state?;
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(batch)) => Some((batch, Some((receiver, interrupt)))),
            Ok(None) => {
                interrupt.disarm();
                None
            }
            Err(_) => Some((Err(StorageError::TimedOut(budget.timeout)), None)),
        }
    })
    .boxed()
}
