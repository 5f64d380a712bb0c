//! The answers the proxy gives itself instead of forwarding, as one error type
//! ([`Refusal`]) behind the crate's one `IntoResponse`: 401 with a `Bearer` challenge,
//! 403, 405 with `Allow`, 429, 503, and the small self-contained pages browsers get
//! (JSON with the same code for API clients).

use http::{header, HeaderValue, Method, StatusCode};

use crate::http::{html_response, IntoResponse, Response};

/// Why the proxy answers a request itself.
#[derive(Debug)]
pub(super) enum Refusal {
    /// No (valid) credentials: 401 `WWW-Authenticate: Bearer realm=...`.
    Unauthorized {
        realm: String,
        invalid_token: bool,
    },
    /// Signed in, but the route's policy says no.
    Forbidden {
        html: bool,
    },
    MethodNotAllowed(Vec<Method>),
    /// Too many logins started from one address.
    TooManyLogins {
        html: bool,
    },
    /// The store cannot be asked: a signed-in user must not be sent to the login page.
    Unavailable {
        html: bool,
    },
    /// A page with a message (sign-in failures, sign-out).
    Page {
        status: StatusCode,
        title: &'static str,
        message: &'static str,
        html: bool,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized {
                realm,
                invalid_token,
            } => {
                let (code, challenge) = if invalid_token {
                    (
                        "invalid_token",
                        format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
                    )
                } else {
                    ("unauthorized", format!("Bearer realm=\"{realm}\""))
                };
                let mut r = json(StatusCode::UNAUTHORIZED, code, "authentication required");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            Refusal::Forbidden { html } => page(
                StatusCode::FORBIDDEN,
                "Access denied",
                "You are signed in, but you do not have access to this page.",
                html,
            ),
            Refusal::MethodNotAllowed(allowed) => {
                let mut r = json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "method not allowed on this route",
                );
                let list = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(v) = HeaderValue::from_str(&list) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                r
            }
            Refusal::TooManyLogins { html } => {
                let mut r = page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-ins",
                    "Too many sign-ins were started from your address. Please try again in a few minutes.",
                    html,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
                r
            }
            Refusal::Unavailable { html } => {
                let mut r = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Sign-in is temporarily unavailable. Please try again in a moment.",
                    html,
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(crate::http::error::RETRY_AFTER_SECS),
                );
                r
            }
            Refusal::Page {
                status,
                title,
                message,
                html,
            } => page(status, title, message, html),
        }
    }
}

fn json(status: StatusCode, error: &str, description: &str) -> Response {
    crate::http::json_response(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// A small self-contained page for browsers, or the same as JSON for API clients.
pub(super) fn page(status: StatusCode, title: &str, message: &str, html: bool) -> Response {
    if !html {
        return json(
            status,
            &title.to_ascii_lowercase().replace([' ', '-'], "_"),
            message,
        );
    }
    page_with(
        status,
        title,
        &format!("<p>{}</p>", crate::http::html_escape(message)),
    )
}

/// A page around already-escaped `body_html`, under a CSP that allows no script.
pub(super) fn page_with(status: StatusCode, title: &str, body_html: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;\
         margin:4rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}}</style></head>\
         <body><main><h1>{title}</h1>{body_html}</main></body></html>",
        title = crate::http::html_escape(title),
    );
    let mut r = html_response(status, body);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}
