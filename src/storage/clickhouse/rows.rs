//! The `events` row as ClickHouse stores it, and its conversions.

use chrono::DateTime;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::flatten::Flattened;
use crate::domain::visit::VisitFields;
use crate::domain::{ContextFields, Event, EventType};

/// One row of `events`, column for column (the fields are the columns; see
/// the schema for their meaning).
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct EventRow {
    pub project_id: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub event: Option<String>,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub group_id: Option<String>,
    pub previous_id: Option<String>,
    /// Seconds since the epoch (`DateTime`).
    pub timestamp: u32,
    pub timestamp_us: i64,
    pub original_timestamp_us: Option<i64>,
    pub sent_at_us: Option<i64>,
    pub received_at_us: i64,
    pub properties: Option<String>,
    pub traits: Option<String>,
    pub context: Option<String>,
    pub integrations: Option<String>,
    pub page_path: Option<String>,
    pub page_referrer: Option<String>,
    pub page_url: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub library_name: Option<String>,
    pub locale: Option<String>,
    pub prop_keys: Vec<String>,
    pub prop_values: Vec<String>,
    pub context_keys: Vec<String>,
    pub context_values: Vec<String>,
    /// `ReplacingMergeTree` keeps the largest: the copy received first.
    pub version: u64,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub referrer_domain: Option<String>,
    pub source: Option<String>,
    pub channel: Option<String>,
}

impl From<&Event> for EventRow {
    fn from(event: &Event) -> Self {
        let document = match event.event_type {
            EventType::Identify | EventType::Group => event.traits.as_deref(),
            _ => event.properties.as_deref(),
        };
        let properties = Flattened::from_object_text(document);
        let context = Flattened::from_object_text(event.context.as_deref());
        let fields = &event.context_fields;
        let visit = &event.visit;
        let micros = event.timestamp.timestamp_micros();
        let received = event.received_at.timestamp_micros();
        EventRow {
            project_id: event.project_id.clone(),
            message_id: event.message_id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            event: event.event.clone(),
            name: event.name.clone(),
            user_id: event.user_id.clone(),
            anonymous_id: event.anonymous_id.clone(),
            group_id: event.group_id.clone(),
            previous_id: event.previous_id.clone(),
            timestamp: u32::try_from(event.timestamp.timestamp()).unwrap_or(0),
            timestamp_us: micros,
            original_timestamp_us: event.original_timestamp.map(|t| t.timestamp_micros()),
            sent_at_us: event.sent_at.map(|t| t.timestamp_micros()),
            received_at_us: received,
            properties: event.properties.clone(),
            traits: event.traits.clone(),
            context: event.context.clone(),
            integrations: event.integrations.clone(),
            page_path: fields.page_path.clone(),
            page_referrer: fields.page_referrer.clone(),
            page_url: fields.page_url.clone(),
            utm_campaign: fields.campaign_name.clone(),
            utm_source: fields.campaign_source.clone(),
            utm_medium: fields.campaign_medium.clone(),
            utm_term: fields.campaign_term.clone(),
            utm_content: fields.campaign_content.clone(),
            library_name: fields.library_name.clone(),
            locale: fields.locale.clone(),
            prop_keys: properties.keys,
            prop_values: properties.values,
            context_keys: context.keys,
            context_values: context.values,
            version: u64::MAX - u64::try_from(received).unwrap_or(0),
            browser: visit.browser.clone(),
            browser_version: visit.browser_version.clone(),
            os: visit.os.clone(),
            os_version: visit.os_version.clone(),
            device: visit.device.clone(),
            country: visit.country.clone(),
            region: visit.region.clone(),
            city: visit.city.clone(),
            referrer_domain: visit.referrer_domain.clone(),
            source: visit.source.clone(),
            channel: visit.channel.clone(),
        }
    }
}

fn time(micros: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::UNIX_EPOCH)
}

impl TryFrom<EventRow> for Event {
    type Error = String;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Event {
            event_type: row
                .event_type
                .parse()
                .map_err(|_| format!("stored type {:?} is unknown", row.event_type))?,
            project_id: row.project_id,
            message_id: row.message_id,
            event: row.event,
            name: row.name,
            user_id: row.user_id,
            anonymous_id: row.anonymous_id,
            group_id: row.group_id,
            previous_id: row.previous_id,
            timestamp: time(row.timestamp_us),
            original_timestamp: row.original_timestamp_us.map(time),
            sent_at: row.sent_at_us.map(time),
            received_at: time(row.received_at_us),
            properties: row.properties,
            traits: row.traits,
            context: row.context,
            integrations: row.integrations,
            context_fields: ContextFields {
                page_path: row.page_path,
                page_referrer: row.page_referrer,
                page_url: row.page_url,
                campaign_name: row.utm_campaign,
                campaign_source: row.utm_source,
                campaign_medium: row.utm_medium,
                campaign_term: row.utm_term,
                campaign_content: row.utm_content,
                library_name: row.library_name,
                locale: row.locale,
                user_agent: None,
                ip: None,
            },
            visit: VisitFields {
                browser: row.browser,
                browser_version: row.browser_version,
                os: row.os,
                os_version: row.os_version,
                device: row.device,
                country: row.country,
                region: row.region,
                city: row.city,
                referrer_domain: row.referrer_domain,
                source: row.source,
                channel: row.channel,
            },
        })
    }
}
