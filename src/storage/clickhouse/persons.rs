//! Identity merge in ClickHouse: `person_links` holds, per project, the
//! person of every user hash that was merged into another's (see
//! [`crate::domain::identity`]).
//!
//! The writer applies a batch's links before it stores the batch's events:
//! it hashes the keys as the `user_hash` column does (`cityHash64`, on the
//! server), reads the current persons of the keys and the members of those
//! persons, merges in memory, and inserts the keys that moved with a new
//! version. `ReplacingMergeTree` keeps the latest version of each key, and
//! queries read the table `FINAL`, joined to `events` by `user_hash` (a small
//! right-hand table: one row per merged key).

use std::collections::{BTreeMap, HashMap};

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::storage_error;
use crate::domain::identity::Persons;
use crate::storage::StorageError;

/// One row of `person_links`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct PersonLinkRow {
    project_id: String,
    user_hash: u64,
    person_hash: u64,
    version: u64,
}

/// The `events` source joined with each event's person, for queries:
/// `person_hash` is 0 where the user was never merged.
pub(super) const PERSON_EXPRESSION: &str = "if(person_hash = 0, user_hash, person_hash)";

/// ` ANY LEFT JOIN` of the project's links (bind the project id once).
pub(super) const PERSON_JOIN: &str = " ANY LEFT JOIN (SELECT user_hash, person_hash FROM person_links FINAL WHERE project_id = ?) AS links USING (user_hash)";

/// `?, ?, ...`: `count` placeholders for a list of bound values.
pub(super) fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// `cityHash64` of each key, as the server computes `user_hash`.
async fn hashes(client: &Client, keys: &[&str]) -> Result<HashMap<String, u64>, StorageError> {
    let sql = format!(
        "SELECT key, cityHash64(key) FROM (SELECT arrayJoin([{}]) AS key)",
        placeholders(keys.len())
    );
    let query = keys
        .iter()
        .fold(client.query(&sql), |query, key| query.bind(*key));
    let rows: Vec<(String, u64)> = query
        .fetch_all()
        .await
        .map_err(|e| storage_error("hashing user keys", e))?;
    Ok(rows.into_iter().collect())
}

/// Rows of `person_links` whose `column` is among `values`.
async fn links_where(
    client: &Client,
    project_id: &str,
    column: &str,
    values: &[u64],
) -> Result<Vec<(u64, u64)>, StorageError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT user_hash, person_hash FROM person_links FINAL WHERE project_id = ? AND {column} IN ({})",
        placeholders(values.len())
    );
    let query = values
        .iter()
        .fold(client.query(&sql).bind(project_id), |query, value| {
            query.bind(*value)
        });
    query
        .fetch_all()
        .await
        .map_err(|e| storage_error("reading person_links", e))
}

/// Applies each project's links, `(merged key, joined key)` in order.
pub(super) async fn apply_by_project(
    client: &Client,
    links: &BTreeMap<&str, Vec<(&str, &str)>>,
) -> Result<(), StorageError> {
    for (project_id, links) in links {
        apply_links(client, project_id, links).await?;
    }
    Ok(())
}

/// Applies one project's links, `(merged key, joined key)` in order.
async fn apply_links(
    client: &Client,
    project_id: &str,
    links: &[(&str, &str)],
) -> Result<(), StorageError> {
    if links.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<&str> = links.iter().flat_map(|(a, b)| [*a, *b]).collect();
    keys.sort_unstable();
    keys.dedup();
    let hashes = hashes(client, &keys).await?;
    let hash = |key: &str| hashes.get(key).copied().unwrap_or_default();
    let key_hashes: Vec<u64> = keys.iter().map(|key| hash(key)).collect();

    let mut persons = Persons::default();
    for (key, person) in links_where(client, project_id, "user_hash", &key_hashes).await? {
        persons.insert(key, person);
    }
    let mut roots: Vec<u64> = key_hashes.iter().map(|key| persons.person(*key)).collect();
    roots.sort_unstable();
    roots.dedup();
    for (key, person) in links_where(client, project_id, "person_hash", &roots).await? {
        if persons.person(key) == key {
            persons.insert(key, person);
        }
    }

    let mut moved: BTreeMap<u64, u64> = BTreeMap::new();
    for (merged, joined) in links {
        for change in persons.link(hash(merged), hash(joined)) {
            moved.insert(change.key, change.person);
        }
    }
    if moved.is_empty() {
        return Ok(());
    }
    let version = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let failed = |e| storage_error("storing person links", e);
    let mut insert = client
        .insert::<PersonLinkRow>("person_links")
        .await
        .map_err(failed)?;
    for (user_hash, person_hash) in moved {
        let row = PersonLinkRow {
            project_id: project_id.to_owned(),
            user_hash,
            person_hash,
            version,
        };
        insert.write(&row).await.map_err(failed)?;
    }
    insert.end().await.map_err(failed)
}
