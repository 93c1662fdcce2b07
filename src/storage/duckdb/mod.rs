//! The embedded DuckDB backend: one file, no server.
//!
//! Writes go through one connection, serialised by a mutex: each batch's
//! events not stored before (the [`message_index`] beside the file knows
//! every stored message) are appended (Arrow, columnar) straight into
//! `events` in one transaction (see [`write`]). Reads use their own
//! connections to the same database, never wait for writes, and run under
//! a budget: interrupted past their time
//! ([`reading`]). Exports stream from threads of their own, so that a slow
//! client holds none of the threads that writes run on.

mod append;
mod batch;
mod checkpoints;
mod errors;
mod export;
mod message_index;
mod query;
mod reading;
mod rollups;
pub mod schema;
mod sessions;
mod users;
mod visits;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use duckdb::Connection;
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::analysis::sessions::StoredSessions;
use crate::domain::analysis::TimelineRequest;
use crate::domain::query::{EventQuery, QueryRows, SessionQuery, TimeRange};
use crate::domain::visit::VisitFields;
use crate::domain::Event;
use crate::storage::{
    first_occurrences, EventChunks, ExportRequest, InsertOutcome, ReadBudget, Repository,
    StorageError, TimelineChunks,
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

/// Longest a readiness probe waits for `SELECT 1`.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

fn closed() -> StorageError {
    StorageError::Unavailable("the database is closed".into())
}

/// The one connection that writes, with the user numbers it hands out and
/// the index of the messages stored.
struct Writer {
    conn: Connection,
    users: users::UserDirectory,
    index: message_index::MessageIndex,
    /// The number of the last write stored (`events.write_seq`).
    last_write: u64,
    /// Whether the index missed a write's keys and must catch up first.
    index_behind: bool,
    /// When the next checkpoint is due.
    checkpoints: checkpoints::CheckpointSchedule,
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
                StorageError::Unavailable(format!("creating directory {}: {e}", parent.display()))
            })?;
        }
        let writer = Self::connect(path, options)?;
        let had_person_links = schema::applied_versions(&writer)
            .is_ok_and(|versions| versions.contains(&schema::PERSON_LINKS_VERSION));
        schema::migrate_to(&writer, schema::latest_version())?;
        let (index, last_write) =
            message_index::open_current(&writer, &message_index::directory_of(path))?;
        visits::prepare(&writer)?;
        users::prepare(&writer)?;
        let readers = writer.try_clone()?;
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
                index,
                last_write,
                index_behind: false,
                checkpoints: checkpoints::CheckpointSchedule::default(),
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
            .and_then(|c| c.with("checkpoint_threshold", checkpoints::WAL_CAP))?;
        if let Some(limit) = &options.memory_limit {
            config = config.max_memory(limit)?;
        }
        Connection::open_with_flags(path, config)
            .map_err(|e| StorageError::Unavailable(format!("opening {}: {e}", path.display())))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An event query's answer from the hourly rollups alone, in one
    /// snapshot; `None` when they do not answer it (see [`rollups`]).
    /// [`Repository::query`] answers from them whenever they do.
    pub async fn query_from_rollups(
        &self,
        query: &EventQuery,
    ) -> Result<Option<QueryRows>, StorageError> {
        let query = query.clone();
        self.read(ReadBudget::UNLIMITED, move |conn| {
            in_transaction(conn, || rollups::answer(conn, &query))
        })
        .await
    }

    fn reader(&self) -> Result<Connection, StorageError> {
        Ok(lock(&self.readers)
            .as_ref()
            .ok_or_else(closed)?
            .try_clone()?)
    }

    /// Runs `work` on the writer connection, off the async runtime.
    async fn on_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let guard = lock(&writer);
            work(&guard.as_ref().ok_or_else(closed)?.conn)
        })
        .await
        .map_err(StorageError::from_join)?
    }

    /// Runs `read` on a fresh reader connection under `budget`.
    async fn read<T: Send + 'static>(
        &self,
        budget: ReadBudget,
        read: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        reading::bounded(self.reader()?, budget, read).await
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

#[async_trait]
impl Repository for DuckDbRepository {
    async fn insert_batch(&self, events: Arc<[Event]>) -> Result<InsertOutcome, StorageError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let deduplicated = first_occurrences(&events);
            let unique = deduplicated.as_deref().unwrap_or(&events);
            let mut guard = lock(&writer);
            let writer = guard.as_mut().ok_or_else(closed)?;
            let inserted = write::write_batch(writer, unique)?;
            Ok(InsertOutcome {
                inserted,
                duplicates: events.len() - inserted,
            })
        })
        .await
        .map_err(StorageError::from_join)?
    }

    fn export(&self, request: ExportRequest) -> EventChunks {
        let conn = match self.reader() {
            Ok(conn) => conn,
            Err(error) => return stream::once(async move { Err(error) }).boxed(),
        };
        let (sender, receiver) = mpsc::channel(2);
        let spawned = std::thread::Builder::new()
            .name("duckdb-export".into())
            .spawn(move || {
                if let Err(error) = export::stream_events(&conn, &request, &sender) {
                    let _ = sender.blocking_send(Err(error));
                }
            });
        if let Err(error) = spawned {
            let error = StorageError::Unavailable(format!("starting an export thread: {error}"));
            return stream::once(async move { Err(error) }).boxed();
        }
        ReceiverStream::new(receiver).boxed()
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let budget = ReadBudget {
            timeout: PING_TIMEOUT,
            max_rows: 1,
        };
        self.read(budget, |conn| {
            Ok(conn
                .query_row("SELECT 1", [], |row| row.get::<_, i32>(0))
                .map(drop)?)
        })
        .await
    }

    async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StorageError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.on_writer(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)",
                duckdb::params![name, value],
            )?;
            Ok(conn.query_row(
                "SELECT value FROM settings WHERE name = ?",
                duckdb::params![name],
                |row| row.get::<_, String>(0),
            )?)
        })
        .await
    }

    async fn delete_setting(&self, name: &str) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.on_writer(move |conn| {
            conn.execute("DELETE FROM settings WHERE name = ?", duckdb::params![name])?;
            Ok(())
        })
        .await
    }

    async fn update_visits(
        &self,
        project_id: &str,
        visits: Vec<(String, VisitFields)>,
    ) -> Result<(), StorageError> {
        let project_id = project_id.to_owned();
        self.on_writer(move |conn| visits::update(conn, &project_id, &visits))
            .await
    }

    async fn query(
        &self,
        query: &EventQuery,
        budget: ReadBudget,
    ) -> Result<QueryRows, StorageError> {
        let query = query.clone();
        self.read(budget, move |conn| query::run(conn, &query))
            .await
    }

    fn timelines(&self, request: TimelineRequest, budget: ReadBudget) -> TimelineChunks {
        match self.reader() {
            Ok(conn) => reading::timelines(conn, request, budget),
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        }
    }

    async fn stored_sessions(
        &self,
        query: &SessionQuery,
        budget: ReadBudget,
    ) -> Result<Option<StoredSessions>, StorageError> {
        let query = query.clone();
        self.read(budget, move |conn| sessions::stored_sessions(conn, &query))
            .await
    }

    async fn keep_sessions(
        &self,
        project_id: &str,
        timeout: chrono::Duration,
    ) -> Result<bool, StorageError> {
        let project_id = project_id.to_owned();
        let reader = self.reader()?;
        self.on_writer(move |conn| sessions::build_step(conn, &reader, &project_id, timeout))
            .await
    }

    async fn refresh_sessions(&self) -> Result<(), StorageError> {
        self.on_writer(|conn| sessions::refresh(conn).map(drop))
            .await
    }

    async fn keep_rollups(&self, project_id: &str) -> Result<bool, StorageError> {
        let project_id = project_id.to_owned();
        self.on_writer(move |conn| rollups::build_step(conn, &project_id))
            .await
    }

    async fn refresh_rollups(&self) -> Result<(), StorageError> {
        self.on_writer(|conn| rollups::refresh(conn).map(drop))
            .await
    }

    async fn time_bounds(
        &self,
        project_id: &str,
        budget: ReadBudget,
    ) -> Result<Option<TimeRange>, StorageError> {
        let project_id = project_id.to_owned();
        self.read(budget, move |conn| query::time_bounds(conn, &project_id))
            .await
    }

    async fn newest_received_at(
        &self,
        project_id: &str,
        since: DateTime<Utc>,
        budget: ReadBudget,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let project_id = project_id.to_owned();
        self.read(budget, move |conn| {
            query::newest_received_at(conn, &project_id, since)
        })
        .await
    }

    async fn property_keys(
        &self,
        project_id: &str,
        range: TimeRange,
        event: Option<&str>,
        limit: usize,
        budget: ReadBudget,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        let (project_id, event) = (project_id.to_owned(), event.map(str::to_owned));
        self.read(budget, move |conn| {
            query::property_keys(conn, &project_id, range, event.as_deref(), limit)
        })
        .await
    }

    async fn close(&self) -> Result<(), StorageError> {
        let writer = self.writer.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            lock(&readers).take();
            let Some(Writer {
                conn, mut index, ..
            }) = lock(&writer).take()
            else {
                return Ok(());
            };
            index.sync()?;
            conn.execute_batch("CHECKPOINT;")?;
            conn.close().map_err(|(_, e)| StorageError::from(e))
        })
        .await
        .map_err(StorageError::from_join)?
    }
}
