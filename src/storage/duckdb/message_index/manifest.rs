//! The manifest: which runs make up the index, the last write all of whose
//! keys are in them, and the file the index belongs to. Replaced whole and
//! atomically (a new file synced, renamed over the old, the directory
//! synced), after the runs it names are synced.
//!
//! ```text
//! analytics message index 1
//! file_id <text>
//! applied <write number, or "none">
//! next_run <number>
//! run <shard> <file name>
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

const HEADER: &str = "analytics message index 1";
/// The manifest's file name.
pub(super) const MANIFEST: &str = "MANIFEST";

/// What the manifest says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Manifest {
    pub file_id: Option<String>,
    pub applied: Option<u64>,
    pub next_run: u64,
    /// Each run's shard and file name, a shard's largest first.
    pub runs: Vec<(usize, String)>,
}

fn damaged(line: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the message index manifest: unexpected line {line:?}"),
    )
}

impl Manifest {
    /// The manifest in `directory`; the empty one when there is none.
    pub(super) fn read(directory: &Path) -> io::Result<Manifest> {
        let text = match std::fs::read_to_string(directory.join(MANIFEST)) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(error) => return Err(error),
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(damaged(text.lines().next().unwrap_or("")));
        }
        let mut manifest = Manifest::default();
        for line in lines {
            let (word, rest) = line.split_once(' ').ok_or_else(|| damaged(line))?;
            match word {
                "file_id" => manifest.file_id = Some(rest.to_owned()),
                "applied" if rest == "none" => manifest.applied = None,
                "applied" => manifest.applied = Some(rest.parse().map_err(|_| damaged(line))?),
                "next_run" => manifest.next_run = rest.parse().map_err(|_| damaged(line))?,
                "run" => {
                    let (shard, name) = rest.split_once(' ').ok_or_else(|| damaged(line))?;
                    let shard = shard.parse().map_err(|_| damaged(line))?;
                    manifest.runs.push((shard, name.to_owned()));
                }
                _ => return Err(damaged(line)),
            }
        }
        Ok(manifest)
    }

    /// Replaces the manifest in `directory` with this one.
    pub(super) fn write(&self, directory: &Path) -> io::Result<()> {
        let mut text = format!("{HEADER}\n");
        if let Some(id) = &self.file_id {
            text.push_str(&format!("file_id {id}\n"));
        }
        match self.applied {
            Some(write) => text.push_str(&format!("applied {write}\n")),
            None => text.push_str("applied none\n"),
        }
        text.push_str(&format!("next_run {}\n", self.next_run));
        for (shard, name) in &self.runs {
            text.push_str(&format!("run {shard} {name}\n"));
        }
        let temporary = directory.join(format!("{MANIFEST}.new"));
        let mut file = File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        std::fs::rename(&temporary, directory.join(MANIFEST))?;
        File::open(directory)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), Manifest::default());
        let manifest = Manifest {
            file_id: Some("f-1".into()),
            applied: Some(42),
            next_run: 9,
            runs: vec![(0, "r-3.run".into()), (63, "r-8.run".into())],
        };
        manifest.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), manifest);
        std::fs::write(dir.path().join(MANIFEST), "something else\n").unwrap();
        assert!(Manifest::read(dir.path()).is_err());
    }
}
