//! Times as the pages show them: moments (the API's [`Timestamp`]s) and durations.

use adit_core::time::Timestamp;

/// A moment as the tables show it: `YYYY-MM-DD` and `HH:MM UTC`.
pub(crate) fn date_and_minute(at: Timestamp) -> (String, String) {
    let text = at.to_string();
    match text.split_once('T') {
        Some((date, time)) => (
            date.to_owned(),
            format!("{} UTC", time.get(..5).unwrap_or(time)),
        ),
        None => (text, String::new()),
    }
}

/// How long a tunnel has been connected, coarse as a table wants it: `< 1 min`, `12 min`,
/// `3 h 5 min`, `4 d 3 h`.
pub(crate) fn uptime(since_ms: i64, now_ms: i64) -> String {
    let minutes = (now_ms - since_ms).max(0) / 60_000;
    match minutes {
        0 => "< 1 min".to_owned(),
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), m % (24 * 60) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_and_minute_in_utc() {
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        let parts = |date: &str, time: &str| (date.to_owned(), time.to_owned());
        assert_eq!(
            date_and_minute(at("2026-11-25T01:33:07Z")),
            parts("2026-11-25", "01:33 UTC")
        );
        assert_eq!(
            date_and_minute(at("2026-11-25T01:33:07.123+01:00")),
            parts("2026-11-25", "00:33 UTC")
        );
        assert_eq!(
            date_and_minute(Timestamp::from_unix_ms(0)),
            parts("1970-01-01", "00:00 UTC")
        );
    }

    #[test]
    fn uptime_is_coarse() {
        let minute = 60_000;
        assert_eq!(uptime(0, 59_999), "< 1 min");
        assert_eq!(uptime(0, 12 * minute), "12 min");
        assert_eq!(uptime(0, 185 * minute), "3 h 5 min");
        assert_eq!(uptime(0, (4 * 24 * 60 + 200) * minute), "4 d 3 h");
        assert_eq!(
            uptime(10 * minute, 0),
            "< 1 min",
            "a clock behind shows no time"
        );
    }
}
