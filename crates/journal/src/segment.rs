//! One file of the journal: a header, then records, each
//! `[length u32][crc32 u32][sequence u64][payload]` (little-endian), the
//! checksum taken over the sequence number and the payload.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::JournalError;

/// What every segment file opens with: a magic number and the format version.
pub(crate) const HEADER: &[u8; 8] = b"ANJRNL01";
/// Bytes of a record before its payload.
pub(crate) const RECORD_HEADER: usize = 16;
/// The file name suffix of segments.
pub(crate) const SUFFIX: &str = ".journal";

/// The path of the segment whose first record is `first`.
pub(crate) fn path_of(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SUFFIX}"))
}

/// The first sequence number a segment's file name gives.
pub(crate) fn first_of(name: &str) -> Option<u64> {
    name.strip_suffix(SUFFIX)?.parse().ok()
}

fn checksum(sequence: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one record to `buffer`, as it is written to a segment.
pub(crate) fn encode(
    buffer: &mut Vec<u8>,
    sequence: u64,
    payload: &[u8],
) -> Result<(), JournalError> {
    let length =
        u32::try_from(payload.len()).map_err(|_| JournalError::RecordTooLarge(payload.len()))?;
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&checksum(sequence, payload).to_le_bytes());
    buffer.extend_from_slice(&sequence.to_le_bytes());
    buffer.extend_from_slice(payload);
    Ok(())
}

/// A segment read from its start.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Bytes read up to the end of the last whole record.
    valid_len: u64,
    /// The sequence number the next record must have.
    expected: u64,
}

/// What reading the next record of a segment found.
pub(crate) enum Next {
    /// A whole record, checksum verified.
    Record(u64, Vec<u8>),
    /// The end of the segment, after its last whole record.
    End,
    /// Bytes past the last whole record that are no record: a write cut
    /// short (only the last segment may end so).
    Torn,
}

impl SegmentReader {
    /// Opens the segment whose first record is `first`.
    pub(crate) fn open(path: &Path, first: u64) -> Result<Self, JournalError> {
        let file = File::open(path).map_err(|e| JournalError::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0_u8; HEADER.len()];
        let valid_len = match reader.read_exact(&mut header) {
            Ok(()) if &header == HEADER => HEADER.len() as u64,
            Ok(()) => {
                return Err(JournalError::Damaged {
                    path: path.to_owned(),
                    offset: 0,
                    reason: "not a journal segment".into(),
                })
            }
            // A segment created but never written: no record in it.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(JournalError::io(path, e)),
        };
        Ok(SegmentReader {
            path: path.to_owned(),
            reader,
            valid_len,
            expected: first,
        })
    }

    /// Bytes of the segment up to the end of its last whole record read.
    pub(crate) fn valid_len(&self) -> u64 {
        self.valid_len
    }

    /// The sequence number the next record would have.
    pub(crate) fn expected(&self) -> u64 {
        self.expected
    }

    /// Reads the next record.
    pub(crate) fn next_record(&mut self) -> Result<Next, JournalError> {
        if self.valid_len == 0 {
            return Ok(Next::End);
        }
        let mut header = [0_u8; RECORD_HEADER];
        match read_fully(&mut self.reader, &mut header)
            .map_err(|e| JournalError::io(&self.path, e))?
        {
            0 => return Ok(Next::End),
            n if n < RECORD_HEADER => return Ok(Next::Torn),
            _ => {}
        }
        let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let sequence = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let mut payload = vec![0_u8; length];
        let read = read_fully(&mut self.reader, &mut payload)
            .map_err(|e| JournalError::io(&self.path, e))?;
        if read < length || checksum(sequence, &payload) != crc {
            return Ok(Next::Torn);
        }
        if sequence != self.expected {
            return Err(JournalError::Damaged {
                path: self.path.clone(),
                offset: self.valid_len,
                reason: format!("record {sequence} where {} was due", self.expected),
            });
        }
        self.expected += 1;
        self.valid_len += (RECORD_HEADER + length) as u64;
        Ok(Next::Record(sequence, payload))
    }
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_fully(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
