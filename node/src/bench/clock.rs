//! Wall-clock time as the bench counts it: nanoseconds since the Unix
//! epoch, the unit of the receipt files, and the conversions it needs.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i128;

pub const SECOND: Nanos = 1_000_000_000;

pub fn now() -> Nanos {
    nanos(Utc::now())
}

/// Nanoseconds since the Unix epoch of `at`.
pub fn nanos(at: DateTime<Utc>) -> Nanos {
    at.timestamp_nanos_opt()
        .map_or(i128::from(at.timestamp()) * SECOND, i128::from)
}

pub fn time(at: Nanos) -> anyhow::Result<DateTime<Utc>> {
    let at = i64::try_from(at).context("a time out of range")?;
    Ok(Utc.timestamp_nanos(at))
}

/// RFC 3339 in UTC, to the millisecond.
pub fn rfc3339(at: Nanos) -> String {
    time(at)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The first whole second at or after `at`.
pub fn ceil_second(at: Nanos) -> Nanos {
    (at + SECOND - 1).div_euclid(SECOND) * SECOND
}

pub async fn sleep_until(at: Nanos) {
    let left = at - now();
    if left > 0 {
        tokio::time::sleep(Duration::from_nanos(left as u64)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() -> anyhow::Result<()> {
        let at = 1_700_000_000 * SECOND + 250_000_000;
        assert_eq!(nanos(time(at)?), at);
        assert_eq!(rfc3339(at), "2023-11-14T22:13:20.250Z");
        assert_eq!(ceil_second(at), 1_700_000_001 * SECOND);
        assert_eq!(ceil_second(1_700_000_001 * SECOND), 1_700_000_001 * SECOND);
        Ok(())
    }
}
