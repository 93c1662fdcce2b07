//! The `[[projects]]` tables, and the registry built from them.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};
use crate::domain::origin::{OriginPattern, OriginPolicy};
use crate::domain::project::DEFAULT_SESSION_TIMEOUT;
use crate::domain::{KeyKind, Project, ProjectRegistry};

/// One project: a tenant with its own keys and reporting timezone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Stable identifier, stored with every event.
    pub id: String,
    /// IANA timezone in which reports are cut by default.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Keys that may send events.
    #[serde(default)]
    pub write_keys: Vec<Secret>,
    /// Keys that may read (query, export).
    #[serde(default)]
    pub read_keys: Vec<Secret>,
    /// A session ends after this long without an event (default `30m`).
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Web origins that may send events from a browser (`https://shop.example`,
    /// `https://*.example.com`). Empty (the default): any origin.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The site's domains (`shop.example`): referrers from them or their
    /// subdomains are the site itself, not a source.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Keep the client's IP address in the stored `context.ip` (default
    /// false: it is used for location and then dropped).
    #[serde(default)]
    pub store_ip: bool,
    /// The token of a public link to the dashboard's overview (`/?share=TOKEN`),
    /// which reads the project's stats without a read key; absent (the
    /// default): no shared link.
    #[serde(default)]
    pub share_token: Option<Secret>,
}

fn default_session_timeout() -> Duration {
    DEFAULT_SESSION_TIMEOUT
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

impl ProjectConfig {
    /// A project named `id` with every other setting at its default: UTC,
    /// no keys, 30-minute sessions, any origin, no domains, IPs not kept.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            timezone: default_timezone(),
            write_keys: Vec::new(),
            read_keys: Vec::new(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            allowed_origins: Vec::new(),
            domains: Vec::new(),
            store_ip: false,
            share_token: None,
        }
    }

    /// The project this configuration describes; `None` when a value does
    /// not parse (which validation refuses).
    pub fn project(&self) -> Option<Project> {
        let origins = self
            .allowed_origins
            .iter()
            .map(|origin| OriginPattern::parse(origin).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Project {
            id: self.id.clone(),
            timezone: self.timezone.parse().ok()?,
            session_timeout: chrono::Duration::from_std(self.session_timeout)
                .unwrap_or(chrono::Duration::MAX),
            allowed_origins: OriginPolicy::from_patterns(origins),
            domains: self
                .domains
                .iter()
                .map(|domain| domain.trim().to_ascii_lowercase())
                .collect(),
            store_ip: self.store_ip,
        })
    }
}

/// The registry of validated project configurations, each reachable by its keys.
pub fn registry(projects: &[ProjectConfig]) -> ProjectRegistry {
    let mut registry = ProjectRegistry::default();
    for config in projects {
        let Some(project) = config.project() else {
            continue;
        };
        let keys = config
            .write_keys
            .iter()
            .map(|key| (KeyKind::Write, key.expose()))
            .chain(
                config
                    .read_keys
                    .iter()
                    .map(|key| (KeyKind::Read, key.expose())),
            )
            .chain(
                config
                    .share_token
                    .iter()
                    .map(|token| (KeyKind::Share, token.expose())),
            );
        registry.add(project, keys);
    }
    registry
}

/// Project ids are short and safe to use in paths, metrics and SQL literals.
pub fn is_valid_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks every project: ids, timezones, session timeouts and keys (unique
/// across projects and kinds).
pub(super) fn validate(projects: &[ProjectConfig]) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    let mut domains = HashSet::new();
    for (index, project) in projects.iter().enumerate() {
        let at = |field: &str| format!("projects[{index}].{field}");
        if !is_valid_project_id(&project.id) {
            return Err(ConfigError::invalid(
                at("id"),
                format!(
                    "{:?} is not a valid project id (1 to 64 characters: letters, digits, '-', '_')",
                    project.id
                ),
            ));
        }
        if !ids.insert(project.id.as_str()) {
            return Err(ConfigError::invalid(
                at("id"),
                format!("project id {:?} is used twice", project.id),
            ));
        }
        if project.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::invalid(
                at("timezone"),
                format!("{:?} is not an IANA timezone name", project.timezone),
            ));
        }
        if project.session_timeout.is_zero() {
            return Err(ConfigError::invalid(
                at("session_timeout"),
                "must be longer than zero, e.g. \"30m\"",
            ));
        }
        for (origin_index, origin) in project.allowed_origins.iter().enumerate() {
            if let Err(error) = OriginPattern::parse(origin) {
                return Err(ConfigError::invalid(
                    at(&format!("allowed_origins[{origin_index}]")),
                    error.to_string(),
                ));
            }
        }
        for (domain_index, domain) in project.domains.iter().enumerate() {
            let valid = !domain.is_empty()
                && domain.len() <= 253
                && !domain.contains("://")
                && url::Host::parse(domain).is_ok_and(|host| matches!(host, url::Host::Domain(_)));
            if !valid {
                return Err(ConfigError::invalid(
                    at(&format!("domains[{domain_index}]")),
                    format!("{domain:?} is not a domain name; write the host alone, e.g. \"shop.example\""),
                ));
            }
            if !domains.insert(crate::domain::visit::bare_host(domain)) {
                return Err(ConfigError::invalid(
                    at(&format!("domains[{domain_index}]")),
                    format!("{domain:?} is listed by another project (or twice); a site belongs to one project"),
                ));
            }
        }
        if project.write_keys.is_empty() {
            return Err(ConfigError::invalid(
                at("write_keys"),
                "at least one write key is required",
            ));
        }
        let share_token = project
            .share_token
            .iter()
            .map(|token| (at("share_token"), token));
        let listed = [
            ("write_keys", &project.write_keys),
            ("read_keys", &project.read_keys),
        ]
        .into_iter()
        .flat_map(|(field, list)| {
            list.iter().enumerate().map(move |(key_index, key)| {
                (format!("projects[{index}].{field}[{key_index}]"), key)
            })
        });
        for (name, key) in listed.chain(share_token) {
            if key.expose().len() < 8 || key.expose().chars().any(char::is_whitespace) {
                return Err(ConfigError::invalid(
                    name,
                    "a key must be at least 8 characters with no whitespace",
                ));
            }
            if !keys.insert(key.expose()) {
                return Err(ConfigError::invalid(
                    name,
                    "this key is already used (keys are unique across projects and kinds)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let project = ProjectConfig {
            write_keys: vec![Secret::new("wk_supersecret")],
            ..ProjectConfig::new("shop")
        };
        let printed = format!("{project:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
    }

    #[test]
    fn the_registry_reaches_each_project_by_its_keys() {
        let shop = ProjectConfig {
            timezone: "Europe/Berlin".into(),
            write_keys: vec![Secret::new("wk_shop_0001")],
            read_keys: vec![Secret::new("rk_shop_0001")],
            session_timeout: Duration::from_secs(600),
            allowed_origins: vec!["https://*.shop.example".into()],
            ..ProjectConfig::new("shop")
        };
        let registry = registry(&[shop]);
        let project = registry.authorize("rk_shop_0001", KeyKind::Read).unwrap();
        assert_eq!(project.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(project.session_timeout, chrono::Duration::minutes(10));
        assert!(registry.authorize("rk_shop_0001", KeyKind::Write).is_none());
        assert!(project.allowed_origins.allows("https://www.shop.example"));
        assert!(!project.allowed_origins.allows("https://elsewhere.example"));
    }

    #[test]
    fn a_share_token_is_checked_like_a_key_and_opens_its_project() {
        let with_token = |token: &str| ProjectConfig {
            write_keys: vec![Secret::new("wk_shop_0001")],
            read_keys: vec![Secret::new("rk_shop_0001")],
            share_token: Some(Secret::new(token)),
            ..ProjectConfig::new("shop")
        };
        let short = validate(&[with_token("short")]).unwrap_err().to_string();
        assert!(short.contains("projects[0].share_token"), "{short}");
        let reused = validate(&[with_token("rk_shop_0001")])
            .unwrap_err()
            .to_string();
        assert!(
            reused.contains("projects[0].share_token") && reused.contains("already used"),
            "{reused}"
        );
        let good = with_token("share_shop_0001");
        validate(std::slice::from_ref(&good)).unwrap();
        let registry = registry(&[good]);
        assert!(registry
            .authorize("share_shop_0001", KeyKind::Share)
            .is_some());
        assert!(registry
            .authorize("share_shop_0001", KeyKind::Read)
            .is_none());
    }
}
