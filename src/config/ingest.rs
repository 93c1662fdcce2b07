//! The `[ingest]` section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Ingest limits and time policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Events with a timestamp further than this after `receivedAt` are clamped to `receivedAt`.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Capacity of the in-process queue, in events; a full queue answers 503.
    /// At least the largest batch a request (2,500 events) or the Kafka
    /// consumer (`kafka.batch_max_messages`) hands over at once.
    pub queue_capacity: usize,
    /// The service's address as browsers reach it (`https://analytics.example`),
    /// written into the settings documents that browser SDKs fetch before
    /// sending. Absent: the request's `Host`, over plain HTTP.
    pub public_url: Option<String>,
    /// Proxies (CIDRs, e.g. `10.0.0.0/8`, or addresses) whose
    /// `X-Forwarded-For` or `Forwarded` header names the client. From any
    /// other peer, the client is the socket's address. Empty: no proxy.
    pub trusted_proxies: Vec<String>,
    /// Drop events from crawlers, headless browsers and other automated
    /// clients (counted in `analytics_events_dropped_total{reason}`).
    pub drop_bots: bool,
    /// Answer a request once its events are in the ingest journal (a log on
    /// disk, synced before the answer) rather than once storage holds them;
    /// storage then takes them in batches as large as the load makes them,
    /// and reads wait for the events acknowledged before them. Default: on
    /// with DuckDB, off with ClickHouse. Not used when HTTP ingest produces
    /// to Kafka.
    pub journal: Option<bool>,
    /// Directory of the ingest journal. Default: the DuckDB file's path
    /// with `.journal` appended; to be set for a journal with ClickHouse.
    pub journal_dir: Option<std::path::PathBuf>,
}

impl IngestConfig {
    /// `max_future` as a signed duration, for comparisons with event times.
    pub fn future_tolerance(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.max_future).unwrap_or(chrono::Duration::MAX)
    }

    /// `public_url`, parsed; validation has refused what does not parse.
    pub fn public_url(&self) -> Option<url::Url> {
        self.public_url
            .as_deref()
            .and_then(|text| parse_public_url(text).ok())
    }

    /// `trusted_proxies`, parsed; validation has refused what does not parse.
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|text| parse_network(text).ok())
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(text) = &self.public_url {
            parse_public_url(text)
                .map_err(|message| ConfigError::invalid("ingest.public_url", message))?;
        }
        for (index, text) in self.trusted_proxies.iter().enumerate() {
            parse_network(text).map_err(|message| {
                ConfigError::invalid(format!("ingest.trusted_proxies[{index}]"), message)
            })?;
        }
        Ok(())
    }
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or one address (`127.0.0.1`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR or an IP address, e.g. \"10.0.0.0/8\""))
}

fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("{text:?} is not a URL ({e}), e.g. \"https://analytics.example\""))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must have no query or fragment"));
    }
    Ok(url)
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_future: Duration::from_secs(24 * 3600),
            queue_capacity: 60_000,
            public_url: None,
            trusted_proxies: Vec::new(),
            drop_bots: true,
            journal: None,
            journal_dir: None,
        }
    }
}
