//! One shard of the index: the keys whose top bits name it, as runs on disk
//! and a delta in memory, with a Bloom filter over all of them.
//!
//! The delta becomes a run when it is full; a run then merges with the one
//! before it while it is at least half that one's size, so that a shard of
//! n keys has about log2(n / delta) runs and each key is rewritten about
//! as many times.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use super::bloom::BlockedBloom;
use super::run::{merged, Run};

/// The delta's keys at which it becomes a run, before the shard's stagger.
pub(super) const DELTA_KEYS: usize = 8_192;

/// A shard's keys.
pub(super) struct Shard {
    /// Keys not in a run yet.
    delta: HashSet<u128, foldhash::fast::FixedState>,
    /// The delta's size at which it becomes a run: shards differ, so that
    /// they do not all write runs (and merge them) at the same write.
    delta_limit: usize,
    /// The last write all of whose keys of this shard are in runs, while the
    /// delta holds any.
    pending_after: Option<Option<u64>>,
    /// Runs, largest (oldest) first.
    runs: Vec<Run>,
    bloom: BlockedBloom,
    count: u64,
}

impl Shard {
    /// Shard `number` of `shards`, holding `runs`, with `bloom` when it is
    /// known to hold them all.
    pub(super) fn new(
        number: usize,
        shards: usize,
        runs: Vec<Run>,
        bloom: Option<BlockedBloom>,
    ) -> io::Result<Self> {
        let count = runs.iter().map(Run::len).sum();
        let mut shard = Shard {
            delta: HashSet::default(),
            delta_limit: DELTA_KEYS + DELTA_KEYS * number / shards,
            pending_after: None,
            runs,
            bloom: BlockedBloom::with_capacity(0),
            count,
        };
        match bloom {
            Some(bloom) => shard.bloom = bloom,
            None => shard.rebuild_bloom()?,
        }
        Ok(shard)
    }

    /// Whether the shard holds `key`.
    pub(super) fn contains(&self, key: u128) -> io::Result<bool> {
        if !self.bloom.may_contain(key) {
            return Ok(false);
        }
        if self.delta.contains(&key) {
            return Ok(true);
        }
        for run in self.runs.iter().rev() {
            if run.contains(key)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adds `key`, which it does not hold, as a key of a write after
    /// `recorded` (the last write the index held whole).
    pub(super) fn insert(&mut self, key: u128, recorded: Option<u64>) -> io::Result<()> {
        if !self.delta.insert(key) {
            return Ok(());
        }
        self.pending_after.get_or_insert(recorded);
        self.count += 1;
        if self.count as usize > self.bloom.capacity() {
            self.rebuild_bloom()?;
        } else {
            self.bloom.insert(key);
        }
        Ok(())
    }

    /// A new filter with room to grow, of every key.
    fn rebuild_bloom(&mut self) -> io::Result<()> {
        let mut bloom = BlockedBloom::with_capacity((self.count as usize).max(DELTA_KEYS) * 3 / 2);
        for run in &self.runs {
            for key in run.keys()? {
                bloom.insert(key?);
            }
        }
        for key in &self.delta {
            bloom.insert(*key);
        }
        self.bloom = bloom;
        Ok(())
    }

    /// Whether the delta is full.
    pub(super) fn full(&self) -> bool {
        self.delta.len() >= self.delta_limit
    }

    /// The last write whose keys of this shard are all in runs, given the
    /// last write the index holds whole.
    pub(super) fn persisted(&self, recorded: Option<u64>) -> Option<u64> {
        self.pending_after.unwrap_or(recorded)
    }

    /// Writes the delta as a run, named by `name`, and merges runs as their
    /// sizes call for; returns the files no longer used.
    pub(super) fn flush(
        &mut self,
        directory: &Path,
        mut name: impl FnMut() -> String,
    ) -> io::Result<Vec<PathBuf>> {
        if self.delta.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys: Vec<u128> = self.delta.iter().copied().collect();
        keys.sort_unstable();
        let run = Run::write(&directory.join(name()), keys.into_iter().map(Ok))?;
        self.runs.push(run);
        self.delta.clear();
        self.pending_after = None;
        let mut obsolete = Vec::new();
        while let [.., before, last] = &self.runs[..] {
            if last.len() * 2 < before.len() {
                break;
            }
            let run = Run::write(
                &directory.join(name()),
                merged(before.keys()?, last.keys()?),
            )?;
            let last = self.runs.pop().expect("two runs");
            let before = self.runs.pop().expect("two runs");
            obsolete.extend([before.path().to_owned(), last.path().to_owned()]);
            self.runs.push(run);
        }
        Ok(obsolete)
    }

    /// Its runs.
    pub(super) fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Its filter.
    pub(super) fn bloom(&self) -> &BlockedBloom {
        &self.bloom
    }

    /// Keys in its runs and delta.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Bytes of memory it holds: filter, page indexes, delta.
    pub(super) fn memory_bytes(&self) -> usize {
        self.bloom.bytes()
            + self.runs.iter().map(Run::index_bytes).sum::<usize>()
            + self.delta.capacity() * 17
    }
}
