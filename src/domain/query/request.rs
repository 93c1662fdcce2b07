//! The query request as users send it (`POST /v1/query`).

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A query: metrics broken down by dimensions, filtered, over a date range.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "metrics": ["events", "users", "sum:props.revenue"],
    "date_range": ["2026-03-01", "2026-03-31"],
    "timezone": "Europe/Berlin",
    "dimensions": ["time:day", "event:name"],
    "filters": ["and", [["is", "event:name", ["signup", "purchase"]], ["contains", "event:props:plan", ["pro"]]]],
    "order_by": [["events", "desc"]],
    "include": {"time_labels": true, "total_rows": true},
    "pagination": {"limit": 100, "offset": 0}
}))]
pub struct QueryRequest {
    /// `events`, `users`, `sum:props.KEY`, `avg:props.KEY`, `min:props.KEY`,
    /// `max:props.KEY`, `percentage`.
    pub metrics: Vec<String>,
    /// `[from, to]` dates (inclusive whole days) or ISO-8601 date-times with offsets,
    /// or one of `today`, `yesterday`, `7d`, `30d` (any `Nd`), `month`, `year`, `all`.
    #[schema(value_type = Object)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `time`, `time:minute|hour|day|week|month`, `event:name`, `event:type`,
    /// `event:page`, `event:url`, `event:referrer`, `event:utm_source|utm_medium|
    /// utm_campaign|utm_term|utm_content`, `event:library`, `event:locale`,
    /// `event:props:KEY`, `event:context:KEY`, `user:id`.
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// `[op, dimension, values]`, or `["and"|"or", [filters]]`, or `["not", filter]`;
    /// a list of filters means all of them.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    /// `[[metric or dimension, "asc"|"desc"], ...]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Vec<String>>>)]
    pub order_by: Option<Value>,
    /// Extra parts of the answer.
    #[serde(default)]
    pub include: Include,
    /// Which rows of the answer.
    #[serde(default)]
    pub pagination: Pagination,
}

/// Extra parts of the answer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Include {
    /// List every time bucket of the range in `meta.time_labels`; when time is the
    /// only dimension, empty buckets also appear as rows of zeros.
    #[serde(default)]
    pub time_labels: bool,
    /// Report the number of rows before pagination in `meta.total_rows`.
    #[serde(default)]
    pub total_rows: bool,
}

/// Which rows of the answer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Rows at most (default 10,000, at most 100,000).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Rows to skip.
    #[serde(default)]
    pub offset: Option<u64>,
}
