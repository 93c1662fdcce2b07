//! Timelines: what analyses read from storage, and how they consume it.
//!
//! Storage selects a project's events in a range that pass a filter, resolves
//! each event's person, marks which of the request's event specifications
//! ("matchers") each event satisfies, and returns them ordered by person and
//! time, a chunk at a time. A [`PersonFold`] sees one person's events at a
//! time ([`Folding`] regroups the chunks), so that memory holds one person,
//! not the range.

use crate::query::{EventDimension, Filter, TimeRange};

/// Most matchers one timeline request may carry (bits of [`TimelineEvent::matches`]).
pub const MAX_MATCHERS: usize = 30;

/// What an analysis reads from storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRequest {
    /// The project whose events are read.
    pub project_id: String,
    /// The events' time span.
    pub range: TimeRange,
    /// Events outside it are not read at all.
    pub filter: Option<Filter>,
    /// Event specifications; bit `i` of [`TimelineEvent::matches`] is set when
    /// the event satisfies `matchers[i]`.
    pub matchers: Vec<Filter>,
    /// Also return events that satisfy no matcher.
    pub all_events: bool,
    /// Order events at the same instant by `messageId` (a string sort, so
    /// only analyses whose answer depends on that order ask for it); else
    /// their order among themselves is unspecified.
    pub ordered_ties: bool,
    /// Dimensions whose values each event carries in [`TimelineEvent::labels`].
    pub labels: Vec<EventDimension>,
}

/// One event of a person's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// The person (merged identity), as a number that is stable within one answer.
    pub person: u64,
    /// Microseconds since the epoch.
    pub timestamp_us: i64,
    /// Bit `i` set when the event satisfies matcher `i`.
    pub matches: u64,
    /// The values of the request's label dimensions, in order.
    pub labels: Vec<Option<String>>,
}

impl TimelineEvent {
    /// Whether the event satisfies matcher `index`.
    pub fn matches(&self, index: usize) -> bool {
        index < 64 && self.matches & (1 << index) != 0
    }

    /// The value of the request's first label dimension.
    pub fn label(&self) -> Option<&str> {
        self.labels.first().and_then(Option::as_deref)
    }
}

/// A computation over timelines, one person at a time.
pub trait PersonFold: Send + 'static {
    /// What is accumulated over persons.
    type Tally: Send + 'static;
    /// The result.
    type Output: Send + 'static;

    /// What to read.
    fn timeline(&self) -> TimelineRequest;

    /// The tally before any person.
    fn start(&self) -> Self::Tally;

    /// Adds one person's events, in timeline order.
    fn add_person(&self, tally: &mut Self::Tally, events: &[TimelineEvent]);

    /// The result of every person added.
    fn finish(&self, tally: Self::Tally) -> Self::Output;
}

/// Feeds a fold from chunks of a timeline: each complete person once, the
/// last person of a chunk held until the next chunk shows whether it goes on.
pub struct Folding<F: PersonFold> {
    fold: F,
    tally: F::Tally,
    person: Vec<TimelineEvent>,
}

impl<F: PersonFold> Folding<F> {
    /// Starts folding.
    pub fn new(fold: F) -> Self {
        let tally = fold.start();
        Folding {
            fold,
            tally,
            person: Vec::new(),
        }
    }

    /// The fold being fed.
    pub fn fold(&self) -> &F {
        &self.fold
    }

    /// Takes the next chunk of the timeline.
    pub fn push(&mut self, mut chunk: Vec<TimelineEvent>) {
        if let Some(current) = self.person.last().map(|event| event.person) {
            let same = chunk.iter().take_while(|e| e.person == current).count();
            self.person.extend(chunk.drain(..same));
            if chunk.is_empty() {
                return;
            }
            self.fold.add_person(&mut self.tally, &self.person);
            self.person.clear();
        }
        let last_start = chunk
            .iter()
            .rposition(|event| Some(event.person) != chunk.last().map(|last| last.person))
            .map_or(0, |position| position + 1);
        let last = chunk.split_off(last_start);
        for person in persons(&chunk) {
            self.fold.add_person(&mut self.tally, person);
        }
        self.person = last;
    }

    /// The result, once the timeline has ended.
    pub fn finish(mut self) -> F::Output {
        if !self.person.is_empty() {
            self.fold.add_person(&mut self.tally, &self.person);
        }
        self.fold.finish(self.tally)
    }
}

/// Each person's events, in order: splits a timeline sorted by person.
pub fn persons(events: &[TimelineEvent]) -> impl Iterator<Item = &[TimelineEvent]> {
    events.chunk_by(|a, b| a.person == b.person)
}

/// The result of a fold over a whole timeline held in memory.
pub fn fold_all<F: PersonFold>(fold: F, events: Vec<TimelineEvent>) -> F::Output {
    let mut folding = Folding::new(fold);
    folding.push(events);
    folding.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts persons and their events, remembering the order they came in.
    struct Census;

    impl PersonFold for Census {
        type Tally = Vec<(u64, usize)>;
        type Output = Vec<(u64, usize)>;

        fn timeline(&self) -> TimelineRequest {
            unimplemented!("not read in this test")
        }

        fn start(&self) -> Self::Tally {
            Vec::new()
        }

        fn add_person(&self, tally: &mut Self::Tally, events: &[TimelineEvent]) {
            assert!(events.iter().all(|e| e.person == events[0].person));
            tally.push((events[0].person, events.len()));
        }

        fn finish(&self, tally: Self::Tally) -> Self::Output {
            tally
        }
    }

    fn events(persons: &[u64]) -> Vec<TimelineEvent> {
        persons
            .iter()
            .map(|&person| TimelineEvent {
                person,
                timestamp_us: 0,
                matches: 0,
                labels: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn persons_split_across_chunks_are_folded_once() {
        let mut folding = Folding::new(Census);
        folding.push(events(&[1, 1, 2]));
        folding.push(events(&[2]));
        folding.push(events(&[2, 2, 3]));
        folding.push(Vec::new());
        folding.push(events(&[3, 4, 4]));
        assert_eq!(folding.finish(), vec![(1, 2), (2, 4), (3, 2), (4, 2)]);
        assert_eq!(fold_all(Census, events(&[])), vec![]);
        assert_eq!(fold_all(Census, events(&[7, 8])), vec![(7, 1), (8, 1)]);
    }

    #[test]
    fn matchers_beyond_the_bits_never_match() {
        let event = TimelineEvent {
            person: 1,
            timestamp_us: 0,
            matches: u64::MAX,
            labels: Vec::new(),
        };
        assert!(event.matches(63));
        assert!(!event.matches(64));
    }
}
