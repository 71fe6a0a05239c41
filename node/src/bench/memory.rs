//! Memory of a live process beyond what [`super::procstat`] reads: its
//! resident set now (`VmRSS` of `/proc/PID/status`), and a reset of its
//! peak (`VmHWM`, through `/proc/PID/clear_refs`), so the peak of one
//! phase can be told from the peak of the process's whole life.

/// Resident memory of `pid` now, in bytes; `None` if it is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(rss_kib(&status)? * 1024)
}

/// Makes `pid`'s peak resident memory (`VmHWM`) its resident memory now,
/// so later readings of the peak cover only what follows (Linux 4.0 on).
/// False if the kernel refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `VmRSS:   123456 kB` of a `status` file.
fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let status =
            "Name:\tcronmesh\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(rss_kib(status), Some(40_000));
        assert_eq!(rss_kib("Name:\tzombie\n"), None);
    }

    #[test]
    fn reads_and_resets_this_process() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).is_some_and(|rss| rss > 0));
        // Whether the reset is allowed depends on the kernel; it must not
        // raise the peak above what the process holds.
        if reset_peak(pid) {
            let peak = super::super::procstat::sample(pid).map(|s| s.peak_rss_bytes);
            assert!(peak.is_some_and(|peak| peak > 0));
        }
    }
}
