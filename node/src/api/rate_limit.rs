//! A request rate limit per client address, so one runaway script cannot
//! starve the API for everyone else. Over the limit, a request gets 429
//! with `Retry-After`. Health checks and the executors' reports are never
//! limited: a load balancer and the run records must always get through.
//! Nor is a request a follower forwards: its client was counted there, and
//! every client of that follower would otherwise share one budget.

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

fn is_exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
        || path.starts_with("/v1/internal/")
        || path.starts_with("/assets/")
}

pub async fn limit_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.rate_limit.clone());
    let address = req.peer_addr().map(|a| a.ip());
    let exempt = is_exempt(req.path()) || req.headers().contains_key(super::forward::FORWARDED);
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
    use super::*;

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
