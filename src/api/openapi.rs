//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::analysis::{
    EventRequest, FunnelRequest, LifecycleRequest, PathsRequest, RetentionRequest,
    StickinessRequest,
};
use super::error::{ErrorBody, ErrorDetail};
use super::health::HealthResponse;
use super::ingest::{BatchRequest, IngestResponse, SegmentMessage};
use super::project::ProjectInfo;
use super::query::{
    DateRange, FilterExpression, Include, Pagination, QueryRequest, Seen, SeenList,
};
use crate::domain::analysis::funnel::{
    BreakdownResult, FunnelAnswer, FunnelMeta, StepOrder, StepResult,
};
use crate::domain::analysis::lifecycle::{LifecycleAnswer, LifecyclePeriod};
use crate::domain::analysis::paths::{Direction, PathLink, PathNode, PathsAnswer};
use crate::domain::analysis::retention::{Cohort, CohortKind, RetentionAnswer};
use crate::domain::analysis::stickiness::{StickinessAnswer, StickinessRow};
use crate::domain::analysis::{AnalysisMeta, Period};
use crate::domain::query::{Answer, AnswerMeta, AnswerRow};
use crate::domain::segment::{RejectCode, Rejection};
use crate::domain::EventType;

/// The API contract, committed as `api/openapi.yaml`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "analytics",
        description = "Self-hosted event analytics. Ingest follows the Segment HTTP Tracking API, so Segment, RudderStack and Jitsu SDKs work unchanged. Write keys send events; read keys query and export them.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::ingest::track,
        super::ingest::identify,
        super::ingest::page,
        super::ingest::screen,
        super::ingest::group,
        super::ingest::alias,
        super::ingest::batch,
        super::ingest::import,
        super::ingest::track_short,
        super::ingest::identify_short,
        super::ingest::page_short,
        super::ingest::screen_short,
        super::ingest::group_short,
        super::ingest::alias_short,
        super::ingest::batch_short,
        super::ingest::beacon_batch,
        super::sdk_settings::analytics_js_settings,
        super::sdk_settings::analytics_js_telemetry,
        super::sdk_settings::rudderstack_source_config,
        super::plausible::plausible_event,
        super::tracker::script,
        super::export::export,
        super::query::query,
        super::analysis::funnel,
        super::analysis::retention,
        super::analysis::stickiness,
        super::analysis::lifecycle,
        super::analysis::paths,
        super::query::event_names,
        super::query::properties,
        super::project::project,
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
    ),
    components(schemas(
        SegmentMessage, BatchRequest, IngestResponse, Rejection, RejectCode, EventType,
        ErrorBody, ErrorDetail, HealthResponse, QueryRequest, DateRange, FilterExpression,
        Include, Pagination, Answer,
        AnswerRow, AnswerMeta, Seen, SeenList, EventRequest, AnalysisMeta, Period,
        FunnelRequest, StepOrder, FunnelAnswer, StepResult, BreakdownResult, FunnelMeta,
        RetentionRequest, CohortKind, RetentionAnswer, Cohort,
        StickinessRequest, StickinessAnswer, StickinessRow,
        LifecycleRequest, LifecycleAnswer, LifecyclePeriod,
        PathsRequest, Direction, PathsAnswer, PathNode, PathLink, ProjectInfo
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ingest", description = "Segment-compatible event ingest (write key)"),
        (name = "browsers", description = "Browsers as clients: what SDKs load before sending (analytics.js settings, RudderStack's source configuration) and Plausible's events API"),
        (name = "export", description = "Stored events (read key)"),
        (name = "query", description = "Metrics, dimensions and filters over a date range (read key)"),
        (name = "analysis", description = "Funnels, retention, stickiness, lifecycle and paths over persons (read key)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "write_key_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The write key as user name, empty password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A write key (ingest) or a read key (query, export)"))
                    .build(),
            ),
        );
    }
}

/// The document as YAML, exactly as committed in `api/openapi.yaml`.
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serialises")
}
