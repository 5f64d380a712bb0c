//! Signing in through an identity provider: `/realms/{r}/broker/{alias}/login` (from the
//! login page's button, or `kc_idp_hint`) sends the browser to the provider with a state
//! bound to this browser's login, a nonce and a PKCE challenge; `/realms/{r}/broker/{alias}/
//! endpoint` takes the answer. Then, as Keycloak's first-broker-login flow does it:
//!
//! - an identity linked before logs its user in (the profile refreshed when `syncMode` is
//!   `FORCE`);
//! - a new identity whose e-mail and username are free becomes a new user, linked;
//! - a new identity whose e-mail or username is an existing account's is never linked
//!   silently: the login form asks for that account's password (and its second factor), and
//!   only that login links the two (`actions::complete`).
//!
//! Every failure is a page with the login form to go back to, never a 500, and nothing is
//! created unless the whole first login succeeds.

use std::collections::BTreeMap;

use http::StatusCode;
use minijinja::Value as Ctx;
use serde_json::{json, Value};

use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::broker::{mappers, BrokerError, Identity, Provider, SyncMode};
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, StoreError, UserRecord};

use super::authorize::login_vars;
use super::{new_secret, sha256_hex, PageCx};

/// Every flow parameter of brokering starts with this (none is copied into a mailed link).
pub(super) const PARAM_PREFIX: &str = "broker_";
/// Flow parameters of a login that went to a provider (removed when it comes back).
const ALIAS: &str = "broker_alias";
const STATE: &str = "broker_state";
const NONCE: &str = "broker_nonce";
const VERIFIER: &str = "broker_verifier";
/// Set on a flow the account page started to link a provider to its signed-in user.
const LINK_USER: &str = "broker_link_user";
/// Where a client-initiated link returns (a redirect URI of the client's, checked).
const LINK_RETURN: &str = "broker_link_return";
/// The provider a login came through, and its ID token: kept on the session it opens, so
/// that ending it ends the provider's too (`logoutUrl`).
pub(super) const SESSION_ALIAS: &str = "broker_session_alias";
pub(super) const SESSION_ID_TOKEN: &str = "broker_session_id_token";
/// Set once a login mailed its pending link's account (one mail per login).
const LINK_MAILED: &str = "broker_link_mailed";
/// Where a logout continues once the provider's own logout sends the browser back.
const LOGOUT_RETURN: &str = "broker_logout_return";
/// Set by the password step of this very flow when it authenticated the account a pending
/// link is for: the proof of ownership `link_pending` requires.
pub(super) const LINK_PROVEN: &str = "broker_link_proven";
/// Set when the identity is to be linked to the account that now has to log in:
/// `{"alias", "id", "username", "user"}`.
pub(super) const PENDING_LINK: &str = "broker_link";

/// `/realms/{realm}/broker/{alias}/{login|endpoint}`
pub async fn broker(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
    rest: &str,
) -> Response {
    let Some(realm) = super::enabled_realm(app, realm_name) else {
        return crate::http::ApiError::NotFound.into_response();
    };
    let page = PageCx::new(app, &realm, request, None);
    let Some((alias, action)) = rest.split_once('/') else {
        return crate::http::ApiError::NotFound.into_response();
    };
    let provider = match enabled_provider(app, &page, &realm.id, alias) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    match action {
        "login" => start(app, &page, request, info, &realm, &provider, &query),
        "endpoint" => callback(app, &page, request, info, &realm, &provider, &query).await,
        "token" => stored_token(app, request, info, &realm, &provider),
        "link" => client_link(app, &page, request, info, &realm, &provider, &query),
        "endpoint/logout_response" => logout_response(app, &page, &realm, &query),
        _ => crate::http::ApiError::NotFound.into_response(),
    }
}

/// `GET /realms/{r}/broker/{alias}/token`: the provider's tokens kept at the user's last
/// login (`storeToken`), for a bearer whose user holds the `broker` client's `read-token`
/// role (checked in the store, not in the token's claims).
fn stored_token(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
) -> Response {
    let error = |status: StatusCode, message: &str| {
        crate::http::json_response(status, &json!({"errorMessage": message}))
    };
    let Some(token) = crate::idp::oidc::bearer_token(request) else {
        return error(StatusCode::UNAUTHORIZED, "Invalid token");
    };
    let read = match app.store.read() {
        Ok(r) => r,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let now = app.clock.now_millis();
    let Ok(keys) = app.keys.realm_keys(&read, &realm.id, now) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Keys unavailable");
    };
    let iss = crate::idp::oidc::issuer(app, request, info, &realm.name);
    let Ok((_, user)) =
        crate::idp::oidc::userinfo::verify_access_token(&read, realm, &keys, token, &iss, now)
    else {
        return error(StatusCode::UNAUTHORIZED, "Invalid token");
    };
    // The role must be in the token (the client asking was given it: a client whose scope
    // leaves it out cannot read upstream tokens) and still be the user's in the store.
    let in_token = crate::crypto::jwt::decode_unverified::<Value>(token).is_ok_and(|c| {
        c.pointer("/resource_access/broker/roles")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|x| x == "read-token"))
    });
    let may_read = in_token
        && crate::idp::roles::effective_roles(&read, &realm.id, &user.id)
            .is_ok_and(|r| r.has_client_role("broker", "read-token"));
    if !may_read || !provider.store_token {
        return error(
            StatusCode::FORBIDDEN,
            "Client [broker] not authorized to retrieve tokens from identity provider.",
        );
    }
    let key = format!("{}/{}", user.id, provider.alias);
    match read.object(&realm.id, crate::store::BROKER_TOKEN, &key) {
        Ok(Some(tokens)) => crate::http::json_response(StatusCode::OK, &tokens),
        Ok(None) => error(
            StatusCode::BAD_REQUEST,
            "Identity Provider does not have a token for this user.",
        ),
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}

/// A browser logout of a session opened through `session.identity_provider`, whose provider
/// has a `logoutUrl` and no back channel: the browser goes to the provider's logout first and
/// comes back to `/broker/{alias}/endpoint/logout_response`, which sends it on to `then`
/// (the client's post-logout URI; `None`: the logged-out page). `None` when there is nothing
/// to do at the provider.
pub(super) fn front_channel_logout(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    session: &crate::store::SessionRecord,
    then: Option<&str>,
) -> Option<Response> {
    let alias = session.identity_provider.as_deref()?;
    let provider = app.store.read().ok().and_then(|r| {
        crate::idp::broker::provider(&r, &realm.id, alias)
            .ok()
            .flatten()
    })?;
    if provider.backchannel_logout || provider.logout_url.is_none() {
        return None;
    }
    let now = app.clock.now_millis();
    let mut params = BTreeMap::new();
    params.insert(LOGOUT_RETURN.to_string(), then.unwrap_or("").to_string());
    let flow = LoginFlowRecord {
        id: crate::crypto::random_token(16),
        browser_hash: String::new(),
        csrf_token: new_secret(),
        params,
        user_id: None,
        remember_me: false,
        created_at: now,
        expires_at: now + super::FLOW_LIFETIME_MS,
    };
    app.store
        .write_volatile(|w| w.put_login_flow(&realm.id, &flow))
        .ok()?;
    let back = format!(
        "{}/endpoint/logout_response",
        redirect_uri(app, request, info, &realm.name, alias).trim_end_matches("/endpoint")
    );
    let url = provider.logout_request(&flow.id, session.broker_id_token.as_deref(), Some(&back))?;
    Some(crate::http::redirect(&url))
}

/// `GET /broker/{alias}/endpoint/logout_response?state=`: back from the provider's logout;
/// on to where the logout was going (a URI checked when the logout began), once.
fn logout_response(
    app: &App,
    page: &PageCx<'_>,
    realm: &RealmRecord,
    query: &BTreeMap<String, String>,
) -> Response {
    let state = query.get("state").cloned().unwrap_or_default();
    let now = app.clock.now_millis();
    // Only a logout's own, unexpired record (never a login flow of someone's).
    let taken = app.store.write_volatile(|w| {
        let flow = w
            .login_flow(&realm.id, &state)?
            .filter(|f| f.params.contains_key(LOGOUT_RETURN) && f.expires_at > now);
        if flow.is_some() {
            w.delete_login_flow(&realm.id, &state)?;
        }
        Ok::<_, StoreError>(flow)
    });
    let target = match taken {
        Ok(Some(flow)) => flow.params.get(LOGOUT_RETURN).cloned().unwrap_or_default(),
        Ok(None) => return page.error(StatusCode::BAD_REQUEST, "loginTimeout"),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    if target.is_empty() {
        let mut vars = BTreeMap::new();
        vars.insert("title", Ctx::from(page.msg("loggedOutTitle")));
        vars.insert("message", Ctx::from(page.msg("loggedOutMessage")));
        return page.render(StatusCode::OK, "login/info.html", vars);
    }
    crate::http::redirect(&target)
}

/// An enabled provider of the realm, or the page saying there is none.
fn enabled_provider(
    app: &App,
    page: &PageCx<'_>,
    realm_id: &str,
    alias: &str,
) -> Result<Provider, Box<Response>> {
    match app
        .store
        .read()
        .and_then(|r| crate::idp::broker::provider(&r, realm_id, alias))
    {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(Box::new(
            page.error_text(StatusCode::NOT_FOUND, "Identity Provider not found."),
        )),
        Err(e) => Err(Box::new(crate::http::ApiError::from(e).into_response())),
    }
}

/// The callback URL registered at the provider.
fn redirect_uri(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &str,
    alias: &str,
) -> String {
    format!(
        "{}/broker/{}/endpoint",
        crate::idp::oidc::issuer(app, request, info, realm),
        crate::http::path::encode_segment(alias)
    )
}

fn load_flow(app: &App, realm: &RealmRecord, id: &str) -> Option<LoginFlowRecord> {
    let now = app.clock.now_millis();
    app.store
        .read()
        .ok()?
        .login_flow(&realm.id, id)
        .ok()
        .flatten()
        .filter(|f| f.expires_at > now)
}

/// Store the flow; the error page when the store fails.
fn save_flow(app: &App, realm: &RealmRecord, flow: &LoginFlowRecord) -> Option<Response> {
    app.store
        .write_volatile(|w| w.put_login_flow(&realm.id, flow))
        .err()
        .map(|e| crate::http::ApiError::from(e).into_response())
}

/// The login form again, with a message: the way back after a failed brokered login.
fn back_to_login(page: &PageCx<'_>, flow: &LoginFlowRecord, message: &str) -> Response {
    page.render(
        StatusCode::BAD_REQUEST,
        "login/login.html",
        login_vars(page, flow, None, Some(message)),
    )
}

/// Send the browser to the provider.
pub(super) fn start(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    query: &BTreeMap<String, String>,
) -> Response {
    let Some(mut flow) = query
        .get("flow")
        .and_then(|id| load_flow(app, realm, id))
        .filter(|f| super::browser_bound(request, f))
    else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    if provider.link_only {
        return back_to_login(page, &flow, &page.msg("identityProviderLinkOnly"));
    }
    match begin(app, request, info, realm, provider, &mut flow) {
        Some(url) => crate::http::redirect(&url),
        None => back_to_login(page, &flow, &unavailable(page, provider)),
    }
}

/// Put the state, nonce and PKCE verifier in the flow, store it, and give the provider's
/// URL (`None` when the store or the provider's configuration fails).
fn begin(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    flow: &mut LoginFlowRecord,
) -> Option<String> {
    let secret = new_secret();
    let nonce = new_secret();
    let verifier = provider.uses_pkce().then(new_secret);
    let challenge = verifier.as_ref().map(|v| {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v.as_bytes()))
    });
    flow.params.insert(ALIAS.into(), provider.alias.clone());
    flow.params.insert(STATE.into(), sha256_hex(&secret));
    flow.params.insert(NONCE.into(), nonce.clone());
    match &verifier {
        Some(v) => flow.params.insert(VERIFIER.into(), v.clone()),
        None => flow.params.remove(VERIFIER),
    };
    flow.params.remove(PENDING_LINK);
    flow.params.remove(LINK_PROVEN);
    if save_flow(app, realm, flow).is_some() {
        return None;
    }
    let state = format!("{}.{secret}", flow.id);
    let redirect = redirect_uri(app, request, info, &realm.name, &provider.alias);
    provider
        .authorization_request(
            &redirect,
            &state,
            &nonce,
            challenge.as_deref(),
            flow.params.get("login_hint").map(String::as_str),
            &|name| {
                flow.params
                    .get(&format!("{}{name}", super::authorize::CLIENT_PARAM))
                    .or_else(|| flow.params.get(name).filter(|_| name == "ui_locales" || name == "max_age"))
                    .cloned()
            },
        )
        .map_err(|e| {
            tracing::warn!(realm = %realm.name, alias = %provider.alias, error = %e, "identity provider misconfigured");
        })
        .ok()
}

fn unavailable(page: &PageCx<'_>, provider: &Provider) -> String {
    page.msg("identityProviderUnexpectedErrorMessage")
        .replace("{0}", &provider.display_name)
}

/// The provider's answer.
async fn callback(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    query: &BTreeMap<String, String>,
) -> Response {
    // The state names the login and proves it was this browser's: `{flow id}.{secret}`.
    let Some((flow_id, secret)) = query.get("state").and_then(|s| s.split_once('.')) else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    // Checked and consumed in one transaction: two callbacks with the same state cannot
    // both pass, and it is gone before anything is asked of the provider.
    let now_ms = app.clock.now_millis();
    let taken = app.store.write_volatile(|w| {
        let Some(mut flow) = w
            .login_flow(&realm.id, flow_id)?
            .filter(|f| f.expires_at > now_ms && super::browser_bound(request, f))
        else {
            return Ok(None);
        };
        let expected = flow.params.get(STATE).cloned().unwrap_or_default();
        let state_ok = !expected.is_empty()
            && flow.params.get(ALIAS) == Some(&provider.alias)
            && crate::crypto::constant_time_eq(sha256_hex(secret).as_bytes(), expected.as_bytes());
        if !state_ok {
            return Ok(None);
        }
        flow.params.remove(STATE);
        flow.params.remove(ALIAS);
        let nonce = flow.params.remove(NONCE).unwrap_or_default();
        let verifier = flow.params.remove(VERIFIER);
        w.put_login_flow(&realm.id, &flow)?;
        Ok::<_, StoreError>(Some((flow, nonce, verifier)))
    });
    let (mut flow, nonce, verifier) = match taken {
        Ok(Some(t)) => t,
        Ok(None) => return page.error(StatusCode::BAD_REQUEST, "loginTimeout"),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    // A link started on the account page fails with a page of its own, not a login form.
    let linking = flow.params.contains_key(LINK_USER);
    let back = |flow: &LoginFlowRecord, message: &str| {
        if linking {
            page.error_text(StatusCode::BAD_REQUEST, message)
        } else {
            back_to_login(page, flow, message)
        }
    };
    let ip = info.peer.map(|p| p.ip().to_string());
    let flow_client = flow.params.get("client_id").cloned();
    let failed = |error: &str, reason: &str| {
        let mut details = BTreeMap::new();
        details.insert("identity_provider".to_string(), provider.alias.clone());
        details.insert("reason".to_string(), reason.to_string());
        crate::idp::events::record(
            app,
            realm,
            crate::idp::events::Event {
                kind: "IDENTITY_PROVIDER_LOGIN_ERROR",
                client_id: flow_client.as_deref(),
                ip_address: ip.as_deref(),
                error: Some(error),
                details,
                ..Default::default()
            },
        );
    };
    if let Some(error) = query.get("error") {
        failed("identity_provider_error", error);
        let message = if error == "access_denied" {
            page.msg("identityProviderLoginFailure")
        } else {
            unavailable(page, provider)
        };
        return back(&flow, &message);
    }
    let Some(code) = query.get("code") else {
        return back(&flow, &unavailable(page, provider));
    };
    let redirect = redirect_uri(app, request, info, &realm.name, &provider.alias);
    let now = app.clock.now_secs();
    // `private_key_jwt`: the code exchange is signed by the realm's key.
    let realm_key = if provider.signs_with_realm_key() {
        app.store.read().ok().and_then(|r| {
            app.keys
                .realm_keys(&r, &realm.id, app.clock.now_millis())
                .ok()?
                .signer(provider.assertion_algorithm())
                .ok()
                .cloned()
        })
    } else {
        None
    };
    let identity = match provider
        .complete(
            code,
            &redirect,
            verifier.as_deref(),
            &nonce,
            now,
            realm_key.as_deref(),
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            let kind = match &e {
                BrokerError::Unreachable(_) => "identity_provider_unreachable",
                BrokerError::Refused(_) => "identity_provider_error",
                BrokerError::Invalid(_) => "invalid_token",
            };
            tracing::warn!(realm = %realm.name, alias = %provider.alias, error = %e, "brokered login failed");
            failed(kind, &e.to_string());
            return back(&flow, &unavailable(page, provider));
        }
    };
    if let Some(user_id) = flow.params.get(LINK_USER).cloned() {
        return finish_link(
            app, page, request, info, realm, provider, &flow, &user_id, &identity,
        );
    }
    if let Err(e) = claim_directory_user(app, realm, provider, &identity).await {
        tracing::warn!(realm = %realm.name, alias = %provider.alias, error = %e, "could not look the user up in the realm's directories");
    }
    flow.params.remove(SESSION_ALIAS);
    flow.params.remove(SESSION_ID_TOKEN);
    match sign_in(app, realm, provider, &identity) {
        Ok(Outcome::User(user)) => {
            flow.user_id = Some(user.id.clone());
            // The session this login opens remembers the provider (and its ID token, when
            // the provider can be logged out of). Not for a login that ends as another
            // account's (a pending link proven by a password).
            flow.params
                .insert(SESSION_ALIAS.into(), provider.alias.clone());
            if let Some(t) = identity
                .tokens
                .get("id_token")
                .and_then(Value::as_str)
                .filter(|_| provider.logout_url.is_some())
            {
                flow.params.insert(SESSION_ID_TOKEN.into(), t.to_string());
            }
            let mut details = BTreeMap::new();
            details.insert("identity_provider".to_string(), provider.alias.clone());
            details.insert(
                "identity_provider_identity".to_string(),
                identity.id.clone(),
            );
            crate::idp::events::record(
                app,
                realm,
                crate::idp::events::Event {
                    kind: "IDENTITY_PROVIDER_LOGIN",
                    client_id: flow.params.get("client_id").map(String::as_str),
                    user_id: Some(&user.id),
                    ip_address: ip.as_deref(),
                    details,
                    ..Default::default()
                },
            );
            super::actions::continue_flow(app, page, info, realm, &mut flow, &user)
        }
        Ok(Outcome::Disabled) => back_to_login(page, &flow, &page.msg("accountDisabledMessage")),
        Ok(Outcome::Exists { users, matched }) => {
            // Prove the account is yours: its own login in this browser (password, second
            // factor), after which `actions::complete` links the identity to it. The page
            // names only what the provider said (never the local account's username), and
            // the form is empty: whoever signs in must know the account.
            let link = json!({"alias": provider.alias, "id": identity.id,
                "username": identity.username.clone().or_else(|| identity.email.clone()).unwrap_or_default(),
                "users": users});
            flow.params.insert(PENDING_LINK.into(), link.to_string());
            flow.params.remove(LINK_PROVEN);
            flow.csrf_token = new_secret();
            if let Some(response) = save_flow(app, realm, &flow) {
                return response;
            }
            let message = page
                .msg("federatedIdentityConfirmLinkMessage")
                .replace("{0}", &provider.display_name)
                .replace("{1}", &matched);
            let mut vars = login_vars(page, &flow, None, None);
            vars.insert("info", Ctx::from(message));
            if mail_proof_candidate(app, realm, &flow).is_some() {
                vars.insert(
                    "link_by_email_url",
                    Ctx::from(format!(
                        "/realms/{}/login-actions/link-by-email?flow={}",
                        crate::http::path::encode_segment(&realm.name),
                        flow.id
                    )),
                );
            }
            page.render(StatusCode::OK, "login/login.html", vars)
        }
        Err(e) => {
            // A profile the store refuses (a FORCE sync onto a taken address, ...): the
            // login form, not an error document.
            tracing::warn!(realm = %realm.name, alias = %provider.alias, error = %e, "brokered login could not be stored");
            failed("identity_provider_error", &e.to_string());
            back(&flow, &unavailable(page, provider))
        }
    }
}

/// The username a first login would create: the username mapper's, the provider's
/// username or e-mail, else `{alias}.{id}`.
fn new_username(mappers: &[serde_json::Value], identity: &Identity, provider: &Provider) -> String {
    let email = identity.email.as_deref().map(str::to_lowercase);
    let fallback = format!("{}.{}", provider.alias, identity.id).to_lowercase();
    mappers::username(mappers, identity, &provider.alias)
        .or_else(|| identity.username.clone())
        .or(email)
        .map(|u| u.trim().to_lowercase())
        .filter(|u| acceptable_username(u))
        .unwrap_or(fallback)
}

/// Before a first login creates a user: a directory user with the name it would take is
/// imported, so the login finds an existing account (to be linked by that account's own
/// login) instead of creating one that shadows the directory's.
async fn claim_directory_user(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
    identity: &Identity,
) -> Result<(), StoreError> {
    let username = {
        let read = app.store.read()?;
        if read
            .federated_user(&realm.id, &provider.alias, &identity.id)?
            .is_some()
        {
            return Ok(());
        }
        new_username(
            &mappers::of(&read, &realm.id, &provider.alias)?,
            identity,
            provider,
        )
    };
    crate::idp::federation::claim_directory_name(app, realm, &username, true).await?;
    Ok(())
}

enum Outcome {
    /// Linked (before, or now as a new user): log this user in.
    User(UserRecord),
    /// The linked user is disabled.
    Disabled,
    /// Not linked, and accounts with the same e-mail or username exist: their ids, and the
    /// provider's value that matched.
    Exists { users: Vec<String>, matched: String },
}

/// Find the identity's user, or create and link one; one transaction, so a failed first
/// login leaves nothing behind.
fn sign_in(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
    identity: &Identity,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now_millis();
    // The common case, a linked user whose login changes nothing (no FORCE sync, no stored
    // token, no FORCE mapper), is only read: no write transaction, no disk sync.
    {
        let read = app.store.read()?;
        let mappers = mappers::of(&read, &realm.id, &provider.alias)?;
        let writes = provider.sync_mode == SyncMode::Force
            || provider.store_token
            || mappers::any_forced(&mappers, provider);
        if !writes {
            if let Some(user_id) = read.federated_user(&realm.id, &provider.alias, &identity.id)? {
                return match read.user(&realm.id, &user_id)? {
                    Some(user) if user.enabled => Ok(Outcome::User(user)),
                    Some(_) => Ok(Outcome::Disabled),
                    None => Err(StoreError::Missing("user")),
                };
            }
        }
    }
    app.store.write(|w| {
        let mappers = mappers::of(w, &realm.id, &provider.alias)?;
        if let Some(user_id) = w.federated_user(&realm.id, &provider.alias, &identity.id)? {
            let Some(mut user) = w.user(&realm.id, &user_id)? else {
                return Err(StoreError::Missing("user"));
            };
            if !user.enabled {
                return Ok(Outcome::Disabled);
            }
            if provider.sync_mode == SyncMode::Force {
                let before = user.clone();
                apply_profile(&mut user, identity, provider);
                if user != before {
                    w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
                }
            }
            mappers::apply(w, realm, provider, &mappers, identity, &mut user, false)?;
            if provider.store_token {
                store_token(w, &realm.id, &user.id, &provider.alias, &identity.tokens)?;
            }
            return Ok(Outcome::User(user));
        }
        let email = identity.email.as_deref().map(str::to_lowercase);
        let username = new_username(&mappers, identity, provider);
        if let Some(existing) = w.user_by_username(&realm.id, &username)? {
            return Ok(Outcome::Exists {
                users: vec![existing.id],
                matched: username,
            });
        }
        if let Some(email) = &email {
            let owners: Vec<String> = w
                .users_by_email(&realm.id, email)?
                .into_iter()
                .map(|u| u.id)
                .collect();
            if !owners.is_empty() {
                return Ok(Outcome::Exists {
                    users: owners,
                    matched: email.clone(),
                });
            }
        }
        let mut user = UserRecord {
            id: crate::crypto::random_id(),
            username,
            enabled: true,
            created_timestamp: now,
            required_actions: crate::idp::required_actions::defaults(realm),
            ..Default::default()
        };
        apply_profile(&mut user, identity, provider);
        // Keycloak's "review profile" when the provider left the address out.
        if user.email.is_none() && !user.required_actions.iter().any(|a| a == "UPDATE_PROFILE") {
            user.required_actions.push("UPDATE_PROFILE".into());
        }
        crate::idp::realm::create_user(w, realm, &user)?;
        for group in &realm.default_group_ids {
            if w.group(&realm.id, group)?.is_some() {
                w.add_member(&realm.id, group, &user.id)?;
            }
        }
        let user_name = identity.username.clone().or(email).unwrap_or_default();
        w.link_federated_identity(
            &realm.id,
            &user.id,
            &provider.alias,
            &identity.id,
            &user_name,
        )?;
        if provider.store_token {
            store_token(w, &realm.id, &user.id, &provider.alias, &identity.tokens)?;
        }
        if provider.add_read_token_role {
            if let Some(broker) = w.client_by_client_id(&realm.id, "broker")? {
                if let Some(role) = w.role_by_name(&realm.id, &broker.id, "read-token")? {
                    w.grant_user_role(&realm.id, &user.id, &role.id)?;
                }
            }
        }
        mappers::apply(w, realm, provider, &mappers, identity, &mut user, true)?;
        Ok(Outcome::User(user))
    })
}

/// A username a provider may give: printable, no spaces, not too long, and never a
/// service account's name.
fn acceptable_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 255
        && !u.chars().any(|c| c.is_control() || c.is_whitespace())
        && !u.starts_with("service-account-")
}

/// The provider's profile over the user's: names and e-mail (verified only when the realm
/// trusts this provider's addresses and the provider says it verified this one).
fn apply_profile(user: &mut UserRecord, identity: &Identity, provider: &Provider) {
    if identity.first_name.is_some() {
        user.first_name = identity.first_name.clone();
    }
    if identity.last_name.is_some() {
        user.last_name = identity.last_name.clone();
    }
    if let Some(email) = &identity.email {
        let email = email.to_lowercase();
        let verified = provider.trust_email && identity.email_verified;
        if user.email.as_deref() != Some(email.as_str()) {
            user.email = Some(email);
            user.email_verified = verified;
        } else if verified {
            user.email_verified = true;
        }
    }
}

/// `storeToken`: the provider's token response, kept with the link.
fn store_token(
    w: &mut crate::store::Write,
    realm: &str,
    user: &str,
    alias: &str,
    tokens: &Value,
) -> Result<(), StoreError> {
    w.put_object(
        realm,
        crate::store::BROKER_TOKEN,
        &format!("{user}/{alias}"),
        tokens,
    )
}

/// At the end of a login that was asked to prove ownership of an existing account: link the
/// identity if the account that logged in is the one it was pending for.
pub(super) fn link_pending(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    user: &UserRecord,
) -> Result<Option<String>, StoreError> {
    let Some(link) = flow
        .params
        .get(PENDING_LINK)
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
    else {
        return Ok(None);
    };
    let candidate = link["users"]
        .as_array()
        .is_some_and(|ids| ids.iter().any(|id| id == user.id.as_str()));
    if !candidate || flow.params.get(LINK_PROVEN) != Some(&user.id) {
        return Ok(None);
    }
    let (Some(alias), Some(id)) = (link["alias"].as_str(), link["id"].as_str()) else {
        return Ok(None);
    };
    match w.link_federated_identity(
        &realm.id,
        &user.id,
        alias,
        id,
        link["username"].as_str().unwrap_or_default(),
    ) {
        Ok(()) => Ok(Some(alias.to_string())),
        // Linked meanwhile (another tab): nothing more to do.
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Link the identity waiting in a login's `params` to `user`, whose mailed link proved the
/// account (`login-actions/action-token`): the alias linked, `None` when nothing was waiting
/// for this user.
pub(super) fn link_proven_by_mail(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    params: &BTreeMap<String, String>,
    user: &UserRecord,
) -> Result<Option<String>, StoreError> {
    let mut flow = LoginFlowRecord {
        params: params.clone(),
        ..Default::default()
    };
    flow.params.insert(LINK_PROVEN.into(), user.id.clone());
    link_pending(w, realm, &flow, user)
}

/// The account a pending link can be proven for by a mailed link: one candidate, with an
/// address, without a second factor (that one signs in with it), in a realm that sends mail.
fn mail_proof_candidate(
    app: &App,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
) -> Option<UserRecord> {
    super::email_actions::smtp(realm).ok()?;
    let link: Value = serde_json::from_str(flow.params.get(PENDING_LINK)?).ok()?;
    let users = link["users"].as_array()?;
    let [only] = users.as_slice() else {
        return None;
    };
    let read = app.store.read().ok()?;
    let user = read.user(&realm.id, only.as_str()?).ok()??;
    let has_otp = read
        .credentials(&realm.id, &user.id)
        .ok()?
        .iter()
        .any(|c| c.kind == "otp");
    // A verified address only: an account made with someone else's unverified address (a
    // pre-hijack) must not receive their identity by their click.
    (user.enabled
        && user.email_verified
        && !has_otp
        && user.email.as_deref().is_some_and(|e| !e.is_empty()))
    .then_some(user)
}

/// `POST login-actions/link-by-email?flow=`: mail the pending link's account a link that
/// proves it (instead of its password).
pub(super) fn link_by_email(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
) -> Response {
    let Some(user) = mail_proof_candidate(app, realm, flow) else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    // One mail per login: a page left at "account exists" cannot mail the account's owner
    // again and again.
    let mut flow = flow.clone();
    if flow.params.insert(LINK_MAILED.into(), "1".into()).is_some() {
        return page.error(StatusCode::TOO_MANY_REQUESTS, "emailSentMessage");
    }
    if let Some(response) = save_flow(app, realm, &flow) {
        return response;
    }
    let flow = &flow;
    let provider_name = flow
        .params
        .get(PENDING_LINK)
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|l| {
            let alias = l["alias"].as_str()?.to_string();
            let read = app.store.read().ok()?;
            crate::idp::broker::provider(&read, &realm.id, &alias)
                .ok()
                .flatten()
                .map(|p| p.display_name)
        })
        .unwrap_or_default();
    match super::email_actions::send_idp_link(
        app,
        request,
        info,
        realm,
        flow,
        &user,
        &provider_name,
    ) {
        Ok(_) => {
            let mut vars = BTreeMap::new();
            vars.insert("title", Ctx::from(page.msg("identityProviderLinkTitle")));
            vars.insert(
                "message",
                Ctx::from(page.msg("emailLinkIdp").replace("{0}", &provider_name)),
            );
            page.render(StatusCode::OK, "login/info.html", vars)
        }
        Err(key) => page.error(StatusCode::SERVICE_UNAVAILABLE, key),
    }
}

/// `GET /realms/{r}/broker/{alias}/link?client_id&redirect_uri&nonce&hash`: Keycloak's
/// client-initiated account linking. The browser must have an SSO session whose user may
/// manage its account (`account` client's `manage-account` or `manage-account-links`), and
/// `hash` must be base64url(SHA-256(nonce + session id + client id + alias)), which only the
/// client holding a token of that session can compute. Errors go back to the (checked)
/// redirect URI as `?error=not_logged_in|invalid_token|not_allowed&nonce=...`.
fn client_link(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    query: &BTreeMap<String, String>,
) -> Response {
    let param = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(client_id), Some(redirect), Some(nonce), Some(hash)) = (
        param("client_id"),
        param("redirect_uri"),
        param("nonce"),
        param("hash"),
    ) else {
        return page.error(StatusCode::BAD_REQUEST, "invalidParameterMessage");
    };
    let client = app
        .store
        .read()
        .ok()
        .and_then(|r| r.client_by_client_id(&realm.id, client_id).ok().flatten())
        .filter(|c| c.enabled);
    let Some(client) = client else {
        return page.error(StatusCode::BAD_REQUEST, "clientNotFoundMessage");
    };
    // Never a redirect to a URI the client did not register.
    let Some(redirect) = crate::idp::oidc::redirect::verify_redirect_uri(&client, Some(redirect))
    else {
        return page.error(StatusCode::BAD_REQUEST, "invalidRedirectUriMessage");
    };
    let back_with = |error: &str| {
        let mut url = redirect.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("error", error)
                .append_pair("nonce", nonce)
                .finish(),
        );
        crate::http::redirect(&url)
    };
    let now = app.clock.now_millis();
    let Some(session) = super::sso_session(app, request, realm, now) else {
        return back_with("not_logged_in");
    };
    use base64::Engine;
    use sha2::Digest;
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
        format!("{nonce}{}{client_id}{}", session.id, provider.alias).as_bytes(),
    ));
    // The client must be one this session signed in to (Keycloak's client-session check):
    // another client of the session cannot ask in its name.
    if !session.clients.contains_key(client_id)
        || !crate::crypto::constant_time_eq(expected.as_bytes(), hash.as_bytes())
    {
        return back_with("invalid_token");
    }
    let user = app
        .store
        .read()
        .ok()
        .and_then(|r| r.user(&realm.id, &session.user_id).ok().flatten())
        .filter(|u| u.enabled);
    let Some(user) = user else {
        return back_with("not_logged_in");
    };
    let may = app.store.read().ok().is_some_and(|r| {
        crate::idp::roles::effective_roles(&r, &realm.id, &user.id).is_ok_and(|roles| {
            roles.has_client_role("account", "manage-account")
                || roles.has_client_role("account", "manage-account-links")
        })
    });
    if !may {
        return back_with("not_allowed");
    }
    link_flow(
        app,
        page,
        request,
        info,
        realm,
        provider,
        &user,
        Some(&redirect),
    )
}

/// The account page's "Link account": a login flow of this browser that goes to the
/// provider and, coming back, links what it finds to the signed-in user.
pub(super) fn start_link(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    user: &UserRecord,
    alias: &str,
) -> Response {
    let provider = match enabled_provider(app, page, &realm.id, alias) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    link_flow(app, page, request, info, realm, &provider, user, None)
}

/// A login flow of this browser that goes to `provider` and, coming back, links what it
/// finds to `user`, then returns to `back` (the account page when `None`).
#[allow(clippy::too_many_arguments)]
fn link_flow(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    user: &UserRecord,
    back: Option<&str>,
) -> Response {
    let now = app.clock.now_millis();
    let browser_secret = new_secret();
    let mut params = BTreeMap::new();
    params.insert(LINK_USER.to_string(), user.id.clone());
    if let Some(b) = back {
        params.insert(LINK_RETURN.to_string(), b.to_string());
    }
    let mut flow = LoginFlowRecord {
        id: crate::crypto::random_token(16),
        browser_hash: sha256_hex(&browser_secret),
        csrf_token: new_secret(),
        params,
        user_id: None,
        remember_me: false,
        created_at: now,
        expires_at: now + super::FLOW_LIFETIME_MS,
    };
    let Some(location) = begin(app, request, info, realm, provider, &mut flow) else {
        return page.error_text(
            StatusCode::SERVICE_UNAVAILABLE,
            &unavailable(page, provider),
        );
    };
    let mut response = crate::http::redirect(&location);
    super::add_cookie(
        &mut response,
        super::set_cookie(
            super::AUTH_SESSION_COOKIE,
            &browser_secret,
            &realm.name,
            info,
            true,
            None,
        ),
    );
    response
}

/// Back from the provider for the account page: link, and return there.
#[allow(clippy::too_many_arguments)]
fn finish_link(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    provider: &Provider,
    flow: &LoginFlowRecord,
    user_id: &str,
    identity: &Identity,
) -> Response {
    let user_name = identity
        .username
        .clone()
        .or_else(|| identity.email.clone())
        .unwrap_or_else(|| identity.id.clone());
    let linked = app.store.write(|w| {
        w.link_federated_identity(
            &realm.id,
            user_id,
            &provider.alias,
            &identity.id,
            &user_name,
        )?;
        if provider.store_token {
            store_token(w, &realm.id, user_id, &provider.alias, &identity.tokens)?;
        }
        w.delete_login_flow(&realm.id, &flow.id)
    });
    match linked {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return page.error_text(
                StatusCode::CONFLICT,
                &page.msg("accountLinkedElsewhereMessage"),
            )
        }
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    let mut details = BTreeMap::new();
    details.insert("identity_provider".to_string(), provider.alias.clone());
    crate::idp::events::record(
        app,
        realm,
        crate::idp::events::Event {
            kind: "FEDERATED_IDENTITY_LINK",
            client_id: Some("account"),
            user_id: Some(user_id),
            ip_address: info.peer.map(|p| p.ip().to_string()).as_deref(),
            details,
            ..Default::default()
        },
    );
    if let Some(back) = flow.params.get(LINK_RETURN) {
        return crate::http::redirect(back);
    }
    crate::http::redirect(&format!(
        "{}/realms/{}/account/",
        crate::idp::oidc::base_url(app, request, info),
        crate::http::path::encode_segment(&realm.name)
    ))
}

/// The buttons of the login page: one per enabled provider shown at login.
pub(super) fn login_buttons(page: &PageCx<'_>, flow: &LoginFlowRecord) -> Vec<Ctx> {
    let (app, realm) = (page.app, page.realm);
    let label = page.msg("signInWith");
    let providers = app
        .store
        .read()
        .and_then(|r| crate::idp::broker::login_providers(&r, &realm.id))
        .unwrap_or_default();
    providers
        .iter()
        .map(|p| {
            Ctx::from_serialize(json!({
                "alias": p.alias,
                "provider_id": p.provider_id,
                "display_name": p.display_name,
                "label": label.replace("{0}", &p.display_name),
                "url": login_url(realm, &p.alias, flow),
            }))
        })
        .collect()
}

/// `/realms/{r}/broker/{alias}/login?flow=...`
pub(super) fn login_url(realm: &RealmRecord, alias: &str, flow: &LoginFlowRecord) -> String {
    format!(
        "/realms/{}/broker/{}/login?flow={}",
        crate::http::path::encode_segment(&realm.name),
        crate::http::path::encode_segment(alias),
        flow.id
    )
}
