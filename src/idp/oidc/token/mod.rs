//! The token endpoint: `authorization_code` (+ PKCE), `password` (direct access grants)
//! and `client_credentials` (service accounts) here, `refresh_token` in `refresh.rs` (the
//! realm's `revokeRefreshToken` rules) and the device code in `device_grant.rs`. Every
//! grant authenticates the client first.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::StatusCode;
use sha2::{Digest, Sha256};

use crate::crypto::constant_time_eq;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::authn::{authenticate_password, AuthnFailure};
use crate::idp::client_scopes::{needs_groups, resolve, OFFLINE_ACCESS};
use crate::idp::flows::OtpStep;
use crate::idp::keys::RealmKeys;
use crate::idp::oidc::error::OAuthError;
use crate::idp::roles::effective_roles;
use crate::idp::sessions::{is_valid, new_session};
use crate::idp::tokens::{self, allowed_origins, issue, IssueContext, IssuedTokens, Scopes};
use crate::idp::App;
use crate::store::{ClientRecord, Read, RealmRecord, SessionRecord, UserRecord};

mod device_grant;
mod refresh;

use crate::idp::oidc::{hash_code, no_store_json, with_cors};

/// `POST /realms/{realm}/protocol/openid-connect/token`
pub async fn token(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let super::BackChannel {
        params,
        realm,
        client,
        keys,
        issuer: iss,
        now_ms,
    } = super::back_channel(app, request, info, realm_name)?;
    let grant = Grant {
        app,
        realm: &realm,
        client: &client,
        keys: &keys,
        issuer: &iss,
        params: &params,
        now_ms,
        ip: info.peer.map(|p| p.ip().to_string()),
    };
    let (event, result) = match params.get("grant_type").map(String::as_str) {
        Some("password") => ("LOGIN", grant.password().await),
        Some("client_credentials") => ("CLIENT_LOGIN", grant.client_credentials()),
        Some("refresh_token") => ("REFRESH_TOKEN", grant.refresh_token()),
        Some("authorization_code") => ("CODE_TO_TOKEN", grant.authorization_code()),
        Some(super::device::GRANT_TYPE) => ("OAUTH2_DEVICE_CODE_TO_TOKEN", grant.device_code()),
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
        None => {
            return Err(OAuthError::InvalidRequest(
                "Missing form parameter: grant_type".into(),
            ))
        }
    };
    let ip = info.peer.map(|p| p.ip().to_string());
    let tokens = match result {
        Ok(tokens) => {
            let claims: Option<tokens::Claims> =
                crate::crypto::jwt::decode_unverified(&tokens.access_token).ok();
            let mut details = std::collections::BTreeMap::new();
            details.insert(
                "grant_type".to_string(),
                params.get("grant_type").cloned().unwrap_or_default(),
            );
            crate::idp::events::record(
                app,
                &realm,
                crate::idp::events::Event {
                    kind: event,
                    client_id: Some(&client.client_id),
                    user_id: claims.as_ref().map(|c| c.sub.as_str()),
                    session_id: tokens.session_state.as_deref(),
                    ip_address: ip.as_deref(),
                    error: None,
                    details,
                },
            );
            tokens
        }
        Err(e) => {
            if !matches!(
                e,
                OAuthError::Internal(_) | OAuthError::AuthorizationPending | OAuthError::SlowDown
            ) {
                let kind = format!("{event}_ERROR");
                let mut details = std::collections::BTreeMap::new();
                if let Some(u) = params.get("username") {
                    details.insert("username".to_string(), u.clone());
                }
                let error = match &e {
                    OAuthError::InvalidCredentials => "invalid_user_credentials".to_string(),
                    other => other.to_string(),
                };
                crate::idp::events::record(
                    app,
                    &realm,
                    crate::idp::events::Event {
                        kind: &kind,
                        client_id: Some(&client.client_id),
                        ip_address: ip.as_deref(),
                        error: Some(&error),
                        details,
                        ..Default::default()
                    },
                );
            }
            return Err(e);
        }
    };
    let response = no_store_json(StatusCode::OK, &tokens.to_json());
    Ok(with_cors(response, request, &allowed_origins(&client)))
}

/// The gateway, a client of its own provider, redeems a code it received at its login
/// callback without an HTTP round trip. Every check of the token endpoint applies (single
/// use, expiry, client, redirect URI, PKCE); only client authentication is skipped, since
/// the caller is the server itself.
pub fn redeem_code_in_process(
    app: &App,
    realm: &RealmRecord,
    client: &ClientRecord,
    issuer: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<IssuedTokens, OAuthError> {
    let now_ms = app.clock.now_millis();
    let keys = {
        let read = app.store.read()?;
        app.keys
            .realm_keys(&read, &realm.id, now_ms)
            .map_err(|e| OAuthError::Internal(e.to_string()))?
    };
    let params: BTreeMap<String, String> = [
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Grant {
        app,
        realm,
        client,
        keys: &keys,
        issuer,
        params: &params,
        now_ms,
        ip: None,
    }
    .authorization_code()
}

struct Grant<'a> {
    app: &'a App,
    realm: &'a RealmRecord,
    client: &'a ClientRecord,
    keys: &'a RealmKeys,
    issuer: &'a str,
    params: &'a BTreeMap<String, String>,
    now_ms: i64,
    ip: Option<String>,
}

impl Grant<'_> {
    fn param(&self, name: &str) -> Result<&str, OAuthError> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::InvalidRequest(format!("Missing parameter: {name}")))
    }

    /// The scopes a request's `scope` applies (`invalid_scope` for one the client lacks).
    fn scopes(&self, requested: Option<&str>) -> Result<Scopes, OAuthError> {
        let read = self.app.store.read()?;
        Ok(resolve(
            &read,
            &self.realm.id,
            self.client,
            requested,
            true,
        )?)
    }

    /// The scopes a stored scope (of a code, a device code, a refresh token) applies now.
    fn stored_scopes(&self, stored: &str) -> Result<Scopes, OAuthError> {
        let read = self.app.store.read()?;
        Ok(resolve(
            &read,
            &self.realm.id,
            self.client,
            Some(stored),
            false,
        )?)
    }

    fn issue_for(
        &self,
        user: &UserRecord,
        scopes: &Scopes,
        session: Option<&SessionRecord>,
        nonce: Option<&str>,
    ) -> Result<IssuedTokens, OAuthError> {
        self.issue_with(&self.app.store.read()?, user, scopes, session, nonce)
    }

    /// [`Self::issue_for`] reading the user's roles in `read`.
    fn issue_with(
        &self,
        read: &Read,
        user: &UserRecord,
        scopes: &Scopes,
        session: Option<&SessionRecord>,
        nonce: Option<&str>,
    ) -> Result<IssuedTokens, OAuthError> {
        let (roles, group_paths) =
            token_roles(read, &self.realm.id, self.client, scopes, &user.id)?;
        if scopes.offline_access && !roles.realm.contains("offline_access") {
            return Err(OAuthError::InvalidScope(
                "Offline tokens not allowed for the user or client".into(),
            ));
        }
        issue(
            self.keys,
            &IssueContext {
                issuer: self.issuer,
                realm: self.realm,
                client: self.client,
                user,
                roles: &roles,
                scopes,
                session,
                nonce,
                now_secs: self.now_ms / 1000,
                refresh: session.is_some(),
                group_paths: &group_paths,
                client_address: self.ip.as_deref(),
            },
        )
        .map_err(|e| OAuthError::Internal(e.to_string()))
    }

    /// Store a new session with the refresh token's `jti` recorded for rotation.
    fn start_session(
        &self,
        user: &UserRecord,
        scopes: &Scopes,
        nonce: Option<&str>,
        remember_me: bool,
    ) -> Result<IssuedTokens, OAuthError> {
        let mut session = new_session(
            &user.id,
            self.now_ms,
            self.ip.clone(),
            remember_me,
            scopes.offline_access,
        );
        let tokens = self.issue_for(user, scopes, Some(&session), nonce)?;
        crate::idp::sessions::record_issued(
            &mut session,
            &self.client.client_id,
            self.now_ms,
            &tokens,
        );
        self.app
            .store
            .write(|w| w.put_session(&self.realm.id, &session))?;
        Ok(tokens)
    }

    async fn password(&self) -> Result<IssuedTokens, OAuthError> {
        if !self.client.direct_access_grants_enabled {
            return Err(OAuthError::UnauthorizedClient(
                "Client not allowed for direct access grants".into(),
            ));
        }
        let executors = crate::idp::client_policies::executors(
            &self.app.store.read()?,
            &self.realm.id,
            self.client,
        )?;
        crate::idp::client_policies::check_password_grant(&executors)
            .map_err(|(_, d)| OAuthError::InvalidGrant(d))?;
        let username = self.param("username")?;
        let password = self.param("password")?;
        let scopes = self.scopes(self.params.get("scope").map(String::as_str))?;
        let authenticated = match authenticate_password(
            self.app,
            self.realm,
            username,
            password,
            self.ip.as_deref(),
        )
        .await?
        {
            Ok(a) => a,
            Err(AuthnFailure::Invalid | AuthnFailure::Locked) => {
                return Err(OAuthError::InvalidCredentials)
            }
            Err(AuthnFailure::Disabled) => {
                return Err(OAuthError::InvalidGrant("Account disabled".into()))
            }
            Err(AuthnFailure::Busy) => return Err(OAuthError::Busy),
        };
        // The realm's direct grant flow decides whether a one-time code is needed.
        let has_otp = !authenticated.otp_credentials.is_empty();
        let otp = {
            let read = self.app.store.read()?;
            let plan = crate::idp::flows::direct_grant_plan(&read, self.realm, Some(self.client))?;
            if let Some(step) = plan.unsupported {
                tracing::warn!(realm = %self.realm.name, step, "the direct grant flow requires a step Portcullis cannot perform");
                return Err(OAuthError::InvalidGrant(
                    "Direct grant is not available for this realm".into(),
                ));
            }
            plan.otp_step(&read, &self.realm.id, &authenticated.user.id, has_otp)?
        };
        let otp_missing = otp == OtpStep::Configure;
        if authenticated.temporary_password
            || !crate::idp::required_actions::pending(
                self.realm,
                &authenticated.user.required_actions,
            )
            .is_empty()
            || otp_missing
        {
            return Err(OAuthError::InvalidGrant(
                "Account is not fully set up".into(),
            ));
        }
        // A user with an authenticator must also send its code (`otp`, or `totp` as older
        // Keycloak clients do); a wrong code counts as a failed login.
        if otp == OtpStep::Ask {
            let code = self
                .params
                .get("otp")
                .or_else(|| self.params.get("totp"))
                .map(String::as_str)
                .unwrap_or("");
            if !crate::idp::authn::verify_second_factor(
                self.app,
                self.realm,
                &authenticated.user.id,
                &authenticated.otp_credentials,
                code,
                self.ip.as_deref(),
            )? {
                return Err(OAuthError::InvalidCredentials);
            }
        }
        self.start_session(&authenticated.user, &scopes, None, false)
    }

    fn client_credentials(&self) -> Result<IssuedTokens, OAuthError> {
        if self.client.public_client || !self.client.service_accounts_enabled {
            return Err(OAuthError::UnauthorizedClient(
                "Client not enabled to retrieve service account".into(),
            ));
        }
        let username = format!("service-account-{}", self.client.client_id.to_lowercase());
        // One snapshot for all this grant reads (it writes nothing).
        let read = self.app.store.read()?;
        let user = read
            .user_by_username(&self.realm.id, &username)?
            .filter(|u| u.service_account_client_id.as_deref() == Some(self.client.id.as_str()))
            .ok_or_else(|| {
                OAuthError::UnauthorizedClient(
                    "Client not enabled to retrieve service account".into(),
                )
            })?;
        if !user.enabled {
            return Err(OAuthError::InvalidGrant("Account disabled".into()));
        }
        let requested = self.params.get("scope").map(String::as_str);
        let mut scopes = resolve(&read, &self.realm.id, self.client, requested, true)?;
        // Service accounts get no offline tokens and no refresh token (Keycloak's default).
        scopes.offline_access = false;
        scopes.applied.retain(|s| s.name != OFFLINE_ACCESS);
        self.issue_with(&read, &user, &scopes, None, None)
    }

    fn authorization_code(&self) -> Result<IssuedTokens, OAuthError> {
        let code = self.param("code")?;
        let redirect_uri = self
            .params
            .get("redirect_uri")
            .map(String::as_str)
            .unwrap_or("");
        let code_hash = hash_code(code);
        let realm_id = &self.realm.id;
        let invalid = || OAuthError::InvalidGrant("Code not valid".into());
        // Redeem atomically: read, check, mark used, in one transaction.
        let redeemed = self.app.store.write(|w| {
            let Some(mut record) = w.auth_code(realm_id, &code_hash)? else {
                return Ok(Err(invalid()));
            };
            if record.used {
                // Replay: revoke what the first redemption issued (that client's session in
                // the user's SSO session; the user stays signed in to other apps).
                if let Some(mut s) = w.session(realm_id, &record.session_id)? {
                    crate::idp::sessions::end_client(&mut s, &record.client_id);
                    w.put_session(realm_id, &s)?;
                }
                return Ok(Err(invalid()));
            }
            record.used = true;
            w.put_auth_code(realm_id, &code_hash, &record)?;
            Ok::<_, OAuthError>(Ok(record))
        })?;
        let record = redeemed?;
        if record.expires_at <= self.now_ms {
            return Err(OAuthError::InvalidGrant("Code is expired".into()));
        }
        if record.client_id != self.client.client_id {
            return Err(OAuthError::InvalidGrant(
                "Auth error: Found different client_id".into(),
            ));
        }
        if record.redirect_uri != redirect_uri {
            return Err(OAuthError::InvalidGrant("Incorrect redirect_uri".into()));
        }
        verify_pkce(
            &record.code_challenge,
            &record.code_challenge_method,
            self.params.get("code_verifier"),
        )?;
        let read = self.app.store.read()?;
        let session = read
            .session(realm_id, &record.session_id)?
            .filter(|s| is_valid(self.realm, s, self.now_ms))
            .ok_or_else(|| OAuthError::InvalidGrant("Session not active".into()))?;
        let user = read
            .user(realm_id, &record.user_id)?
            .filter(|u| u.enabled)
            .ok_or_else(|| OAuthError::InvalidGrant("User disabled".into()))?;
        drop(read);
        let scopes = self.stored_scopes(&record.scope)?;
        let tokens = self.issue_for(&user, &scopes, Some(&session), record.nonce.as_deref())?;
        let client_id = &self.client.client_id;
        self.app.store.write(|w| {
            let mut s = w
                .session(realm_id, &session.id)?
                .ok_or_else(|| OAuthError::InvalidGrant("Session not active".into()))?;
            crate::idp::sessions::record_issued(&mut s, client_id, self.now_ms, &tokens);
            w.put_session(realm_id, &s)?;
            Ok::<_, OAuthError>(())
        })?;
        Ok(tokens)
    }
}

/// What a client's tokens about `user` are built from: the user's roles in the client's
/// role scope (with the applied scopes' mappings), and the user's group paths when one of
/// the mappers needs them. The token endpoint, userinfo and the admin API's example tokens
/// all use this.
pub fn token_roles(
    read: &crate::store::Read,
    realm_id: &str,
    client: &ClientRecord,
    scopes: &Scopes,
    user_id: &str,
) -> Result<(crate::idp::roles::EffectiveRoles, Vec<String>), crate::store::StoreError> {
    let roles = crate::idp::roles::in_client_scope(
        read,
        realm_id,
        client,
        scopes,
        effective_roles(read, realm_id, user_id)?,
    )?;
    let group_paths = if needs_groups(&scopes.mappers(client)) {
        crate::idp::roles::group_paths(read, realm_id, user_id)?
    } else {
        Vec::new()
    };
    Ok((roles, group_paths))
}

/// RFC 7636: the verifier must match the challenge sent with the authorization request.
fn verify_pkce(
    challenge: &Option<String>,
    method: &Option<String>,
    verifier: Option<&String>,
) -> Result<(), OAuthError> {
    let Some(challenge) = challenge else {
        return match verifier {
            // A verifier without a challenge is a client bug, not an attack; Keycloak refuses it.
            Some(_) => Err(OAuthError::InvalidGrant(
                "PKCE code verifier specified but challenge not present in authorization".into(),
            )),
            None => Ok(()),
        };
    };
    let verifier = verifier
        .ok_or_else(|| OAuthError::InvalidGrant("PKCE code verifier not specified".into()))?;
    if verifier.len() < 43 || verifier.len() > 128 {
        return Err(OAuthError::InvalidGrant(
            "PKCE invalid code verifier".into(),
        ));
    }
    let computed = match method.as_deref().unwrap_or("plain") {
        "S256" => B64.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.clone(),
    };
    if constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(OAuthError::InvalidGrant(
            "PKCE verification failed: Code mismatch".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_downgrade() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string();
        let challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string());
        let s256 = Some("S256".to_string());
        assert!(verify_pkce(&challenge, &s256, Some(&verifier)).is_ok());
        assert!(verify_pkce(&challenge, &s256, None).is_err());
        let wrong = "x".repeat(43);
        assert!(verify_pkce(&challenge, &s256, Some(&wrong)).is_err());
        assert!(verify_pkce(&None, &None, None).is_ok());
    }
}
