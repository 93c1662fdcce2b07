//! Dense user numbers and the persons they belong to.
//!
//! Each project's users (`userId`, else `anonymousId`) are numbered 1, 2, 3,
//! ... in order of first appearance, and every event row carries its user's
//! number. Counting distinct users then works on small integers, and on
//! bitmaps when a query has few groups, instead of hashing strings.
//!
//! Merged users (see [`crate::domain::identity`]) are recorded in
//! `person_links`: one row per number whose person is another number. Queries
//! read a user's person as `coalesce(person_index, user_index)`, joining the
//! (small) link table only for projects that have links.
//!
//! The directory lives in memory (loaded from the tables at open) and is only
//! changed by the single writer, inside the transaction that stores the new
//! users and links; a failed transaction takes its changes back.

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, StringArray, UInt32Array};
use duckdb::Connection;

use crate::domain::identity::{declared_link, identity_link, user_key, PersonChange, Persons};
use crate::domain::{Event, EventType};
use crate::storage::duckdb::append::{append_columns, Table};
use crate::storage::StorageError;

#[derive(Debug, Default)]
struct ProjectUsers {
    numbers: HashMap<String, u32>,
    last: u32,
    persons: Persons<u32>,
}

impl ProjectUsers {
    /// The number of `key`, numbering it (and recording it as new) when unseen.
    fn number(&mut self, project_id: &str, key: &str, new_users: &mut Vec<NewUser>) -> u32 {
        if let Some(number) = self.numbers.get(key) {
            return *number;
        }
        self.last += 1;
        self.numbers.insert(key.to_owned(), self.last);
        new_users.push(NewUser {
            project_id: project_id.to_owned(),
            key: key.to_owned(),
            number: self.last,
        });
        self.last
    }

    /// Merges `merged`'s person into `joined`'s, numbering either key if new.
    fn link(&mut self, project_id: &str, merged: &str, joined: &str, assignment: &mut Assignment) {
        let merged = self.number(project_id, merged, &mut assignment.new_users);
        let joined = self.number(project_id, joined, &mut assignment.new_users);
        let changes = self.persons.link(merged, joined);
        assignment
            .links
            .extend(changes.into_iter().map(|change| LinkChange {
                project_id: project_id.to_owned(),
                change,
            }));
    }
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

/// A user number that moved to another person, in one project.
#[derive(Debug, Clone)]
pub struct LinkChange {
    project_id: String,
    change: PersonChange<u32>,
}

impl LinkChange {
    /// The project, the person the user had before, and its person now.
    pub fn persons(&self) -> (&str, u32, u32) {
        let before = self.change.previous.unwrap_or(self.change.key);
        (&self.project_id, before, self.change.person)
    }
}

/// Numbers for a batch of events.
#[derive(Debug, Default)]
pub struct Assignment {
    /// The user number of each event, in order.
    pub numbers: Vec<u32>,
    /// Users seen for the first time, to store with the batch.
    pub new_users: Vec<NewUser>,
    /// Users that the batch's identify and alias calls moved to another person.
    pub links: Vec<LinkChange>,
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
        let mut statement =
            conn.prepare("SELECT project_id, user_index, person_index FROM person_links")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let project: String = row.get(0)?;
            let users = directory.projects.entry(project).or_default();
            users.persons.insert(row.get(1)?, row.get(2)?);
        }
        Ok(directory)
    }

    /// Numbers every event's user, numbering new users as they come, and
    /// applies the links of identify and alias calls in order.
    pub fn assign(&mut self, events: &[Event]) -> Assignment {
        let mut assignment = Assignment {
            numbers: Vec::with_capacity(events.len()),
            new_users: Vec::new(),
            links: Vec::new(),
        };
        for event in events {
            let project_id = event.project_id.as_str();
            let users = self.projects.entry(project_id.to_owned()).or_default();
            let number = users.number(project_id, user_key(event), &mut assignment.new_users);
            assignment.numbers.push(number);
            if let Some((merged, joined)) = identity_link(event) {
                users.link(project_id, merged, joined, &mut assignment);
            }
        }
        assignment
    }

    /// Applies the links of every stored identify and alias call, oldest first
    /// (for files written before links were kept); returns what to store.
    pub fn links_of_stored_events(
        &mut self,
        conn: &Connection,
    ) -> Result<Assignment, StorageError> {
        let mut assignment = Assignment::default();
        let mut statement = conn.prepare(
            "SELECT project_id, type, user_id, anonymous_id, previous_id FROM events
             WHERE type IN ('identify', 'alias') AND user_id IS NOT NULL
             ORDER BY timestamp, message_id",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let project_id: String = row.get(0)?;
            let event_type: String = row.get(1)?;
            let Ok(event_type) = event_type.parse::<EventType>() else {
                continue;
            };
            let (user, anonymous, previous): (Option<String>, Option<String>, Option<String>) =
                (row.get(2)?, row.get(3)?, row.get(4)?);
            if let Some((merged, joined)) = declared_link(
                event_type,
                user.as_deref(),
                anonymous.as_deref(),
                previous.as_deref(),
            ) {
                let users = self.projects.entry(project_id.clone()).or_default();
                users.link(&project_id, merged, joined, &mut assignment);
            }
        }
        Ok(assignment)
    }

    /// The person of user `number` in a project.
    pub fn person(&self, project_id: &str, number: u32) -> u32 {
        self.projects
            .get(project_id)
            .map_or(number, |users| users.persons.person(number))
    }

    /// Takes back what an assignment changed, when its batch was not stored.
    pub fn forget(&mut self, assignment: &Assignment) {
        for link in assignment.links.iter().rev() {
            if let Some(users) = self.projects.get_mut(&link.project_id) {
                users.persons.undo(std::slice::from_ref(&link.change));
            }
        }
        for user in assignment.new_users.iter().rev() {
            if let Some(users) = self.projects.get_mut(&user.project_id) {
                users.numbers.remove(&user.key);
                users.last = users.last.min(user.number - 1);
            }
        }
    }
}

/// Stores an assignment's new users and links (inside the caller's transaction).
pub fn store(conn: &Connection, assignment: &Assignment) -> Result<(), StorageError> {
    store_users(conn, &assignment.new_users)?;
    store_links(conn, &assignment.links)
}

/// The writer's temporary table of a write's link changes.
const LINK_CHANGES: &str = "link_changes";

/// Creates the temporary table of link changes on the writer's connection.
pub(super) fn prepare(conn: &Connection) -> Result<(), StorageError> {
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE {LINK_CHANGES} (
             project_id VARCHAR NOT NULL, user_index UINTEGER NOT NULL, person_index UINTEGER NOT NULL
         );"
    ))?;
    Ok(())
}

/// Upserts the batch's links in one statement from a temporary table the
/// links are appended to as Arrow columns: a statement of literal rows
/// costs more to prepare than to run, and DuckDB upserts one row on a
/// primary key in about a millisecond. A key changed twice in the batch is
/// written once, with its last person (one statement may not touch a key
/// twice).
fn store_links(conn: &Connection, links: &[LinkChange]) -> Result<(), StorageError> {
    if links.is_empty() {
        return Ok(());
    }
    let mut last_change: HashMap<(&str, u32), usize> = HashMap::with_capacity(links.len());
    for (position, link) in links.iter().enumerate() {
        last_change.insert((link.project_id.as_str(), link.change.key), position);
    }
    let mut positions: Vec<usize> = last_change.into_values().collect();
    positions.sort_unstable();
    let last = || positions.iter().map(|&position| &links[position]);
    let projects = StringArray::from_iter_values(last().map(|link| link.project_id.as_str()));
    let users = UInt32Array::from_iter_values(last().map(|link| link.change.key));
    let persons = UInt32Array::from_iter_values(last().map(|link| link.change.person));
    append_columns(
        conn,
        Table::Temporary(LINK_CHANGES),
        "the link changes",
        [
            ("project_id", Arc::new(projects) as ArrayRef),
            ("user_index", Arc::new(users) as ArrayRef),
            ("person_index", Arc::new(persons) as ArrayRef),
        ],
    )?;
    conn.execute_batch(&format!(
        "INSERT OR REPLACE INTO person_links (project_id, user_index, person_index)
             SELECT project_id, user_index, person_index FROM {LINK_CHANGES};
         DELETE FROM {LINK_CHANGES};"
    ))?;
    Ok(())
}

fn store_users(conn: &Connection, new_users: &[NewUser]) -> Result<(), StorageError> {
    if new_users.is_empty() {
        return Ok(());
    }
    let projects: StringArray = new_users
        .iter()
        .map(|u| Some(u.project_id.as_str()))
        .collect();
    let keys: StringArray = new_users.iter().map(|u| Some(u.key.as_str())).collect();
    let numbers: UInt32Array = new_users.iter().map(|u| Some(u.number)).collect();
    append_columns(
        conn,
        Table::File("users"),
        "the users batch",
        [
            ("project_id", Arc::new(projects) as ArrayRef),
            ("user_key", Arc::new(keys) as ArrayRef),
            ("user_index", Arc::new(numbers) as ArrayRef),
        ],
    )?;
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
        directory.forget(&failed);
        let retried = directory.assign(&[event("a", "u4")]);
        assert_eq!(retried.numbers, vec![3], "the failed number is reused");
    }

    fn identify(project: &str, user: &str, anonymous: &str) -> Event {
        let mut event = event(project, user);
        event.event_type = crate::domain::EventType::Identify;
        event.anonymous_id = Some(anonymous.to_owned());
        event
    }

    #[test]
    fn links_number_both_keys_and_are_taken_back_on_failure() {
        let mut directory = UserDirectory::default();
        let first = directory.assign(&[event("a", "anon"), identify("a", "u1", "anon")]);
        assert_eq!(first.numbers, vec![1, 2]);
        assert_eq!(first.links.len(), 1);
        let persons = &directory.projects["a"].persons;
        assert_eq!(persons.person(1), 2);

        let failed = directory.assign(&[identify("a", "u3", "u1")]);
        assert_eq!(directory.projects["a"].persons.person(1), 3);
        directory.forget(&failed);
        let persons = &directory.projects["a"].persons;
        assert_eq!((persons.person(1), persons.person(2)), (2, 2));
        assert!(!directory.projects["a"].numbers.contains_key("u3"));
    }
}
