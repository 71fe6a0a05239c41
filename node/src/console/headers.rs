//! Headers on every answer of a node, so a browser keeps the console to
//! itself: scripts and styles only from the console's own files (no
//! inline script an injected string could become), no page of another
//! site framing it (clickjacking), no guessing a JSON answer is HTML, and
//! no address of the console leaking in a Referer to another site.

use actix_web::middleware::DefaultHeaders;

/// Only the node's own files run or style a page; `fetch`, the event
/// stream and form posts go only to the node; nothing frames it. The
/// charts are inline SVG drawn with attributes, not `style`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Every header and its value, as served.
pub const HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    // For browsers that predate frame-ancestors.
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    // Not no-referrer: under it a browser sends `Origin: null` with the
    // console's own form posts, which the node then cannot tell from a
    // sandboxed page of another site's.
    ("referrer-policy", "same-origin"),
];

/// The middleware adding [`HEADERS`] to every response that lacks them.
pub fn on_every_response() -> DefaultHeaders {
    HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |headers, (name, value)| {
            headers.add((*name, *value))
        })
}
