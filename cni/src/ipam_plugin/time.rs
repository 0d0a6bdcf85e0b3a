//! The allocation `timestamp` attribute: the current UTC time in RFC 3339 form.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_unix(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (calendar arithmetic by jiff; whole
/// seconds display without a fraction).
pub fn format_unix(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.
        assert_eq!(format_unix(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(format_unix(1_735_689_599), "2024-12-31T23:59:59Z");
        // The day after a leap day, and 2023's (not leap) February end.
        assert_eq!(format_unix(1_709_251_200), "2024-03-01T00:00:00Z");
        assert_eq!(format_unix(1_677_628_799), "2023-02-28T23:59:59Z");
        assert_eq!(format_unix(1_719_791_999), "2024-06-30T23:59:59Z");
        assert_eq!(format_unix(4_107_542_400), "2100-03-01T00:00:00Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), "1970-01-01T00:00:00Z".len(), "{now}");
    }
}
