//! What the hooks read from pingora's session: the host and authority as routing sees
//! them, absolute-form targets made origin-form, every `X-Forwarded-For` line, and the
//! transport-free [`access::Incoming`] the access checks take.

use std::net::IpAddr;

use pingora_proxy::Session;

use crate::http::ApiError;

use super::access;

/// Absolute-form requests (`GET http://app.test/x`) are routed by the URI's authority, as
/// RFC 9112 §3.2.2 says a server must (ignoring `Host`): the authority becomes `Host` and
/// the target becomes origin-form, so every rule and the upstream see one host. A request
/// with neither an authority nor `Host` is refused.
pub(super) fn origin_form(session: &mut Session) -> std::result::Result<(), ApiError> {
    let header = session.req_header();
    let Some(authority) = header.uri.authority().map(|a| a.as_str().to_string()) else {
        return if header.headers.contains_key(http::header::HOST) {
            Ok(())
        } else {
            Err(ApiError::BadRequest("the request has no Host".into()))
        };
    };
    let target = header
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let uri = target
        .parse::<http::Uri>()
        .map_err(|_| ApiError::BadRequest("invalid request target".into()))?;
    let req = session.req_header_mut();
    req.insert_header(http::header::HOST, authority)
        .map_err(|_| ApiError::BadRequest("invalid authority".into()))?;
    req.set_uri(uri);
    Ok(())
}

/// Every `X-Forwarded-For` line of the request as one list: a proxy that adds its own
/// line must not leave the client's first line to be believed.
pub(super) fn forwarded_for(headers: &http::HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    let mut lines = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let first = lines.next()?;
    match lines.next() {
        None => Some(std::borrow::Cow::Borrowed(first)),
        Some(second) => {
            let mut all = format!("{first}, {second}");
            for line in lines {
                all.push_str(", ");
                all.push_str(line);
            }
            Some(std::borrow::Cow::Owned(all))
        }
    }
}

/// The request as the access checks see it.
pub(super) fn incoming<'a>(
    session: &'a Session,
    host: &'a str,
    authority: &'a str,
    path: &'a str,
    tls: bool,
    client_ip: Option<IpAddr>,
) -> access::Incoming<'a> {
    let header = session.req_header();
    access::Incoming {
        method: &header.method,
        headers: &header.headers,
        host,
        authority,
        path,
        query: header.uri.query(),
        tls,
        client_ip,
    }
}

/// The Host header as sent (with port), when it is a plausible host; else `host`.
pub(super) fn request_authority(session: &Session, host: &str) -> String {
    session
        .req_header()
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| crate::http::hosts::plausible_host(h))
        .map(String::from)
        .unwrap_or_else(|| host.to_string())
}

/// The request's host, lower case, without a port.
pub(super) fn request_host(session: &Session) -> String {
    let header = session.req_header();
    let raw = header
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| header.uri.host())
        .unwrap_or("");
    host_without_port(raw)
}

pub(super) fn host_without_port(authority: &str) -> String {
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
            .to_ascii_lowercase();
    }
    // `app.test.` is `app.test`: a trailing dot must not miss the route.
    let name = authority
        .split(':')
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    // One allocation per request, lower-cased as it is copied.
    let mut host = String::with_capacity(name.len());
    host.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_forwarded_for_line_counts() {
        let mut h = http::HeaderMap::new();
        assert!(forwarded_for(&h).is_none());
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(forwarded_for(&h).as_deref(), Some("203.0.113.9"));
        // A client's own line first, the trusted proxy's added line after it: the list is
        // read right to left, so the proxy's line decides.
        h.append("x-forwarded-for", "192.0.2.7".parse().unwrap());
        h.append("x-forwarded-for", "198.51.100.1".parse().unwrap());
        assert_eq!(
            forwarded_for(&h).as_deref(),
            Some("203.0.113.9, 192.0.2.7, 198.51.100.1")
        );
    }
}
