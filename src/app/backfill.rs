//! Visit columns for events stored before enrichment derived them: once per
//! store, in the background after start, every event with no visit value
//! is enriched from what its stored `context` keeps (user agent, page URL
//! and referrer, campaign, and the IP where one was kept) and its columns
//! are set. A pass that does not finish (a restart, storage down) runs
//! again at the next start; enriching an event twice gives the same values.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::domain::segment::stored_client;
use crate::domain::visit::VisitFields;
use crate::domain::{Event, Project, ProjectRegistry};
use crate::enrich::Enricher;
use crate::storage::{ExportRequest, ReadBudget, Repository, StorageError};

/// The setting that says whether the pass has run: `pending`, then `done`.
pub const SETTING: &str = "visit_backfill";
/// Events whose columns are set in one call to storage.
const UPDATES_PER_CALL: usize = 2_000;
/// Events read per window, about: the window's updates wait in memory
/// until its read is done.
const WINDOW_EVENTS: u64 = 50_000;
/// The first window, and the shortest and longest.
const FIRST_WINDOW: chrono::Duration = chrono::Duration::hours(1);
const MIN_WINDOW: chrono::Duration = chrono::Duration::minutes(1);
const MAX_WINDOW: chrono::Duration = chrono::Duration::days(30);

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

    /// One project's events, a window of time after another, so that no
    /// read stays open while its updates are written (a store keeps the
    /// versions an open read may still see); `false` when stopped.
    async fn project(
        &self,
        project: &Project,
        stop: &CancellationToken,
        report: &mut BackfillReport,
    ) -> Result<bool, StorageError> {
        let bounds_budget = ReadBudget {
            timeout: Duration::from_secs(600),
            max_rows: u64::MAX,
        };
        let Some(bounds) = self
            .repository
            .time_bounds(&project.id, bounds_budget)
            .await?
        else {
            return Ok(true);
        };
        let mut from = bounds.from;
        let mut window = FIRST_WINDOW;
        while from <= bounds.to {
            let to = from + window;
            let Some((examined, updates)) = self.window(project, from, to, stop).await? else {
                return Ok(false);
            };
            report.examined += examined;
            let mut updates = updates.into_iter().peekable();
            while updates.peek().is_some() {
                if stop.is_cancelled() {
                    // What is left is set at the next start.
                    return Ok(false);
                }
                let part: Vec<_> = updates.by_ref().take(UPDATES_PER_CALL).collect();
                report.updated += part.len() as u64;
                self.repository.update_visits(&project.id, part).await?;
            }
            // Windows of about WINDOW_EVENTS events, whatever the traffic.
            window = if examined < WINDOW_EVENTS / 4 {
                (window * 2).min(MAX_WINDOW)
            } else if examined > WINDOW_EVENTS {
                (window / 2).max(MIN_WINDOW)
            } else {
                window
            };
            from = to;
        }
        Ok(true)
    }

    /// The events of `[from, to)` without visit values, and the columns
    /// derived for those that get any; `None` when stopped.
    async fn window(
        &self,
        project: &Project,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<Option<(u64, Vec<(String, VisitFields)>)>, StorageError> {
        let mut chunks = self.repository.export(ExportRequest {
            project_id: project.id.clone(),
            from: Some(from),
            to: Some(to),
            without_visit: true,
        });
        let (mut examined, mut updates) = (0, Vec::new());
        loop {
            let chunk = tokio::select! {
                () = stop.cancelled() => return Ok(None),
                chunk = chunks.next() => chunk,
            };
            let Some(chunk) = chunk else {
                break;
            };
            for mut event in chunk? {
                examined += 1;
                if !event.visit.is_empty() {
                    continue;
                }
                let visit = self.derive(project, &mut event);
                if !visit.is_empty() {
                    updates.push((event.message_id, visit));
                }
            }
        }
        Ok(Some((examined, updates)))
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
