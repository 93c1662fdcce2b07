//! Storage rows turned into the answer: bucket labels, percentages, empty
//! buckets filled in, the page cut, and the meta data.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::metric::{Aggregate, Metric};
use super::plan::{OrderTarget, QueryPlan};
use super::time_buckets::{bucket_starts, label};
use super::{DimensionValue, MetricValue, QueryRow, QueryRows};
use crate::clock::start_of_day;

/// The answer to a query.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Answer {
    /// Rows of the requested page.
    pub results: Vec<AnswerRow>,
    /// About the answer.
    pub meta: AnswerMeta,
    /// The query as planned: normalised names, the range as absolute date-times.
    #[schema(value_type = Object)]
    pub query: Value,
    /// The same query over the compared period (with `compare`): its own
    /// rows, buckets and range.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub comparison: Option<Box<Answer>>,
}

/// One row: a value per dimension and per metric, in the query's order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnswerRow {
    /// Dimension values; time buckets as local date-times with offset; null when unset.
    pub dimensions: Vec<Option<String>>,
    /// Metric values: integers for counts, numbers (or null) for aggregates,
    /// a percentage with one decimal.
    #[schema(value_type = Vec<Option<f64>>)]
    pub metrics: Vec<Value>,
}

/// About an answer.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AnswerMeta {
    /// Every time bucket of the range (with `include.time_labels`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_labels: Option<Vec<String>>,
    /// Rows before pagination (with `include.total_rows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<u64>,
    /// Whether rows beyond this page exist.
    pub has_more: bool,
    /// Set when rows beyond this page exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Time spent answering, in milliseconds.
    pub took_ms: u64,
}

/// Decimal places kept of aggregates, so that every backend gives the same digits.
const AGGREGATE_DECIMALS: i32 = 6;

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn bucket_start(value: &DimensionValue, plan: &QueryPlan) -> Option<DateTime<Utc>> {
    match value {
        DimensionValue::LocalBucket(local) => start_of_day(local.date(), plan.timezone),
        DimensionValue::InstantBucket(instant) => Some(*instant),
        DimensionValue::Text(_) => None,
    }
}

/// A row on its way into the answer: buckets as instants, for sorting.
struct Prepared {
    buckets: Vec<Option<DateTime<Utc>>>,
    row: QueryRow,
}

fn metric_json(metric: &Metric, value: MetricValue, total_users: Option<u64>) -> Value {
    match (metric, value) {
        (Metric::Percentage, MetricValue::Count(users)) => {
            let total = total_users.unwrap_or(0);
            let share = if total == 0 {
                0.0
            } else {
                users as f64 * 100.0 / total as f64
            };
            Value::from(round(share, 1))
        }
        // A bucket filled in, with no users to convert.
        (Metric::ConversionRate, MetricValue::Count(_)) => Value::from(0.0),
        (_, MetricValue::Count(count)) => Value::from(count),
        (Metric::Numeric(Aggregate::Sum, _), MetricValue::Number(None)) => Value::from(0.0),
        (_, MetricValue::Number(None)) => Value::Null,
        (_, MetricValue::Number(Some(number))) => Value::from(round(number, AGGREGATE_DECIMALS)),
    }
}

fn empty_metrics(plan: &QueryPlan) -> Vec<MetricValue> {
    plan.metrics
        .iter()
        .map(|metric| match metric {
            Metric::Events
            | Metric::Users
            | Metric::Visitors
            | Metric::Percentage
            | Metric::ConversionRate
            | Metric::Sessions
            | Metric::Visits
            | Metric::Pageviews => MetricValue::Count(0),
            Metric::Numeric(..)
            | Metric::BounceRate
            | Metric::SessionDuration
            | Metric::VisitDuration
            | Metric::EventsPerSession
            | Metric::ViewsPerVisit => MetricValue::Number(None),
        })
        .collect()
}

fn metric_number(value: MetricValue) -> Option<f64> {
    match value {
        MetricValue::Count(count) => Some(count as f64),
        MetricValue::Number(number) => number,
    }
}

fn compare(plan: &QueryPlan, a: &Prepared, b: &Prepared) -> CmpOrdering {
    for ordering in &plan.order_by {
        let order = match ordering.target {
            OrderTarget::Metric(i) => {
                let (x, y) = (
                    metric_number(a.row.metrics[i]),
                    metric_number(b.row.metrics[i]),
                );
                match (x, y) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => return CmpOrdering::Less,
                    (None, Some(_)) => return CmpOrdering::Greater,
                    (None, None) => CmpOrdering::Equal,
                }
            }
            OrderTarget::Dimension(i) => a.buckets[i].cmp(&b.buckets[i]),
        };
        let order = if ordering.descending {
            order.reverse()
        } else {
            order
        };
        if order != CmpOrdering::Equal {
            return order;
        }
    }
    CmpOrdering::Equal
}

/// Fills every bucket of the range in (time is the only dimension), sorts, cuts the page.
fn fill_buckets(
    plan: &QueryPlan,
    rows: Vec<QueryRow>,
    starts: &[DateTime<Utc>],
) -> (Vec<Prepared>, u64) {
    let mut by_start: HashMap<DateTime<Utc>, QueryRow> = rows
        .into_iter()
        .filter_map(|row| Some((bucket_start(&row.dimensions[0], plan)?, row)))
        .collect();
    let mut prepared: Vec<Prepared> = starts
        .iter()
        .map(|start| {
            let row = by_start.remove(start).unwrap_or_else(|| QueryRow {
                dimensions: vec![DimensionValue::InstantBucket(*start)],
                metrics: empty_metrics(plan),
            });
            Prepared {
                buckets: vec![Some(*start)],
                row,
            }
        })
        .collect();
    prepared.sort_by(|a, b| compare(plan, a, b));
    let total = prepared.len() as u64;
    let page = prepared
        .into_iter()
        .skip(usize::try_from(plan.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(plan.limit).unwrap_or(usize::MAX))
        .collect();
    (page, total)
}

/// Turns each row's users of `conversion_rate` into the percentage they
/// are of the baseline row with the same kept dimension values (one
/// decimal; 0 when that row has no users).
pub fn apply_conversion_rates(plan: &QueryPlan, rows: &mut QueryRows, baseline: &QueryRows) {
    let Some(plan_baseline) = &plan.conversion_baseline else {
        return;
    };
    let Some(index) = plan
        .metrics
        .iter()
        .position(|m| *m == Metric::ConversionRate)
    else {
        return;
    };
    let users_of: HashMap<String, u64> = baseline
        .rows
        .iter()
        .filter_map(|row| match row.metrics.first() {
            Some(MetricValue::Count(users)) => Some((format!("{:?}", row.dimensions), *users)),
            _ => None,
        })
        .collect();
    for row in &mut rows.rows {
        let kept: Vec<&DimensionValue> = plan_baseline
            .dimensions
            .iter()
            .filter_map(|&i| row.dimensions.get(i))
            .collect();
        let total = users_of.get(&format!("{kept:?}")).copied().unwrap_or(0);
        if let Some(MetricValue::Count(users)) = row.metrics.get(index).copied() {
            let rate = if total == 0 {
                0.0
            } else {
                users as f64 * 100.0 / total as f64
            };
            row.metrics[index] = MetricValue::Number(Some(round(rate, 1)));
        }
    }
}

/// Builds the answer from storage rows; `total_users` is the denominator of `percentage`.
pub fn answer(plan: &QueryPlan, rows: QueryRows, total_users: Option<u64>) -> Answer {
    let starts = plan
        .time_granularity()
        .filter(|_| plan.time_labels)
        .map(|granularity| bucket_starts(plan.range, granularity, plan.timezone));
    let (prepared, total_rows) = match &starts {
        Some(starts) if plan.fills_time_buckets() => fill_buckets(plan, rows.rows, starts),
        _ => {
            let prepared = rows
                .rows
                .into_iter()
                .map(|row| Prepared {
                    buckets: row
                        .dimensions
                        .iter()
                        .map(|d| bucket_start(d, plan))
                        .collect(),
                    row,
                })
                .collect();
            (prepared, rows.total_rows)
        }
    };
    let results: Vec<AnswerRow> = prepared
        .into_iter()
        .map(|Prepared { buckets, row }| AnswerRow {
            dimensions: row
                .dimensions
                .into_iter()
                .zip(buckets)
                .map(|(value, bucket)| match value {
                    DimensionValue::Text(text) => text,
                    _ => bucket.map(|start| label(start, plan.timezone)),
                })
                .collect(),
            metrics: plan
                .metrics
                .iter()
                .zip(row.metrics)
                .map(|(metric, value)| metric_json(metric, value, total_users))
                .collect(),
        })
        .collect();
    let shown = plan.offset.saturating_add(results.len() as u64);
    let has_more = shown < total_rows;
    Answer {
        meta: AnswerMeta {
            time_labels: starts.map(|s| s.iter().map(|start| label(*start, plan.timezone)).collect()),
            total_rows: plan.total_rows.then_some(total_rows),
            has_more,
            warning: has_more.then(|| {
                format!(
                    "{total_rows} rows match; this page has rows {} to {}: raise pagination.limit or page with pagination.offset",
                    plan.offset.saturating_add(1),
                    shown
                )
            }),
            took_ms: 0,
        },
        results,
        query: plan.normalized(),
        comparison: None,
    }
}
