//! Signing in to the console on a node with an admin token: the token is
//! checked once and kept in an HttpOnly, SameSite=Strict cookie that the
//! browser sends with every page, API call and event stream.

use actix_web::{
    cookie::{time::Duration as CookieAge, Cookie, SameSite},
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use maud::{html, DOCTYPE};
use serde::Deserialize;

use super::layout::{head, html_response, query_or_default};
use crate::api::{AppState, TOKEN_COOKIE};

/// How long a sign-in lasts.
const SIGN_IN_DAYS: i64 = 7;

#[derive(Deserialize, Default)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Only paths of this console: never another site.
fn local_target(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn form(next: &str, error: Option<&str>) -> maud::Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in", false))
            body {
                header.top { span.brand { "cronmesh" } }
                main.narrow {
                    h1 { "Sign in" }
                    p.muted { "This node requires its admin token." }
                    form.signin method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        div.field data-field="token" {
                            label for="token" { "Admin token" }
                            input #token type="password" name="token" autocomplete="current-password" autofocus;
                            @if let Some(error) = error { small.field-error.shown { (error) } }
                        }
                        button.primary type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

pub async fn page(req: HttpRequest) -> HttpResponse {
    let q = query_or_default::<SignIn>(&req);
    html_response(StatusCode::OK, form(local_target(&q.next), None))
}

pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    data: web::Form<SignIn>,
) -> HttpResponse {
    let target = local_target(&data.next).to_string();
    let Some(tokens) = &state.tokens else {
        return redirect(&target);
    };
    if tokens.scope_of(data.token.trim()).is_none() {
        return html_response(
            StatusCode::UNAUTHORIZED,
            form(&target, Some("That is not one of this node's tokens.")),
        );
    }
    let cookie = Cookie::build(TOKEN_COOKIE, data.token.trim().to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        // Over HTTPS (served, or behind a proxy that says so) the browser
        // never sends the token over plain HTTP.
        .secure(req.connection_info().scheme() == "https")
        .max_age(CookieAge::days(SIGN_IN_DAYS))
        .finish();
    let mut response = redirect(&target);
    let _ = response.add_cookie(&cookie);
    response
}

pub async fn sign_out() -> HttpResponse {
    let mut response = redirect("/login");
    let mut cookie = Cookie::build(TOKEN_COOKIE, "").path("/").finish();
    cookie.make_removal();
    let _ = response.add_cookie(&cookie);
    response
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::local_target;

    #[test]
    fn sign_in_only_returns_to_this_console() {
        assert_eq!(local_target("/jobs?state=failing"), "/jobs?state=failing");
        assert_eq!(local_target("//evil.example/"), "/");
        assert_eq!(local_target("https://evil.example/"), "/");
        assert_eq!(local_target("/\\evil.example"), "/");
    }
}
