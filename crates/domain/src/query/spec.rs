//! What a client asks, parsed into typed parts: the input of the planner.
//!
//! A spec holds values that parse (metric and dimension names, a range, a
//! timezone, filters); whether they make sense together, for a project at a
//! given time, is the planner's to decide ([`super::plan`]).

use chrono_tz::Tz;
use serde_json::Value;

use super::compared_period::ComparedPeriod;
use super::date_range::DateRangeSpec;
use super::dimension::RequestedDimension;
use super::filter::Filter;
use super::metric::Metric;
use super::QueryError;

/// A query: metrics broken down by dimensions, filtered, over a date range.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    /// Metrics, in the order of the answer.
    pub metrics: Vec<Metric>,
    /// The range of the events counted.
    pub date_range: DateRangeSpec,
    /// Timezone of buckets and labels; `None` for the project's.
    pub timezone: Option<Tz>,
    /// Dimensions, in the order of the answer.
    pub dimensions: Vec<RequestedDimension>,
    /// Which events count.
    pub filter: Option<Filter>,
    /// Which visits' events count: conditions on `visit:referrer_domain`,
    /// `visit:source` and `visit:channel`, tested on each visit's first event.
    pub visit_filter: Option<Filter>,
    /// Sort keys, by metric or dimension name.
    pub order_by: Vec<OrderKey>,
    /// List every time bucket (and fill empty ones when time is the only dimension).
    pub time_labels: bool,
    /// Report the number of rows before pagination.
    pub total_rows: bool,
    /// Rows at most; `None` for the default.
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: Option<u64>,
    /// The period the answer is compared with, answered alongside.
    pub compare: Option<ComparedPeriod>,
}

impl QuerySpec {
    /// A spec of `metrics` over a range, with every other part left at its default.
    pub fn new(metrics: Vec<Metric>, date_range: DateRangeSpec) -> Self {
        QuerySpec {
            metrics,
            date_range,
            timezone: None,
            dimensions: Vec::new(),
            filter: None,
            visit_filter: None,
            order_by: Vec::new(),
            time_labels: false,
            total_rows: false,
            limit: None,
            offset: None,
            compare: None,
        }
    }
}

/// One sort key as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    /// A metric or dimension name of the query (`time` for its time dimension).
    pub name: String,
    /// Largest first.
    pub descending: bool,
}

/// Parses the `order_by` member: `[[name, "asc"|"desc"], ...]`.
pub fn parse_order_by(value: Option<&Value>) -> Result<Vec<OrderKey>, QueryError> {
    let items: &[Value] = match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(QueryError::new(
                "order_by",
                "expected [[name, \"asc\"|\"desc\"], ...]",
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("order_by[{i}]");
            let Some([Value::String(name), Value::String(direction)]) =
                item.as_array().map(Vec::as_slice)
            else {
                return Err(QueryError::new(path, "expected [name, \"asc\"|\"desc\"]"));
            };
            let descending = match direction.as_str() {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Err(QueryError::new(
                        format!("{path}[1]"),
                        "expected \"asc\" or \"desc\"",
                    ))
                }
            };
            Ok(OrderKey {
                name: name.clone(),
                descending,
            })
        })
        .collect()
}

/// Parses a `timezone` member: an IANA name.
pub fn parse_timezone(name: &str) -> Result<Tz, QueryError> {
    name.parse::<Tz>()
        .map_err(|_| QueryError::new("timezone", format!("{name:?} is not an IANA timezone name")))
}

/// Parses each name of a `metrics` list.
pub fn parse_metrics(names: &[String]) -> Result<Vec<Metric>, QueryError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Metric::parse(name).map_err(|m| QueryError::new(format!("metrics[{i}]"), m))
        })
        .collect()
}

/// Parses each name of a `dimensions` list.
pub fn parse_dimensions(names: &[String]) -> Result<Vec<RequestedDimension>, QueryError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            RequestedDimension::parse(name)
                .map_err(|m| QueryError::new(format!("dimensions[{i}]"), m))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sort_keys_parse_with_their_direction() {
        let keys = parse_order_by(Some(&json!([["events", "desc"], ["time", "asc"]]))).unwrap();
        assert_eq!(
            keys,
            vec![
                OrderKey {
                    name: "events".into(),
                    descending: true
                },
                OrderKey {
                    name: "time".into(),
                    descending: false
                }
            ]
        );
        assert_eq!(
            parse_order_by(Some(&json!([["events", "down"]])))
                .unwrap_err()
                .path,
            "order_by[0][1]"
        );
        assert_eq!(
            parse_order_by(Some(&json!("events"))).unwrap_err().path,
            "order_by"
        );
        assert!(parse_order_by(None).unwrap().is_empty());
    }

    #[test]
    fn names_are_refused_with_their_position() {
        let error = parse_metrics(&["events".into(), "hits".into()]).unwrap_err();
        assert_eq!(error.path, "metrics[1]");
        let error = parse_dimensions(&["event:prop:x".into()]).unwrap_err();
        assert_eq!(error.path, "dimensions[0]");
        assert_eq!(
            parse_timezone("Mars/Base").unwrap_err().to_string(),
            "timezone: \"Mars/Base\" is not an IANA timezone name"
        );
    }
}
