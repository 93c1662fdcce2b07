//! The common case of one message, read without building a JSON tree: its
//! fields borrowed from the request body, its objects (`properties`,
//! `traits`, `context`, `integrations`) kept as the text they were sent as.
//!
//! It gives the same event as [`super::build_event`] would, or none at all:
//! anything it does not take on (a fault, a number where an id is usually a
//! string, a batch-level `context` to merge, an object that repeats a name
//! where it must be edited) leaves the message to the tree-building path,
//! which reads every case and words every error.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_text::{compact, object_text, Members, Text};
use super::{context_ip, extract_context_fields, parse_time, Shared};
use crate::clock::ClientTimes;
use crate::event::{Event, EventType};

/// The fields of a Segment message that become an event's; others are ignored.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<Text<'a>>,
    #[serde(rename = "anonymousId", borrow)]
    anonymous_id: Option<Text<'a>>,
    #[serde(borrow)]
    event: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(rename = "groupId", borrow)]
    group_id: Option<Text<'a>>,
    #[serde(rename = "previousId", borrow)]
    previous_id: Option<Text<'a>>,
    #[serde(rename = "messageId", borrow)]
    message_id: Option<Text<'a>>,
    #[serde(borrow)]
    timestamp: Option<Text<'a>>,
    #[serde(rename = "originalTimestamp", borrow)]
    original_timestamp: Option<Text<'a>>,
    #[serde(rename = "sentAt", borrow)]
    sent_at: Option<Text<'a>>,
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
    #[serde(borrow)]
    traits: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
    #[serde(borrow)]
    integrations: Option<&'a RawValue>,
}

/// A string field as the event keeps it: an empty one is absent.
fn owned(text: Option<Text<'_>>) -> Option<String> {
    text.filter(|text| !text.0.is_empty())
        .map(|text| text.0.into_owned())
}

/// A time field; `Err` when it is not a date-time.
fn time(text: Option<&Text<'_>>) -> Result<Option<DateTime<Utc>>, ()> {
    text.map(|text| parse_time(&text.0).ok_or(())).transpose()
}

/// An object field with its members; `Err` when it is not an object.
fn object(raw: Option<&RawValue>) -> Result<Option<(&RawValue, Members<'_>)>, ()> {
    raw.map(|raw| Members::of(raw).map(|members| (raw, members)).ok_or(()))
        .transpose()
}

fn event_type(kind: Option<&Text<'_>>, implied: Option<EventType>) -> Option<EventType> {
    let Some(kind) = kind else {
        return implied;
    };
    let parsed: EventType = kind.0.parse().ok()?;
    match implied {
        Some(implied) if implied != parsed => None,
        _ => Some(parsed),
    }
}

/// The event of `text` (one message, a JSON object), when this path takes
/// it on; `message_id` is the one given to a message that has none.
pub(super) fn build(
    text: &str,
    message_id: Option<&str>,
    shared: &Shared<'_>,
) -> Option<(Event, bool)> {
    if shared.batch_context.is_some() {
        return None;
    }
    let message: Message<'_> = serde_json::from_str(text).ok()?;
    let event_type = event_type(message.kind.as_ref(), shared.implied_type)?;
    let user_id = owned(message.user_id);
    let anonymous_id = owned(message.anonymous_id);
    let event = owned(message.event);
    let name = owned(message.name);
    let group_id = owned(message.group_id);
    let previous_id = owned(message.previous_id);
    let missing_required = match event_type {
        EventType::Track => event.is_none(),
        EventType::Group => group_id.is_none(),
        EventType::Alias => previous_id.is_none(),
        _ => false,
    };
    if missing_required || (user_id.is_none() && anonymous_id.is_none()) {
        return None;
    }
    let message_id = owned(message.message_id)
        .or_else(|| message_id.map(str::to_owned))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let times = ClientTimes {
        timestamp: time(message.timestamp.as_ref()).ok()?,
        original_timestamp: time(message.original_timestamp.as_ref()).ok()?,
        sent_at: time(message.sent_at.as_ref())
            .ok()?
            .or(shared.batch_sent_at),
    };
    let resolved = shared.resolve(times)?;

    let properties = object(message.properties).ok()?;
    let traits = object(message.traits).ok()?;
    let integrations = object(message.integrations).ok()?;
    let context = object(message.context).ok()?;

    let empty = Members::default();
    let context_members = context.as_ref().map_or(&empty, |(_, members)| members);
    let mut context_fields = extract_context_fields(
        context_members,
        properties.as_ref().map(|(_, members)| members),
        event_type,
    );
    // RudderStack's SDKs (and early analytics.js) send an identify's traits
    // in `context.traits` only.
    let traits_text = match (traits, event_type) {
        (None, EventType::Identify) => context_members
            .get("traits")
            .and_then(|raw| Members::of(raw).map(|members| object_text(raw, &members))),
        (traits, _) => traits.map(|(raw, members)| object_text(raw, &members)),
    };
    let ip = context_ip(context_members).or(shared.context.client_ip);
    context_fields.ip = ip;
    let context_text = match (context, shared.context.keep_ip, ip) {
        (None, true, Some(ip)) => Some(format!("{{\"ip\":\"{ip}\"}}")),
        (None, _, _) => None,
        (Some((raw, members)), true, Some(ip)) if members.get("ip").is_none() => {
            if members.repeats_a_name() {
                return None;
            }
            let mut text = compact(raw.get());
            text.pop();
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&format!("\"ip\":\"{ip}\"}}"));
            Some(text)
        }
        (Some((_, members)), false, _) if members.get("ip").is_some() => {
            if members.repeats_a_name() {
                return None;
            }
            Some(members.text_without("ip"))
        }
        (Some((raw, members)), _, _) => Some(object_text(raw, &members)),
    };

    let event = Event {
        project_id: shared.context.project_id.to_owned(),
        message_id,
        event_type,
        event,
        name,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        timestamp: resolved.timestamp,
        original_timestamp: times.original_timestamp,
        sent_at: times.sent_at,
        received_at: shared.context.received_at,
        properties: properties.map(|(raw, members)| object_text(raw, &members)),
        traits: traits_text,
        context: context_text,
        integrations: integrations.map(|(raw, members)| object_text(raw, &members)),
        context_fields,
        visit: Default::default(),
    };
    Some((event, resolved.clamped))
}

/// Whether message `text` lacks a `messageId` (absent, null or empty).
pub(super) fn lacks_message_id(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(rename = "messageId", borrow)]
        message_id: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Id<'_>>(text) {
        Ok(Id { message_id: None }) => true,
        Ok(Id {
            message_id: Some(raw),
        }) => raw.get() == "\"\"",
        // A repeated `messageId`: the tree-building path reads its last.
        Err(_) => serde_json::from_str::<serde_json::Value>(text).is_ok_and(|value| {
            match value.get("messageId") {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::String(text)) => text.is_empty(),
                Some(_) => false,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::super::{build_event, IngestContext};
    use super::*;

    fn shared(keep_ip: bool, client_ip: Option<&str>) -> Shared<'static> {
        Shared {
            context: IngestContext {
                project_id: "shop",
                received_at: parse_time("2026-03-01T12:00:00Z").unwrap(),
                max_future: chrono::Duration::days(1),
                client_ip: client_ip.map(|ip| ip.parse().unwrap()),
                keep_ip,
            },
            implied_type: None,
            batch_context: None,
            batch_sent_at: None,
            times_are_final: false,
        }
    }

    fn tree_of(text: &Option<String>) -> Option<Value> {
        text.as_deref()
            .map(|text| serde_json::from_str(text).unwrap())
    }

    /// Both paths' events of `text`; the JSON texts compared as trees.
    fn assert_same_event(text: &str, shared: &Shared<'_>) {
        let (mut fast, fast_clamped) =
            build(text, None, shared).unwrap_or_else(|| panic!("not taken on: {text}"));
        let object: Map<String, Value> = serde_json::from_str(text).unwrap();
        let (mut tree, tree_clamped) =
            build_event(object, shared).unwrap_or_else(|fault| panic!("{text}: {}", fault.message));
        assert_eq!(fast_clamped, tree_clamped, "{text}");
        for (fast, tree) in [
            (&mut fast.properties, &mut tree.properties),
            (&mut fast.traits, &mut tree.traits),
            (&mut fast.context, &mut tree.context),
            (&mut fast.integrations, &mut tree.integrations),
        ] {
            assert_eq!(tree_of(fast), tree_of(tree), "{text}");
            // Member order is kept: the texts match once the tree is written out.
            assert_eq!(tree_of(fast).map(|v| v.to_string()), tree.clone(), "{text}");
            *fast = None;
            *tree = None;
        }
        assert_eq!(fast, tree, "{text}");
    }

    fn messages() -> Vec<Value> {
        vec![
            json!({"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1",
                   "timestamp": "2026-03-01T11:00:00.250Z",
                   "properties": {"revenue": 9.5, "plan": "pro", "tags": ["a", "b"], "n": {"x": null}},
                   "context": {"ip": "203.0.113.9", "locale": "de-DE",
                               "library": {"name": "analytics.js", "version": "5.0"},
                               "page": {"url": "https://shop.example/cart?utm_source=news&utm_medium=email",
                                        "referrer": "https://www.google.com/"},
                               "campaign": {"name": "spring", "term": 12},
                               "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}}),
            json!({"type": "page", "anonymousId": "a1", "messageId": "m2", "name": "Home",
                   "originalTimestamp": "2026-03-01T11:59:00Z", "sentAt": "2026-03-01T12:00:10Z",
                   "properties": {"path": "/home", "url": "https://x.example/home?utm_campaign=c1",
                                  "search": "?utm_campaign=c1", "title": "Home \"page\""}}),
            json!({"type": "identify", "userId": "u2", "messageId": "m3",
                   "context": {"traits": {"email": "u@example.com", "plan": "free"}, "ip": "::1"}}),
            json!({"type": "identify", "userId": "u2", "anonymousId": "", "messageId": "m4",
                   "traits": {"name": "Zoë"}, "integrations": {"All": false}}),
            json!({"type": "group", "userId": "u3", "groupId": "g1", "messageId": "m5",
                   "timestamp": "2027-06-01T00:00:00Z", "traits": {}}),
            json!({"type": "alias", "userId": "u3", "previousId": "a1", "messageId": "m6",
                   "event": null, "context": {}}),
            json!({"type": "screen", "userId": "u4", "messageId": "m7", "name": "Settings",
                   "context": {"ip": "not an address", "app": {"build": 7}}, "writeKey": "k"}),
            json!({"type": "track", "event": "e", "anonymousId": "a2", "messageId": "m8",
                   "timestamp": "2026-02-28 10:00:00", "properties": {"big": 18446744073709551615u64,
                   "float": 1.25e-7, "neg": -4, "unicode": "\u{e9}\u{1f600}", "ctl": "a\nb"}}),
        ]
    }

    #[test]
    fn the_common_messages_give_the_events_the_tree_gives() {
        for keep_ip in [true, false] {
            for client_ip in [None, Some("198.51.100.7")] {
                let shared = shared(keep_ip, client_ip);
                for message in messages() {
                    assert_same_event(&message.to_string(), &shared);
                    assert_same_event(&serde_json::to_string_pretty(&message).unwrap(), &shared);
                }
            }
        }
    }

    #[test]
    fn escapes_in_names_and_values_read_the_same() {
        let text = r#"{"type":"track","event":"a\u0062c","userId":"u\/1","messageId":"m",
            "properties":{"k\"ey":"v\\al\u00e9","sp ace":" x "},"context":{"ip":"1.2.3.4","p\u0061ge":{"path":"/x"}}}"#;
        for keep_ip in [true, false] {
            let shared = shared(keep_ip, None);
            let (event, _) = build(text, None, &shared).unwrap();
            assert_eq!(event.event.as_deref(), Some("abc"));
            assert_eq!(event.user_id.as_deref(), Some("u/1"));
            assert_eq!(event.context_fields.page_path.as_deref(), Some("/x"));
            let object: Map<String, Value> = serde_json::from_str(text).unwrap();
            let (tree, _) = build_event(object, &shared).ok().unwrap();
            assert_eq!(tree_of(&event.properties), tree_of(&tree.properties));
            assert_eq!(tree_of(&event.context), tree_of(&tree.context));
        }
    }

    #[test]
    fn what_it_does_not_take_on_is_left_to_the_tree() {
        let shared = shared(false, None);
        for text in [
            // Faults, worded by the tree path.
            r#"{"type":"track","userId":"u"}"#,
            r#"{"type":"track","event":"e"}"#,
            r#"{"type":"click","event":"e","userId":"u"}"#,
            r#"{"type":"track","event":"e","userId":"u","timestamp":"yesterday"}"#,
            r#"{"type":"track","event":"e","userId":"u","properties":[1]}"#,
            r#"{"event":"e","userId":"u"}"#,
            // Numbers as ids, repeated fields, an edit of an object that repeats a name.
            r#"{"type":"track","event":"e","userId":7}"#,
            r#"{"type":"track","event":"e","userId":"u","userId":"v"}"#,
            r#"{"type":"track","event":"e","userId":"u","context":{"ip":"1.2.3.4","a":1,"a":2}}"#,
        ] {
            assert!(build(text, None, &shared).is_none(), "{text}");
        }
        let batch_context = Map::new();
        let with_batch_context = Shared {
            batch_context: Some(&batch_context),
            ..shared
        };
        assert!(build(
            r#"{"type":"track","event":"e","userId":"u"}"#,
            None,
            &with_batch_context
        )
        .is_none());
    }

    #[test]
    fn a_given_message_id_fills_only_a_missing_one() {
        let shared = shared(true, None);
        let given = |text: &str| {
            build(text, Some("kafka:0:1"), &shared)
                .unwrap()
                .0
                .message_id
        };
        assert_eq!(
            given(r#"{"type":"track","event":"e","userId":"u"}"#),
            "kafka:0:1"
        );
        assert_eq!(
            given(r#"{"type":"track","event":"e","userId":"u","messageId":""}"#),
            "kafka:0:1"
        );
        assert_eq!(
            given(r#"{"type":"track","event":"e","userId":"u","messageId":"m"}"#),
            "m"
        );
        assert!(lacks_message_id(r#"{"messageId":null}"#));
        assert!(lacks_message_id(r#"{"messageId":""}"#));
        assert!(!lacks_message_id(r#"{"messageId":"m"}"#));
        assert!(!lacks_message_id(r#"{"messageId":"","messageId":"m"}"#));
    }
}
