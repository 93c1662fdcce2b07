//! Dependencies whose health decides readiness (storage aside, which the
//! repository reports itself).

use async_trait::async_trait;

/// A dependency `/readyz` asks about, such as the Kafka broker.
#[async_trait]
pub trait DependencyCheck: Send + Sync {
    /// Name of the dependency in the readiness answer (`kafka`).
    fn name(&self) -> &'static str;
    /// `Ok` when usable, else what is wrong, in words an operator can act on.
    async fn check(&self) -> Result<(), String>;
}
