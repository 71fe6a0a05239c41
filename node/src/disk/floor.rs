//! `--min-free-space`: how much free space the node keeps on its data
//! directory's file system before it refuses new work.

use std::{fmt, str::FromStr};

/// The automatic floor's share of the file system, in percent.
const AUTO_PERCENT: f64 = 1.0;
/// The automatic floor's largest value: 1 % of a large disk is more than
/// the store ever needs to finish what it started.
const AUTO_CAP: u64 = 512 << 20;
/// The automatic floor's smallest value: sled writes its log in segments
/// of 512 KiB and needs a few of them to finish the writes in flight.
const AUTO_MIN: u64 = 8 << 20;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum SpaceFloor {
    /// 1 % of the file system, at least 8 MiB and at most 512 MiB.
    #[default]
    Auto,
    /// A fixed number of bytes; 0 switches the guard off.
    Bytes(u64),
    /// A share of the file system, in percent (above 0, below 50).
    Percent(f64),
}

impl SpaceFloor {
    /// The floor in bytes on a file system of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        let share = |percent: f64| (total as f64 * percent / 100.0) as u64;
        match self {
            SpaceFloor::Auto => share(AUTO_PERCENT).clamp(AUTO_MIN, AUTO_CAP),
            SpaceFloor::Bytes(bytes) => bytes,
            SpaceFloor::Percent(percent) => share(percent),
        }
    }
}

impl FromStr for SpaceFloor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(SpaceFloor::Auto);
        }
        if text == "0" {
            return Ok(SpaceFloor::Bytes(0));
        }
        if let Some(number) = text.strip_suffix('%') {
            let percent: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a percentage such as 1%"))?;
            if !(percent > 0.0 && percent < 50.0) {
                return Err(format!("{text}: a share above 0% and below 50%"));
            }
            return Ok(SpaceFloor::Percent(percent));
        }
        crate::history_config::parse_bytes(text)
            .map(SpaceFloor::Bytes)
            .map_err(|e| format!("{e}; or a share such as 1%, auto, or 0 for no floor"))
    }
}

impl fmt::Display for SpaceFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpaceFloor::Auto => write!(f, "auto"),
            SpaceFloor::Bytes(bytes) => write!(f, "{bytes}"),
            SpaceFloor::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_parse_and_scale() {
        let parse = |text: &str| text.parse::<SpaceFloor>();
        assert_eq!(parse("auto"), Ok(SpaceFloor::Auto));
        assert_eq!(parse("0"), Ok(SpaceFloor::Bytes(0)));
        assert_eq!(parse("8MiB"), Ok(SpaceFloor::Bytes(8 << 20)));
        assert_eq!(parse("2.5%"), Ok(SpaceFloor::Percent(2.5)));
        for bad in ["", "-1", "0%", "50%", "lots", "%", "1e400%"] {
            assert!(parse(bad).is_err(), "{bad:?} was taken");
        }
        let gib = 1u64 << 30;
        assert_eq!(SpaceFloor::Auto.bytes(100 * gib), 512 << 20);
        assert_eq!(SpaceFloor::Auto.bytes(24 << 20), 8 << 20);
        assert_eq!(SpaceFloor::Auto.bytes(10 * gib), 10 * gib / 100);
        assert_eq!(SpaceFloor::Percent(10.0).bytes(1000), 100);
        assert_eq!(SpaceFloor::Bytes(7).bytes(1000), 7);
    }
}
