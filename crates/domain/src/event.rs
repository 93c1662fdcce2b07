//! The stored event: a validated, normalised Segment message.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The six Segment message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A user action (`event` names it).
    Track,
    /// Who the user is (`traits`).
    Identify,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// Membership of a group or account (`groupId`).
    Group,
    /// Links a previous identity to a user (`previousId`).
    Alias,
}

impl EventType {
    /// Every type, in the spec's order.
    pub const ALL: [EventType; 6] = [
        EventType::Track,
        EventType::Identify,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    /// The wire name (`"track"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no Segment message type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| UnknownEventType(value.to_owned()))
    }
}

/// Context fields kept as their own columns because reports filter and group on
/// them (and two that enrichment reads); every other context field stays in
/// the `context` JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFields {
    /// `context.page.path` (for page calls also `properties.path`, else the URL's path).
    pub page_path: Option<String>,
    /// `context.page.referrer`.
    pub page_referrer: Option<String>,
    /// `context.page.url`.
    pub page_url: Option<String>,
    /// `context.campaign.name`, else `utm_campaign` of the page URL.
    pub campaign_name: Option<String>,
    /// `context.campaign.source`, else `utm_source`.
    pub campaign_source: Option<String>,
    /// `context.campaign.medium`, else `utm_medium`.
    pub campaign_medium: Option<String>,
    /// `context.campaign.term`, else `utm_term`.
    pub campaign_term: Option<String>,
    /// `context.campaign.content`, else `utm_content`.
    pub campaign_content: Option<String>,
    /// `context.library.name`.
    pub library_name: Option<String>,
    /// `context.locale`.
    pub locale: Option<String>,
    /// `context.userAgent`: read by enrichment, not a column of its own.
    pub user_agent: Option<String>,
    /// `context.ip`, else the client's address: read by enrichment, stored
    /// (in `context`) only for a project that keeps IPs.
    pub ip: Option<std::net::IpAddr>,
}

/// A validated event, ready to store; also what storage gives back on export.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Owning project.
    pub project_id: String,
    /// Dedup key within the project (client's `messageId`, or generated).
    pub message_id: String,
    /// Segment message type.
    pub event_type: EventType,
    /// Track event name.
    pub event: Option<String>,
    /// Page or screen name.
    pub name: Option<String>,
    /// Known user.
    pub user_id: Option<String>,
    /// Device or browser identity.
    pub anonymous_id: Option<String>,
    /// Group (account) for `group` calls.
    pub group_id: Option<String>,
    /// Former identity for `alias` calls.
    pub previous_id: Option<String>,
    /// When it happened, corrected for client clock skew.
    pub timestamp: DateTime<Utc>,
    /// Device time as the client sent it.
    pub original_timestamp: Option<DateTime<Utc>>,
    /// Device time when the client sent the request.
    pub sent_at: Option<DateTime<Utc>>,
    /// Server time of receipt.
    pub received_at: DateTime<Utc>,
    /// `properties` as a JSON object text.
    pub properties: Option<String>,
    /// `traits` as a JSON object text.
    pub traits: Option<String>,
    /// `context` (after batch merge) as a JSON object text.
    pub context: Option<String>,
    /// `integrations` as a JSON object text.
    pub integrations: Option<String>,
    /// Common context fields, extracted.
    pub context_fields: ContextFields,
    /// Device, location and source, derived at ingest.
    pub visit: crate::visit::VisitFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_their_wire_names() {
        for event_type in EventType::ALL {
            assert_eq!(event_type.as_str().parse::<EventType>(), Ok(event_type));
        }
        assert_eq!(
            "click".parse::<EventType>(),
            Err(UnknownEventType("click".into()))
        );
    }
}
