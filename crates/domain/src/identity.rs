//! Identity merge: `identify` and `alias` calls say that two user keys are one
//! person, and every count of users counts persons.
//!
//! A user key is the `userId` of an event, else its `anonymousId` (see
//! [`user_key`]). An `identify` call that carries both links the
//! `anonymousId` to the `userId`; an `alias` call links its `previousId` to its
//! `userId`. Links are transitive: the keys connected by links form one
//! person, whatever order the links arrive in, and a link applies to the
//! events stored before it as well as after.
//!
//! Storage keeps, per project, the person of every key that was ever merged
//! ([`Persons`]); keys never merged are their own person. When two persons
//! merge, the one named by the `userId` side stays and the other's keys move
//! to it.

use std::collections::HashMap;
use std::hash::Hash;

use super::{Event, EventType};

/// The identity an event belongs to before merging: `userId`, else `anonymousId`.
pub fn user_key(event: &Event) -> &str {
    event
        .user_id
        .as_deref()
        .or(event.anonymous_id.as_deref())
        .unwrap_or_default()
}

/// A link an event declares: `(merged key, key it joins)`, e.g.
/// `(anonymousId, userId)` of an identify call. `None` for other events and
/// for links of a key to itself.
pub fn identity_link(event: &Event) -> Option<(&str, &str)> {
    declared_link(
        event.event_type,
        event.user_id.as_deref(),
        event.anonymous_id.as_deref(),
        event.previous_id.as_deref(),
    )
}

/// The link of a call of `event_type` with these identity fields (see [`identity_link`]).
pub fn declared_link<'a>(
    event_type: EventType,
    user_id: Option<&'a str>,
    anonymous_id: Option<&'a str>,
    previous_id: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let user = user_id?;
    let other = match event_type {
        EventType::Identify => anonymous_id?,
        EventType::Alias => previous_id?,
        _ => return None,
    };
    (other != user && !other.is_empty()).then_some((other, user))
}

/// A key whose person changed, with the person it had before (`None`: itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonChange<K> {
    /// The key that moved.
    pub key: K,
    /// Its person now.
    pub person: K,
    /// Its person before, `None` when it was its own.
    pub previous: Option<K>,
}

/// The persons of one project's merged keys; every other key is its own person.
#[derive(Debug, Clone)]
pub struct Persons<K> {
    person_of: HashMap<K, K>,
    members: HashMap<K, Vec<K>>,
}

impl<K> Default for Persons<K> {
    fn default() -> Self {
        Persons {
            person_of: HashMap::new(),
            members: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Persons<K> {
    /// Records that `key` belongs to `person` (as loaded from storage).
    pub fn insert(&mut self, key: K, person: K) {
        if key == person {
            return;
        }
        self.person_of.insert(key, person);
        self.members.entry(person).or_default().push(key);
    }

    /// The person of a key.
    pub fn person(&self, key: K) -> K {
        self.person_of.get(&key).copied().unwrap_or(key)
    }

    /// Keys merged into `person` (not counting the person's own key).
    pub fn members(&self, person: K) -> &[K] {
        self.members.get(&person).map_or(&[], Vec::as_slice)
    }

    /// Merges `merged`'s person into `joined`'s; returns the keys that moved.
    pub fn link(&mut self, merged: K, joined: K) -> Vec<PersonChange<K>> {
        let (from, to) = (self.person(merged), self.person(joined));
        if from == to {
            return Vec::new();
        }
        let moved = self.members.remove(&from).unwrap_or_default();
        let mut changes = Vec::with_capacity(moved.len() + 1);
        for key in std::iter::once(from).chain(moved) {
            let previous = self.person_of.insert(key, to);
            changes.push(PersonChange {
                key,
                person: to,
                previous,
            });
        }
        self.members
            .entry(to)
            .or_default()
            .extend(changes.iter().map(|c| c.key));
        changes
    }

    /// Takes back changes, newest first (when the write that made them failed).
    pub fn undo(&mut self, changes: &[PersonChange<K>]) {
        for change in changes.iter().rev() {
            if let Some(members) = self.members.get_mut(&change.person) {
                members.retain(|k| *k != change.key);
                if members.is_empty() {
                    self.members.remove(&change.person);
                }
            }
            match change.previous {
                Some(previous) => {
                    self.person_of.insert(change.key, previous);
                    self.members.entry(previous).or_default().push(change.key);
                }
                None => {
                    self.person_of.remove(&change.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_transitive_and_the_joined_person_stays() {
        let mut persons = Persons::default();
        assert_eq!(persons.link(1, 2).len(), 1);
        assert_eq!(persons.link(3, 4).len(), 1);
        // 4's person (4, holding 3) joins 2's person (2, holding 1).
        let changes = persons.link(4, 1);
        assert_eq!(changes.len(), 2);
        for key in 1..=4 {
            assert_eq!(persons.person(key), 2, "key {key}");
        }
        assert!(persons.link(3, 2).is_empty(), "already one person");
        let mut members = persons.members(2).to_vec();
        members.sort_unstable();
        assert_eq!(members, vec![1, 3, 4]);
    }

    #[test]
    fn undone_changes_restore_the_persons_before() {
        let mut persons = Persons::default();
        persons.link(1, 2);
        persons.link(3, 4);
        let changes = persons.link(2, 4);
        persons.undo(&changes);
        assert_eq!(
            (1..=4).map(|k| persons.person(k)).collect::<Vec<_>>(),
            vec![2, 2, 4, 4]
        );
        assert_eq!(persons.members(2), &[1]);
        assert_eq!(persons.members(4), &[3]);
    }
}
