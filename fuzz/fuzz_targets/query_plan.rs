//! The query planner and the analyses on arbitrary request bodies: each
//! request kind is read as the HTTP layer reads it, planned for a project,
//! and (when it plans) answered over a timeline made from the same bytes.
//! Every outcome is an answer or an error naming the part at fault; none is
//! a panic.

#![no_main]

use analytics_domain::analysis::funnel::{FunnelPlan, FunnelSpec, StepOrder};
use analytics_domain::analysis::lifecycle::{LifecyclePlan, LifecycleSpec};
use analytics_domain::analysis::paths::{Direction, PathsPlan, PathsSpec};
use analytics_domain::analysis::retention::{CohortKind, RetentionPlan, RetentionSpec};
use analytics_domain::analysis::stickiness::{StickinessPlan, StickinessSpec};
use analytics_domain::analysis::{
    fold_all, parse_window, Analysis, EventSpec, Period, ScopeSpec, TimelineEvent,
};
use analytics_domain::query::{
    answer, apply_conversion_rates, compared_spec, parse_dimensions, parse_filters, parse_query_filters, parse_metrics, parse_order_by, parse_timezone, plan,
    ComparedPeriod, DateRangeSpec, PlanContext, QueryError, QueryRows, QuerySpec, RequestedDimension, RowSource,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn context() -> PlanContext {
    PlanContext {
        project_id: "fuzz".into(),
        default_timezone: chrono_tz::Europe::Berlin,
        now: chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default(),
        data_bounds: None,
        session_timeout: chrono::Duration::minutes(30),
    }
}

/// Up to 64 events of 4 persons, from the input's bytes, in timeline order.
fn timeline(bytes: &[u8]) -> Vec<TimelineEvent> {
    let now = context().now.timestamp_micros();
    let mut events: Vec<TimelineEvent> = bytes
        .chunks_exact(4)
        .take(64)
        .map(|b| TimelineEvent {
            person: u64::from(b[0] % 4),
            timestamp_us: now - i64::from(b[1]) * 3_600_000_000 - i64::from(b[2]) * 1_000_000,
            matches: u64::from(b[3]),
            labels: vec![Some(format!("v{}", b[3] % 5)), None],
        })
        .collect();
    events.sort_by_key(|e| (e.person, e.timestamp_us));
    events
}

fn names(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn scope(value: &Value) -> Result<ScopeSpec, QueryError> {
    Ok(ScopeSpec {
        date_range: DateRangeSpec::parse(&value["date_range"])?,
        timezone: value["timezone"].as_str().map(parse_timezone).transpose()?,
        filter: parse_filters(&value["filters"])?,
    })
}

fn event(value: &Value, path: &str) -> Result<EventSpec, QueryError> {
    Ok(EventSpec {
        event: value["event"].as_str().unwrap_or_default().to_owned(),
        filter: parse_filters(&value["filters"])
            .map_err(|e| QueryError::new(format!("{path}.{}", e.path), e.message))?,
    })
}

fn enumerated<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}

fn query(value: &Value) -> Result<QuerySpec, QueryError> {
    let filters = parse_query_filters(&value["filters"])?;
    Ok(QuerySpec {
        metrics: parse_metrics(&names(value, "metrics"))?,
        date_range: DateRangeSpec::parse(&value["date_range"])?,
        timezone: value["timezone"].as_str().map(parse_timezone).transpose()?,
        dimensions: parse_dimensions(&names(value, "dimensions"))?,
        filter: filters.events,
        visit_filter: filters.visits,
        order_by: parse_order_by(value.get("order_by"))?,
        time_labels: value["include"]["time_labels"].as_bool().unwrap_or(false),
        total_rows: value["include"]["total_rows"].as_bool().unwrap_or(false),
        limit: value["pagination"]["limit"].as_u64(),
        offset: value["pagination"]["offset"].as_u64(),
        compare: value
            .get("compare")
            .map(ComparedPeriod::parse)
            .transpose()?,
    })
}

fn run<A: Analysis>(spec: Result<A::Spec, QueryError>, bytes: &[u8]) {
    let Ok(spec) = spec else { return };
    if let Ok(plan) = A::plan(&spec, &context()) {
        let _ = plan.timeline();
        let answer = fold_all(plan, timeline(bytes));
        serde_json::to_vec(&answer).expect("an answer serialises");
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    if let Ok(spec) = query(&value) {
        if let Ok(planned) = plan(&spec, &context()) {
            let _ = planned.normalized();
            if let Ok(Some(compared)) =
                compared_spec(&spec, planned.range, planned.timezone, context().now)
            {
                let _ = plan(&compared, &context());
            }
            let rows = match &planned.rows {
                RowSource::Events(events) => {
                    let _ = events.offset_pieces();
                    QueryRows::default()
                }
                RowSource::Sessions(sessions) => fold_all(sessions.clone(), timeline(bytes)),
                RowSource::VisitEvents(visits) => fold_all(visits.clone(), timeline(bytes)).0,
            };
            let mut rows = rows;
            if planned.conversion_baseline.is_some() {
                let baseline = rows.clone();
                apply_conversion_rates(&planned, &mut rows, &baseline);
            }
            let answered = answer(&planned, rows, Some(3));
            serde_json::to_vec(&answered).expect("an answer serialises");
        }
    }
    let steps = value["steps"].as_array().cloned().unwrap_or_default();
    run::<FunnelPlan>(
        (|| {
            Ok(FunnelSpec {
                scope: scope(&value)?,
                steps: steps
                    .iter()
                    .enumerate()
                    .map(|(i, step)| event(step, &format!("steps[{i}]")))
                    .collect::<Result<_, _>>()?,
                window: value["window"]
                    .as_str()
                    .map(|text| parse_window(text, "window"))
                    .transpose()?,
                order: enumerated::<StepOrder>(&value["order"]).unwrap_or_default(),
                breakdown: value["breakdown"]
                    .as_str()
                    .map(|name| {
                        RequestedDimension::parse_event(name, "a breakdown")
                            .map_err(|m| QueryError::new("breakdown", m))
                    })
                    .transpose()?,
                breakdown_limit: value["breakdown_limit"].as_u64().map(|n| n as u32),
            })
        })(),
        bytes,
    );
    let period = enumerated::<Period>(&value["period"]).unwrap_or(Period::Day);
    run::<RetentionPlan>(
        (|| {
            Ok(RetentionSpec {
                scope: scope(&value)?,
                start_event: event(&value["start_event"], "start_event")?,
                return_event: event(&value["return_event"], "return_event")?,
                period,
                periods: value["periods"].as_u64().unwrap_or(0) as u32,
                cohort: enumerated::<CohortKind>(&value["cohort"]).unwrap_or_default(),
            })
        })(),
        bytes,
    );
    run::<StickinessPlan>(
        (|| {
            Ok(StickinessSpec {
                scope: scope(&value)?,
                event: event(&value["event"], "event")?,
                period,
            })
        })(),
        bytes,
    );
    run::<LifecyclePlan>(
        (|| {
            Ok(LifecycleSpec {
                scope: scope(&value)?,
                event: event(&value["event"], "event")?,
                period,
            })
        })(),
        bytes,
    );
    run::<PathsPlan>(
        (|| {
            Ok(PathsSpec {
                scope: scope(&value)?,
                start_event: event(&value["start_event"], "start_event")?,
                direction: enumerated::<Direction>(&value["direction"]).unwrap_or_default(),
                depth: value["depth"].as_u64().map(|n| n as u32),
                nodes_per_step: value["nodes_per_step"].as_u64().map(|n| n as u32),
            })
        })(),
        bytes,
    );
});
