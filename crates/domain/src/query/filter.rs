//! Filters: conditions on dimensions, combined with and, or and not.

use serde_json::Value;

use super::dimension::{EventDimension, RequestedDimension, SessionDimension};
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

    /// Whether the operator is the negation of another (events lacking the
    /// field match it).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            FilterOp::IsNot | FilterOp::ContainsNot | FilterOp::MatchesNot | FilterOp::IsNotSet
        )
    }
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// Greater than.
    Gt,
    /// Greater than or equal to.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal to.
    Lte,
}

impl Comparison {
    /// The SQL operator.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Gte => ">=",
            Comparison::Lt => "<",
            Comparison::Lte => "<=",
        }
    }
}

/// What a condition tests of a dimension's value, in its positive form.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Equal to one of the values.
    Equals(Vec<String>),
    /// Contains one of the values (case-sensitive).
    Contains(Vec<String>),
    /// Matches one of the regular expressions (anywhere in the value).
    Matches(Vec<String>),
    /// The value, read as a number, compares so with a finite number.
    Compare(Comparison, f64),
    /// The value is set.
    IsSet,
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
    /// One condition on an event dimension.
    Condition {
        /// What is tested.
        dimension: EventDimension,
        /// The test, in its positive form.
        test: Test,
        /// Whether the condition is the negation of `test` (`is_not`,
        /// `contains_not`, `matches_not`, `is_not_set`).
        negated: bool,
    },
}

impl Filter {
    /// The condition `dimension is one of values`.
    pub fn is(dimension: EventDimension, values: Vec<String>) -> Self {
        Filter::Condition {
            dimension,
            test: Test::Equals(values),
            negated: false,
        }
    }
}

/// Longest regular expression accepted, and the most values per condition.
const MAX_PATTERN_LENGTH: usize = 1_000;
const MAX_VALUES: usize = 1_000;
/// Deepest nesting of and/or/not.
const MAX_DEPTH: usize = 32;

/// Parses the `filters` member: one filter expression, or a list meaning all of them.
pub fn parse_filters(value: &Value) -> Result<Option<Filter>, QueryError> {
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

/// The filters of `/v1/query`, split by what they test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryFilters {
    /// Conditions on each event.
    pub events: Option<Filter>,
    /// Conditions on the visit an event belongs to: `visit:referrer_domain`,
    /// `visit:source` and `visit:channel`, tested on the visit's first event.
    pub visits: Option<Filter>,
}

/// Parses `/v1/query`'s `filters`: like [`parse_filters`], with each
/// top-level condition that names a visit's referrer domain, source or
/// channel set apart; such a condition may not also test an event dimension.
pub fn parse_query_filters(value: &Value) -> Result<QueryFilters, QueryError> {
    let Some(filter) = parse_filters(value)? else {
        return Ok(QueryFilters::default());
    };
    let (conjuncts, path): (Vec<Filter>, Box<dyn Fn(usize) -> String>) = match filter {
        Filter::And(items) if value.get(0).and_then(Value::as_str) == Some("and") => {
            (items, Box::new(|i| format!("filters[1][{i}]")))
        }
        Filter::And(items) if value.is_array() && value.get(0).is_some_and(Value::is_array) => {
            (items, Box::new(|i| format!("filters[{i}]")))
        }
        other => (vec![other], Box::new(|_| "filters".to_owned())),
    };
    let mut events = Vec::new();
    let mut visits = Vec::new();
    for (i, conjunct) in conjuncts.into_iter().enumerate() {
        match (tests_visits(&conjunct), tests_events(&conjunct)) {
            (true, true) => {
                return Err(QueryError::new(
                    path(i),
                    "visit:referrer_domain, visit:source and visit:channel test an event's visit, not the event: give them conditions of their own, joined to the others by the top-level and",
                ))
            }
            (true, false) => visits.push(conjunct),
            _ => events.push(conjunct),
        }
    }
    let all = |mut items: Vec<Filter>| match items.len() {
        0 => None,
        1 => items.pop(),
        _ => Some(Filter::And(items)),
    };
    Ok(QueryFilters {
        events: all(events),
        visits: all(visits),
    })
}

/// Whether some condition of `filter` satisfies `test`.
fn any_condition(filter: &Filter, test: &dyn Fn(&EventDimension) -> bool) -> bool {
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().any(|f| any_condition(f, test)),
        Filter::Not(inner) => any_condition(inner, test),
        Filter::Condition { dimension, .. } => test(dimension),
    }
}

fn tests_visits(filter: &Filter) -> bool {
    any_condition(filter, &|d| matches!(d, EventDimension::Acquisition(_)))
}

fn tests_events(filter: &Filter) -> bool {
    any_condition(filter, &|d| !matches!(d, EventDimension::Acquisition(_)))
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
            Ok(RequestedDimension::Exact(super::Dimension::Event(dimension))) => dimension,
            Ok(RequestedDimension::Exact(super::Dimension::Session(
                SessionDimension::Acquisition(attribute),
            ))) => EventDimension::Acquisition(attribute),
            Ok(RequestedDimension::Exact(super::Dimension::Session(_))) => {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    "session:entry_page and session:exit_page cannot be filtered on; filter the events with event dimensions",
                ))
            }
            Ok(_) => {
                return Err(QueryError::new(
                    format!("{path}[1]"),
                    "time cannot be filtered on; use date_range",
                ))
            }
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
    let test = test(op, values, &values_path)?;
    Ok(Filter::Condition {
        dimension,
        test,
        negated: op.is_negated(),
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

/// The positive test of `op` over checked values.
fn test(op: FilterOp, values: Vec<String>, path: &str) -> Result<Test, QueryError> {
    if matches!(op, FilterOp::IsSet | FilterOp::IsNotSet) {
        return Ok(Test::IsSet);
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
    let comparison = match op {
        FilterOp::Gt => Some(Comparison::Gt),
        FilterOp::Gte => Some(Comparison::Gte),
        FilterOp::Lt => Some(Comparison::Lt),
        FilterOp::Lte => Some(Comparison::Lte),
        _ => None,
    };
    if let Some(comparison) = comparison {
        let [value] = values.as_slice() else {
            return Err(QueryError::new(
                path,
                format!("{:?} takes exactly one number", op.as_str()),
            ));
        };
        let number = value
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .ok_or_else(|| {
                QueryError::new(format!("{path}[0]"), format!("{value:?} is not a number"))
            })?;
        return Ok(Test::Compare(comparison, number));
    }
    Ok(match op {
        FilterOp::Is | FilterOp::IsNot => Test::Equals(values),
        FilterOp::Contains | FilterOp::ContainsNot => Test::Contains(values),
        _ => {
            for (i, pattern) in values.iter().enumerate() {
                check_pattern(pattern)
                    .map_err(|message| QueryError::new(format!("{path}[{i}]"), message))?;
            }
            Test::Matches(values)
        }
    })
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
            Filter::is(
                EventDimension::Name,
                vec!["signup".into(), "purchase".into()]
            )
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
        let Filter::Condition { test, .. } = filter else {
            panic!()
        };
        assert_eq!(
            test,
            Test::Equals(vec!["2".into(), "true".into(), "1.5".into()])
        );
    }

    #[test]
    fn negative_operators_negate_their_positive_test() {
        let filter = parse(json!(["is_not_set", "event:referrer"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            filter,
            Filter::Condition {
                dimension: EventDimension::Referrer,
                test: Test::IsSet,
                negated: true
            }
        );
        let filter = parse(json!(["lte", "event:props:n", ["2.5"]]))
            .unwrap()
            .unwrap();
        assert!(matches!(
            filter,
            Filter::Condition { test: Test::Compare(Comparison::Lte, n), negated: false, .. } if n == 2.5
        ));
        assert_eq!(
            parse(json!(["gt", "event:props:n", ["1e999"]]))
                .unwrap_err()
                .path,
            "filters[2][0]"
        );
    }
}
