//! What a use case can answer instead of a result.

use std::time::Duration;

use crate::domain::query::QueryError;
use crate::domain::segment::Rejection;
use crate::domain::SinkError;
use crate::storage::StorageError;

/// A limit of the read side that a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Rows one request may read (`read.max_rows`).
    Rows(u64),
    /// Time one read may run (`read.timeout`).
    Time(Duration),
    /// Analyses computed at once (`read.max_concurrent_analyses`).
    ConcurrentAnalyses(usize),
    /// Exports streaming at once (`read.max_concurrent_exports`).
    ConcurrentExports(usize),
}

impl Limit {
    /// The configuration setting that raises the limit.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::Rows(_) => "read.max_rows",
            Limit::Time(_) => "read.timeout",
            Limit::ConcurrentAnalyses(_) => "read.max_concurrent_analyses",
            Limit::ConcurrentExports(_) => "read.max_concurrent_exports",
        }
    }

    /// The limit's name, as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Rows(_) => "rows",
            Limit::Time(_) => "time",
            Limit::ConcurrentAnalyses(_) => "concurrent_analyses",
            Limit::ConcurrentExports(_) => "concurrent_exports",
        }
    }

    /// Whether waiting is what the client should do (the request itself is fine).
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            Limit::ConcurrentAnalyses(_) | Limit::ConcurrentExports(_)
        )
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let setting = self.setting();
        match self {
            Limit::Rows(rows) => write!(
                f,
                "the request reads more than {rows} event rows ({setting}); narrow the date range or the filters, or raise {setting}"
            ),
            Limit::Time(time) => write!(
                f,
                "the request ran longer than {} ({setting}); narrow the date range or the filters, or raise {setting}",
                humantime::format_duration(*time)
            ),
            Limit::ConcurrentAnalyses(most) => write!(
                f,
                "{most} analyses are being computed already ({setting}); retry shortly"
            ),
            Limit::ConcurrentExports(most) => write!(
                f,
                "{most} exports are streaming already ({setting}); retry shortly"
            ),
        }
    }
}

/// Every way a use case can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A spec the planner refuses, with the part at fault.
    #[error(transparent)]
    Invalid(#[from] QueryError),
    /// A parameter with a bad value.
    #[error("{field}: {message}")]
    InvalidParameter {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No event of an ingest request could be stored.
    #[error("no valid event in the request: {} rejected", rejected.len())]
    NoValidEvents {
        /// Each rejected event.
        rejected: Vec<Rejection>,
    },
    /// The request reached a limit of the read side.
    #[error("{0}")]
    Limit(Limit),
    /// The ingest path could not take the events.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Storage cannot serve the request now; a retry later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A defect: it will fail again. The detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(message) => AppError::Unavailable(message),
            StorageError::TimedOut(time) => AppError::Limit(Limit::Time(time)),
            StorageError::TooManyRows(rows) => AppError::Limit(Limit::Rows(rows)),
            // A read storage refuses is a statement of ours that is wrong.
            StorageError::Rejected(message) | StorageError::Internal(message) => {
                AppError::Internal(message)
            }
            error @ StorageError::Migration { .. } => AppError::Internal(error.to_string()),
        }
    }
}

impl AppError {
    /// The error of a task of ours that did not finish.
    pub fn from_join(error: tokio::task::JoinError) -> Self {
        StorageError::from_join(error).into()
    }
}
