//! Visit columns for events stored before enrichment derived them: once per
//! store, in the background after start, every event with no visit value
//! is enriched from what its stored `context` keeps (user agent, page URL
//! and referrer, campaign, and the IP where one was kept) and its columns
//! are set. A pass that does not finish (a restart, storage down) runs
//! again at the next start; enriching an event twice gives the same values.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::domain::segment::stored_client;
use crate::domain::visit::VisitFields;
use crate::domain::{Event, Project, ProjectRegistry};
use crate::enrich::Enricher;
use crate::storage::{ExportRequest, Repository, StorageError};

/// The setting that says whether the pass has run: `pending`, then `done`.
pub const SETTING: &str = "visit_backfill";
/// Events whose columns are set in one call to storage.
const UPDATES_PER_CALL: usize = 2_000;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Events read.
    pub examined: u64,
    /// Events whose visit columns were set.
    pub updated: u64,
}

/// The backfill of one store.
pub struct VisitBackfill {
    repository: Arc<dyn Repository>,
    enricher: Arc<Enricher>,
    projects: Arc<ProjectRegistry>,
}

impl VisitBackfill {
    /// A backfill of the configured projects' events.
    pub fn new(
        repository: Arc<dyn Repository>,
        enricher: Arc<Enricher>,
        projects: Arc<ProjectRegistry>,
    ) -> Self {
        VisitBackfill {
            repository,
            enricher,
            projects,
        }
    }

    /// Runs the pass unless it has run, logging what it did.
    pub async fn run(self, stop: CancellationToken) {
        match self.backfill(&stop).await {
            Ok(Some(report)) if report.updated > 0 => tracing::info!(
                examined = report.examined,
                updated = report.updated,
                "visit columns set for events stored before enrichment"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "visit backfill stopped; it runs again at the next start")
            }
        }
    }

    /// The pass: `None` when it has run before (or `stop` came first).
    pub async fn backfill(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<BackfillReport>, StorageError> {
        if self.repository.setting_or_init(SETTING, "pending").await? == "done" {
            return Ok(None);
        }
        let mut report = BackfillReport::default();
        for project in self.projects.projects() {
            if !self.project(project, stop, &mut report).await? {
                return Ok(None);
            }
        }
        self.mark_done().await?;
        Ok(Some(report))
    }

    /// One project's events; `false` when stopped.
    async fn project(
        &self,
        project: &Project,
        stop: &CancellationToken,
        report: &mut BackfillReport,
    ) -> Result<bool, StorageError> {
        let mut chunks = self.repository.export(ExportRequest {
            project_id: project.id.clone(),
            from: None,
            to: None,
            without_visit: true,
        });
        let mut updates = Vec::new();
        loop {
            let chunk = tokio::select! {
                () = stop.cancelled() => return Ok(false),
                chunk = chunks.next() => chunk,
            };
            let Some(chunk) = chunk else {
                break;
            };
            for mut event in chunk? {
                report.examined += 1;
                if !event.visit.is_empty() {
                    continue;
                }
                let visit = self.derive(project, &mut event);
                if !visit.is_empty() {
                    updates.push((event.message_id, visit));
                }
            }
            if updates.len() >= UPDATES_PER_CALL {
                report.updated += updates.len() as u64;
                self.repository
                    .update_visits(&project.id, std::mem::take(&mut updates))
                    .await?;
            }
        }
        drop(chunks);
        if !updates.is_empty() {
            report.updated += updates.len() as u64;
            self.repository.update_visits(&project.id, updates).await?;
        }
        Ok(true)
    }

    /// The visit of a stored event, from its stored context.
    fn derive(&self, project: &Project, event: &mut Event) -> VisitFields {
        let (user_agent, ip) = event
            .context
            .as_deref()
            .map(stored_client)
            .unwrap_or_default();
        event.context_fields.user_agent = user_agent;
        event.context_fields.ip = ip;
        // A bot stored before bots were dropped stays, marked as one.
        let _ = self.enricher.enrich(project, event);
        std::mem::take(&mut event.visit)
    }

    /// Records that the pass ran. Deleting a setting is applied in the
    /// background on some backends, so the new value is written once the
    /// old one is gone.
    async fn mark_done(&self) -> Result<(), StorageError> {
        self.repository.delete_setting(SETTING).await?;
        for _ in 0..50 {
            if self.repository.setting_or_init(SETTING, "done").await? == "done" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StorageError::Unavailable(format!(
            "the setting {SETTING} was not replaced"
        )))
    }
}
