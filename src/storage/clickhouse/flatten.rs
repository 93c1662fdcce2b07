//! Flattening of JSON objects into parallel key/value lists.
//!
//! The ClickHouse backend keeps properties and context as two parallel string
//! arrays, which every server version can filter and group on. Nested objects
//! become dotted keys (`product.id`); strings are kept as they are; numbers,
//! booleans and arrays are kept as their JSON text; `null` is skipped (the
//! property counts as not set).

use serde_json::{Map, Value};

/// Deepest nesting that is flattened; deeper objects are kept as JSON text.
const MAX_DEPTH: usize = 8;

/// Parallel lists of dotted keys and their values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flattened {
    /// Dotted keys, in document order.
    pub keys: Vec<String>,
    /// Values parallel to `keys`.
    pub values: Vec<String>,
}

impl Flattened {
    /// Flattens `object`; a key already present (from an earlier call) is not repeated.
    pub fn add_object(&mut self, object: &Map<String, Value>) {
        let mut prefix = String::new();
        self.walk(object, &mut prefix, 0);
    }

    /// Flattens the JSON object in `text` (nothing for anything else).
    pub fn from_object_text(text: Option<&str>) -> Self {
        let mut flattened = Flattened::default();
        if let Some(Ok(Value::Object(object))) = text.map(serde_json::from_str::<Value>) {
            flattened.add_object(&object);
        }
        flattened
    }

    fn walk(&mut self, object: &Map<String, Value>, prefix: &mut String, depth: usize) {
        for (key, value) in object {
            let mark = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(key);
            match value {
                Value::Null => {}
                Value::Object(inner) if depth + 1 < MAX_DEPTH => {
                    self.walk(inner, prefix, depth + 1);
                }
                Value::String(text) => self.push(prefix, text.clone()),
                other => self.push(prefix, other.to_string()),
            }
            prefix.truncate(mark);
        }
    }

    fn push(&mut self, key: &str, value: String) {
        if self.keys.iter().any(|existing| existing == key) {
            return;
        }
        self.keys.push(key.to_owned());
        self.values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flatten(value: Value) -> Vec<(String, String)> {
        let mut flat = Flattened::default();
        flat.add_object(value.as_object().unwrap());
        flat.keys.into_iter().zip(flat.values).collect()
    }

    #[test]
    fn nested_objects_become_dotted_keys_and_scalars_keep_their_text() {
        let pairs = flatten(json!({
            "plan": "pro",
            "revenue": 9.5,
            "trial": false,
            "tags": ["a", "b"],
            "product": {"id": 42, "brand": {"name": "acme"}},
            "coupon": null
        }));
        assert_eq!(
            pairs,
            vec![
                ("plan".into(), "pro".into()),
                ("revenue".into(), "9.5".into()),
                ("trial".into(), "false".into()),
                ("tags".into(), "[\"a\",\"b\"]".into()),
                ("product.id".into(), "42".into()),
                ("product.brand.name".into(), "acme".into()),
            ]
        );
    }

    #[test]
    fn first_occurrence_of_a_key_wins_across_objects() {
        let mut flat = Flattened::default();
        flat.add_object(json!({"plan": "pro"}).as_object().unwrap());
        flat.add_object(
            json!({"plan": "free", "email": "a@b.c"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(flat.keys, vec!["plan", "email"]);
        assert_eq!(flat.values, vec!["pro", "a@b.c"]);
    }

    #[test]
    fn objects_beyond_the_depth_limit_are_kept_as_json() {
        let mut value = json!({"leaf": 1});
        for _ in 0..MAX_DEPTH {
            value = json!({ "n": value });
        }
        let pairs = flatten(value);
        assert_eq!(pairs.len(), 1);
        assert!(pairs[0].1.starts_with('{'), "{pairs:?}");
    }
}
