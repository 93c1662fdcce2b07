//! Rows into a table from Arrow columns: DuckDB's fastest way in, used by
//! every write of many rows.

use duckdb::arrow::array::ArrayRef;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::Connection;

use super::errors::building;
use crate::storage::StorageError;

/// A table rows are appended to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table<'a> {
    /// A table of the database file.
    File(&'a str),
    /// One of the connection's temporary tables.
    Temporary(&'a str),
}

/// Appends a batch of rows to `table`, in the caller's transaction if it
/// holds one.
pub(super) fn append_batch(
    conn: &Connection,
    table: Table<'_>,
    batch: RecordBatch,
) -> Result<(), StorageError> {
    let mut appender = match table {
        Table::File(name) => conn.appender(name),
        Table::Temporary(name) => conn.appender_to_catalog_and_db(name, "temp", "main"),
    }?;
    appender.append_record_batch(batch)?;
    appender.flush()?;
    Ok(())
}

/// Appends rows given as named columns, in the table's order, to `table`;
/// `rows` names them in errors.
pub(super) fn append_columns<'n>(
    conn: &Connection,
    table: Table<'_>,
    rows: &str,
    columns: impl IntoIterator<Item = (&'n str, ArrayRef)>,
) -> Result<(), StorageError> {
    let batch = RecordBatch::try_from_iter(columns).map_err(|e| building(rows, e))?;
    append_batch(conn, table, batch)
}
