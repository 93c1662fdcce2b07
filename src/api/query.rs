//! Reading answers: `POST /v1/query`, and the discovery endpoints
//! `GET /v1/events/names` and `GET /v1/properties` for building query UIs.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{auth, AppState};
use crate::app::{Discovered, DiscoverySpec};
use crate::domain::query::{
    parse_dimensions, parse_metrics, parse_order_by, parse_query_filters, parse_timezone, Answer,
    ComparedPeriod, DateRangeSpec, QueryError, QuerySpec,
};

// The schemas of `date_range` and `filters`: the members themselves are read
// as JSON values by the domain's parsers, which name the part at fault.

/// A date range: `[from, to]`, two dates (inclusive whole days) or two
/// ISO-8601 date-times with offsets, or one of `today`, `yesterday`, `7d`,
/// `30d` (any `Nd`), `month`, `year`, `all`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(examples(json!("30d"), json!(["2026-03-01", "2026-03-31"])))]
pub enum DateRange {
    /// A named range.
    Named(String),
    /// Both ends.
    Span(Vec<String>),
}

/// A filter: `[op, dimension, values]`, `["and"|"or", [filters]]` or
/// `["not", filter]`; a list of filters means all of them.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    value_type = Vec<Value>,
    example = json!([["is", "event:name", ["signup"]], ["gt", "event:props:revenue", [10]]])
)]
pub struct FilterExpression(pub Vec<Value>);

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
    /// `max:props.KEY`, `percentage`; over sessions `sessions`, `bounce_rate`,
    /// `session_duration`, `events_per_session`; Plausible's `visitors` (=
    /// `users`), `visits` (= `sessions`), `visit_duration` (=
    /// `session_duration`), `pageviews`, `views_per_visit` (over sessions), and
    /// `conversion_rate` (visitors as a percentage of those of the same row
    /// without the goal: the top-level `event:name` and `event:type`
    /// conditions and the `event:name` dimension).
    pub metrics: Vec<String>,
    /// `[from, to]` dates (inclusive whole days) or ISO-8601 date-times with offsets,
    /// or one of `today`, `yesterday`, `7d`, `30d` (any `Nd`), `month`, `year`, `all`.
    #[schema(value_type = DateRange)]
    pub date_range: Value,
    /// IANA timezone; default: the project's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `time`, `time:minute|hour|day|week|month`, `event:name`, `event:type`,
    /// `event:page`, `event:url`, `event:referrer`, `event:utm_source|utm_medium|
    /// utm_campaign|utm_term|utm_content`, `event:library`, `event:locale`,
    /// `event:props:KEY`, `event:context:KEY`, `user:id`, `visit:browser`,
    /// `visit:browser_version`, `visit:os`, `visit:os_version`, `visit:device`,
    /// `visit:country`, `visit:region`, `visit:city`, `visit:utm_*`; of each
    /// visit's first event `visit:referrer_domain`, `visit:source`,
    /// `visit:channel` (every event of the visit counts under them);
    /// `session:entry_page|exit_page` (also `visit:entry_page|exit_page`).
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// `[op, dimension, values]`, or `["and"|"or", [filters]]`, or `["not", filter]`;
    /// a list of filters means all of them. Conditions on `visit:referrer_domain`,
    /// `visit:source` and `visit:channel` select visits by their first event and
    /// stand on their own at the top level.
    #[serde(default)]
    #[schema(value_type = Option<FilterExpression>)]
    pub filters: Option<Value>,
    /// `[[metric or dimension, "asc"|"desc"], ...]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Vec<String>>>)]
    pub order_by: Option<Value>,
    /// A period to compare with, answered in `comparison` by the same query:
    /// `previous_period` (as long as the range, ending where it starts),
    /// `year_over_year` (the same local dates a year earlier) or a range as
    /// in `date_range` (`[from, to]`, `yesterday`, ...; not `all`).
    #[serde(default)]
    #[schema(value_type = Option<DateRange>, example = json!("previous_period"))]
    pub compare: Option<Value>,
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

impl TryFrom<QueryRequest> for QuerySpec {
    type Error = QueryError;

    fn try_from(request: QueryRequest) -> Result<Self, QueryError> {
        let filters = request
            .filters
            .as_ref()
            .map(parse_query_filters)
            .transpose()?
            .unwrap_or_default();
        Ok(QuerySpec {
            metrics: parse_metrics(&request.metrics)?,
            date_range: DateRangeSpec::parse(&request.date_range)?,
            timezone: request
                .timezone
                .as_deref()
                .map(parse_timezone)
                .transpose()?,
            dimensions: parse_dimensions(&request.dimensions)?,
            filter: filters.events,
            visit_filter: filters.visits,
            order_by: parse_order_by(request.order_by.as_ref())?,
            time_labels: request.include.time_labels,
            total_rows: request.include.total_rows,
            limit: request.pagination.limit,
            offset: request.pagination.offset,
            compare: request
                .compare
                .as_ref()
                .map(ComparedPeriod::parse)
                .transpose()?,
        })
    }
}

/// A JSON body read as `T`, its errors reported on `body`.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, QueryError> {
    serde_json::from_slice(body).map_err(|error| QueryError::new("body", error.to_string()))
}

/// Metrics broken down by dimensions over a date range, in the project's timezone.
#[utoipa::path(
    post,
    path = "/v1/query",
    tag = "query",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer", body = Answer, example = json!({
            "results": [
                {"dimensions": ["2026-03-29T00:00:00+01:00", "signup"], "metrics": [42, 40, 129.5]}
            ],
            "meta": {"time_labels": ["2026-03-29T00:00:00+01:00"], "total_rows": 1, "has_more": false, "took_ms": 3},
            "query": {
                "metrics": ["events", "users", "sum:props.revenue"],
                "date_range": ["2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59.999999+02:00"],
                "timezone": "Europe/Berlin",
                "dimensions": ["time:day", "event:name"],
                "order_by": [["time:day", "asc"], ["event:name", "asc"]],
                "include": {"time_labels": true, "total_rows": true},
                "pagination": {"limit": 10000, "offset": 0}
            }
        })),
        (status = 400, description = "A query that names an unknown metric, dimension, operator or range, with the part at fault in `field`", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
        (status = 422, description = "The query reaches a limit of the read side (rows read, time); `setting` names it", body = ErrorBody),
        (status = 429, description = "Too many session queries at once; see Retry-After", body = ErrorBody),
        (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
        (status = 503, description = "Storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer>, ApiError> {
    let (project, _) = auth::authorize_view(&state.projects, &headers)?;
    let request: QueryRequest = parse_body(&body)?;
    let spec = QuerySpec::try_from(request)?;
    Ok(Json(state.reads.query(&project, &spec).await?))
}

/// Range of a discovery request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscoveryParams {
    /// `30d` (default), `today`, `7d`, `month`, `all`, ... or `FROM,TO` dates.
    pub date_range: Option<String>,
    /// IANA timezone; default: the project's.
    pub timezone: Option<String>,
    /// Only events of this name (`GET /v1/properties`).
    pub event: Option<String>,
}

impl DiscoveryParams {
    fn spec(&self) -> Result<DiscoverySpec, QueryError> {
        let date_range = match self.date_range.as_deref().map(str::trim) {
            None | Some("") => json!("30d"),
            Some(text) => match text.split_once(',') {
                Some((from, to)) => json!([from.trim(), to.trim()]),
                None => json!(text),
            },
        };
        Ok(DiscoverySpec {
            date_range: DateRangeSpec::parse(&date_range)?,
            timezone: self.timezone.as_deref().map(parse_timezone).transpose()?,
        })
    }
}

/// A name or key with how many events carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Seen {
    /// The event name or property key.
    pub name: String,
    /// Events in the range.
    pub events: u64,
}

/// What a discovery endpoint found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeenList {
    /// Most frequent first (at most 1,000).
    pub items: Vec<Seen>,
    /// The range searched, as absolute date-times in the timezone used.
    pub date_range: [String; 2],
}

impl From<Discovered> for SeenList {
    fn from(found: Discovered) -> Self {
        SeenList {
            items: found
                .items
                .into_iter()
                .map(|(name, events)| Seen { name, events })
                .collect(),
            date_range: found.date_range,
        }
    }
}

/// Event names seen in a range, with counts.
#[utoipa::path(
    get,
    path = "/v1/events/names",
    tag = "query",
    params(DiscoveryParams),
    responses(
        (status = 200, description = "Event names, most frequent first", body = SeenList),
        (status = 400, description = "A bad range or timezone", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
        (status = 422, description = "The request reaches a limit of the read side; `setting` names it", body = ErrorBody),
        (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
        (status = 503, description = "Storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn event_names(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<DiscoveryParams>,
) -> Result<Json<SeenList>, ApiError> {
    let project = auth::authorize_read(&state.projects, &headers)?;
    let found = state.reads.event_names(&project, &params.spec()?).await?;
    Ok(Json(found.into()))
}

/// Property (and trait) keys seen in a range, with counts; top-level keys.
#[utoipa::path(
    get,
    path = "/v1/properties",
    tag = "query",
    params(DiscoveryParams),
    responses(
        (status = 200, description = "Property keys, most frequent first", body = SeenList),
        (status = 400, description = "A bad range or timezone", body = ErrorBody),
        (status = 401, description = "Missing or unknown read key", body = ErrorBody),
        (status = 403, description = "A write key", body = ErrorBody),
        (status = 422, description = "The request reaches a limit of the read side; `setting` names it", body = ErrorBody),
        (status = 500, description = "An internal error; the log has it under `request_id`", body = ErrorBody),
        (status = 503, description = "Storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn properties(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<DiscoveryParams>,
) -> Result<Json<SeenList>, ApiError> {
    let project = auth::authorize_read(&state.projects, &headers)?;
    let found = state
        .reads
        .property_keys(&project, &params.spec()?, params.event.as_deref())
        .await?;
    Ok(Json(found.into()))
}
