//! The `refresh_token` grant: the rules of `idp::sessions::use_refresh_token`
//! (`revokeRefreshToken`, `refreshTokenMaxReuse`), checked once before signing and again
//! in the transaction that records the new token.

use crate::idp::client_scopes::resolve;
use crate::idp::oidc::error::OAuthError;
use crate::idp::sessions::is_valid;
use crate::idp::tokens::{self, IssuedTokens};

use super::Grant;

impl Grant<'_> {
    pub(super) fn refresh_token(&self) -> Result<IssuedTokens, OAuthError> {
        let presented = self.param("refresh_token")?;
        let invalid = || OAuthError::InvalidGrant("Invalid refresh token".into());
        let claims = tokens::verify(
            self.keys,
            presented,
            self.issuer,
            &[tokens::TYP_REFRESH, tokens::TYP_OFFLINE],
            self.now_ms / 1000,
        )
        .map_err(|_| invalid())?;
        if claims.azp != self.client.client_id {
            return Err(OAuthError::InvalidGrant(
                "Invalid refresh token. Token client and authorized client don't match".into(),
            ));
        }
        let sid = claims.sid.clone().ok_or_else(invalid)?;
        let read = self.app.store.read()?;
        let session = read
            .session(&self.realm.id, &sid)?
            .filter(|s| is_valid(self.realm, s, self.now_ms))
            .ok_or_else(|| OAuthError::InvalidGrant("Session not active".into()))?;
        let user = read
            .user(&self.realm.id, &session.user_id)?
            .ok_or_else(|| OAuthError::InvalidGrant("User not found".into()))?;
        if !user.enabled {
            return Err(OAuthError::InvalidGrant("User disabled".into()));
        }
        // Refused early (no new tokens signed) when the client's session is gone or the
        // token is stale; the decisive check is the one in the transaction below.
        if !crate::idp::sessions::refresh_token_usable(
            self.realm,
            &session,
            &self.client.client_id,
            &claims.jti,
        ) {
            drop(read);
            return self.refuse_refresh(&session.id, &claims.jti);
        }
        // The scopes of the client's session; the token's claim for sessions stored before.
        let stored = session
            .client_scopes
            .get(&self.client.client_id)
            .cloned()
            .unwrap_or_else(|| claims.scope.clone().unwrap_or_default());
        // The session, the user, the scopes and the roles from one snapshot; the write
        // below checks the session again.
        let scopes = resolve(&read, &self.realm.id, self.client, Some(&stored), false)?;
        let tokens = self.issue_with(
            &read,
            &user,
            &scopes,
            Some(&session),
            claims.nonce.as_deref(),
        )?;
        drop(read);
        let (realm_id, client_id) = (&self.realm.id, &self.client.client_id);
        let used = self.app.store.write_volatile(|w| {
            // In the transaction: of two refreshes at once, each counts.
            let mut s = w
                .session(realm_id, &session.id)?
                .ok_or_else(|| OAuthError::InvalidGrant("Session not active".into()))?;
            let used =
                crate::idp::sessions::use_refresh_token(self.realm, &mut s, client_id, &claims.jti);
            if used.is_ok() {
                crate::idp::sessions::record_issued(&mut s, client_id, self.now_ms, &tokens);
            }
            w.put_session(realm_id, &s)?;
            Ok::<_, OAuthError>(used)
        })?;
        if let Err(refused) = used {
            self.warn_reuse(refused);
            return Err(OAuthError::InvalidGrant(refused.message().into()));
        }
        Ok(tokens)
    }

    /// Refuse a refresh token that may not be used, ending the client's session when it
    /// was reuse (see [`crate::idp::sessions::use_refresh_token`]).
    fn refuse_refresh(&self, session_id: &str, jti: &str) -> Result<IssuedTokens, OAuthError> {
        let (realm_id, client_id) = (&self.realm.id, &self.client.client_id);
        let refused = self.app.store.write_volatile(|w| {
            let Some(mut s) = w.session(realm_id, session_id)? else {
                return Ok(crate::idp::sessions::RefreshRefused::NoClientSession);
            };
            match crate::idp::sessions::use_refresh_token(self.realm, &mut s, client_id, jti) {
                // Refused in the snapshot: keep what the refusal did (the client's session
                // ended on reuse).
                Err(refused) => {
                    w.put_session(realm_id, &s)?;
                    Ok(refused)
                }
                // Usable after all (a login of the client in between): refuse this request
                // without using the token up; the client may try again.
                Ok(()) => {
                    Ok::<_, OAuthError>(crate::idp::sessions::RefreshRefused::NoClientSession)
                }
            }
        })?;
        self.warn_reuse(refused);
        Err(OAuthError::InvalidGrant(refused.message().into()))
    }

    fn warn_reuse(&self, refused: crate::idp::sessions::RefreshRefused) {
        if refused != crate::idp::sessions::RefreshRefused::NoClientSession {
            tracing::warn!(realm = %self.realm.name, client = %self.client.client_id,
                reason = refused.message(), "refresh token reuse: the client's session ended");
        }
    }
}
