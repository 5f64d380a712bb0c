//! The transport-free HTTP layer, a leaf that knows no IdP and no proxy: the request and
//! response types (`http::Request<Bytes>` plus what the transport knows about the
//! connection), path normalisation and percent-decoding, known hosts, JSON and method
//! helpers, and [`error::IntoResponse`], which every error type implements at its own
//! boundary. The IdP's endpoints are in `crate::idp::app`; pingora only carries bytes.

pub mod error;
pub mod forwarding;
pub mod hosts;
pub mod path;
pub mod router;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

pub use error::{ApiError, IntoResponse};

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// What the transport knows about a request that the request itself does not carry.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo {
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
    /// Whether the request arrived over TLS.
    pub tls: bool,
}

/// Loopback and private addresses: what Keycloak's `sslRequired = external` lets through
/// without TLS.
pub fn is_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local(std::net::IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTML page with the headers every login page carries.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut r = Response::new(Bytes::from(html));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, must-revalidate, max-age=0"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' http: https:; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    r
}

/// A `302 Found` to `location`.
pub fn redirect(location: &str) -> Response {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A cookie value from request headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs(headers)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Like [`cookie`], but `None` when the request carries the cookie more than once: a
/// sibling subdomain (or a man in the middle of plain HTTP) can plant a second cookie of
/// the same name with a longer path, which the browser would send first.
pub fn unique_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = cookie_pairs(headers).filter(|(k, _)| *k == name);
    let (_, first) = found.next()?;
    found.next().is_none().then_some(first)
}

/// Every cookie of the request as (name, value), in the order sent.
fn cookie_pairs(headers: &http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k, v.trim_matches('"')))
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 7235).
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Text made safe inside HTML elements and quoted attributes.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_for_ssl_required_external() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        for public in [
            "203.0.113.9",
            "172.32.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_local(public.parse().unwrap()), "{public}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// A cookie value found is one the header holds, under exactly that name, never
        /// a piece of another cookie's value; a cookie set among others is found as set.
        #[test]
        fn cookies_are_found_by_their_own_name(
            others in proptest::collection::vec(("[A-Za-z_]{1,8}", "[ -~]{0,12}"), 0..5),
            value in "[A-Za-z0-9._-]{1,24}",
            noise in "[ -~]{0,40}",
        ) {
            let name = "KC_TARGET";
            let mut pairs: Vec<String> = others
                .iter()
                .filter(|(k, _)| k != name)
                .map(|(k, v)| format!("{k}={}", v.replace(';', "")))
                .collect();
            pairs.insert(pairs.len() / 2, format!("{name}={value}"));
            let mut headers = http::HeaderMap::new();
            if let Ok(h) = http::HeaderValue::from_str(&pairs.join("; ")) {
                headers.insert(header::COOKIE, h);
                prop_assert_eq!(cookie(&headers, name), Some(value.as_str()));
            }
            // Noise that mentions the name inside a value is not that cookie.
            let mut noisy = http::HeaderMap::new();
            if let Ok(h) = http::HeaderValue::from_str(&format!("x=a{name}=b{}", noise.replace(';', ""))) {
                noisy.insert(header::COOKIE, h);
                prop_assert_eq!(cookie(&noisy, name), None);
            }
        }
    }
}
