//! DuckDB's errors, sorted into the kinds callers act on.
//!
//! The `duckdb` crate hands statement errors over as DuckDB's message, whose
//! first words name DuckDB's exception type (`IO Error: ...`, `Out of Memory
//! Error: ...`); that type is the only structured part. Types that a later
//! attempt can overcome (the disk, memory, an interrupted or conflicting
//! transaction, a lost connection) are [`StorageError::Unavailable`]; every
//! other type is a refusal of the statement or its data
//! ([`StorageError::Rejected`]). Duplicate `messageId`s are never told apart
//! by their error: see the write path.

use crate::storage::StorageError;

/// DuckDB exception types after which a retry may succeed (a `FATAL` error
/// invalidates the database until the service restarts: not the data's fault).
const TRANSIENT_TYPES: [&str; 7] = [
    "IO",
    "Out of Memory",
    "INTERRUPT",
    "TransactionContext",
    "Connection",
    "Network",
    "FATAL",
];

/// The kind of a DuckDB error.
pub(super) fn classify(error: duckdb::Error) -> StorageError {
    let message = error.to_string();
    if is_transient(&message) {
        StorageError::Unavailable(message)
    } else {
        StorageError::Rejected(message)
    }
}

fn is_transient(message: &str) -> bool {
    let exception_type = message
        .split_once(" Error:")
        .map_or("", |(exception_type, _)| exception_type.trim());
    TRANSIENT_TYPES.contains(&exception_type)
}

impl From<duckdb::Error> for StorageError {
    fn from(error: duckdb::Error) -> Self {
        classify(error)
    }
}

/// The error of an Arrow batch that could not be built: a defect here.
pub(super) fn building(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!("building {what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_exception_types_are_told_from_refusals() {
        assert!(is_transient(
            "IO Error: could not write file \"x.wal\": No space left on device"
        ));
        assert!(is_transient(
            "Out of Memory Error: failed to allocate data of size 1.2 GiB"
        ));
        assert!(is_transient("INTERRUPT Error: Interrupted!"));
        assert!(is_transient(
            "TransactionContext Error: Catalog write-write conflict"
        ));
        assert!(!is_transient(
            "Constraint Error: NOT NULL constraint failed: events.type"
        ));
        assert!(!is_transient(
            "Conversion Error: Could not convert string 'x' to INT32"
        ));
        assert!(!is_transient(
            "Binder Error: Referenced column \"nope\" not found"
        ));
        assert!(!is_transient("something else entirely"));
    }
}
