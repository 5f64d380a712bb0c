//! The device-code grant (RFC 8628 §3.4): polling for the outcome of a device
//! authorization.

use crate::idp::oidc::error::OAuthError;
use crate::idp::oidc::hash_code;
use crate::idp::sessions::is_valid;
use crate::idp::tokens::IssuedTokens;

use super::Grant;

impl Grant<'_> {
    /// RFC 8628 §3.4: poll for the outcome of a device authorization.
    pub(super) fn device_code(&self) -> Result<IssuedTokens, OAuthError> {
        if !crate::idp::oidc::device::enabled_for(self.client) {
            return Err(OAuthError::UnauthorizedClient(
                "Client not allowed OAuth 2.0 Device Authorization Grant".into(),
            ));
        }
        let code_hash = hash_code(self.param("device_code")?);
        let realm_id = &self.realm.id;
        let now = self.now_ms;
        // Read, rate-limit and update the record in one transaction.
        let record = self
            .app
            .store
            .write(|w| -> Result<Result<_, OAuthError>, OAuthError> {
                let Some(mut record) = w.device_code(realm_id, &code_hash)? else {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "Device code not valid".into(),
                    )));
                };
                if record.client_id != self.client.client_id {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "Device code not valid".into(),
                    )));
                }
                if record.expires_at <= now {
                    w.delete_device_code(realm_id, &code_hash)?;
                    return Ok(Err(OAuthError::ExpiredToken));
                }
                match record.status.as_str() {
                    "approved" => {
                        w.delete_device_code(realm_id, &code_hash)?;
                        Ok(Ok(record))
                    }
                    "denied" => {
                        w.delete_device_code(realm_id, &code_hash)?;
                        Ok(Err(OAuthError::AccessDenied(
                            "The end user denied the authorization request".into(),
                        )))
                    }
                    _ => {
                        let too_fast = now - record.last_poll < record.interval * 1000;
                        record.last_poll = now;
                        w.put_device_code(realm_id, &code_hash, &record)?;
                        Ok(Err(if too_fast {
                            OAuthError::SlowDown
                        } else {
                            OAuthError::AuthorizationPending
                        }))
                    }
                }
            })??;
        let read = self.app.store.read()?;
        let session = record
            .session_id
            .as_ref()
            .and_then(|sid| read.session(realm_id, sid).ok().flatten())
            .filter(|s| is_valid(self.realm, s, now))
            .ok_or_else(|| OAuthError::InvalidGrant("Session not active".into()))?;
        let user = read
            .user(realm_id, &session.user_id)?
            .filter(|u| u.enabled)
            .ok_or_else(|| OAuthError::InvalidGrant("User disabled".into()))?;
        drop(read);
        let scopes = self.stored_scopes(&record.scope)?;
        let tokens = self.issue_for(&user, &scopes, Some(&session), None)?;
        let client_id = &self.client.client_id;
        self.app.store.write(|w| {
            if let Some(mut s) = w.session(realm_id, &session.id)? {
                crate::idp::sessions::record_issued(&mut s, client_id, now, &tokens);
                w.put_session(realm_id, &s)?;
            }
            Ok::<_, OAuthError>(())
        })?;
        Ok(tokens)
    }
}
