//! Keycloak's password policy language: `length(12) and digits(1) and lowerCase(1) and
//! upperCase(1) and specialChars(1) and notUsername and notEmail and passwordHistory(3) and
//! maxLength(64) and regexPattern(...) and hashAlgorithm(argon2) and hashIterations(n)`.
//! Parsed when set (an invalid policy is refused) and checked wherever a password is set;
//! a violation names the rule with Keycloak's message key and text.

use crate::crypto::password::{verify_password, Argon2Params, HashedPassword};
use crate::store::UserRecord;

#[derive(Debug, Clone)]
enum Rule {
    Length(usize),
    MaxLength(usize),
    Digits(usize),
    LowerCase(usize),
    UpperCase(usize),
    SpecialChars(usize),
    NotUsername,
    NotEmail,
    NotContainsUsername,
    History(usize),
    Regex(regex::Regex),
    HashAlgorithm,
    HashIterations(u32),
    /// Accepted and kept; expiry of passwords is not enforced yet.
    ForceExpiredPasswordChange,
}

/// A parsed policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// Which rule a password broke: Keycloak's message key and an English explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: &'static str,
    pub message: String,
}

fn count(password: &str, f: impl Fn(char) -> bool) -> usize {
    password.chars().filter(|c| f(*c)).count()
}

impl Policy {
    /// Parse a policy string; `None` or empty is no policy.
    pub fn parse(text: Option<&str>) -> Result<Policy, String> {
        let mut rules = Vec::new();
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Policy { rules });
        };
        for part in split_and(text) {
            let part = part.trim();
            let (name, arg) = match part.split_once('(') {
                Some((n, rest)) => {
                    let arg = rest
                        .strip_suffix(')')
                        .ok_or_else(|| format!("Invalid password policy: missing ')' in {part}"))?;
                    (n.trim(), Some(arg.trim()))
                }
                None => (part, None),
            };
            let number = |default: usize| -> Result<usize, String> {
                match arg {
                    None | Some("") => Ok(default),
                    Some(a) => a.parse().map_err(|_| {
                        format!("Invalid password policy: {name} needs a number, got {a}")
                    }),
                }
            };
            let rule = match name {
                "length" => Rule::Length(number(8)?),
                "maxLength" => Rule::MaxLength(number(64)?),
                "digits" => Rule::Digits(number(1)?),
                "lowerCase" => Rule::LowerCase(number(1)?),
                "upperCase" => Rule::UpperCase(number(1)?),
                "specialChars" => Rule::SpecialChars(number(1)?),
                "notUsername" => Rule::NotUsername,
                "notEmail" => Rule::NotEmail,
                "notContainsUsername" => Rule::NotContainsUsername,
                "passwordHistory" => Rule::History(number(3)?),
                "regexPattern" => Rule::Regex(
                    regex::Regex::new(arg.unwrap_or(""))
                        .map_err(|e| format!("Invalid password policy: regexPattern: {e}"))?,
                ),
                "hashAlgorithm" => match arg {
                    Some("argon2") | None => Rule::HashAlgorithm,
                    Some(other) => {
                        return Err(format!(
                        "Invalid password policy: hashAlgorithm {other} is not supported (argon2)"
                    ))
                    }
                },
                "hashIterations" => Rule::HashIterations(number(2)?.clamp(1, 100) as u32),
                "forceExpiredPasswordChange" => {
                    number(365)?;
                    Rule::ForceExpiredPasswordChange
                }
                other => return Err(format!("Invalid password policy: unknown policy {other}")),
            };
            rules.push(rule);
        }
        Ok(Policy { rules })
    }

    /// How many previous passwords may not be reused (0: none remembered).
    pub fn history(&self) -> usize {
        self.rules
            .iter()
            .find_map(|r| {
                if let Rule::History(n) = r {
                    Some(*n)
                } else {
                    None
                }
            })
            .unwrap_or(0)
    }

    /// The argon2id parameters new hashes use (`hashIterations` applies).
    pub fn argon2_params(&self) -> Argon2Params {
        let mut p = Argon2Params::default();
        for r in &self.rules {
            if let Rule::HashIterations(n) = r {
                p.iterations = *n;
            }
        }
        p
    }

    /// Check a new password. `previous` are the user's current and remembered hashes
    /// (hashing work: call off the async runtime when `passwordHistory` is set).
    pub fn check(
        &self,
        password: &str,
        user: &UserRecord,
        previous: &[HashedPassword],
    ) -> Result<(), Violation> {
        let v = |key: &'static str, message: String| Err(Violation { key, message });
        for rule in &self.rules {
            match rule {
                Rule::Length(n) if password.chars().count() < *n => {
                    return v(
                        "invalidPasswordMinLengthMessage",
                        format!("Invalid password: minimum length {n}."),
                    )
                }
                Rule::MaxLength(n) if password.chars().count() > *n => {
                    return v(
                        "invalidPasswordMaxLengthMessage",
                        format!("Invalid password: maximum length {n}."),
                    )
                }
                Rule::Digits(n) if count(password, |c| c.is_ascii_digit()) < *n => {
                    return v(
                        "invalidPasswordMinDigitsMessage",
                        format!("Invalid password: must contain at least {n} numerical digits."),
                    )
                }
                Rule::LowerCase(n) if count(password, char::is_lowercase) < *n => {
                    return v(
                        "invalidPasswordMinLowerCaseCharsMessage",
                        format!(
                            "Invalid password: must contain at least {n} lower case characters."
                        ),
                    )
                }
                Rule::UpperCase(n) if count(password, char::is_uppercase) < *n => {
                    return v(
                        "invalidPasswordMinUpperCaseCharsMessage",
                        format!(
                            "Invalid password: must contain at least {n} upper case characters."
                        ),
                    )
                }
                Rule::SpecialChars(n)
                    if count(password, |c| !c.is_alphanumeric() && !c.is_whitespace()) < *n =>
                {
                    return v(
                        "invalidPasswordMinSpecialCharsMessage",
                        format!("Invalid password: must contain at least {n} special characters."),
                    )
                }
                Rule::NotUsername if password.eq_ignore_ascii_case(&user.username) => {
                    return v(
                        "invalidPasswordNotUsernameMessage",
                        "Invalid password: must not be equal to the username.".into(),
                    )
                }
                Rule::NotContainsUsername
                    if !user.username.is_empty()
                        && password
                            .to_lowercase()
                            .contains(&user.username.to_lowercase()) =>
                {
                    return v(
                        "invalidPasswordNotContainsUsernameMessage",
                        "Invalid password: Can not contain the username.".into(),
                    )
                }
                Rule::NotEmail
                    if user
                        .email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(password)) =>
                {
                    return v(
                        "invalidPasswordNotEmailMessage",
                        "Invalid password: must not be equal to the email.".into(),
                    )
                }
                Rule::Regex(re) if !re.is_match(password) => {
                    return v(
                        "invalidPasswordRegexPatternMessage",
                        "Invalid password: fails to match regex pattern(s).".into(),
                    )
                }
                Rule::History(n)
                    if previous
                        .iter()
                        .take(*n)
                        .any(|h| verify_password(password, h).unwrap_or(false)) =>
                {
                    return v(
                        "invalidPasswordHistoryMessage",
                        format!(
                            "Invalid password: must not be equal to any of last {n} passwords."
                        ),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Split on the ` and ` separators that are not inside parentheses (a regex may contain "and").
fn split_and(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if depth == 0 && rest.starts_with(" and ") {
            parts.push(std::mem::take(&mut current));
            rest = &rest[5..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        current.push(c);
        rest = &rest[c.len_utf8()..];
    }
    parts.push(current);
    parts
}

/// The kind of stored credentials that remember earlier passwords for `passwordHistory`.
pub const HISTORY_KIND: &str = "password-history";

/// A user's current password hash followed by remembered ones, newest first.
pub fn previous_hashes(
    read: &crate::store::Read,
    realm: &str,
    user: &str,
) -> Result<Vec<HashedPassword>, crate::store::StoreError> {
    let mut creds: Vec<crate::store::CredentialRecord> = read
        .credentials(realm, user)?
        .into_iter()
        .filter(|c| c.kind == "password" || c.kind == HISTORY_KIND)
        .collect();
    creds.sort_by_key(|c| std::cmp::Reverse((c.kind == "password", c.created_date)));
    Ok(creds
        .into_iter()
        .map(|c| HashedPassword {
            secret_data: c.secret_data,
            credential_data: c.credential_data,
        })
        .collect())
}

/// A new password credential holding `hashed`, created at `now_ms` (the crypto layer
/// hashes; the store's record is built here).
pub fn password_credential(hashed: &HashedPassword, now_ms: i64) -> crate::store::CredentialRecord {
    crate::store::CredentialRecord {
        id: crate::crypto::random_id(),
        kind: "password".into(),
        created_date: now_ms,
        secret_data: hashed.secret_data.clone(),
        credential_data: hashed.credential_data.clone(),
        priority: 10,
        ..Default::default()
    }
}

/// Replace a user's password credential with `new`, keeping the old one as history when
/// the realm remembers `history` passwords (and dropping what is beyond that).
pub fn replace_password(
    w: &mut crate::store::Write,
    realm: &str,
    user: &str,
    new: &crate::store::CredentialRecord,
    history: usize,
) -> Result<(), crate::store::StoreError> {
    let mut remembered = Vec::new();
    for c in w.credentials(realm, user)? {
        if c.kind == "password" {
            w.delete_credential(realm, user, &c.id)?;
            if history > 1 {
                let mut old = c.clone();
                old.kind = HISTORY_KIND.into();
                w.put_credential(realm, user, &old)?;
                remembered.push(old);
            }
        } else if c.kind == HISTORY_KIND {
            remembered.push(c);
        }
    }
    // The current password counts as one of the `history` remembered.
    remembered.sort_by_key(|c| std::cmp::Reverse(c.created_date));
    for old in remembered.iter().skip(history.saturating_sub(1)) {
        w.delete_credential(realm, user, &old.id)?;
    }
    w.put_credential(realm, user, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            ..Default::default()
        }
    }

    #[test]
    fn keycloak_policy_strings_parse_and_check() {
        let p = Policy::parse(Some(
            "length(12) and digits(1) and lowerCase(1) and upperCase(1) and specialChars(1) and notUsername and notEmail and passwordHistory(3) and maxLength(64) and regexPattern(^[^ ]+$) and hashAlgorithm(argon2) and hashIterations(3)",
        ))
        .unwrap();
        assert_eq!(p.history(), 3);
        assert_eq!(p.argon2_params().iterations, 3);
        let u = user();
        assert_eq!(
            p.check("Short1!", &u, &[]).unwrap_err().key,
            "invalidPasswordMinLengthMessage"
        );
        assert_eq!(
            p.check("nodigitsHere!!", &u, &[]).unwrap_err().key,
            "invalidPasswordMinDigitsMessage"
        );
        assert_eq!(
            p.check("NOLOWER123456!", &u, &[]).unwrap_err().key,
            "invalidPasswordMinLowerCaseCharsMessage"
        );
        assert_eq!(
            p.check("noupper123456!", &u, &[]).unwrap_err().key,
            "invalidPasswordMinUpperCaseCharsMessage"
        );
        assert_eq!(
            p.check("NoSpecial12345", &u, &[]).unwrap_err().key,
            "invalidPasswordMinSpecialCharsMessage"
        );
        assert_eq!(
            p.check("Has Space 123!", &u, &[]).unwrap_err().key,
            "invalidPasswordRegexPatternMessage"
        );
        assert!(p.check("Good-Passw0rd!", &u, &[]).is_ok());
        let old = crate::crypto::password::hash_password(
            "Good-Passw0rd!",
            &Argon2Params {
                memory_kib: 1024,
                iterations: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.check("Good-Passw0rd!", &u, &[old]).unwrap_err().key,
            "invalidPasswordHistoryMessage"
        );
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(Policy::parse(Some("length(abc)")).is_err());
        assert!(Policy::parse(Some("length(8) and bogus(1)")).is_err());
        assert!(Policy::parse(Some("regexPattern([)")).is_err());
        assert!(Policy::parse(Some("hashAlgorithm(md5)")).is_err());
        assert!(Policy::parse(Some("length(8")).is_err());
        assert!(Policy::parse(None)
            .unwrap()
            .check("x", &user(), &[])
            .is_ok());
        assert!(
            Policy::parse(Some("regexPattern(a and b)")).is_ok(),
            "and inside parentheses"
        );
        assert_eq!(
            Policy::parse(Some("notUsername"))
                .unwrap()
                .check("ALICE", &user(), &[])
                .unwrap_err()
                .key,
            "invalidPasswordNotUsernameMessage"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn policy_text() -> impl Strategy<Value = String> {
        let rule = prop_oneof![
            Just("length(8)"),
            Just("length(-1)"),
            Just("length(x)"),
            Just("maxLength(64)"),
            Just("digits(2)"),
            Just("upperCase"),
            Just("specialChars(1)"),
            Just("notUsername"),
            Just("notEmail"),
            Just("passwordHistory(3)"),
            Just("hashIterations(27500)"),
            Just("regexPattern([a-z]+)"),
            Just("regexPattern(()"),
            Just("unknown(1)"),
            Just("("),
            Just("length(99999999999999999999)"),
        ];
        proptest::collection::vec(rule, 0..6).prop_map(|r| r.join(" and "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        /// A policy string parses or is refused with a message; a parsed policy checks any
        /// password without panicking.
        #[test]
        fn policies_parse_or_say_why(text in policy_text(), password in any::<String>()) {
            match Policy::parse(Some(&text)) {
                Ok(policy) => {
                    let user = UserRecord { username: "alice".into(), ..Default::default() };
                    let _ = policy.check(&password, &user, &[]);
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }
    }
}
