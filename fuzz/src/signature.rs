//! Target `signature`: the `x-cronmesh-signature` header every executor
//! protocol request carries, checked by `protocol::signature::verify` on
//! executors and on `/v1/internal/*` of schedulers; and the same text as
//! the `x-cronmesh-forwarded` proof a follower adds to a request it
//! forwards, checked by `verify_forward` (the body then stands for the
//! request's path and query).
//!
//! Input: the header value up to the first newline, then the body. The
//! secret and the clock are fixed. Invariants, for both checks:
//! - a header that verifies was made with the secret for this body (or
//!   request) within the window: another secret, or the body with one more
//!   byte, never verifies;
//! - the header `sign` (`sign_forward`) makes verifies at the edges of the
//!   window and is `Stale` one second beyond them.

use protocol::signature::{
    sign, sign_forward, verify, verify_forward, SignatureError, DEFAULT_REPLAY_WINDOW_SECS,
    FORWARD_WINDOW_SECS,
};

/// The secret every request of the target is checked against.
pub const SECRET: &[u8] = b"fuzz-secret";
/// The receiver's clock: 2026-05-28.
pub const NOW: i64 = 1_780_000_000;

pub fn run(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &data[data.len()..]),
    };
    // actix gives a handler the header only as visible ASCII text.
    if let Ok(header) = std::str::from_utf8(header) {
        let window = DEFAULT_REPLAY_WINDOW_SECS;
        if verify(SECRET, Some(header), body, NOW, window).is_ok() {
            assert_eq!(
                verify(b"another secret", Some(header), body, NOW, window),
                Err(SignatureError::Mismatch),
                "{header:?} verifies under two secrets"
            );
            let mut longer = body.to_vec();
            longer.push(b'x');
            assert!(
                verify(SECRET, Some(header), &longer, NOW, window).is_err(),
                "{header:?} verifies a changed body"
            );
        }
    }
    if let (Ok(header), Ok(target)) = (std::str::from_utf8(header), std::str::from_utf8(body)) {
        check_forward(header, target);
    }
    let window = DEFAULT_REPLAY_WINDOW_SECS;
    for (signed_at, expected) in [
        (NOW, Ok(())),
        (NOW - window, Ok(())),
        (NOW + window, Ok(())),
        (NOW - window - 1, Err(SignatureError::Stale)),
        (NOW + window + 1, Err(SignatureError::Stale)),
    ] {
        let header = sign(SECRET, signed_at, body);
        assert_eq!(
            verify(SECRET, Some(&header), body, NOW, window),
            expected,
            "signed at {signed_at}"
        );
    }
}

/// The invariants for a forwarding proof `header` of `POST target`.
fn check_forward(header: &str, target: &str) {
    let window = FORWARD_WINDOW_SECS;
    let check = |secret: &[u8], target: &str| {
        verify_forward(secret, Some(header), "POST", target, NOW, window)
    };
    if check(SECRET, target).is_ok() {
        assert_eq!(
            check(b"another secret", target),
            Err(SignatureError::Mismatch),
            "{header:?} proves a forward under two secrets"
        );
        assert!(
            check(SECRET, &format!("{target}x")).is_err(),
            "{header:?} proves a forward of another request"
        );
    }
    for (signed_at, expected) in [
        (NOW - window, Ok(())),
        (NOW + window, Ok(())),
        (NOW - window - 1, Err(SignatureError::Stale)),
    ] {
        let proof = sign_forward(SECRET, signed_at, "POST", target);
        assert_eq!(
            verify_forward(SECRET, Some(&proof), "POST", target, NOW, window),
            expected,
            "forward signed at {signed_at}"
        );
    }
}
