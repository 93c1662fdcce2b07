//! Filters: conditions on dimensions, combined with and, or and not.

use serde_json::Value;

use super::dimension::{Dimension, RequestedDimension};
use super::QueryError;

/// A comparison of one dimension with values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// Equal to any of the values.
    Is,
    /// Equal to none of the values (events without the field match).
    IsNot,
    /// Contains any of the values (case-sensitive).
    Contains,
    /// Contains none of the values (events without the field match).
    ContainsNot,
    /// Matches any of the regular expressions (anywhere in the value).
    Matches,
    /// Matches none of the regular expressions (events without the field match).
    MatchesNot,
    /// Numerically greater than the value.
    Gt,
    /// Numerically greater than or equal to the value.
    Gte,
    /// Numerically less than the value.
    Lt,
    /// Numerically less than or equal to the value.
    Lte,
    /// The field has a value.
    IsSet,
    /// The field has no value.
    IsNotSet,
}

impl FilterOp {
    const ALL: [FilterOp; 12] = [
        FilterOp::Is,
        FilterOp::IsNot,
        FilterOp::Contains,
        FilterOp::ContainsNot,
        FilterOp::Matches,
        FilterOp::MatchesNot,
        FilterOp::Gt,
        FilterOp::Gte,
        FilterOp::Lt,
        FilterOp::Lte,
        FilterOp::IsSet,
        FilterOp::IsNotSet,
    ];

    /// The operator's name in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Is => "is",
            FilterOp::IsNot => "is_not",
            FilterOp::Contains => "contains",
            FilterOp::ContainsNot => "contains_not",
            FilterOp::Matches => "matches",
            FilterOp::MatchesNot => "matches_not",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::IsSet => "is_set",
            FilterOp::IsNotSet => "is_not_set",
        }
    }

    /// Whether the operator compares numbers.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte
        )
    }

    /// Whether a negated operator (events lacking the field match it).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            FilterOp::IsNot | FilterOp::ContainsNot | FilterOp::MatchesNot
        )
    }
}

/// A filter of a planned query.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every filter holds.
    And(Vec<Filter>),
    /// At least one filter holds.
    Or(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
    /// One comparison.
    Condition {
        /// The comparison.
        op: FilterOp,
        /// What is compared.
        dimension: Dimension,
        /// Values as text (one number for numeric operators, none for is_set).
        values: Vec<String>,
    },
}

/// Longest regular expression accepted, and the most values per condition.
const MAX_PATTERN_LENGTH: usize = 1_000;
const MAX_VALUES: usize = 1_000;
/// Deepest nesting of and/or/not.
const MAX_DEPTH: usize = 32;

/// Parses the `filters` member: one filter expression, or a list meaning all of them.
pub(crate) fn parse_filters(value: &Value) -> Result<Option<Filter>, QueryError> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) if items.is_empty() => Ok(None),
        Value::Array(items) if items.iter().all(Value::is_array) => {
            let filters = items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_filter(item, &format!("filters[{i}]"), 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Filter::And(filters)))
        }
        _ => parse_filter(value, "filters", 0).map(Some),
    }
}

fn parse_filter(value: &Value, path: &str, depth: usize) -> Result<Filter, QueryError> {
    if depth > MAX_DEPTH {
        return Err(QueryError::new(
            path,
            format!("filters nest at most {MAX_DEPTH} deep"),
        ));
    }
    let Some(items) = value.as_array() else {
        return Err(QueryError::new(
            path,
            "a filter is an array: [op, dimension, values], [\"and\"|\"or\", [filters]] or [\"not\", filter]",
        ));
    };
    let Some(op) = items.first().and_then(Value::as_str) else {
        return Err(QueryError::new(
            format!("{path}[0]"),
            "expected an operator name",
        ));
    };
    match op {
        "and" | "or" => {
            let [_, Value::Array(children)] = items.as_slice() else {
                return Err(QueryError::new(
                    path,
                    format!("{op:?} takes one list of filters: [{op:?}, [...]]"),
                ));
            };
            if children.is_empty() {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    format!("{op:?} needs at least one filter"),
                ));
            }
            let children = children
                .iter()
                .enumerate()
                .map(|(i, child)| parse_filter(child, &format!("{path}[1][{i}]"), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Filter::And(children)
            } else {
                Filter::Or(children)
            })
        }
        "not" => {
            let [_, child] = items.as_slice() else {
                return Err(QueryError::new(
                    path,
                    "\"not\" takes one filter: [\"not\", filter]",
                ));
            };
            let child = parse_filter(child, &format!("{path}[1]"), depth + 1)?;
            Ok(Filter::Not(Box::new(child)))
        }
        _ => parse_condition(items, path),
    }
}

fn parse_condition(items: &[Value], path: &str) -> Result<Filter, QueryError> {
    let name = items[0].as_str().unwrap_or_default();
    let op = FilterOp::ALL
        .into_iter()
        .find(|op| op.as_str() == name)
        .ok_or_else(|| {
            QueryError::new(
                format!("{path}[0]"),
                format!(
                    "unknown operator {name:?} (and, or, not, {})",
                    FilterOp::ALL.map(FilterOp::as_str).join(", ")
                ),
            )
        })?;
    let dimension = match items.get(1) {
        Some(Value::String(text)) => match RequestedDimension::parse(text) {
            Ok(RequestedDimension::Exact(Dimension::Time(_)))
            | Ok(RequestedDimension::AutoTime) => {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    "time cannot be filtered on; use date_range",
                ))
            }
            Ok(RequestedDimension::Exact(dimension)) if dimension.is_session() => {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    "session dimensions cannot be filtered on; filter the events with event dimensions",
                ))
            }
            Ok(RequestedDimension::Exact(dimension)) => dimension,
            Err(message) => return Err(QueryError::new(format!("{path}[1]"), message)),
        },
        _ => {
            return Err(QueryError::new(
                format!("{path}[1]"),
                "expected a dimension name",
            ))
        }
    };
    let values_path = format!("{path}[2]");
    let values = match (op, items.get(2)) {
        (FilterOp::IsSet | FilterOp::IsNotSet, None) => Vec::new(),
        (FilterOp::IsSet | FilterOp::IsNotSet, Some(Value::Array(list))) if list.is_empty() => {
            Vec::new()
        }
        (FilterOp::IsSet | FilterOp::IsNotSet, Some(_)) => {
            return Err(QueryError::new(
                values_path,
                format!("{:?} takes no values", op.as_str()),
            ))
        }
        (_, Some(Value::Array(list))) => list
            .iter()
            .enumerate()
            .map(|(i, value)| value_text(value, &format!("{values_path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        (_, _) => return Err(QueryError::new(values_path, "expected a list of values")),
    };
    if items.len() > 3 {
        return Err(QueryError::new(
            path,
            "a condition is [op, dimension, values]",
        ));
    }
    check_values(op, &values, &values_path)?;
    Ok(Filter::Condition {
        op,
        dimension,
        values,
    })
}

fn value_text(value: &Value, path: &str) -> Result<String, QueryError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(QueryError::new(
            path,
            "values are strings, numbers or booleans",
        )),
    }
}

fn check_values(op: FilterOp, values: &[String], path: &str) -> Result<(), QueryError> {
    if matches!(op, FilterOp::IsSet | FilterOp::IsNotSet) {
        return Ok(());
    }
    if values.is_empty() {
        return Err(QueryError::new(
            path,
            format!("{:?} needs at least one value", op.as_str()),
        ));
    }
    if values.len() > MAX_VALUES {
        return Err(QueryError::new(
            path,
            format!("at most {MAX_VALUES} values"),
        ));
    }
    if op.is_numeric() {
        let [value] = values else {
            return Err(QueryError::new(
                path,
                format!("{:?} takes exactly one number", op.as_str()),
            ));
        };
        if !value.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(QueryError::new(
                format!("{path}[0]"),
                format!("{value:?} is not a number"),
            ));
        }
    }
    if matches!(op, FilterOp::Matches | FilterOp::MatchesNot) {
        for (i, pattern) in values.iter().enumerate() {
            check_pattern(pattern)
                .map_err(|message| QueryError::new(format!("{path}[{i}]"), message))?;
        }
    }
    Ok(())
}

/// Refuses patterns that the engines' RE2 syntax would reject or that are too costly.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_PATTERN_LENGTH {
        return Err(format!(
            "regular expressions are at most {MAX_PATTERN_LENGTH} bytes"
        ));
    }
    if pattern.contains("(?<") || pattern.contains("(?P=") {
        return Err("lookbehind and backreferences are not supported".into());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .nest_limit(50)
        .build()
        .map(drop)
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or(&detail).trim().to_owned();
            format!("invalid regular expression: {last}")
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<Option<Filter>, QueryError> {
        parse_filters(&value)
    }

    #[test]
    fn nested_combinations_parse() {
        let filter = parse(json!([
            "and",
            [
                ["is", "event:name", ["signup", "purchase"]],
                [
                    "or",
                    [
                        ["contains", "event:props:plan", ["pro"]],
                        ["not", ["is_set", "event:referrer"]]
                    ]
                ]
            ]
        ]))
        .unwrap()
        .unwrap();
        let Filter::And(children) = filter else {
            panic!()
        };
        assert_eq!(
            children[0],
            Filter::Condition {
                op: FilterOp::Is,
                dimension: Dimension::EventName,
                values: vec!["signup".into(), "purchase".into()]
            }
        );
        assert!(matches!(&children[1], Filter::Or(inner) if matches!(inner[1], Filter::Not(_))));
    }

    #[test]
    fn a_list_of_filters_means_all_of_them() {
        let filter = parse(json!([
            ["is", "event:name", ["a"]],
            ["gt", "event:props:n", [3]]
        ]))
        .unwrap()
        .unwrap();
        assert!(matches!(filter, Filter::And(ref items) if items.len() == 2));
    }

    #[test]
    fn errors_name_the_faulty_part() {
        let error = parse(json!([
            "and",
            [
                ["is", "event:name", ["a"]],
                ["is", "event:prop:plan", ["x"]]
            ]
        ]))
        .unwrap_err();
        assert_eq!(error.path, "filters[1][1][1]");
        assert_eq!(error.message, "unknown dimension \"event:prop:plan\"");

        let error = parse(json!([
            ["is", "event:name", ["a"]],
            ["is", "event:prop:plan", ["x"]]
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "filters[1][1]: unknown dimension \"event:prop:plan\""
        );

        assert_eq!(
            parse(json!(["gt", "event:props:n", ["many"]]))
                .unwrap_err()
                .path,
            "filters[2][0]"
        );
        assert_eq!(
            parse(json!(["gt", "event:props:n", [1, 2]]))
                .unwrap_err()
                .path,
            "filters[2]"
        );
        assert_eq!(
            parse(json!(["matches", "event:page", ["(unclosed"]]))
                .unwrap_err()
                .path,
            "filters[2][0]"
        );
        assert_eq!(
            parse(json!(["equals", "event:page", ["/"]]))
                .unwrap_err()
                .path,
            "filters[0]"
        );
        assert_eq!(
            parse(json!(["is", "time:day", ["2026-01-01"]]))
                .unwrap_err()
                .path,
            "filters[1]"
        );
        assert_eq!(
            parse(json!(["is_set", "event:page", ["x"]]))
                .unwrap_err()
                .path,
            "filters[2]"
        );
        assert_eq!(
            parse(json!(["is", "event:page", []])).unwrap_err().path,
            "filters[2]"
        );
    }

    #[test]
    fn numbers_and_booleans_compare_as_their_text() {
        let filter = parse(json!(["is", "event:props:n", [2, true, 1.5]]))
            .unwrap()
            .unwrap();
        let Filter::Condition { values, .. } = filter else {
            panic!()
        };
        assert_eq!(values, vec!["2", "true", "1.5"]);
    }
}
