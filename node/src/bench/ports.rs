//! Ports the bench (and the integration tests) hand to a process they
//! start, chosen so that nothing else on the machine takes them in between.
//!
//! Binding port 0, reading the port and closing the socket is not enough:
//! the kernel hands the same port out again as the *source* port of the
//! next outgoing connection (any test's client, any node's peer link), and
//! the process that was meant to listen on it then fails with "Address
//! already in use". So ports here come from below the kernel's ephemeral
//! range, which outgoing connections never use, and each is handed out
//! once per test process.

use std::{
    net::{TcpListener, UdpSocket},
    sync::atomic::{AtomicU16, Ordering},
};

/// Where the kernel starts picking ephemeral source ports when
/// `/proc/sys/net/ipv4/ip_local_port_range` cannot be read (Linux's default).
const DEFAULT_EPHEMERAL_LOW: u16 = 32768;

/// The lowest port handed out: above the well-known and commonly
/// configured service ports.
const LOWEST: u16 = 10_000;

/// How many ports one test process may use before the sequence wraps.
const PER_PROCESS: u16 = 2_000;

/// The next candidate, relative to this process's start (0 = unset).
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A loopback port, free for TCP and UDP right now, outside the ephemeral
/// range and not handed out before by this process.
pub fn free_port() -> anyhow::Result<u16> {
    let low = ephemeral_low();
    let span = low.saturating_sub(LOWEST).max(PER_PROCESS);
    // Test binaries run one after another, but a leftover child of the
    // previous one may still hold its ports for a moment: start each
    // process at its own place.
    let start = (std::process::id() % u32::from(span / PER_PROCESS).max(1)) as u16 * PER_PROCESS;
    for _ in 0..PER_PROCESS {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % PER_PROCESS;
        let port = LOWEST + (start + offset) % span;
        if bindable(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port between {LOWEST} and {low}")
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_LOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().expect("a port")).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port was handed out twice: {ports:?}"
        );
        let low = ephemeral_low();
        assert!(
            ports.iter().all(|p| (LOWEST..low).contains(p)),
            "{ports:?} vs {low}"
        );
    }
}
