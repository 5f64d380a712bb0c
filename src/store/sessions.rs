//! Login state: SSO sessions, authorization codes, login flows in progress, device codes,
//! revoked token ids and brute-force counters, and the housekeeping that expires them.

use redb::{ReadableTable, ReadableTableMetadata};

use super::records::{
    AuthCodeRecord, DeviceCodeRecord, LoginFailureRecord, LoginFlowRecord, SessionRecord,
};
use super::tables::{
    AUTH_CODES, DEVICE_CODES, LOGIN_FAILURES, LOGIN_FLOWS, REVOKED_TOKENS, SESSIONS, USER_CODES,
    USER_SESSIONS,
};
use super::view::{decode, existing, Txn, View, Write, MAX};
use super::{Result, StoreError};

impl<T: Txn> View<T> {
    pub fn session(&self, realm: &str, id: &str) -> Result<Option<SessionRecord>> {
        self.record(SESSIONS, (realm, id))
    }

    pub fn user_sessions(&self, realm: &str, user: &str) -> Result<Vec<SessionRecord>> {
        let ids = self.multi_values(USER_SESSIONS, realm, user)?;
        existing(ids, |id| self.session(realm, id))
    }

    /// Every session of a realm (online and offline), in id order.
    pub fn realm_sessions(&self, realm: &str) -> Result<Vec<SessionRecord>> {
        self.records_in(SESSIONS, (realm, "")..=(realm, MAX))
    }

    /// Sessions in every realm (the `active sessions` gauge).
    pub fn session_count(&self) -> Result<u64> {
        Ok(self.txn.open_table(SESSIONS)?.len()?)
    }

    pub fn auth_code(&self, realm: &str, code_hash: &str) -> Result<Option<AuthCodeRecord>> {
        self.record(AUTH_CODES, (realm, code_hash))
    }

    pub fn login_flow(&self, realm: &str, id: &str) -> Result<Option<LoginFlowRecord>> {
        self.record(LOGIN_FLOWS, (realm, id))
    }

    pub fn device_code(&self, realm: &str, code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        self.record(DEVICE_CODES, (realm, code_hash))
    }

    /// The device code hash a user code belongs to.
    pub fn device_code_for_user_code(
        &self,
        realm: &str,
        user_code: &str,
    ) -> Result<Option<String>> {
        self.id_for(USER_CODES, (realm, user_code))
    }

    pub fn login_failure(&self, realm: &str, user: &str) -> Result<Option<LoginFailureRecord>> {
        self.record(LOGIN_FAILURES, (realm, user))
    }

    /// Whether an access token (by `jti`) was revoked.
    pub fn is_revoked(&self, realm: &str, jti: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(REVOKED_TOKENS)?
            .get((realm, jti))?
            .is_some())
    }
}

impl Write {
    /// Insert or update a session of an existing user.
    pub fn put_session(&mut self, realm: &str, session: &SessionRecord) -> Result<()> {
        if self.user(realm, &session.user_id)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.insert_record(SESSIONS, (realm, session.id.as_str()), session)?;
        self.txn
            .open_multimap_table(USER_SESSIONS)?
            .insert((realm, session.user_id.as_str()), session.id.as_str())?;
        Ok(())
    }

    pub fn delete_session(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(session) = self.session(realm, id)? else {
            return Ok(false);
        };
        self.txn.open_table(SESSIONS)?.remove((realm, id))?;
        self.txn
            .open_multimap_table(USER_SESSIONS)?
            .remove((realm, session.user_id.as_str()), id)?;
        Ok(true)
    }

    /// Delete the sessions of a realm for which `expired` says so; returns how many.
    pub fn purge_sessions(
        &mut self,
        realm: &str,
        expired: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize> {
        let mut gone = Vec::new();
        for entry in self
            .txn
            .open_table(SESSIONS)?
            .range((realm, "")..=(realm, MAX))?
        {
            let (k, v) = entry?;
            let session: SessionRecord = decode(v.value())?;
            if expired(&session) {
                gone.push(k.value().1.to_string());
            }
        }
        for id in &gone {
            self.delete_session(realm, id)?;
        }
        Ok(gone.len())
    }

    /// End every online (not offline) session of a realm; returns how many.
    pub fn delete_realm_sessions(&mut self, realm: &str) -> Result<usize> {
        self.purge_sessions(realm, |s| !s.offline)
    }

    pub fn put_auth_code(
        &mut self,
        realm: &str,
        code_hash: &str,
        code: &AuthCodeRecord,
    ) -> Result<()> {
        self.insert_record(AUTH_CODES, (realm, code_hash), code)?;
        Ok(())
    }

    pub fn put_login_flow(&mut self, realm: &str, flow: &LoginFlowRecord) -> Result<()> {
        self.insert_record(LOGIN_FLOWS, (realm, flow.id.as_str()), flow)?;
        Ok(())
    }

    pub fn delete_login_flow(&mut self, realm: &str, id: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(LOGIN_FLOWS)?
            .remove((realm, id))?
            .is_some())
    }

    /// Store a device authorization (and its user code index).
    pub fn put_device_code(
        &mut self,
        realm: &str,
        code_hash: &str,
        record: &DeviceCodeRecord,
    ) -> Result<()> {
        self.insert_record(DEVICE_CODES, (realm, code_hash), record)?;
        self.txn
            .open_table(USER_CODES)?
            .insert((realm, record.user_code.as_str()), code_hash)?;
        Ok(())
    }

    /// Forget a device authorization.
    pub fn delete_device_code(&mut self, realm: &str, code_hash: &str) -> Result<()> {
        if let Some(record) = self.device_code(realm, code_hash)? {
            self.txn
                .open_table(USER_CODES)?
                .remove((realm, record.user_code.as_str()))?;
        }
        self.txn
            .open_table(DEVICE_CODES)?
            .remove((realm, code_hash))?;
        Ok(())
    }

    pub fn put_login_failure(
        &mut self,
        realm: &str,
        user: &str,
        record: &LoginFailureRecord,
    ) -> Result<()> {
        self.insert_record(LOGIN_FAILURES, (realm, user), record)?;
        Ok(())
    }

    /// Forget one user's failures (`Some`) or every user's of the realm (`None`).
    pub fn clear_login_failures(&mut self, realm: &str, user: Option<&str>) -> Result<()> {
        let mut t = self.txn.open_table(LOGIN_FAILURES)?;
        match user {
            Some(u) => {
                t.remove((realm, u))?;
            }
            None => t.retain_in((realm, "")..=(realm, MAX), |_, _| false)?,
        }
        Ok(())
    }

    /// Remember a revoked access token until `expires_at` (s).
    pub fn revoke_token(&mut self, realm: &str, jti: &str, expires_at: i64) -> Result<()> {
        self.txn
            .open_table(REVOKED_TOKENS)?
            .insert((realm, jti), expires_at)?;
        Ok(())
    }

    /// Drop expired codes, login flows and revocations (all realms). Returns how many went.
    pub fn purge_expired(&mut self, now_ms: i64) -> Result<usize> {
        let mut n = 0;
        self.txn.open_table(AUTH_CODES)?.retain(|_, v| {
            let keep = serde_json::from_slice::<AuthCodeRecord>(v)
                .map(|c| c.expires_at > now_ms)
                .unwrap_or(false);
            n += usize::from(!keep);
            keep
        })?;
        self.txn.open_table(LOGIN_FLOWS)?.retain(|_, v| {
            let keep = serde_json::from_slice::<LoginFlowRecord>(v)
                .map(|f| f.expires_at > now_ms)
                .unwrap_or(false);
            n += usize::from(!keep);
            keep
        })?;
        let mut expired_devices = Vec::new();
        for entry in self.txn.open_table(DEVICE_CODES)?.iter()? {
            let (k, v) = entry?;
            let keep = serde_json::from_slice::<DeviceCodeRecord>(v.value())
                .map(|d| d.expires_at > now_ms)
                .unwrap_or(false);
            if !keep {
                let (realm, hash) = k.value();
                expired_devices.push((realm.to_string(), hash.to_string()));
            }
        }
        for (realm, hash) in expired_devices {
            self.delete_device_code(&realm, &hash)?;
            n += 1;
        }
        let now_s = now_ms / 1000;
        self.txn.open_table(REVOKED_TOKENS)?.retain(|_, exp| {
            let keep = exp > now_s;
            n += usize::from(!keep);
            keep
        })?;
        Ok(n)
    }
}
