//! JSON read where it lies: strings borrowed from the request body, an
//! object's members kept as the text of their values, and that text stored
//! as sent (without its insignificant whitespace) instead of being parsed
//! into a tree and written out again.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A JSON string, borrowed from the input unless it holds escapes.
#[derive(Debug)]
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// The members of a JSON object, in their order, each value as its text.
#[derive(Debug, Default)]
pub(super) struct Members<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    entries.push((key.0, value));
                }
                Ok(Members { entries })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl<'a> Members<'a> {
    /// The members of `raw`, when it is an object.
    pub(super) fn of(raw: &'a RawValue) -> Option<Self> {
        if !raw.get().starts_with('{') {
            return None;
        }
        serde_json::from_str(raw.get()).ok()
    }

    /// The value of member `key` (the last, should the object repeat it).
    pub(super) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
    }

    /// Whether a name appears twice (the object then reads as its last).
    pub(super) fn repeats_a_name(&self) -> bool {
        let entries = &self.entries;
        entries
            .iter()
            .enumerate()
            .any(|(i, (name, _))| entries[..i].iter().any(|(earlier, _)| earlier == name))
    }

    /// The object's text without member `key`; the last member takes its
    /// place, as `serde_json::Map::remove` leaves an object.
    pub(super) fn text_without(mut self, key: &str) -> String {
        if let Some(at) = self.entries.iter().position(|(name, _)| name == key) {
            self.entries.swap_remove(at);
        }
        let mut text = String::with_capacity(64);
        text.push('{');
        for (i, (name, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(name.as_ref()).unwrap_or_default());
            text.push(':');
            push_compact(&mut text, value.get());
        }
        text.push('}');
        text
    }
}

/// The text of a JSON object as stored: as sent, without whitespace between
/// tokens; an object that repeats a name is stored as read (its last value).
pub(super) fn object_text(raw: &RawValue, members: &Members<'_>) -> String {
    if members.repeats_a_name() {
        return match serde_json::from_str::<Map<String, Value>>(raw.get()) {
            Ok(map) => Value::Object(map).to_string(),
            Err(_) => compact(raw.get()),
        };
    }
    compact(raw.get())
}

/// `text` (valid JSON) without whitespace between its tokens.
pub(super) fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_compact(&mut out, text);
    out
}

fn push_compact(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        out.push_str(text);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
            // Whitespace is ASCII, so `start..i` ends on a character boundary.
            out.push_str(&text[start..i]);
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
}

/// The text of a scalar as a column keeps it: a non-empty string, a number
/// or a boolean (the same as [`super::scalar_text`] of its parsed value).
pub(super) fn scalar(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => {
            let value: Text<'_> = serde_json::from_str(text).ok()?;
            (!value.0.is_empty()).then(|| value.0.into_owned())
        }
        b't' | b'f' => Some(text.to_owned()),
        b'-' | b'0'..=b'9' => serde_json::from_str::<serde_json::Number>(text)
            .ok()
            .map(|number| number.to_string()),
        _ => None,
    }
}

/// A string's value, borrowed when it has no escapes.
pub(super) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|text| text.0)
}

/// Read access to an object's members, whichever way it was parsed.
pub(super) trait JsonObject {
    /// An object member, read the same way.
    type Object<'s>: JsonObject
    where
        Self: 's;
    /// [`scalar`] of member `key`.
    fn scalar(&self, key: &str) -> Option<String>;
    /// Member `key` when it is an object.
    fn object(&self, key: &str) -> Option<Self::Object<'_>>;
    /// Member `key` when it is a string.
    fn string(&self, key: &str) -> Option<Cow<'_, str>>;
}

impl JsonObject for &Map<String, Value> {
    type Object<'s>
        = &'s Map<String, Value>
    where
        Self: 's;

    fn scalar(&self, key: &str) -> Option<String> {
        super::scalar_text(self.get(key))
    }

    fn object(&self, key: &str) -> Option<Self::Object<'_>> {
        self.get(key)?.as_object()
    }

    fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)?.as_str().map(Cow::Borrowed)
    }
}

impl<'a> JsonObject for Members<'a> {
    type Object<'s>
        = Members<'a>
    where
        Self: 's;

    fn scalar(&self, key: &str) -> Option<String> {
        scalar(self.get(key)?)
    }

    fn object(&self, key: &str) -> Option<Self::Object<'_>> {
        Members::of(self.get(key)?)
    }

    fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        string(self.get(key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn whitespace_goes_but_not_inside_strings() {
        assert_eq!(
            compact("{ \"a b\" : [1, 2],\n\t\"c\": \"x \\\" y\" }"),
            r#"{"a b":[1,2],"c":"x \" y"}"#
        );
        assert_eq!(compact(r#"{"a":1}"#), r#"{"a":1}"#);
    }

    #[test]
    fn members_read_the_last_of_a_repeated_name() {
        let text = raw(r#"{"a": 1, "b": {"c": "x"}, "a": 2}"#);
        let members = Members::of(&text).unwrap();
        assert_eq!(members.scalar("a").as_deref(), Some("2"));
        assert_eq!(
            members.object("b").and_then(|b| b.scalar("c")).as_deref(),
            Some("x")
        );
        assert!(members.repeats_a_name());
        assert_eq!(object_text(&text, &members), r#"{"a":2,"b":{"c":"x"}}"#);
    }

    #[test]
    fn scalars_read_as_their_parsed_values_print() {
        for (text, expected) in [
            (r#""x""#, Some("x")),
            (r#""""#, None),
            ("true", Some("true")),
            ("1.50", Some("1.5")),
            ("-3", Some("-3")),
            ("null", None),
            ("[1]", None),
            (r#""\u00e9""#, Some("é")),
        ] {
            let value = raw(text);
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(scalar(&value).as_deref(), expected, "{text}");
            assert_eq!(
                super::super::scalar_text(Some(&parsed)).as_deref(),
                expected
            );
        }
    }

    #[test]
    fn removing_a_member_moves_the_last_into_its_place() {
        let text = raw(r#"{"ip": "1.2.3.4", "a": 1, "b": [true]}"#);
        let without = Members::of(&text).unwrap().text_without("ip");
        let mut map: Map<String, Value> = serde_json::from_str(text.get()).unwrap();
        map.remove("ip");
        assert_eq!(without, Value::Object(map).to_string());
        assert_eq!(without, r#"{"b":[true],"a":1}"#);
    }
}
