//! Client registration's tokens, kept as realm objects: initial access tokens (created by
//! an administrator, good for a number of registrations until they expire) and the hash of
//! each registered client's registration access token. Only hashes are stored; a token is
//! shown once, when it is made.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::crypto::{constant_time_eq, random_id, random_token, sha256_hex};
use crate::store::{StoreError, Txn, View, Write};

/// Realm objects kept for registration: initial access tokens and the hash of each
/// registered client's registration access token.
pub const INITIAL_ACCESS: &str = "initial-access";
const REGISTRATION_TOKEN: &str = "registration-token";

/// An initial access token as stored (the token itself only as its hash).
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InitialAccess {
    pub id: String,
    pub token_hash: String,
    /// Seconds since the epoch.
    pub timestamp: i64,
    /// Seconds it is valid for; 0: no expiry.
    pub expiration: i64,
    pub count: i64,
    pub remaining_count: i64,
}

impl InitialAccess {
    /// A new token: the record and the token to hand out once.
    pub fn new(now_secs: i64, expiration: i64, count: i64) -> (InitialAccess, String) {
        let token = random_token(32);
        (
            InitialAccess {
                id: random_id(),
                token_hash: sha256_hex(&token),
                timestamp: now_secs,
                expiration: expiration.max(0),
                count: count.max(0),
                remaining_count: count.max(0),
            },
            token,
        )
    }

    /// Keycloak's rule: valid through the second `timestamp + expiration`.
    pub fn expired(&self, now_secs: i64) -> bool {
        self.expiration > 0 && self.timestamp.saturating_add(self.expiration) < now_secs
    }

    /// The admin API's representation (`ClientInitialAccessPresentation`).
    pub fn repr(&self, token: Option<&str>) -> Value {
        let mut v = json!({
            "id": self.id, "timestamp": self.timestamp, "expiration": self.expiration,
            "count": self.count, "remainingCount": self.remaining_count,
        });
        if let Some(t) = token {
            v["token"] = t.into();
        }
        v
    }
}

/// Store a new registration access token for `client`; returns it.
pub fn new_registration_token(
    w: &mut Write,
    realm_id: &str,
    client_uuid: &str,
) -> Result<String, crate::store::StoreError> {
    let token = random_token(32);
    w.put_object(
        realm_id,
        REGISTRATION_TOKEN,
        client_uuid,
        &json!({"hash": sha256_hex(&token)}),
    )?;
    Ok(token)
}

/// Forget a deleted client's registration access token.
pub fn forget(
    w: &mut Write,
    realm_id: &str,
    client_uuid: &str,
) -> Result<(), crate::store::StoreError> {
    w.delete_object(realm_id, REGISTRATION_TOKEN, client_uuid)?;
    Ok(())
}

/// What presenting a token as an initial access token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// It was one, valid: one registration taken from its count.
    Used,
    /// It was one, but expired or used up.
    Spent,
    /// It is no initial access token of the realm.
    Unknown,
}

/// Take one registration from the initial access token `token`, if it is one (the token
/// goes once its count is used up).
pub fn consume_initial_access(
    w: &mut Write,
    realm_id: &str,
    token: &str,
    now_secs: i64,
) -> Result<Consumed, StoreError> {
    let hash = sha256_hex(token);
    for (id, v) in w.object_ids(realm_id, INITIAL_ACCESS)? {
        let Ok(mut ia) = serde_json::from_value::<InitialAccess>(v) else {
            continue;
        };
        if !constant_time_eq(ia.token_hash.as_bytes(), hash.as_bytes()) {
            continue;
        }
        if ia.expired(now_secs) || ia.remaining_count <= 0 {
            return Ok(Consumed::Spent);
        }
        ia.remaining_count -= 1;
        if ia.remaining_count == 0 {
            w.delete_object(realm_id, INITIAL_ACCESS, &id)?;
        } else {
            let value =
                serde_json::to_value(&ia).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            w.put_object(realm_id, INITIAL_ACCESS, &id, &value)?;
        }
        return Ok(Consumed::Used);
    }
    Ok(Consumed::Unknown)
}

/// Whether `token` is the registration access token of client `client_uuid`.
pub fn registration_token_matches<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    client_uuid: &str,
    token: &str,
) -> Result<bool, StoreError> {
    let stored = read
        .object(realm_id, REGISTRATION_TOKEN, client_uuid)?
        .and_then(|v| v.get("hash").and_then(Value::as_str).map(String::from));
    Ok(stored.is_some_and(|s| constant_time_eq(s.as_bytes(), sha256_hex(token).as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initial_access_token_lives_through_its_last_second() {
        let (ia, token) = InitialAccess::new(100, 1, 2);
        assert_eq!(ia.token_hash, sha256_hex(&token), "only the hash is kept");
        assert!(!ia.expired(100) && !ia.expired(101));
        assert!(ia.expired(102));
        let (forever, _) = InitialAccess::new(100, 0, 1);
        assert!(!forever.expired(i64::MAX / 2));
    }
}
