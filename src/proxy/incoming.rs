//! The request as the proxy's checks see it ([`Incoming`]: after path normalisation and IP
//! rules, transport-free), what can be read from it (cookies, query, what kind of client
//! it is, where a login should come back to), and the checks on return paths.

use std::net::IpAddr;

use http::{header, HeaderMap, Method};

/// The request as the access check sees it (after path normalisation and IP rules).
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Lower case, without port.
    pub host: &'a str,
    /// The Host header as sent (with port), for URLs back to this host.
    pub authority: &'a str,
    /// Normalised.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Over TLS: our own, or a trusted proxy's.
    pub tls: bool,
    pub client_ip: Option<IpAddr>,
}

impl Incoming<'_> {
    pub(super) fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    pub(super) fn cookie(&self, name: &str) -> Option<&str> {
        crate::http::cookie(self.headers, name)
    }

    pub(super) fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// API clients get 401 instead of a redirect to a login page.
    pub(super) fn is_api_client(&self) -> bool {
        let h = |name: &str| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let accept = h("accept");
        !matches!(*self.method, Method::GET | Method::HEAD)
            || self.headers.contains_key(header::AUTHORIZATION)
            || h("x-requested-with") == "xmlhttprequest"
            || (accept.contains("application/json") && !accept.contains("text/html"))
    }

    /// The `rd` of `/_portcullis/start?rd=/path?a=1&b=2` and `/_portcullis/sign_out?rd=...`:
    /// everything after `rd=`, decoded, so that nginx can pass `$request_uri` unencoded.
    /// Not yet checked: see [`safe_return_path`].
    pub fn return_target(&self) -> Option<String> {
        let q = self.query?;
        let raw = q
            .strip_prefix("rd=")
            .or_else(|| q.split_once("&rd=").map(|(_, r)| r))?;
        Some(crate::http::path::percent_decode(raw)?.into_owned())
    }

    /// Whether the browser says this request comes from a page of this origin (or from
    /// the user: typed, bookmarked).
    pub(super) fn same_origin(&self) -> bool {
        let h = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        match h("sec-fetch-site") {
            Some(site) => matches!(site, "same-origin" | "none"),
            None => h("origin").is_some_and(|o| {
                o.eq_ignore_ascii_case(&format!("{}://{}", self.scheme(), self.authority))
            }),
        }
    }

    /// The path and query to come back to after login.
    pub(super) fn return_to(&self) -> String {
        match self.query {
            Some(q) if !q.is_empty() => format!("{}?{q}", self.path),
            _ => self.path.to_string(),
        }
    }

    /// `scheme://host[:port]` of this request, or the public URL when one is configured.
    pub(super) fn base_url(&self, public_url: Option<&url::Url>) -> String {
        crate::http::hosts::base_url(public_url, self.tls, Some(self.authority))
    }
}

/// A path on this host to return to: anything else (another host, a scheme, `//evil`,
/// `/\evil`, control characters) becomes `/`.
pub fn safe_return_path(candidate: &str) -> String {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && !candidate
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if !ok {
        return "/".into();
    }
    // Re-check after one decoding: `/%2F%2Fevil` must not become `//evil` anywhere.
    match crate::http::path::percent_decode(candidate) {
        Some(decoded) if decoded.starts_with("//") || decoded.starts_with("/\\") => "/".into(),
        None => "/".into(),
        Some(_) => candidate.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_the_host() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil",
            "/%5Cevil",
            " /x",
            "/x\ty",
            "evil",
            "",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path("/app/x?y=1"), "/app/x?y=1");
    }

    #[test]
    fn api_clients_are_told_apart_from_browsers() {
        let mut headers = HeaderMap::new();
        let req = |headers: &HeaderMap, method: &Method| {
            Incoming {
                method,
                headers,
                host: "a",
                authority: "a",
                path: "/",
                query: None,
                tls: false,
                client_ip: None,
            }
            .is_api_client()
        };
        assert!(!req(&headers, &Method::GET));
        assert!(req(&headers, &Method::POST));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(req(&headers, &Method::GET));
        headers.insert(
            header::ACCEPT,
            "text/html,application/json".parse().unwrap(),
        );
        assert!(!req(&headers, &Method::GET));
        headers.insert("x-requested-with", "XMLHttpRequest".parse().unwrap());
        assert!(req(&headers, &Method::GET));
    }
}
