//! `x-cronmesh-signature: t=UNIX,v1=HEX`, HEX = HMAC-SHA256(secret, "UNIX.BODY").

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
    let header = header.ok_or(SignatureError::Missing)?;
    let mut unix = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => unix = v.parse::<i64>().ok(),
            Some(("v1", v)) => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(unix), Some(sig)) = (unix, sig) else {
        return Err(SignatureError::Malformed);
    };
    if (now_unix - unix).abs() > window_secs {
        return Err(SignatureError::Stale);
    }
    mac(secret, unix, body)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
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
}
