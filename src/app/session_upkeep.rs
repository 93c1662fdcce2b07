//! Keeps the sessions that storage cuts at write time current: in the
//! background after start, each project's sessions are built (a step at a
//! time, so that writes go on between steps) when the store has none cut
//! with the project's timeout, and every second the sessions that writes
//! touched are recut. Reads never wait for it: until a project's sessions
//! are built, session queries fold its events; what writes touched since
//! the last refresh is read from events.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::ProjectRegistry;
use crate::storage::Repository;

/// Time between refreshes.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The upkeep of one store's kept sessions.
pub struct SessionUpkeep {
    repository: Arc<dyn Repository>,
    projects: Arc<ProjectRegistry>,
    /// Whether each project's sessions were ready at the last round.
    ready: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl SessionUpkeep {
    /// The upkeep of the configured projects' sessions.
    pub fn new(repository: Arc<dyn Repository>, projects: Arc<ProjectRegistry>) -> Self {
        SessionUpkeep {
            repository,
            projects,
            ready: std::sync::Mutex::default(),
        }
    }

    /// Builds and refreshes until `stop`; storage errors are logged and the
    /// work is tried again at the next round.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let building = self.round().await;
            let pause = if building {
                Duration::ZERO
            } else {
                REFRESH_EVERY
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: a build step for each project whose sessions are not
    /// ready, then a refresh; whether a build goes on.
    pub async fn round(&self) -> bool {
        let mut building = false;
        for project in self.projects.projects() {
            match self
                .repository
                .keep_sessions(&project.id, project.session_timeout)
                .await
            {
                Ok(ready) => {
                    building |= !ready;
                    self.note(&project.id, ready);
                }
                Err(error) => {
                    tracing::warn!(project = %project.id, %error, "building kept sessions failed");
                }
            }
        }
        if let Err(error) = self.repository.refresh_sessions().await {
            tracing::warn!(%error, "refreshing kept sessions failed");
        }
        building
    }

    /// Logs whether a project's sessions are ready, at the first round and
    /// whenever that changes.
    fn note(&self, project_id: &str, ready: bool) {
        let mut states = self
            .ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if states.insert(project_id.to_owned(), ready) == Some(ready) {
            return;
        }
        if ready {
            tracing::info!(project = %project_id, "kept sessions ready");
        } else {
            tracing::info!(project = %project_id, "building kept sessions");
        }
    }
}
