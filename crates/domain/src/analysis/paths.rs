//! Paths: the events persons did next after (or before) a start event, step
//! by step, for a Sankey view.
//!
//! Each person is followed from their first start event in the range, along
//! their next (or previous) events in the range, up to `depth` steps. Events
//! are named by their event name (the call type for page, screen, ...
//! calls). At each step the `nodes_per_step` names with the most persons are
//! kept and the rest are grouped as `(other)`; links join a step's node to
//! the next step's.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    check_count, AnalysisMeta, EventSpec, PersonFold, Scope, ScopeSpec, TimelineEvent,
    TimelineRequest,
};
use crate::query::{EventDimension, Filter, PlanContext, QueryError};

/// The name of a node that groups the less common events of a step.
pub const OTHER: &str = "(other)";
/// Most steps followed.
const MAX_DEPTH: u32 = 5;
/// Most nodes per step.
const MAX_NODES: u32 = 100;

/// Which way paths go from the start event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The events after it.
    #[default]
    Next,
    /// The events before it.
    Previous,
}

/// Paths as clients ask them.
#[derive(Debug, Clone, PartialEq)]
pub struct PathsSpec {
    /// The range, its timezone and filters.
    pub scope: ScopeSpec,
    /// The event paths start from.
    pub start_event: EventSpec,
    /// Which way paths go.
    pub direction: Direction,
    /// Steps followed (1 to 5); `None` for 3.
    pub depth: Option<u32>,
    /// Names kept per step (1 to 100); `None` for 10.
    pub nodes_per_step: Option<u32>,
}

/// A checked paths request.
#[derive(Debug, Clone)]
pub struct PathsPlan {
    scope: Scope,
    start: Filter,
    direction: Direction,
    depth: usize,
    nodes_per_step: usize,
}

impl PathsPlan {
    /// Checks a spec.
    pub fn new(spec: &PathsSpec, context: &PlanContext) -> Result<Self, QueryError> {
        let depth = spec.depth.unwrap_or(3);
        check_count(depth, "depth", 1..=MAX_DEPTH)?;
        let nodes = spec.nodes_per_step.unwrap_or(10);
        check_count(nodes, "nodes_per_step", 1..=MAX_NODES)?;
        Ok(PathsPlan {
            scope: Scope::resolve(context, &spec.scope)?,
            start: spec.start_event.matcher("start_event")?,
            direction: spec.direction,
            depth: depth as usize,
            nodes_per_step: nodes as usize,
        })
    }

    /// Every event of the range, named.
    pub fn timeline(&self) -> TimelineRequest {
        let mut request = self
            .scope
            .timeline(self.scope.range, vec![self.start.clone()]);
        request.all_events = true;
        request.ordered_ties = true;
        request.labels = vec![EventDimension::Name];
        request
    }
}

/// Persons at one step with one event name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PathNode {
    /// Steps from the start event (0: the start event itself).
    pub step: usize,
    /// The event name, or `(other)`.
    pub event: String,
    /// Persons.
    pub users: u64,
}

/// Persons who went from one node to a node of the next step.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PathLink {
    /// The step of the target node.
    pub step: usize,
    /// The event name at the step before.
    pub source: String,
    /// The event name at this step.
    pub target: String,
    /// Persons.
    pub users: u64,
}

/// The answer of `POST /v1/paths`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PathsAnswer {
    /// Nodes by step, then most persons first.
    pub nodes: Vec<PathNode>,
    /// Links by step, then most persons first.
    pub links: Vec<PathLink>,
    /// Facts about the answer.
    pub meta: AnalysisMeta,
    /// The request, normalised.
    #[schema(value_type = Object)]
    pub query: Value,
}

/// Most persons first, then by name.
fn ranked(counts: HashMap<&str, u64>) -> Vec<(&str, u64)> {
    let mut counts: Vec<(&str, u64)> = counts.into_iter().collect();
    counts.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    counts
}

/// Persons per event name at each step, and per pair of names at each two
/// consecutive steps, counted before the less common names are grouped.
pub struct PathsTally {
    /// Event names, numbered in order of appearance.
    names: Vec<String>,
    numbers: HashMap<String, u32>,
    /// Per step, persons by name number.
    nodes: Vec<HashMap<u32, u64>>,
    /// Per step from 1, persons by (name before, name at the step).
    links: Vec<HashMap<(u32, u32), u64>>,
}

impl PathsTally {
    fn number(&mut self, name: &str) -> u32 {
        if let Some(&number) = self.numbers.get(name) {
            return number;
        }
        let number = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.numbers.insert(name.to_owned(), number);
        number
    }
}

impl PersonFold for PathsPlan {
    type Tally = PathsTally;
    type Output = PathsAnswer;

    fn timeline(&self) -> TimelineRequest {
        PathsPlan::timeline(self)
    }

    fn start(&self) -> PathsTally {
        PathsTally {
            names: Vec::new(),
            numbers: HashMap::new(),
            nodes: vec![HashMap::new(); self.depth + 1],
            links: vec![HashMap::new(); self.depth],
        }
    }

    /// Follows the person from their first start event.
    fn add_person(&self, tally: &mut PathsTally, person: &[TimelineEvent]) {
        let Some(anchor) = person.iter().position(|e| e.matches(0)) else {
            return;
        };
        let steps: Vec<&TimelineEvent> = match self.direction {
            Direction::Next => person[anchor..].iter().take(self.depth + 1).collect(),
            Direction::Previous => person[..=anchor]
                .iter()
                .rev()
                .take(self.depth + 1)
                .collect(),
        };
        let mut previous = None;
        for (step, event) in steps.into_iter().enumerate() {
            let number = tally.number(event.label().unwrap_or_default());
            *tally.nodes[step].entry(number).or_default() += 1;
            if let Some(before) = previous {
                *tally.links[step - 1].entry((before, number)).or_default() += 1;
            }
            previous = Some(number);
        }
    }

    /// Keeps the `nodes_per_step` most common names of each step and groups
    /// the rest as `(other)`.
    fn finish(&self, tally: PathsTally) -> PathsAnswer {
        let name = |number: u32| tally.names[number as usize].as_str();
        // Per step, what each name number is shown as.
        let shown: Vec<HashMap<u32, &str>> = tally
            .nodes
            .iter()
            .map(|counts| {
                let raw: HashMap<&str, u64> = counts.iter().map(|(&n, &c)| (name(n), c)).collect();
                let kept: Vec<&str> = ranked(raw)
                    .into_iter()
                    .take(self.nodes_per_step)
                    .map(|(name, _)| name)
                    .collect();
                counts
                    .keys()
                    .map(|&n| {
                        let shown = if kept.contains(&name(n)) {
                            name(n)
                        } else {
                            OTHER
                        };
                        (n, shown)
                    })
                    .collect()
            })
            .collect();
        let mut nodes = Vec::new();
        for (step, counts) in tally.nodes.iter().enumerate() {
            let mut grouped: HashMap<&str, u64> = HashMap::new();
            for (number, count) in counts {
                *grouped.entry(shown[step][number]).or_default() += count;
            }
            nodes.extend(ranked(grouped).into_iter().map(|(event, users)| PathNode {
                step,
                event: event.to_owned(),
                users,
            }));
        }
        let mut links = Vec::new();
        for (index, counts) in tally.links.iter().enumerate() {
            let step = index + 1;
            let mut grouped: HashMap<(&str, &str), u64> = HashMap::new();
            for ((before, at), count) in counts {
                *grouped
                    .entry((shown[step - 1][before], shown[step][at]))
                    .or_default() += count;
            }
            let mut grouped: Vec<((&str, &str), u64)> = grouped.into_iter().collect();
            grouped.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
            links.extend(
                grouped
                    .into_iter()
                    .map(|((source, target), users)| PathLink {
                        step,
                        source: source.to_owned(),
                        target: target.to_owned(),
                        users,
                    }),
            );
        }
        PathsAnswer {
            nodes,
            links,
            meta: AnalysisMeta::default(),
            query: json!({
                "direction": self.direction,
                "depth": self.depth,
                "nodes_per_step": self.nodes_per_step,
                "date_range": self.scope.described_range(),
                "timezone": self.scope.timezone.name(),
            }),
        }
    }
}

super::analysis!(PathsPlan, PathsSpec, PathsAnswer);
