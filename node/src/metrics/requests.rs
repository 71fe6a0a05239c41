//! Counts every admin API request by route pattern, method and status.
//!
//! Every label comes from a fixed set, whatever a client sends: the route
//! is the pattern of a registered route (or `unmatched`), the method one
//! of the standard ones (or `other`), the status a number. A label taken
//! from the request itself would let any client add series for good, and
//! `/healthz` takes requests from anyone.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};

use super::RequestLabels;
use crate::api::AppState;

/// The route label of a request no registered route matched.
pub const UNMATCHED: &str = "unmatched";
/// The method label of any method outside [`method_label`]'s set.
pub const OTHER_METHOD: &str = "other";

/// The method's label: the standard methods by name, any other (an
/// extension method is any token a client makes up) as `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => OTHER_METHOD,
    }
}

pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let method = method_label(req.method());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        // The pattern of the registered resource the path matches: one of
        // the route table's (and the console's) patterns, never the path.
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| UNMATCHED.to_string());
        metrics.request(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_named() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        assert_eq!(method_label(&Method::CONNECT), OTHER_METHOD);
        assert_eq!(method_label(&Method::TRACE), OTHER_METHOD);
        for made_up in ["FOO", "BREW", "X-1234", "get"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD, "{made_up}");
        }
    }
}
