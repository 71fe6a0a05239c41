//! Human-readable durations ("30s", "5m", "1h 30m") as they appear in job JSON.
//!
//! The text is at most [`MAX_DURATION_LEN`] bytes, checked before it is
//! parsed or quoted back in an error; humantime parses in one pass with
//! checked arithmetic, so a huge number is an error, never a wrap.

use std::{fmt, str::FromStr, time::Duration};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Longest duration text, in bytes: "1day 2hours 3minutes 4seconds 500ms"
/// fits many times over.
pub const MAX_DURATION_LEN: usize = 64;

/// A `std::time::Duration` that travels as a humantime string, so job files
/// stay readable and a typo is reported against the field that holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_DURATION_LEN {
            return Err(format!(
                "a duration is at most {MAX_DURATION_LEN} bytes, this one has {}; write it like 30s, 5m or 1h",
                s.len()
            ));
        }
        let trimmed = s.trim();
        if trimmed.starts_with('-') {
            return Err(format!("duration {s:?} is negative"));
        }
        humantime::parse_duration(trimmed)
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration {s:?} ({e}); write it like 30s, 5m or 1h"))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let d: HumanDuration = "1m 30s".parse().unwrap();
        assert_eq!(d.0, Duration::from_secs(90));
        assert_eq!(d.to_string(), "1m 30s");
    }

    #[test]
    fn rejects_negative_and_garbage() {
        assert!("-1s".parse::<HumanDuration>().is_err());
        assert!("soon".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn huge_numbers_and_long_texts_are_errors() {
        let overflow = "99999999999999999999999s".parse::<HumanDuration>();
        assert!(overflow.unwrap_err().contains("too large"));
        let sum = "18446744073709551615s 18446744073709551615s".parse::<HumanDuration>();
        assert!(sum.unwrap_err().contains("too large"));
        let many = "1s ".repeat(10_000);
        let e = many.parse::<HumanDuration>().unwrap_err();
        assert!(e.contains("at most 64 bytes"), "{e}");
        assert!(e.len() < 200, "the error does not quote the text: {e}");
        assert_eq!(
            "1d 2h 3m 4s 500ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(((24 + 2) * 3600 + 3 * 60 + 4) * 1000 + 500)
        );
    }
}
