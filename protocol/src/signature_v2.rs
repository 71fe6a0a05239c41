//! Version 2 of the executor protocol's signature (docs/EXECUTOR-PROTOCOL.md).
//!
//! `x-cronmesh-signature: v2;t=UNIX;n=NONCE;sig=HEX`, where HEX is
//! HMAC-SHA256 keyed with [`crate::keys::derive`]`(secret,
//! KeyUse::ExecutorProtocol)` over the [`canonical`] string:
//!
//! ```text
//! cronmesh-executor-protocol/v2\nMETHOD\nPATH?QUERY\nAUDIENCE\nUNIX\nNONCE\nSHA256(BODY) in hex
//! ```
//!
//! Unlike version 1 (which covers only time and body), a signature holds
//! for one request: a kill (empty body) of one run on one executor, once.
//! The receiver checks the window, that the audience is itself (by
//! computing the string with its own audience), and that the nonce is new
//! ([`crate::replay::ReplayCache`]).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::keys::{self, KeyUse};

type HmacSha256 = Hmac<Sha256>;

/// Starts every signed string: no other message signed with this key (or
/// any string of version 1, which starts with digits) can equal one.
pub const DOMAIN: &str = "cronmesh-executor-protocol/v2";
/// Starts a version 2 header value.
const PREFIX: &str = "v2;";
/// Longest header value parsed; anything longer is malformed, unread.
pub const MAX_HEADER_LEN: usize = 512;
/// Random bytes in a nonce this side makes (128 bits).
pub const NONCE_BYTES: usize = 16;
/// Fewest hex digits a nonce may have (96 bits).
pub const MIN_NONCE_HEX: usize = 24;
/// Most hex digits a nonce may have, so the replay cache's entries stay small.
pub const MAX_NONCE_HEX: usize = 64;

/// Why a version 2 signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    #[error("missing x-cronmesh-signature header")]
    Missing,
    #[error(
        "malformed x-cronmesh-signature header; expected v2;t=UNIX;n=NONCE;sig=HEX \
         (a nonce of 24 to 64 lowercase hex digits)"
    )]
    Malformed,
    #[error("a version 1 signature (t=UNIX,v1=HEX) is not accepted here: sign with protocol v2")]
    V1NotAccepted,
    #[error("signature timestamp is outside the replay window")]
    Stale,
    #[error(
        "signature does not match: the method, path, audience (this receiver is {audience:?}) \
         or body differ from what was signed, or the shared secrets differ"
    )]
    Mismatch { audience: String },
    #[error("replayed request: this nonce was already used within the replay window")]
    Replayed,
    #[error("too many signed requests within the replay window to remember; retry later")]
    CacheFull,
}

/// What a signature is bound to, besides time and nonce.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `GET`, `POST`, … as sent.
    pub method: &'a str,
    /// The request target exactly as sent: path and, if any, `?query`.
    pub path_and_query: &'a str,
    /// Who the request is for (see [`audience_of`]).
    pub audience: &'a str,
    pub body: &'a [u8],
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub unix: i64,
    /// Lowercase hex, as sent.
    pub nonce: String,
    pub sig: Vec<u8>,
}

/// The audience of a base URL: without trailing slashes, so
/// `http://h:7080/` and `http://h:7080` name the same receiver.
pub fn audience_of(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The string a signature covers; see the module docs.
pub fn canonical(target: &Target<'_>, unix: i64, nonce: &str) -> String {
    let body_hash = hex::encode(Sha256::digest(target.body));
    format!(
        "{DOMAIN}\n{}\n{}\n{}\n{unix}\n{nonce}\n{body_hash}",
        target.method,
        target.path_and_query,
        audience_of(target.audience),
    )
}

/// A fresh random nonce of [`NONCE_BYTES`] bytes, in hex.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; NONCE_BYTES]>())
}

/// The executor-protocol key of the cluster `secret`.
pub fn key(secret: &[u8]) -> [u8; 32] {
    keys::derive(secret, KeyUse::ExecutorProtocol)
}

/// The header value for `target` signed with `key` at `unix` with `nonce`.
pub fn sign_with(key: &[u8; 32], target: &Target<'_>, unix: i64, nonce: &str) -> String {
    let sig = mac(key, target, unix, nonce).finalize().into_bytes();
    format!("{PREFIX}t={unix};n={nonce};sig={}", hex::encode(sig))
}

/// The header value for `target`, signed now with a fresh nonce.
pub fn sign(key: &[u8; 32], target: &Target<'_>) -> String {
    sign_with(key, target, chrono::Utc::now().timestamp(), &new_nonce())
}

/// Whether `header` is a version 1 value (`t=UNIX,v1=HEX`), which a
/// receiver accepting v1 checks with [`crate::signature::verify`].
pub fn is_v1(header: &str) -> bool {
    !header.starts_with(PREFIX) && header.contains("v1=")
}

/// Parses `v2;t=UNIX;n=NONCE;sig=HEX`: the fields in this order, once each.
/// (Not a value with a version 1 signature appended: see [`verify`].)
pub fn parse(header: &str) -> Result<Header, V2Error> {
    if header.len() > MAX_HEADER_LEN {
        return Err(V2Error::Malformed);
    }
    let rest = header.strip_prefix(PREFIX).ok_or(V2Error::Malformed)?;
    let mut parts = rest.split(';');
    let mut field = |name: &str| {
        parts
            .next()
            .and_then(|part| part.strip_prefix(name))
            .and_then(|part| part.strip_prefix('='))
            .ok_or(V2Error::Malformed)
    };
    let unix = field("t")?;
    let nonce = field("n")?;
    let sig = field("sig")?;
    if parts.next().is_some() {
        return Err(V2Error::Malformed);
    }
    // Digits only (an optional leading minus): `parse` alone would take `+1`.
    let digits = unix.strip_prefix('-').unwrap_or(unix);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(V2Error::Malformed);
    }
    let unix: i64 = unix.parse().map_err(|_| V2Error::Malformed)?;
    if !(MIN_NONCE_HEX..=MAX_NONCE_HEX).contains(&nonce.len()) || !is_lower_hex(nonce) {
        return Err(V2Error::Malformed);
    }
    if sig.len() != 64 || !is_lower_hex(sig) {
        return Err(V2Error::Malformed);
    }
    let sig = hex::decode(sig).map_err(|_| V2Error::Malformed)?;
    Ok(Header {
        unix,
        nonce: nonce.to_string(),
        sig,
    })
}

/// Checks `header` against `target` (whose audience is the receiver's
/// own) at `now_unix`, without the replay check: the caller then offers
/// the returned header's nonce to its [`crate::replay::ReplayCache`].
pub fn verify(
    key: &[u8; 32],
    header: Option<&str>,
    target: &Target<'_>,
    now_unix: i64,
    window_secs: i64,
) -> Result<Header, V2Error> {
    let header = header.ok_or(V2Error::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(V2Error::Malformed);
    }
    // A sender in the upgrade window appends a version 1 signature after a
    // comma (`--send-v1-signatures`); this side reads only the v2 part.
    let v2_part = match header.split_once(',') {
        Some((v2, _)) if v2.starts_with(PREFIX) => v2,
        _ => header,
    };
    let parsed = match parse(v2_part) {
        Err(V2Error::Malformed) if is_v1(header) => return Err(V2Error::V1NotAccepted),
        other => other?,
    };
    if now_unix.abs_diff(parsed.unix) > window_secs.unsigned_abs() {
        return Err(V2Error::Stale);
    }
    mac(key, target, parsed.unix, &parsed.nonce)
        .verify_slice(&parsed.sig)
        .map_err(|_| V2Error::Mismatch {
            audience: audience_of(target.audience).to_string(),
        })?;
    Ok(parsed)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn mac(key: &[u8; 32], target: &Target<'_>, unix: i64, nonce: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(canonical(target, unix, nonce).as_bytes());
    mac
}

#[cfg(test)]
mod tests;
