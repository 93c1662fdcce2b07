//! The ingest use case: a parsed request's events validated for their
//! project, handed to the sink, and the outcome of each reported.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::AppError;
use crate::domain::segment::{IngestContext, ParsedEvents, Payload, Rejection};
use crate::domain::{EventSink, EventType, Project};
use crate::enrich::Enricher;
use crate::telemetry::Metrics;

/// What became of a request's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored (duplicates of stored `messageId`s count as stored).
    pub accepted: usize,
    /// Events not stored, by position in the request, with the reason.
    pub rejected: Vec<Rejection>,
}

/// Takes events in, over every door (the HTTP routes today).
pub struct IngestService {
    sink: Arc<dyn EventSink>,
    enricher: Option<Arc<Enricher>>,
    metrics: Metrics,
    max_future: chrono::Duration,
}

/// Who sent a request, as far as the service can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sender {
    /// The client's address (the socket's, or a trusted proxy's word).
    pub ip: Option<std::net::IpAddr>,
}

impl IngestService {
    /// Events go to `sink`, enriched first by `enricher` (`None` when the
    /// sink hands them to a stage that enriches, as the Kafka consumer
    /// does); times more than `max_future` ahead are clamped.
    pub fn new(
        sink: Arc<dyn EventSink>,
        enricher: Option<Arc<Enricher>>,
        metrics: Metrics,
        max_future: chrono::Duration,
    ) -> Self {
        IngestService {
            sink,
            enricher,
            metrics,
            max_future,
        }
    }

    /// Validates the payload's events for `project` and stores the valid
    /// ones; answers once they are durable. Every event not stored is
    /// listed with its reason: invalid, or refused by storage.
    pub async fn ingest(
        &self,
        project: &Project,
        payload: Payload,
        sender: Sender,
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, AppError> {
        let mut parsed = payload.into_events(IngestContext {
            project_id: &project.id,
            received_at,
            max_future: self.max_future,
            client_ip: sender.ip,
            // Unenriched events go on to the stage that decides.
            keep_ip: project.store_ip || self.enricher.is_none(),
        });
        let metrics = &self.metrics;
        for rejection in &parsed.rejected {
            metrics
                .events_rejected
                .with_label_values(&[rejection.code.as_str()])
                .inc();
        }
        metrics.events_clamped.inc_by(parsed.clamped as u64);
        if parsed.events.is_empty() && !parsed.rejected.is_empty() {
            return Err(AppError::NoValidEvents {
                rejected: parsed.rejected,
            });
        }
        let dropped = self.enrich(project, &mut parsed);
        let types: Vec<EventType> = parsed.events.iter().map(|e| e.event_type).collect();
        let submitted = self.sink.submit(parsed.events).await?;
        let mut rejected = parsed.rejected;
        let mut per_type = [0_u64; EventType::ALL.len()];
        for (position, event_type) in types.iter().enumerate() {
            if submitted.refused.binary_search(&position).is_ok() {
                rejected.push(Rejection::refused_by_storage(parsed.positions[position]));
            } else {
                per_type[*event_type as usize] += 1;
            }
        }
        for (event_type, count) in EventType::ALL.iter().zip(per_type) {
            if count > 0 {
                metrics
                    .events_accepted
                    .with_label_values(&[event_type.as_str()])
                    .inc_by(count);
            }
        }
        rejected.sort_by_key(|rejection| rejection.index);
        let accepted = types.len() - submitted.refused.len() + dropped;
        if accepted == 0 && !rejected.is_empty() {
            return Err(AppError::NoValidEvents { rejected });
        }
        Ok(IngestOutcome { accepted, rejected })
    }

    /// Enriches every event and takes out those of bots (acknowledged, not
    /// stored); answers how many were taken out.
    fn enrich(&self, project: &Project, parsed: &mut ParsedEvents) -> usize {
        let Some(enricher) = &self.enricher else {
            return 0;
        };
        let mut dropped = 0;
        let mut kept = 0;
        for index in 0..parsed.events.len() {
            if let Some(reason) = enricher.enrich(project, &mut parsed.events[index]) {
                self.metrics.count_dropped(reason);
                dropped += 1;
                continue;
            }
            parsed.events.swap(kept, index);
            parsed.positions.swap(kept, index);
            kept += 1;
        }
        parsed.events.truncate(kept);
        parsed.positions.truncate(kept);
        dropped
    }
}
