//! Reading events back, in timestamp order, a chunk at a time.

use chrono::{DateTime, Utc};
use duckdb::types::Value;
use duckdb::{params, Connection, Row};
use tokio::sync::mpsc;

use crate::domain::{ContextFields, Event, EventType};
use crate::storage::{ExportRequest, StorageError};

/// Events per chunk handed to the stream.
pub const CHUNK_EVENTS: usize = 1_000;

const SELECT_EVENTS: &str = "
    SELECT project_id, message_id, type, event, name, user_id, anonymous_id, group_id,
           previous_id, epoch_us(timestamp), epoch_us(original_timestamp), epoch_us(sent_at),
           epoch_us(received_at), properties, traits, context, integrations, context_ip,
           context_user_agent, page_path, page_referrer, page_search, page_title, page_url,
           utm_campaign, utm_source, utm_medium, utm_term, utm_content, library_name,
           library_version, locale, timezone, prop_keys, prop_values, context_keys, context_values
    FROM events
    WHERE project_id = ? AND timestamp >= make_timestamp(?) AND timestamp < make_timestamp(?)
    ORDER BY timestamp, message_id";

/// Runs the export query on `conn` and sends chunks until done or the receiver is gone.
pub fn stream_events(
    conn: &Connection,
    request: &ExportRequest,
    sender: &mpsc::Sender<Result<Vec<Event>, StorageError>>,
) -> Result<(), StorageError> {
    let backend = |e: duckdb::Error| StorageError::Backend(e.to_string());
    let from = request.from.map_or(i64::MIN / 2, |t| t.timestamp_micros());
    let to = request.to.map_or(i64::MAX / 2, |t| t.timestamp_micros());
    let mut statement = conn.prepare(SELECT_EVENTS).map_err(backend)?;
    let mut rows = statement
        .query(params![request.project_id, from, to])
        .map_err(backend)?;
    let mut chunk = Vec::with_capacity(CHUNK_EVENTS);
    while let Some(row) = rows.next().map_err(backend)? {
        chunk.push(row_to_event(row).map_err(backend)?);
        if chunk.len() == CHUNK_EVENTS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_EVENTS));
            if sender.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = sender.blocking_send(Ok(chunk));
    }
    Ok(())
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::UNIX_EPOCH)
}

fn string_list(value: Value) -> Vec<String> {
    match value {
        Value::List(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Text(text) => Some(text),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn row_to_event(row: &Row<'_>) -> duckdb::Result<Event> {
    let text = |index: usize| row.get::<_, Option<String>>(index);
    let type_name: String = row.get(2)?;
    let event_type = type_name.parse::<EventType>().map_err(|e| {
        duckdb::Error::FromSqlConversionFailure(2, duckdb::types::Type::Text, Box::new(e))
    })?;
    Ok(Event {
        project_id: row.get(0)?,
        message_id: row.get(1)?,
        event_type,
        event: text(3)?,
        name: text(4)?,
        user_id: text(5)?,
        anonymous_id: text(6)?,
        group_id: text(7)?,
        previous_id: text(8)?,
        timestamp: time(row.get(9)?),
        original_timestamp: row.get::<_, Option<i64>>(10)?.map(time),
        sent_at: row.get::<_, Option<i64>>(11)?.map(time),
        received_at: time(row.get(12)?),
        properties: text(13)?,
        traits: text(14)?,
        context: text(15)?,
        integrations: text(16)?,
        context_fields: ContextFields {
            ip: text(17)?,
            user_agent: text(18)?,
            page_path: text(19)?,
            page_referrer: text(20)?,
            page_search: text(21)?,
            page_title: text(22)?,
            page_url: text(23)?,
            campaign_name: text(24)?,
            campaign_source: text(25)?,
            campaign_medium: text(26)?,
            campaign_term: text(27)?,
            campaign_content: text(28)?,
            library_name: text(29)?,
            library_version: text(30)?,
            locale: text(31)?,
            timezone: text(32)?,
        },
        prop_keys: string_list(row.get(33)?),
        prop_values: string_list(row.get(34)?),
        context_keys: string_list(row.get(35)?),
        context_values: string_list(row.get(36)?),
    })
}
