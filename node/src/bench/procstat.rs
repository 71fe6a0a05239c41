//! CPU time and peak memory of a process, from `/proc/PID/stat` (user and
//! system time of all its threads) and `/proc/PID/status` (`VmHWM`).

use std::sync::OnceLock;

/// One reading of a live process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Peak resident set size so far, in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads `pid`; `None` if it is gone or `/proc` is unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        cpu_seconds: cpu_ticks(&stat)? as f64 / ticks_per_second(),
        peak_rss_bytes: peak_rss_kib(&status)? * 1024,
    })
}

/// utime + stime (fields 14 and 15) of a `stat` line. The command name
/// in parentheses may hold spaces, so fields are counted after the last ')'.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM:   123456 kB` of a `status` file.
fn peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of `stat`'s times (almost always 100).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(
        || match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
            Ok(Some(ticks)) if ticks > 0 => ticks as f64,
            _ => 100.0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (cron mesh) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 75 0 0 20 0 9 0 123 456 789";
        assert_eq!(cpu_ticks(stat), Some(325));
        let status =
            "Name:\tcronmesh\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(peak_rss_kib(status), Some(51_200));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn samples_this_process() {
        let own = sample(std::process::id());
        assert!(own.is_some_and(|s| s.peak_rss_bytes > 0 && s.cpu_seconds >= 0.0));
    }
}
