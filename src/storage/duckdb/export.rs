//! Reading events back, in timestamp order, a chunk at a time.

use chrono::{DateTime, Utc};
use duckdb::{params, Connection, Row};
use tokio::sync::mpsc;

use crate::domain::visit::VisitFields;
use crate::domain::{ContextFields, Event, EventType};
use crate::storage::{without_visit_sql, ExportRequest, StorageError};

/// Events per chunk handed to the stream.
pub const CHUNK_EVENTS: usize = 1_000;

const SELECT_EVENTS: &str = "
    SELECT project_id, message_id, type, event, name, user_id, anonymous_id, group_id,
           previous_id, epoch_us(timestamp), epoch_us(original_timestamp), epoch_us(sent_at),
           epoch_us(received_at), properties, traits, context, integrations, page_path,
           page_referrer, page_url, utm_campaign, utm_source, utm_medium, utm_term,
           utm_content, library_name, locale, browser, browser_version, os, os_version,
           device, country, region, city, referrer_domain, source, channel
    FROM events
    WHERE project_id = ? AND timestamp >= make_timestamp(?) AND timestamp < make_timestamp(?)";

/// Runs the export query on `conn` and sends chunks until done or the receiver is gone.
pub fn stream_events(
    conn: &Connection,
    request: &ExportRequest,
    sender: &mpsc::Sender<Result<Vec<Event>, StorageError>>,
) -> Result<(), StorageError> {
    let from = request.from.map_or(i64::MIN / 2, |t| t.timestamp_micros());
    let to = request.to.map_or(i64::MAX / 2, |t| t.timestamp_micros());
    let visit = if request.without_visit {
        without_visit_sql()
    } else {
        String::new()
    };
    let mut statement = conn.prepare(&format!(
        "{SELECT_EVENTS}{visit} ORDER BY timestamp, message_id"
    ))?;
    let mut rows = statement.query(params![request.project_id, from, to])?;
    let mut chunk = Vec::with_capacity(CHUNK_EVENTS);
    while let Some(row) = rows.next()? {
        chunk.push(row_to_event(row)?);
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
            page_path: text(17)?,
            page_referrer: text(18)?,
            page_url: text(19)?,
            campaign_name: text(20)?,
            campaign_source: text(21)?,
            campaign_medium: text(22)?,
            campaign_term: text(23)?,
            campaign_content: text(24)?,
            library_name: text(25)?,
            locale: text(26)?,
            user_agent: None,
            ip: None,
        },
        visit: VisitFields {
            browser: text(27)?,
            browser_version: text(28)?,
            os: text(29)?,
            os_version: text(30)?,
            device: text(31)?,
            country: text(32)?,
            region: text(33)?,
            city: text(34)?,
            referrer_domain: text(35)?,
            source: text(36)?,
            channel: text(37)?,
        },
    })
}
