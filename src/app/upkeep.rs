//! Keeps what storage derives from events at write time current: the kept
//! sessions and the hourly rollups. In the background after start, each
//! project's are built (a step at a time, so that writes go on between
//! steps) when the store has none (sessions: none cut with the project's
//! timeout), and every second what writes touched is refreshed. Reads never
//! wait for it, and it leaves the writer to writes most of the time (see
//! [`REFRESH_SHARE`]): until a project's are built, queries read its events; what
//! writes touched since the last refresh is read from events (sessions) or
//! from the writes' own deltas (rollups).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::ProjectRegistry;
use crate::storage::Repository;

/// Shortest time between refreshes.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A refresh round holds the writer for at most one part in this many of
/// its time: writes come first, and reads are exact however late a refresh.
const REFRESH_SHARE: u32 = 10;
/// A build round holds the writer for at most one part in this many.
const BUILD_SHARE: u32 = 2;

/// The pause after a round that took `took`.
fn pause_after(building: bool, took: Duration) -> Duration {
    if building {
        took * (BUILD_SHARE - 1)
    } else {
        (took * (REFRESH_SHARE - 1)).max(REFRESH_EVERY)
    }
}

/// The upkeep of one store's kept sessions and rollups.
pub struct StoreUpkeep {
    repository: Arc<dyn Repository>,
    projects: Arc<ProjectRegistry>,
    /// Whether each (project, what) was ready at the last round.
    ready: std::sync::Mutex<std::collections::HashMap<(String, Derived), bool>>,
}

/// What storage derives from events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Derived {
    Sessions,
    Rollups,
}

impl Derived {
    fn name(self) -> &'static str {
        match self {
            Derived::Sessions => "kept sessions",
            Derived::Rollups => "rollups",
        }
    }
}

impl StoreUpkeep {
    /// The upkeep of the configured projects' sessions and rollups.
    pub fn new(repository: Arc<dyn Repository>, projects: Arc<ProjectRegistry>) -> Self {
        StoreUpkeep {
            repository,
            projects,
            ready: std::sync::Mutex::default(),
        }
    }

    /// Builds and refreshes until `stop`; storage errors are logged and the
    /// work is tried again at the next round.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let started = std::time::Instant::now();
            let building = self.round().await;
            let pause = pause_after(building, started.elapsed());
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: a build step for each project whose sessions or rollups
    /// are not ready, then a refresh of both; whether a build goes on.
    pub async fn round(&self) -> bool {
        let mut building = false;
        for project in self.projects.projects() {
            let sessions = self
                .repository
                .keep_sessions(&project.id, project.session_timeout)
                .await;
            let rollups = self.repository.keep_rollups(&project.id).await;
            for (derived, step) in [(Derived::Sessions, sessions), (Derived::Rollups, rollups)] {
                match step {
                    Ok(ready) => {
                        building |= !ready;
                        self.note(&project.id, derived, ready);
                    }
                    Err(error) => {
                        tracing::warn!(project = %project.id, %error, "building {} failed", derived.name());
                    }
                }
            }
        }
        let started = std::time::Instant::now();
        if let Err(error) = self.repository.refresh_sessions().await {
            tracing::warn!(%error, "refreshing kept sessions failed");
        }
        let sessions_ms = started.elapsed().as_millis();
        if let Err(error) = self.repository.refresh_rollups().await {
            tracing::warn!(%error, "refreshing rollups failed");
        }
        tracing::debug!(
            sessions_ms,
            rollups_ms = started.elapsed().as_millis() - sessions_ms,
            "refreshed"
        );
        building
    }

    /// Logs whether a project's sessions or rollups are ready, at the first
    /// round and whenever that changes.
    fn note(&self, project_id: &str, derived: Derived, ready: bool) {
        let mut states = self
            .ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if states.insert((project_id.to_owned(), derived), ready) == Some(ready) {
            return;
        }
        let what = derived.name();
        if ready {
            tracing::info!(project = %project_id, "{what} ready");
        } else {
            tracing::info!(project = %project_id, "building {what}");
        }
    }
}
