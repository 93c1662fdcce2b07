//! Conversion of events to an Arrow record batch laid out like the `events` table.
//!
//! Columnar appends are DuckDB's fastest write path: one conversion per batch
//! instead of one value binding per field.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::arrow::array::{ArrayRef, ListBuilder, StringBuilder, TimestampMicrosecondArray};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;

use crate::domain::Event;

fn strings<'a>(events: &'a [Event], field: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
    let bytes: usize = events.iter().filter_map(&field).map(str::len).sum();
    let mut builder = StringBuilder::with_capacity(events.len(), bytes);
    for event in events {
        builder.append_option(field(event));
    }
    Arc::new(builder.finish())
}

fn times(events: &[Event], field: impl Fn(&Event) -> Option<DateTime<Utc>>) -> ArrayRef {
    let values: TimestampMicrosecondArray = events
        .iter()
        .map(|event| field(event).map(|time| time.timestamp_micros()))
        .collect();
    Arc::new(values)
}

fn lists(events: &[Event], field: impl Fn(&Event) -> &[String]) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for event in events {
        for item in field(event) {
            builder.values().append_value(item);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// Builds a record batch whose columns follow the `events` table, in order.
pub fn events_to_record_batch(events: &[Event]) -> Result<RecordBatch, ArrowError> {
    fn c(event: &Event) -> &crate::domain::ContextFields {
        &event.context_fields
    }
    RecordBatch::try_from_iter([
        (
            "project_id",
            strings(events, |e| Some(e.project_id.as_str())),
        ),
        (
            "message_id",
            strings(events, |e| Some(e.message_id.as_str())),
        ),
        ("type", strings(events, |e| Some(e.event_type.as_str()))),
        ("event", strings(events, |e| e.event.as_deref())),
        ("name", strings(events, |e| e.name.as_deref())),
        ("user_id", strings(events, |e| e.user_id.as_deref())),
        (
            "anonymous_id",
            strings(events, |e| e.anonymous_id.as_deref()),
        ),
        ("group_id", strings(events, |e| e.group_id.as_deref())),
        ("previous_id", strings(events, |e| e.previous_id.as_deref())),
        ("timestamp", times(events, |e| Some(e.timestamp))),
        (
            "original_timestamp",
            times(events, |e| e.original_timestamp),
        ),
        ("sent_at", times(events, |e| e.sent_at)),
        ("received_at", times(events, |e| Some(e.received_at))),
        ("properties", strings(events, |e| e.properties.as_deref())),
        ("traits", strings(events, |e| e.traits.as_deref())),
        ("context", strings(events, |e| e.context.as_deref())),
        (
            "integrations",
            strings(events, |e| e.integrations.as_deref()),
        ),
        ("context_ip", strings(events, |e| c(e).ip.as_deref())),
        (
            "context_user_agent",
            strings(events, |e| c(e).user_agent.as_deref()),
        ),
        ("page_path", strings(events, |e| c(e).page_path.as_deref())),
        (
            "page_referrer",
            strings(events, |e| c(e).page_referrer.as_deref()),
        ),
        (
            "page_search",
            strings(events, |e| c(e).page_search.as_deref()),
        ),
        (
            "page_title",
            strings(events, |e| c(e).page_title.as_deref()),
        ),
        ("page_url", strings(events, |e| c(e).page_url.as_deref())),
        (
            "utm_campaign",
            strings(events, |e| c(e).campaign_name.as_deref()),
        ),
        (
            "utm_source",
            strings(events, |e| c(e).campaign_source.as_deref()),
        ),
        (
            "utm_medium",
            strings(events, |e| c(e).campaign_medium.as_deref()),
        ),
        (
            "utm_term",
            strings(events, |e| c(e).campaign_term.as_deref()),
        ),
        (
            "utm_content",
            strings(events, |e| c(e).campaign_content.as_deref()),
        ),
        (
            "library_name",
            strings(events, |e| c(e).library_name.as_deref()),
        ),
        (
            "library_version",
            strings(events, |e| c(e).library_version.as_deref()),
        ),
        ("locale", strings(events, |e| c(e).locale.as_deref())),
        ("timezone", strings(events, |e| c(e).timezone.as_deref())),
        ("prop_keys", lists(events, |e| &e.prop_keys)),
        ("prop_values", lists(events, |e| &e.prop_values)),
        ("context_keys", lists(events, |e| &e.context_keys)),
        ("context_values", lists(events, |e| &e.context_values)),
    ])
}
