//! The `[dashboard]` section: the web dashboard served at `/`.

use serde::{Deserialize, Serialize};

/// The dashboard built into the binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Whether `/` serves the dashboard (off: 404, the API alone).
    pub enabled: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}
