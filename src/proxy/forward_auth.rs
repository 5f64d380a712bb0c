//! Forward-auth for other proxies: how the original request is read from the headers
//! nginx (`auth_request`), Traefik (`forwardAuth`) and Caddy (`forward_auth`) send, and
//! the answers they understand.

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

use super::access::Identity;
use crate::config::RouteAccess;
use crate::http::Response;

/// The request the other proxy is holding.
#[derive(Debug, PartialEq, Eq)]
pub struct Original {
    pub method: Method,
    pub tls: bool,
    /// Host with optional port.
    pub authority: String,
    /// Raw (not yet normalised) path.
    pub path: String,
    pub query: Option<String>,
}

/// From `X-Original-URL` (nginx: `$scheme://$host$request_uri`), else from
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Uri` (Traefik, Caddy). The
/// method comes from `X-Forwarded-Method` (Traefik, Caddy) or `X-Original-Method`, else GET.
pub fn original_request(
    original_url: Option<&str>,
    proto: Option<&str>,
    host: Option<&str>,
    uri: Option<&str>,
    method: Option<&str>,
) -> Option<Original> {
    let (tls, authority, target) = match original_url {
        Some(url) => {
            let (scheme, rest) = url.split_once("://")?;
            let (authority, target) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            (scheme.eq_ignore_ascii_case("https"), authority, target)
        }
        None => {
            let proto = proto?.split(',').next()?.trim();
            (
                proto.eq_ignore_ascii_case("https"),
                host?.split(',').next()?.trim(),
                uri?,
            )
        }
    };
    if authority.is_empty() || !target.starts_with('/') {
        return None;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let method = match method {
        Some(m) => Method::from_bytes(m.trim().as_bytes()).ok()?,
        None => Method::GET,
    };
    Some(Original {
        method,
        tls,
        authority: authority.to_ascii_lowercase(),
        path,
        query,
    })
}

/// 200 with the identity headers (under the route's names) for the other proxy to copy.
/// Every identity header is present, empty when there is no identity (a public path or an
/// open route): a proxy that copies only the headers it gets (Caddy's `copy_headers`)
/// then overwrites whatever the client sent under those names.
pub fn allowed(access: Option<&RouteAccess>, identity: Option<&Identity>) -> Response {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::OK;
    let defaults = crate::config::IdentityHeaderNames::default();
    let names = access.map(|a| &a.headers).unwrap_or(&defaults);
    for name in names.all() {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(""));
    }
    if let (Some(access), Some(identity)) = (access, identity) {
        for (name, value) in identity.headers(access) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_always_present_so_copies_overwrite_spoofed_ones() {
        // An open route (no access rules) and no identity: every default name, empty.
        let r = allowed(None, None);
        assert_eq!(r.status(), StatusCode::OK);
        for name in crate::config::IdentityHeaderNames::default().all() {
            assert_eq!(
                r.headers().get(name).map(|v| v.as_bytes()),
                Some(&b""[..]),
                "{name}"
            );
        }
    }

    #[test]
    fn original_request_from_nginx_and_traefik_headers() {
        let nginx = original_request(
            Some("https://App.test:8443/a/b?x=1"),
            None,
            None,
            None,
            Some("POST"),
        )
        .unwrap();
        assert_eq!(
            nginx,
            Original {
                method: Method::POST,
                tls: true,
                authority: "app.test:8443".into(),
                path: "/a/b".into(),
                query: Some("x=1".into()),
            }
        );
        let traefik =
            original_request(None, Some("http"), Some("app.test"), Some("/x"), None).unwrap();
        assert_eq!(traefik.method, Method::GET);
        assert!(!traefik.tls);
        assert_eq!(traefik.path, "/x");
        assert!(original_request(None, Some("http"), None, Some("/x"), None).is_none());
        assert!(original_request(Some("app.test/x"), None, None, None, None).is_none());
        assert!(original_request(None, Some("http"), Some("a"), Some("x"), None).is_none());
    }
}
