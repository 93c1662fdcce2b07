//! The embedded DuckDB backend: one file, no server.
//!
//! Writes go through one connection, serialised by a mutex: each batch is
//! appended (Arrow, columnar) straight into `events` in one transaction. When
//! the primary key on `(project_id, message_id)` refuses it because it repeats a
//! stored `messageId`, the batch goes through a temporary staging table and
//! `INSERT OR IGNORE` instead, which drops the duplicates. Reads use their own
//! connections to the same database and never wait for writes.

mod batch;
mod export;
mod query;
pub mod schema;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::Connection;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::analysis::{TimelineEvent, TimelineRequest};
use crate::domain::query::{QueryPlan, QueryRows, TimeRange};
use crate::domain::Event;
use crate::storage::{
    first_occurrences, EventChunks, ExportRequest, InsertOutcome, Repository, StorageError,
};

/// Tuning of the DuckDB database.
#[derive(Debug, Clone, Default)]
pub struct DuckDbOptions {
    /// DuckDB `memory_limit`, e.g. `"2GB"`.
    pub memory_limit: Option<String>,
}

/// Events stored in an embedded DuckDB file.
pub struct DuckDbRepository {
    path: PathBuf,
    writer: Arc<Mutex<Option<Writer>>>,
    readers: Arc<Mutex<Option<Connection>>>,
}

fn backend(error: duckdb::Error) -> StorageError {
    StorageError::Backend(error.to_string())
}

fn join_error(error: tokio::task::JoinError) -> StorageError {
    StorageError::Backend(format!("storage task failed: {error}"))
}

fn closed() -> StorageError {
    StorageError::Unavailable("the database is closed".into())
}

/// The one connection that writes, with the user numbers it hands out.
struct Writer {
    conn: Connection,
    users: users::UserDirectory,
}

fn lock<T>(slot: &Mutex<Option<T>>) -> MutexGuard<'_, Option<T>> {
    // A panic while holding the lock leaves the connection usable: DuckDB rolls back
    // the open transaction when the next one begins.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DuckDbRepository {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path, options: &DuckDbOptions) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StorageError::Backend(format!("creating directory {}: {e}", parent.display()))
            })?;
        }
        let writer = Self::connect(path, options)?;
        let had_person_links = schema::applied_versions(&writer)
            .is_ok_and(|versions| versions.contains(&schema::PERSON_LINKS_VERSION));
        schema::migrate_to(&writer, schema::latest_version())?;
        writer
            .execute_batch("CREATE TEMP TABLE staging AS SELECT * FROM events LIMIT 0;")
            .map_err(backend)?;
        let readers = writer.try_clone().map_err(backend)?;
        let mut users = users::UserDirectory::load(&writer)?;
        if !had_person_links {
            let links = users.links_of_stored_events(&writer)?;
            in_transaction(&writer, || users::store(&writer, &links))?;
        }
        Ok(Self {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(Some(Writer {
                conn: writer,
                users,
            }))),
            readers: Arc::new(Mutex::new(Some(readers))),
        })
    }

    /// Opens the file without migrating it (for inspecting or preparing old schemas).
    pub fn connect(path: &Path, options: &DuckDbOptions) -> Result<Connection, StorageError> {
        // No extension is ever downloaded: the service must work offline.
        let mut config = duckdb::Config::default()
            .enable_autoload_extension(false)
            .and_then(|c| c.with("autoinstall_known_extensions", "false"))
            .map_err(backend)?;
        if let Some(limit) = &options.memory_limit {
            config = config.max_memory(limit).map_err(backend)?;
        }
        Connection::open_with_flags(path, config)
            .map_err(|e| StorageError::Unavailable(format!("opening {}: {e}", path.display())))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> Result<Connection, StorageError> {
        lock(&self.readers)
            .as_ref()
            .ok_or_else(closed)?
            .try_clone()
            .map_err(backend)
    }
}

impl From<duckdb::Error> for StorageError {
    fn from(error: duckdb::Error) -> Self {
        backend(error)
    }
}

/// Runs `body` in a transaction: committed if it succeeds, rolled back if not.
fn in_transaction<T, E: From<duckdb::Error>>(
    conn: &Connection,
    body: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("BEGIN TRANSACTION;")?;
    match body() {
        Ok(value) => {
            conn.execute_batch("COMMIT;")?;
            Ok(value)
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK;");
            Err(error)
        }
    }
}

/// Where a batch is appended.
enum Target {
    /// The `events` table itself.
    Events,
    /// The connection's temporary staging table.
    Staging,
}

fn append(conn: &Connection, target: Target, batch: RecordBatch) -> Result<(), StorageError> {
    let mut appender = match target {
        Target::Events => conn.appender("events"),
        Target::Staging => conn.appender_to_catalog_and_db("staging", "temp", "main"),
    }
    .map_err(backend)?;
    appender.append_record_batch(batch).map_err(backend)?;
    appender.flush().map_err(backend)
}

/// Writes a batch whose events have distinct `(project, messageId)`; returns how many were new.
///
/// The common case, no event stored before, appends straight into `events`:
/// one write. When the primary key refuses the append (a retried event), the
/// transaction is rolled back and the batch goes through the staging table
/// with `INSERT OR IGNORE`, which skips the stored ones.
fn write_batch(writer: &mut Writer, events: &[Event]) -> Result<usize, StorageError> {
    let assignment = writer.users.assign(events);
    let written = write_numbered(&writer.conn, events, &assignment);
    if written.is_err() {
        writer.users.forget(&assignment);
    }
    written
}

fn write_numbered(
    conn: &Connection,
    events: &[Event],
    assignment: &users::Assignment,
) -> Result<usize, StorageError> {
    let record_batch = batch::events_to_record_batch(events, &assignment.numbers)
        .map_err(|e| StorageError::Backend(format!("building the batch: {e}")))?;
    let direct = in_transaction(conn, || {
        users::store(conn, assignment)?;
        append(conn, Target::Events, record_batch.clone())?;
        Ok(events.len())
    });
    match direct {
        Ok(inserted) => Ok(inserted),
        Err(StorageError::Backend(message)) if is_duplicate_key(&message) => {
            in_transaction(conn, || {
                users::store(conn, assignment)?;
                append(conn, Target::Staging, record_batch)?;
                let inserted = conn
                    .execute("INSERT OR IGNORE INTO events SELECT * FROM staging", [])
                    .map_err(backend)?;
                conn.execute("DELETE FROM staging", []).map_err(backend)?;
                Ok(inserted)
            })
        }
        Err(error) => Err(error),
    }
}

fn is_duplicate_key(message: &str) -> bool {
    message.contains("Duplicate key") || message.contains("PRIMARY KEY or UNIQUE constraint")
}

#[async_trait]
impl Repository for DuckDbRepository {
    async fn insert_batch(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let deduplicated = first_occurrences(&events);
            let unique = deduplicated.as_deref().unwrap_or(&events);
            let mut guard = lock(&writer);
            let writer = guard.as_mut().ok_or_else(closed)?;
            let inserted = write_batch(writer, unique)?;
            Ok(InsertOutcome {
                inserted,
                duplicates: events.len() - inserted,
            })
        })
        .await
        .map_err(join_error)?
    }

    fn export(&self, request: ExportRequest) -> EventChunks {
        let (sender, receiver) = mpsc::channel(2);
        match self.reader() {
            Ok(conn) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = export::stream_events(&conn, &request, &sender) {
                        let _ = sender.blocking_send(Err(error));
                    }
                });
            }
            Err(error) => {
                let _ = sender.try_send(Err(error));
            }
        }
        Box::pin(ReceiverStream::new(receiver))
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let conn = self.reader()?;
        tokio::task::spawn_blocking(move || {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i32>(0))
                .map(drop)
                .map_err(backend)
        })
        .await
        .map_err(join_error)?
    }

    async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StorageError> {
        let writer = self.writer.clone();
        let (name, value) = (name.to_owned(), value.to_owned());
        tokio::task::spawn_blocking(move || {
            let guard = lock(&writer);
            let conn = &guard.as_ref().ok_or_else(closed)?.conn;
            conn.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)",
                duckdb::params![name, value],
            )
            .map_err(backend)?;
            conn.query_row(
                "SELECT value FROM settings WHERE name = ?",
                duckdb::params![name],
                |row| row.get::<_, String>(0),
            )
            .map_err(backend)
        })
        .await
        .map_err(join_error)?
    }

    async fn query(&self, plan: &QueryPlan) -> Result<QueryRows, StorageError> {
        let conn = self.reader()?;
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || query::run(&conn, &plan))
            .await
            .map_err(join_error)?
    }

    async fn timelines(
        &self,
        request: &TimelineRequest,
    ) -> Result<Vec<TimelineEvent>, StorageError> {
        let conn = self.reader()?;
        let request = request.clone();
        tokio::task::spawn_blocking(move || query::timelines(&conn, &request))
            .await
            .map_err(join_error)?
    }

    async fn time_bounds(&self, project_id: &str) -> Result<Option<TimeRange>, StorageError> {
        let conn = self.reader()?;
        let project_id = project_id.to_owned();
        tokio::task::spawn_blocking(move || query::time_bounds(&conn, &project_id))
            .await
            .map_err(join_error)?
    }

    async fn newest_received_at(
        &self,
        project_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let conn = self.reader()?;
        let project_id = project_id.to_owned();
        tokio::task::spawn_blocking(move || query::newest_received_at(&conn, &project_id, since))
            .await
            .map_err(join_error)?
    }

    async fn property_keys(
        &self,
        project_id: &str,
        range: TimeRange,
        event: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        let conn = self.reader()?;
        let (project_id, event) = (project_id.to_owned(), event.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            query::property_keys(&conn, &project_id, range, event.as_deref(), limit)
        })
        .await
        .map_err(join_error)?
    }

    async fn close(&self) -> Result<(), StorageError> {
        let writer = self.writer.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            lock(&readers).take();
            let Some(Writer { conn, .. }) = lock(&writer).take() else {
                return Ok(());
            };
            conn.execute_batch("CHECKPOINT;").map_err(backend)?;
            conn.close().map_err(|(_, e)| backend(e))
        })
        .await
        .map_err(join_error)?
    }
}
