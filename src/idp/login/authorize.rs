//! `GET|POST /realms/{realm}/protocol/openid-connect/auth`: validate the authorization
//! request, then either answer at once from the SSO session or show the login form.
//! Until the client and redirect URI are known to be valid, errors are pages that never
//! redirect; after that, errors go back to the client as the OAuth spec says.

use std::collections::BTreeMap;

use http::StatusCode;
use minijinja::Value as Ctx;

use crate::crypto::random_token;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::client_scopes::{resolve, ScopeError};
use crate::idp::oidc::hash_code;
use crate::idp::oidc::redirect::verify_redirect_uri;
use crate::idp::oidc::{issuer, parameters};
use crate::idp::App;
use crate::store::{AuthCodeRecord, ClientRecord, LoginFlowRecord, RealmRecord, SessionRecord};

use super::{
    add_cookie, new_secret, set_cookie, sha256_hex, sso_session, PageCx, AUTH_SESSION_COOKIE,
    FLOW_LIFETIME_MS,
};

/// The prefix of a login flow's copies of the client's other request parameters.
pub(super) const CLIENT_PARAM: &str = "client_request_param:";

/// The validated parameters of an authorization request, kept in the login flow.
pub(super) type AuthParams = BTreeMap<String, String>;

/// Where and how the response goes back to the client.
pub(super) struct ClientReturn<'a> {
    pub redirect_uri: &'a str,
    pub response_mode: &'a str,
    pub state: Option<&'a str>,
    pub issuer: &'a str,
}

impl ClientReturn<'_> {
    /// Send `params` (plus `state` and `iss`) back to the client.
    pub(super) fn send(&self, mut params: Vec<(&str, String)>) -> Response {
        if let Some(state) = self.state {
            params.push(("state", state.to_string()));
        }
        params.push(("iss", self.issuer.to_string()));
        match self.response_mode {
            "form_post" => form_post(self.redirect_uri, &params),
            mode => {
                let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                let sep = if mode == "fragment" {
                    "#"
                } else if self.redirect_uri.contains('?') {
                    "&"
                } else {
                    "?"
                };
                super::redirect(&format!("{}{sep}{encoded}", self.redirect_uri))
            }
        }
    }

    pub(super) fn error(&self, error: &str, description: &str) -> Response {
        self.send(vec![
            ("error", error.into()),
            ("error_description", description.into()),
        ])
    }
}

/// `response_mode=form_post`: a page that posts the response to the client. It submits
/// itself with a one-line script; without scripts the user presses the button.
fn form_post(action: &str, params: &[(&str, String)]) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut inputs = String::new();
    for (k, v) in params {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        ));
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Submit This Form</title></head>\
         <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        esc(action)
    );
    let mut r = super::html_response(StatusCode::OK, html);
    // This page must run its one inline handler and post to the client's origin.
    r.headers_mut()
        .remove(http::header::CONTENT_SECURITY_POLICY);
    r
}

/// Issue an authorization code for `session` and send it to the client.
pub(super) fn issue_code(
    app: &App,
    realm: &RealmRecord,
    client: &ClientRecord,
    session: &SessionRecord,
    params: &AuthParams,
    iss: &str,
) -> Response {
    let ret = ClientReturn {
        redirect_uri: params.get("redirect_uri").map(String::as_str).unwrap_or(""),
        response_mode: params
            .get("response_mode")
            .map(String::as_str)
            .unwrap_or("query"),
        state: params.get("state").map(String::as_str),
        issuer: iss,
    };
    let code = random_token(32);
    let now = app.clock.now_millis();
    let record = AuthCodeRecord {
        client_id: client.client_id.clone(),
        redirect_uri: ret.redirect_uri.to_string(),
        session_id: session.id.clone(),
        user_id: session.user_id.clone(),
        scope: params.get("scope").cloned().unwrap_or_default(),
        nonce: params.get("nonce").cloned(),
        code_challenge: params.get("code_challenge").cloned(),
        code_challenge_method: params.get("code_challenge_method").cloned(),
        expires_at: now + realm.access_code_lifespan * 1000,
        used: false,
    };
    if let Err(e) = app
        .store
        .write(|w| w.put_auth_code(&realm.id, &hash_code(&code), &record))
    {
        tracing::error!(error = %e, "cannot store an authorization code");
        return ret.error("server_error", "Internal error");
    }
    ret.send(vec![("code", code), ("session_state", session.id.clone())])
}

pub async fn authorize(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Response {
    let read = match app.store.read() {
        Ok(r) => r,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let realm = match read.realm_by_name(realm_name) {
        Ok(Some(r)) if r.enabled => r,
        _ => {
            let fallback = RealmRecord {
                name: realm_name.to_string(),
                ..Default::default()
            };
            return PageCx::new(app, &fallback, request, None)
                .error_text(StatusCode::NOT_FOUND, "Realm does not exist");
        }
    };
    let page = PageCx::new(app, &realm, request, None);
    let mut params = match parameters(request) {
        Ok(p) => p,
        Err(_) => return page.error_text(StatusCode::BAD_REQUEST, "Invalid Request"),
    };
    if let Some(request_uri) = params.get("request_uri").cloned() {
        // A pushed request (RFC 9126): its stored parameters replace the query.
        match crate::idp::oidc::par::take(
            app,
            &realm.id,
            &request_uri,
            params.get("client_id").map(String::as_str),
        ) {
            Some(pushed) => params = pushed,
            None => {
                return page.error_text(StatusCode::BAD_REQUEST, "Invalid parameter: request_uri")
            }
        }
    }
    let page = PageCx::new(
        app,
        &realm,
        request,
        params.get("ui_locales").map(String::as_str),
    );
    let client = match params
        .get("client_id")
        .map(|id| read.client_by_client_id(&realm.id, id))
    {
        Some(Ok(Some(c))) if c.enabled && !c.bearer_only => c,
        Some(Ok(Some(_))) => {
            return page.error_text(
                StatusCode::BAD_REQUEST,
                "Client disabled or not allowed to log in",
            )
        }
        Some(Ok(None)) => return page.error_text(StatusCode::BAD_REQUEST, "Client not found."),
        Some(Err(e)) => return crate::http::ApiError::from(e).into_response(),
        None => return page.error_text(StatusCode::BAD_REQUEST, "Missing parameter: client_id"),
    };
    let mut client = client;
    // Relative redirect URIs of the built-in clients are relative to this server.
    crate::idp::realm::resolve_builtin_root(&mut client, app, request, info);
    let Some(redirect_uri) =
        verify_redirect_uri(&client, params.get("redirect_uri").map(String::as_str))
    else {
        return page.error_text(StatusCode::BAD_REQUEST, "Invalid parameter: redirect_uri");
    };
    drop(read);
    let iss = issuer(app, request, info, &realm.name);
    let response_mode = params
        .get("response_mode")
        .map(String::as_str)
        .unwrap_or("query");
    let response_type = params
        .get("response_type")
        .map(String::as_str)
        .unwrap_or("");
    // Keycloak answers code flows in the query unless told otherwise.
    let ret = ClientReturn {
        redirect_uri: &redirect_uri,
        response_mode: if matches!(response_mode, "query" | "fragment" | "form_post") {
            response_mode
        } else {
            "query"
        },
        state: params.get("state").map(String::as_str),
        issuer: &iss,
    };
    if !matches!(response_mode, "query" | "fragment" | "form_post") {
        return ret.error("invalid_request", "Invalid parameter: response_mode");
    }
    if response_type != "code" {
        return ret.error(
            "unsupported_response_type",
            "Client is not allowed to initiate browser login with given response_type.",
        );
    }
    if !client.standard_flow_enabled {
        return ret.error("unauthorized_client", "Client is not allowed to initiate browser login with given response_type. Standard flow is disabled for the client.");
    }
    let resolved = app.store.read().map_err(ScopeError::from).and_then(|read| {
        resolve(
            &read,
            &realm.id,
            &client,
            params.get("scope").map(String::as_str),
            true,
        )
    });
    let scopes = match resolved {
        Ok(s) => s,
        Err(ScopeError::Store(e)) => return crate::http::ApiError::from(e).into_response(),
        Err(e) => return ret.error("invalid_scope", &e.to_string()),
    };
    // PKCE: S256, or plain only where the client allows it; required for public clients.
    let method = params.get("code_challenge_method").map(String::as_str);
    let challenge = params.get("code_challenge").filter(|c| !c.is_empty());
    // A client configured with a method requires PKCE whatever its type (a confidential
    // client too: its code must not be redeemable without the verifier).
    let configured = client
        .attributes
        .get("pkce.code.challenge.method")
        .map(String::as_str)
        .filter(|m| !m.is_empty());
    let allowed_plain = configured == Some("plain");
    match (challenge, method) {
        (None, Some(_)) => {
            return ret.error("invalid_request", "Missing parameter: code_challenge")
        }
        (None, None) if client.public_client || configured.is_some() => {
            return ret.error(
                "invalid_request",
                "Missing parameter: code_challenge_method",
            );
        }
        (Some(_), Some("S256")) => {}
        (Some(_), Some("plain")) | (Some(_), None) if allowed_plain => {}
        (Some(_), _) => {
            return ret.error(
                "invalid_request",
                "Invalid parameter: code challenge method is not configured one",
            )
        }
        (None, None) => {}
    }
    if let Some(c) = challenge {
        if c.len() < 43 || c.len() > 128 {
            return ret.error("invalid_request", "Invalid parameter: code_challenge");
        }
    }
    // The realm's client policies (PKCE enforcement, confidential clients, secure
    // redirect URIs).
    let policy = app
        .store
        .read()
        .map_err(crate::http::ApiError::from)
        .and_then(|read| {
            crate::idp::client_policies::executors(&read, &realm.id, &client)
                .map_err(crate::http::ApiError::from)
        });
    match policy {
        Ok(executors) => {
            if let Err((code, description)) = crate::idp::client_policies::check_authorization(
                &executors,
                &client,
                &redirect_uri,
                method,
                challenge.is_some(),
            ) {
                return ret.error(code, &description);
            }
        }
        Err(e) => return e.into_response(),
    }

    let mut flow_params: AuthParams = BTreeMap::new();
    for key in [
        "client_id",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "login_hint",
        "ui_locales",
        "max_age",
        "kc_idp_hint",
    ] {
        if let Some(v) = params.get(key) {
            flow_params.insert(key.into(), v.clone());
        }
    }
    // The client's other parameters, as Keycloak keeps them (`client_request_param_*`): an
    // identity provider's `forwardParameters` may pass them on. A few, and short.
    let others: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !flow_params.contains_key(*k) && k.len() <= 64 && !k.contains(':'))
        .filter(|(_, v)| v.len() <= 1024)
        .take(16)
        .map(|(k, v)| (format!("{CLIENT_PARAM}{k}"), v.clone()))
        .collect();
    flow_params.extend(others);
    flow_params.insert("redirect_uri".into(), redirect_uri.clone());
    flow_params.insert("response_mode".into(), ret.response_mode.to_string());
    flow_params.insert("scope".into(), scopes.to_param());

    let now = app.clock.now_millis();
    let prompt = params.get("prompt").map(String::as_str).unwrap_or("");
    let force_login = prompt.split_whitespace().any(|p| p == "login");
    let max_age = params.get("max_age").and_then(|v| v.parse::<i64>().ok());
    // The SSO cookie signs the user in unless the browser flow disables `Cookie`.
    let cookie = app
        .store
        .read()
        .and_then(|r| crate::idp::flows::browser_plan(&r, &realm, Some(&client)))
        .map(|p| p.cookie)
        .unwrap_or(true);
    if let Some(session) = sso_session(app, request, &realm, now).filter(|_| cookie) {
        let too_old = max_age.is_some_and(|m| now - session.auth_time > m.saturating_mul(1000));
        // An SSO login too owes the user's required actions (VERIFY_PROFILE included):
        // with any due, the login form asks first.
        let user_ok = app.store.read().ok().is_some_and(|r| {
            r.user(&realm.id, &session.user_id)
                .ok()
                .flatten()
                .is_some_and(|u| {
                    u.enabled
                        && crate::idp::required_actions::pending(&realm, &u.required_actions)
                            .is_empty()
                        && !crate::idp::required_actions::profile_unverified(&r, &realm, &u)
                })
        });
        if !force_login && !too_old && user_ok {
            return issue_code(app, &realm, &client, &session, &flow_params, &iss);
        }
    }
    if prompt.split_whitespace().any(|p| p == "none") {
        return ret.error("login_required", "Login required");
    }

    // Start a login: a flow bound to this browser by a fresh cookie.
    let browser_secret = new_secret();
    let flow = LoginFlowRecord {
        id: random_token(16),
        browser_hash: sha256_hex(&browser_secret),
        csrf_token: new_secret(),
        params: flow_params,
        user_id: None,
        remember_me: false,
        created_at: now,
        expires_at: now + FLOW_LIFETIME_MS,
    };
    if let Err(e) = app
        .store
        .write_volatile(|w| w.put_login_flow(&realm.id, &flow))
    {
        return crate::http::ApiError::from(e).into_response();
    }
    // `kc_idp_hint` goes straight to that provider (an unknown one shows the login page).
    let hinted = flow
        .params
        .get("kc_idp_hint")
        .filter(|alias| {
            app.store
                .read()
                .and_then(|r| crate::idp::broker::provider(&r, &realm.id, alias))
                .ok()
                .flatten()
                .is_some_and(|p| !p.link_only)
        })
        .map(|alias| super::broker::login_url(&realm, alias, &flow));
    let mut response = match hinted {
        Some(url) => crate::http::redirect(&url),
        None => super::actions::login_page(&page, &flow, None, None),
    };
    add_cookie(
        &mut response,
        set_cookie(
            AUTH_SESSION_COOKIE,
            &browser_secret,
            &realm.name,
            info,
            true,
            None,
        ),
    );
    response
}

/// Build the variables of the login form.
pub(super) fn login_vars(
    page: &PageCx,
    flow: &LoginFlowRecord,
    username: Option<&str>,
    error: Option<&str>,
) -> BTreeMap<&'static str, Ctx> {
    let realm = page.realm;
    let mut vars = page.form_vars("login-actions/authenticate", flow, error.map(String::from));
    vars.insert(
        "username",
        Ctx::from(
            username
                .map(String::from)
                .or_else(|| flow.params.get("login_hint").cloned())
                .unwrap_or_default(),
        ),
    );
    vars.insert(
        "login_with_email_allowed",
        Ctx::from(realm.login_with_email_allowed),
    );
    vars.insert("remember_me_enabled", Ctx::from(realm.remember_me));
    if realm.reset_password_allowed {
        vars.insert(
            "reset_password_url",
            Ctx::from(format!(
                "/realms/{}/login-actions/reset-credentials?flow={}",
                crate::http::path::encode_segment(&realm.name),
                flow.id
            )),
        );
    }
    vars.insert("remember_me_checked", Ctx::from(flow.remember_me));
    let brokers = super::broker::login_buttons(page, flow);
    if !brokers.is_empty() {
        vars.insert("broker_links", Ctx::from(brokers));
    }
    if realm.registration_allowed {
        vars.insert(
            "registration_url",
            Ctx::from(format!(
                "/realms/{}/login-actions/registration?flow={}",
                crate::http::path::encode_segment(&realm.name),
                flow.id
            )),
        );
    }
    vars
}
