//! Userinfo, token introspection (RFC 7662) and revocation (RFC 7009).

use http::{Method, StatusCode};
use serde_json::json;

use crate::http::{json_response, Request, RequestInfo, Response};
use crate::idp::client_scopes::{resolve, ScopeError};
use crate::idp::keys::RealmKeys;
use crate::idp::oidc::error::OAuthError;
use crate::idp::sessions::is_valid;
use crate::idp::tokens::{self, Claims, TYP_BEARER, TYP_OFFLINE, TYP_REFRESH};
use crate::idp::App;
use crate::store::{Read, RealmRecord, UserRecord};

use super::{bearer_token, issuer, parameters, realm};

/// Verify an access token we issued and that it is still backed by a live session and an
/// enabled user. `Err` carries a reason for the log, never shown in detail to clients.
pub fn verify_access_token(
    read: &Read,
    realm: &RealmRecord,
    keys: &RealmKeys,
    token: &str,
    issuer: &str,
    now_ms: i64,
) -> Result<(Claims, UserRecord), &'static str> {
    let claims = tokens::verify(keys, token, issuer, &[TYP_BEARER], now_ms / 1000)
        .map_err(|_| "invalid token")?;
    active_subject(read, realm, &claims, now_ms).map(|user| (claims, user))
}

/// The user behind a verified token, if its session (when it has one) is live, the token
/// is not revoked and the user is enabled.
fn active_subject(
    read: &Read,
    realm: &RealmRecord,
    claims: &Claims,
    now_ms: i64,
) -> Result<UserRecord, &'static str> {
    if claims.iat < realm.not_before {
        return Err("token issued before the realm's not-before");
    }
    if read
        .is_revoked(&realm.id, &claims.jti)
        .map_err(|_| "store")?
    {
        return Err("token revoked");
    }
    if let Some(sid) = &claims.sid {
        let session = read.session(&realm.id, sid).map_err(|_| "store")?;
        let Some(session) = session.filter(|s| is_valid(realm, s, now_ms)) else {
            return Err("session not active");
        };
        // The client's session in it (Keycloak's client session): gone after a revocation
        // or a replayed code, and the tokens it was given go with it.
        if !session.clients.contains_key(&claims.azp) {
            return Err("client session not active");
        }
    }
    let user = read
        .user(&realm.id, &claims.sub)
        .map_err(|_| "store")?
        .ok_or("user not found")?;
    if !user.enabled || claims.iat < user.not_before {
        return Err("user disabled");
    }
    Ok(user)
}

/// The userinfo claims of `user` for `client` and the token's `scope`: `sub`, and what
/// the userinfo mappers of the client and of the scopes it applies add (the profile and
/// e-mail claims come from the `profile` and `email` scopes' mappers).
pub fn userinfo_claims(
    read: &crate::store::Read,
    realm: &RealmRecord,
    user: &UserRecord,
    client: Option<&crate::store::ClientRecord>,
    scope: &str,
) -> Result<serde_json::Value, crate::store::StoreError> {
    let mut body = json!({ "sub": user.id });
    if let Some(c) = client {
        let scopes = match resolve(read, &realm.id, c, Some(scope), false) {
            Ok(s) => s,
            Err(ScopeError::Store(e)) => return Err(e),
            Err(ScopeError::Invalid(_)) => Default::default(),
        };
        let (roles, paths) = super::token::token_roles(read, &realm.id, c, &scopes, &user.id)?;
        let subject = crate::idp::mappers::Subject {
            user,
            roles: &roles,
            group_paths: &paths,
        };
        let mappers = scopes.mappers(c);
        for (k, v) in
            crate::idp::mappers::apply(&mappers, &subject, crate::idp::mappers::Target::UserInfo)
                .claims
        {
            if k != "sub" {
                body[k] = v;
            }
        }
    }
    Ok(body)
}

/// `GET|POST .../userinfo` with a bearer access token.
pub async fn userinfo(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let read = app.store.read()?;
    let realm = realm(&read, realm_name)?;
    let invalid = |d: &str| OAuthError::InvalidToken {
        realm: realm.name.clone(),
        description: d.to_string(),
    };
    let form = if request.method() == Method::POST {
        parameters(request)?
    } else {
        Default::default()
    };
    let token = bearer_token(request)
        .map(String::from)
        .or_else(|| form.get("access_token").cloned())
        .ok_or_else(|| invalid("Token not provided"))?;
    let now_ms = app.clock.now_millis();
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, now_ms)
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    let iss = issuer(app, request, info, realm_name);
    let (claims, user) =
        verify_access_token(&read, &realm, &keys, &token, &iss, now_ms).map_err(|reason| {
            tracing::debug!(realm = %realm.name, reason, "userinfo token rejected");
            invalid("Token verification failed")
        })?;
    let client = read.client_by_client_id(&realm.id, &claims.azp)?;
    let body = userinfo_claims(
        &read,
        &realm,
        &user,
        client.as_ref(),
        claims.scope.as_deref().unwrap_or(""),
    )?;
    let response = json_response(StatusCode::OK, &body);
    Ok(super::with_cors(
        response,
        request,
        &client
            .map(|c| tokens::allowed_origins(&c))
            .unwrap_or_default(),
    ))
}

/// `POST .../token/introspect`: any confidential client may introspect tokens of its realm.
pub async fn introspect(
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
    if client.public_client {
        return Err(OAuthError::InvalidClient {
            realm: realm.name.clone(),
            description: "Public client is not permitted to invoke introspection endpoint".into(),
        });
    }
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest("Token not provided.".into()))?;
    let read = app.store.read()?;
    let inactive = || json_response(StatusCode::OK, &json!({"active": false}));
    let Ok(claims) = tokens::verify(
        &keys,
        token,
        &iss,
        &[TYP_BEARER, TYP_REFRESH, TYP_OFFLINE],
        now_ms / 1000,
    ) else {
        return Ok(inactive());
    };
    if active_subject(&read, &realm, &claims, now_ms).is_err() {
        return Ok(inactive());
    }
    if claims.typ != TYP_BEARER {
        // A refresh token is active while the token endpoint would accept it.
        let usable = claims
            .sid
            .as_ref()
            .and_then(|sid| read.session(&realm.id, sid).ok().flatten())
            .is_some_and(|s| {
                crate::idp::sessions::refresh_token_usable(&realm, &s, &claims.azp, &claims.jti)
            });
        if !usable {
            return Ok(inactive());
        }
    }
    let mut body =
        serde_json::to_value(&claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    body["active"] = true.into();
    body["client_id"] = claims.azp.clone().into();
    body["token_type"] = claims.typ.clone().into();
    if let Some(u) = &claims.preferred_username {
        body["username"] = u.clone().into();
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST .../revoke`: revoke a refresh token (its session's refresh for that client; an
/// offline session entirely) or an access token (until it expires).
pub async fn revoke(
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
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest("Token not provided".into()))?;
    let ok = || {
        Ok(super::with_cors(
            json_response(StatusCode::OK, &json!({})),
            request,
            &tokens::allowed_origins(&client),
        ))
    };
    // RFC 7009: an invalid or unknown token is not an error.
    let Ok(claims) = tokens::verify(
        &keys,
        token,
        &iss,
        &[TYP_BEARER, TYP_REFRESH, TYP_OFFLINE],
        now_ms / 1000,
    ) else {
        let mut r = ok()?;
        *r.status_mut() = StatusCode::OK;
        return Ok(r);
    };
    if claims.azp != client.client_id {
        return Err(OAuthError::UnauthorizedClient("Unmatching clients".into()));
    }
    app.store.write(|w| {
        if claims.typ == TYP_BEARER {
            w.revoke_token(&realm.id, &claims.jti, claims.exp)?;
        } else if let Some(sid) = &claims.sid {
            if let Some(mut session) = w.session(&realm.id, sid)? {
                if session.offline {
                    crate::idp::sessions::end_in(w, &realm.id, sid)?;
                } else {
                    crate::idp::sessions::end_client(&mut session, &client.client_id);
                    w.put_session(&realm.id, &session)?;
                }
            }
        }
        Ok::<_, OAuthError>(())
    })?;
    ok()
}
