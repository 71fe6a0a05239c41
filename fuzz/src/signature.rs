//! Target `signature`: the `x-cronmesh-signature` header every executor
//! protocol request carries, checked by `protocol::signature::verify` on
//! executors and on `/v1/internal/*` of schedulers.
//!
//! Input: the header value up to the first newline, then the body. The
//! secret and the clock are fixed. Invariants:
//! - a header that verifies was made with the secret for this body within
//!   the replay window: another secret, or the body with one more byte,
//!   never verifies;
//! - the header `sign` makes for this body verifies at the edges of the
//!   window and is `Stale` one second beyond them.

use protocol::signature::{sign, verify, SignatureError, DEFAULT_REPLAY_WINDOW_SECS};

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
