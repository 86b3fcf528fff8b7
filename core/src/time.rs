//! A moment as the API speaks it: milliseconds since the Unix epoch, written as RFC 3339.
//!
//! The conversion is done here by hand (H. Hinnant's `days_from_civil`/`civil_from_days`)
//! rather than with a date library, so the browser bundle, which compiles this crate to
//! wasm, carries no calendar code besides these few lines. There is no `now()`: the clock
//! belongs to the server.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::Error;

const MS_PER_DAY: i64 = 86_400_000;

/// A moment, to the millisecond. Its text (`Display`, and its serde form) is RFC 3339 in
/// UTC with the fraction only as long as it needs to be: `1970-01-01T00:00:00Z`,
/// `1970-01-01T00:00:01.5Z`, `…:01.123Z`. Reading accepts any RFC 3339 time, with an offset
/// (`+01:00`) and any number of fractional digits (beyond milliseconds they are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
// Milliseconds inside, RFC 3339 text on the wire (see the serde impls).
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        value_type = String,
        format = DateTime,
        description = "RFC 3339 in UTC, to the millisecond (e.g. `2026-11-26T01:58:01.719Z`); \
            any offset is read"
    )
)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_ms(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// The UTC calendar date: year, month (1–12), day (1–31).
    fn date(self) -> (i64, i64, i64) {
        civil_from_days(self.0.div_euclid(MS_PER_DAY))
    }

    /// Whether the year has the four digits RFC 3339 allows (0000–9999).
    fn is_rfc3339(self) -> bool {
        (0..=9999).contains(&self.date().0)
    }
}

/// RFC 3339 in UTC. A year outside 0000–9999 (which RFC 3339 cannot write) comes out in
/// ISO 8601's expanded form, `+10000-01-01T00:00:00Z`, which [`FromStr`] does not read back
/// and serde refuses to write.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;

        let (year, month, day) = self.date();
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
        let mut text = String::with_capacity(24);
        if (0..=9999).contains(&year) {
            write!(text, "{year:04}")?;
        } else {
            write!(text, "{year:+05}")?;
        }
        write!(
            text,
            "-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )?;
        // As short as it can be: .5, .25, .125 (what the `time` crate writes).
        match milli {
            0 => {}
            m if m % 100 == 0 => write!(text, ".{}", m / 100)?,
            m if m % 10 == 0 => write!(text, ".{:02}", m / 10)?,
            m => write!(text, ".{m:03}")?,
        }
        text.push('Z');
        f.pad(&text)
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        parse(text)
            .map(Self)
            .map_err(|reason| Error::InvalidTimestamp {
                text: text.to_owned(),
                reason,
            })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.is_rfc3339() {
            return Err(serde::ser::Error::custom(format_args!(
                "{self} has a year RFC 3339 cannot write"
            )));
        }
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `YYYY-MM-DD[Tt ]HH:MM:SS[.fraction](Z|z|±HH:MM)` to milliseconds since the epoch.
fn parse(text: &str) -> Result<i64, &'static str> {
    const SHAPE: &str = "not YYYY-MM-DDTHH:MM:SS with Z or an offset";
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(SHAPE);
    }
    let number = |from: usize, to: usize| -> Result<i64, &'static str> {
        let digits = &bytes[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(SHAPE);
        }
        Ok(digits
            .iter()
            .fold(0, |n, digit| n * 10 + i64::from(digit - b'0')))
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) {
        return Err("no such month");
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err("no such day in that month");
    }
    // 60 is a leap second, counted as the next minute's first (Unix time has none).
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }

    let mut rest = &bytes[19..];
    let mut milli = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err("a decimal point without digits");
        }
        // The first three digits, padded: ".5" is 500 ms, ".123456" is 123 ms.
        milli = fraction[..digits]
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |n, digit| n * 10 + i64::from(digit - b'0'));
        rest = &fraction[digits..];
    }

    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |b: &u8| b.is_ascii_digit().then(|| i64::from(b - b'0')).ok_or(SHAPE);
            let (hours, minutes) = (digit(h1)? * 10 + digit(h2)?, digit(m1)? * 10 + digit(m2)?);
            if hours > 23 || minutes > 59 {
                return Err("no such offset");
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err(SHAPE),
    };

    let minutes = (days_from_civil(year, month, day) * 24 + hour) * 60 + minute - offset_minutes;
    Ok((minutes * 60 + second) * 1000 + milli)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month, day) `days` after 1970-01-01; the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn writes_what_the_api_always_wrote() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_500, "1970-01-01T00:00:01.5Z"),
            (1_250, "1970-01-01T00:00:01.25Z"),
            (1_123, "1970-01-01T00:00:01.123Z"),
            (1_020, "1970-01-01T00:00:01.02Z"),
            (1_001, "1970-01-01T00:00:01.001Z"),
            (-1_000, "1969-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_868_800_000, "2000-03-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            // As `date -u -d 2026-11-25T01:33:07Z +%s` gives it.
            (1_795_570_387_000, "2026-11-25T01:33:07Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00Z"),
        ];
        for (ms, text) in cases {
            let timestamp = Timestamp::from_unix_ms(ms);
            assert_eq!(timestamp.to_string(), text);
            assert_eq!(at(text), timestamp, "{text}");
            assert_eq!(at(text).unix_ms(), ms);
            assert_eq!(
                serde_json::to_string(&timestamp).unwrap(),
                format!("\"{text}\"")
            );
        }
    }

    /// The server used to write these with the `time` crate; the text must not change.
    #[test]
    fn writes_what_the_time_crate_writes() {
        use ::time::{OffsetDateTime, format_description::well_known::Rfc3339};

        let mut ms: i64 = -62_167_219_200_000;
        while ms < 253_402_300_799_999 {
            let theirs = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp::from_unix_ms(ms).to_string(), theirs);
            assert_eq!(at(&theirs).unix_ms(), ms);
            // A stride that visits every month, weekday and millisecond pattern.
            ms += 86_400_000 * 13 + 3_600_000 * 7 + 61_001 * 17 + 36;
        }
    }

    #[test]
    fn round_trips() {
        for ms in [
            i64::from(i32::MIN),
            -86_400_001,
            -1,
            0,
            1,
            999,
            86_399_999,
            1_795_570_387_456,
            253_402_300_799_999,
        ] {
            let timestamp = Timestamp::from_unix_ms(ms);
            assert_eq!(at(&timestamp.to_string()), timestamp);
            let json = serde_json::to_string(&timestamp).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), timestamp);
        }
    }

    #[test]
    fn reads_fractions_to_the_millisecond() {
        assert_eq!(at("1970-01-01T00:00:01.5Z").unix_ms(), 1_500);
        assert_eq!(at("1970-01-01T00:00:01.05Z").unix_ms(), 1_050);
        assert_eq!(at("1970-01-01T00:00:01.123456789Z").unix_ms(), 1_123);
        assert_eq!(at("1970-01-01T00:00:01.000Z").unix_ms(), 1_000);
        assert_eq!(at("1969-12-31T23:59:59.5Z").unix_ms(), -500);
    }

    #[test]
    fn reads_offsets_and_rfc3339s_other_spellings() {
        let utc = at("2026-11-25T01:33:07Z");
        assert_eq!(at("2026-11-25T02:33:07+01:00"), utc);
        assert_eq!(at("2026-11-24T23:03:07-02:30"), utc);
        assert_eq!(at("2026-11-25T01:33:07+00:00"), utc);
        assert_eq!(at("2026-11-25T01:33:07-00:00"), utc);
        assert_eq!(at("2026-11-25t01:33:07z"), utc);
        assert_eq!(at("2026-11-25 01:33:07Z"), utc);
        assert_eq!(
            at("2026-11-25T02:33:07.25+01:00").unix_ms(),
            utc.unix_ms() + 250
        );
        // A leap second is the next minute's first.
        assert_eq!(at("2016-12-31T23:59:60Z"), at("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25T01:33:07",
            "2026-11-25T01:33Z",
            "2026-13-25T01:33:07Z",
            "2026-00-25T01:33:07Z",
            "2026-11-00T01:33:07Z",
            "2026-11-31T01:33:07Z",
            "2026-02-29T01:33:07Z",
            "1900-02-29T01:33:07Z",
            "2026-11-25T24:33:07Z",
            "2026-11-25T01:60:07Z",
            "2026-11-25T01:33:61Z",
            "2026-11-25T01:33:07.Z",
            "2026-11-25T01:33:07+0100",
            "2026-11-25T01:33:07+24:00",
            "2026-11-25T01:33:07+01:60",
            "2026-11-25T01:33:07Zjunk",
            "2026-11-25T01:33:07 Z",
            "2026-1é-25T01:33:07Z",
            "2026-11-25é1:33:07Z",
            "+026-11-25T01:33:07Z",
            "+10000-01-01T00:00:00Z",
            " 2026-11-25T01:33:07Z",
        ] {
            let error = bad.parse::<Timestamp>().unwrap_err();
            assert!(
                matches!(&error, Error::InvalidTimestamp { text, .. } if text == bad),
                "{bad}: {error}"
            );
            assert!(
                serde_json::from_value::<Timestamp>(bad.into()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            "2026-11-31T01:33:07Z"
                .parse::<Timestamp>()
                .unwrap_err()
                .to_string(),
            "invalid RFC 3339 time \"2026-11-31T01:33:07Z\": no such day in that month"
        );
        assert!(
            serde_json::from_str::<Timestamp>("1500").is_err(),
            "a number is not a time"
        );
    }

    #[test]
    fn years_rfc3339_cannot_write() {
        let far = Timestamp::from_unix_ms(253_402_300_800_000);
        assert_eq!(far.to_string(), "+10000-01-01T00:00:00Z");
        assert!(serde_json::to_string(&far).is_err());
        let before = Timestamp::from_unix_ms(-62_167_219_200_001);
        assert_eq!(before.to_string(), "-0001-12-31T23:59:59.999Z");
        assert!(serde_json::to_string(&before).is_err());
        // The extremes neither overflow nor panic.
        let _ = Timestamp::from_unix_ms(i64::MIN).to_string();
        let _ = Timestamp::from_unix_ms(i64::MAX).to_string();
    }

    #[test]
    fn orders_by_time_and_pads_as_text() {
        assert!(at("2026-11-25T02:33:07+01:00") < at("2026-11-25T01:33:07.001Z"));
        assert_eq!(
            format!("[{:<22}]", Timestamp::from_unix_ms(0)),
            "[1970-01-01T00:00:00Z  ]"
        );
    }
}
