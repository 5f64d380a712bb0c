//! Request headers by which a client, or a proxy in front, speaks of another address,
//! scheme or host than the connection's own: what the gateway strips before forwarding
//! (`proxy::headers`) and what makes a request "relayed" for the welcome page.

use http::HeaderMap;

/// Headers with which a client could claim another address, scheme, host, path or method
/// to an upstream (or to a framework in it: Spring, Rails, Symfony, IIS rewrite, ...).
/// Removed, in every spelling, from every request forwarded; the gateway then sets
/// `X-Forwarded-For/Proto/Host` and `X-Real-IP` from what it knows.
pub const FORWARDING_HEADERS: &[&str] = &[
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-originating-ip",
    "forwarded",
    "x-forwarded",
    "forwarded-for",
    "x-forwarded-server",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-url-scheme",
    "front-end-https",
    "x-original-url",
    "x-original-uri",
    "x-original-host",
    "x-original-method",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether any header of `headers`, in any spelling, says the request was relayed by a
/// proxy: the headers above, `X-Forwarded-For/Host/Proto` and `Via`.
pub fn relayed(headers: &HeaderMap) -> bool {
    const MORE: [&str; 4] = [
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "via",
    ];
    headers.keys().any(|name| {
        FORWARDING_HEADERS
            .iter()
            .chain(MORE.iter())
            .any(|w| normalises_to(name.as_str(), w))
    })
}

/// Whether `name` normalises to `wanted` (lower case, no `_` or `.`), without allocating.
pub fn normalises_to(name: &str, wanted: &str) -> bool {
    name.len() == wanted.len()
        && name.bytes().zip(wanted.bytes()).all(|(a, b)| {
            let a = match a {
                b'_' | b'.' => b'-',
                a => a.to_ascii_lowercase(),
            };
            a == b
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_in_any_spelling() {
        let with = |name: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "x".parse().unwrap(),
            );
            relayed(&h)
        };
        for name in [
            "X-Forwarded-For",
            "x_forwarded_proto",
            "Via",
            "true-client-ip",
            "cf-connecting-ip",
            "x.real.ip",
            "forwarded",
        ] {
            assert!(with(name), "{name}");
        }
        assert!(!with("user-agent"));
        assert!(!relayed(&HeaderMap::new()));
    }
}
