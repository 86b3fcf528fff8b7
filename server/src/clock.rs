//! The wall clock: the database stores milliseconds since the Unix epoch (the API writes
//! them as `adit_core::time::Timestamp`).

use time::OffsetDateTime;

pub(crate) fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
