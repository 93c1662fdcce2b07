//! What rows are broken down by.

use std::fmt;

/// Size of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One real minute.
    Minute,
    /// One real hour (a repeated local hour at a DST change is two buckets).
    Hour,
    /// One local calendar day (23 or 25 hours across DST changes).
    Day,
    /// One local week, from Monday.
    Week,
    /// One local calendar month.
    Month,
}

impl Granularity {
    /// The name used in `time:NAME`.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// Whether buckets follow the local calendar (day and longer) rather than real time.
    pub fn is_calendar(self) -> bool {
        matches!(
            self,
            Granularity::Day | Granularity::Week | Granularity::Month
        )
    }

    /// The integer arithmetic of fixed-length buckets (all but months).
    pub fn fixed_length(self) -> Option<FixedLengthBucket> {
        const MINUTE: i64 = 60_000_000;
        const HOUR: i64 = 60 * MINUTE;
        const DAY: i64 = 24 * HOUR;
        const WEEK: i64 = 7 * DAY;
        // 1,000 weeks: keeps every local time positive, so division floors.
        const SHIFT: i64 = 1_000 * WEEK;
        // 1970-01-01 was a Thursday: three more days put week starts on Monday.
        const MONDAY: i64 = 3 * DAY;
        let (unit_us, shift_us) = match self {
            Granularity::Minute => (MINUTE, SHIFT),
            Granularity::Hour => (HOUR, SHIFT),
            Granularity::Day => (DAY, SHIFT),
            Granularity::Week => (WEEK, SHIFT + MONDAY),
            Granularity::Month => return None,
        };
        Some(FixedLengthBucket {
            unit_us,
            shift_us,
            starts_in_utc: !self.is_calendar(),
        })
    }
}

/// How an executor computes a fixed-length bucket from an event's time in
/// microseconds, with `offset` the local minus UTC microseconds of its branch:
/// the local start is `((time + offset + shift_us) / unit_us) * unit_us - shift_us`
/// (integer division of a positive number); minute and hour buckets are then
/// reported by their UTC start (minus `offset` again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedLengthBucket {
    /// Bucket length.
    pub unit_us: i64,
    /// Added before dividing: keeps times positive and aligns weeks on Monday.
    pub shift_us: i64,
    /// Whether the bucket is reported by its UTC start rather than its local one.
    pub starts_in_utc: bool,
}

/// A UTM campaign field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UtmField {
    /// `utm_source`.
    Source,
    /// `utm_medium`.
    Medium,
    /// `utm_campaign`.
    Campaign,
    /// `utm_term`.
    Term,
    /// `utm_content`.
    Content,
}

impl UtmField {
    const ALL: [UtmField; 5] = [
        UtmField::Source,
        UtmField::Medium,
        UtmField::Campaign,
        UtmField::Term,
        UtmField::Content,
    ];

    /// The parameter name, e.g. `utm_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            UtmField::Source => "utm_source",
            UtmField::Medium => "utm_medium",
            UtmField::Campaign => "utm_campaign",
            UtmField::Term => "utm_term",
            UtmField::Content => "utm_content",
        }
    }
}

/// A dimension of a planned query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Time buckets.
    Time(Granularity),
    /// The track event's name; for other calls their type (`page`, `identify`, ...).
    EventName,
    /// The Segment call type.
    EventType,
    /// `context.page.path`.
    Page,
    /// `context.page.url`.
    Url,
    /// `context.page.referrer`.
    Referrer,
    /// A UTM campaign field.
    Utm(UtmField),
    /// `context.library.name`.
    Library,
    /// `context.locale`.
    Locale,
    /// A property (a trait for identify and group calls); dots reach into objects.
    Property(String),
    /// A context field; dots reach into objects.
    Context(String),
    /// `userId`, else `anonymousId`.
    UserId,
    /// The page of a session's first page view.
    SessionEntryPage,
    /// The page of a session's last page view.
    SessionExitPage,
}

impl Dimension {
    /// Whether the dimension belongs to sessions rather than events.
    pub fn is_session(&self) -> bool {
        matches!(
            self,
            Dimension::SessionEntryPage | Dimension::SessionExitPage
        )
    }
}

/// A dimension as requested: `time` alone leaves the granularity to the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestedDimension {
    /// `time` without a granularity.
    AutoTime,
    /// Anything else.
    Exact(Dimension),
}

/// Longest property or context key accepted.
const MAX_KEY_LENGTH: usize = 256;

fn key(text: &str, prefix: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("{prefix}KEY needs a key"));
    }
    if text.len() > MAX_KEY_LENGTH {
        return Err(format!("keys are at most {MAX_KEY_LENGTH} bytes"));
    }
    Ok(text.to_owned())
}

impl RequestedDimension {
    /// Parses a dimension name.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text == "time" {
            return Ok(RequestedDimension::AutoTime);
        }
        if let Some(granularity) = text.strip_prefix("time:") {
            let granularity = match granularity {
                "minute" => Granularity::Minute,
                "hour" => Granularity::Hour,
                "day" => Granularity::Day,
                "week" => Granularity::Week,
                "month" => Granularity::Month,
                _ => {
                    return Err(format!(
                        "unknown time granularity {granularity:?} (minute, hour, day, week, month)"
                    ))
                }
            };
            return Ok(RequestedDimension::Exact(Dimension::Time(granularity)));
        }
        if let Some(name) = text.strip_prefix("event:props:") {
            return Ok(RequestedDimension::Exact(Dimension::Property(key(
                name,
                "event:props:",
            )?)));
        }
        if let Some(name) = text.strip_prefix("event:context:") {
            return Ok(RequestedDimension::Exact(Dimension::Context(key(
                name,
                "event:context:",
            )?)));
        }
        let dimension = match text {
            "event:name" => Dimension::EventName,
            "event:type" => Dimension::EventType,
            "event:page" => Dimension::Page,
            "event:url" => Dimension::Url,
            "event:referrer" => Dimension::Referrer,
            "event:library" => Dimension::Library,
            "event:locale" => Dimension::Locale,
            "user:id" => Dimension::UserId,
            "session:entry_page" => Dimension::SessionEntryPage,
            "session:exit_page" => Dimension::SessionExitPage,
            _ => {
                let utm = text
                    .strip_prefix("event:")
                    .and_then(|field| UtmField::ALL.into_iter().find(|utm| utm.as_str() == field));
                match utm {
                    Some(utm) => Dimension::Utm(utm),
                    None => return Err(format!("unknown dimension {text:?}")),
                }
            }
        };
        Ok(RequestedDimension::Exact(dimension))
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Time(granularity) => write!(f, "time:{}", granularity.as_str()),
            Dimension::EventName => f.write_str("event:name"),
            Dimension::EventType => f.write_str("event:type"),
            Dimension::Page => f.write_str("event:page"),
            Dimension::Url => f.write_str("event:url"),
            Dimension::Referrer => f.write_str("event:referrer"),
            Dimension::Utm(utm) => write!(f, "event:{}", utm.as_str()),
            Dimension::Library => f.write_str("event:library"),
            Dimension::Locale => f.write_str("event:locale"),
            Dimension::Property(key) => write!(f, "event:props:{key}"),
            Dimension::Context(key) => write!(f, "event:context:{key}"),
            Dimension::UserId => f.write_str("user:id"),
            Dimension::SessionEntryPage => f.write_str("session:entry_page"),
            Dimension::SessionExitPage => f.write_str("session:exit_page"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_prints_back() {
        for name in [
            "time:minute",
            "time:hour",
            "time:day",
            "time:week",
            "time:month",
            "event:name",
            "event:type",
            "event:page",
            "event:url",
            "event:referrer",
            "event:utm_source",
            "event:utm_medium",
            "event:utm_campaign",
            "event:utm_term",
            "event:utm_content",
            "event:library",
            "event:locale",
            "event:props:plan",
            "event:props:company.name",
            "event:context:app.version",
            "user:id",
            "session:entry_page",
            "session:exit_page",
        ] {
            match RequestedDimension::parse(name) {
                Ok(RequestedDimension::Exact(dimension)) => assert_eq!(dimension.to_string(), name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(
            RequestedDimension::parse("time"),
            Ok(RequestedDimension::AutoTime)
        );
    }

    #[test]
    fn unknown_names_are_refused_by_name() {
        assert_eq!(
            RequestedDimension::parse("event:prop:plan"),
            Err("unknown dimension \"event:prop:plan\"".to_owned())
        );
        assert!(RequestedDimension::parse("event:props:").is_err());
        assert!(RequestedDimension::parse("time:year").is_err());
    }
}
