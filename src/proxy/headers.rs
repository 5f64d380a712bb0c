//! Identity headers. Before anything is forwarded, every client-sent header that
//! normalises (lower-case, `_` and `.` to `-`) to an identity header name is removed, on
//! every route, public ones included: an upstream must never see a spoofed identity.

use http::HeaderMap;

/// The identity headers Portcullis owns (and may inject).
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-roles",
    "x-forwarded-access-token",
    "x-portcullis-jwt-assertion",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-auth-request-access-token",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
];

use crate::http::forwarding::normalises_to;
pub use crate::http::forwarding::FORWARDING_HEADERS;

/// Names of the request headers in [`FORWARDING_HEADERS`], in any spelling.
pub fn forwarding(headers: &HeaderMap) -> Vec<http::HeaderName> {
    headers
        .keys()
        .filter(|name| {
            FORWARDING_HEADERS
                .iter()
                .any(|w| normalises_to(name.as_str(), w))
        })
        .cloned()
        .collect()
}

/// Names of the request headers that must be removed (none, without allocating, in the
/// common case).
pub fn spoofed(headers: &HeaderMap) -> Vec<http::HeaderName> {
    let mut out = Vec::new();
    for name in headers.keys() {
        let n = name.as_str();
        // Every identity header starts with "x", "r" (remote-) once normalised.
        if !matches!(n.as_bytes().first(), Some(b'x' | b'r')) {
            continue;
        }
        if IDENTITY_HEADERS.iter().any(|w| normalises_to(n, w)) {
            out.push(name.clone());
        }
    }
    out
}

/// Names of the request headers that normalise to one of `names` (a route's renamed
/// identity headers).
pub fn spoofed_as<'a>(
    headers: &HeaderMap,
    names: impl IntoIterator<Item = &'a http::HeaderName>,
) -> Vec<http::HeaderName> {
    let wanted: Vec<&http::HeaderName> = names.into_iter().collect();
    let norm = |b: u8| match b {
        b'_' | b'.' => b'-',
        b => b.to_ascii_lowercase(),
    };
    let same = |a: &str, b: &str| {
        a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
    };
    headers
        .keys()
        .filter(|name| wanted.iter().any(|w| same(name.as_str(), w.as_str())))
        .cloned()
        .collect()
}

/// The gateway's cookies (session and login state) are for the gateway only: the
/// `Cookie` header without them. `None` when there is nothing to change; `Some(None)` when
/// no cookie is left.
pub fn without_gateway_cookies(headers: &HeaderMap) -> Option<Option<http::HeaderValue>> {
    let values: Vec<&str> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ours = |pair: &str| {
        let name = pair.trim().split('=').next().unwrap_or("");
        matches!(
            name,
            "portcullis" | "__Host-portcullis" | "portcullis-state" | "__Host-portcullis-state"
        )
    };
    if !values.iter().flat_map(|v| v.split(';')).any(ours) {
        return None;
    }
    let kept: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(';'))
        .filter(|p| !ours(p) && !p.trim().is_empty())
        .map(str::trim)
        .collect();
    if kept.is_empty() {
        Some(None)
    } else {
        Some(http::HeaderValue::from_str(&kept.join("; ")).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_identity_headers_are_found() {
        let mut h = HeaderMap::new();
        for name in [
            "x-forwarded-user",
            "X_Forwarded_User",
            "x.forwarded.email",
            "x-forwarded-for",
            "remote_user",
            "accept",
        ] {
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "v".parse().unwrap(),
            );
        }
        let found: Vec<String> = spoofed(&h).iter().map(|n| n.as_str().to_string()).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(!found.contains(&"x-forwarded-for".to_string()));
        assert!(!found.contains(&"accept".to_string()));
    }

    #[test]
    fn gateway_cookies_are_removed_and_others_kept() {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1".parse().unwrap());
        assert!(without_gateway_cookies(&h).is_none());
        h.insert(
            http::header::COOKIE,
            "a=1; __Host-portcullis=s.x; b=2".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "portcullis-state=z".parse().unwrap());
        assert_eq!(
            without_gateway_cookies(&h),
            Some(Some("a=1; b=2".parse().unwrap()))
        );
        let mut only = HeaderMap::new();
        only.insert(http::header::COOKIE, "portcullis=s.x".parse().unwrap());
        assert_eq!(without_gateway_cookies(&only), Some(None));
    }
}
