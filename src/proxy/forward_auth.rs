//! Forward-auth for other proxies: how the original request is read from the headers
//! nginx (`auth_request`), Traefik (`forwardAuth`) and Caddy (`forward_auth`) send, and
//! the answers they understand, and the endpoint itself ([`answer`]).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::access::{unauthorized, Access, Identity, Incoming, Outcome, RESERVED_PREFIX};
use super::routes::RouteTable;
use crate::config::{ForwardAuthHeaders, RouteAccess};
use crate::http::{ApiError, IntoResponse, Response};

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

/// Read the original request from the header set `style` names. The two sets are never
/// mixed or fallen back on: a client can add the headers its proxy does not send (nginx
/// passes `X-Forwarded-Uri` through, Caddy and Traefik pass `X-Original-URL`), so a
/// chosen header that is missing or unparsable is a 400, and in `auto` a request that
/// carries both sets is one too.
pub fn read_original(headers: &HeaderMap, style: ForwardAuthHeaders) -> Result<Original, String> {
    // Raw UTF-8 (nginx's `$request_uri` is not re-encoded) is text; other bytes are not.
    let text = |name: &'static str| -> Result<Option<&str>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v.as_bytes())
                .map(Some)
                .map_err(|_| format!("{name} is not valid UTF-8")),
        }
    };
    let original_set =
        headers.contains_key("x-original-url") || headers.contains_key("x-original-method");
    let forwarded_set =
        headers.contains_key("x-forwarded-uri") || headers.contains_key("x-forwarded-method");
    let style = match style {
        ForwardAuthHeaders::Auto if original_set && forwarded_set => {
            return Err(
                "forward-auth got both X-Original-* and X-Forwarded-Uri/-Method headers; set proxy.forward_auth_headers"
                    .into(),
            )
        }
        ForwardAuthHeaders::Auto if original_set => ForwardAuthHeaders::Original,
        ForwardAuthHeaders::Auto => ForwardAuthHeaders::Forwarded,
        chosen => chosen,
    };
    let found = match style {
        ForwardAuthHeaders::Original => {
            let url = text("x-original-url")?.ok_or("forward-auth needs X-Original-URL")?;
            original_request(Some(url), None, None, None, text("x-original-method")?)
        }
        _ => {
            let (proto, host, uri) = (
                text("x-forwarded-proto")?,
                text("x-forwarded-host")?,
                text("x-forwarded-uri")?,
            );
            if proto.is_none() || host.is_none() || uri.is_none() {
                return Err(
                    "forward-auth needs X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri"
                        .into(),
                );
            }
            original_request(None, proto, host, uri, text("x-forwarded-method")?)
        }
    };
    found.ok_or_else(|| "forward-auth: the original request in the headers is malformed".into())
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

/// `/_portcullis/forward-auth`: another proxy asks whether the request it holds may pass.
/// The original request comes from the header set `style` names (never a mixture), and
/// is believed only from a trusted proxy (`peer`). 200 with the identity headers; 401
/// (nginx) or a login redirect (others) for browsers without a session; 403 when the
/// policy or the IP rules say no; 400 for missing or unparsable headers.
pub fn answer(
    access: &Access,
    style: ForwardAuthHeaders,
    table: &RouteTable,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    client_ip: Option<std::net::IpAddr>,
) -> Response {
    if !peer.is_some_and(|p| table.is_trusted(p.ip())) {
        return ApiError::Forbidden.into_response();
    }
    let original = match read_original(headers, style) {
        Ok(o) => o,
        Err(message) => return ApiError::BadRequest(message).into_response(),
    };
    // nginx's auth_request (the X-Original-* set) understands only 2xx, 401 and 403.
    let nginx = match style {
        crate::config::ForwardAuthHeaders::Original => true,
        crate::config::ForwardAuthHeaders::Forwarded => false,
        crate::config::ForwardAuthHeaders::Auto => headers.contains_key("x-original-url"),
    };
    let path = match crate::http::path::normalise(&original.path) {
        Ok(p) => p.into_owned(),
        Err(e) => return ApiError::BadRequest(format!("invalid path: {e}")).into_response(),
    };
    let host = super::session::host_without_port(&original.authority);
    let incoming = Incoming {
        method: &original.method,
        headers,
        host: &host,
        authority: &original.authority,
        path: &path,
        query: original.query.as_deref(),
        tls: original.tls,
        client_ip,
    };
    if path.starts_with(RESERVED_PREFIX) {
        // The outer proxy should send these to us directly; let them through.
        return allowed(None, None);
    }
    let Some((index, route)) = table.find_indexed(&host, &path) else {
        // Fail closed: a request for an app we know nothing about is not let through.
        return ApiError::Forbidden.into_response();
    };
    if let Some(ip) = client_ip {
        if !super::routes::permitted(ip, &route.allow, &route.deny) {
            return ApiError::Forbidden.into_response();
        }
    }
    match access.check(&route.config, index, &incoming) {
        Outcome::Pass(identity) => allowed(route.config.access.as_ref(), identity.as_deref()),
        Outcome::Respond(response) if nginx && response.status().is_redirection() => {
            // auth_request only understands 2xx, 401 and 403: nginx's error_page 401
            // sends the browser to /_portcullis/start.
            let realm = route
                .config
                .access
                .as_ref()
                .map(|a| a.realm.as_str())
                .unwrap_or("");
            unauthorized(realm, false)
        }
        Outcome::Respond(response) => response,
    }
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
    if let (Some(_), Some(identity)) = (access, identity) {
        for h in identity.headers() {
            response
                .headers_mut()
                .insert(h.name.clone(), h.value.clone());
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

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    /// Forward-auth header confusion: a client-added header of the set the proxy does not
    /// send is never believed, and nothing falls back to it.
    #[test]
    fn header_sets_are_never_mixed() {
        use ForwardAuthHeaders::*;
        // Behind Caddy/Traefik a client adds X-Original-URL: auto refuses the mixture, the
        // configured style ignores it.
        let caddy = headers(&[
            ("x-forwarded-proto", b"http"),
            ("x-forwarded-host", b"app.test"),
            ("x-forwarded-uri", b"/private"),
            ("x-forwarded-method", b"DELETE"),
            ("x-original-url", b"http://app.test/public/x"),
        ]);
        assert!(read_original(&caddy, Auto).is_err());
        let o = read_original(&caddy, Forwarded).unwrap();
        assert_eq!((o.path.as_str(), &o.method), ("/private", &Method::DELETE));
        // Behind nginx a client adds X-Forwarded-Uri / X-Forwarded-Method.
        let nginx = headers(&[
            ("x-original-url", b"http://app.test/private"),
            ("x-original-method", b"DELETE"),
            ("x-forwarded-uri", b"/public/x"),
            ("x-forwarded-method", b"GET"),
        ]);
        assert!(read_original(&nginx, Auto).is_err());
        let o = read_original(&nginx, Original).unwrap();
        assert_eq!((o.path.as_str(), &o.method), ("/private", &Method::DELETE));
        // Raw UTF-8 in nginx's URL is read, not skipped for another header.
        let utf8 = headers(&[("x-original-url", "http://app.test/caf\u{e9}".as_bytes())]);
        assert_eq!(read_original(&utf8, Auto).unwrap().path, "/caf\u{e9}");
        let bad = headers(&[("x-original-url", b"http://app.test/\xff")]);
        assert!(read_original(&bad, Original).is_err());
        // The chosen header missing is a 400, not a fallback.
        let only_forwarded = headers(&[("x-forwarded-uri", b"/public/x")]);
        assert!(read_original(&only_forwarded, Original).is_err());
        assert!(
            read_original(&only_forwarded, Auto).is_err(),
            "no proto/host"
        );
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
