//! Event time: client clock-skew correction and the future-timestamp guard.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The client-supplied times of one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientTimes {
    /// `timestamp` as sent.
    pub timestamp: Option<DateTime<Utc>>,
    /// `originalTimestamp` as sent.
    pub original_timestamp: Option<DateTime<Utc>>,
    /// `sentAt` of the event, or of its batch.
    pub sent_at: Option<DateTime<Utc>>,
}

/// The time stored for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedTime {
    /// The event time to store.
    pub timestamp: DateTime<Utc>,
    /// Whether the time lay too far in the future and was clamped to `receivedAt`.
    pub clamped: bool,
}

/// Computes the stored timestamp as Segment does.
///
/// With `sentAt`, the device clock's offset is removed:
/// `timestamp = receivedAt - (sentAt - deviceTime)`, where the device time is
/// `originalTimestamp`, else `timestamp`. Without `sentAt`, the device time is
/// taken as it is, and with no time at all the event happened at `receivedAt`.
/// A result more than `max_future` after `receivedAt` is clamped to `receivedAt`.
pub fn resolve_timestamp(
    times: ClientTimes,
    received_at: DateTime<Utc>,
    max_future: Duration,
) -> ResolvedTime {
    let device_time = times.original_timestamp.or(times.timestamp);
    let timestamp = match (device_time, times.sent_at) {
        (Some(device), Some(sent)) => received_at
            .checked_sub_signed(sent.signed_duration_since(device))
            .unwrap_or(device),
        (Some(device), None) => device,
        (None, _) => received_at,
    };
    if timestamp.signed_duration_since(received_at) > max_future {
        ResolvedTime {
            timestamp: received_at,
            clamped: true,
        }
    } else {
        ResolvedTime {
            timestamp,
            clamped: false,
        }
    }
}

/// The first instant of `date` in `timezone`: local midnight, or the end of a
/// daylight-saving gap that swallows midnight.
pub fn start_of_day(date: NaiveDate, timezone: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    (0..=12).find_map(|quarter| {
        let local = midnight + Duration::minutes(15 * quarter);
        match timezone.from_local_datetime(&local) {
            LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Some(time.to_utc()),
            LocalResult::None => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_local_midnight_or_after_a_gap() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(start_of_day(date, berlin), Some(at("2026-03-28T23:00:00Z")));
        // Santiago skipped from 00:00 to 01:00 on 2022-09-11.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2022, 9, 11).unwrap();
        assert_eq!(
            start_of_day(date, santiago),
            Some(at("2022-09-11T04:00:00Z"))
        );
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    const DAY: Duration = Duration::days(1);

    #[test]
    fn skew_is_removed_using_sent_at() {
        // The device clock runs 10 minutes fast: it stamped the event at 12:10 and
        // sent it at 12:15 (device time); the server received it at 12:05:30.
        let times = ClientTimes {
            timestamp: None,
            original_timestamp: Some(at("2026-03-01T12:10:00Z")),
            sent_at: Some(at("2026-03-01T12:15:00Z")),
        };
        let resolved = resolve_timestamp(times, at("2026-03-01T12:05:30Z"), DAY);
        assert_eq!(resolved.timestamp, at("2026-03-01T12:00:30Z"));
        assert!(!resolved.clamped);
    }

    #[test]
    fn timestamp_stands_in_for_original_timestamp() {
        let times = ClientTimes {
            timestamp: Some(at("2026-03-01T08:00:00Z")),
            original_timestamp: None,
            sent_at: Some(at("2026-03-01T08:00:10Z")),
        };
        let resolved = resolve_timestamp(times, at("2026-03-01T09:00:00Z"), DAY);
        assert_eq!(resolved.timestamp, at("2026-03-01T08:59:50Z"));
    }

    #[test]
    fn without_sent_at_the_device_time_is_kept_and_without_any_time_receipt_is_used() {
        let received = at("2026-03-01T09:00:00Z");
        let times = ClientTimes {
            timestamp: Some(at("2026-02-01T00:00:00Z")),
            ..ClientTimes::default()
        };
        assert_eq!(
            resolve_timestamp(times, received, DAY).timestamp,
            at("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            resolve_timestamp(ClientTimes::default(), received, DAY).timestamp,
            received
        );
    }

    #[test]
    fn far_future_times_are_clamped_to_receipt() {
        let received = at("2026-03-01T09:00:00Z");
        let times = ClientTimes {
            timestamp: Some(at("2026-03-03T09:00:00Z")),
            ..ClientTimes::default()
        };
        let resolved = resolve_timestamp(times, received, DAY);
        assert_eq!(
            resolved,
            ResolvedTime {
                timestamp: received,
                clamped: true
            }
        );

        let times = ClientTimes {
            timestamp: Some(at("2026-03-02T08:59:00Z")),
            ..ClientTimes::default()
        };
        assert!(!resolve_timestamp(times, received, DAY).clamped);
    }
}
