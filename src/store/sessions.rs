//! Login state: SSO sessions, authorization codes, login flows in progress, device codes,
//! revoked token ids and brute-force counters, and the housekeeping that expires them.

use std::ops::Bound;

use super::records::{
    AuthCodeRecord, DeviceCodeRecord, LoginFailureRecord, LoginFlowRecord, SessionRecord,
};
use super::tables::{
    AUTH_CODES, DEVICE_CODES, LOGIN_FAILURES, LOGIN_FLOWS, REVOKED_TOKENS, SESSIONS, USER_CODES,
    USER_SESSIONS,
};
use super::view::{between, existing, Txn, View, Write, MAX};
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
        self.records_in(SESSIONS, between((realm, ""), (realm, MAX)))
    }

    /// Sessions in every realm (the `active sessions` gauge).
    pub fn session_count(&self) -> Result<u64> {
        self.count(SESSIONS)
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
        self.get(USER_CODES, (realm, user_code))
    }

    pub fn login_failure(&self, realm: &str, user: &str) -> Result<Option<LoginFailureRecord>> {
        self.record(LOGIN_FAILURES, (realm, user))
    }

    /// Whether an access token (by `jti`) was revoked.
    pub fn is_revoked(&self, realm: &str, jti: &str) -> Result<bool> {
        Ok(self.get(REVOKED_TOKENS, (realm, jti))?.is_some())
    }
}

impl Write {
    /// Insert or update a session of an existing user.
    pub fn put_session(&mut self, realm: &str, session: &SessionRecord) -> Result<()> {
        if self.user(realm, &session.user_id)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.insert_record(SESSIONS, (realm, session.id.as_str()), session)?;
        self.multi_insert(
            USER_SESSIONS,
            (realm, session.user_id.as_str()),
            session.id.as_str(),
        )
    }

    pub fn delete_session(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(session) = self.session(realm, id)? else {
            return Ok(false);
        };
        self.remove(SESSIONS, (realm, id))?;
        self.multi_remove(USER_SESSIONS, (realm, session.user_id.as_str()), id)?;
        Ok(true)
    }

    /// Delete the sessions of a realm for which `expired` says so; returns how many.
    pub fn purge_sessions(
        &mut self,
        realm: &str,
        expired: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize> {
        let mut gone = Vec::new();
        for session in
            self.records_in::<_, SessionRecord>(SESSIONS, between((realm, ""), (realm, MAX)))?
        {
            if expired(&session) {
                gone.push(session.id);
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
        self.remove(LOGIN_FLOWS, (realm, id))
    }

    /// Store a device authorization (and its user code index).
    pub fn put_device_code(
        &mut self,
        realm: &str,
        code_hash: &str,
        record: &DeviceCodeRecord,
    ) -> Result<()> {
        self.insert_record(DEVICE_CODES, (realm, code_hash), record)?;
        self.insert(USER_CODES, (realm, record.user_code.as_str()), code_hash)
    }

    /// Forget a device authorization.
    pub fn delete_device_code(&mut self, realm: &str, code_hash: &str) -> Result<()> {
        if let Some(record) = self.device_code(realm, code_hash)? {
            self.remove(USER_CODES, (realm, record.user_code.as_str()))?;
        }
        self.remove(DEVICE_CODES, (realm, code_hash))?;
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
        match user {
            Some(u) => {
                self.remove(LOGIN_FAILURES, (realm, u))?;
            }
            None => {
                self.remove_range(LOGIN_FAILURES, between((realm, ""), (realm, MAX)))?;
            }
        }
        Ok(())
    }

    /// Remember a revoked access token until `expires_at` (s).
    pub fn revoke_token(&mut self, realm: &str, jti: &str, expires_at: i64) -> Result<()> {
        self.insert(REVOKED_TOKENS, (realm, jti), expires_at)
    }

    /// Drop expired codes, login flows and revocations (all realms). Returns how many went.
    pub fn purge_expired(&mut self, now_ms: i64) -> Result<usize> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        let mut n = self.remove_where(AUTH_CODES, all, |_, v| {
            serde_json::from_slice::<AuthCodeRecord>(v).map_or(true, |c| c.expires_at <= now_ms)
        })?;
        n += self.remove_where(LOGIN_FLOWS, all, |_, v| {
            serde_json::from_slice::<LoginFlowRecord>(v).map_or(true, |f| f.expires_at <= now_ms)
        })?;
        let mut expired_devices = Vec::new();
        self.scan(DEVICE_CODES, all, false, |key, v| {
            let expired = serde_json::from_slice::<DeviceCodeRecord>(&v)
                .map_or(true, |d| d.expires_at <= now_ms);
            if expired {
                expired_devices.push(key);
            }
            Ok(true)
        })?;
        for (realm, hash) in expired_devices {
            self.delete_device_code(&realm, &hash)?;
            n += 1;
        }
        let now_s = now_ms / 1000;
        n += self.remove_where(REVOKED_TOKENS, all, |_, &exp| exp <= now_s)?;
        n += self.purge_used_once(now_s)?;
        Ok(n)
    }
}
