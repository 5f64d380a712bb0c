//! State that must be the same on every node sharing the store: secrets made once for
//! the whole cluster, values that may be used only once (one-time codes, client
//! assertions), leases that let one node at a time do housekeeping, the revision of a
//! realm's signing keys (what nodes' parsed-key caches are checked against), and the admin
//! console's sessions.

use serde::{Deserialize, Serialize};

use super::tables::{CONSOLE_BY_SSO, CONSOLE_SESSIONS, KEY_REVISIONS, LEASES, META, USED_ONCE};
use super::view::{between, decode, Txn, View, Write, MAX};
use super::{Result, Store, StoreError};

/// Who holds a lease, and until when (ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: String,
    until: i64,
}

/// A signed-in administrator of the console, named by the SHA-256 of its cookie.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleSessionRecord {
    pub realm: String,
    pub username: String,
    /// The SSO session it was made from (one console session each).
    pub sid: Option<String>,
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_ms: i64,
    pub csrf: String,
    pub flash: Option<String>,
    /// Last use (ms), for the idle expiry; written at most once a minute.
    pub last_seen_ms: i64,
}

// Never prints the tokens or the CSRF token.
impl std::fmt::Debug for ConsoleSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRecord")
            .field("realm", &self.realm)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl<T: Txn> View<T> {
    /// The current revision of a realm's signing keys (0: never changed): it changes with
    /// every key written or deleted, so a node's parsed keys are current while it matches.
    pub fn signing_key_revision(&self, realm: &str) -> Result<u64> {
        Ok(self.get(KEY_REVISIONS, realm)?.unwrap_or(0))
    }

    pub fn console_session(&self, hash: &str) -> Result<Option<ConsoleSessionRecord>> {
        self.record(CONSOLE_SESSIONS, hash)
    }
}

impl Write {
    /// Record that `key` was used in `realm`; `false` if it already was (and has not
    /// expired). Kept until `expires_at` (s), then purged with the other expired state.
    /// Writes are serialised across nodes, so two nodes cannot both see a first use.
    pub fn use_once(&mut self, realm: &str, key: &str, expires_at: i64) -> Result<bool> {
        if self.get(USED_ONCE, (realm, key))?.is_some() {
            return Ok(false);
        }
        self.insert(USED_ONCE, (realm, key), expires_at)?;
        Ok(true)
    }

    /// Give a realm's signing keys a new revision.
    pub(super) fn bump_key_revision(&mut self, realm: &str) -> Result<()> {
        // Random, not counted: a realm deleted and imported again under the same id must
        // not come back with a revision a node still holds.
        let revision = rand::random::<u64>() | 1;
        self.insert(KEY_REVISIONS, realm, revision)
    }

    /// Store a console session (replacing the one its SSO session had).
    pub fn put_console_session(
        &mut self,
        hash: &str,
        session: &ConsoleSessionRecord,
    ) -> Result<()> {
        if let Some(sid) = &session.sid {
            if let Some(old) = self.get(CONSOLE_BY_SSO, sid.as_str())? {
                if old != hash {
                    self.remove(CONSOLE_SESSIONS, old.as_str())?;
                }
            }
            self.insert(CONSOLE_BY_SSO, sid.as_str(), hash)?;
        }
        self.insert_record(CONSOLE_SESSIONS, hash, session)
    }

    pub fn delete_console_session(&mut self, hash: &str) -> Result<bool> {
        let Some(session) = self.console_session(hash)? else {
            return Ok(false);
        };
        if let Some(sid) = &session.sid {
            if self.get(CONSOLE_BY_SSO, sid.as_str())?.as_deref() == Some(hash) {
                self.remove(CONSOLE_BY_SSO, sid.as_str())?;
            }
        }
        self.remove(CONSOLE_SESSIONS, hash)
    }

    /// Drop console sessions unused since `idle_before` (ms); returns how many went.
    pub fn purge_console_sessions(&mut self, idle_before: i64) -> Result<usize> {
        let mut gone = Vec::new();
        self.scan(CONSOLE_SESSIONS, between("", MAX), false, |hash, v| {
            let idle =
                decode::<ConsoleSessionRecord>(&v).map_or(true, |s| s.last_seen_ms < idle_before);
            if idle {
                gone.push(hash);
            }
            Ok(true)
        })?;
        for hash in &gone {
            self.delete_console_session(hash)?;
        }
        Ok(gone.len())
    }

    /// Drop expired one-time uses (all realms).
    pub(super) fn purge_used_once(&mut self, now_s: i64) -> Result<usize> {
        use std::ops::Bound;
        self.remove_where(
            USED_ONCE,
            (Bound::Unbounded, Bound::Unbounded),
            |_, &exp| exp <= now_s,
        )
    }
}

impl Store {
    /// A 32-byte secret shared by every node of the store, made at its first use (the
    /// console's sign-in cookies, the gateway's login state).
    pub fn shared_secret(&self, name: &str) -> Result<[u8; 32]> {
        let key = format!("secret:{name}");
        let parse = |hex: &str| -> Result<[u8; 32]> {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                .collect::<std::result::Result<Vec<u8>, _>>()
                .map_err(|_| StoreError::Corrupt(format!("{key} is not hex")))?;
            bytes
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("{key} is not 32 bytes")))
        };
        if let Some(hex) = self.read()?.get(META, key.as_str())? {
            return parse(&hex);
        }
        let hex = self.write(|w| {
            if let Some(existing) = w.get(META, key.as_str())? {
                return Ok::<_, StoreError>(existing);
            }
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            w.insert(META, key.as_str(), hex.as_str())?;
            Ok(hex)
        })?;
        parse(&hex)
    }

    /// Take (or keep) the lease `name` for `holder` until `now_ms + ttl_ms`; `false` while
    /// another holder's lease runs. Housekeeping that must run on one node at a time takes
    /// one before each round.
    pub fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        self.write(|w| {
            if let Some(lease) = w.record::<_, Lease>(LEASES, name)? {
                if lease.holder != holder && lease.until > now_ms {
                    return Ok(false);
                }
            }
            w.insert_record(
                LEASES,
                name,
                &Lease {
                    holder: holder.to_string(),
                    until: now_ms + ttl_ms,
                },
            )?;
            Ok(true)
        })
    }

    /// Give the lease back (a node shutting down, or done early).
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.write(|w| {
            if w.record::<_, Lease>(LEASES, name)?
                .is_some_and(|l| l.holder == holder)
            {
                w.remove(LEASES, name)?;
            }
            Ok(())
        })
    }
}
