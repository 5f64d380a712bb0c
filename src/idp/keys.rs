//! Realm signing keys: generation at realm creation, rotation, and an in-memory cache of
//! parsed keys (parsing an RSA key costs more than signing with it). Each realm has an
//! active RS256 and an active ES256 key; rotation demotes the old key to passive, kept in
//! the JWKS until the tokens it signed have expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;

use crate::crypto::jwt::{generate_pkcs8, Algorithm, JwtError, SigningKey, VerifyingKey};
use crate::crypto::random_id;
use crate::store::{Read, SigningKeyRecord, Store, StoreError, Write};

pub const ACTIVE: &str = "ACTIVE";
pub const PASSIVE: &str = "PASSIVE";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("stored key {0} is unreadable")]
    Corrupt(String),
    #[error("realm has no active {0} key")]
    NoActiveKey(&'static str),
}

/// The parsed keys of one realm.
#[derive(Debug)]
pub struct RealmKeys {
    signing: HashMap<Algorithm, Arc<SigningKey>>,
    verifying: HashMap<String, VerifyingKey>,
    /// kid → the key's self-signed certificate (base64 DER), for RSA keys.
    certificates: HashMap<String, String>,
    /// `{"keys": [...]}`, ready to serve.
    pub jwks: serde_json::Value,
}

impl RealmKeys {
    /// The active key for an algorithm.
    pub fn signer(&self, algorithm: Algorithm) -> Result<&Arc<SigningKey>, KeyError> {
        self.signing
            .get(&algorithm)
            .ok_or(KeyError::NoActiveKey(algorithm.as_str()))
    }

    /// The self-signed certificate of an RSA key (base64 DER), as the admin API shows it.
    pub fn certificate(&self, kid: &str) -> Option<&str> {
        self.certificates.get(kid).map(String::as_str)
    }

    /// A key (active or passive) by id.
    pub fn verifier(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }
}

/// A new key record (not yet stored).
pub fn new_key(algorithm: Algorithm, now_ms: i64) -> Result<SigningKeyRecord, KeyError> {
    let der = generate_pkcs8(algorithm)?;
    Ok(SigningKeyRecord {
        kid: random_id(),
        algorithm: algorithm.as_str().to_string(),
        private_key_pkcs8: STANDARD.encode(der),
        status: ACTIVE.into(),
        created_at: now_ms,
        retire_at: None,
    })
}

/// Generate and store one active key per algorithm (realm creation).
pub fn create_realm_keys(w: &mut Write, realm_id: &str, now_ms: i64) -> Result<(), KeyError> {
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        w.put_signing_key(realm_id, &new_key(algorithm, now_ms)?)?;
    }
    Ok(())
}

/// Replace the active key of `algorithm` with a new one. The old key stays in the JWKS
/// (passive) until `retire_at_ms`, when tokens it signed have expired; keys past their
/// retirement are deleted.
pub fn rotate(
    w: &mut Write,
    realm_id: &str,
    algorithm: Algorithm,
    now_ms: i64,
    retire_at_ms: i64,
) -> Result<String, KeyError> {
    for mut key in w.signing_keys(realm_id)? {
        if key.retire_at.is_some_and(|t| t <= now_ms) {
            w.delete_signing_key(realm_id, &key.kid)?;
        } else if key.status == ACTIVE && key.algorithm == algorithm.as_str() {
            key.status = PASSIVE.into();
            key.retire_at = Some(retire_at_ms);
            w.put_signing_key(realm_id, &key)?;
        }
    }
    let fresh = new_key(algorithm, now_ms)?;
    let kid = fresh.kid.clone();
    w.put_signing_key(realm_id, &fresh)?;
    Ok(kid)
}

fn parse(
    records: Vec<SigningKeyRecord>,
    realm_name: &str,
    now_ms: i64,
) -> Result<RealmKeys, KeyError> {
    let mut signing = HashMap::new();
    let mut verifying = HashMap::new();
    let mut certificates = HashMap::new();
    let mut jwks = Vec::new();
    for record in records {
        if record.retire_at.is_some_and(|t| t <= now_ms) {
            continue;
        }
        let algorithm = Algorithm::parse(&record.algorithm)
            .ok_or_else(|| KeyError::Corrupt(record.kid.clone()))?;
        let der = STANDARD
            .decode(&record.private_key_pkcs8)
            .map_err(|_| KeyError::Corrupt(record.kid.clone()))?;
        let key = SigningKey::from_pkcs8(&record.kid, algorithm, &der)?;
        let mut jwk = key.verifying_key().jwk();
        if algorithm == Algorithm::RS256 {
            if let Some(cert) = certificate(&der, &record.kid, realm_name, record.created_at) {
                // Keycloak's JWKS: the chain, and its SHA-1 and SHA-256 thumbprints.
                jwk["x5c"] = serde_json::json!([STANDARD.encode(&cert)]);
                jwk["x5t"] = B64URL
                    .encode(<sha1::Sha1 as sha2::Digest>::digest(&cert))
                    .into();
                jwk["x5t#S256"] = B64URL
                    .encode(<sha2::Sha256 as sha2::Digest>::digest(&cert))
                    .into();
                certificates.insert(record.kid.clone(), STANDARD.encode(&cert));
            }
        }
        jwks.push(jwk);
        verifying.insert(record.kid.clone(), key.verifying_key().clone());
        if record.status == ACTIVE {
            signing.insert(algorithm, Arc::new(key));
        }
    }
    Ok(RealmKeys {
        signing,
        verifying,
        certificates,
        jwks: serde_json::json!({ "keys": jwks }),
    })
}

/// The self-signed certificate Keycloak keeps with a realm RSA key: subject CN = the realm
/// name, serial from the kid, valid ten years from the key's creation. RSA PKCS#1 v1.5
/// signatures are deterministic, so the certificate is the same at every start without
/// being stored. `None` if the key cannot sign one (it is then served without `x5c`).
pub(crate) fn certificate(
    pkcs8: &[u8],
    kid: &str,
    realm_name: &str,
    created_at_ms: i64,
) -> Option<Vec<u8>> {
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.to_vec().into());
    let key = rcgen::KeyPair::from_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).ok()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, realm_name);
    let serial = <sha2::Sha256 as sha2::Digest>::digest(kid.as_bytes());
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial[..16]));
    let created = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(created_at_ms).unwrap_or(0));
    // `2026-12-02T15:30:00Z` → 2026, 12, 2.
    let date = humantime::format_rfc3339_seconds(created).to_string();
    let field = |range: std::ops::Range<usize>| date.get(range)?.parse::<i32>().ok();
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (month, day) = (u8::try_from(month).ok()?, u8::try_from(day).ok()?);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + 10, month, day.min(28));
    params.self_signed(&key).ok().map(|c| c.der().to_vec())
}

/// Cache of parsed realm keys, by realm id, checked against the realm's key revision in
/// the store on every use (so a rotation on another node is seen at once).
#[derive(Default)]
pub struct KeyRing {
    cache: RwLock<HashMap<String, CachedKeys>>,
}

/// A realm's parsed keys: (key revision, valid until (ms), keys).
type CachedKeys = (u64, i64, Arc<RealmKeys>);

impl KeyRing {
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// The keys of a realm, parsed once and cached. A cached entry is reloaded when the
    /// realm's keys change (on any node) or a passive key in it reaches its retirement
    /// time.
    pub fn realm_keys(
        &self,
        read: &Read,
        realm_id: &str,
        now_ms: i64,
    ) -> Result<Arc<RealmKeys>, KeyError> {
        let revision = read.signing_key_revision(realm_id)?;
        if let Some((cached_revision, valid_until, keys)) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(realm_id)
        {
            if *cached_revision == revision && now_ms < *valid_until {
                return Ok(keys.clone());
            }
        }
        let records = read.signing_keys(realm_id)?;
        let valid_until = records
            .iter()
            .filter_map(|r| r.retire_at)
            .filter(|t| *t > now_ms)
            .min()
            .unwrap_or(i64::MAX);
        let realm_name = read.realm(realm_id)?.map(|r| r.name).unwrap_or_default();
        let keys = Arc::new(parse(records, &realm_name, now_ms)?);
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(realm_id.to_string(), (revision, valid_until, keys.clone()));
        Ok(keys)
    }

    /// Forget a realm's keys (after rotation, import or deletion).
    pub fn invalidate(&self, realm_id: &str) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(realm_id);
    }

    /// Forget every realm's keys (after an import that replaced realms).
    pub fn invalidate_all(&self) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Convenience for callers holding only a store.
pub fn load(
    ring: &KeyRing,
    store: &Store,
    realm_id: &str,
    now_ms: i64,
) -> Result<Arc<RealmKeys>, KeyError> {
    ring.realm_keys(&store.read()?, realm_id, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RealmRecord;

    #[test]
    fn an_rsa_keys_certificate_is_the_same_at_every_start() {
        let der = generate_pkcs8(Algorithm::RS256).unwrap();
        let created = 1_764_688_800_000; // 2025-12-02
        let one = certificate(&der, "kid-1", "shop", created).unwrap();
        assert_eq!(
            certificate(&der, "kid-1", "shop", created),
            Some(one.clone())
        );
        let (_, cert) = x509_parser::parse_x509_certificate(&one).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "shop");
        assert_eq!(cert.validity().not_before.timestamp(), 1_764_633_600);
        assert!(cert.validity().not_after.timestamp() > 1_764_633_600 + 9 * 365 * 86_400);
        // Another key id, another serial.
        let other = certificate(&der, "kid-2", "shop", created).unwrap();
        let (_, other) = x509_parser::parse_x509_certificate(&other).unwrap();
        assert_ne!(cert.raw_serial(), other.raw_serial());
    }

    #[test]
    fn rotation_keeps_old_public_key_until_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        store
            .write(|w| {
                w.put_realm(&RealmRecord {
                    id: "r".into(),
                    name: "r".into(),
                    ..Default::default()
                })?;
                create_realm_keys(w, "r", 0)
            })
            .unwrap();
        let ring = KeyRing::new();
        let before = load(&ring, &store, "r", 1000).unwrap();
        let old = before.signer(Algorithm::ES256).unwrap().clone();
        let token = old.sign(&serde_json::json!({"sub": "x"})).unwrap();
        assert_eq!(before.jwks["keys"].as_array().unwrap().len(), 2);

        let new_kid = store
            .write(|w| rotate(w, "r", Algorithm::ES256, 1000, 5000))
            .unwrap();
        ring.invalidate("r");
        let after = load(&ring, &store, "r", 2000).unwrap();
        assert_eq!(after.signer(Algorithm::ES256).unwrap().kid(), new_kid);
        assert_eq!(after.jwks["keys"].as_array().unwrap().len(), 3);
        // The old key still verifies what it signed...
        let v = after.verifier(old.kid()).unwrap();
        assert!(v.verify::<serde_json::Value>(&token).is_ok());
        // ...until its retirement, when the cache reloads without it.
        let retired = ring.realm_keys(&store.read().unwrap(), "r", 6000).unwrap();
        assert!(retired.verifier(old.kid()).is_none());
        assert_eq!(retired.jwks["keys"].as_array().unwrap().len(), 2);
    }
}
