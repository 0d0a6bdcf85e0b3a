//! RFC 3339 timestamps for `affinityClaimTime` (calendar arithmetic by jiff).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// `2024-05-01T10:00:00Z` (UTC, whole seconds, as Kubernetes metav1.Time writes; before
/// 1970: the epoch).
pub fn format(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    // Whole seconds display without a fraction.
    Timestamp::from_second(secs)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}

/// Parses an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, to whole seconds;
/// `None` when malformed or before 1970.
pub fn parse(s: &str) -> Option<SystemTime> {
    let t: Timestamp = s.parse().ok()?;
    let secs = u64::try_from(t.as_second()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn round_trip_and_offsets() {
        let t = at(1_714_557_600);
        assert_eq!(format(t), "2024-05-01T10:00:00Z");
        assert_eq!(parse("2024-05-01T10:00:00Z"), Some(t));
        assert_eq!(parse("2024-05-01T12:00:00.123+02:00"), Some(t));
        assert_eq!(parse("2024-05-01T08:30:00-01:30"), Some(t));
        assert_eq!(parse("2024-05-01t10:00:00z"), Some(t));
        assert_eq!(
            parse("2000-02-29T00:00:00Z").map(format).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(parse("2024-13-01T10:00:00Z"), None);
        assert_eq!(parse("2024-05-01T24:00:00Z"), None);
        assert_eq!(parse("2024-05-01T10:00:00"), None, "no offset");
        assert_eq!(parse("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn format_pinned_around_leap_days_and_month_ends() {
        assert_eq!(format(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
        // Fractions are dropped, not rounded.
        assert_eq!(
            format(at(59) + Duration::from_millis(999)),
            "1970-01-01T00:00:59Z"
        );
        assert_eq!(format(at(951_868_799)), "2000-02-29T23:59:59Z");
        assert_eq!(format(at(951_868_800)), "2000-03-01T00:00:00Z");
        assert_eq!(format(at(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(format(at(1_677_628_799)), "2023-02-28T23:59:59Z");
        assert_eq!(format(at(1_677_628_800)), "2023-03-01T00:00:00Z");
        assert_eq!(format(at(4_107_542_399)), "2100-02-28T23:59:59Z");
        assert_eq!(format(at(4_107_542_400)), "2100-03-01T00:00:00Z");
        assert_eq!(format(at(1_719_791_999)), "2024-06-30T23:59:59Z");
        assert_eq!(format(at(1_735_689_599)), "2024-12-31T23:59:59Z");
        assert_eq!(format(at(1_735_689_600)), "2025-01-01T00:00:00Z");
    }
}
