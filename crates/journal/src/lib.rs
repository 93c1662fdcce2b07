//! A journal: records appended to files in a directory, synced to disk
//! before anyone is told they are kept, replayed after a crash until the
//! stage after it has stored them elsewhere.
//!
//! - Records get consecutive sequence numbers, from 1. [`Journal::append`]
//!   buffers one; [`Journal::sync`] writes every buffered record and waits
//!   for the disk (`fdatasync`), so that many appends share one sync.
//! - Records live in segment files of about [`JournalOptions::segment_bytes`]
//!   each. [`Journal::release`] says which records are stored elsewhere:
//!   segments holding only those are deleted, and the number is kept in
//!   the directory (`released`), so that a replay starts after it.
//! - [`Journal::open`] reads every segment, keeps the records up to the
//!   first one a crash cut short (its bytes are cut off the file), and
//!   returns a [`Replay`] of the records not released.
//!
//! The journal tells nothing apart but sequence numbers: what a record
//! holds, and how the next stage skips a record it stored already but had
//! not released, is the user's.

mod released;
mod segment;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use segment::{Next, SegmentReader};

/// Why the journal could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("journal file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A segment holds bytes that are no record, before its end or in a
    /// segment that is not the last: not a write cut short by a crash.
    #[error("journal segment {path} is damaged at byte {offset}: {reason}")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where its records stop making sense.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A record longer than a segment can hold.
    #[error("a journal record of {0} bytes is larger than 4 GiB")]
    RecordTooLarge(usize),
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        JournalError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// How the journal keeps its files.
#[derive(Debug, Clone, Copy)]
pub struct JournalOptions {
    /// A segment is closed, and the next begun, once it holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 << 20,
        }
    }
}

/// The journal of one directory; one writer at a time.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    options: JournalOptions,
    /// First sequence number of each segment, oldest first; the last is written to.
    segments: VecDeque<u64>,
    file: File,
    file_len: u64,
    /// Encoded records not yet written.
    buffer: Vec<u8>,
    next: u64,
    released: u64,
}

/// The records of a journal that were not released when it was opened, in order.
#[derive(Debug)]
pub struct Replay {
    segments: VecDeque<(PathBuf, u64)>,
    reader: Option<SegmentReader>,
    after: u64,
    until: u64,
}

impl Iterator for Replay {
    type Item = Result<(u64, Vec<u8>), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.reader.is_none() {
                let (path, first) = self.segments.pop_front()?;
                match SegmentReader::open(&path, first) {
                    Ok(reader) => self.reader = Some(reader),
                    Err(e) => return Some(Err(e)),
                }
            }
            let reader = self.reader.as_mut().expect("a segment is open");
            match reader.next_record() {
                Ok(Next::Record(sequence, _)) if sequence <= self.after => {}
                Ok(Next::Record(sequence, _)) if sequence >= self.until => {
                    self.segments.clear();
                    self.reader = None;
                    return None;
                }
                Ok(Next::Record(sequence, payload)) => return Some(Ok((sequence, payload))),
                Ok(Next::End | Next::Torn) => self.reader = None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io(dir, e))
}

/// Creates the segment whose first record is `first`, durably.
fn create_segment(dir: &Path, first: u64) -> Result<File, JournalError> {
    let path = segment::path_of(dir, first);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    file.write_all(segment::HEADER)
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The first sequence numbers of the segments in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(segment::first_of) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

impl Journal {
    /// Opens the journal in `dir` (created if missing), ready to append
    /// after its last whole record, with the records to replay.
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Journal, Replay), JournalError> {
        fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
        let released = released::read(dir)?;
        let firsts = list_segments(dir)?;
        let mut next = firsts.first().copied().unwrap_or(released + 1).max(1);
        let mut end_of_last = 0;
        for (i, &first) in firsts.iter().enumerate() {
            let path = segment::path_of(dir, first);
            if first != next {
                return Err(JournalError::Damaged {
                    path,
                    offset: 0,
                    reason: format!("the segment begins at record {first} where {next} was due"),
                });
            }
            let mut reader = SegmentReader::open(&path, first)?;
            let torn = loop {
                match reader.next_record()? {
                    Next::Record(..) => {}
                    Next::End => break false,
                    Next::Torn => break true,
                }
            };
            let last = i + 1 == firsts.len();
            if torn && !last {
                return Err(JournalError::Damaged {
                    path,
                    offset: reader.valid_len(),
                    reason: "bytes that are no record before the last segment".into(),
                });
            }
            next = reader.expected();
            end_of_last = reader.valid_len();
        }
        let mut segments: VecDeque<u64> = firsts.into_iter().collect();
        let (file, file_len) = match segments.back() {
            Some(&first) if end_of_last >= segment::HEADER.len() as u64 => {
                let path = segment::path_of(dir, first);
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| JournalError::io(&path, e))?;
                // Cut off what a crash left of a record, so appends follow the last whole one.
                file.set_len(end_of_last)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| JournalError::io(&path, e))?;
                (file, end_of_last)
            }
            last => {
                // No segment yet, or one a crash left without its header.
                if last.is_some() {
                    segments.pop_back();
                }
                segments.push_back(next);
                (create_segment(dir, next)?, segment::HEADER.len() as u64)
            }
        };
        let replay = Replay {
            segments: segments
                .iter()
                .map(|&first| (segment::path_of(dir, first), first))
                .collect(),
            reader: None,
            after: released,
            until: next,
        };
        let mut journal = Journal {
            dir: dir.to_owned(),
            options,
            segments,
            file,
            file_len,
            buffer: Vec::with_capacity(1 << 20),
            next,
            released,
        };
        journal
            .file
            .seek(io::SeekFrom::End(0))
            .map_err(|e| JournalError::io(dir, e))?;
        Ok((journal, replay))
    }

    /// Buffers a record; returns its sequence number. It is kept once
    /// [`Journal::sync`] returns.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        let sequence = self.next;
        segment::encode(&mut self.buffer, sequence, payload)?;
        self.next += 1;
        Ok(sequence)
    }

    /// Writes every buffered record and waits until the disk has them;
    /// begins a new segment when the current one is full.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.active_path();
        self.file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| JournalError::io(&path, e))?;
        self.file_len += self.buffer.len() as u64;
        self.buffer.clear();
        if self.file_len >= self.options.segment_bytes {
            self.file = create_segment(&self.dir, self.next)?;
            self.file_len = segment::HEADER.len() as u64;
            self.segments.push_back(self.next);
        }
        Ok(())
    }

    /// Records that every record up to `through` is stored elsewhere:
    /// deletes the segments that hold only such records.
    pub fn release(&mut self, through: u64) -> Result<(), JournalError> {
        let through = through.min(self.next.saturating_sub(1));
        if through <= self.released {
            return Ok(());
        }
        released::write(&self.dir, through)?;
        self.released = through;
        // A segment's last record is the one before the next segment's first.
        while self.segments.len() > 1 && self.segments[1] <= through + 1 {
            let first = self.segments.pop_front().expect("two segments");
            let path = segment::path_of(&self.dir, first);
            fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
        }
        Ok(())
    }

    /// The sequence number the next record will get.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The highest sequence number released.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// How many segment files the journal has (the records not released
    /// and those sharing a segment with them).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active_path(&self) -> PathBuf {
        segment::path_of(&self.dir, *self.segments.back().expect("an active segment"))
    }
}

#[cfg(test)]
mod tests;
