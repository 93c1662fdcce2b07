//! The number of the last record released, kept in the file `released`
//! of the journal's directory, replaced whole (written aside, synced, renamed).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::{sync_dir, JournalError};

const NAME: &str = "released";

/// The last record released; 0 when none was.
pub(crate) fn read(dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join(NAME);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| JournalError::Damaged {
            path,
            offset: 0,
            reason: format!("{text:?} is not a record number"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(JournalError::io(&path, e)),
    }
}

/// Keeps `through` as the last record released.
pub(crate) fn write(dir: &Path, through: u64) -> Result<(), JournalError> {
    let aside = dir.join(format!("{NAME}.new"));
    let mut file = File::create(&aside).map_err(|e| JournalError::io(&aside, e))?;
    file.write_all(through.to_string().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io(&aside, e))?;
    let path = dir.join(NAME);
    fs::rename(&aside, &path).map_err(|e| JournalError::io(&path, e))?;
    sync_dir(dir)
}
