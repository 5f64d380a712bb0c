//! Dynamic client registration as Keycloak serves it: RFC 7591 / 7592 metadata at
//! `/realms/{realm}/clients-registrations/openid-connect[/{client_id}]`, and the admin
//! API's client representation at `.../clients-registrations/default[/{clientId}]`.
//!
//! A registration is authorised by an initial access token (created by an administrator
//! with `clients-initial-access`, limited in count and time) or by the access token of a
//! user who may create clients in the realm. Anonymous registration is refused, as
//! Keycloak's default "Trusted Hosts" policy refuses it when no host is trusted. The
//! response carries a registration access token, which alone reads, updates (and is then
//! replaced) or deletes the registered client.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::crypto::{random_id, random_token};
use crate::http::{json_response, Request, RequestInfo, Response};
use crate::idp::client_registration::{
    consume_initial_access, forget, new_registration_token, registration_token_matches, Consumed,
};
use crate::idp::oidc::error::OAuthError;
use crate::idp::App;
use crate::store::{ClientRecord, RealmRecord, Txn, View, Write};

use super::{bearer_token, issuer, realm};

/// RFC 7591 client metadata (Keycloak's `OIDCClientRepresentation`); unknown fields are
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    scope: Option<String>,
    contacts: Option<Vec<String>>,
    jwks_uri: Option<String>,
    jwks: Option<Value>,
    post_logout_redirect_uris: Option<Vec<String>>,
    id_token_signed_response_alg: Option<String>,
    backchannel_logout_uri: Option<String>,
}

fn invalid(error: &str, description: impl Into<String>) -> OAuthError {
    OAuthError::Registration {
        error: error.to_string(),
        description: description.into(),
    }
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_ATTRIBUTE: &str = "oauth2.device.authorization.grant.enabled";
const POST_LOGOUT: &str = "post.logout.redirect.uris";

/// Apply registration metadata to a client (a new one, or the one being updated).
fn apply(
    w: &Write,
    realm_id: &str,
    m: &Metadata,
    client: &mut ClientRecord,
) -> Result<(), OAuthError> {
    let grants = m
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    for g in &grants {
        if !matches!(
            g.as_str(),
            "authorization_code" | "implicit" | "refresh_token" | "password" | "client_credentials"
        ) && g != DEVICE_GRANT
        {
            return Err(invalid(
                "invalid_client_metadata",
                format!("Unsupported grant type: {g}"),
            ));
        }
    }
    let responses = m
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".into()]);
    for r in &responses {
        if !matches!(
            r.as_str(),
            "code"
                | "none"
                | "id_token"
                | "token"
                | "id_token token"
                | "code id_token"
                | "code token"
                | "code id_token token"
        ) {
            return Err(invalid(
                "invalid_client_metadata",
                format!("Unsupported response type: {r}"),
            ));
        }
    }
    let has = |g: &str| grants.iter().any(|x| x == g);
    client.standard_flow_enabled = has("authorization_code");
    client.implicit_flow_enabled = has("implicit");
    client.direct_access_grants_enabled = has("password");
    client.service_accounts_enabled = has("client_credentials");
    if has(DEVICE_GRANT) {
        client
            .attributes
            .insert(DEVICE_ATTRIBUTE.into(), "true".into());
    } else {
        client.attributes.remove(DEVICE_ATTRIBUTE);
    }
    let uris = m.redirect_uris.clone().unwrap_or_default();
    if (client.standard_flow_enabled || client.implicit_flow_enabled) && uris.is_empty() {
        return Err(invalid("invalid_redirect_uri", "No redirect URIs given"));
    }
    for u in &uris {
        // Registered clients name exact, absolute URIs: no wildcards, no fragments.
        let ok = !u.contains('*') && url::Url::parse(u).is_ok_and(|p| p.fragment().is_none());
        if !ok {
            return Err(invalid(
                "invalid_redirect_uri",
                format!("Invalid redirect URI: {u}"),
            ));
        }
    }
    client.redirect_uris = uris;
    let method = m
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".into());
    match method.as_str() {
        "none" => {
            if client.service_accounts_enabled {
                return Err(invalid(
                    "invalid_client_metadata",
                    "A public client cannot use client_credentials",
                ));
            }
            client.public_client = true;
            client.secret = None;
        }
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => {
            client.public_client = false;
            client.client_authenticator_type = if method == "client_secret_jwt" {
                "client-secret-jwt".into()
            } else {
                "client-secret".into()
            };
            if client.secret.is_none() {
                client.secret = Some(random_token(24));
            }
        }
        "private_key_jwt" => {
            let Some(jwks) = &m.jwks else {
                return Err(invalid(
                    "invalid_client_metadata",
                    if m.jwks_uri.is_some() {
                        "jwks_uri is not supported: send the keys as jwks"
                    } else {
                        "private_key_jwt needs jwks"
                    },
                ));
            };
            client.public_client = false;
            client.client_authenticator_type = "client-jwt".into();
            client
                .attributes
                .insert("jwks.string".into(), jwks.to_string());
            client
                .attributes
                .insert("use.jwks.string".into(), "true".into());
        }
        other => {
            return Err(invalid(
                "invalid_client_metadata",
                format!("Unsupported token_endpoint_auth_method: {other}"),
            ))
        }
    }
    client
        .attributes
        .insert("token.endpoint.auth.method".into(), method);
    if let Some(n) = &m.client_name {
        client.name = Some(n.clone()).filter(|n| !n.is_empty());
    }
    if let Some(u) = &m.client_uri {
        client.base_url = Some(u.clone()).filter(|u| !u.is_empty());
    }
    for (key, value) in [
        ("logoUri", &m.logo_uri),
        ("policyUri", &m.policy_uri),
        ("tosUri", &m.tos_uri),
        (
            "id.token.signed.response.alg",
            &m.id_token_signed_response_alg,
        ),
        (
            "token.endpoint.auth.signing.alg",
            &m.token_endpoint_auth_signing_alg,
        ),
        ("backchannel.logout.url", &m.backchannel_logout_uri),
    ] {
        if let Some(v) = value {
            client.attributes.insert(key.into(), v.clone());
        }
    }
    if let Some(c) = &m.contacts {
        client.attributes.insert("contacts".into(), c.join(","));
    }
    if let Some(p) = &m.post_logout_redirect_uris {
        client.attributes.insert(POST_LOGOUT.into(), p.join("##"));
    }
    let executors = crate::idp::client_policies::executors(&**w, realm_id, client)?;
    crate::idp::client_policies::check_client(&executors, client)
        .map_err(|m| invalid("invalid_client_metadata", m))?;
    if let Some(scope) = &m.scope {
        let names: Vec<String> = scope.split_ascii_whitespace().map(String::from).collect();
        let ids = crate::idp::client_scopes::ids_of_names(&**w, realm_id, &names)?;
        client.default_client_scopes = ids;
        client
            .optional_client_scopes
            .retain(|id| !client.default_client_scopes.contains(id));
    }
    Ok(())
}

/// The registered client as RFC 7591 answers it.
fn response<T: Txn>(
    w: &View<T>,
    realm: &RealmRecord,
    iss: &str,
    client: &ClientRecord,
    registration_token: Option<&str>,
) -> Result<Value, OAuthError> {
    let mut grants = Vec::new();
    if client.standard_flow_enabled {
        grants.push("authorization_code");
    }
    if client.implicit_flow_enabled {
        grants.push("implicit");
    }
    if client.direct_access_grants_enabled {
        grants.push("password");
    }
    if client.service_accounts_enabled {
        grants.push("client_credentials");
    }
    if client
        .attributes
        .get(DEVICE_ATTRIBUTE)
        .is_some_and(|v| v == "true")
    {
        grants.push(DEVICE_GRANT);
    }
    grants.push("refresh_token");
    let scopes =
        crate::idp::client_scopes::names_of_ids(w, &realm.id, &client.default_client_scopes)?;
    let method = client
        .attributes
        .get("token.endpoint.auth.method")
        .cloned()
        .unwrap_or_else(|| {
            if client.public_client {
                "none".into()
            } else {
                "client_secret_basic".into()
            }
        });
    let mut v = json!({
        "client_id": client.client_id,
        "client_name": client.name,
        "client_uri": client.base_url,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "response_types": ["code", "none"],
        "scope": scopes.join(" "),
        "subject_type": "public",
        "tls_client_certificate_bound_access_tokens": false,
        "client_id_issued_at": client.attributes.get("client.registered.at").and_then(|t| t.parse::<i64>().ok()).unwrap_or(0),
        "registration_client_uri": format!("{iss}/clients-registrations/openid-connect/{}", client.client_id),
    });
    if !client.public_client {
        if let Some(s) = &client.secret {
            v["client_secret"] = s.clone().into();
            v["client_secret_expires_at"] = 0.into();
        }
    }
    for (claim, key) in [
        ("logo_uri", "logoUri"),
        ("policy_uri", "policyUri"),
        ("tos_uri", "tosUri"),
        (
            "id_token_signed_response_alg",
            "id.token.signed.response.alg",
        ),
        (
            "token_endpoint_auth_signing_alg",
            "token.endpoint.auth.signing.alg",
        ),
        ("backchannel_logout_uri", "backchannel.logout.url"),
    ] {
        if let Some(a) = client.attributes.get(key) {
            v[claim] = a.clone().into();
        }
    }
    if let Some(c) = client.attributes.get("contacts") {
        v["contacts"] = json!(c.split(',').collect::<Vec<_>>());
    }
    if let Some(p) = client.attributes.get(POST_LOGOUT) {
        v["post_logout_redirect_uris"] = json!(p.split("##").collect::<Vec<_>>());
    }
    if let Some(j) = client
        .attributes
        .get("jwks.string")
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
    {
        v["jwks"] = j;
    }
    if let Some(t) = registration_token {
        v["registration_access_token"] = t.into();
    }
    Ok(v)
}

/// Who may register: an initial access token (used up here), or a user allowed to create
/// clients in the realm.
fn authorize_create(
    w: &mut Write,
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    now_secs: i64,
) -> Result<(), OAuthError> {
    let Some(token) = bearer_token(request) else {
        return Err(invalid(
            "insufficient_scope",
            "Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.",
        ));
    };
    match consume_initial_access(w, &realm.id, token, now_secs)? {
        Consumed::Used => return Ok(()),
        Consumed::Spent => return Err(invalid("invalid_token", "Failed decode token")),
        Consumed::Unknown => {}
    }
    // An administrator's bearer token (create-client or manage-clients in the realm).
    let caller = crate::idp::admin::caller_of(app, request, info, app.clock.now_millis())
        .map_err(|_| invalid("invalid_token", "Failed decode token"))?;
    if caller.can(&realm.name, crate::idp::admin::Permission::CreateClient) {
        Ok(())
    } else {
        Err(invalid("insufficient_scope", "Forbidden"))
    }
}

/// The registered client a registration access token names, checked.
fn authorized_client<T: Txn>(
    w: &View<T>,
    request: &Request,
    realm: &RealmRecord,
    client_id: &str,
) -> Result<ClientRecord, OAuthError> {
    let denied = || invalid("invalid_token", "Failed decode token");
    let token = bearer_token(request).ok_or_else(denied)?;
    let client = w
        .client_by_client_id(&realm.id, client_id)?
        .ok_or_else(denied)?;
    if !registration_token_matches(w, &realm.id, &client.id, token)? {
        return Err(denied());
    }
    Ok(client)
}

fn json_body(request: &Request) -> Result<Value, OAuthError> {
    serde_json::from_slice(request.body())
        .map_err(|e| invalid("invalid_client_metadata", format!("Invalid JSON: {e}")))
}

/// An admin-API refusal of a registration, as the registration endpoint answers it.
fn metadata_error(e: crate::idp::admin::error::AdminError) -> OAuthError {
    use crate::idp::admin::error::AdminError;
    match e {
        AdminError::Internal(detail) => OAuthError::Internal(detail),
        AdminError::Busy | AdminError::StoreUnavailable => OAuthError::Busy,
        other => invalid("invalid_client_metadata", other.to_string()),
    }
}

fn metadata(request: &Request) -> Result<Metadata, OAuthError> {
    serde_json::from_slice(request.body())
        .map_err(|e| invalid("invalid_client_metadata", format!("Invalid JSON: {e}")))
}

/// `/realms/{realm}/clients-registrations/{rest}`
pub async fn handle(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
    rest: &str,
) -> Result<Response, OAuthError> {
    let (provider, client_id) = match rest.trim_end_matches('/').split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (rest.trim_end_matches('/'), None),
    };
    if provider != "openid-connect" && provider != "default" {
        return Err(OAuthError::NotFound);
    }
    let keycloak = provider == "default";
    let read = app.store.read()?;
    let realm = realm(&read, realm_name)?;
    drop(read);
    let iss = issuer(app, request, info, realm_name);
    let now = app.clock.now_millis();
    let client_id = client_id.map(|c| {
        crate::http::path::percent_decode(c)
            .map(|c| c.into_owned())
            .unwrap_or_default()
    });
    match (request.method().clone(), client_id) {
        (Method::POST, None) if keycloak => {
            let input = json_body(request)?;
            let body = app.store.write(|w| {
                authorize_create(w, app, request, info, &realm, now / 1000)?;
                let client = crate::idp::admin::register_client(w, &realm, &input, now)
                    .map_err(metadata_error)?;
                let token = new_registration_token(w, &realm.id, &client.id)?;
                let mut body = crate::idp::admin::client_representation(&**w, &realm.id, &client)
                    .map_err(metadata_error)?;
                body["registrationAccessToken"] = token.into();
                Ok::<_, OAuthError>(body)
            })?;
            Ok(json_response(StatusCode::CREATED, &body))
        }
        (Method::GET, Some(id)) if keycloak => {
            let read = app.store.read()?;
            let client = authorized_client(&read, request, &realm, &id)?;
            let body = crate::idp::admin::client_representation(&read, &realm.id, &client)
                .map_err(metadata_error)?;
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::PUT, Some(id)) if keycloak => {
            let input = json_body(request)?;
            let body = app.store.write(|w| {
                let mut client = authorized_client(w, request, &realm, &id)?;
                crate::idp::admin::update_registered_client(w, &realm, &mut client, &input)
                    .map_err(metadata_error)?;
                let token = new_registration_token(w, &realm.id, &client.id)?;
                let mut body = crate::idp::admin::client_representation(&**w, &realm.id, &client)
                    .map_err(metadata_error)?;
                body["registrationAccessToken"] = token.into();
                Ok::<_, OAuthError>(body)
            })?;
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::POST, None) => {
            let m = metadata(request)?;
            let body = app.store.write(|w| {
                authorize_create(w, app, request, info, &realm, now / 1000)?;
                let mut client = ClientRecord {
                    id: random_id(),
                    client_id: random_id(),
                    enabled: true,
                    protocol: "openid-connect".into(),
                    client_authenticator_type: "client-secret".into(),
                    full_scope_allowed: true,
                    frontchannel_logout: true,
                    consent_required: false,
                    ..Default::default()
                };
                client
                    .attributes
                    .insert("client.registered.at".into(), (now / 1000).to_string());
                crate::idp::client_scopes::attach_realm_defaults(w, &realm.id, &mut client)?;
                apply(w, &realm.id, &m, &mut client)?;
                w.put_client(&realm.id, &client)?;
                crate::idp::realm::ensure_service_account(w, &realm, &client, now)?;
                let token = new_registration_token(w, &realm.id, &client.id)?;
                response(w, &realm, &iss, &client, Some(&token))
            })?;
            Ok(json_response(StatusCode::CREATED, &body))
        }
        (Method::GET, Some(id)) => {
            let read = app.store.read()?;
            let client = authorized_client(&read, request, &realm, &id)?;
            let body = response(&read, &realm, &iss, &client, None)?;
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::PUT, Some(id)) => {
            let m = metadata(request)?;
            let body = app.store.write(|w| {
                let mut client = authorized_client(w, request, &realm, &id)?;
                apply(w, &realm.id, &m, &mut client)?;
                w.put_client(&realm.id, &client)?;
                crate::idp::realm::ensure_service_account(w, &realm, &client, now)?;
                // A new registration access token with every update (Keycloak's default).
                let token = new_registration_token(w, &realm.id, &client.id)?;
                response(w, &realm, &iss, &client, Some(&token))
            })?;
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::DELETE, Some(id)) => {
            app.store.write(|w| {
                let client = authorized_client(w, request, &realm, &id)?;
                w.delete_client(&realm.id, &client.id)?;
                forget(w, &realm.id, &client.id)?;
                Ok::<_, OAuthError>(())
            })?;
            let mut r = Response::new(bytes::Bytes::new());
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        _ => Err(OAuthError::InvalidRequest("HTTP method not allowed".into())),
    }
}
