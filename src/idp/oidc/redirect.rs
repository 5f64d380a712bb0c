//! Redirect-URI checks: a requested `redirect_uri` (or `post_logout_redirect_uri`) must
//! match one the client registered, exactly, or under a registered trailing `*` wildcard.
//! Wildcards are matched on parsed URLs (same scheme, host and port; path under the
//! pattern's path), so `https://app.example.com*` does not admit `app.example.com.evil`.

use url::Url;

use crate::store::ClientRecord;

/// A requested URI we are willing to redirect to at all.
fn acceptable(requested: &str) -> Option<Url> {
    if requested.is_empty()
        || requested.len() > 2048
        || requested
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let url = Url::parse(requested).ok()?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if matches!(url.scheme(), "javascript" | "data" | "vbscript" | "file") {
        return None;
    }
    Some(url)
}

/// Whether the path of a requested URI could climb out from under a wildcard once a
/// server behind decodes it: encoded dots, slashes or backslashes (`..%2f`, `%2e%2e`),
/// double encoding (`%252e`), and dot segments, plain or with `;parameters` (`..;`).
fn escapes_by_encoding(requested_raw: &str) -> bool {
    let after_scheme = requested_raw
        .split_once("://")
        .map_or(requested_raw, |(_, r)| r);
    let path = after_scheme
        .find('/')
        .map_or("", |i| &after_scheme[i..])
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c", "%25"]
        .iter()
        .any(|e| lower.contains(e))
        || path.split('/').any(|segment| {
            let name = segment.split(';').next().unwrap_or("");
            name == "." || name == ".."
        })
}

/// Resolve a registered URI that is relative (`/cb`) against the client's root URL.
fn absolute_pattern(client: &ClientRecord, pattern: &str) -> Option<String> {
    if pattern.starts_with('/') {
        let root = client.root_url.as_deref()?.trim_end_matches('/');
        Some(format!("{root}{pattern}"))
    } else {
        Some(pattern.to_string())
    }
}

fn matches(pattern: &str, requested_raw: &str, requested: &Url) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        None => pattern == requested_raw,
        Some(prefix) => {
            if !requested_raw.starts_with(prefix) || escapes_by_encoding(requested_raw) {
                return false;
            }
            // Compare origins and paths on parsed URLs as well.
            let Ok(base) = Url::parse(prefix) else {
                return false;
            };
            base.scheme() == requested.scheme()
                && base.host_str() == requested.host_str()
                && base.port_or_known_default() == requested.port_or_known_default()
                && requested
                    .path()
                    .starts_with(base.path().trim_end_matches('*'))
        }
    }
}

/// The redirect URI to use for an authorization request, or `None` when it must be refused.
/// Without a requested URI, a client with exactly one registered (non-wildcard) URI uses it.
pub fn verify_redirect_uri(client: &ClientRecord, requested: Option<&str>) -> Option<String> {
    let patterns: Vec<String> = client
        .redirect_uris
        .iter()
        .filter(|p| p.as_str() != "+")
        .filter_map(|p| absolute_pattern(client, p))
        .collect();
    let Some(requested) = requested.filter(|r| !r.is_empty()) else {
        return match patterns.as_slice() {
            [only] if !only.contains('*') => Some(only.clone()),
            _ => None,
        };
    };
    let url = acceptable(requested)?;
    patterns
        .iter()
        .any(|p| matches(p, requested, &url))
        .then(|| requested.to_string())
}

/// Whether `requested` may follow a logout. Registered: the client attribute
/// `post.logout.redirect.uris` (`##`-separated, `+` meaning the redirect URIs); without it,
/// the redirect URIs.
pub fn verify_post_logout_uri(client: &ClientRecord, requested: &str) -> bool {
    let url = match acceptable(requested) {
        Some(u) => u,
        None => return false,
    };
    let mut patterns: Vec<String> = Vec::new();
    match client.attributes.get("post.logout.redirect.uris") {
        Some(list) if !list.is_empty() => {
            for p in list.split("##") {
                if p == "+" {
                    patterns.extend(client.redirect_uris.iter().cloned());
                } else {
                    patterns.push(p.to_string());
                }
            }
        }
        _ => patterns.extend(client.redirect_uris.iter().cloned()),
    }
    patterns
        .iter()
        .filter_map(|p| absolute_pattern(client, p))
        .any(|p| matches(&p, requested, &url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> ClientRecord {
        ClientRecord {
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            root_url: Some("https://root.example.com".into()),
            ..Default::default()
        }
    }

    #[test]
    fn exact_and_wildcard_matches() {
        let c = client(&[
            "https://app.example.com/cb",
            "http://localhost:3000/*",
            "/relative/*",
        ]);
        assert_eq!(
            verify_redirect_uri(&c, Some("https://app.example.com/cb")).as_deref(),
            Some("https://app.example.com/cb")
        );
        assert!(verify_redirect_uri(&c, Some("https://app.example.com/cb/")).is_none());
        assert!(verify_redirect_uri(&c, Some("https://app.example.com/cb?x=1")).is_none());
        assert!(
            verify_redirect_uri(&c, Some("http://localhost:3000/protected?auth_callback=1"))
                .is_some()
        );
        assert!(verify_redirect_uri(&c, Some("https://root.example.com/relative/x")).is_some());
        assert!(
            verify_redirect_uri(&c, None).is_none(),
            "several registered: must be given"
        );
        let single = client(&["https://only.example.com/cb"]);
        assert_eq!(
            verify_redirect_uri(&single, None).as_deref(),
            Some("https://only.example.com/cb")
        );
    }

    #[test]
    fn open_redirect_attempts_are_refused() {
        let c = client(&["https://app.example.com/*", "https://app.example.com*"]);
        for evil in [
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://evil.com/https://app.example.com/",
            "//evil.com",
            "/\\evil.com",
            "https://app.example.com/\\evil",
            "https://app.example.com/cb#frag",
            " https://app.example.com/cb",
            "https://app.example.com/cb\n",
            "javascript:alert(1)//https://app.example.com/",
            "https://app.example.com:8443/",
            "http://app.example.com/",
        ] {
            assert!(verify_redirect_uri(&c, Some(evil)).is_none(), "{evil}");
        }
    }

    /// Open redirect through path tricks under a wildcard (the Keycloak CVE-2023-6927 /
    /// CVE-2024-1132 class): whatever a server behind would resolve out from under the
    /// pattern is refused.
    #[test]
    fn wildcard_paths_cannot_escape_by_encoding() {
        let c = client(&["https://x.example/app/*"]);
        for evil in [
            "https://x.example/app/..;/evil",
            "https://x.example/app/.;/evil",
            "https://x.example/app/%252e%252e/evil",
            "https://x.example/app/..%2fevil",
            "https://x.example/app/..%2Fevil",
            "https://x.example/app/..%5cevil",
            "https://x.example/app/%2e%2e/evil",
            "https://x.example/app/../evil",
        ] {
            assert!(verify_redirect_uri(&c, Some(evil)).is_none(), "{evil}");
        }
        for fine in [
            "https://x.example/app/cb",
            "https://x.example/app/a;b/c?next=%2Fhome",
            "https://x.example/app/..x",
        ] {
            assert!(verify_redirect_uri(&c, Some(fine)).is_some(), "{fine}");
        }
    }

    #[test]
    fn post_logout_uris() {
        let mut c = client(&["https://app.example.com/*"]);
        assert!(verify_post_logout_uri(&c, "https://app.example.com/bye"));
        c.attributes.insert(
            "post.logout.redirect.uris".into(),
            "https://other.example.com/out".into(),
        );
        assert!(!verify_post_logout_uri(&c, "https://app.example.com/bye"));
        assert!(verify_post_logout_uri(&c, "https://other.example.com/out"));
        c.attributes
            .insert("post.logout.redirect.uris".into(), "+".into());
        assert!(verify_post_logout_uri(&c, "https://app.example.com/bye"));
        assert!(!verify_post_logout_uri(&c, "https://evil.example.com/"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn requested() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("https://app.example.com"),
            Just("https://app.example.com.evil.test"),
            Just("https://evil.test"),
            Just("http://app.example.com"),
            Just(":8443"),
            Just(":443"),
            Just("/cb"),
            Just("/cb/"),
            Just("/cbx"),
            Just("/x"),
            Just("/.."),
            Just("/%2e%2e"),
            Just("%2f"),
            Just("@evil.test"),
            Just("\\\\"),
            Just("?a=1"),
            Just("#f"),
            Just("//"),
            Just("user:pw@"),
            Just(";x"),
            Just("%252e"),
        ];
        proptest::collection::vec(piece, 1..6).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// What a trailing-wildcard registration accepts stays under it: same scheme, host
        /// and port, the path under the registered one, no user info or fragment, no
        /// encoded or literal dot segment.
        #[test]
        fn a_wildcard_admits_only_what_is_under_it(uri in requested()) {
            let client = ClientRecord {
                redirect_uris: vec!["https://app.example.com/cb/*".into()],
                ..Default::default()
            };
            if let Some(accepted) = verify_redirect_uri(&client, Some(&uri)) {
                let url = Url::parse(&accepted).unwrap();
                prop_assert_eq!(url.scheme(), "https");
                prop_assert_eq!(url.host_str(), Some("app.example.com"));
                prop_assert_eq!(url.port_or_known_default(), Some(443));
                prop_assert!(url.path().starts_with("/cb/"), "{}", accepted);
                prop_assert!(url.username().is_empty() && url.fragment().is_none());
                prop_assert!(!escapes_by_encoding(&accepted), "{}", accepted);
            }
            // An exact registration admits only itself.
            let exact = ClientRecord {
                redirect_uris: vec!["https://app.example.com/cb".into()],
                ..Default::default()
            };
            if let Some(accepted) = verify_redirect_uri(&exact, Some(&uri)) {
                prop_assert_eq!(accepted, "https://app.example.com/cb");
            }
        }
    }
}
