//! One Kafka record to one event, or to a dead letter saying why not.
//!
//! Records are read exactly as HTTP ingest reads a message (the same
//! [`Payload`] code), with three stream-specific rules: the project comes
//! from the `writeKey` field, else the [`PROJECT_HEADER`] header, else the
//! configured default project; receipt time is the message's `receivedAt`,
//! else the record's timestamp; a message without `messageId` gets one made
//! from the record's position, so re-reading it after a crash dedups.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::segment::{IngestContext, Payload, PayloadError};
use crate::domain::{Event, KeyKind, Project, ProjectRegistry};
use crate::enrich::{BotReason, Enricher};
use crate::kafka::dead_letters::DeadLetter;
use crate::kafka::PROJECT_HEADER;

/// The parts of a record decoding needs.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's key.
    pub key: Option<&'a [u8]>,
    /// The record's value.
    pub payload: Option<&'a [u8]>,
    /// Value of the [`PROJECT_HEADER`] header.
    pub project_header: Option<&'a [u8]>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's timestamp (create or log-append time).
    pub timestamp: Option<DateTime<Utc>>,
}

/// What became of a record.
#[derive(Debug)]
pub enum Decoded {
    /// A valid event, and whether its future timestamp was clamped.
    Event(Box<Event>, bool),
    /// A record that can never be stored.
    DeadLetter(DeadLetter),
    /// A valid event that is not stored by policy (a bot's).
    Dropped(BotReason),
}

/// Decodes records of one topic.
pub struct RecordDecoder {
    /// Projects and their write keys.
    pub projects: Arc<ProjectRegistry>,
    /// Project of records that name none.
    pub default_project: Option<Arc<Project>>,
    /// The events topic (part of generated message ids).
    pub topic: String,
    /// Largest record value accepted.
    pub max_message_bytes: usize,
    /// Future-timestamp tolerance.
    pub max_future: chrono::Duration,
    /// Derives the visit attributes of each event.
    pub enricher: Arc<Enricher>,
}

impl RecordDecoder {
    /// Decodes one record; never fails, since a bad record becomes a dead letter.
    pub fn decode(&self, record: &Record<'_>) -> Decoded {
        match self.try_decode(record) {
            Ok(decoded) => decoded,
            Err((reason, message)) => Decoded::DeadLetter(DeadLetter {
                key: record.key.map(<[u8]>::to_vec),
                payload: record.payload.map(<[u8]>::to_vec),
                reason,
                message,
                partition: record.partition,
                offset: record.offset,
            }),
        }
    }

    /// An event or a drop; a dead letter's reason and message as the error.
    fn try_decode(&self, record: &Record<'_>) -> Result<Decoded, (&'static str, String)> {
        let body = record
            .payload
            .filter(|p| !p.is_empty())
            .ok_or(("empty", "the record has no value".to_owned()))?;
        let mut payload = Payload::message(body, self.max_message_bytes)
            .map_err(|error| (payload_reason(&error), error.to_string()))?;
        let project = self.project_of(&payload, record.project_header)?;
        payload.fill_missing_message_ids(|| {
            format!(
                "kafka:{}:{}:{}",
                self.topic, record.partition, record.offset
            )
        });
        let received_at = payload
            .received_at()
            .or(record.timestamp)
            .unwrap_or_else(Utc::now);
        let mut parsed = payload.into_events(IngestContext {
            project_id: &project.id,
            received_at,
            max_future: self.max_future,
            client_ip: None,
            keep_ip: project.store_ip,
        });
        if let Some(rejection) = parsed.rejected.pop() {
            let message = match &rejection.field {
                Some(field) => format!("{field}: {}", rejection.message),
                None => rejection.message,
            };
            return Err((rejection.code.as_str(), message));
        }
        let mut event = parsed
            .events
            .pop()
            .ok_or(("empty", "the record holds no event".to_owned()))?;
        if let Some(reason) = self.enricher.enrich(&project, &mut event) {
            return Ok(Decoded::Dropped(reason));
        }
        Ok(Decoded::Event(Box::new(event), parsed.clamped > 0))
    }

    fn project_of(
        &self,
        payload: &Payload,
        header: Option<&[u8]>,
    ) -> Result<Arc<Project>, (&'static str, String)> {
        if let Some(key) = payload.write_key() {
            return self.projects.authorize(key, KeyKind::Write).ok_or((
                "unknown_write_key",
                "writeKey is not a known write key".into(),
            ));
        }
        if let Some(header) = header {
            let id = String::from_utf8_lossy(header);
            return self.projects.project(&id).ok_or((
                "unknown_project",
                format!("{PROJECT_HEADER} header names no configured project: {id:?}"),
            ));
        }
        self.default_project.clone().ok_or((
            "no_project",
            format!(
                "the message names no project: add writeKey, the {PROJECT_HEADER} header, or set kafka.default_project"
            ),
        ))
    }
}

fn payload_reason(error: &PayloadError) -> &'static str {
    match error {
        PayloadError::MalformedJson { .. } => "malformed_json",
        PayloadError::NotAnObject => "not_an_object",
        PayloadError::EventTooLarge { .. } | PayloadError::TooManyEvents { .. } => "too_large",
        PayloadError::InvalidField { .. } => "invalid_field",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProjectConfig, Secret};

    fn decoder(default_project: Option<&str>) -> RecordDecoder {
        let projects = Arc::new(crate::config::registry(&[ProjectConfig {
            write_keys: vec![Secret::new("wk_shop_key")],
            ..ProjectConfig::new("shop")
        }]));
        RecordDecoder {
            default_project: default_project.and_then(|id| projects.project(id)),
            projects,
            topic: "events".into(),
            max_message_bytes: 200,
            max_future: chrono::Duration::days(1),
            enricher: Arc::new(Enricher::minimal(true)),
        }
    }

    fn record<'a>(payload: &'a [u8], header: Option<&'a [u8]>) -> Record<'a> {
        Record {
            key: Some(b"k"),
            payload: Some(payload),
            project_header: header,
            partition: 2,
            offset: 41,
            timestamp: Some(DateTime::from_timestamp(1_770_000_000, 0).unwrap()),
        }
    }

    fn reason(decoded: Decoded) -> (&'static str, String) {
        match decoded {
            Decoded::DeadLetter(letter) => {
                assert_eq!((letter.partition, letter.offset), (2, 41));
                assert_eq!(letter.key.as_deref(), Some(&b"k"[..]));
                (letter.reason, letter.message)
            }
            Decoded::Event(event, _) => panic!("expected a dead letter, got {event:?}"),
            Decoded::Dropped(reason) => panic!("expected a dead letter, got a drop: {reason:?}"),
        }
    }

    #[test]
    fn a_valid_record_becomes_an_event_of_its_project() {
        let body = br#"{"type":"track","event":"Paid","userId":"u","writeKey":"wk_shop_key"}"#;
        let Decoded::Event(event, clamped) = decoder(None).decode(&record(body, None)) else {
            panic!("expected an event");
        };
        assert!(!clamped);
        assert_eq!(event.project_id, "shop");
        assert_eq!(event.message_id, "kafka:events:2:41");
        assert_eq!(event.received_at.timestamp(), 1_770_000_000);
        assert_eq!(event.timestamp, event.received_at);

        let by_header = br#"{"type":"page","anonymousId":"a","messageId":"m1"}"#;
        let Decoded::Event(event, _) = decoder(None).decode(&record(by_header, Some(b"shop")))
        else {
            panic!("expected an event");
        };
        assert_eq!(
            (event.project_id.as_str(), event.message_id.as_str()),
            ("shop", "m1")
        );

        let by_default = br#"{"type":"page","anonymousId":"a"}"#;
        assert!(matches!(
            decoder(Some("shop")).decode(&record(by_default, None)),
            Decoded::Event(..)
        ));
    }

    #[test]
    fn each_kind_of_bad_record_has_its_reason() {
        // (record value, project header, expected reason, words of the message)
        type Case = (
            &'static [u8],
            Option<&'static [u8]>,
            &'static str,
            &'static str,
        );
        let cases: [Case; 8] = [
            (b"{not json", None, "malformed_json", "line 1"),
            (b"[1,2]", None, "not_an_object", "object"),
            (&[b' '; 300], None, "too_large", "300 bytes"),
            (
                br#"{"type":"track","event":"x","userId":"u","writeKey":"wk_nope_nope"}"#,
                None,
                "unknown_write_key",
                "writeKey",
            ),
            (
                br#"{"type":"track","event":"x","userId":"u"}"#,
                Some(b"blog"),
                "unknown_project",
                "blog",
            ),
            (
                br#"{"type":"track","event":"x","userId":"u"}"#,
                None,
                "no_project",
                "default_project",
            ),
            (
                br#"{"type":"track","userId":"u"}"#,
                Some(b"shop"),
                "missing_field",
                "event:",
            ),
            (
                br#"{"type":"click","userId":"u"}"#,
                Some(b"shop"),
                "unknown_type",
                "type:",
            ),
        ];
        for (body, header, expected, words) in cases {
            let (reason, message) = reason(decoder(None).decode(&record(body, header)));
            assert_eq!(reason, expected, "{}", String::from_utf8_lossy(body));
            assert!(message.contains(words), "{reason}: {message}");
        }
        let empty = Record {
            payload: None,
            ..record(b"", None)
        };
        assert_eq!(reason(decoder(None).decode(&empty)).0, "empty");
    }
}
