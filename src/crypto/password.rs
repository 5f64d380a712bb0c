//! Password hashing with argon2id, stored in Keycloak's credential layout so that realm
//! exports are interchangeable: `secretData = {"value": b64hash, "salt": b64salt}` and
//! `credentialData = {"hashIterations": t, "algorithm": "argon2", "additionalParameters": {..}}`.
//!
//! Hashing costs tens of milliseconds by design: callers on async paths must run these
//! functions on a blocking pool (`tokio::task::spawn_blocking`).

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub hash_length: usize,
}

impl Default for Argon2Params {
    /// OWASP's recommendation for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            hash_length: 32,
        }
    }
}

/// A hashed password in Keycloak's two JSON strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedPassword {
    pub secret_data: String,
    pub credential_data: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid hashing parameters: {0}")]
    Parameters(String),
    #[error("stored credential is malformed: {0}")]
    Malformed(String),
    #[error("unsupported hash algorithm \"{0}\"")]
    Unsupported(String),
}

#[derive(Deserialize)]
struct SecretData {
    value: String,
    #[serde(default)]
    salt: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct CredentialData {
    #[serde(default)]
    hash_iterations: u32,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    additional_parameters: std::collections::BTreeMap<String, Vec<String>>,
}

fn argon2(params: &Argon2Params) -> Result<Argon2<'static>, PasswordError> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(params.hash_length),
    )
    .map_err(|e| PasswordError::Parameters(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hash `password` with a fresh random salt.
pub fn hash_password(
    password: &str,
    params: &Argon2Params,
) -> Result<HashedPassword, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut out = vec![0u8; params.hash_length];
    argon2(params)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| PasswordError::Parameters(e.to_string()))?;
    let secret_data = json!({
        "value": STANDARD.encode(&out),
        "salt": STANDARD.encode(salt),
        "additionalParameters": {},
    });
    let credential_data = json!({
        "hashIterations": params.iterations,
        "algorithm": "argon2",
        "additionalParameters": {
            "hashLength": [params.hash_length.to_string()],
            "memory": [params.memory_kib.to_string()],
            "type": ["id"],
            "version": ["1.3"],
            "parallelism": [params.parallelism.to_string()],
        },
    });
    Ok(HashedPassword {
        secret_data: secret_data.to_string(),
        credential_data: credential_data.to_string(),
    })
}

/// Check `password` against a stored credential. `Ok(false)` is a wrong password; `Err`
/// means the stored data cannot be used.
pub fn verify_password(password: &str, stored: &HashedPassword) -> Result<bool, PasswordError> {
    let secret: SecretData = serde_json::from_str(&stored.secret_data)
        .map_err(|e| PasswordError::Malformed(e.to_string()))?;
    let data: CredentialData = serde_json::from_str(&stored.credential_data)
        .map_err(|e| PasswordError::Malformed(e.to_string()))?;
    if data.algorithm == "bcrypt" {
        // `secretData.value` is the whole `$2a$...` string (Auth0 and other exports).
        return bcrypt::verify(password, &secret.value)
            .map_err(|e| PasswordError::Malformed(e.to_string()));
    }
    let expected = STANDARD
        .decode(&secret.value)
        .map_err(|e| PasswordError::Malformed(e.to_string()))?;
    let salt = STANDARD
        .decode(&secret.salt)
        .map_err(|e| PasswordError::Malformed(e.to_string()))?;
    match data.algorithm.as_str() {
        "argon2" => {
            let param = |name: &str, default: u32| -> Result<u32, PasswordError> {
                match data.additional_parameters.get(name).and_then(|v| v.first()) {
                    None => Ok(default),
                    Some(s) => s
                        .parse()
                        .map_err(|_| PasswordError::Malformed(format!("{name}={s}"))),
                }
            };
            let kind = data
                .additional_parameters
                .get("type")
                .and_then(|v| v.first())
                .map(String::as_str)
                .unwrap_or("id");
            let algorithm = match kind {
                "id" => Algorithm::Argon2id,
                "i" => Algorithm::Argon2i,
                "d" => Algorithm::Argon2d,
                other => return Err(PasswordError::Unsupported(format!("argon2{other}"))),
            };
            let version = match data
                .additional_parameters
                .get("version")
                .and_then(|v| v.first())
                .map(String::as_str)
            {
                Some("1.0") => Version::V0x10,
                _ => Version::V0x13,
            };
            let params = Params::new(
                param("memory", 7168)?,
                data.hash_iterations.max(1),
                param("parallelism", 1)?,
                Some(expected.len()),
            )
            .map_err(|e| PasswordError::Malformed(e.to_string()))?;
            let mut out = vec![0u8; expected.len()];
            Argon2::new(algorithm, version, params)
                .hash_password_into(password.as_bytes(), &salt, &mut out)
                .map_err(|e| PasswordError::Malformed(e.to_string()))?;
            Ok(super::constant_time_eq(&out, &expected))
        }
        "pbkdf2-sha256" | "pbkdf2-sha512" | "pbkdf2" => {
            use aws_lc_rs::pbkdf2;
            let algorithm = match data.algorithm.as_str() {
                "pbkdf2-sha256" => pbkdf2::PBKDF2_HMAC_SHA256,
                "pbkdf2-sha512" => pbkdf2::PBKDF2_HMAC_SHA512,
                _ => pbkdf2::PBKDF2_HMAC_SHA1,
            };
            let iterations = std::num::NonZeroU32::new(data.hash_iterations).ok_or_else(|| {
                PasswordError::Malformed("hashIterations must be positive".into())
            })?;
            if expected.is_empty() {
                return Err(PasswordError::Malformed("empty hash".into()));
            }
            // aws-lc compares in constant time.
            Ok(
                pbkdf2::verify(algorithm, iterations, &salt, password.as_bytes(), &expected)
                    .is_ok(),
            )
        }
        other => Err(PasswordError::Unsupported(other.to_string())),
    }
}

/// Whether a stored hash should be replaced by one at `params` (another algorithm or
/// weaker parameters), after a successful login with it.
pub fn needs_rehash(stored: &HashedPassword, params: &Argon2Params) -> bool {
    let Ok(data) = serde_json::from_str::<CredentialData>(&stored.credential_data) else {
        return true;
    };
    let param = |name: &str| -> u32 {
        data.additional_parameters
            .get(name)
            .and_then(|v| v.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    data.algorithm != "argon2"
        || data.hash_iterations < params.iterations
        || param("memory") < params.memory_kib
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            ..Default::default()
        }
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse", &cheap()).unwrap();
        assert!(verify_password("correct horse", &h).unwrap());
        assert!(!verify_password("correct horsE", &h).unwrap());
        assert!(!h.secret_data.contains("correct"));
        let data: serde_json::Value = serde_json::from_str(&h.credential_data).unwrap();
        assert_eq!(data["algorithm"], "argon2");
        assert_eq!(data["additionalParameters"]["type"][0], "id");
    }

    #[test]
    fn salts_differ() {
        let a = hash_password("x", &cheap()).unwrap();
        let b = hash_password("x", &cheap()).unwrap();
        assert_ne!(a.secret_data, b.secret_data);
    }

    #[test]
    fn keycloak_pbkdf2_and_bcrypt_hashes_verify() {
        use aws_lc_rs::pbkdf2;
        for (name, alg, len) in [
            ("pbkdf2-sha256", pbkdf2::PBKDF2_HMAC_SHA256, 64),
            ("pbkdf2-sha512", pbkdf2::PBKDF2_HMAC_SHA512, 64),
            ("pbkdf2", pbkdf2::PBKDF2_HMAC_SHA1, 20),
        ] {
            let salt = b"0123456789abcdef";
            let mut out = vec![0u8; len];
            pbkdf2::derive(
                alg,
                std::num::NonZeroU32::new(1000).unwrap(),
                salt,
                b"secret",
                &mut out,
            );
            let stored = HashedPassword {
                secret_data: json!({"value": STANDARD.encode(&out), "salt": STANDARD.encode(salt)})
                    .to_string(),
                credential_data: json!({"hashIterations": 1000, "algorithm": name}).to_string(),
            };
            assert!(verify_password("secret", &stored).unwrap(), "{name}");
            assert!(!verify_password("Secret", &stored).unwrap(), "{name}");
            assert!(needs_rehash(&stored, &Argon2Params::default()));
        }
        let bcrypt_hash = bcrypt::hash("secret", 4).unwrap();
        let stored = HashedPassword {
            secret_data: json!({"value": bcrypt_hash}).to_string(),
            credential_data: json!({"algorithm": "bcrypt"}).to_string(),
        };
        assert!(verify_password("secret", &stored).unwrap());
        assert!(!verify_password("nope", &stored).unwrap());
        let current = hash_password("x", &Argon2Params::default()).unwrap();
        assert!(!needs_rehash(&current, &Argon2Params::default()));
    }

    #[test]
    fn malformed_and_unknown_are_errors_not_panics() {
        let bad = HashedPassword {
            secret_data: "{".into(),
            credential_data: "{}".into(),
        };
        assert!(verify_password("x", &bad).is_err());
        let unknown = HashedPassword {
            secret_data: r#"{"value":"AAAA","salt":"AAAA"}"#.into(),
            credential_data: r#"{"algorithm":"md5"}"#.into(),
        };
        assert!(matches!(
            verify_password("x", &unknown),
            Err(PasswordError::Unsupported(_))
        ));
    }
}
