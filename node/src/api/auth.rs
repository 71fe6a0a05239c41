//! The admin token. When a node has one, every request but the health
//! checks, the executor protocol's signed routes and the console's sign-in
//! page must carry it: as `Authorization: Bearer TOKEN` (the CLI, scripts,
//! the TUI), or as the `cronmesh_token` cookie the console's sign-in sets.
//! A refused API request gets 401 with the JSON error; a refused console
//! page is sent to the sign-in page.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web, HttpResponse,
};
use sha2::{Digest, Sha256};

use super::{error::ApiError, AppState};

/// The console's cookie: HttpOnly and SameSite=Strict, so neither page
/// scripts nor other sites can use it.
pub const COOKIE: &str = "cronmesh_token";

/// The configured token, kept as its digest: comparing digests takes the
/// same time whatever the guess, so timing tells nothing about the token.
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    pub fn accepts(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        digest == self.digest
    }
}

/// Paths served to anyone.
fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/login" | "/v1/openapi.json")
        || path.starts_with("/v1/internal/")
        || path.starts_with("/assets/")
}

/// The token a request carries, from its header or its cookie.
fn presented(req: &ServiceRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| req.cookie(COOKIE).map(|c| c.value().to_string()))
}

pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let token = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.admin_token.clone());
    let allowed = match &token {
        None => true,
        Some(token) => is_open(req.path()) || presented(&req).is_some_and(|t| token.accepts(&t)),
    };
    if allowed {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if req.path().starts_with("/v1/") || req.path() == "/metrics" {
        let refusal = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this node requires its admin token: send Authorization: Bearer TOKEN \
             (the CLI reads --token or CRONMESH_TOKEN)",
        );
        let mut response = req.error_response(refusal);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Ok(response.map_into_boxed_body());
    }
    let target = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    };
    let login = format!(
        "/login?next={}",
        url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
    );
    let response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, login))
        .finish();
    Ok(req.into_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_is_accepted() {
        let token = AdminToken::new("s3cret");
        assert!(token.accepts("s3cret"));
        assert!(!token.accepts("s3cre"));
        assert!(!token.accepts(""));
    }

    #[test]
    fn health_and_signed_executor_routes_stay_open() {
        assert!(is_open("/healthz"));
        assert!(is_open("/v1/internal/reports"));
        assert!(!is_open("/v1/jobs"));
        assert!(!is_open("/"));
        assert!(!is_open("/jobs"));
    }
}
