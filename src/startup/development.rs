//! The development project served when no project is configured: its keys
//! are generated once, then kept in storage so that they survive restarts.

use rand::distr::Alphanumeric;
use rand::Rng;

use crate::config::{ProjectConfig, Secret};
use crate::domain::project::DEVELOPMENT_PROJECT_ID;
use crate::storage::{Repository, StorageError};

/// Keys of the development project.
#[derive(Debug, Clone)]
pub struct DevelopmentKeys {
    /// Write key.
    pub write_key: Secret,
    /// Read key.
    pub read_key: Secret,
}

impl DevelopmentKeys {
    /// Fresh random keys (`wk_...`, `rk_...`).
    pub fn generate() -> Self {
        Self {
            write_key: Secret::new(random_key("wk_")),
            read_key: Secret::new(random_key("rk_")),
        }
    }

    /// The keys stored by an earlier start, or fresh ones stored now.
    pub async fn stored_or_new(repository: &dyn Repository) -> Result<Self, StorageError> {
        let fresh = Self::generate();
        let write_key = repository
            .setting_or_init("development.write_key", fresh.write_key.expose())
            .await?;
        let read_key = repository
            .setting_or_init("development.read_key", fresh.read_key.expose())
            .await?;
        Ok(Self {
            write_key: Secret::new(write_key),
            read_key: Secret::new(read_key),
        })
    }

    /// The development project's configuration.
    pub fn project_config(&self) -> ProjectConfig {
        ProjectConfig {
            write_keys: vec![self.write_key.clone()],
            read_keys: vec![self.read_key.clone()],
            ..ProjectConfig::new(DEVELOPMENT_PROJECT_ID)
        }
    }
}

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
    use crate::config::registry;
    use crate::domain::KeyKind;

    #[test]
    fn generated_keys_reach_the_development_project_by_kind() {
        let keys = DevelopmentKeys::generate();
        let registry = registry(&[keys.project_config()]);
        let project = registry
            .authorize(keys.write_key.expose(), KeyKind::Write)
            .unwrap();
        assert_eq!(project.id, DEVELOPMENT_PROJECT_ID);
        assert!(registry
            .authorize(keys.write_key.expose(), KeyKind::Read)
            .is_none());
        assert!(keys.write_key.expose().starts_with("wk_"));
        assert_eq!(keys.read_key.expose().len(), 35);
    }
}
