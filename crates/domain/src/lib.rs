//! The domain of `analytics`: events and the rules of ingest, projects,
//! queries and analyses. It does no I/O and knows nothing of HTTP, storage
//! engines or Kafka: the service crate implements the traits defined here
//! ([`EventSink`], [`dependency::DependencyCheck`]) and drives the planning
//! and computing functions.

pub mod analysis;
pub mod clock;
pub mod dependency;
pub mod event;
pub mod identity;
pub mod origin;
pub mod plausible;
pub mod project;
pub mod query;
pub mod record;
pub mod segment;
pub mod sink;
pub mod visit;
pub mod visitor;
pub mod wire;

pub use event::{ContextFields, Event, EventType};
pub use project::{KeyKind, Project, ProjectRegistry};
pub use sink::{EventSink, SinkError, Submitted};
