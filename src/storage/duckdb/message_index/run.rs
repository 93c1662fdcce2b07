//! Runs: files of message keys in ascending order, written once and never
//! changed. A run ends with the first key of each page of [`PAGE_KEYS`]
//! keys and a footer, so that opening it reads only those, and a lookup
//! reads one page.
//!
//! ```text
//! [key; len] (16 bytes each, big-endian) [first key of each page; pages] [len u64] [pages u64] [MAGIC]
//! ```

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Keys per page: 4 KiB.
const PAGE_KEYS: u64 = 256;
const KEY_BYTES: u64 = 16;
const MAGIC: &[u8; 8] = b"ANMSGRN1";
const FOOTER_BYTES: u64 = 24;

/// An open run.
pub(super) struct Run {
    path: PathBuf,
    file: File,
    len: u64,
    /// The first key of each page.
    pages: Vec<u128>,
}

fn damaged(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

impl Run {
    /// Writes `keys`, ascending and distinct, to a new file at `path`, synced.
    pub(super) fn write(
        path: &Path,
        keys: impl Iterator<Item = io::Result<u128>>,
    ) -> io::Result<Run> {
        let file = File::create_new(path)?;
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        let (mut len, mut pages, mut last) = (0u64, Vec::new(), None);
        for key in keys {
            let key = key?;
            if last.is_some_and(|last| key <= last) {
                return Err(damaged(path, "keys out of order"));
            }
            if len % PAGE_KEYS == 0 {
                pages.push(key);
            }
            out.write_all(&key.to_be_bytes())?;
            (len, last) = (len + 1, Some(key));
        }
        for first in &pages {
            out.write_all(&first.to_be_bytes())?;
        }
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&(pages.len() as u64).to_le_bytes())?;
        out.write_all(MAGIC)?;
        out.flush()?;
        drop(out);
        file.sync_data()?;
        Ok(Run {
            path: path.to_owned(),
            file,
            len,
            pages,
        })
    }

    /// Opens the run at `path`, reading its footer and page index.
    pub(super) fn open(path: &Path) -> io::Result<Run> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        if size < FOOTER_BYTES {
            return Err(damaged(path, "shorter than a footer"));
        }
        let mut footer = [0u8; FOOTER_BYTES as usize];
        file.read_exact_at(&mut footer, size - FOOTER_BYTES)?;
        let number =
            |at: usize| u64::from_le_bytes(footer[at..at + 8].try_into().expect("8 bytes"));
        let (len, page_count) = (number(0), number(8));
        if &footer[16..] != MAGIC
            || page_count != len.div_ceil(PAGE_KEYS)
            || size != (len + page_count) * KEY_BYTES + FOOTER_BYTES
        {
            return Err(damaged(path, "not a run of message keys"));
        }
        let mut index = vec![0u8; (page_count * KEY_BYTES) as usize];
        file.read_exact_at(&mut index, len * KEY_BYTES)?;
        let pages = index.chunks_exact(16).map(key_of).collect();
        Ok(Run {
            path: path.to_owned(),
            file,
            len,
            pages,
        })
    }

    /// The file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// How many keys it holds.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Bytes of memory its page index holds.
    pub(super) fn index_bytes(&self) -> usize {
        self.pages.len() * KEY_BYTES as usize
    }

    /// Whether it holds `key`: one page read.
    pub(super) fn contains(&self, key: u128) -> io::Result<bool> {
        let page = self.pages.partition_point(|first| *first <= key);
        let Some(page) = page.checked_sub(1) else {
            return Ok(false);
        };
        let first = page as u64 * PAGE_KEYS;
        let keys = PAGE_KEYS.min(self.len - first);
        let mut bytes = vec![0u8; (keys * KEY_BYTES) as usize];
        self.file.read_exact_at(&mut bytes, first * KEY_BYTES)?;
        let keys: Vec<u128> = bytes.chunks_exact(16).map(key_of).collect();
        Ok(keys.binary_search(&key).is_ok())
    }

    /// Its keys in order, read sequentially.
    pub(super) fn keys(&self) -> io::Result<impl Iterator<Item = io::Result<u128>>> {
        let mut reader = BufReader::with_capacity(1 << 16, File::open(&self.path)?);
        let mut left = self.len;
        Ok(std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let mut key = [0u8; 16];
            Some(
                reader
                    .read_exact(&mut key)
                    .map(|()| u128::from_be_bytes(key)),
            )
        }))
    }
}

fn key_of(bytes: &[u8]) -> u128 {
    u128::from_be_bytes(bytes.try_into().expect("16 bytes"))
}

/// The keys of two ascending iterators in one ascending sequence, each once.
pub(super) fn merged(
    a: impl Iterator<Item = io::Result<u128>>,
    b: impl Iterator<Item = io::Result<u128>>,
) -> impl Iterator<Item = io::Result<u128>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let (take_a, take_b) = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(Ok(_)), None) => (true, false),
            (None, Some(_)) | (_, Some(Err(_))) => (false, true),
            (Some(Ok(x)), Some(Ok(y))) => (x <= y, y <= x),
        };
        match (take_a, take_b) {
            (true, true) => {
                b.next();
                a.next()
            }
            (true, false) => a.next(),
            _ => b.next(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(keys: &[u128]) -> impl Iterator<Item = io::Result<u128>> + '_ {
        keys.iter().copied().map(Ok)
    }

    #[test]
    fn a_run_finds_its_keys_after_a_reopen_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.run");
        // Three pages and a bit, spread over the key space.
        let keys: Vec<u128> = (0..800u128).map(|i| i * (u128::MAX / 1_000) + 7).collect();
        let written = Run::write(&path, ok(&keys)).unwrap();
        assert_eq!(written.len(), 800);
        let run = Run::open(&path).unwrap();
        assert_eq!(run.len(), 800);
        for key in &keys {
            assert!(run.contains(*key).unwrap(), "{key}");
            assert!(!run.contains(key + 1).unwrap());
        }
        assert!(!run.contains(0).unwrap());
        assert!(!run.contains(u128::MAX).unwrap());
        let read: Vec<u128> = run.keys().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, keys);
    }

    #[test]
    fn an_empty_run_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let run = Run::write(&dir.path().join("e.run"), ok(&[])).unwrap();
        assert!(!run.contains(5).unwrap());
        assert_eq!(Run::open(run.path()).unwrap().len(), 0);
    }

    #[test]
    fn damaged_and_unordered_runs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.run");
        assert!(Run::write(&path, ok(&[3, 2])).is_err());
        let path = dir.path().join("c.run");
        Run::write(&path, ok(&[1, 2, 3])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Run::open(&path).is_err());
    }

    #[test]
    fn merging_keeps_order_and_drops_repeats() {
        let merged: Vec<u128> = merged(ok(&[1, 4, 6, 9]), ok(&[2, 4, 10]))
            .map(Result::unwrap)
            .collect();
        assert_eq!(merged, vec![1, 2, 4, 6, 9, 10]);
    }
}
