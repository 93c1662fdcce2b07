//! Parsing and validation of Segment Tracking API payloads.
//!
//! A request body is first parsed far enough to find its write key
//! ([`Payload::single`], [`Payload::batch`]); once the project is known,
//! [`Payload::into_events`] validates each message on its own, so that one bad
//! event of a batch never costs the good ones beside it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::clock::{resolve_timestamp, ClientTimes};
use super::event::{ContextFields, Event, EventType};
use json_text::JsonObject;

mod borrowed;
mod json_text;

/// Size and count limits of the Tracking API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single event, in bytes of JSON.
    pub max_event_bytes: usize,
    /// Largest request body after decompression, in bytes.
    pub max_request_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
}

impl Limits {
    /// Segment's published limits: 32 KB per event, 500 KB per request, 2,500 events per batch.
    pub const SEGMENT: Limits = Limits {
        max_event_bytes: 32 * 1024,
        max_request_bytes: 500 * 1024,
        max_batch_events: 2_500,
    };
}

/// Earliest event time both backends can store (ClickHouse `DateTime` starts at the epoch).
const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

fn latest_storable() -> DateTime<Utc> {
    // ClickHouse `DateTime` (UInt32 seconds) ends in 2106.
    Utc.with_ymd_and_hms(2106, 1, 1, 0, 0, 0).unwrap()
}

/// Whether both backends can store an event at `time`.
fn storable(time: DateTime<Utc>) -> bool {
    (EARLIEST..latest_storable()).contains(&time)
}

/// A request that cannot be processed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not valid JSON.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The body is JSON but not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// A single-event request larger than the per-event limit.
    #[error("event is {size} bytes; the limit is 32 KB ({limit} bytes) per event")]
    EventTooLarge {
        /// Size of the event.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A batch with more events than allowed.
    #[error("batch holds {count} events; the limit is {limit} events per batch")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A request-level field with the wrong shape.
    #[error("{field}: {message}")]
    InvalidField {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl PayloadError {
    fn from_json(error: &serde_json::Error) -> Self {
        PayloadError::MalformedJson {
            line: error.line(),
            column: error.column(),
            message: strip_position(&error.to_string()),
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Why one event of a request was rejected (also a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The event exceeds the per-event size limit.
    TooLarge,
    /// The event is not a JSON object.
    NotAnObject,
    /// `type` names no Segment message type.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong type or an unusable value.
    InvalidField,
    /// The event is valid, but storage refused it (it was not stored).
    StorageRejected,
}

impl RejectCode {
    /// Snake-case name, as in responses and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::TooLarge => "too_large",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::UnknownType => "unknown_type",
            RejectCode::MissingField => "missing_field",
            RejectCode::InvalidField => "invalid_field",
            RejectCode::StorageRejected => "storage_rejected",
        }
    }
}

/// One rejected event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position of the event in the request (0 for single-event calls).
    pub index: usize,
    /// Machine-readable reason.
    pub code: RejectCode,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Human-readable reason.
    pub message: String,
}

impl Rejection {
    /// The rejection of a valid event that storage refused to store.
    pub fn refused_by_storage(index: usize) -> Self {
        Rejection {
            index,
            code: RejectCode::StorageRejected,
            field: None,
            message:
                "storage refused this event; it was not stored (the service log has the reason)"
                    .into(),
        }
    }
}

/// The fault found in one event, before its index is known.
#[derive(Debug)]
struct Fault {
    code: RejectCode,
    field: Option<&'static str>,
    message: String,
}

impl Fault {
    fn missing(field: &'static str, message: impl Into<String>) -> Self {
        Fault {
            code: RejectCode::MissingField,
            field: Some(field),
            message: message.into(),
        }
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Fault {
            code: RejectCode::InvalidField,
            field: Some(field),
            message: message.into(),
        }
    }

    fn at(self, index: usize) -> Rejection {
        Rejection {
            index,
            code: self.code,
            field: self.field.map(str::to_owned),
            message: self.message,
        }
    }
}

enum Item {
    /// A message built as a tree (a single call, a stream message, one of
    /// the service's own).
    Object(Map<String, Value>),
    /// A message of a batch as sent (a JSON object), with the `messageId`
    /// given to it should it have none.
    Sent {
        text: Box<RawValue>,
        message_id: Option<String>,
    },
    Rejected(Rejection),
}

/// A request body parsed far enough to authenticate it.
pub struct Payload {
    items: Vec<Item>,
    implied_type: Option<EventType>,
    batch_context: Option<Map<String, Value>>,
    batch_sent_at: Option<Value>,
    write_key: Option<String>,
    received_at: Option<DateTime<Utc>>,
}

/// Events of a request, split into valid and rejected.
#[derive(Debug, Default)]
pub struct ParsedEvents {
    /// Valid events, ready to store.
    pub events: Vec<Event>,
    /// The position in the request of each valid event.
    pub positions: Vec<usize>,
    /// Rejected events, by index.
    pub rejected: Vec<Rejection>,
    /// How many valid events had a future timestamp clamped to `receivedAt`.
    pub clamped: usize,
}

/// Per-request values every event of it shares.
#[derive(Debug, Clone, Copy)]
pub struct IngestContext<'a> {
    /// The authenticated project.
    pub project_id: &'a str,
    /// Server time of receipt.
    pub received_at: DateTime<Utc>,
    /// Future-timestamp tolerance.
    pub max_future: chrono::Duration,
    /// The sender's address, for events that do not carry `context.ip`.
    pub client_ip: Option<std::net::IpAddr>,
    /// Whether `context.ip` stays in the stored context (the project keeps
    /// IPs, or the events go on to another stage that decides).
    pub keep_ip: bool,
}

/// The fields of a batch body beside its events.
#[derive(Deserialize)]
struct Envelope {
    context: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
    #[serde(flatten)]
    envelope: Envelope,
}

/// A batch body whose `batch` is an array, read in one pass.
#[derive(Deserialize)]
struct ListedBatch<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(flatten)]
    envelope: Envelope,
}

/// The fields of a single message read before its project is known.
#[derive(Deserialize)]
struct MessageEnvelope<'a> {
    #[serde(rename = "writeKey", borrow)]
    write_key: Option<&'a RawValue>,
    #[serde(rename = "receivedAt", borrow)]
    received_at: Option<&'a RawValue>,
}

/// A single message's body as sent, with its `writeKey` (when a string)
/// and its `receivedAt` (as given).
struct SentMessage {
    item: Item,
    write_key: Option<String>,
    received_at: Option<Value>,
}

impl SentMessage {
    fn read(body: &[u8]) -> Result<Self, PayloadError> {
        let raw: &RawValue =
            serde_json::from_slice(body).map_err(|e| PayloadError::from_json(&e))?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(PayloadError::NotAnObject);
        }
        let (write_key, received_at) = match serde_json::from_str::<MessageEnvelope<'_>>(raw.get())
        {
            Ok(envelope) => (
                envelope
                    .write_key
                    .and_then(json_text::string)
                    .map(Into::into),
                envelope
                    .received_at
                    .and_then(|value| serde_json::from_str(value.get()).ok()),
            ),
            // A repeated field: the tree reads its last.
            Err(_) => {
                let mut object: Map<String, Value> =
                    serde_json::from_str(raw.get()).map_err(|e| PayloadError::from_json(&e))?;
                (take_write_key(&mut object), object.remove("receivedAt"))
            }
        };
        Ok(SentMessage {
            item: Item::Sent {
                text: raw.to_owned(),
                message_id: None,
            },
            write_key,
            received_at,
        })
    }
}

impl Payload {
    /// Parses a single-event body (`/v1/track`, `/v1/identify`, ...).
    pub fn single(
        body: &[u8],
        event_type: EventType,
        limits: Limits,
    ) -> Result<Self, PayloadError> {
        let sent = SentMessage::read(body)?;
        if body.len() > limits.max_event_bytes {
            return Err(PayloadError::EventTooLarge {
                size: body.len(),
                limit: limits.max_event_bytes,
            });
        }
        Ok(Payload {
            items: vec![sent.item],
            implied_type: Some(event_type),
            batch_context: None,
            batch_sent_at: None,
            write_key: sent.write_key,
            received_at: None,
        })
    }

    /// One message built by the service itself (from another API's event,
    /// such as Plausible's): validated like a single call of `event_type`.
    pub fn built(object: Map<String, Value>, event_type: EventType) -> Self {
        Payload {
            items: vec![Item::Object(object)],
            implied_type: Some(event_type),
            batch_context: None,
            batch_sent_at: None,
            write_key: None,
            received_at: None,
        }
    }

    /// Parses one message read from a stream (a Kafka record): a single
    /// Segment message whose `type` is required, at most `max_bytes` long.
    ///
    /// A `receivedAt` field marks a message that was received already (by the
    /// HTTP tier, or in an export being replayed): it becomes the event's
    /// receipt time and its `timestamp` is taken as final, so that reading the
    /// message again yields the same event.
    pub fn message(body: &[u8], max_bytes: usize) -> Result<Self, PayloadError> {
        if body.len() > max_bytes {
            return Err(PayloadError::EventTooLarge {
                size: body.len(),
                limit: max_bytes,
            });
        }
        let sent = SentMessage::read(body)?;
        let received_at = match sent.received_at {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(parse_time(&text).ok_or_else(|| PayloadError::InvalidField {
                    field: "receivedAt",
                    message: format!("receivedAt is not an ISO-8601 date-time: {text:?}"),
                })?)
            }
            Some(_) => {
                return Err(PayloadError::InvalidField {
                    field: "receivedAt",
                    message: "receivedAt must be an ISO-8601 date-time string".into(),
                })
            }
        };
        Ok(Payload {
            items: vec![sent.item],
            implied_type: None,
            batch_context: None,
            batch_sent_at: None,
            write_key: sent.write_key,
            received_at,
        })
    }

    /// Parses a batch body (`/v1/batch`, `/v1/import`).
    pub fn batch(body: &[u8], limits: Limits) -> Result<Self, PayloadError> {
        // One pass for a well-formed body; a second, finding what is wrong, for the others.
        let (raw_events, envelope) = match serde_json::from_slice::<ListedBatch<'_>>(body) {
            Ok(listed) => (listed.batch, listed.envelope),
            Err(_) => Self::batch_events(body)?,
        };
        if raw_events.len() > limits.max_batch_events {
            return Err(PayloadError::TooManyEvents {
                count: raw_events.len(),
                limit: limits.max_batch_events,
            });
        }
        let batch_context = match envelope.context {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                return Err(PayloadError::InvalidField {
                    field: "context",
                    message: "must be a JSON object".into(),
                })
            }
        };
        let items = raw_events
            .into_iter()
            .enumerate()
            .map(|(index, raw)| parse_batch_item(index, raw, limits))
            .collect();
        Ok(Payload {
            items,
            implied_type: None,
            batch_context,
            batch_sent_at: envelope.sent_at,
            write_key: envelope
                .write_key
                .and_then(|v| v.as_str().map(str::to_owned)),
            received_at: None,
        })
    }

    /// A batch body's events and envelope, or what is wrong with it.
    fn batch_events(body: &[u8]) -> Result<(Vec<&RawValue>, Envelope), PayloadError> {
        let envelope: BatchEnvelope<'_> = serde_json::from_slice(body).map_err(|e| {
            // Every envelope field is optional, so a data error means "not an object".
            if e.is_data() {
                PayloadError::NotAnObject
            } else {
                PayloadError::from_json(&e)
            }
        })?;
        let raw_batch = envelope.batch.ok_or(PayloadError::InvalidField {
            field: "batch",
            message: "is required: an array of events".into(),
        })?;
        let raw_events: Vec<&RawValue> =
            serde_json::from_str(raw_batch.get()).map_err(|_| PayloadError::InvalidField {
                field: "batch",
                message: "must be an array of events".into(),
            })?;
        Ok((raw_events, envelope.envelope))
    }

    /// The `writeKey` given in the body, if any.
    pub fn write_key(&self) -> Option<&str> {
        self.write_key.as_deref()
    }

    /// Gives every message without a `messageId` the one `id` makes. A stream
    /// reader derives it from the record's position, so that reading the
    /// record again yields the same id and dedup recognises it.
    pub fn fill_missing_message_ids(&mut self, mut id: impl FnMut() -> String) {
        for item in &mut self.items {
            match item {
                Item::Object(object) => {
                    let missing = match object.get("messageId") {
                        None | Some(Value::Null) => true,
                        Some(Value::String(text)) => text.is_empty(),
                        Some(_) => false,
                    };
                    if missing {
                        object.insert("messageId".into(), Value::String(id()));
                    }
                }
                Item::Sent { text, message_id } => {
                    if borrowed::lacks_message_id(text.get()) {
                        *message_id = Some(id());
                    }
                }
                Item::Rejected(_) => {}
            }
        }
    }

    /// The `receivedAt` of a message received already (see [`Payload::message`]).
    pub fn received_at(&self) -> Option<DateTime<Utc>> {
        self.received_at
    }

    /// Number of events in the request, valid or not.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the request holds no event.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Validates and normalises every event for the given project.
    pub fn into_events(self, context: IngestContext<'_>) -> ParsedEvents {
        let batch_sent_at = match parse_time_value("sentAt", self.batch_sent_at.as_ref()) {
            Ok(time) => time,
            Err(fault) => {
                // A bad batch-level sentAt spoils the clock of every event in it.
                let rejected = (0..self.items.len())
                    .map(|index| {
                        Fault {
                            code: fault.code,
                            field: fault.field,
                            message: format!("batch {}", fault.message),
                        }
                        .at(index)
                    })
                    .collect();
                return ParsedEvents {
                    rejected,
                    ..ParsedEvents::default()
                };
            }
        };
        let context = IngestContext {
            received_at: context.received_at.trunc_subsecs(6),
            ..context
        };
        let shared = Shared {
            context,
            implied_type: self.implied_type,
            batch_context: self.batch_context.as_ref(),
            batch_sent_at,
            times_are_final: self.received_at.is_some(),
        };
        let mut parsed = ParsedEvents {
            events: Vec::with_capacity(self.items.len()),
            ..ParsedEvents::default()
        };
        for (index, item) in self.items.into_iter().enumerate() {
            match item {
                Item::Rejected(rejection) => parsed.rejected.push(rejection),
                Item::Object(object) => parsed.add(index, build_event(object, &shared)),
                Item::Sent { text, message_id } => {
                    let built = borrowed::build(text.get(), message_id.as_deref(), &shared)
                        .map(Ok)
                        .unwrap_or_else(|| build_sent_event(&text, message_id, &shared));
                    parsed.add(index, built);
                }
            }
        }
        parsed
    }
}

impl ParsedEvents {
    fn add(&mut self, index: usize, built: Result<(Event, bool), Fault>) {
        match built {
            Ok((event, clamped)) => {
                self.clamped += usize::from(clamped);
                self.events.push(event);
                self.positions.push(index);
            }
            Err(fault) => self.rejected.push(fault.at(index)),
        }
    }
}

/// A message of a batch that [`borrowed::build`] left: read as a tree.
fn build_sent_event(
    text: &RawValue,
    message_id: Option<String>,
    shared: &Shared<'_>,
) -> Result<(Event, bool), Fault> {
    let mut object = match serde_json::from_str::<Value>(text.get()) {
        Ok(Value::Object(object)) => object,
        // A batch holds only objects as sent messages (see `parse_batch_item`).
        _ => return Err(Fault::invalid("batch", "event must be a JSON object")),
    };
    if let Some(id) = message_id {
        object.insert("messageId".into(), Value::String(id));
    }
    build_event(object, shared)
}

fn take_write_key(object: &mut Map<String, Value>) -> Option<String> {
    match object.remove("writeKey") {
        Some(Value::String(key)) => Some(key),
        _ => None,
    }
}

fn parse_batch_item(index: usize, raw: &RawValue, limits: Limits) -> Item {
    let text = raw.get();
    if text.len() > limits.max_event_bytes {
        return Item::Rejected(Rejection {
            index,
            code: RejectCode::TooLarge,
            field: None,
            message: format!(
                "event is {} bytes; the limit is 32 KB ({} bytes) per event",
                text.len(),
                limits.max_event_bytes
            ),
        });
    }
    // The raw value is valid JSON: an object is one that opens with a brace.
    if text.starts_with('{') {
        Item::Sent {
            text: raw.to_owned(),
            message_id: None,
        }
    } else {
        Item::Rejected(Rejection {
            index,
            code: RejectCode::NotAnObject,
            field: None,
            message: "event must be a JSON object".into(),
        })
    }
}

impl Shared<'_> {
    /// The event's time from the client's times, when both backends can store it.
    fn resolve(&self, times: ClientTimes) -> Option<crate::clock::ResolvedTime> {
        let resolving = if self.times_are_final {
            ClientTimes {
                timestamp: times.timestamp,
                original_timestamp: None,
                sent_at: None,
            }
        } else {
            times
        };
        let resolved =
            resolve_timestamp(resolving, self.context.received_at, self.context.max_future);
        storable(resolved.timestamp).then_some(resolved)
    }
}

struct Shared<'a> {
    context: IngestContext<'a>,
    implied_type: Option<EventType>,
    batch_context: Option<&'a Map<String, Value>>,
    batch_sent_at: Option<DateTime<Utc>>,
    /// The message was received before: its `timestamp` needs no correction.
    times_are_final: bool,
}

fn build_event(
    mut object: Map<String, Value>,
    shared: &Shared<'_>,
) -> Result<(Event, bool), Fault> {
    let event_type = resolve_type(object.get("type"), shared.implied_type)?;

    let user_id = take_id(&mut object, "userId")?;
    let anonymous_id = take_id(&mut object, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Fault::missing(
            "userId",
            "userId or anonymousId is required",
        ));
    }
    let event = take_string(&mut object, "event")?;
    let name = take_string(&mut object, "name")?;
    let group_id = take_id(&mut object, "groupId")?;
    let previous_id = take_id(&mut object, "previousId")?;
    match event_type {
        EventType::Track if event.is_none() => {
            return Err(Fault::missing("event", "event is required for track calls"))
        }
        EventType::Group if group_id.is_none() => {
            return Err(Fault::missing(
                "groupId",
                "groupId is required for group calls",
            ))
        }
        EventType::Alias if previous_id.is_none() => {
            return Err(Fault::missing(
                "previousId",
                "previousId is required for alias calls",
            ))
        }
        _ => {}
    }
    let message_id =
        take_id(&mut object, "messageId")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let times = ClientTimes {
        timestamp: parse_time_value("timestamp", object.get("timestamp"))?,
        original_timestamp: parse_time_value("originalTimestamp", object.get("originalTimestamp"))?,
        sent_at: parse_time_value("sentAt", object.get("sentAt"))?.or(shared.batch_sent_at),
    };
    let resolved = shared.resolve(times).ok_or_else(|| {
        Fault::invalid(
            "timestamp",
            "event time must lie between 1970-01-01 and 2106-01-01",
        )
    })?;

    let properties = take_object(&mut object, "properties")?;
    let traits = take_object(&mut object, "traits")?;
    let integrations = take_object(&mut object, "integrations")?;
    let mut context = take_object(&mut object, "context")?;
    if let Some(batch_context) = shared.batch_context {
        merge_missing(context.get_or_insert_with(Map::new), batch_context);
    }

    // RudderStack's SDKs (and early analytics.js) send an identify's traits
    // in `context.traits` only.
    let traits = match (traits, event_type) {
        (None, EventType::Identify) => context
            .as_ref()
            .and_then(|ctx| ctx.get("traits"))
            .and_then(Value::as_object)
            .cloned(),
        (traits, _) => traits,
    };

    let ip = context
        .as_ref()
        .and_then(|context| context_ip(&context))
        .or(shared.context.client_ip);
    match (shared.context.keep_ip, ip) {
        (true, Some(ip)) => {
            context
                .get_or_insert_with(Map::new)
                .entry("ip")
                .or_insert_with(|| Value::String(ip.to_string()));
        }
        (false, _) => {
            if let Some(ctx) = context.as_mut() {
                ctx.remove("ip");
            }
        }
        (true, None) => {}
    }

    let empty = Map::new();
    let context_map = context.as_ref().unwrap_or(&empty);
    let mut context_fields =
        extract_context_fields(&context_map, properties.as_ref().as_ref(), event_type);
    context_fields.ip = ip;

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
        properties: properties.map(object_text),
        traits: traits.map(object_text),
        context: context.map(object_text),
        integrations: integrations.map(object_text),
        context_fields,
        visit: Default::default(),
    };
    Ok((event, resolved.clamped))
}

fn resolve_type(value: Option<&Value>, implied: Option<EventType>) -> Result<EventType, Fault> {
    match (value, implied) {
        (None | Some(Value::Null), Some(implied)) => Ok(implied),
        (None | Some(Value::Null), None) => Err(Fault::missing(
            "type",
            "type is required in a batch (track, identify, page, screen, group or alias)",
        )),
        (Some(Value::String(name)), implied) => {
            let parsed: EventType = name.parse().map_err(|_| Fault {
                code: RejectCode::UnknownType,
                field: Some("type"),
                message: format!(
                    "unknown type {name:?}: expected track, identify, page, screen, group or alias"
                ),
            })?;
            match implied {
                Some(implied) if implied != parsed => Err(Fault::invalid(
                    "type",
                    format!("type {name:?} was sent to the {implied} endpoint"),
                )),
                _ => Ok(parsed),
            }
        }
        (Some(_), _) => Err(Fault::invalid("type", "type must be a string")),
    }
}

/// An identifier: a non-empty string, or a number taken as its decimal text.
fn take_id(object: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, Fault> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(Fault::invalid(field, format!("{field} must be a string"))),
    }
}

fn take_string(
    object: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Fault> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Fault::invalid(field, format!("{field} must be a string"))),
    }
}

fn take_object(
    object: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, Fault> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Fault::invalid(
            field,
            format!("{field} must be a JSON object"),
        )),
    }
}

fn parse_time_value(
    field: &'static str,
    value: Option<&Value>,
) -> Result<Option<DateTime<Utc>>, Fault> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_time(text).map(Some).ok_or_else(|| {
            Fault::invalid(
                field,
                format!("{field} is not an ISO-8601 date-time: {text:?}"),
            )
        }),
        Some(_) => Err(Fault::invalid(
            field,
            format!("{field} must be an ISO-8601 date-time string"),
        )),
    }
}

/// Parses an ISO-8601 date-time to the microsecond (the precision stored);
/// without an offset it is taken as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    parse_time_exact(text).map(|time| time.trunc_subsecs(6))
}

fn parse_time_exact(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.to_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(time.to_utc());
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}

/// Copies into `target` every key of `defaults` it lacks; nested objects merge recursively.
fn merge_missing(target: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, default) in defaults {
        match (target.get_mut(key), default) {
            (None, _) => {
                target.insert(key.clone(), default.clone());
            }
            (Some(Value::Object(inner)), Value::Object(default_inner)) => {
                merge_missing(inner, default_inner);
            }
            (Some(_), _) => {}
        }
    }
}

fn object_text(map: Map<String, Value>) -> String {
    Value::Object(map).to_string()
}

fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// `context.ip`, when it is an address.
fn context_ip(context: &impl JsonObject) -> Option<std::net::IpAddr> {
    context.string("ip").and_then(|ip| ip.trim().parse().ok())
}

/// `context.userAgent`.
fn context_user_agent(context: &impl JsonObject) -> Option<String> {
    context.scalar("userAgent")
}

/// The user agent and IP address a stored `context` text holds, read as
/// ingest reads them (for enriching stored events).
pub fn stored_client(context: &str) -> (Option<String>, Option<std::net::IpAddr>) {
    match serde_json::from_str::<Map<String, Value>>(context) {
        Ok(context) => (context_user_agent(&&context), context_ip(&&context)),
        Err(_) => (None, None),
    }
}

fn extract_context_fields<O: JsonObject>(
    context: &O,
    properties: Option<&O>,
    event_type: EventType,
) -> ContextFields {
    let page = context.object("page");
    let campaign = context.object("campaign");
    // Page calls carry page fields in `properties` (analytics.js sends both).
    let page_field = |name: &str| {
        page.as_ref()
            .and_then(|page| page.scalar(name))
            .or_else(|| match event_type {
                EventType::Page => properties.and_then(|p| p.scalar(name)),
                _ => None,
            })
    };
    let page_url = page_field("url");
    let page_search = page_field("search");
    let page_path = page_field("path").or_else(|| page_url.as_deref().and_then(url_path));
    let utm = UtmParams::from_page(page_search.as_deref(), page_url.as_deref());
    let campaign = |name: &str, fallback: &Option<String>| {
        campaign
            .as_ref()
            .and_then(|campaign| campaign.scalar(name))
            .or_else(|| fallback.clone())
    };
    ContextFields {
        page_referrer: page_field("referrer"),
        campaign_name: campaign("name", &utm.campaign),
        campaign_source: campaign("source", &utm.source),
        campaign_medium: campaign("medium", &utm.medium),
        campaign_term: campaign("term", &utm.term),
        campaign_content: campaign("content", &utm.content),
        library_name: context
            .object("library")
            .and_then(|library| library.scalar("name")),
        locale: context.scalar("locale"),
        user_agent: context_user_agent(context),
        ip: None,
        page_path,
        page_url,
    }
}

fn url_path(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.path().to_owned())
}

/// `utm_*` parameters of the page's query string.
#[derive(Debug, Default)]
struct UtmParams {
    source: Option<String>,
    medium: Option<String>,
    campaign: Option<String>,
    term: Option<String>,
    content: Option<String>,
}

impl UtmParams {
    fn from_page(search: Option<&str>, url: Option<&str>) -> Self {
        let query = search
            .map(|s| s.trim_start_matches('?').to_owned())
            .or_else(|| url.and_then(|u| url::Url::parse(u).ok()?.query().map(str::to_owned)));
        let mut params = UtmParams::default();
        let Some(query) = query else {
            return params;
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            let slot = match key.as_ref() {
                "utm_source" => &mut params.source,
                "utm_medium" => &mut params.medium,
                "utm_campaign" => &mut params.campaign,
                "utm_term" => &mut params.term,
                "utm_content" => &mut params.content,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> IngestContext<'static> {
        IngestContext {
            project_id: "shop",
            received_at: parse_time("2026-03-01T12:00:00Z").unwrap(),
            max_future: chrono::Duration::days(1),
            client_ip: None,
            keep_ip: true,
        }
    }

    fn single(event_type: EventType, value: Value) -> ParsedEvents {
        let body = serde_json::to_vec(&value).unwrap();
        Payload::single(&body, event_type, Limits::SEGMENT)
            .unwrap()
            .into_events(context())
    }

    fn batch(value: Value) -> ParsedEvents {
        let body = serde_json::to_vec(&value).unwrap();
        Payload::batch(&body, Limits::SEGMENT)
            .unwrap()
            .into_events(context())
    }

    #[test]
    fn a_track_call_is_normalised() {
        let parsed = single(
            EventType::Track,
            json!({
                "userId": "u1",
                "event": "Order Completed",
                "messageId": "m-1",
                "timestamp": "2026-03-01T11:00:00.250Z",
                "properties": {"revenue": 9.5, "plan": "pro"},
                "context": {
                    "ip": "203.0.113.9",
                    "library": {"name": "analytics-node", "version": "2.1.0"},
                    "page": {"url": "https://shop.example/cart?utm_source=news&utm_medium=email"},
                    "locale": "de-DE"
                }
            }),
        );
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let event = &parsed.events[0];
        assert_eq!(event.project_id, "shop");
        assert_eq!(event.message_id, "m-1");
        assert_eq!(event.event.as_deref(), Some("Order Completed"));
        assert_eq!(
            event.timestamp,
            parse_time("2026-03-01T11:00:00.25Z").unwrap()
        );
        assert_eq!(
            event.properties.as_deref(),
            Some(r#"{"revenue":9.5,"plan":"pro"}"#)
        );
        let fields = &event.context_fields;
        assert_eq!(fields.page_path.as_deref(), Some("/cart"));
        assert_eq!(fields.campaign_source.as_deref(), Some("news"));
        assert_eq!(fields.campaign_medium.as_deref(), Some("email"));
        assert_eq!(fields.library_name.as_deref(), Some("analytics-node"));
        assert_eq!(fields.locale.as_deref(), Some("de-DE"));
        let context: Value = serde_json::from_str(event.context.as_deref().unwrap()).unwrap();
        assert_eq!(context["ip"], "203.0.113.9");
    }

    fn reread(event: &Event) -> ParsedEvents {
        let mut wire = Vec::new();
        crate::wire::write_json(&mut wire, event).unwrap();
        let payload = Payload::message(&wire, 64 * 1024).unwrap();
        let received_at = payload
            .received_at()
            .expect("the wire form carries receivedAt");
        payload.into_events(IngestContext {
            received_at,
            // A different reader clock must not change the event.
            max_future: chrono::Duration::seconds(1),
            client_ip: None,
            keep_ip: true,
            ..context()
        })
    }

    #[test]
    fn a_received_event_read_back_from_its_wire_form_is_the_same_event() {
        let parsed = batch(json!({
            "sentAt": "2026-03-01T12:00:10Z",
            "context": {"locale": "fr-FR", "page": {"url": "https://x.example/a?utm_source=ads"}},
            "batch": [
                // Skew-corrected from timestamp and the batch sentAt.
                {"type": "track", "event": "Signed Up", "userId": 7, "timestamp": "2026-03-01T12:00:05Z",
                 "properties": {"plan": "pro", "n": 1.5, "tags": ["a"]}},
                // Skew-corrected from originalTimestamp, with its own sentAt.
                {"type": "page", "anonymousId": "a", "originalTimestamp": "2026-03-01T11:00:00.123456Z",
                 "sentAt": "2026-03-01T11:00:01Z", "context": {"locale": "de-DE"}},
                // Clamped: far in the future.
                {"type": "identify", "userId": "u", "timestamp": "2027-01-01T00:00:00Z", "sentAt": null,
                 "traits": {"email": "u@example.com"}},
                {"type": "alias", "userId": "u", "previousId": "a", "integrations": {"All": false}},
            ]
        }));
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.clamped, 1);
        for event in &parsed.events {
            let again = reread(event);
            assert!(again.rejected.is_empty(), "{:?}", again.rejected);
            assert_eq!(&again.events[0], event);
        }
    }

    #[test]
    fn a_stream_message_needs_a_type_and_respects_its_size_limit() {
        let body = br#"{"event":"x","userId":"u","writeKey":"wk_12345678"}"#;
        let payload = Payload::message(body, 1024).unwrap();
        assert_eq!(payload.write_key(), Some("wk_12345678"));
        assert_eq!(payload.received_at(), None);
        let parsed = payload.into_events(context());
        assert_eq!(parsed.rejected[0].code, RejectCode::MissingField);
        assert_eq!(parsed.rejected[0].field.as_deref(), Some("type"));

        let with_type = br#"{"type":"track","event":"x","userId":"u"}"#;
        let mut payload = Payload::message(with_type, 1024).unwrap();
        payload.fill_missing_message_ids(|| "kafka:events:2:17".into());
        assert_eq!(
            payload.into_events(context()).events[0].message_id,
            "kafka:events:2:17"
        );

        assert!(matches!(
            Payload::message(body, 10),
            Err(PayloadError::EventTooLarge { limit: 10, .. })
        ));
        assert!(matches!(
            Payload::message(b"[1]", 1024),
            Err(PayloadError::NotAnObject)
        ));
        assert!(matches!(
            Payload::message(br#"{"type":"track","receivedAt":"soon"}"#, 1024),
            Err(PayloadError::InvalidField {
                field: "receivedAt",
                ..
            })
        ));
    }

    #[test]
    fn a_message_without_received_at_is_corrected_for_clock_skew() {
        let body = br#"{"type":"track","event":"x","userId":"u","timestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:30Z"}"#;
        let parsed = Payload::message(body, 1024).unwrap().into_events(context());
        // receivedAt 12:00:00 minus 30 s in flight.
        assert_eq!(
            parsed.events[0].timestamp,
            parse_time("2026-03-01T11:59:30Z").unwrap()
        );
    }

    #[test]
    fn message_id_is_generated_when_absent() {
        let parsed = single(EventType::Page, json!({"anonymousId": "a1"}));
        assert_eq!(parsed.events[0].message_id.len(), 36);
        assert_eq!(parsed.events[0].event_type, EventType::Page);
    }

    #[test]
    fn required_fields_are_enforced_per_type() {
        let cases = [
            (
                json!({"type": "track", "event": "x"}),
                RejectCode::MissingField,
                "userId",
            ),
            (
                json!({"type": "track", "userId": "u"}),
                RejectCode::MissingField,
                "event",
            ),
            (
                json!({"type": "alias", "userId": "u"}),
                RejectCode::MissingField,
                "previousId",
            ),
            (
                json!({"type": "group", "userId": "u"}),
                RejectCode::MissingField,
                "groupId",
            ),
            (
                json!({"type": "click", "userId": "u"}),
                RejectCode::UnknownType,
                "type",
            ),
            (json!({"userId": "u"}), RejectCode::MissingField, "type"),
            (
                json!({"type": "identify", "userId": "u", "traits": [1]}),
                RejectCode::InvalidField,
                "traits",
            ),
            (
                json!({"type": "identify", "userId": "u", "context": "x"}),
                RejectCode::InvalidField,
                "context",
            ),
            (
                json!({"type": "identify", "userId": {"id": 1}}),
                RejectCode::InvalidField,
                "userId",
            ),
            (
                json!({"type": "page", "userId": "u", "timestamp": "yesterday"}),
                RejectCode::InvalidField,
                "timestamp",
            ),
            (
                json!({"type": "page", "userId": "u", "sentAt": 5}),
                RejectCode::InvalidField,
                "sentAt",
            ),
            (
                json!({"type": "page", "userId": "u", "timestamp": "1969-12-31T00:00:00Z"}),
                RejectCode::InvalidField,
                "timestamp",
            ),
        ];
        for (event, code, field) in cases {
            let parsed = batch(json!({"batch": [event.clone()]}));
            assert_eq!(parsed.events.len(), 0, "{event}");
            let rejection = &parsed.rejected[0];
            assert_eq!(
                (rejection.code, rejection.field.as_deref()),
                (code, Some(field)),
                "{event}"
            );
        }
    }

    #[test]
    fn valid_events_of_a_batch_survive_invalid_neighbours() {
        let parsed = batch(json!({"batch": [
            {"type": "track", "userId": "u", "event": "a"},
            {"type": "track", "userId": "u"},
            "not an object",
            {"type": "identify", "anonymousId": "x", "traits": {"email": "a@b.c"}}
        ]}));
        assert_eq!(parsed.events.len(), 2);
        let indexes: Vec<_> = parsed.rejected.iter().map(|r| (r.index, r.code)).collect();
        assert_eq!(
            indexes,
            vec![(1, RejectCode::MissingField), (2, RejectCode::NotAnObject)]
        );
        assert_eq!(
            parsed.events[1].traits.as_deref(),
            Some(r#"{"email":"a@b.c"}"#)
        );
    }

    #[test]
    fn an_identify_without_traits_takes_those_of_its_context() {
        let parsed = batch(json!({"batch": [
            {"type": "identify", "userId": "u", "context": {"traits": {"email": "a@b.c"}}},
            {"type": "identify", "userId": "u", "traits": {"plan": "pro"},
             "context": {"traits": {"email": "a@b.c"}}},
            {"type": "track", "userId": "u", "event": "e", "context": {"traits": {"email": "a@b.c"}}}
        ]}));
        let traits: Vec<_> = parsed.events.iter().map(|e| e.traits.as_deref()).collect();
        assert_eq!(
            traits,
            [
                Some(r#"{"email":"a@b.c"}"#),
                Some(r#"{"plan":"pro"}"#),
                None
            ]
        );
    }

    #[test]
    fn batch_context_and_sent_at_apply_to_each_event_without_overriding_it() {
        let parsed = batch(json!({
            "sentAt": "2026-03-01T12:10:00Z",
            "context": {"library": {"name": "analytics-python", "version": "2.3"}, "locale": "en-US"},
            "batch": [
                {"type": "track", "userId": "u", "event": "a", "timestamp": "2026-03-01T12:09:00Z",
                 "context": {"locale": "fr-FR", "library": {"version": "9"}}},
                {"type": "track", "userId": "u", "event": "b", "timestamp": "2026-03-01T12:08:00Z",
                 "sentAt": "2026-03-01T12:08:30Z"}
            ]
        }));
        let [first, second] = &parsed.events[..] else {
            panic!("{parsed:?}")
        };
        assert_eq!(first.context_fields.locale.as_deref(), Some("fr-FR"));
        assert_eq!(
            first.context_fields.library_name.as_deref(),
            Some("analytics-python")
        );
        let context: Value = serde_json::from_str(first.context.as_deref().unwrap()).unwrap();
        assert_eq!(context["library"]["version"], "9");
        // Clock 10 minutes fast: received 12:00, batch sent 12:10 device time.
        assert_eq!(first.timestamp, parse_time("2026-03-01T11:59:00Z").unwrap());
        assert_eq!(
            second.timestamp,
            parse_time("2026-03-01T11:59:30Z").unwrap()
        );
        assert_eq!(second.context_fields.locale.as_deref(), Some("en-US"));
    }

    #[test]
    fn future_events_are_clamped_and_counted() {
        let parsed = single(
            EventType::Track,
            json!({"userId": "u", "event": "a", "timestamp": "2026-03-05T00:00:00Z"}),
        );
        assert_eq!(parsed.clamped, 1);
        assert_eq!(parsed.events[0].timestamp, context().received_at);
    }

    #[test]
    fn endpoint_type_must_match_a_given_type() {
        let parsed = single(EventType::Track, json!({"type": "page", "userId": "u"}));
        assert_eq!(parsed.rejected[0].field.as_deref(), Some("type"));
    }

    #[test]
    fn request_level_errors() {
        let error = Payload::batch(b"{\"batch\": [1,", Limits::SEGMENT)
            .err()
            .unwrap();
        assert!(
            matches!(
                error,
                PayloadError::MalformedJson {
                    line: 1,
                    column: 13,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            Payload::single(b"[1]", EventType::Track, Limits::SEGMENT).err(),
            Some(PayloadError::NotAnObject)
        );
        assert!(matches!(
            Payload::batch(b"{\"batch\": {}}", Limits::SEGMENT).err(),
            Some(PayloadError::InvalidField { field: "batch", .. })
        ));
        let limits = Limits {
            max_batch_events: 2,
            ..Limits::SEGMENT
        };
        assert_eq!(
            Payload::batch(b"{\"batch\": [{},{},{}]}", limits).err(),
            Some(PayloadError::TooManyEvents { count: 3, limit: 2 })
        );
        let limits = Limits {
            max_event_bytes: 10,
            ..Limits::SEGMENT
        };
        assert!(matches!(
            Payload::single(b"{\"userId\": \"abcdefgh\"}", EventType::Track, limits).err(),
            Some(PayloadError::EventTooLarge {
                size: 22,
                limit: 10
            })
        ));
        let parsed = Payload::batch(b"{\"batch\": [{\"userId\": \"abcdefgh\"}]}", limits)
            .unwrap()
            .into_events(context());
        assert_eq!(parsed.rejected[0].code, RejectCode::TooLarge);
    }

    #[test]
    fn write_key_is_found_in_the_body_and_not_stored() {
        let payload = Payload::single(
            br#"{"writeKey": "wk_1", "userId": "u", "event": "e"}"#,
            EventType::Track,
            Limits::SEGMENT,
        )
        .unwrap();
        assert_eq!(payload.write_key(), Some("wk_1"));
        let payload =
            Payload::batch(br#"{"writeKey": "wk_2", "batch": []}"#, Limits::SEGMENT).unwrap();
        assert_eq!(payload.write_key(), Some("wk_2"));
        assert!(payload.is_empty());
    }

    #[test]
    fn times_without_offset_are_utc() {
        assert_eq!(
            parse_time("2026-03-01T10:00:00.5"),
            parse_time("2026-03-01T10:00:00.500Z")
        );
        assert_eq!(parse_time("2026-03-01"), parse_time("2026-03-01T00:00:00Z"));
        assert_eq!(
            parse_time("2026-03-01T10:00:00+0100"),
            parse_time("2026-03-01T09:00:00Z")
        );
        assert_eq!(parse_time("next tuesday"), None);
    }
}
