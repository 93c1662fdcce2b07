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

use super::{check_count, persons, AnalysisMeta, EventSpec, Scope, TimelineEvent, TimelineRequest};
use crate::domain::query::{Dimension, PlanContext, QueryError};

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

/// `POST /v1/paths`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"start_event": {"event": "signup"}, "direction": "next", "depth": 3, "date_range": "30d"}))]
pub struct PathsRequest {
    /// The event paths start from.
    pub start_event: EventSpec,
    /// `next` (default) or `previous`.
    #[serde(default)]
    pub direction: Direction,
    /// Steps followed (1 to 5, default 3).
    #[serde(default)]
    pub depth: Option<u32>,
    /// Names kept per step, the rest grouped as `(other)` (1 to 100, default 10).
    #[serde(default)]
    pub nodes_per_step: Option<u32>,
    /// As in `/v1/query`.
    #[schema(value_type = Object)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filters every event must pass, in the `/v1/query` syntax.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
}

/// A checked paths request.
#[derive(Debug, Clone)]
pub struct PathsPlan {
    scope: Scope,
    start: crate::domain::query::Filter,
    direction: Direction,
    depth: usize,
    nodes_per_step: usize,
}

impl PathsPlan {
    /// Checks a request.
    pub fn new(request: &PathsRequest, context: &PlanContext) -> Result<Self, QueryError> {
        let depth = request.depth.unwrap_or(3);
        check_count(depth, "depth", 1..=MAX_DEPTH)?;
        let nodes = request.nodes_per_step.unwrap_or(10);
        check_count(nodes, "nodes_per_step", 1..=MAX_NODES)?;
        Ok(PathsPlan {
            scope: Scope::resolve(context, request)?,
            start: request.start_event.matcher("start_event")?,
            direction: request.direction,
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
        request.labels = vec![Dimension::EventName];
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

fn name(event: &TimelineEvent) -> String {
    event.label().unwrap_or_default().to_owned()
}

/// Most persons first, then by name.
fn ranked(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    counts
}

/// Follows every person from their first start event.
pub fn paths(plan: &PathsPlan, events: &[TimelineEvent]) -> PathsAnswer {
    // Each person's names: the start event's, then one per step.
    let mut walks: Vec<Vec<String>> = Vec::new();
    for person in persons(events) {
        let Some(anchor) = person.iter().position(|e| e.matches(0)) else {
            continue;
        };
        let steps: Vec<&TimelineEvent> = match plan.direction {
            Direction::Next => person[anchor..].iter().take(plan.depth + 1).collect(),
            Direction::Previous => person[..=anchor]
                .iter()
                .rev()
                .take(plan.depth + 1)
                .collect(),
        };
        walks.push(steps.into_iter().map(name).collect());
    }
    let mut nodes = Vec::new();
    for step in 0..=plan.depth {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for walk in walks.iter().filter(|w| w.len() > step) {
            *counts.entry(walk[step].clone()).or_default() += 1;
        }
        let kept: Vec<String> = ranked(counts)
            .iter()
            .take(plan.nodes_per_step)
            .map(|(name, _)| name.clone())
            .collect();
        for walk in walks.iter_mut().filter(|w| w.len() > step) {
            if !kept.contains(&walk[step]) {
                walk[step] = OTHER.to_owned();
            }
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for walk in walks.iter().filter(|w| w.len() > step) {
            *counts.entry(walk[step].clone()).or_default() += 1;
        }
        nodes.extend(ranked(counts).into_iter().map(|(event, users)| PathNode {
            step,
            event,
            users,
        }));
    }
    let mut links = Vec::new();
    for step in 1..=plan.depth {
        let mut counts: HashMap<(String, String), u64> = HashMap::new();
        for walk in walks.iter().filter(|w| w.len() > step) {
            *counts
                .entry((walk[step - 1].clone(), walk[step].clone()))
                .or_default() += 1;
        }
        let mut counts: Vec<((String, String), u64)> = counts.into_iter().collect();
        counts.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
        links.extend(
            counts
                .into_iter()
                .map(|((source, target), users)| PathLink {
                    step,
                    source,
                    target,
                    users,
                }),
        );
    }
    PathsAnswer {
        nodes,
        links,
        meta: AnalysisMeta::default(),
        query: json!({
            "direction": plan.direction,
            "depth": plan.depth,
            "nodes_per_step": plan.nodes_per_step,
            "date_range": plan.scope.described_range(),
            "timezone": plan.scope.timezone.name(),
        }),
    }
}

super::analysis!(PathsPlan, PathsRequest, PathsAnswer, paths);
