//! Times as the pages show them. The API speaks RFC 3339; durations need milliseconds, read
//! here without a date library so the same code runs on the server and in the bundle.

/// Splits an RFC 3339 time into `YYYY-MM-DD` and `HH:MM` (with ` UTC` when the offset is
/// `Z`); `None` for anything that does not look like RFC 3339, which is then shown as is.
pub(crate) fn created_parts(rfc3339: &str) -> Option<(&str, String)> {
    let bytes = rfc3339.as_bytes();
    let looks_rfc3339 = bytes.len() >= 16
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':';
    if !looks_rfc3339 {
        return None;
    }
    let date = rfc3339.get(..10)?;
    let time = rfc3339.get(11..16)?;
    let utc = if rfc3339.ends_with(['Z', 'z']) {
        " UTC"
    } else {
        ""
    };
    Some((date, format!("{time}{utc}")))
}

/// Milliseconds since the Unix epoch of an RFC 3339 time such as `2026-11-25T01:33:07Z`,
/// `…07.5Z` or `…07+01:00`; `None` when the text is not one.
pub(crate) fn unix_ms(rfc3339: &str) -> Option<i64> {
    let bytes = rfc3339.as_bytes();
    let separators = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = rfc3339.get(from..to)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = rfc3339.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds are the first three digits, padded: ".5" is 500.
        let mut ms = fraction.get(..digits.min(3))?.to_owned();
        while ms.len() < 3 {
            ms.push('0');
        }
        millis = ms.parse::<i64>().ok()?;
        rest = fraction.get(digits..)?;
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |b: &u8| b.is_ascii_digit().then(|| i64::from(b - b'0'));
            let minutes = (digit(h1)? * 10 + digit(h2)?) * 60 + digit(m1)? * 10 + digit(m2)?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
    fn created_parts_shortens_rfc3339() {
        assert_eq!(
            created_parts("2026-11-25T01:33:07Z"),
            Some(("2026-11-25", "01:33 UTC".to_owned()))
        );
        assert_eq!(
            created_parts("2026-11-25T01:33:07.123+01:00"),
            Some(("2026-11-25", "01:33".to_owned()))
        );
    }

    #[test]
    fn created_parts_rejects_anything_else() {
        assert_eq!(created_parts(""), None);
        assert_eq!(created_parts("yesterday"), None);
        assert_eq!(created_parts("2026-11-25é1:33:07Z"), None);
        assert_eq!(created_parts("2026-11-25T0é:33:07Z"), None);
    }

    #[test]
    fn unix_ms_reads_what_the_server_writes() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(unix_ms("1970-01-01T00:00:01.123456789Z"), Some(1_123));
        // 2026-11-25T01:33:07Z, as `date -u -d 2026-11-25T01:33:07Z +%s` gives it.
        assert_eq!(unix_ms("2026-11-25T01:33:07Z"), Some(1_795_570_387_000));
        assert_eq!(
            unix_ms("2026-11-25T02:33:07+01:00"),
            unix_ms("2026-11-25T01:33:07Z")
        );
        assert_eq!(
            unix_ms("2026-11-24T23:03:07-02:30"),
            unix_ms("2026-11-25T01:33:07Z")
        );
        assert_eq!(unix_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(unix_ms("1969-12-31T23:59:59Z"), Some(-1_000));
    }

    #[test]
    fn unix_ms_rejects_anything_else() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T01:33:07",
            "2026-13-25T01:33:07Z",
            "2026-11-25T24:33:07Z",
            "2026-11-25T01:33:07.Z",
            "2026-11-25T01:33:07+0100",
            "2026-11-25T01:33:07Zjunk",
            "2026-1é-25T01:33:07Z",
            "+026-11-25T01:33:07Z",
        ] {
            assert_eq!(unix_ms(bad), None, "{bad}");
        }
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
