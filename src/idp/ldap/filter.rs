//! Search filters and names: an administrator's filter is checked when saved, attribute
//! names are checked before they go into a filter, and values are escaped (RFC 4515 in
//! filters, RFC 4514 in DNs) so what a user types can never widen a search.

pub use ldap3::{dn_escape, ldap_escape};

/// Whether an administrator's search filter is one parenthesised, balanced filter.
pub fn valid_filter(f: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                // Closed before the end: `(a=1)(b=2)` or `(a=1))(|(b=2)`.
                if depth < 0 || (depth == 0 && i + 1 != f.len()) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && f.starts_with('(') && f.ends_with(')')
}

/// Whether an attribute name is one (letters, digits, `-`, `;`, `.`), safe in a filter.
pub fn valid_attribute(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.'))
}

/// `(attr=value)` with the value escaped.
pub fn equals(attribute: &str, value: &str) -> String {
    format!("({attribute}={})", ldap_escape(value))
}

/// `(&(objectClass=a)(objectClass=b)<custom><extra>)`; an invalid custom filter matches
/// nobody rather than everybody.
pub fn and_classes(classes: &[String], custom: Option<&str>, extra: &str) -> String {
    let mut f = String::from("(&");
    for class in classes {
        f.push_str(&equals("objectClass", class));
    }
    if let Some(custom) = custom {
        if valid_filter(custom) {
            f.push_str(custom);
        } else {
            f.push_str("(!(objectClass=*))");
        }
    }
    f.push_str(extra);
    f.push(')');
    f
}

/// The RDNs of `dn`, split at unescaped commas, each trimmed (`cn=a\,b,ou=x` is two).
pub fn split_dn(dn: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(dn[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(dn[start..].trim());
    parts
}

/// The attribute and unescaped value of the first RDN of `dn` (`cn=Staff,ou=groups` →
/// (`cn`, `Staff`)); `None` for a multi-valued RDN or a malformed one.
pub fn rdn(dn: &str) -> Option<(String, String)> {
    let first = *split_dn(dn).first()?;
    let (attribute, raw) = first.split_once('=')?;
    let mut bytes = Vec::new();
    let mut chars = raw.chars();
    let mut buf = [0; 4];
    while let Some(c) = chars.next() {
        match c {
            // Several values (`cn=a+sn=b`): not a group's name.
            '+' => return None,
            '\\' => {
                let a = chars.next()?;
                if a.is_ascii_hexdigit() {
                    let b = chars.next()?;
                    bytes.push(u8::from_str_radix(&format!("{a}{b}"), 16).ok()?);
                } else {
                    bytes.extend_from_slice(a.encode_utf8(&mut buf).as_bytes());
                }
            }
            c => bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    let value = String::from_utf8(bytes).ok()?.trim().to_string();
    (!value.is_empty()).then(|| (attribute.trim().to_string(), value))
}

/// Whether `dn` lies under `base` (RDNs compared without case, escapes respected).
pub fn under(dn: &str, base: &str) -> bool {
    let norm = |s: &str| {
        split_dn(s)
            .into_iter()
            .map(|p| p.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let (d, b) = (norm(dn), norm(base));
    d.len() > b.len() && d[d.len() - b.len()..] == b[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_names() {
        assert!(valid_filter("(memberOf=cn=staff,dc=example,dc=org)"));
        assert!(valid_filter("(|(a=1)(b=2))"));
        for bad in ["memberOf=x", "(a=1)(b=2)", "(a=1))(|(b=2)", "((a=1)", ""] {
            assert!(!valid_filter(bad), "{bad}");
        }
        assert!(valid_attribute("sAMAccountName") && !valid_attribute("uid)(x"));
        assert_eq!(equals("uid", "*)(uid=*"), "(uid=\\2a\\29\\28uid=\\2a)");
        assert_eq!(equals("uid", "a\0b"), "(uid=a\\00b)");
        assert_eq!(
            and_classes(&["person".into()], Some("(a=1))(|(b=2)"), "(uid=x)"),
            "(&(objectClass=person)(!(objectClass=*))(uid=x))"
        );
        assert_eq!(dn_escape("a,b+c"), "a\\2cb\\2bc");
    }

    #[test]
    fn rdns_and_subtrees() {
        let r = |dn: &str| rdn(dn).map(|(a, v)| format!("{a}:{v}"));
        assert_eq!(r("cn=Staff,ou=groups,dc=x").as_deref(), Some("cn:Staff"));
        assert_eq!(r("cn=a\\,b,ou=g").as_deref(), Some("cn:a,b"));
        assert_eq!(r("cn=a\\2cb,ou=g").as_deref(), Some("cn:a,b"));
        assert_eq!(
            r("cn=J\\C3\\BCrg,ou=g").as_deref(),
            Some("cn:Jürg"),
            "UTF-8 in hex pairs"
        );
        assert_eq!(r("cn=,ou=g"), None);
        assert_eq!(r("cn=a+sn=b,ou=g"), None);
        assert!(under("cn=Staff,ou=groups,dc=x", "ou=Groups, dc=x"));
        assert!(!under("ou=groups,dc=x", "ou=groups,dc=x"));
        assert!(!under("cn=a,ou=people,dc=x", "ou=groups,dc=x"));
        // An escaped comma does not make a DN look like it is under another.
        assert!(!under("cn=x\\,ou=groups,dc=x", "ou=groups,dc=x"));
        assert_eq!(split_dn("cn=x\\,y, ou=g"), ["cn=x\\,y", "ou=g"]);
    }
}

/// `secs` since the epoch as LDAP's GeneralizedTime (`20261203141500Z`), for
/// `modifyTimestamp>=` filters.
pub fn generalized_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn generalized_time() {
        assert_eq!(super::generalized_time(0), "19700101000000Z");
        assert_eq!(super::generalized_time(951_782_400), "20000229000000Z");
        assert_eq!(super::generalized_time(1_796_307_300), "20261203141500Z");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The value of an `equals` filter read back (RFC 4515 `\\XX` pairs), `None` if the
    /// escaped form holds a character that would end or widen the filter.
    fn unescape(escaped: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let bytes = escaped.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'(' | b')' | b'*' | 0 => return None,
                b'\\' => {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        Some(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a user types as a username, the filter stays one filter with one
        /// assertion on the username attribute, and its value reads back as typed.
        #[test]
        fn usernames_never_change_the_filter(name in any::<String>()) {
            let f = equals("uid", &name);
            prop_assert!(valid_filter(&f), "{}", f);
            let inner = f.strip_prefix("(uid=").and_then(|r| r.strip_suffix(')'));
            let inner = inner.expect("one assertion");
            prop_assert_eq!(unescape(inner), Some(name.as_bytes().to_vec()));
            let full = and_classes(&["inetOrgPerson".into()], Some("(ou=staff)"), &f);
            prop_assert!(valid_filter(&full), "{}", full);
        }

        /// A DN value escaped by `dn_escape` is one RDN whose value reads back as given.
        #[test]
        fn dn_values_stay_one_rdn(value in "[^\\x00]{1,40}") {
            let trimmed = value.trim();
            prop_assume!(!trimmed.is_empty() && trimmed == value);
            let dn = format!("uid={},ou=people,dc=x", dn_escape(value.as_str()));
            prop_assert_eq!(split_dn(&dn).len(), 3, "{}", dn);
            prop_assert_eq!(rdn(&dn), Some(("uid".to_string(), value.clone())));
            prop_assert!(under(&dn, "ou=people,dc=x"));
        }

        /// The checks of an administrator's filter never panic and accept only balanced,
        /// parenthesised text.
        #[test]
        fn filter_checks_are_total(f in "[()a-z=*&|!\\\\]{0,30}") {
            if valid_filter(&f) {
                prop_assert!(f.starts_with('(') && f.ends_with(')'));
                prop_assert_eq!(f.matches('(').count(), f.matches(')').count());
            }
        }
    }
}
