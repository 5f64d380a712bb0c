//! JSON Web Tokens (JWS compact form) signed and verified with aws-lc-rs (ring's API on
//! AWS-LC, whose RSA signing is about twice as fast as ring's on x86-64). RS256 and ES256 for
//! our tokens, HS256 for `client_secret_jwt`.
//!
//! The algorithm is always taken from the key, never from the token: a token whose header
//! names another algorithm than its key's is rejected, which rules out `alg: none` and
//! HMAC-with-the-public-key confusion. Claims are checked by the caller (issuer, audience,
//! expiry) with its own clock.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Signature algorithms of realm keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    ES256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "RS256" => Some(Algorithm::RS256),
            "ES256" => Some(Algorithm::ES256),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("invalid signature")]
    BadSignature,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid key: {0}")]
    Key(String),
    #[error("signing failed")]
    Signing,
}

/// The JOSE header fields we read.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
}

enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs tokens. Cheap to share (`Arc`).
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    key: PrivateKey,
    /// The base64url header, computed once: it never changes for a key.
    header_b64: String,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed P-256 point (0x04 || x || y).
    Ec { point: Vec<u8> },
}

/// A public key that verifies tokens, and its JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub kid: String,
    pub algorithm: Algorithm,
    key: PublicKey,
}

/// Generate a new private key; returns its PKCS#8 DER. RSA keys are 2048 bits.
pub fn generate_pkcs8(algorithm: Algorithm) -> Result<Vec<u8>, JwtError> {
    match algorithm {
        Algorithm::ES256 => {
            let rng = SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map(|d| d.as_ref().to_vec())
                .map_err(|e| JwtError::Key(e.to_string()))
        }
        Algorithm::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            // Generated once per key with RustCrypto; signing uses AWS-LC.
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| JwtError::Key(e.to_string()))?;
            key.to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| JwtError::Key(e.to_string()))
        }
    }
}

impl SigningKey {
    /// Load a PKCS#8 DER private key.
    pub fn from_pkcs8(kid: &str, algorithm: Algorithm, der: &[u8]) -> Result<SigningKey, JwtError> {
        let (key, public) = match algorithm {
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| JwtError::Key(e.to_string()))?;
                use aws_lc_rs::rsa::PublicKeyComponents;
                let c: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
                (PrivateKey::Rsa(pair), PublicKey::Rsa { n: c.n, e: c.e })
            }
            Algorithm::ES256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(|e| JwtError::Key(e.to_string()))?;
                let point = pair.public_key().as_ref().to_vec();
                (PrivateKey::Ec(pair), PublicKey::Ec { point })
            }
        };
        let header = json!({"alg": algorithm.as_str(), "typ": "JWT", "kid": kid});
        Ok(SigningKey {
            kid: kid.to_string(),
            algorithm,
            key,
            header_b64: B64.encode(header.to_string()),
            public: VerifyingKey {
                kid: kid.to_string(),
                algorithm,
                key: public,
            },
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Sign `claims` into a compact JWS.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, JwtError> {
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Signing)?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 400);
        token.push_str(&self.header_b64);
        token.push('.');
        B64.encode_string(&payload, &mut token);
        let rng = SystemRandom::new();
        let signature = match &self.key {
            PrivateKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    token.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| JwtError::Signing)?;
                sig
            }
            PrivateKey::Ec(pair) => pair
                .sign(&rng, token.as_bytes())
                .map_err(|_| JwtError::Signing)?
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        B64.encode_string(&signature, &mut token);
        Ok(token)
    }
}

impl VerifyingKey {
    /// A public key from a JWK (`kty` RSA or EC P-256); the algorithm follows the key type.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<VerifyingKey, JwtError> {
        let field = |name: &str| -> Result<Vec<u8>, JwtError> {
            let text = jwk
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| JwtError::Key(format!("JWK without {name}")))?;
            B64.decode(text.trim_end_matches('='))
                .map_err(|_| JwtError::Key(format!("JWK {name} is not base64url")))
        };
        let kid = jwk
            .get("kid")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        match jwk.get("kty").and_then(|v| v.as_str()) {
            Some("RSA") => Ok(VerifyingKey {
                kid,
                algorithm: Algorithm::RS256,
                key: PublicKey::Rsa {
                    n: strip_leading_zeros(field("n")?),
                    e: strip_leading_zeros(field("e")?),
                },
            }),
            Some("EC") if jwk.get("crv").and_then(|v| v.as_str()) == Some("P-256") => {
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwtError::Key("P-256 coordinates must be 32 bytes".into()));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(VerifyingKey {
                    kid,
                    algorithm: Algorithm::ES256,
                    key: PublicKey::Ec { point },
                })
            }
            _ => Err(JwtError::Key(
                "unsupported JWK (RSA or EC P-256 only)".into(),
            )),
        }
    }

    /// A public key from a SubjectPublicKeyInfo DER (RSA or P-256).
    pub fn from_spki_der(kid: &str, der: &[u8]) -> Result<VerifyingKey, JwtError> {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        if let Ok(rsa) = rsa::RsaPublicKey::from_public_key_der(der) {
            return Ok(VerifyingKey {
                kid: kid.to_string(),
                algorithm: Algorithm::RS256,
                key: PublicKey::Rsa {
                    n: rsa.n().to_bytes_be(),
                    e: rsa.e().to_bytes_be(),
                },
            });
        }
        if der.len() == EC_SPKI_PREFIX.len() + 65 && der.starts_with(&EC_SPKI_PREFIX) {
            return Ok(VerifyingKey {
                kid: kid.to_string(),
                algorithm: Algorithm::ES256,
                key: PublicKey::Ec {
                    point: der[EC_SPKI_PREFIX.len()..].to_vec(),
                },
            });
        }
        Err(JwtError::Key(
            "unsupported public key (RSA or EC P-256 only)".into(),
        ))
    }

    /// The key as a JWK (what `/certs` publishes), with Keycloak's fields.
    pub fn jwk(&self) -> serde_json::Value {
        match &self.key {
            PublicKey::Rsa { n, e } => json!({
                "kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                "n": B64.encode(n), "e": B64.encode(e),
            }),
            PublicKey::Ec { point } => json!({
                "kid": self.kid, "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256",
                "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
            }),
        }
    }

    /// The SubjectPublicKeyInfo DER, base64 (Keycloak's realm `public_key` field).
    pub fn spki_base64(&self) -> String {
        use base64::engine::general_purpose::STANDARD;
        match &self.key {
            PublicKey::Rsa { n, e } => {
                use rsa::pkcs8::EncodePublicKey;
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                );
                key.ok()
                    .and_then(|k| k.to_public_key_der().ok())
                    .map(|d| STANDARD.encode(d.as_bytes()))
                    .unwrap_or_default()
            }
            PublicKey::Ec { point } => {
                let mut der = EC_SPKI_PREFIX.to_vec();
                der.extend_from_slice(point);
                STANDARD.encode(der)
            }
        }
    }

    /// Verify the signature of `token` with this key and return its claims.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, JwtError> {
        let (header, signing_input, signature, payload) = split(token)?;
        if header.alg != self.algorithm.as_str() {
            return Err(JwtError::AlgorithmMismatch);
        }
        let ok = match &self.key {
            PublicKey::Rsa { n, e } => aws_lc_rs::rsa::PublicKeyComponents { n, e }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    signing_input.as_bytes(),
                    &signature,
                )
                .is_ok(),
            PublicKey::Ec { point } => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signing_input.as_bytes(), &signature)
                    .is_ok()
            }
        };
        if !ok {
            return Err(JwtError::BadSignature);
        }
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
    }
}

/// SPKI prefix of an uncompressed P-256 key (id-ecPublicKey, prime256v1).
const EC_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    while v.len() > 1 && v[0] == 0 {
        v.remove(0);
    }
    v
}

/// Read a token's header without verifying anything (to find its `kid`).
pub fn decode_header(token: &str) -> Result<Header, JwtError> {
    let header = token.split('.').next().ok_or(JwtError::Malformed)?;
    let bytes = B64.decode(header).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Read a token's claims without verifying the signature. Only for tokens whose integrity
/// does not matter (e.g. an `id_token_hint` used to pick a session that is then checked).
pub fn decode_unverified<T: DeserializeOwned>(token: &str) -> Result<T, JwtError> {
    let (_, _, _, payload) = split(token)?;
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
}

/// Verify an HS256 token with a shared secret (`client_secret_jwt`).
pub fn verify_hs256<T: DeserializeOwned>(token: &str, secret: &[u8]) -> Result<T, JwtError> {
    let (header, signing_input, signature, payload) = split(token)?;
    if header.alg != "HS256" {
        return Err(JwtError::AlgorithmMismatch);
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::verify(&key, signing_input.as_bytes(), &signature)
        .map_err(|_| JwtError::BadSignature)?;
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
}

/// Sign HS256 (tests and clients of ours that authenticate with `client_secret_jwt`).
pub fn sign_hs256<T: Serialize>(claims: &T, secret: &[u8]) -> Result<String, JwtError> {
    let header = B64.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let payload = B64.encode(serde_json::to_vec(claims).map_err(|_| JwtError::Signing)?);
    let input = format!("{header}.{payload}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    Ok(format!("{input}.{}", B64.encode(tag.as_ref())))
}

type Parts<'a> = (Header, &'a str, Vec<u8>, Vec<u8>);

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let first = dots.next().ok_or(JwtError::Malformed)?;
    let second = dots.next().ok_or(JwtError::Malformed)?;
    if dots.next().is_some() {
        return Err(JwtError::Malformed);
    }
    let header_bytes = B64
        .decode(&token[..first])
        .map_err(|_| JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Malformed)?;
    let payload = B64
        .decode(&token[first + 1..second])
        .map_err(|_| JwtError::Malformed)?;
    let signature = B64
        .decode(&token[second + 1..])
        .map_err(|_| JwtError::Malformed)?;
    Ok((header, &token[..second], signature, payload))
}

/// A shared signing key.
pub type SharedSigningKey = Arc<SigningKey>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn key(alg: Algorithm) -> SigningKey {
        SigningKey::from_pkcs8("kid-1", alg, &generate_pkcs8(alg).unwrap()).unwrap()
    }

    #[test]
    fn sign_and_verify_both_algorithms() {
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let k = key(alg);
            let token = k.sign(&json!({"sub": "u1", "n": 5})).unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.as_str());
            assert_eq!(header.kid.as_deref(), Some("kid-1"));
            let claims: Value = k.verifying_key().verify(&token).unwrap();
            assert_eq!(claims["sub"], "u1");
            let jwk = k.verifying_key().jwk();
            assert_eq!(jwk["alg"], alg.as_str());
            assert!(!k.verifying_key().spki_base64().is_empty());
        }
    }

    #[test]
    fn tampering_is_detected() {
        let k = key(Algorithm::ES256);
        let token = k.sign(&json!({"sub": "u1"})).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(json!({"sub": "admin"}).to_string());
        parts[1] = &forged;
        let forged = parts.join(".");
        assert_eq!(
            k.verifying_key().verify::<Value>(&forged),
            Err(JwtError::BadSignature)
        );
        let other = key(Algorithm::ES256);
        assert_eq!(
            other.verifying_key().verify::<Value>(&token),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn alg_none_and_hmac_confusion_are_rejected() {
        let k = key(Algorithm::RS256);
        let payload = B64.encode(json!({"sub": "admin"}).to_string());
        let none = format!(
            "{}.{payload}.",
            B64.encode(r#"{"alg":"none","kid":"kid-1"}"#)
        );
        assert_eq!(
            k.verifying_key().verify::<Value>(&none),
            Err(JwtError::AlgorithmMismatch)
        );
        // HS256 keyed with the public key's bytes, as an attacker would try.
        let public = k.verifying_key().spki_base64();
        let hs = sign_hs256(&json!({"sub": "admin"}), public.as_bytes()).unwrap();
        assert_eq!(
            k.verifying_key().verify::<Value>(&hs),
            Err(JwtError::AlgorithmMismatch)
        );
        // An ES256 token presented to an RS256 key.
        let es = key(Algorithm::ES256).sign(&json!({})).unwrap();
        assert_eq!(
            k.verifying_key().verify::<Value>(&es),
            Err(JwtError::AlgorithmMismatch)
        );
    }

    #[test]
    fn malformed_tokens_are_errors_not_panics() {
        let k = key(Algorithm::ES256);
        for bad in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJFUzI1NiJ9.!!.sig",
        ] {
            assert!(k.verifying_key().verify::<Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_round_trip_through_jwk_and_spki() {
        use base64::engine::general_purpose::STANDARD;
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let k = key(alg);
            let token = k.sign(&json!({"sub": "x"})).unwrap();
            let from_jwk = VerifyingKey::from_jwk(&k.verifying_key().jwk()).unwrap();
            assert_eq!(from_jwk.verify::<Value>(&token).unwrap()["sub"], "x");
            let spki = STANDARD.decode(k.verifying_key().spki_base64()).unwrap();
            let from_spki = VerifyingKey::from_spki_der("k", &spki).unwrap();
            assert_eq!(from_spki.algorithm, alg);
            assert!(from_spki.verify::<Value>(&token).is_ok());
        }
        assert!(VerifyingKey::from_jwk(&json!({"kty": "oct", "k": "AAAA"})).is_err());
        assert!(VerifyingKey::from_spki_der("k", b"junk").is_err());
    }

    #[test]
    fn hs256_round_trip() {
        let t = sign_hs256(&json!({"iss": "c"}), b"secret").unwrap();
        assert_eq!(verify_hs256::<Value>(&t, b"secret").unwrap()["iss"], "c");
        assert_eq!(
            verify_hs256::<Value>(&t, b"other"),
            Err(JwtError::BadSignature)
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| {
            let der = generate_pkcs8(Algorithm::ES256).unwrap();
            SigningKey::from_pkcs8("k1", Algorithm::ES256, &der).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Signed claims verify and read back as signed; any change to any byte of the
        /// token, or a header naming another algorithm, makes it fail.
        #[test]
        fn signatures_bind_every_byte(sub in "[a-z0-9]{1,16}", n in any::<i64>(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let claims = serde_json::json!({"sub": sub, "n": n});
            let token = key().sign(&claims).unwrap();
            let back: serde_json::Value = key().verifying_key().verify(&token).unwrap();
            prop_assert_eq!(&back, &claims);
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte && byte.is_ascii_graphic());
            bytes[i] = byte;
            let changed = String::from_utf8(bytes).unwrap();
            // A changed token never carries other claims: it fails, or (base64url's
            // unused low bits of a last character) it decodes to the very same token.
            if let Ok(v) = key().verifying_key().verify::<serde_json::Value>(&changed) {
                prop_assert_eq!(v, claims);
                prop_assert!(
                    changed.split('.').zip(token.split('.')).all(|(a, b)| {
                        B64.decode(a).ok() == B64.decode(b).ok()
                    }),
                    "a different token verified: {}", changed
                );
            }
            for alg in ["none", "HS256", "RS256"] {
                let (_, rest) = token.split_once('.').unwrap();
                let header = B64.encode(serde_json::json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
                let forged = format!("{header}.{rest}");
                prop_assert!(key().verifying_key().verify::<serde_json::Value>(&forged).is_err(), "{}", alg);
            }
        }

        /// Whatever arrives as a token: an error or claims, never a panic.
        #[test]
        fn any_text_is_answered(text in any::<String>(), dots in "[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}") {
            let _ = decode_header(&text);
            let _ = decode_unverified::<serde_json::Value>(&text);
            let _ = key().verifying_key().verify::<serde_json::Value>(&text);
            let _ = key().verifying_key().verify::<serde_json::Value>(&dots);
            let _ = verify_hs256::<serde_json::Value>(&dots, b"secret");
        }
    }
}
