//! The domain: events, projects and the rules of ingest, free of HTTP and storage details.

pub mod analysis;
pub mod clock;
pub mod dependency;
pub mod event;
pub mod flatten;
pub mod identity;
pub mod project;
pub mod query;
pub mod segment;
pub mod sink;
pub mod wire;

pub use event::{ContextFields, Event, EventType};
pub use project::{DevelopmentKeys, KeyKind, Project, ProjectRegistry};
pub use sink::{EventSink, SinkError};
