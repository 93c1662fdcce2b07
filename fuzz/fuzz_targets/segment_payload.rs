//! The Segment payload parser on arbitrary bytes, through every door a body
//! comes in by (a single call, a batch, a Kafka record, a Plausible event):
//! it answers with an error or events, never a panic, and every event it
//! accepts can be written back as JSON.

#![no_main]

use analytics_domain::plausible::PlausibleEvent;
use analytics_domain::segment::{IngestContext, Limits, Payload};
use analytics_domain::{wire, EventType};
use libfuzzer_sys::fuzz_target;

fn validate(payload: Payload) {
    let received_at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let parsed = payload.into_events(IngestContext {
        project_id: "fuzz",
        received_at,
        max_future: chrono::Duration::days(1),
        client_ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        keep_ip: false,
    });
    assert_eq!(parsed.events.len(), parsed.positions.len());
    for event in &parsed.events {
        let mut line = Vec::new();
        wire::write_json_line(&mut line, event).expect("an accepted event is written back");
        assert!(serde_json::from_slice::<serde_json::Value>(&line).is_ok());
    }
}

fuzz_target!(|body: &[u8]| {
    if let Ok(payload) = Payload::batch(body, Limits::SEGMENT) {
        validate(payload);
    }
    if let Ok(payload) = Payload::single(body, EventType::Track, Limits::SEGMENT) {
        validate(payload);
    }
    if let Ok(mut payload) = Payload::message(body, 1 << 20) {
        payload.fill_missing_message_ids(|| "kafka:fuzz:0:0".to_owned());
        validate(payload);
    }
    if let Ok(event) = PlausibleEvent::parse(body) {
        let (message, event_type) = event.into_segment("0123456789abcdef0123456789abcdef", "UA");
        validate(Payload::built(message, event_type));
    }
});
