//! `x-cronmesh-signature: t=UNIX,v1=HEX`, HEX = HMAC-SHA256(secret, "UNIX.BODY").
//!
//! This is version 1 of the executor protocol's signature, accepted only
//! with `--accept-v1-signatures` during the upgrade to version 2
//! ([`crate::signature_v2`]), which binds what this does not: method, path,
//! receiver and a one-time nonce. Alert webhooks keep this format, keyed
//! with [`crate::keys::KeyUse::Webhook`] instead of the secret.
//!
//! The same secret also proves that a request forwarded from one scheduler
//! node to the leader comes from a member ([`sign_forward`]): the header
//! `x-cronmesh-forwarded: t=UNIX,v1=HEX`, HEX = HMAC-SHA256(secret,
//! "cronmesh-forward\nUNIX\nMETHOD\nPATH?QUERY"). Its message starts with a
//! letter and a report's with the digits of a time, so neither signature
//! can stand for the other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Requests signed longer ago (or further ahead) than this are refused.
pub const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing x-cronmesh-signature header")]
    Missing,
    #[error("malformed x-cronmesh-signature header; expected t=UNIX,v1=HEX")]
    Malformed,
    #[error("signature timestamp is outside the replay window")]
    Stale,
    #[error("signature does not match: the shared secrets differ or the body was changed")]
    Mismatch,
}

/// The header value for `body` signed at `unix`.
pub fn sign(secret: &[u8], unix: i64, body: &[u8]) -> String {
    format!(
        "t={unix},v1={}",
        hex::encode(mac(secret, unix, body).finalize().into_bytes())
    )
}

/// Checks a header value against `body` at time `now_unix`.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_unix: i64,
    window_secs: i64,
) -> Result<(), SignatureError> {
    let (unix, sig) = parse(header.ok_or(SignatureError::Missing)?)?;
    if now_unix.abs_diff(unix) > window_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    mac(secret, unix, body)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// Requests forwarded longer ago (or further ahead) than this are not
/// taken as forwarded: a forward leaves at once, so the window only
/// allows for the members' clocks to differ.
pub const FORWARD_WINDOW_SECS: i64 = 60;

/// Starts the message a forwarding proof signs; see the module docs.
const FORWARD_DOMAIN: &[u8] = b"cronmesh-forward";

/// The `x-cronmesh-forwarded` value for a request of `method` to
/// `path_and_query` (exactly as it is sent on the wire), forwarded at
/// `unix`.
pub fn sign_forward(secret: &[u8], unix: i64, method: &str, path_and_query: &str) -> String {
    let mac = forward_mac(secret, unix, method, path_and_query);
    format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a forwarding proof against the request it came with, at time
/// `now_unix`.
pub fn verify_forward(
    secret: &[u8],
    header: Option<&str>,
    method: &str,
    path_and_query: &str,
    now_unix: i64,
    window_secs: i64,
) -> Result<(), SignatureError> {
    let (unix, sig) = parse(header.ok_or(SignatureError::Missing)?)?;
    if now_unix.abs_diff(unix) > window_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    forward_mac(secret, unix, method, path_and_query)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// `t=UNIX,v1=HEX` into its time and signature bytes.
fn parse(header: &str) -> Result<(i64, Vec<u8>), SignatureError> {
    let mut unix = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => unix = v.parse::<i64>().ok(),
            Some(("v1", v)) => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    match (unix, sig) {
        (Some(unix), Some(sig)) => Ok((unix, sig)),
        _ => Err(SignatureError::Malformed),
    }
}

fn forward_mac(secret: &[u8], unix: i64, method: &str, path_and_query: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for part in [
        FORWARD_DOMAIN,
        unix.to_string().as_bytes(),
        method.as_bytes(),
        path_and_query.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b"\n");
    }
    mac
}

fn mac(secret: &[u8], unix: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_and_refuses_tampering() {
        let header = sign(b"s3cret", 1000, b"body");
        assert_eq!(verify(b"s3cret", Some(&header), b"body", 1010, 300), Ok(()));
        assert_eq!(
            verify(b"s3cret", Some(&header), b"bodY", 1010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&header), b"body", 1010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", Some(&header), b"body", 2000, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret", None, b"body", 1000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"s3cret", Some("v1=zz"), b"body", 1000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_forwarding_proof_holds_only_for_its_request_secret_and_window() {
        let proof = sign_forward(b"s3cret", 1000, "POST", "/v1/jobs?namespace=a");
        let check = |secret: &[u8], method: &str, target: &str, now: i64| {
            verify_forward(secret, Some(&proof), method, target, now, 60)
        };
        assert_eq!(
            check(b"s3cret", "POST", "/v1/jobs?namespace=a", 1030),
            Ok(())
        );
        assert_eq!(
            check(b"s3cret", "DELETE", "/v1/jobs?namespace=a", 1030),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"s3cret", "POST", "/v1/jobs?namespace=b", 1030),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"other", "POST", "/v1/jobs?namespace=a", 1030),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"s3cret", "POST", "/v1/jobs?namespace=a", 1061),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(b"s3cret", "POST", "/v1/jobs?namespace=a", 939),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_forward(b"s3cret", Some("1"), "POST", "/v1/jobs", 1000, 60),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_forward(b"s3cret", None, "POST", "/v1/jobs", 1000, 60),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_forward(
                b"s3cret",
                Some("t=1000,v1=00"),
                "POST",
                "/v1/jobs",
                1000,
                60
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_report_signature_is_no_forwarding_proof_nor_the_reverse() {
        // The same secret and time over the same bytes, in both roles.
        let report = sign(b"s3cret", 1000, b"/v1/jobs");
        assert_eq!(
            verify_forward(b"s3cret", Some(&report), "POST", "/v1/jobs", 1000, 60),
            Err(SignatureError::Mismatch)
        );
        let proof = sign_forward(b"s3cret", 1000, "POST", "/v1/jobs");
        assert_eq!(
            verify(b"s3cret", Some(&proof), b"/v1/jobs", 1000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn times_far_from_now_are_stale_not_a_panic() {
        let proof = sign_forward(b"s3cret", i64::MIN, "GET", "/");
        assert_eq!(
            verify_forward(b"s3cret", Some(&proof), "GET", "/", i64::MAX, 60),
            Err(SignatureError::Stale)
        );
        let header = sign(b"s3cret", i64::MAX, b"");
        assert_eq!(
            verify(b"s3cret", Some(&header), b"", i64::MIN, 300),
            Err(SignatureError::Stale)
        );
    }
}
