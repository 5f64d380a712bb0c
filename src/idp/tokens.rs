//! Token contents in Keycloak's layout, and their issuance. Access tokens (`typ: Bearer`),
//! ID tokens (`typ: ID`) and refresh tokens (`typ: Refresh` / `Offline`) are JWTs signed
//! with the realm key of the client's (or realm's) algorithm.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::jwt::{Algorithm, JwtError};
use crate::crypto::random_id;
use crate::store::{ClientRecord, RealmRecord, SessionRecord, UserRecord};

use super::keys::{KeyError, RealmKeys};
use super::roles::EffectiveRoles;

pub const TYP_BEARER: &str = "Bearer";
pub const TYP_ID: &str = "ID";
pub const TYP_REFRESH: &str = "Refresh";
pub const TYP_OFFLINE: &str = "Offline";

/// `{"roles": [...]}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesClaim {
    pub roles: Vec<String>,
}

/// The claims of every token we issue; absent claims are omitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    pub jti: String,
    pub iss: String,
    /// A string or an array, as Keycloak writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    pub sub: String,
    pub typ: String,
    pub azp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(
        rename = "allowed-origins",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<RolesClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_access: Option<BTreeMap<String, RolesClaim>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Service-account tokens carry the client id (Keycloak's `client_id` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Claims added by the client's protocol mappers.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// `aud` as a list.
    pub fn audiences(&self) -> Vec<String> {
        match &self.aud {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        }
    }
}

pub use super::client_scopes::Scopes;

/// Everything issuance needs, gathered by the grant.
pub struct IssueContext<'a> {
    pub issuer: &'a str,
    pub realm: &'a RealmRecord,
    pub client: &'a ClientRecord,
    pub user: &'a UserRecord,
    pub roles: &'a EffectiveRoles,
    pub scopes: &'a Scopes,
    /// The SSO (or offline) session; `None` for client-credentials tokens.
    pub session: Option<&'a SessionRecord>,
    pub nonce: Option<&'a str>,
    pub now_secs: i64,
    /// Include a refresh token.
    pub refresh: bool,
    /// The user's group paths (only needed when a group mapper is configured).
    pub group_paths: &'a [String],
    /// The requesting client's address: service-account tokens carry it as Keycloak's
    /// `clientHost` and `clientAddress`.
    pub client_address: Option<&'a str>,
}

/// What the token endpoint returns.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    /// The refresh token's `jti`, which the session records for rotation.
    pub refresh_jti: Option<String>,
    pub refresh_expires_in: i64,
    pub id_token: Option<String>,
    pub scope: String,
    /// The applied scopes as a `scope` parameter (`Scopes::to_param`), kept in the session
    /// for refreshes.
    pub scope_param: String,
    pub session_state: Option<String>,
}

impl IssuedTokens {
    /// Keycloak's token response body.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "refresh_expires_in": self.refresh_expires_in,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": self.scope,
        });
        if let Some(r) = &self.refresh_token {
            body["refresh_token"] = r.clone().into();
        }
        if let Some(id) = &self.id_token {
            body["id_token"] = id.clone().into();
        }
        if let Some(s) = &self.session_state {
            body["session_state"] = s.clone().into();
        }
        body
    }
}

/// The algorithm a client's tokens are signed with: the client's override, else the realm's.
pub fn signing_algorithm(realm: &RealmRecord, client: &ClientRecord, attribute: &str) -> Algorithm {
    client
        .attributes
        .get(attribute)
        .and_then(|a| Algorithm::parse(a))
        .or_else(|| Algorithm::parse(&realm.default_signature_algorithm))
        .unwrap_or(Algorithm::RS256)
}

/// Origins from a client's `webOrigins` (`+` means the redirect URIs' origins).
pub fn allowed_origins(client: &ClientRecord) -> Vec<String> {
    let mut out = BTreeSet::new();
    for origin in &client.web_origins {
        if origin == "+" {
            for uri in &client.redirect_uris {
                if let Ok(u) = url::Url::parse(uri.trim_end_matches('*')) {
                    let o = u.origin().ascii_serialization();
                    if o != "null" {
                        out.insert(o);
                    }
                }
            }
        } else {
            out.insert(origin.trim_end_matches('/').to_string());
        }
    }
    out.into_iter().collect()
}

/// Issue the tokens of one grant.
pub fn issue(keys: &RealmKeys, cx: &IssueContext<'_>) -> Result<IssuedTokens, KeyError> {
    let realm = cx.realm;
    let client = cx.client;
    let lifespan = client
        .attributes
        .get("access.token.lifespan")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(realm.access_token_lifespan);
    let sid = cx.session.map(|s| s.id.clone());
    let auth_time = cx.session.map(|s| s.auth_time / 1000);

    // `cx.roles` are already the client's role scope (`roles::in_client_scope`); the
    // mappers of the client and of its applied scopes decide which claims carry what.
    let mappers = cx.scopes.mappers(client);
    let subject = super::mappers::Subject {
        user: cx.user,
        roles: cx.roles,
        group_paths: cx.group_paths,
    };
    let mapped_access = super::mappers::apply(&mappers, &subject, super::mappers::Target::Access);
    let mut aud = Vec::new();
    if mapped_access.audience_resolve {
        for (client_id, roles) in &cx.roles.clients {
            if client_id != &client.client_id && !roles.is_empty() {
                aud.push(client_id.clone());
            }
        }
    }
    for a in &mapped_access.audiences {
        if !aud.contains(a) {
            aud.push(a.clone());
        }
    }
    let audience = match aud.len() {
        0 => None,
        1 => Some(serde_json::Value::String(aud.remove(0))),
        _ => Some(serde_json::Value::from(aud)),
    };
    let scope = cx.scopes.to_claim();
    let acr = |on: bool| on.then(|| "1".to_string());

    let mut access = Claims {
        exp: cx.now_secs + lifespan,
        iat: cx.now_secs,
        // When the user authenticated (Keycloak's AUTH_TIME note of the session).
        auth_time,
        jti: random_id(),
        iss: cx.issuer.to_string(),
        aud: audience,
        sub: cx.user.id.clone(),
        typ: TYP_BEARER.into(),
        azp: client.client_id.clone(),
        nonce: None,
        session_state: sid.clone(),
        acr: acr(mapped_access.acr),
        allowed_origins: Some(allowed_origins(client))
            .filter(|o| mapped_access.allowed_origins && !o.is_empty()),
        scope: Some(scope.clone()),
        sid: sid.clone(),
        client_id: cx
            .user
            .service_account_client_id
            .as_ref()
            .map(|_| client.client_id.clone()),
        // Profile, e-mail and role claims come from the mappers (never from a typed field
        // as well: the two would be written twice).
        extra: mapped_access.claims,
        ..Default::default()
    };
    if cx.user.service_account_client_id.is_some() {
        // Keycloak's service-account mappers: the client's host and address (no reverse
        // lookup: both are the address), beside `client_id`.
        if let Some(address) = cx.client_address {
            for claim in ["clientHost", "clientAddress"] {
                access
                    .extra
                    .entry(claim)
                    .or_insert_with(|| address.to_string().into());
            }
        }
    }
    let access_alg = signing_algorithm(realm, client, "access.token.signed.response.alg");
    let access_token = keys.signer(access_alg)?.sign(&access)?;

    let id_token = if cx.scopes.openid {
        let mapped_id = super::mappers::apply(&mappers, &subject, super::mappers::Target::Id);
        let id = Claims {
            exp: access.exp,
            iat: cx.now_secs,
            auth_time,
            jti: random_id(),
            iss: cx.issuer.to_string(),
            aud: Some(client.client_id.clone().into()),
            sub: cx.user.id.clone(),
            typ: TYP_ID.into(),
            azp: client.client_id.clone(),
            nonce: cx.nonce.map(String::from),
            session_state: sid.clone(),
            at_hash: Some(token_hash(&access_token)),
            acr: acr(mapped_id.acr),
            sid: sid.clone(),
            extra: mapped_id.claims,
            ..Default::default()
        };
        let id_alg = signing_algorithm(realm, client, "id.token.signed.response.alg");
        Some(keys.signer(id_alg)?.sign(&id).map_err(KeyError::from)?)
    } else {
        None
    };

    let (refresh_token, refresh_jti, refresh_expires_in) = match (cx.refresh, cx.session) {
        (true, Some(session)) => {
            let (typ, exp) = if session.offline {
                (
                    TYP_OFFLINE,
                    cx.now_secs + realm.offline_session_idle_timeout,
                )
            } else {
                let idle = cx.now_secs + realm.sso_session_idle_timeout;
                let max = session.created_at / 1000 + realm.sso_session_max_lifespan;
                (TYP_REFRESH, idle.min(max))
            };
            let jti = random_id();
            let refresh = Claims {
                exp,
                iat: cx.now_secs,
                jti: jti.clone(),
                iss: cx.issuer.to_string(),
                aud: Some(cx.issuer.to_string().into()),
                sub: cx.user.id.clone(),
                typ: typ.into(),
                azp: client.client_id.clone(),
                nonce: cx.nonce.map(String::from),
                session_state: sid.clone(),
                scope: Some(scope.clone()),
                sid: sid.clone(),
                ..Default::default()
            };
            let token = keys.signer(access_alg)?.sign(&refresh)?;
            let expires_in = if session.offline {
                0
            } else {
                exp - cx.now_secs
            };
            (Some(token), Some(jti), expires_in)
        }
        _ => (None, None, 0),
    };

    Ok(IssuedTokens {
        access_token,
        expires_in: lifespan,
        refresh_token,
        refresh_jti,
        refresh_expires_in,
        id_token,
        scope,
        scope_param: cx.scopes.to_param(),
        session_state: sid,
    })
}

/// `at_hash`: the left half of SHA-256 of the token, base64url.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    B64.encode(&digest[..16])
}

/// Verify a token we issued: signature with the realm key named by `kid` (algorithm taken
/// from the key), issuer, expiry, and `typ`.
pub fn verify(
    keys: &RealmKeys,
    token: &str,
    issuer: &str,
    typ: &[&str],
    now_secs: i64,
) -> Result<Claims, TokenError> {
    let header = crate::crypto::jwt::decode_header(token).map_err(TokenError::Jwt)?;
    let kid = header.kid.ok_or(TokenError::Jwt(JwtError::UnknownKey))?;
    let key = keys
        .verifier(&kid)
        .ok_or(TokenError::Jwt(JwtError::UnknownKey))?;
    let claims: Claims = key.verify(token).map_err(TokenError::Jwt)?;
    if claims.iss != issuer {
        return Err(TokenError::Issuer);
    }
    if claims.exp <= now_secs && claims.typ != TYP_OFFLINE {
        return Err(TokenError::Expired);
    }
    if !typ.contains(&claims.typ.as_str()) {
        return Err(TokenError::Type);
    }
    Ok(claims)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("{0}")]
    Jwt(JwtError),
    #[error("wrong issuer")]
    Issuer,
    #[error("token expired")]
    Expired,
    #[error("wrong token type")]
    Type,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_origins_plus_means_redirect_origins() {
        let client = ClientRecord {
            redirect_uris: vec![
                "https://app.example.com/cb/*".into(),
                "http://localhost:3000/x".into(),
            ],
            web_origins: vec!["+".into(), "https://other.example.com/".into()],
            ..Default::default()
        };
        assert_eq!(
            allowed_origins(&client),
            vec![
                "http://localhost:3000",
                "https://app.example.com",
                "https://other.example.com"
            ]
        );
    }

    #[test]
    fn at_hash_is_half_sha256() {
        assert_eq!(token_hash("abc").len(), 22);
    }
}
