//! The keys of every message the file stores, for exact deduplication by
//! `(project, messageId)` without an index in DuckDB.
//!
//! DuckDB keeps a table's ART index wholly in memory, inside its memory
//! limit: with the key on the two VARCHARs it took about 80 bytes per stored
//! event (a 512 MB limit was full at 6 to 7 million events). So the events
//! table has no key, and the writer asks this index instead:
//!
//! - A message's key is a 128-bit SipHash-1-3 of its project and `messageId`
//!   ([`MessageKey`]): two different messages share one with a probability
//!   of about 10^-21 among a billion stored messages.
//! - The keys are split by their top bits into [`SHARDS`] shards. A shard
//!   keeps the keys of recent writes in memory and the rest in runs, files
//!   of keys in order that are written once and merged as they grow
//!   ([`shard`], [`run`]); a blocked Bloom filter over all its keys answers
//!   most lookups of a new key from memory, and the others read one page of
//!   each run. Memory grows by about two bytes per stored key (the filters
//!   and the runs' page indexes) plus the deltas, bounded.
//! - The index is derived from `events` and may lag it, never lead it: every
//!   write numbers its rows (`events.write_seq`), and the index records, in
//!   the same atomic batch as a write's keys, the number of the last write
//!   whose keys it holds. On open, and after a failed index write, it catches
//!   up with the writes after that number from `events` ([`catch_up`]), so a
//!   crash between DuckDB's commit and the index's loses no key.
//! - An index that is not this file's (its file identity differs, or it holds
//!   writes the file does not) is rebuilt from `events`.

mod bloom;
mod manifest;
mod run;
mod shard;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use duckdb::arrow::array::{StringArray, UInt64Array};
use duckdb::Connection;
use siphasher::sip128::{Hasher128, SipHasher13};

use self::bloom::BlockedBloom;
use self::manifest::{Manifest, MANIFEST};
use self::run::Run;
use self::shard::Shard;
use super::query::column;
use crate::domain::Event;
use crate::storage::StorageError;

/// The hash keys of message keys: fixed, so that a key never changes.
const HASH_KEYS: (u64, u64) = (0x616e_616c_7974_6963, 0x6d65_7373_6167_6573);

/// Shards, by the keys' top bits.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// The file of the filters, written at close.
const BLOOMS: &str = "BLOOMS";

/// Keys written to the index per batch while catching up.
const CATCH_UP_CHUNK: usize = 100_000;

/// Row ids of `events` read per query while catching up.
const CATCH_UP_WINDOW: u64 = 500_000;

/// Where the index of the file at `path` lives: beside it.
pub(super) fn directory_of(path: &Path) -> PathBuf {
    let mut directory = path.as_os_str().to_owned();
    directory.push(".messages");
    PathBuf::from(directory)
}

/// The key of one message: a 128-bit hash of its project and `messageId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct MessageKey(u128);

impl MessageKey {
    /// The key of `message_id` in `project_id`.
    pub(super) fn of(project_id: &str, message_id: &str) -> Self {
        let mut hasher = SipHasher13::new_with_keys(HASH_KEYS.0, HASH_KEYS.1);
        // The project's length first, so that no two pairs hash the same bytes.
        std::hash::Hasher::write(&mut hasher, &(project_id.len() as u64).to_le_bytes());
        std::hash::Hasher::write(&mut hasher, project_id.as_bytes());
        std::hash::Hasher::write(&mut hasher, message_id.as_bytes());
        MessageKey(hasher.finish128().as_u128())
    }

    /// The key of `event`.
    pub(super) fn of_event(event: &Event) -> Self {
        Self::of(&event.project_id, &event.message_id)
    }

    fn shard(self) -> usize {
        (self.0 >> (128 - SHARD_BITS)) as usize
    }
}

fn index_error(directory: &Path, error: io::Error) -> StorageError {
    StorageError::Unavailable(format!(
        "the message index {}: {error}",
        directory.display()
    ))
}

/// The set of stored message keys.
pub(super) struct MessageIndex {
    directory: PathBuf,
    shards: Vec<Shard>,
    manifest: Manifest,
    /// The last write whose keys the index holds (in runs or in memory).
    recorded: Option<u64>,
}

impl MessageIndex {
    /// Opens (creating if needed) the index in `directory`.
    pub(super) fn open(directory: &Path) -> Result<Self, StorageError> {
        Self::open_io(directory).map_err(|e| index_error(directory, e))
    }

    fn open_io(directory: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(directory)?;
        let manifest = Manifest::read(directory)?;
        // Files of runs a crash left unnamed by the manifest.
        for entry in std::fs::read_dir(directory)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let named = name == MANIFEST
                || name == BLOOMS
                || manifest.runs.iter().any(|(_, run)| *run == name);
            if !named {
                std::fs::remove_file(directory.join(&*name))?;
            }
        }
        let mut runs: Vec<Vec<Run>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (shard, name) in &manifest.runs {
            let shard = runs.get_mut(*shard).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a run of shard {shard}"),
                )
            })?;
            shard.push(Run::open(&directory.join(name))?);
        }
        let mut blooms = read_blooms(directory);
        let shards = runs
            .into_iter()
            .enumerate()
            .map(|(number, runs)| {
                let count: u64 = runs.iter().map(Run::len).sum();
                let bloom = blooms
                    .get_mut(number)
                    .and_then(Option::take)
                    .filter(|(held, _)| *held == count)
                    .map(|(_, bloom)| bloom);
                Shard::new(number, SHARDS, runs, bloom)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(MessageIndex {
            directory: directory.to_owned(),
            shards,
            recorded: manifest.applied,
            manifest,
        })
    }

    /// Drops every key: the index starts again empty.
    fn cleared(self) -> Result<Self, StorageError> {
        let directory = self.directory.clone();
        drop(self);
        std::fs::remove_dir_all(&directory).map_err(|e| index_error(&directory, e))?;
        Self::open(&directory)
    }

    /// The number of the last write whose keys the index holds; `None` when
    /// it holds none of `events`' rows.
    pub(super) fn applied(&self) -> Option<u64> {
        self.recorded
    }

    /// Whether a message with `key` is stored.
    pub(super) fn contains(&self, key: MessageKey) -> Result<bool, StorageError> {
        self.shards[key.shard()]
            .contains(key.0)
            .map_err(|e| index_error(&self.directory, e))
    }

    /// Adds `keys`, none of which it holds, of writes after the last it
    /// holds; when `applied` is given, every write up to it is then held.
    /// Full deltas become runs.
    pub(super) fn record(
        &mut self,
        keys: &[MessageKey],
        applied: Option<u64>,
    ) -> Result<(), StorageError> {
        self.record_io(keys, applied)
            .map_err(|e| index_error(&self.directory, e))
    }

    fn record_io(&mut self, keys: &[MessageKey], applied: Option<u64>) -> io::Result<()> {
        for key in keys {
            self.shards[key.shard()].insert(key.0, self.recorded)?;
        }
        if applied.is_some() {
            self.recorded = applied;
        }
        self.flush(|shard| shard.full())
    }

    /// Writes the deltas of the shards `due` picks as runs, then the
    /// manifest naming them, then deletes the runs merged away.
    fn flush(&mut self, due: impl Fn(&Shard) -> bool) -> io::Result<()> {
        let mut obsolete = Vec::new();
        let mut next_run = self.manifest.next_run;
        let mut flushed = false;
        for shard in self.shards.iter_mut().filter(|shard| due(shard)) {
            obsolete.extend(shard.flush(&self.directory, || {
                next_run += 1;
                format!("{next_run:012}.run")
            })?);
            flushed = true;
        }
        let persisted = self
            .shards
            .iter()
            .map(|shard| shard.persisted(self.recorded))
            .min()
            .flatten();
        if !flushed && persisted == self.manifest.applied {
            return Ok(());
        }
        self.manifest.next_run = next_run;
        self.manifest.applied = persisted;
        self.manifest.runs = self
            .shards
            .iter()
            .enumerate()
            .flat_map(|(number, shard)| {
                shard.runs().iter().map(move |run| {
                    let name = run.path().file_name().unwrap_or_default();
                    (number, name.to_string_lossy().into_owned())
                })
            })
            .collect();
        self.manifest.write(&self.directory)?;
        for path in obsolete {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }

    fn file_id(&self) -> Option<&str> {
        self.manifest.file_id.as_deref()
    }

    fn set_file_id(&mut self, id: &str) -> Result<(), StorageError> {
        self.manifest.file_id = Some(id.to_owned());
        self.manifest
            .write(&self.directory)
            .map_err(|e| index_error(&self.directory, e))
    }

    /// Writes every delta as a run, so that the manifest names every write
    /// held and the next open reads none of them again.
    pub(super) fn persist(&mut self) -> Result<(), StorageError> {
        self.flush(|_| true)
            .map_err(|e| index_error(&self.directory, e))
    }

    /// Writes every delta as a run and the filters to disk, so that the
    /// next open reads them instead of rebuilding.
    pub(super) fn sync(&mut self) -> Result<(), StorageError> {
        self.persist()?;
        write_blooms(&self.directory, &self.shards).map_err(|e| index_error(&self.directory, e))
    }

    /// Keys held, and bytes of memory the index holds for them.
    pub(super) fn footprint(&self) -> (u64, usize) {
        let keys = self.shards.iter().map(Shard::count).sum();
        let bytes = self.shards.iter().map(Shard::memory_bytes).sum();
        (keys, bytes)
    }
}

/// Writes each shard's key count and filter to the filters' file.
fn write_blooms(directory: &Path, shards: &[Shard]) -> io::Result<()> {
    let mut bytes = Vec::new();
    for shard in shards {
        let bloom = shard.bloom().to_bytes();
        bytes.extend_from_slice(&shard.count().to_le_bytes());
        bytes.extend_from_slice(&(bloom.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&bloom);
    }
    let temporary = directory.join(format!("{BLOOMS}.new"));
    std::fs::write(&temporary, &bytes)?;
    std::fs::rename(&temporary, directory.join(BLOOMS))
}

/// Each shard's key count and filter from the filters' file; none for a
/// shard whose part is missing or damaged.
fn read_blooms(directory: &Path) -> Vec<Option<(u64, BlockedBloom)>> {
    let bytes = std::fs::read(directory.join(BLOOMS)).unwrap_or_default();
    let mut blooms = Vec::with_capacity(SHARDS);
    let mut at = 0;
    let number = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    for _ in 0..SHARDS {
        let entry = (|| {
            let count = number(at)?;
            let length = usize::try_from(number(at + 8)?).ok()?;
            let bloom = BlockedBloom::from_bytes(bytes.get(at + 16..at + 16 + length)?)?;
            at += 16 + length;
            Some((count, bloom))
        })();
        let damaged = entry.is_none();
        blooms.push(entry);
        if damaged {
            break;
        }
    }
    blooms
}

/// The `settings` row naming the file an index belongs to.
const FILE_ID_SETTING: &str = "message_index_file_id";

/// Opens the index of the file behind `conn` in `directory` and brings it up
/// to date with `events`; returns it with the number of the last write
/// stored.
pub(super) fn open_current(
    conn: &Connection,
    directory: &Path,
) -> Result<(MessageIndex, u64), StorageError> {
    conn.execute(
        "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)",
        [FILE_ID_SETTING, &uuid::Uuid::new_v4().to_string()],
    )?;
    let file_id: String = conn.query_row(
        "SELECT value FROM settings WHERE name = ?",
        [FILE_ID_SETTING],
        |row| row.get(0),
    )?;
    let last_stored: Option<u64> =
        conn.query_row("SELECT max(write_seq) FROM events", [], |row| row.get(0))?;
    let mut index = MessageIndex::open(directory)?;
    let foreign = index.file_id().is_some_and(|id| id != file_id);
    let ahead = index.applied() > last_stored;
    if foreign || ahead {
        tracing::warn!(
            directory = %directory.display(),
            foreign,
            ahead,
            "the message index does not match the database file: rebuilding it from the stored events"
        );
        index = index.cleared()?;
    }
    if index.file_id().is_none() {
        index.set_file_id(&file_id)?;
    }
    let last = catch_up(conn, &mut index)?;
    let (keys, bytes) = index.footprint();
    tracing::info!(
        keys,
        memory_mb = bytes / 1_000_000,
        "the message index is open"
    );
    Ok((index, last.max(last_stored.unwrap_or(0))))
}

/// Adds to `index` the keys of every write after the last it holds, read
/// from `events`; returns the number of the last write it then holds (0
/// when there is none).
///
/// `events` is read a window of [`CATCH_UP_WINDOW`] row ids at a time: a
/// query's answer is held whole in memory, so reading every event at once
/// (a rebuild of the whole index) took about 8 GB at 100 million events.
pub(super) fn catch_up(conn: &Connection, index: &mut MessageIndex) -> Result<u64, StorageError> {
    catch_up_by_windows(conn, index, CATCH_UP_WINDOW)
}

fn catch_up_by_windows(
    conn: &Connection,
    index: &mut MessageIndex,
    window: u64,
) -> Result<u64, StorageError> {
    let applied = index.applied();
    let started = Instant::now();
    // Write numbers start at 1; rows of files older than them carry 0.
    let after = applied.map_or(-1, |write| i64::try_from(write).unwrap_or(i64::MAX));
    // The rows to read lie between these row ids: none when the index holds
    // every write (the usual start), found from the column's zone maps.
    let (first, last_row): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(rowid), max(rowid) FROM events WHERE write_seq > ?",
        [after],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let window = i64::try_from(window.max(1)).unwrap_or(i64::MAX);
    let step = usize::try_from(window).unwrap_or(usize::MAX);
    let starts = first
        .zip(last_row)
        .into_iter()
        .flat_map(|(first, last_row)| (first..=last_row).step_by(step));
    let mut statement = conn.prepare(
        "SELECT project_id, message_id, write_seq FROM events
         WHERE rowid >= ? AND rowid < ? AND write_seq > ?",
    )?;
    let mut keys = Vec::with_capacity(CATCH_UP_CHUNK);
    let mut last = applied;
    let mut caught = 0usize;
    for start in starts {
        let batches =
            statement.query_arrow(duckdb::params![start, start.saturating_add(window), after])?;
        for batch in batches {
            let projects = column::<StringArray>(&batch, 0)?;
            let messages = column::<StringArray>(&batch, 1)?;
            let writes = column::<UInt64Array>(&batch, 2)?;
            for row in 0..batch.num_rows() {
                // Runs may hold keys of later writes already: a shard's delta
                // becomes a run whenever it is full.
                let key = MessageKey::of(projects.value(row), messages.value(row));
                if !index.contains(key)? {
                    keys.push(key);
                }
                last = last.max(Some(writes.value(row)));
            }
            if keys.len() >= CATCH_UP_CHUNK {
                caught += keys.len();
                index.record(&keys, None)?;
                keys.clear();
            }
        }
    }
    caught += keys.len();
    index.record(&keys, last)?;
    if caught > 0 {
        // Keys of a catch-up belong to no write of this run: until they are
        // in runs, the manifest could not say they are held.
        index.persist()?;
        tracing::info!(
            keys = caught,
            seconds = started.elapsed().as_secs_f64(),
            "the message index caught up with the stored events"
        );
    }
    Ok(last.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_projects_and_messages_apart() {
        let key = MessageKey::of("shop", "m-1");
        assert_eq!(key, MessageKey::of("shop", "m-1"));
        assert_ne!(key, MessageKey::of("shop", "m-2"));
        assert_ne!(key, MessageKey::of("blog", "m-1"));
        // The same bytes split differently between project and message.
        assert_ne!(MessageKey::of("ab", "c"), MessageKey::of("a", "bc"),);
    }

    #[test]
    fn a_key_never_changes() {
        // Stored indexes hold these values: another hash would forget them all.
        assert_eq!(
            format!("{:032x}", MessageKey::of("shop", "m-1").0),
            "0ac2227c58f39b49fad1c51ef9d95e9a"
        );
    }

    fn keys(count: u64, salt: &str) -> Vec<MessageKey> {
        (0..count)
            .map(|i| MessageKey::of("shop", &format!("{salt}-{i}")))
            .collect()
    }

    #[test]
    fn catching_up_reads_events_a_window_at_a_time_and_misses_none() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE events (project_id VARCHAR, message_id VARCHAR, write_seq UBIGINT);
             INSERT INTO events SELECT 'shop', 'old-' || i, 0 FROM range(5) t(i);
             INSERT INTO events SELECT 'shop', 'm-' || i, 1 + i // 4 FROM range(23) t(i);
             DELETE FROM events WHERE message_id = 'm-6';",
        )
        .unwrap();
        let directory = tempfile::tempdir().unwrap();
        let mut index = MessageIndex::open(&directory.path().join("index")).unwrap();
        // Windows of 3 row ids: the 28 rows (one deleted) take ten.
        assert_eq!(catch_up_by_windows(&conn, &mut index, 3).unwrap(), 6);
        let held = |message: &str| index.contains(MessageKey::of("shop", message)).unwrap();
        assert!((0..5).all(|i| held(&format!("old-{i}"))));
        assert!((0..23).filter(|&i| i != 6).all(|i| held(&format!("m-{i}"))));
        assert!(!held("m-6"));
        assert_eq!(index.applied(), Some(6));

        // Later writes only: the rows of writes up to 6 are not read again.
        conn.execute_batch("INSERT INTO events VALUES ('shop', 'm-new', 7)")
            .unwrap();
        assert_eq!(catch_up_by_windows(&conn, &mut index, 3).unwrap(), 7);
        assert!(index.contains(MessageKey::of("shop", "m-new")).unwrap());
    }

    #[test]
    fn recorded_keys_and_the_applied_write_survive_a_close_and_a_crash() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("index");
        let mut index = MessageIndex::open(&path).unwrap();
        assert_eq!(index.applied(), None);
        // Enough keys that every shard writes runs and merges them.
        let stored = keys(1_200_000, "m");
        for (write, chunk) in stored.chunks(20_000).enumerate() {
            assert!(!chunk.iter().any(|key| index.contains(*key).unwrap()));
            index.record(chunk, Some(write as u64 + 1)).unwrap();
        }
        let others = keys(20_000, "other");
        let found = |index: &MessageIndex, keys: &[MessageKey]| {
            keys.iter()
                .filter(|key| index.contains(**key).unwrap())
                .count()
        };
        assert_eq!(found(&index, &stored), stored.len());
        assert_eq!(found(&index, &others), 0);
        assert_eq!(index.applied(), Some(60));
        let (held, bytes) = index.footprint();
        assert_eq!(held, 1_200_000);
        // The filters and page indexes grow with the keys, the deltas not.
        assert!(
            bytes < 40_000_000 + 1_200_000 * 3,
            "{bytes} bytes in memory"
        );

        // A crash: what was only in memory is gone, and `applied` says
        // which writes to read again.
        drop(index);
        let index = MessageIndex::open(&path).unwrap();
        let kept = index.applied().expect("runs were written");
        assert!(kept < 60);
        let kept_keys = &stored[..kept as usize * 20_000];
        assert_eq!(found(&index, kept_keys), kept_keys.len());
        assert_eq!(found(&index, &others), 0);

        // A close keeps everything, filters included.
        let mut index = index;
        index
            .record(
                &stored[kept as usize * 20_000..]
                    .iter()
                    .copied()
                    .filter(|key| !index.contains(*key).unwrap())
                    .collect::<Vec<_>>(),
                Some(60),
            )
            .unwrap();
        index.sync().unwrap();
        drop(index);
        assert!(path.join(BLOOMS).is_file());
        let index = MessageIndex::open(&path).unwrap();
        assert_eq!(index.applied(), Some(60));
        assert_eq!(found(&index, &stored), stored.len());
        assert_eq!(found(&index, &others), 0);
        let index = index.cleared().unwrap();
        assert_eq!(found(&index, &stored[..1_000]), 0);
        assert_eq!(index.applied(), None);
    }
}
