//! Both ends of the executor protocol's signatures, with the settings of
//! the upgrade from version 1 (docs/OPERATIONS.md, "Upgrading to protocol
//! v2"): [`Signer`] makes the header a request carries, [`Verifier`]
//! checks one and remembers its nonce.

use crate::{
    replay::ReplayCache,
    signature::{self, SignatureError},
    signature_v2::{self, Target, V2Error},
};

/// How a node takes part in the upgrade from version 1; both off once
/// every member runs version 2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V1Compat {
    /// Accept a version 1 signature where version 1 ever applied to a
    /// body: dispatches and reports. Kills and reads always need version 2,
    /// since a v1 signature of their (empty) body holds for any of them.
    pub accept_v1: bool,
    /// Append a version 1 signature to every version 2 header, so members
    /// not upgraded yet still accept what this one sends.
    pub send_v1: bool,
}

/// Signs requests with the executor-protocol key of a cluster secret.
#[derive(Clone)]
pub struct Signer {
    /// Kept only to sign version 1 with `send_v1`.
    secret: Vec<u8>,
    key: [u8; 32],
    send_v1: bool,
}

impl Signer {
    pub fn new(secret: &[u8], compat: V1Compat) -> Self {
        Self {
            secret: secret.to_vec(),
            key: signature_v2::key(secret),
            send_v1: compat.send_v1,
        }
    }

    /// The `x-cronmesh-signature` value for a request of `method` to
    /// `audience` (the receiver's base URL) at `path_and_query`, now.
    pub fn header(
        &self,
        method: &str,
        audience: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> String {
        let target = Target {
            method,
            path_and_query,
            audience,
            body,
        };
        let v2 = signature_v2::sign(&self.key, &target);
        if !self.send_v1 {
            return v2;
        }
        let now = chrono::Utc::now().timestamp();
        format!("{v2},{}", signature::sign(&self.secret, now, body))
    }
}

/// Which version a request was accepted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    V2,
    /// Only with `accept_v1`, on a route where version 1 applies.
    V1,
}

/// Checks the signatures of requests to one receiver.
pub struct Verifier {
    secret: Vec<u8>,
    key: [u8; 32],
    /// This receiver's own base URL: only requests signed for it pass.
    audience: String,
    accept_v1: bool,
    window_secs: i64,
    nonces: ReplayCache,
}

impl Verifier {
    pub fn new(
        secret: &[u8],
        audience: &str,
        compat: V1Compat,
        window_secs: i64,
        nonces: ReplayCache,
    ) -> Self {
        Self {
            secret: secret.to_vec(),
            key: signature_v2::key(secret),
            audience: signature_v2::audience_of(audience).to_string(),
            accept_v1: compat.accept_v1,
            window_secs,
            nonces,
        }
    }

    /// The audience requests must be signed for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks `header` against a request of `method` to `path_and_query`
    /// with `body`, at `now_unix`. `v1_route`: version 1 may be accepted
    /// here (see [`V1Compat::accept_v1`]).
    pub fn check(
        &self,
        header: Option<&str>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        v1_route: bool,
        now_unix: i64,
    ) -> Result<Accepted, V2Error> {
        let request = Request {
            header,
            method,
            path_and_query,
            body,
            v1_route,
        };
        self.check_for_any(&request, &[], now_unix)
    }

    /// As [`Verifier::check`], but a signature for one of `also` (other
    /// receivers this one answers for) passes too; the nonce is remembered
    /// here whichever it names.
    pub fn check_for_any(
        &self,
        request: &Request<'_>,
        also: &[&str],
        now_unix: i64,
    ) -> Result<Accepted, V2Error> {
        let audiences = std::iter::once(self.audience.as_str()).chain(also.iter().copied());
        let mut last = V2Error::Missing;
        for audience in audiences {
            let target = Target {
                method: request.method,
                path_and_query: request.path_and_query,
                audience,
                body: request.body,
            };
            match signature_v2::verify(
                &self.key,
                request.header,
                &target,
                now_unix,
                self.window_secs,
            ) {
                Ok(parsed) => {
                    self.nonces.admit(&parsed, now_unix, self.window_secs)?;
                    return Ok(Accepted::V2);
                }
                Err(V2Error::Mismatch { .. }) => {
                    last = V2Error::Mismatch {
                        audience: self.audience.clone(),
                    }
                }
                Err(V2Error::V1NotAccepted) if self.accept_v1 && request.v1_route => {
                    return self.check_v1(request, now_unix)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn check_v1(&self, request: &Request<'_>, now_unix: i64) -> Result<Accepted, V2Error> {
        signature::verify(
            &self.secret,
            request.header,
            request.body,
            now_unix,
            self.window_secs,
        )
        .map(|()| Accepted::V1)
        .map_err(|e| match e {
            SignatureError::Missing => V2Error::Missing,
            SignatureError::Malformed => V2Error::Malformed,
            SignatureError::Stale => V2Error::Stale,
            SignatureError::Mismatch => V2Error::Mismatch {
                audience: self.audience.clone(),
            },
        })
    }
}

/// A request as a [`Verifier`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `x-cronmesh-signature` value, if any.
    pub header: Option<&'a str>,
    pub method: &'a str,
    /// Exactly as received.
    pub path_and_query: &'a str,
    pub body: &'a [u8],
    /// Whether version 1 may be accepted on this route (dispatches and
    /// reports), given `accept_v1`.
    pub v1_route: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIENCE: &str = "http://a:7080";

    fn verifier(accept_v1: bool) -> Verifier {
        let compat = V1Compat {
            accept_v1,
            send_v1: false,
        };
        Verifier::new(b"s3cret", AUDIENCE, compat, 300, ReplayCache::new(16))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_signed_request_passes_once() {
        let signer = Signer::new(b"s3cret", V1Compat::default());
        let header = signer.header("GET", AUDIENCE, "/v1/info", b"");
        let verifier = verifier(false);
        let check = || verifier.check(Some(&header), "GET", "/v1/info", b"", false, now());
        assert_eq!(check(), Ok(Accepted::V2));
        assert_eq!(check(), Err(V2Error::Replayed));
    }

    #[test]
    fn version_1_passes_only_when_accepted_and_only_where_it_applies() {
        let v1 = signature::sign(b"s3cret", now(), b"body");
        let check = |verifier: &Verifier, v1_route: bool| {
            verifier.check(Some(&v1), "POST", "/v1/dispatch", b"body", v1_route, now())
        };
        assert_eq!(check(&verifier(false), true), Err(V2Error::V1NotAccepted));
        assert_eq!(check(&verifier(true), true), Ok(Accepted::V1));
        assert_eq!(check(&verifier(true), false), Err(V2Error::V1NotAccepted));
        let wrong = signature::sign(b"other", now(), b"body");
        assert!(matches!(
            verifier(true).check(Some(&wrong), "POST", "/v1/dispatch", b"body", true, now()),
            Err(V2Error::Mismatch { .. })
        ));
    }

    #[test]
    fn a_header_with_v1_appended_passes_both_versions() {
        let compat = V1Compat {
            accept_v1: false,
            send_v1: true,
        };
        let header = Signer::new(b"s3cret", compat).header("POST", AUDIENCE, "/v1/dispatch", b"b");
        // An old receiver reads the v1 part.
        assert_eq!(
            signature::verify(b"s3cret", Some(&header), b"b", now(), 300),
            Ok(())
        );
        // A new one the v2 part, with its checks.
        let verifier = verifier(false);
        let check = |path: &str| verifier.check(Some(&header), "POST", path, b"b", false, now());
        assert!(matches!(
            check("/v1/dispatch/batch"),
            Err(V2Error::Mismatch { .. })
        ));
        assert_eq!(check("/v1/dispatch"), Ok(Accepted::V2));
        assert_eq!(check("/v1/dispatch"), Err(V2Error::Replayed));
    }

    #[test]
    fn a_signature_for_another_member_passes_only_when_it_is_named() {
        let signer = Signer::new(b"s3cret", V1Compat::default());
        let header = signer.header("POST", "http://b:7070/", "/v1/internal/reports", b"r");
        let request = Request {
            header: Some(&header),
            method: "POST",
            path_and_query: "/v1/internal/reports",
            body: b"r",
            v1_route: true,
        };
        let verifier = verifier(false);
        assert!(matches!(
            verifier.check_for_any(&request, &["http://c:7070"], now()),
            Err(V2Error::Mismatch { .. })
        ));
        let members = ["http://c:7070", "http://b:7070"];
        assert_eq!(
            verifier.check_for_any(&request, &members, now()),
            Ok(Accepted::V2)
        );
        assert_eq!(
            verifier.check_for_any(&request, &members, now()),
            Err(V2Error::Replayed)
        );
    }
}
