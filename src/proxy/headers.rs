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

/// `X_Forwarded.User` → `x-forwarded-user`.
pub fn normalised_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Names of the request headers that must be removed.
pub fn spoofed(headers: &HeaderMap) -> Vec<http::HeaderName> {
    headers
        .keys()
        .filter(|name| IDENTITY_HEADERS.contains(&normalised_name(name.as_str()).as_str()))
        .cloned()
        .collect()
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
}
