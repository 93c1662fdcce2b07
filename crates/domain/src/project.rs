//! Projects and the keys that authorise access to them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono_tz::Tz;

use crate::origin::OriginPolicy;

/// A tenant: its events, keys and reporting timezone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Stable identifier stored with every event.
    pub id: String,
    /// Timezone in which reports are cut by default.
    pub timezone: Tz,
    /// The longest gap between two events of one session.
    pub session_timeout: chrono::Duration,
    /// The web origins that may send events from a browser.
    pub allowed_origins: OriginPolicy,
    /// The site's own domains, lowercase: referrers from them are no source.
    pub domains: Vec<String>,
    /// Whether the client's IP stays in the stored `context.ip`.
    pub store_ip: bool,
}

impl Project {
    /// A project with the default session timeout, accepting any origin,
    /// with no domains, not keeping IPs.
    pub fn new(id: impl Into<String>, timezone: Tz) -> Self {
        Self {
            id: id.into(),
            timezone,
            session_timeout: chrono::Duration::from_std(DEFAULT_SESSION_TIMEOUT)
                .unwrap_or(chrono::Duration::MAX),
            allowed_origins: OriginPolicy::Any,
            domains: Vec::new(),
            store_ip: false,
        }
    }
}

/// A session ends after this long without an event, unless the project says otherwise.
pub const DEFAULT_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Id of the development project served when none is configured.
pub const DEVELOPMENT_PROJECT_ID: &str = "default";

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Sends events.
    Write,
    /// Queries and exports.
    Read,
    /// Opens the project's shared overview: queries, nothing else.
    Share,
}

/// Looks projects up by key.
#[derive(Debug, Default)]
pub struct ProjectRegistry {
    projects: Vec<Arc<Project>>,
    by_key: HashMap<String, (KeyKind, Arc<Project>)>,
    by_domain: HashMap<String, Arc<Project>>,
}

impl ProjectRegistry {
    /// Adds a project with the keys that reach it.
    pub fn add<'k>(
        &mut self,
        project: Project,
        keys: impl IntoIterator<Item = (KeyKind, &'k str)>,
    ) -> Arc<Project> {
        let project = Arc::new(project);
        for (kind, key) in keys {
            self.by_key.insert(key.to_owned(), (kind, project.clone()));
        }
        for domain in &project.domains {
            self.by_domain
                .entry(crate::visit::bare_host(domain))
                .or_insert_with(|| project.clone());
        }
        self.projects.push(project.clone());
        project
    }

    /// The project whose site is `domain` (in any case, `www.` or not): the
    /// first that lists it in its domains.
    pub fn by_domain(&self, domain: &str) -> Option<Arc<Project>> {
        self.by_domain
            .get(&crate::visit::bare_host(domain))
            .cloned()
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

    /// Every project, in the order they were added.
    pub fn projects(&self) -> &[Arc<Project>] {
        &self.projects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authorise_only_their_own_kind_and_project() {
        let mut registry = ProjectRegistry::default();
        let project = Project::new("shop", chrono_tz::UTC);
        registry.add(
            project,
            [
                (KeyKind::Write, "wk_shop_0001"),
                (KeyKind::Read, "rk_shop_0001"),
            ],
        );
        let found = registry.authorize("wk_shop_0001", KeyKind::Write).unwrap();
        assert_eq!(found.id, "shop");
        assert!(registry.authorize("wk_shop_0001", KeyKind::Read).is_none());
        assert!(registry.authorize("rk_shop_0001", KeyKind::Read).is_some());
        assert!(registry.authorize("wk_unknown", KeyKind::Write).is_none());
        assert_eq!(registry.project("shop").unwrap().id, "shop");
    }

    #[test]
    fn sites_find_their_project_by_domain() {
        let mut registry = ProjectRegistry::default();
        let mut project = Project::new("shop", chrono_tz::UTC);
        project.domains = vec!["www.shop.example".into(), "shop.test".into()];
        registry.add(project, []);
        assert_eq!(registry.by_domain("shop.example").unwrap().id, "shop");
        assert_eq!(registry.by_domain("shop.test").unwrap().id, "shop");
        assert!(registry.by_domain("other.example").is_none());
    }
}
