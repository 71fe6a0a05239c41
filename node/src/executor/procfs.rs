//! What Linux's `/proc` tells about processes: enough to recognise a
//! process group this executor started in an earlier life, and not a
//! stranger that was given a recycled id since. Elsewhere every answer is
//! "unknown", and groups are not reaped.

use std::fs;

/// A live (not zombie) process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// When it started, in clock ticks after boot: a pid is reused, a pid
    /// with its start time is not (until a reboot; see [`boot_id`]).
    pub start_ticks: u64,
}

/// What this module reads of `/proc/PID/stat`.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    start_ticks: u64,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid pgrp ...` with the start
/// time in field 22. `comm` may hold spaces and parentheses, so fields are
/// counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is the first after the name.
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        state: field(3)?.chars().next()?,
        pgrp: field(5)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

fn stat_of(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// When process `pid` started, if it exists (zombies included: a zombie
/// still holds its pid).
pub fn start_ticks(pid: i32) -> Option<u64> {
    stat_of(pid).map(|stat| stat.start_ticks)
}

/// The live processes of group `pgid`.
pub fn group_members(pgid: i32) -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = stat_of(pid)?;
            (stat.pgrp == pgid && stat.state != 'Z').then_some(Process {
                pid,
                start_ticks: stat.start_ticks,
            })
        })
        .collect()
}

/// This boot of the machine: start times count from it, so they compare
/// only within one boot.
pub fn boot_id() -> Option<String> {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_string()).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let text = "4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                state: 'S',
                pgrp: 4240,
                start_ticks: 987_654
            })
        );
        assert_eq!(parse_stat("4242 (sh) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_found_with_its_group() {
        let pid = std::process::id() as i32;
        let pgid = nix::unistd::getpgrp().as_raw();
        let started = start_ticks(pid);
        assert!(started.is_some());
        let members = group_members(pgid);
        assert!(
            members
                .iter()
                .any(|p| p.pid == pid && Some(p.start_ticks) == started),
            "{members:?}"
        );
        assert!(boot_id().is_some());
    }
}
