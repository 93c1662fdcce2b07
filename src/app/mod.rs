//! The application layer: one function per use case (ingest a request,
//! answer a query, run an analysis, discover names and keys, export), taking
//! typed specs and answering with [`AppError`] when it cannot. The HTTP
//! handlers and the exporter call it; it calls the domain to plan and
//! compute and storage to read and write, under the read side's limits
//! ([`ReadLimits`]), applied here and nowhere else.

pub mod backfill;
mod error;
mod ingest;
mod limits;
mod reads;
pub mod upkeep;
mod visitors;

pub use error::{AppError, Limit};
pub use ingest::{IngestOutcome, IngestService, Sender};
pub use limits::{ReadLimits, Slot};
pub use reads::{
    Discovered, DiscoverySpec, ExportSpec, QueryService, ReadBarrier, DISCOVERY_LIMIT,
};
pub use visitors::VisitorIds;
