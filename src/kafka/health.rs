//! Readiness of the broker: reachable, and every topic the service uses exists.

use std::time::Duration;

use super::Producer;
use async_trait::async_trait;

use crate::domain::dependency::DependencyCheck;

/// Asks the brokers for metadata and looks for the configured topics.
pub struct BrokerCheck {
    client: Producer,
    topics: Vec<String>,
    timeout: Duration,
}

impl BrokerCheck {
    /// A check through `client` (any of the service's producers) for `topics`.
    pub fn new(client: Producer, topics: Vec<String>, timeout: Duration) -> Self {
        Self {
            client,
            topics,
            timeout,
        }
    }
}

#[async_trait]
impl DependencyCheck for BrokerCheck {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let metadata = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            client.client().fetch_metadata(None, timeout)
        })
        .await
        .map_err(|e| format!("metadata request aborted: {e}"))?
        .map_err(|e| format!("brokers unreachable: {e}"))?;
        for wanted in &self.topics {
            match metadata.topics().iter().find(|t| t.name() == wanted) {
                None => return Err(format!("topic {wanted:?} does not exist")),
                Some(topic) => {
                    if let Some(error) = topic.error() {
                        return Err(format!("topic {wanted:?}: {error:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}
