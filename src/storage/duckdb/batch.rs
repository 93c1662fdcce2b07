//! Conversion of events to an Arrow record batch laid out like the `events` table.
//!
//! Columnar appends are DuckDB's fastest write path: one conversion per batch
//! instead of one value binding per field.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::arrow::array::{
    ArrayRef, StringBuilder, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
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

/// Builds a record batch whose columns follow the `events` table, in order:
/// the events of write number `write`, whose users have `user_numbers`.
pub fn events_to_record_batch(
    events: &[Event],
    user_numbers: &[u32],
    write: u64,
) -> Result<RecordBatch, ArrowError> {
    type Text = for<'a> fn(&'a Event) -> Option<&'a str>;
    const IDENTITY_COLUMNS: [(&str, Text); 6] = [
        ("event", |e| e.event.as_deref()),
        ("name", |e| e.name.as_deref()),
        ("user_id", |e| e.user_id.as_deref()),
        ("anonymous_id", |e| e.anonymous_id.as_deref()),
        ("group_id", |e| e.group_id.as_deref()),
        ("previous_id", |e| e.previous_id.as_deref()),
    ];
    const PAYLOAD_COLUMNS: [(&str, Text); 14] = [
        ("properties", |e| e.properties.as_deref()),
        ("traits", |e| e.traits.as_deref()),
        ("context", |e| e.context.as_deref()),
        ("integrations", |e| e.integrations.as_deref()),
        ("page_path", |e| e.context_fields.page_path.as_deref()),
        ("page_referrer", |e| {
            e.context_fields.page_referrer.as_deref()
        }),
        ("page_url", |e| e.context_fields.page_url.as_deref()),
        ("utm_campaign", |e| {
            e.context_fields.campaign_name.as_deref()
        }),
        ("utm_source", |e| {
            e.context_fields.campaign_source.as_deref()
        }),
        ("utm_medium", |e| {
            e.context_fields.campaign_medium.as_deref()
        }),
        ("utm_term", |e| e.context_fields.campaign_term.as_deref()),
        ("utm_content", |e| {
            e.context_fields.campaign_content.as_deref()
        }),
        ("library_name", |e| e.context_fields.library_name.as_deref()),
        ("locale", |e| e.context_fields.locale.as_deref()),
    ];
    const VISIT_COLUMNS: [(&str, Text); 11] = [
        ("browser", |e| e.visit.browser.as_deref()),
        ("browser_version", |e| e.visit.browser_version.as_deref()),
        ("os", |e| e.visit.os.as_deref()),
        ("os_version", |e| e.visit.os_version.as_deref()),
        ("device", |e| e.visit.device.as_deref()),
        ("country", |e| e.visit.country.as_deref()),
        ("region", |e| e.visit.region.as_deref()),
        ("city", |e| e.visit.city.as_deref()),
        ("referrer_domain", |e| e.visit.referrer_domain.as_deref()),
        ("source", |e| e.visit.source.as_deref()),
        ("channel", |e| e.visit.channel.as_deref()),
    ];
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "project_id",
            strings(events, |e| Some(e.project_id.as_str())),
        ),
        (
            "message_id",
            strings(events, |e| Some(e.message_id.as_str())),
        ),
        ("type", strings(events, |e| Some(e.event_type.as_str()))),
    ];
    columns.extend(
        IDENTITY_COLUMNS
            .iter()
            .map(|(name, f)| (*name, strings(events, f))),
    );
    columns.extend([
        ("timestamp", times(events, |e| Some(e.timestamp))),
        (
            "original_timestamp",
            times(events, |e| e.original_timestamp),
        ),
        ("sent_at", times(events, |e| e.sent_at)),
        ("received_at", times(events, |e| Some(e.received_at))),
    ]);
    columns.extend(
        PAYLOAD_COLUMNS
            .iter()
            .map(|(name, f)| (*name, strings(events, f))),
    );
    columns.push((
        "user_index",
        Arc::new(UInt32Array::from(user_numbers.to_vec())),
    ));
    columns.extend(
        VISIT_COLUMNS
            .iter()
            .map(|(name, f)| (*name, strings(events, f))),
    );
    columns.push((
        "write_seq",
        Arc::new(UInt64Array::from(vec![write; events.len()])),
    ));
    RecordBatch::try_from_iter(columns)
}
