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

/// A visit attribute that enrichment derives from the device and address
/// alone, so that every event of a visit has the same (stored per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitAttribute {
    /// Browser family.
    Browser,
    /// Browser `major.minor`.
    BrowserVersion,
    /// Operating system family.
    Os,
    /// Operating system version.
    OsVersion,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    Device,
    /// ISO country code.
    Country,
    /// ISO 3166-2 region code.
    Region,
    /// City name.
    City,
}

impl VisitAttribute {
    /// Every attribute.
    pub const ALL: [VisitAttribute; 8] = [
        VisitAttribute::Browser,
        VisitAttribute::BrowserVersion,
        VisitAttribute::Os,
        VisitAttribute::OsVersion,
        VisitAttribute::Device,
        VisitAttribute::Country,
        VisitAttribute::Region,
        VisitAttribute::City,
    ];

    /// The name after `visit:`, which is also the stored column's.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitAttribute::Browser => "browser",
            VisitAttribute::BrowserVersion => "browser_version",
            VisitAttribute::Os => "os",
            VisitAttribute::OsVersion => "os_version",
            VisitAttribute::Device => "device",
            VisitAttribute::Country => "country",
            VisitAttribute::Region => "region",
            VisitAttribute::City => "city",
        }
    }
}

/// Where a visit came from, as enrichment stores it on each event: the
/// referrer's domain, the source it names and the channel. A visit's is the
/// value on its first event (later pages of a site refer to the site itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acquisition {
    /// The referrer's host, `www.` removed.
    ReferrerDomain,
    /// A name for the referrer or campaign (`Google`, `newsletter`).
    Source,
    /// Plausible's channel grouping (`Organic Search`, `Direct`, ...).
    Channel,
}

impl Acquisition {
    /// Every attribute.
    pub const ALL: [Acquisition; 3] = [
        Acquisition::ReferrerDomain,
        Acquisition::Source,
        Acquisition::Channel,
    ];

    /// The name after `visit:`, which is also the stored column's.
    pub fn as_str(self) -> &'static str {
        match self {
            Acquisition::ReferrerDomain => "referrer_domain",
            Acquisition::Source => "source",
            Acquisition::Channel => "channel",
        }
    }

    /// The attribute named `visit:NAME`.
    pub fn parse(text: &str) -> Option<Self> {
        let name = text.strip_prefix("visit:")?;
        Acquisition::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// A value every event has (or lacks) by itself: what storage reads,
/// groups, filters and labels by. Neither time nor a session's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventDimension {
    /// The track event's name; for other calls their type (`page`, `identify`, ...).
    Name,
    /// The Segment call type.
    Type,
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
    /// A device or location attribute (`visit:browser`, `visit:country`, ...).
    Visit(VisitAttribute),
    /// The referrer domain, source or channel of the event itself; queries
    /// ask for a visit's ([`SessionDimension::Acquisition`]), analyses read
    /// their step events'.
    Acquisition(Acquisition),
}

/// A value of a session as a whole, computed from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionDimension {
    /// The page of a session's first page view.
    EntryPage,
    /// The page of a session's last page view.
    ExitPage,
    /// The referrer domain, source or channel of a session's first event.
    Acquisition(Acquisition),
}

impl SessionDimension {
    /// The event dimension whose value on one event of the session is the
    /// session's (see [`SessionDimension::anchor`]).
    pub fn label(self) -> EventDimension {
        match self {
            SessionDimension::EntryPage | SessionDimension::ExitPage => EventDimension::Page,
            SessionDimension::Acquisition(attribute) => EventDimension::Acquisition(attribute),
        }
    }

    /// Which event of the session carries the value.
    pub fn anchor(self) -> SessionAnchor {
        match self {
            SessionDimension::EntryPage => SessionAnchor::FirstPageView,
            SessionDimension::ExitPage => SessionAnchor::LastPageView,
            SessionDimension::Acquisition(_) => SessionAnchor::FirstEvent,
        }
    }
}

/// The event of a session whose value is the session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAnchor {
    /// Its first event.
    FirstEvent,
    /// Its first page view.
    FirstPageView,
    /// Its last page view.
    LastPageView,
}

/// A dimension of a planned query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Time buckets.
    Time(Granularity),
    /// A value of each event.
    Event(EventDimension),
    /// A value of each session.
    Session(SessionDimension),
}

impl Dimension {
    /// Whether the dimension belongs to sessions rather than events.
    pub fn is_session(&self) -> bool {
        matches!(self, Dimension::Session(_))
    }
}

/// A dimension as requested: `time` alone leaves the granularity to the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedDimension {
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
    pub fn parse(text: &str) -> Result<Self, String> {
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
        let session = match text {
            "session:entry_page" | "visit:entry_page" => Some(SessionDimension::EntryPage),
            "session:exit_page" | "visit:exit_page" => Some(SessionDimension::ExitPage),
            _ => None,
        };
        if let Some(session) =
            session.or_else(|| Acquisition::parse(text).map(SessionDimension::Acquisition))
        {
            return Ok(RequestedDimension::Exact(Dimension::Session(session)));
        }
        EventDimension::parse_name(text)
            .map(|dimension| RequestedDimension::Exact(Dimension::Event(dimension)))
    }

    /// Parses a dimension that must be an event dimension; `what` says what
    /// it is for, in the refusal of a time or session dimension. The
    /// referrer domain, source and channel are read on the event itself.
    pub fn parse_event(text: &str, what: &str) -> Result<EventDimension, String> {
        match Self::parse(text)? {
            RequestedDimension::Exact(Dimension::Event(dimension)) => Ok(dimension),
            RequestedDimension::Exact(Dimension::Session(SessionDimension::Acquisition(
                attribute,
            ))) => Ok(EventDimension::Acquisition(attribute)),
            RequestedDimension::AutoTime | RequestedDimension::Exact(Dimension::Time(_)) => Err(
                format!("{text:?} is a time dimension; {what} takes an event or user dimension"),
            ),
            RequestedDimension::Exact(Dimension::Session(_)) => Err(format!(
                "{text:?} is a session dimension; {what} takes an event or user dimension"
            )),
        }
    }
}

impl EventDimension {
    fn parse_name(text: &str) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix("event:props:") {
            return Ok(EventDimension::Property(key(name, "event:props:")?));
        }
        if let Some(name) = text.strip_prefix("event:context:") {
            return Ok(EventDimension::Context(key(name, "event:context:")?));
        }
        Ok(match text {
            "event:name" => EventDimension::Name,
            "event:type" => EventDimension::Type,
            "event:page" => EventDimension::Page,
            "event:url" => EventDimension::Url,
            "event:referrer" => EventDimension::Referrer,
            "event:library" => EventDimension::Library,
            "event:locale" => EventDimension::Locale,
            "user:id" => EventDimension::UserId,
            _ => {
                let utm = text
                    .strip_prefix("event:")
                    .or_else(|| text.strip_prefix("visit:"))
                    .and_then(|field| UtmField::ALL.into_iter().find(|utm| utm.as_str() == field));
                let visit = text.strip_prefix("visit:").and_then(|field| {
                    VisitAttribute::ALL
                        .into_iter()
                        .find(|attribute| attribute.as_str() == field)
                });
                match (utm, visit) {
                    (Some(utm), _) => EventDimension::Utm(utm),
                    (None, Some(attribute)) => EventDimension::Visit(attribute),
                    (None, None) => return Err(format!("unknown dimension {text:?}")),
                }
            }
        })
    }
}

impl fmt::Display for EventDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventDimension::Name => f.write_str("event:name"),
            EventDimension::Type => f.write_str("event:type"),
            EventDimension::Page => f.write_str("event:page"),
            EventDimension::Url => f.write_str("event:url"),
            EventDimension::Referrer => f.write_str("event:referrer"),
            EventDimension::Utm(utm) => write!(f, "event:{}", utm.as_str()),
            EventDimension::Library => f.write_str("event:library"),
            EventDimension::Locale => f.write_str("event:locale"),
            EventDimension::Property(key) => write!(f, "event:props:{key}"),
            EventDimension::Context(key) => write!(f, "event:context:{key}"),
            EventDimension::UserId => f.write_str("user:id"),
            EventDimension::Visit(attribute) => write!(f, "visit:{}", attribute.as_str()),
            EventDimension::Acquisition(attribute) => write!(f, "visit:{}", attribute.as_str()),
        }
    }
}

impl fmt::Display for SessionDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionDimension::EntryPage => f.write_str("session:entry_page"),
            SessionDimension::ExitPage => f.write_str("session:exit_page"),
            SessionDimension::Acquisition(attribute) => write!(f, "visit:{}", attribute.as_str()),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Time(granularity) => write!(f, "time:{}", granularity.as_str()),
            Dimension::Event(dimension) => dimension.fmt(f),
            Dimension::Session(dimension) => dimension.fmt(f),
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
            "visit:browser",
            "visit:browser_version",
            "visit:os",
            "visit:os_version",
            "visit:device",
            "visit:country",
            "visit:region",
            "visit:city",
            "event:locale",
            "event:props:plan",
            "event:props:company.name",
            "event:context:app.version",
            "user:id",
            "session:entry_page",
            "session:exit_page",
            "visit:referrer_domain",
            "visit:source",
            "visit:channel",
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

    #[test]
    fn event_dimensions_refuse_time_and_sessions_by_name() {
        assert_eq!(
            RequestedDimension::parse_event("event:props:plan", "a breakdown"),
            Ok(EventDimension::Property("plan".into()))
        );
        assert_eq!(
            RequestedDimension::parse_event("session:entry_page", "a breakdown").unwrap_err(),
            "\"session:entry_page\" is a session dimension; a breakdown takes an event or user dimension"
        );
        assert_eq!(
            RequestedDimension::parse_event("visit:channel", "a breakdown"),
            Ok(EventDimension::Acquisition(Acquisition::Channel))
        );
        assert!(RequestedDimension::parse_event("time", "a breakdown")
            .unwrap_err()
            .contains("time dimension"));
    }
}
