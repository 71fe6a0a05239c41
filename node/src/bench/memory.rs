//! Memory of a live process beyond what [`super::procstat`] reads: its
//! resident set now (`VmRSS` of `/proc/PID/status`) and the part of it
//! that is the process's own (`RssAnon`: the heap, not file pages the
//! kernel may drop), and a reset of its peak (`VmHWM`, through
//! `/proc/PID/clear_refs`), so the peak of one phase can be told from the
//! peak of the process's whole life.

/// Resident memory of a process now, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// All of it (`VmRSS`).
    pub total: u64,
    /// Anonymous memory (`RssAnon`): the heap and stacks.
    pub anon: u64,
}

/// Resident memory of `pid` now; `None` if it is gone.
pub fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Resident {
        total: kib_of(&status, "VmRSS:")? * 1024,
        anon: kib_of(&status, "RssAnon:")? * 1024,
    })
}

/// Makes `pid`'s peak resident memory (`VmHWM`) its resident memory now,
/// so later readings of the peak cover only what follows (Linux 4.0 on).
/// False if the kernel refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The kB of `field` (`VmRSS:   123456 kB`) of a `status` file.
fn kib_of(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let status = "Name:\tcronmesh\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\nRssAnon:\t   30000 kB\nRssFile:\t   10000 kB\n";
        assert_eq!(kib_of(status, "VmRSS:"), Some(40_000));
        assert_eq!(kib_of(status, "RssAnon:"), Some(30_000));
        assert_eq!(kib_of("Name:\tzombie\n", "VmRSS:"), None);
    }

    #[test]
    fn reads_and_resets_this_process() {
        let pid = std::process::id();
        assert!(resident(pid).is_some_and(|r| r.total >= r.anon && r.anon > 0));
        // Whether the reset is allowed depends on the kernel; it must not
        // raise the peak above what the process holds.
        if reset_peak(pid) {
            let peak = super::super::procstat::sample(pid).map(|s| s.peak_rss_bytes);
            assert!(peak.is_some_and(|peak| peak > 0));
        }
    }
}
