//! The admin tokens. When a node has any, every request but the health
//! checks, the executor protocol's signed routes and the console's sign-in
//! page must carry one: as `Authorization: Bearer TOKEN` (the CLI, scripts,
//! the TUI), or as the `cronmesh_token` cookie the console's sign-in sets.
//! A `read` token may look (GET, but not `/v1/backup`); anything else needs
//! an `admin` token. A request without a valid token gets 401, one whose
//! token may not do it 403, both with the JSON error; a console page
//! without a token is sent to the sign-in page.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web, HttpResponse,
};
use sha2::{Digest, Sha256};

use super::{
    catalog::{self, Access},
    error::ApiError,
    AppState,
};
use crate::tokens::Scope;

/// The console's cookie: HttpOnly and SameSite=Strict, so neither page
/// scripts nor other sites can use it.
pub const COOKIE: &str = "cronmesh_token";

/// The configured tokens, kept as digests: comparing digests takes the
/// same time whatever the guess, so timing tells nothing about a token.
pub struct Tokens {
    digests: Vec<(Scope, [u8; 32])>,
}

impl Tokens {
    pub fn new(tokens: &[(Scope, String)]) -> Self {
        Self {
            digests: tokens
                .iter()
                .map(|(scope, token)| (*scope, Sha256::digest(token.as_bytes()).into()))
                .collect(),
        }
    }

    /// The widest scope `candidate` has, if it is a token at all.
    pub fn scope_of(&self, candidate: &str) -> Option<Scope> {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digests
            .iter()
            .filter(|(_, d)| *d == digest)
            .map(|(scope, _)| *scope)
            .max()
    }
}

/// The scope a request needs, from the route table (None: anyone may).
/// The console's sign-in page and assets are open, and signing out only
/// needs the token one has.
fn needed(req: &ServiceRequest) -> Option<Scope> {
    let path = req.path();
    if path == "/login" || path.starts_with("/assets/") {
        return None;
    }
    if path == "/logout" {
        return Some(Scope::Read);
    }
    match catalog::access_of(req.method(), req.match_pattern().as_deref()) {
        Access::Open | Access::Signed => None,
        Access::Read => Some(Scope::Read),
        Access::Admin => Some(Scope::Admin),
    }
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
    // Fails closed: without the node's state no token can be checked.
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        let refusal = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node cannot check tokens; request refused",
        );
        return Ok(req.error_response(refusal).map_into_boxed_body());
    };
    let tokens = state.tokens.clone();
    let (Some(tokens), Some(needed)) = (&tokens, needed(&req)) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if let Some(scope) = presented(&req).and_then(|t| tokens.scope_of(&t)) {
        if scope >= needed {
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        let refusal = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this token's scope is {}; {} {} needs an admin token",
                scope.as_str(),
                req.method(),
                req.path()
            ),
        );
        return Ok(req.error_response(refusal).map_into_boxed_body());
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
    fn only_configured_tokens_are_accepted_each_with_its_scope() {
        let tokens = Tokens::new(&[
            (Scope::Admin, "s3cret".into()),
            (Scope::Read, "l00k".into()),
        ]);
        assert_eq!(tokens.scope_of("s3cret"), Some(Scope::Admin));
        assert_eq!(tokens.scope_of("l00k"), Some(Scope::Read));
        assert_eq!(tokens.scope_of("s3cre"), None);
        assert_eq!(tokens.scope_of(""), None);
    }

    #[test]
    fn health_signed_executor_routes_and_console_pages_need_what_they_say() {
        use actix_web::{http::Method, test::TestRequest};
        let open = |method: Method, path: &str| {
            let req = TestRequest::default()
                .method(method)
                .uri(path)
                .to_srv_request();
            needed(&req)
        };
        assert_eq!(open(Method::GET, "/login"), None);
        assert_eq!(open(Method::GET, "/assets/console.js"), None);
        assert_eq!(open(Method::GET, "/jobs"), Some(Scope::Read));
        assert_eq!(open(Method::POST, "/jobs/new"), Some(Scope::Admin));
    }
}
