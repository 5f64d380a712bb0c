//! TOTP two-factor (RFC 6238) with the realm's OTP policy (`otpPolicyAlgorithm`,
//! `otpPolicyDigits`, `otpPolicyPeriod`, `otpPolicyLookAheadWindow`), stored in Keycloak's
//! credential layout: `secretData = {"value": secret}`, `credentialData = {"subType":
//! "totp", "digits", "counter", "period", "algorithm"}`. A code is accepted once.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::Rng;
use serde_json::json;
use totp_rs::{Algorithm, Builder, Secret};

use crate::store::{CredentialRecord, RealmRecord};

/// The OTP settings of a realm.
#[derive(Debug, Clone, Copy)]
pub struct OtpPolicy {
    pub algorithm: &'static str,
    pub digits: u8,
    pub period: u64,
    pub look_ahead: u16,
}

impl OtpPolicy {
    pub fn of(realm: &RealmRecord) -> OtpPolicy {
        OtpPolicy {
            algorithm: match realm.otp_policy_algorithm.as_str() {
                "HmacSHA256" => "HmacSHA256",
                "HmacSHA512" => "HmacSHA512",
                _ => "HmacSHA1",
            },
            digits: if realm.otp_policy_digits == 8 { 8 } else { 6 },
            period: realm.otp_policy_period.clamp(10, 300) as u64,
            look_ahead: realm.otp_policy_look_ahead_window.clamp(0, 10) as u16,
        }
    }

    fn totp_algorithm(&self) -> Algorithm {
        match self.algorithm {
            "HmacSHA256" => Algorithm::SHA256,
            "HmacSHA512" => Algorithm::SHA512,
            _ => Algorithm::SHA1,
        }
    }
}

/// A new secret: 20 random alphanumeric characters, whose bytes are the HMAC key (as
/// Keycloak generates them).
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The key as users type it into an authenticator app (base32 of the secret's bytes).
pub fn base32(secret: &str) -> String {
    Secret::from(secret.as_bytes().to_vec()).to_base32()
}

fn totp(policy: &OtpPolicy, secret: &str) -> Option<totp_rs::Totp> {
    Builder::new()
        .with_algorithm(policy.totp_algorithm())
        .with_digits(policy.digits)
        .with_skew(policy.look_ahead)
        .with_step_duration(policy.period)
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .ok()
}

/// The code for `time` (tests and the configure page's self-check).
pub fn code(policy: &OtpPolicy, secret: &str, time_secs: u64) -> Option<String> {
    totp(policy, secret).map(|t| t.generate(time_secs).to_string())
}

/// The time step a code is valid for (within the look-ahead window), if any.
///
/// Clients that send the code as a number (python-keycloak's `totp: int`) lose its leading
/// zeros; they are put back.
pub fn verify(policy: &OtpPolicy, secret: &str, code: &str, time_secs: u64) -> Option<u64> {
    let code = code.trim();
    let digits = usize::from(policy.digits);
    if code.is_empty() || code.len() > digits || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let code = format!("{code:0>digits$}");
    totp(policy, secret)?.check(&code, time_secs)
}

/// How long a used code's time step is remembered: longer than any code stays valid.
const USED_CODE_SECS: i64 = 900;

/// Record that a credential's code for `step` was used; `false` if it already was. In the
/// store, so a code is accepted once by the whole cluster.
pub fn first_use(
    w: &mut crate::store::Write,
    realm_id: &str,
    credential_id: &str,
    step: u64,
    now_secs: i64,
) -> Result<bool, crate::store::StoreError> {
    w.use_once(
        realm_id,
        &format!("otp:{credential_id}:{step}"),
        now_secs + USED_CODE_SECS,
    )
}

/// `otpauth://totp/...` for the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str, policy: &OtpPolicy) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let algorithm = match policy.algorithm {
        "HmacSHA256" => "SHA256",
        "HmacSHA512" => "SHA512",
        _ => "SHA1",
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&digits={}&algorithm={algorithm}&issuer={}&period={}",
        enc(issuer),
        enc(account),
        base32(secret),
        policy.digits,
        enc(issuer),
        policy.period
    )
}

/// A QR code of `text` as an SVG data URI (no scripts, works under our CSP).
pub fn qr_data_uri(text: &str) -> Option<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    // One rectangle per horizontal run of dark modules.
    for y in 0..qr.size() {
        let mut x = 0;
        while x < qr.size() {
            if !qr.get_module(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < qr.size() && qr.get_module(x, y) {
                x += 1;
            }
            let run = x - start;
            path.push_str(&format!(
                "M{},{}h{run}v1h-{run}z",
                start + border,
                y + border
            ));
        }
    }
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    );
    Some(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg)
    ))
}

/// The stored credential of a confirmed secret.
pub fn credential(
    secret: &str,
    label: Option<String>,
    policy: &OtpPolicy,
    now_ms: i64,
) -> CredentialRecord {
    CredentialRecord {
        id: crate::crypto::random_id(),
        kind: "otp".into(),
        user_label: label.filter(|l| !l.trim().is_empty()),
        created_date: now_ms,
        secret_data: json!({"value": secret}).to_string(),
        credential_data: json!({
            "subType": "totp", "digits": policy.digits, "counter": 0, "period": policy.period,
            "algorithm": policy.algorithm,
        })
        .to_string(),
        priority: 20,
        temporary: false,
    }
}

/// Whether `code` is right for one of a user's OTP credentials (it is then used up, in
/// the same write).
pub fn check(
    w: &mut crate::store::Write,
    realm_id: &str,
    credentials: &[CredentialRecord],
    policy: &OtpPolicy,
    code: &str,
    time_secs: u64,
) -> Result<bool, crate::store::StoreError> {
    for c in credentials.iter().filter(|c| c.kind == "otp") {
        let step = secret_of(c).and_then(|secret| verify(policy, &secret, code, time_secs));
        if let Some(step) = step {
            return first_use(w, realm_id, &c.id, step, time_secs as i64);
        }
    }
    Ok(false)
}

/// The secret of a stored OTP credential.
pub fn secret_of(credential: &CredentialRecord) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&credential.secret_data).ok()?;
    v.get("value")?.as_str().map(String::from)
}

/// Whether the realm requires an authenticator of every user (realm attribute
/// `otpRequired` = `"true"`): users without one configure it at their next login.
pub fn required_by(realm: &crate::store::RealmRecord) -> bool {
    realm
        .attributes
        .get("otpRequired")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vectors() {
        // RFC 6238 appendix B, 8 digits, 30 s, the ASCII secrets of the RFC.
        let cases = [
            ("HmacSHA1", "12345678901234567890", 59, "94287082"),
            ("HmacSHA1", "12345678901234567890", 1111111109, "07081804"),
            (
                "HmacSHA256",
                "12345678901234567890123456789012",
                59,
                "46119246",
            ),
            (
                "HmacSHA512",
                "1234567890123456789012345678901234567890123456789012345678901234",
                59,
                "90693936",
            ),
            ("HmacSHA1", "12345678901234567890", 20000000000, "65353130"),
        ];
        for (algorithm, secret, time, expected) in cases {
            let policy = OtpPolicy {
                algorithm,
                digits: 8,
                period: 30,
                look_ahead: 0,
            };
            assert_eq!(
                code(&policy, secret, time).unwrap(),
                expected,
                "{algorithm} at {time}"
            );
            assert!(verify(&policy, secret, expected, time).is_some());
        }
        // "07081804" sent as the number 7081804.
        let policy = OtpPolicy {
            algorithm: "HmacSHA1",
            digits: 8,
            period: 30,
            look_ahead: 0,
        };
        assert!(verify(&policy, "12345678901234567890", "7081804", 1111111109).is_some());
        assert!(verify(&policy, "12345678901234567890", "", 1111111109).is_none());
        assert!(verify(&policy, "12345678901234567890", "107081804", 1111111109).is_none());
    }

    #[test]
    fn window_replay_and_format() {
        let policy = OtpPolicy {
            algorithm: "HmacSHA1",
            digits: 6,
            period: 30,
            look_ahead: 1,
        };
        let secret = new_secret();
        let now = 1_700_000_000;
        let c = code(&policy, &secret, now).unwrap();
        assert!(
            verify(&policy, &secret, &c, now + 30).is_some(),
            "one step of look-ahead"
        );
        assert!(verify(&policy, &secret, &c, now + 90).is_none());
        assert!(verify(&policy, &secret, "12345", now).is_none());
        assert!(verify(&policy, &secret, "abcdef", now).is_none());
        let step = verify(&policy, &secret, &c, now).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let realm = crate::store::RealmRecord {
            id: "r".into(),
            name: "r".into(),
            ..Default::default()
        };
        store.write(|w| w.put_realm(&realm)).unwrap();
        let used = |at: i64| {
            store
                .write(|w| first_use(w, "r", "cred-x", step, at))
                .unwrap()
        };
        assert!(used(now as i64));
        assert!(!used(now as i64), "a code is accepted once");
        // Once its time is long past, the record is purged; the code could not verify then.
        let purge_at = (now as i64 + USED_CODE_SECS + 1) * 1000;
        assert!(store.write(|w| w.purge_expired(purge_at)).unwrap() >= 1);
        assert!(otpauth_uri("My Realm", "alice", &secret, &policy)
            .starts_with("otpauth://totp/My%20Realm:alice?secret="));
        assert!(qr_data_uri("otpauth://totp/x")
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
    }
}
