//! A request rate limit per client address, so one runaway script cannot
//! starve the API for everyone else. Over the limit, a request gets 429
//! with `Retry-After`. Health checks and the executors' reports are never
//! limited: a load balancer and the run records must always get through.
//! Nor is a request a follower forwards: its client was counted there, and
//! every client of that follower would otherwise share one budget. That
//! holds only for a request that proves it comes from a member (signed
//! with the cluster secret, see `forward::is_from_member`): a bare or
//! forged `x-cronmesh-forwarded` header is counted like any request, and
//! without a secret no request is exempt as forwarded.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

use super::{error::ApiError, AppState};

/// Forget addresses not seen lately after this many requests.
const SWEEP_EVERY: u64 = 4096;

pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_second` requests a second per address, in bursts of as many.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second)),
            checks: AtomicU64::new(0),
        }
    }

    /// Ok, or how long the address must wait.
    pub fn admit(&self, address: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&address).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }
}

fn is_exempt_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
        || path.starts_with("/v1/internal/")
        || path.starts_with("/assets/")
}

/// Whether `req` goes through without being counted: its path is always
/// let through, or a member forwarded it (proven with `secret`).
fn is_exempt(req: &ServiceRequest, secret: Option<&[u8]>) -> bool {
    is_exempt_path(req.path()) || super::forward::is_from_member(req, secret)
}

pub async fn limit_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>();
    let limit = state.and_then(|state| state.rate_limit.clone());
    let secret = state.and_then(|state| state.secret.clone());
    let address = req.peer_addr().map(|a| a.ip());
    let exempt = limit.is_none() || is_exempt(&req, secret.as_deref().map(Vec::as_slice));
    if let (Some(limit), Some(address), false) = (limit, address, exempt) {
        if let Err(wait) = limit.admit(address) {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = req.error_response(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("more requests from {address} than this node's --rate-limit allows; retry in {seconds} s"),
            ));
            if let Ok(value) = header::HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response.map_into_boxed_body());
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use actix_web::{http::Method, test::TestRequest};
    use protocol::signature::sign_forward;

    use super::*;

    const SECRET: &[u8] = b"cluster secret";

    /// Whether a POST to `target` carrying `mark` as its forwarded header
    /// (if any) is exempt on a node with `secret`.
    fn exempt(target: &str, mark: Option<&str>, secret: Option<&[u8]>) -> bool {
        let mut req = TestRequest::default().method(Method::POST).uri(target);
        if let Some(mark) = mark {
            req = req.insert_header((super::super::forward::FORWARDED, mark));
        }
        is_exempt(&req.to_srv_request(), secret)
    }

    fn proof(secret: &[u8], method: &str, target: &str) -> String {
        sign_forward(secret, chrono::Utc::now().timestamp(), method, target)
    }

    #[test]
    fn only_a_member_proven_forward_is_exempt() {
        let target = "/v1/jobs?namespace=a";
        let valid = proof(SECRET, "POST", target);
        assert!(exempt(target, Some(&valid), Some(SECRET)));
        assert!(!exempt(target, None, Some(SECRET)), "no header");
        assert!(!exempt(target, Some("1"), Some(SECRET)), "a bare header");
        let forged = proof(b"a guess", "POST", target);
        assert!(!exempt(target, Some(&forged), Some(SECRET)), "another key");
        let elsewhere = proof(SECRET, "POST", "/v1/jobs?namespace=b");
        assert!(
            !exempt(target, Some(&elsewhere), Some(SECRET)),
            "a proof for another request"
        );
        let old = sign_forward(
            SECRET,
            chrono::Utc::now().timestamp() - 3600,
            "POST",
            target,
        );
        assert!(!exempt(target, Some(&old), Some(SECRET)), "a stale proof");
        assert!(
            !exempt(target, Some(&valid), None),
            "no secret, no exemption"
        );
    }

    #[test]
    fn health_checks_and_reports_are_exempt_without_any_proof() {
        assert!(exempt("/healthz", None, None));
        assert!(exempt("/readyz", None, None));
        assert!(exempt("/v1/internal/reports", None, None));
        assert!(!exempt("/v1/jobs", None, None));
    }

    #[test]
    fn an_address_over_its_rate_waits_and_others_do_not() {
        let limit = RateLimit::per_second(NonZeroU32::new(3).unwrap());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.admit(a).is_ok());
        }
        let wait = limit.admit(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limit.admit(b).is_ok(), "another address has its own budget");
    }
}
