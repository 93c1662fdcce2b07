//! Events as bytes, for keeping them between their acknowledgement and
//! their storage (the ingest journal): every field, enrichment included, so
//! that reading a record back yields the events that were acknowledged.
//!
//! A record is `[count u32]` then each event's fields in a fixed order:
//! strings as `[length u32][UTF-8]` (`u32::MAX` for none), times as
//! microseconds since the epoch (`i64`, optional ones after a flag byte),
//! little-endian throughout.

use chrono::{DateTime, Utc};

use crate::event::{ContextFields, Event, EventType};
use crate::visit::VisitFields;

/// A record that is not one this module wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event record at byte {offset}: {reason}")]
pub struct RecordError {
    /// Where reading stopped.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

const NONE: u32 = u32::MAX;

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn text(&mut self, value: Option<&str>) {
        match value {
            Some(text) => {
                let length = u32::try_from(text.len()).expect("an event is far below 4 GiB");
                self.0.extend_from_slice(&length.to_le_bytes());
                self.0.extend_from_slice(text.as_bytes());
            }
            None => self.0.extend_from_slice(&NONE.to_le_bytes()),
        }
    }

    fn time(&mut self, time: DateTime<Utc>) {
        self.0
            .extend_from_slice(&time.timestamp_micros().to_le_bytes());
    }

    fn optional_time(&mut self, time: Option<DateTime<Utc>>) {
        match time {
            Some(time) => {
                self.0.push(1);
                self.time(time);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, RecordError> {
        Err(RecordError {
            offset: self.at,
            reason,
        })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        match self.bytes.get(self.at..self.at + n) {
            Some(bytes) => {
                self.at += n;
                Ok(bytes)
            }
            None => self.fail("the record ends early"),
        }
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn text(&mut self) -> Result<Option<String>, RecordError> {
        let length = self.u32()?;
        if length == NONE {
            return Ok(None);
        }
        let bytes = self.take(length as usize)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => self.fail("a text is not UTF-8"),
        }
    }

    fn required_text(&mut self) -> Result<String, RecordError> {
        match self.text()? {
            Some(text) => Ok(text),
            None => self.fail("a required text is missing"),
        }
    }

    fn time(&mut self) -> Result<DateTime<Utc>, RecordError> {
        let micros = i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        match DateTime::from_timestamp_micros(micros) {
            Some(time) => Ok(time),
            None => self.fail("a time is out of range"),
        }
    }

    fn optional_time(&mut self) -> Result<Option<DateTime<Utc>>, RecordError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.time().map(Some),
            _ => self.fail("a time flag is neither 0 nor 1"),
        }
    }
}

fn write_event(out: &mut Writer<'_>, event: &Event) {
    out.text(Some(&event.project_id));
    out.text(Some(&event.message_id));
    out.0.push(event.event_type as u8);
    for text in [
        &event.event,
        &event.name,
        &event.user_id,
        &event.anonymous_id,
        &event.group_id,
        &event.previous_id,
    ] {
        out.text(text.as_deref());
    }
    out.time(event.timestamp);
    out.optional_time(event.original_timestamp);
    out.optional_time(event.sent_at);
    out.time(event.received_at);
    for text in [
        &event.properties,
        &event.traits,
        &event.context,
        &event.integrations,
    ] {
        out.text(text.as_deref());
    }
    let fields = &event.context_fields;
    for text in [
        &fields.page_path,
        &fields.page_referrer,
        &fields.page_url,
        &fields.campaign_name,
        &fields.campaign_source,
        &fields.campaign_medium,
        &fields.campaign_term,
        &fields.campaign_content,
        &fields.library_name,
        &fields.locale,
        &fields.user_agent,
    ] {
        out.text(text.as_deref());
    }
    out.text(fields.ip.map(|ip| ip.to_string()).as_deref());
    for (_, text) in event.visit.columns() {
        out.text(text);
    }
}

fn read_event(input: &mut Reader<'_>) -> Result<Event, RecordError> {
    let project_id = input.required_text()?;
    let message_id = input.required_text()?;
    let event_type = match EventType::ALL.get(usize::from(input.byte()?)) {
        Some(&event_type) => event_type,
        None => return input.fail("no such event type"),
    };
    let mut texts = [(); 6].map(|()| None);
    for text in &mut texts {
        *text = input.text()?;
    }
    let [event, name, user_id, anonymous_id, group_id, previous_id] = texts;
    let timestamp = input.time()?;
    let original_timestamp = input.optional_time()?;
    let sent_at = input.optional_time()?;
    let received_at = input.time()?;
    let mut objects = [(); 4].map(|()| None);
    for text in &mut objects {
        *text = input.text()?;
    }
    let [properties, traits, context, integrations] = objects;
    let mut context_texts = [(); 11].map(|()| None);
    for text in &mut context_texts {
        *text = input.text()?;
    }
    let [page_path, page_referrer, page_url, campaign_name, campaign_source, campaign_medium, campaign_term, campaign_content, library_name, locale, user_agent] =
        context_texts;
    let ip = match input.text()? {
        None => None,
        Some(ip) => match ip.parse() {
            Ok(ip) => Some(ip),
            Err(_) => return input.fail("an address does not parse"),
        },
    };
    let mut visit_texts = [(); 11].map(|()| None);
    for text in &mut visit_texts {
        *text = input.text()?;
    }
    let [browser, browser_version, os, os_version, device, country, region, city, referrer_domain, source, channel] =
        visit_texts;
    Ok(Event {
        project_id,
        message_id,
        event_type,
        event,
        name,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        timestamp,
        original_timestamp,
        sent_at,
        received_at,
        properties,
        traits,
        context,
        integrations,
        context_fields: ContextFields {
            page_path,
            page_referrer,
            page_url,
            campaign_name,
            campaign_source,
            campaign_medium,
            campaign_term,
            campaign_content,
            library_name,
            locale,
            user_agent,
            ip,
        },
        visit: VisitFields {
            browser,
            browser_version,
            os,
            os_version,
            device,
            country,
            region,
            city,
            referrer_domain,
            source,
            channel,
        },
    })
}

/// Appends the record of `events` to `buffer`.
pub fn encode(buffer: &mut Vec<u8>, events: &[Event]) {
    let count = u32::try_from(events.len()).expect("a record holds at most 4 billion events");
    buffer.extend_from_slice(&count.to_le_bytes());
    let mut out = Writer(buffer);
    for event in events {
        write_event(&mut out, event);
    }
}

/// The events of a record [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Vec<Event>, RecordError> {
    let mut input = Reader { bytes, at: 0 };
    let count = input.u32()? as usize;
    // Each event takes well over 64 bytes, so a count beyond that is no record's.
    if count > bytes.len() / 64 + 1 {
        return input.fail("more events than the record has room for");
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(read_event(&mut input)?);
    }
    if input.at != bytes.len() {
        return input.fail("bytes after the last event");
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_event() -> Event {
        let time = |text| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        Event {
            project_id: "shop".into(),
            message_id: "m-1".into(),
            event_type: EventType::Page,
            event: None,
            name: Some("Home".into()),
            user_id: Some("u1".into()),
            anonymous_id: Some("a\u{e9}".into()),
            group_id: None,
            previous_id: Some(String::new()),
            timestamp: time("2026-03-01T11:00:00.123456Z"),
            original_timestamp: Some(time("2026-03-01T10:59:59Z")),
            sent_at: None,
            received_at: time("2026-03-01T11:00:01Z"),
            properties: Some(r#"{"path":"/"}"#.into()),
            traits: None,
            context: Some(r#"{"ip":"::1"}"#.into()),
            integrations: Some("{}".into()),
            context_fields: ContextFields {
                page_path: Some("/".into()),
                campaign_term: Some("t".into()),
                user_agent: Some("Mozilla/5.0".into()),
                ip: Some("::1".parse().unwrap()),
                ..ContextFields::default()
            },
            visit: VisitFields {
                browser: Some("Firefox".into()),
                country: Some("DE".into()),
                channel: Some("Direct".into()),
                ..VisitFields::default()
            },
        }
    }

    #[test]
    fn events_read_back_as_they_were_written() {
        let mut second = full_event();
        second.event_type = EventType::Alias;
        second.context_fields.ip = Some("203.0.113.9".parse().unwrap());
        second.visit = VisitFields::default();
        let events = vec![full_event(), second];
        let mut bytes = Vec::new();
        encode(&mut bytes, &events);
        assert_eq!(decode(&bytes).unwrap(), events);
        let mut empty = Vec::new();
        encode(&mut empty, &[]);
        assert_eq!(decode(&empty).unwrap(), vec![]);
    }

    #[test]
    fn a_record_cut_or_padded_is_an_error() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[full_event()]);
        for cut in [0, 3, 4, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        bytes.push(0);
        assert_eq!(
            decode(&bytes).unwrap_err().reason,
            "bytes after the last event"
        );
    }
}
