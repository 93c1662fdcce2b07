//! Plausible's events API (`POST /api/event`): the body its tracker and
//! server-side callers send, read into the Segment message the rest of
//! ingest takes.
//!
//! Fields, each under its long or short name: `name`/`n` (`pageview` is a
//! page view, anything else a custom event), `url`/`u`, `domain`/`d` (one
//! or several, comma-separated), `referrer`/`r`, `props`/`p` (an object, or
//! its JSON text; also `meta`/`m`), `revenue`/`$` (`{"amount", "currency"}`),
//! `h` (hash-based routing: the fragment is part of the page), `i`
//! (interactive). Engagement events (`engagement`) carry the scroll depth
//! `sd` (percent) and the engaged time `e` (milliseconds).

use serde_json::{Map, Value};

use crate::EventType;

/// Longest body accepted, as for one Segment call.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// Why a body is not a Plausible event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlausibleError {
    /// The field at fault (`name`, `url`, `domain`, ... or `body`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn fault(field: &'static str, message: impl Into<String>) -> PlausibleError {
    PlausibleError {
        field,
        message: message.into(),
    }
}

/// A Plausible event, read.
#[derive(Debug, Clone, PartialEq)]
pub struct PlausibleEvent {
    /// `pageview`, `engagement`, or a custom event's name.
    pub name: String,
    /// The page's URL.
    pub url: url::Url,
    /// The site domains it is sent for, lowercase, without `www.`.
    pub domains: Vec<String>,
    /// The referrer, as sent.
    pub referrer: Option<String>,
    /// Custom properties.
    pub props: Map<String, Value>,
    /// Revenue: the amount (as sent, a number or its text) and the currency.
    pub revenue: Option<(Value, String)>,
    /// Whether the URL's fragment names the page (hash-based routing).
    pub hash_mode: bool,
    /// Whether the visitor acted (non-interactive events do not end a bounce).
    pub interactive: bool,
    /// Engagement events: the deepest scroll, in percent.
    pub scroll_depth: Option<u64>,
    /// Engagement events: engaged time, in milliseconds.
    pub engagement_ms: Option<u64>,
}

/// The field under its long name, else its short one.
fn take(object: &mut Map<String, Value>, long: &str, short: &str) -> Option<Value> {
    object
        .remove(long)
        .or_else(|| object.remove(short))
        .filter(|v| !v.is_null())
}

fn text(value: Option<Value>, field: &'static str) -> Result<Option<String>, PlausibleError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(fault(field, "must be a string")),
    }
}

/// An object, or the JSON text of one (as Plausible's tracker sends props).
fn object_field(
    value: Option<Value>,
    field: &'static str,
) -> Result<Map<String, Value>, PlausibleError> {
    match value {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str(&text) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(fault(field, "must be an object, or its JSON text")),
        },
        Some(_) => Err(fault(field, "must be an object, or its JSON text")),
    }
}

fn flag(value: Option<Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(flag),
        Value::Number(number) => Some(number.as_f64() != Some(0.0)),
        Value::String(text) => Some(!matches!(text.as_str(), "" | "0" | "false")),
        _ => None,
    }
}

fn count(value: Option<Value>, field: &'static str) -> Result<Option<u64>, PlausibleError> {
    match value {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| Some(n.round() as u64))
            .ok_or_else(|| fault(field, "must be a number, 0 or more")),
        Some(_) => Err(fault(field, "must be a number, 0 or more")),
    }
}

impl PlausibleEvent {
    /// Reads a request body (JSON, whatever its content type says).
    pub fn parse(body: &[u8]) -> Result<Self, PlausibleError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(fault(
                "body",
                format!(
                    "is {} bytes; the limit is {MAX_BODY_BYTES} bytes",
                    body.len()
                ),
            ));
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| fault("body", format!("is not JSON: {e}")))?;
        let Value::Object(mut object) = value else {
            return Err(fault("body", "must be a JSON object"));
        };
        let name = text(take(&mut object, "name", "n"), "name")?
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| fault("name", "is required, e.g. \"pageview\""))?;
        if name.len() > 120 {
            return Err(fault("name", "is at most 120 characters"));
        }
        let url_text = text(take(&mut object, "url", "u"), "url")?
            .ok_or_else(|| fault("url", "is required: the page's URL"))?;
        let url = url::Url::parse(&url_text)
            .ok()
            .filter(|url| url.has_host())
            .ok_or_else(|| fault("url", format!("{url_text:?} is not an absolute URL")))?;
        let domains: Vec<String> = text(take(&mut object, "domain", "d"), "domain")?
            .unwrap_or_default()
            .split(',')
            .map(crate::visit::bare_host)
            .filter(|domain| !domain.is_empty())
            .collect();
        if domains.is_empty() {
            return Err(fault(
                "domain",
                "is required: the site's domain, as a project lists it in its domains",
            ));
        }
        let referrer = text(take(&mut object, "referrer", "r"), "referrer")?
            .filter(|referrer| !referrer.is_empty());
        let mut props = object_field(take(&mut object, "props", "p"), "props")?;
        props.extend(object_field(take(&mut object, "meta", "m"), "meta")?);
        let revenue = match take(&mut object, "revenue", "$") {
            None => None,
            Some(value) => {
                let revenue = object_field(Some(value), "revenue")?;
                let amount = revenue
                    .get("amount")
                    .filter(|a| {
                        a.is_number() || a.as_str().is_some_and(|t| t.parse::<f64>().is_ok())
                    })
                    .cloned()
                    .ok_or_else(|| fault("revenue", "needs a numeric amount"))?;
                let currency = revenue
                    .get("currency")
                    .and_then(Value::as_str)
                    .filter(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()))
                    .ok_or_else(|| {
                        fault(
                            "revenue",
                            "needs a currency: an ISO 4217 code, e.g. \"EUR\"",
                        )
                    })?
                    .to_ascii_uppercase();
                Some((amount, currency))
            }
        };
        Ok(PlausibleEvent {
            name,
            url,
            domains,
            referrer,
            props,
            revenue,
            hash_mode: flag(object.remove("h")).unwrap_or(false),
            interactive: flag(object.remove("i")).unwrap_or(true),
            scroll_depth: count(object.remove("sd"), "sd")?,
            engagement_ms: count(object.remove("e"), "e")?,
        })
    }

    /// Whether it is a page view.
    pub fn is_page_view(&self) -> bool {
        self.name == "pageview"
    }

    /// The page's path, with the fragment in hash mode.
    pub fn path(&self) -> String {
        let path = self.url.path().to_owned();
        match (self.hash_mode, self.url.fragment()) {
            (true, Some(fragment)) if !fragment.is_empty() => format!("{path}#{fragment}"),
            _ => path,
        }
    }

    /// The Segment message it stands for: a page call for a page view, else
    /// a track call named like the event, sent by `visitor` from a browser
    /// that called itself `user_agent`.
    pub fn into_segment(self, visitor: &str, user_agent: &str) -> (Map<String, Value>, EventType) {
        let event_type = if self.is_page_view() {
            EventType::Page
        } else {
            EventType::Track
        };
        let path = self.path();
        let mut properties = self.props;
        if let Some((amount, currency)) = self.revenue {
            properties.insert("revenue".into(), amount);
            properties.insert("currency".into(), Value::String(currency));
        }
        if let Some(depth) = self.scroll_depth {
            properties.insert("scroll_depth".into(), depth.into());
        }
        if let Some(engaged) = self.engagement_ms {
            properties.insert("engagement_time_ms".into(), engaged.into());
        }
        if !self.interactive {
            properties.insert("interactive".into(), false.into());
        }
        let mut page = Map::new();
        page.insert("url".into(), Value::String(self.url.to_string()));
        page.insert("path".into(), Value::String(path));
        if let Some(query) = self.url.query() {
            page.insert("search".into(), Value::String(format!("?{query}")));
        }
        if let Some(referrer) = self.referrer {
            page.insert("referrer".into(), Value::String(referrer));
        }
        let mut context = Map::new();
        context.insert("page".into(), Value::Object(page));
        context.insert("userAgent".into(), Value::String(user_agent.to_owned()));
        context.insert(
            "library".into(),
            serde_json::json!({"name": "plausible-events-api"}),
        );
        let mut message = Map::new();
        message.insert("anonymousId".into(), Value::String(visitor.to_owned()));
        if event_type == EventType::Track {
            message.insert("event".into(), Value::String(self.name));
        }
        if !properties.is_empty() {
            message.insert("properties".into(), Value::Object(properties));
        }
        message.insert("context".into(), Value::Object(context));
        (message, event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<PlausibleEvent, PlausibleError> {
        PlausibleEvent::parse(body.to_string().as_bytes())
    }

    #[test]
    fn short_and_long_names_read_alike() {
        let short = parse(
            json!({"n": "pageview", "u": "https://www.shop.example/a?b=1#top",
                                 "d": "www.Shop.example", "r": "https://google.com/", "h": 1}),
        )
        .unwrap();
        let long = parse(json!({"name": "pageview", "url": "https://www.shop.example/a?b=1#top",
                                "domain": "shop.example", "referrer": "https://google.com/", "h": true}))
        .unwrap();
        assert_eq!(short, long);
        assert_eq!(short.domains, ["shop.example"]);
        assert_eq!(short.path(), "/a#top");
    }

    #[test]
    fn props_revenue_and_engagement_become_properties() {
        let event = parse(json!({"n": "Purchase", "u": "https://shop.example/cart", "d": "shop.example,other.example",
                                 "p": "{\"plan\":\"pro\"}", "$": {"amount": "19.90", "currency": "eur"}}))
        .unwrap();
        assert_eq!(event.domains, ["shop.example", "other.example"]);
        let (message, event_type) = event.into_segment("v-1", "UA");
        assert_eq!(event_type, EventType::Track);
        assert_eq!(
            Value::Object(message),
            json!({"anonymousId": "v-1", "event": "Purchase",
                   "properties": {"plan": "pro", "revenue": "19.90", "currency": "EUR"},
                   "context": {"page": {"url": "https://shop.example/cart", "path": "/cart"},
                               "userAgent": "UA", "library": {"name": "plausible-events-api"}}})
        );
        let engagement = parse(
            json!({"n": "engagement", "u": "https://shop.example/", "d": "shop.example",
                                      "sd": 75, "e": 12000}),
        )
        .unwrap();
        let (message, _) = engagement.into_segment("v", "UA");
        assert_eq!(
            message["properties"],
            json!({"scroll_depth": 75, "engagement_time_ms": 12000})
        );
    }

    #[test]
    fn each_fault_names_its_field() {
        let cases = [
            (json!({"u": "https://s.example/", "d": "s.example"}), "name"),
            (json!({"n": "pageview", "d": "s.example"}), "url"),
            (
                json!({"n": "pageview", "u": "/relative", "d": "s.example"}),
                "url",
            ),
            (
                json!({"n": "pageview", "u": "https://s.example/"}),
                "domain",
            ),
            (
                json!({"n": "pageview", "u": "https://s.example/", "d": " , "}),
                "domain",
            ),
            (
                json!({"n": "x", "u": "https://s.example/", "d": "s.example", "p": [1]}),
                "props",
            ),
            (
                json!({"n": "x", "u": "https://s.example/", "d": "s.example", "$": {"amount": 1}}),
                "revenue",
            ),
            (
                json!({"n": "x", "u": "https://s.example/", "d": "s.example", "$": {"currency": "EUR"}}),
                "revenue",
            ),
            (
                json!({"n": "engagement", "u": "https://s.example/", "d": "s.example", "sd": -1}),
                "sd",
            ),
            (json!([1]), "body"),
        ];
        for (body, field) in cases {
            assert_eq!(parse(body.clone()).unwrap_err().field, field, "{body}");
        }
        assert_eq!(PlausibleEvent::parse(b"{").unwrap_err().field, "body");
    }
}
