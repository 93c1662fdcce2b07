//! When the writer checkpoints: after every two row groups of new events,
//! not after every 16 MB of WAL.
//!
//! DuckDB's automatic checkpoint runs inside the commit that takes the WAL
//! past `checkpoint_threshold`. At the default 16 MB every large write
//! crosses it, so each commit rewrites the last, partly filled row group of
//! `events` and compresses it again. Checkpointing once per two row groups
//! of events compresses most rows once. The automatic threshold stays as a
//! cap ([`WAL_CAP`]) for writes that are not events (kept sessions, rollup
//! upkeep); the WAL it bounds replays in well under a second per 200 MB
//! after a crash (`docs/benchmarks.md`).

use duckdb::Connection;

/// DuckDB's `checkpoint_threshold` for the file: the most WAL kept before
/// DuckDB checkpoints on its own.
pub(super) const WAL_CAP: &str = "1GB";

/// Events appended between two checkpoints: two of DuckDB's row groups
/// (122,880 rows each).
const EVENTS_PER_CHECKPOINT: u64 = 2 * 122_880;

/// Counts the events appended since the last checkpoint.
#[derive(Debug)]
pub(super) struct CheckpointSchedule {
    every: u64,
    events_since: u64,
}

impl Default for CheckpointSchedule {
    fn default() -> Self {
        Self::every(EVENTS_PER_CHECKPOINT)
    }
}

impl CheckpointSchedule {
    /// A checkpoint once `events` have been committed since the last one.
    fn every(events: u64) -> Self {
        Self {
            every: events,
            events_since: 0,
        }
    }

    /// Notes `events` committed; checkpoints once enough have been since the
    /// last time. A failed checkpoint leaves the committed rows in the WAL
    /// (DuckDB replays it on open), so it is logged and tried again at the
    /// next write rather than failing the write that was already stored.
    pub(super) fn after_commit(&mut self, conn: &Connection, events: usize) {
        self.events_since += events as u64;
        if self.events_since < self.every {
            return;
        }
        match conn.execute_batch("CHECKPOINT;") {
            Ok(()) => self.events_since = 0,
            Err(error) => tracing::warn!(%error, "checkpoint failed; retried after the next write"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_bytes(path: &std::path::Path) -> u64 {
        std::fs::metadata(path.with_extension("duckdb.wal")).map_or(0, |m| m.len())
    }

    #[test]
    fn committed_rows_stay_in_the_wal_until_enough_are_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.duckdb");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "SET checkpoint_threshold = '{WAL_CAP}';
             CREATE TABLE t (n INTEGER); CHECKPOINT;"
        ))
        .unwrap();
        let mut schedule = CheckpointSchedule::every(2_000);
        let mut commit = |rows: usize| {
            conn.execute_batch(&format!("INSERT INTO t SELECT range FROM range({rows});"))
                .unwrap();
            schedule.after_commit(&conn, rows);
        };
        commit(1_000);
        assert!(
            wal_bytes(&path) > 0,
            "1,000 of 2,000 events: no checkpoint yet"
        );
        commit(1_000);
        assert_eq!(wal_bytes(&path), 0, "2,000 events: checkpointed");
        commit(10);
        assert!(
            wal_bytes(&path) > 0,
            "the count starts again after a checkpoint"
        );
    }
}
