//! A stored event in the Segment shape, with `receivedAt`: the form of
//! `/v1/export` lines and of the messages HTTP ingest produces to Kafka.
//!
//! A message carrying `receivedAt` has been received already, so reading it
//! back ([`crate::segment::Payload::message`]) yields the same event:
//! its `timestamp` is final and is not corrected for clock skew again.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::Event;

/// An event in the Segment shape, plus `receivedAt`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_id: Option<&'a str>,
    message_id: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<String>,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrations: Option<&'a RawValue>,
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn raw_json(text: Option<&str>) -> Option<&RawValue> {
    // Stored texts were produced by serde_json, so they always parse.
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// Appends `event` as one Segment-shaped JSON object (no newline).
pub fn write_json(buffer: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let wire = WireEvent {
        event_type: event.event_type.as_str(),
        event: event.event.as_deref(),
        name: event.name.as_deref(),
        user_id: event.user_id.as_deref(),
        anonymous_id: event.anonymous_id.as_deref(),
        group_id: event.group_id.as_deref(),
        previous_id: event.previous_id.as_deref(),
        message_id: &event.message_id,
        timestamp: iso(event.timestamp),
        original_timestamp: event.original_timestamp.map(iso),
        sent_at: event.sent_at.map(iso),
        received_at: iso(event.received_at),
        properties: raw_json(event.properties.as_deref()),
        traits: raw_json(event.traits.as_deref()),
        context: raw_json(event.context.as_deref()),
        integrations: raw_json(event.integrations.as_deref()),
    };
    serde_json::to_writer(&mut *buffer, &wire)
}

/// Appends `event` as one NDJSON line.
pub fn write_json_line(buffer: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    write_json(buffer, event)?;
    buffer.push(b'\n');
    Ok(())
}
