//! Path normalisation, applied before any rule is matched and sent upstream as is:
//! percent-encoded unreserved characters are decoded, dot segments removed, repeated
//! slashes merged. Encoded `/` or `\`, NUL (raw or encoded), a backslash, and a path that
//! climbs above the root are refused: they are how rules get bypassed.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error("encoded slash or backslash in the path")]
    EncodedSeparator,
    #[error("NUL or control character in the path")]
    Control,
    #[error("backslash in the path")]
    Backslash,
    #[error("the path climbs above the root")]
    EscapesRoot,
    #[error("malformed percent-encoding")]
    BadEncoding,
    /// `..;x` or `.;x`: Tomcat and Spring drop the `;` parameter and resolve a dot segment
    /// that a plain comparison would take for a name.
    #[error("a dot segment with ;parameters in the path")]
    DotSegmentParameter,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Normalise the path part of a request target (no query). Returns the input unchanged
/// (borrowed) when it is already normal, which is the common case.
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // Pass 1: decode unreserved escapes, refuse the dangerous ones, upper-case the rest.
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (h, l) = match (
                    bytes.get(i + 1).and_then(|&c| hex(c)),
                    bytes.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => (h, l),
                    _ => return Err(PathError::BadEncoding),
                };
                let value = h * 16 + l;
                match value {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(PathError::Control),
                    v if unreserved(v) => decoded.push(v as char),
                    v => {
                        decoded.push('%');
                        decoded.push_str(&format!("{v:02X}"));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::Control),
            _ => {
                // Multi-byte UTF-8 arrives as whole chars; push the byte run as a char.
                let ch_len = path[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                decoded.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    // Pass 2: segments — drop empty and `.`, pop on `..`, never above the root.
    let trailing_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        if let Some((name, _)) = segment.split_once(';') {
            if name == "." || name == ".." {
                return Err(PathError::DotSegmentParameter);
            }
        }
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::EscapesRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing_slash && !out.ends_with('/')) {
        out.push('/');
    }
    if out == path {
        Ok(Cow::Borrowed(path))
    } else {
        Ok(Cow::Owned(out))
    }
}

/// Percent-decode a path segment; `None` when the result is not UTF-8.
pub fn percent_decode(value: &str) -> Option<Cow<'_, str>> {
    if !value.contains('%') {
        return Some(Cow::Borrowed(value));
    }
    let bytes: Vec<u8> =
        form_urlencoded::parse(format!("x={}", value.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

/// Percent-encode one path segment (a realm name in a URL).
pub fn encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalise(p).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_pass_through() {
        for p in ["/", "/a", "/a/b/", "/a/b.c", "/%20x", "/caf%C3%A9", "/ü"] {
            assert_eq!(n(p).unwrap(), p, "{p}");
        }
        assert!(matches!(normalise("/a/b"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn dot_segments_slashes_and_unreserved_escapes() {
        assert_eq!(n("/public/../private").unwrap(), "/private");
        assert_eq!(n("/public/%2e%2e/private").unwrap(), "/private");
        assert_eq!(n("/public/%2E%2E/private").unwrap(), "/private");
        assert_eq!(n("//private").unwrap(), "/private");
        assert_eq!(n("/a//b///c").unwrap(), "/a/b/c");
        assert_eq!(n("/a/./b/.").unwrap(), "/a/b/");
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
        assert_eq!(n("/a%3fb").unwrap(), "/a%3Fb");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
    }

    #[test]
    fn bypass_attempts_are_refused() {
        assert_eq!(
            n("/public%2F..%2Fprivate"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(n("/a%5Cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::Backslash));
        assert_eq!(n("/a%00b"), Err(PathError::Control));
        assert_eq!(n("/a\0b"), Err(PathError::Control));
        assert_eq!(n("/.."), Err(PathError::EscapesRoot));
        assert_eq!(n("/a/../../b"), Err(PathError::EscapesRoot));
        assert_eq!(n("/%2e%2e/etc"), Err(PathError::EscapesRoot));
        assert_eq!(n("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(n("/a%2"), Err(PathError::BadEncoding));
        assert_eq!(n("a/b"), Err(PathError::NotAbsolute));
    }

    /// Path-parameter confusion (the Tomcat/Spring `..;` class, as in CVE-2020-1957):
    /// `/public/..;/private` is `/private` to the app behind, so it is refused here.
    #[test]
    fn dot_segments_with_parameters_are_refused() {
        for p in [
            "/public/..;/private",
            "/public/..;jsessionid=x/private",
            "/public/.;/private",
            "/public/%2e%2e;/private",
            "/public/.%2e;x/private",
        ] {
            assert_eq!(n(p), Err(PathError::DotSegmentParameter), "{p}");
        }
        // Parameters on ordinary segments are names like any other.
        assert_eq!(n("/a;v=1/b").unwrap(), "/a;v=1/b");
        assert_eq!(n("/a/..x;/b").unwrap(), "/a/..x;/b");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for p in ["/x/%2e/y//z/../w", "/%41%42/./c", "/a/b/"] {
            let once = n(p).unwrap();
            assert_eq!(n(&once).unwrap(), once);
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Paths made of the pieces rule bypasses are made of.
    fn tricky_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("//"),
            Just("."),
            Just(".."),
            Just("a"),
            Just("b"),
            Just("%2e"),
            Just("%2E%2e"),
            Just("%2f"),
            Just("%5c"),
            Just("%41"),
            Just("%25"),
            Just("%00"),
            Just(";x"),
            Just("\\\\"),
            Just("é"),
            Just("%zz"),
            Just("~"),
            Just("%7E"),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|parts| format!("/{}", parts.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Normalising is idempotent, and a normal path has no dot segment, no empty
        /// segment, nothing refused: it cannot climb out of the root or around a rule.
        #[test]
        fn normal_paths_stay_normal_and_under_the_root(path in tricky_path()) {
            if let Ok(normal) = normalise(&path) {
                let again = normalise(&normal).expect("a normal path normalises");
                prop_assert_eq!(again.as_ref(), normal.as_ref());
                prop_assert!(matches!(again, Cow::Borrowed(_)), "already normal: {}", normal);
                prop_assert!(normal.starts_with('/'));
                let inner = normal.trim_start_matches('/').trim_end_matches('/');
                for segment in inner.split('/').filter(|_| !inner.is_empty()) {
                    prop_assert!(!segment.is_empty() && segment != "." && segment != "..", "{}", normal);
                }
                let upper = normal.to_ascii_uppercase();
                for refused in ["%2F", "%5C", "%00", "\\\\"] {
                    prop_assert!(!upper.contains(refused), "{}", normal);
                }
            }
        }

        /// Any input at all: an answer, never a panic.
        #[test]
        fn any_input_is_answered(path in any::<String>()) {
            let _ = normalise(&path);
        }
    }
}
