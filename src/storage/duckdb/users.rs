//! Dense user numbers: each project's users (`userId`, else `anonymousId`) are
//! numbered 1, 2, 3, ... in order of first appearance, and every event row
//! carries its user's number. Counting distinct users then works on small
//! integers, and on bitmaps when a query has few groups, instead of hashing
//! strings.
//!
//! The directory lives in memory (loaded from the `users` table at open) and
//! is only changed by the single writer, inside the transaction that stores the
//! new users; a failed transaction takes its new numbers back.

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, StringArray, UInt32Array};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::Connection;

use crate::domain::Event;
use crate::storage::StorageError;

/// The identity whose distinct count is `users`.
pub fn user_key(event: &Event) -> &str {
    event
        .user_id
        .as_deref()
        .or(event.anonymous_id.as_deref())
        .unwrap_or_default()
}

#[derive(Debug, Default)]
struct ProjectUsers {
    numbers: HashMap<String, u32>,
    last: u32,
}

/// Every project's user numbers.
#[derive(Debug, Default)]
pub struct UserDirectory {
    projects: HashMap<String, ProjectUsers>,
}

/// A user numbered by [`UserDirectory::assign`] and not stored yet.
#[derive(Debug, Clone)]
pub struct NewUser {
    project_id: String,
    key: String,
    number: u32,
}

/// Numbers for a batch of events.
#[derive(Debug, Default)]
pub struct Assignment {
    /// The user number of each event, in order.
    pub numbers: Vec<u32>,
    /// Users seen for the first time, to store with the batch.
    pub new_users: Vec<NewUser>,
}

impl UserDirectory {
    /// Loads the directory from the `users` table.
    pub fn load(conn: &Connection) -> Result<Self, StorageError> {
        let mut directory = UserDirectory::default();
        let mut statement = conn.prepare("SELECT project_id, user_key, user_index FROM users")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let project: String = row.get(0)?;
            let number: u32 = row.get(2)?;
            let users = directory.projects.entry(project).or_default();
            users.numbers.insert(row.get(1)?, number);
            users.last = users.last.max(number);
        }
        Ok(directory)
    }

    /// Numbers every event's user, numbering new users as they come.
    pub fn assign(&mut self, events: &[Event]) -> Assignment {
        let mut assignment = Assignment {
            numbers: Vec::with_capacity(events.len()),
            new_users: Vec::new(),
        };
        for event in events {
            let users = self.projects.entry(event.project_id.clone()).or_default();
            let key = user_key(event);
            let number = match users.numbers.get(key) {
                Some(number) => *number,
                None => {
                    users.last += 1;
                    users.numbers.insert(key.to_owned(), users.last);
                    assignment.new_users.push(NewUser {
                        project_id: event.project_id.clone(),
                        key: key.to_owned(),
                        number: users.last,
                    });
                    users.last
                }
            };
            assignment.numbers.push(number);
        }
        assignment
    }

    /// Takes back the numbers of users whose batch was not stored.
    pub fn forget(&mut self, new_users: &[NewUser]) {
        for user in new_users.iter().rev() {
            if let Some(users) = self.projects.get_mut(&user.project_id) {
                users.numbers.remove(&user.key);
                users.last = users.last.min(user.number - 1);
            }
        }
    }
}

/// Appends new users to the `users` table (inside the caller's transaction).
pub fn store(conn: &Connection, new_users: &[NewUser]) -> Result<(), StorageError> {
    if new_users.is_empty() {
        return Ok(());
    }
    let projects: StringArray = new_users
        .iter()
        .map(|u| Some(u.project_id.as_str()))
        .collect();
    let keys: StringArray = new_users.iter().map(|u| Some(u.key.as_str())).collect();
    let numbers: UInt32Array = new_users.iter().map(|u| Some(u.number)).collect();
    let batch = RecordBatch::try_from_iter([
        ("project_id", Arc::new(projects) as ArrayRef),
        ("user_key", Arc::new(keys) as ArrayRef),
        ("user_index", Arc::new(numbers) as ArrayRef),
    ])
    .map_err(|e| StorageError::Backend(format!("building the users batch: {e}")))?;
    let mut appender = conn.appender("users")?;
    appender.append_record_batch(batch)?;
    appender.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::track_event;

    fn event(project: &str, user: &str) -> Event {
        track_event(project, &uuid::Uuid::new_v4().to_string(), user)
    }

    #[test]
    fn users_are_numbered_per_project_and_forgotten_on_failure() {
        let mut directory = UserDirectory::default();
        let first = directory.assign(&[
            event("a", "u1"),
            event("a", "u2"),
            event("a", "u1"),
            event("b", "u1"),
        ]);
        assert_eq!(first.numbers, vec![1, 2, 1, 1]);
        assert_eq!(first.new_users.len(), 3);

        let failed = directory.assign(&[event("a", "u3"), event("a", "u2")]);
        assert_eq!(failed.numbers, vec![3, 2]);
        directory.forget(&failed.new_users);
        let retried = directory.assign(&[event("a", "u4")]);
        assert_eq!(retried.numbers, vec![3], "the failed number is reused");
    }
}
