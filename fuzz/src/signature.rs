//! Target `signature`: the `x-cronmesh-signature` header every executor
//! protocol request carries, checked as protocol v2 by
//! `protocol::signature_v2::verify` (and the replay cache) on executors and
//! on `/v1/internal/*` of schedulers, and as version 1 by
//! `protocol::signature::verify` with `--accept-v1-signatures`; and the
//! same text as the `x-cronmesh-forwarded` proof a follower adds to a
//! request it forwards, checked by `verify_forward` (the body then stands
//! for the request's path and query).
//!
//! Input: the header value up to the first newline, then the body. The
//! secret, the clock and the v2 request (a POST of the body to
//! [`PATH`] of [`AUDIENCE`]) are fixed. Invariants, for every check:
//! - a header that verifies was made with the secret for this body (or
//!   request) within the window: another secret, or the body with one more
//!   byte, never verifies; for v2 neither does another path, method or
//!   audience, nor the same header a second time (a replay);
//! - the header `sign` (`sign_forward`, `sign_with`) makes verifies at the
//!   edges of the window and is `Stale` one second beyond them.

use protocol::{
    replay::ReplayCache,
    signature::{
        sign, sign_forward, verify, verify_forward, SignatureError, DEFAULT_REPLAY_WINDOW_SECS,
        FORWARD_WINDOW_SECS,
    },
    signature_v2::{self, Target, V2Error},
};

/// The secret every request of the target is checked against.
pub const SECRET: &[u8] = b"fuzz-secret";
/// The receiver's clock: 2026-05-28.
pub const NOW: i64 = 1_780_000_000;
/// The receiver of the v2 requests: an executor.
pub const AUDIENCE: &str = "http://127.0.0.1:7080";
/// The path of the v2 requests, POSTed.
pub const PATH: &str = "/v1/dispatch";
/// The nonce of the signatures the target makes itself.
pub const NONCE: &str = "0123456789abcdef01234567";

/// The v2 request of `body`.
pub fn target(body: &[u8]) -> Target<'_> {
    Target {
        method: "POST",
        path_and_query: PATH,
        audience: AUDIENCE,
        body,
    }
}

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
    if let Ok(header) = std::str::from_utf8(header) {
        check_v2(header, body);
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

/// The invariants of protocol v2 for `header` on a POST of `body`.
fn check_v2(header: &str, body: &[u8]) {
    let key = signature_v2::key(SECRET);
    let window = DEFAULT_REPLAY_WINDOW_SECS;
    let signed = target(body);
    if let Ok(parsed) = signature_v2::verify(&key, Some(header), &signed, NOW, window) {
        let other_key = signature_v2::key(b"another secret");
        let refused = |target: &Target<'_>, key: &[u8; 32]| {
            matches!(
                signature_v2::verify(key, Some(header), target, NOW, window),
                Err(V2Error::Mismatch { .. })
            )
        };
        assert!(
            refused(&signed, &other_key),
            "{header:?} verifies under two secrets"
        );
        let mut longer = body.to_vec();
        longer.push(b'x');
        assert!(
            refused(&target(&longer), &key),
            "{header:?} verifies a changed body"
        );
        let kill = Target {
            path_and_query: "/v1/runs/r/kill",
            ..signed
        };
        assert!(refused(&kill, &key), "{header:?} verifies another path");
        let get = Target {
            method: "GET",
            ..signed
        };
        assert!(refused(&get, &key), "{header:?} verifies another method");
        let elsewhere = Target {
            audience: "http://127.0.0.1:7081",
            ..signed
        };
        assert!(
            refused(&elsewhere, &key),
            "{header:?} verifies for another receiver"
        );
        let cache = ReplayCache::new(4);
        assert_eq!(cache.admit(&parsed, NOW, window), Ok(()));
        assert_eq!(
            cache.admit(&parsed, NOW, window),
            Err(V2Error::Replayed),
            "{header:?} accepted twice"
        );
    }
    for (signed_at, expected_ok) in [
        (NOW, true),
        (NOW - window, true),
        (NOW + window, true),
        (NOW - window - 1, false),
        (NOW + window + 1, false),
    ] {
        let made = signature_v2::sign_with(&key, &signed, signed_at, NONCE);
        let checked = signature_v2::verify(&key, Some(&made), &signed, NOW, window);
        match checked {
            Ok(parsed) => {
                assert!(expected_ok, "v2 signed at {signed_at} verifies");
                assert_eq!((parsed.unix, parsed.nonce.as_str()), (signed_at, NONCE));
            }
            Err(e) => assert!(
                !expected_ok && e == V2Error::Stale,
                "v2 signed at {signed_at}: {e}"
            ),
        }
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
