//! When an alert is tried again: up to five attempts, 1 s, 2 s, 4 s and
//! 8 s apart. An answer that says the request itself is wrong (a 4xx
//! other than 408 and 429) is not retried: the same request would get
//! the same answer.

use std::time::Duration;

/// Attempts per destination, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Wait before the second attempt; each next wait doubles.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(8);

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; another attempt may succeed (no answer, 5xx, 408, 429, a
    /// mail server's transient refusal).
    Transient(String),
    /// Failed for good (another 4xx, a mail server's permanent refusal,
    /// no SMTP server configured).
    Permanent(String),
    /// This node no longer leads: the alert is left (its run's new leader
    /// does not alert again; see docs/OPERATIONS.md).
    NotLeading,
}

impl Attempt {
    /// How a webhook's HTTP status sorts.
    pub fn of_status(status: u16, text: &str) -> Attempt {
        match status {
            200..=299 => Attempt::Delivered,
            408 | 429 | 500..=599 => Attempt::Transient(format!("answered {status}: {text}")),
            _ => Attempt::Permanent(format!("answered {status}: {text}")),
        }
    }

    pub fn error(&self) -> Option<String> {
        match self {
            Attempt::Delivered => None,
            Attempt::Transient(e) | Attempt::Permanent(e) => Some(e.clone()),
            Attempt::NotLeading => Some("this node no longer leads".into()),
        }
    }
}

/// The wait before attempt `next` (2 for the first retry), or `None` when
/// no further attempt follows `last`.
pub fn wait_before(next: u32, last: &Attempt) -> Option<Duration> {
    if !matches!(last, Attempt::Transient(_)) || !(2..=MAX_ATTEMPTS).contains(&next) {
        return None;
    }
    let doublings = (next - 2).min(16);
    Some(FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_with_doubling_waits_up_to_five_attempts() {
        let failed = Attempt::Transient("answered 500".into());
        let waits: Vec<_> = (2..=6).map(|n| wait_before(n, &failed)).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(8)),
                None
            ]
        );
    }

    #[test]
    fn success_and_permanent_failures_end_the_attempts() {
        assert_eq!(wait_before(2, &Attempt::Delivered), None);
        assert_eq!(wait_before(2, &Attempt::Permanent("404".into())), None);
        assert_eq!(wait_before(2, &Attempt::NotLeading), None);
    }

    #[test]
    fn statuses_sort_into_outcomes() {
        assert_eq!(Attempt::of_status(204, ""), Attempt::Delivered);
        for status in [408, 429, 500, 503] {
            assert!(matches!(
                Attempt::of_status(status, ""),
                Attempt::Transient(_)
            ));
        }
        for status in [400, 401, 404, 410] {
            assert!(matches!(
                Attempt::of_status(status, ""),
                Attempt::Permanent(_)
            ));
        }
    }
}
