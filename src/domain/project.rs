//! Projects and the keys that authorise access to them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono_tz::Tz;
use rand::distr::Alphanumeric;
use rand::Rng;

use crate::config::{ProjectConfig, Secret};

/// A tenant: its events, keys and reporting timezone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Stable identifier stored with every event.
    pub id: String,
    /// Timezone in which reports are cut by default.
    pub timezone: Tz,
    /// The longest gap between two events of one session.
    pub session_timeout: chrono::Duration,
}

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Sends events.
    Write,
    /// Queries and exports.
    Read,
}

/// Looks projects up by key.
#[derive(Debug, Default)]
pub struct ProjectRegistry {
    projects: Vec<Arc<Project>>,
    by_key: HashMap<String, (KeyKind, Arc<Project>)>,
}

impl ProjectRegistry {
    /// Builds the registry from validated configuration.
    ///
    /// # Panics
    /// If a timezone does not parse; [`crate::config::Config::validate`] rules that out.
    pub fn from_config(projects: &[ProjectConfig]) -> Self {
        let mut registry = ProjectRegistry::default();
        for config in projects {
            let project = Arc::new(Project {
                id: config.id.clone(),
                timezone: config.timezone.parse().expect("validated timezone"),
                session_timeout: chrono::Duration::from_std(config.session_timeout)
                    .unwrap_or(chrono::Duration::MAX),
            });
            for key in &config.write_keys {
                registry
                    .by_key
                    .insert(key.expose().to_owned(), (KeyKind::Write, project.clone()));
            }
            for key in &config.read_keys {
                registry
                    .by_key
                    .insert(key.expose().to_owned(), (KeyKind::Read, project.clone()));
            }
            registry.projects.push(project);
        }
        registry
    }

    /// The project a key of the given kind belongs to.
    pub fn authorize(&self, key: &str, kind: KeyKind) -> Option<Arc<Project>> {
        match self.by_key.get(key) {
            Some((found, project)) if *found == kind => Some(project.clone()),
            _ => None,
        }
    }

    /// The project with this id.
    pub fn project(&self, id: &str) -> Option<Arc<Project>> {
        self.projects.iter().find(|p| p.id == id).cloned()
    }

    /// Every project, in configuration order.
    pub fn projects(&self) -> &[Arc<Project>] {
        &self.projects
    }
}

/// Keys of the development project created when none is configured.
#[derive(Debug, Clone)]
pub struct DevelopmentKeys {
    /// Write key.
    pub write_key: Secret,
    /// Read key.
    pub read_key: Secret,
}

impl DevelopmentKeys {
    /// Id of the development project.
    pub const PROJECT_ID: &'static str = "default";

    /// Fresh random keys (`wk_...`, `rk_...`).
    pub fn generate() -> Self {
        Self {
            write_key: Secret::new(random_key("wk_")),
            read_key: Secret::new(random_key("rk_")),
        }
    }

    /// The development project's configuration.
    pub fn project_config(&self) -> ProjectConfig {
        ProjectConfig {
            id: Self::PROJECT_ID.to_owned(),
            timezone: "UTC".to_owned(),
            write_keys: vec![self.write_key.clone()],
            read_keys: vec![self.read_key.clone()],
            session_timeout: DEFAULT_SESSION_TIMEOUT,
        }
    }
}

/// A session ends after this long without an event, unless the project says otherwise.
pub const DEFAULT_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

fn random_key(prefix: &str) -> String {
    let body: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authorise_only_their_own_kind_and_project() {
        let keys = DevelopmentKeys::generate();
        let registry = ProjectRegistry::from_config(&[keys.project_config()]);
        let project = registry
            .authorize(keys.write_key.expose(), KeyKind::Write)
            .unwrap();
        assert_eq!(project.id, "default");
        assert!(registry
            .authorize(keys.write_key.expose(), KeyKind::Read)
            .is_none());
        assert!(registry
            .authorize(keys.read_key.expose(), KeyKind::Read)
            .is_some());
        assert!(registry.authorize("wk_unknown", KeyKind::Write).is_none());
        assert!(keys.write_key.expose().starts_with("wk_"));
        assert_eq!(keys.read_key.expose().len(), 35);
    }
}
