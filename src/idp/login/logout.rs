//! `/protocol/openid-connect/logout`: RP-initiated logout from the browser
//! (`id_token_hint`, `post_logout_redirect_uri`, `client_id`, `state`, with a confirmation
//! page when there is no hint), and the back-channel form (`POST` with a refresh token and
//! client credentials → 204) that server-side adapters use.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, StatusCode};
use minijinja::Value as Ctx;

use crate::crypto::random_token;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::error::OAuthError;
use crate::idp::oidc::redirect::verify_post_logout_uri;
use crate::idp::oidc::{authenticate_client, issuer, parameters};
use crate::idp::sessions::Ending;
use crate::idp::tokens::{self, Claims};
use crate::idp::App;
use crate::store::{ClientRecord, LoginFlowRecord, RealmRecord};

use super::{
    add_cookie, clear_session_cookies, new_secret, redirect, set_cookie, sha256_hex, sso_session,
    PageCx, AUTH_SESSION_COOKIE, FLOW_LIFETIME_MS,
};

pub async fn logout(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Response {
    let Some(realm) = super::enabled_realm(app, realm_name) else {
        return OAuthError::RealmNotFound.into_response();
    };
    let page = PageCx::new(app, &realm, request, None);
    let params = match parameters(request) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if request.method() == Method::POST && params.contains_key("refresh_token") {
        return backchannel(app, request, info, &realm, &params)
            .unwrap_or_else(|e| e.into_response());
    }
    let iss = issuer(app, request, info, &realm.name);
    let now = app.clock.now_millis();

    // A confirmation form posted back.
    if let Some(flow_id) = params.get("flow") {
        let flow = app
            .store
            .read()
            .ok()
            .and_then(|r| r.login_flow(&realm.id, flow_id).ok().flatten())
            .filter(|f| f.expires_at > now);
        let Some(flow) = flow else {
            return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
        };
        if request.method() != Method::POST
            || !super::browser_bound(request, &flow)
            || !super::csrf_valid(&params, &flow)
        {
            return page.error(StatusCode::BAD_REQUEST, "invalidCsrfMessage");
        }
        let _ = app
            .store
            .write(|w| w.delete_login_flow(&realm.id, &flow.id));
        return finish(
            app,
            request,
            info,
            &page,
            &realm,
            None,
            flow.params.get("post_logout_redirect_uri"),
            flow.params.get("state"),
        );
    }

    // The hint names the client and session; its signature must be ours (expiry is fine).
    let hint: Option<Claims> = match params.get("id_token_hint") {
        None => None,
        Some(token) => match verify_hint(app, &realm, token, &iss, now) {
            Some(c) => Some(c),
            None => {
                return page.error_text(StatusCode::BAD_REQUEST, "Invalid parameter: id_token_hint")
            }
        },
    };
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| hint.as_ref().map(|h| h.azp.clone()));
    if let (Some(h), Some(id)) = (&hint, params.get("client_id")) {
        if &h.azp != id {
            return page.error_text(
                StatusCode::BAD_REQUEST,
                "Parameter client_id different than the client of the id_token_hint",
            );
        }
    }
    let client: Option<ClientRecord> = client_id.as_ref().and_then(|id| {
        let mut client = app
            .store
            .read()
            .ok()?
            .client_by_client_id(&realm.id, id)
            .ok()
            .flatten()?;
        // Relative URIs of the built-in clients are relative to this server.
        crate::idp::realm::resolve_builtin_root(&mut client, app, request, info);
        Some(client)
    });
    let post_logout = params.get("post_logout_redirect_uri");
    if let Some(uri) = post_logout {
        match &client {
            Some(c) if verify_post_logout_uri(c, uri) => {}
            Some(_) => return page.error_text(StatusCode::BAD_REQUEST, "Invalid redirect uri"),
            None => {
                return page.error_text(
                    StatusCode::BAD_REQUEST,
                    "Either the parameter client_id or the parameter id_token_hint is required when post_logout_redirect_uri is used.",
                )
            }
        }
    }
    if hint.is_some() {
        return finish(
            app,
            request,
            info,
            &page,
            &realm,
            hint.as_ref(),
            post_logout,
            params.get("state"),
        );
    }
    if sso_session(app, request, &realm, now).is_none() {
        // Nothing to confirm: nobody is logged in here.
        return finish(
            app,
            request,
            info,
            &page,
            &realm,
            None,
            post_logout,
            params.get("state"),
        );
    }
    // Without a hint the user confirms, so a page cannot log people out by embedding a link.
    let browser_secret = new_secret();
    let mut flow_params = BTreeMap::new();
    if let Some(u) = post_logout {
        flow_params.insert("post_logout_redirect_uri".to_string(), u.clone());
    }
    if let Some(s) = params.get("state") {
        flow_params.insert("state".to_string(), s.clone());
    }
    let flow = LoginFlowRecord {
        id: random_token(16),
        browser_hash: sha256_hex(&browser_secret),
        csrf_token: new_secret(),
        params: flow_params,
        created_at: now,
        expires_at: now + FLOW_LIFETIME_MS,
        ..Default::default()
    };
    if let Err(e) = app
        .store
        .write_volatile(|w| w.put_login_flow(&realm.id, &flow))
    {
        return crate::http::ApiError::from(e).into_response();
    }
    let mut vars = BTreeMap::new();
    vars.insert(
        "action_url",
        Ctx::from(format!(
            "/realms/{}/protocol/openid-connect/logout?flow={}",
            crate::http::path::encode_segment(&realm.name),
            flow.id
        )),
    );
    vars.insert("csrf_token", Ctx::from(flow.csrf_token.clone()));
    let mut response = page.render(StatusCode::OK, "login/logout-confirm.html", vars);
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

fn verify_hint(
    app: &App,
    realm: &RealmRecord,
    token: &str,
    iss: &str,
    now_ms: i64,
) -> Option<Claims> {
    let keys = app
        .keys
        .realm_keys(&app.store.read().ok()?, &realm.id, now_ms)
        .ok()?;
    let header = crate::crypto::jwt::decode_header(token).ok()?;
    let claims: Claims = keys.verifier(header.kid.as_deref()?)?.verify(token).ok()?;
    (claims.iss == iss && claims.typ == tokens::TYP_ID).then_some(claims)
}

/// End the browser's SSO session (and the hinted one), then go back or say so.
#[allow(clippy::too_many_arguments)]
fn finish(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    page: &PageCx,
    realm: &RealmRecord,
    hint: Option<&Claims>,
    post_logout: Option<&String>,
    state: Option<&String>,
) -> Response {
    let now = app.clock.now_millis();
    let mut ended = Vec::new();
    let browser_session = sso_session(app, request, realm, now);
    if let Some(s) = &browser_session {
        ended.push(s.id.clone());
    }
    if let Some(sid) = hint.and_then(|h| h.sid.clone()) {
        ended.push(sid);
    }
    let ip = info.peer.map(|p| p.ip().to_string());
    let ending = Ending::Logout {
        client_id: hint.map(|h| h.azp.as_str()),
        ip: ip.as_deref(),
    };
    if let Err(e) = crate::idp::sessions::end(app, realm, &ended, ending) {
        return crate::http::ApiError::from(e).into_response();
    }
    let target = post_logout.map(|uri| {
        let mut target = uri.clone();
        if let Some(s) = state {
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", s)
                .finish();
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&encoded);
        }
        target
    });
    // Signed in through an identity provider without a back channel: its logout first,
    // then back here and on to the target.
    let front = browser_session.as_ref().and_then(|s| {
        super::broker::front_channel_logout(app, request, info, realm, s, target.as_deref())
    });
    let mut response = match (front, target) {
        (Some(r), _) => r,
        (None, Some(target)) => redirect(&target),
        (None, None) => {
            let mut vars = BTreeMap::new();
            vars.insert("title", Ctx::from(page.msg("loggedOutTitle")));
            vars.insert("message", Ctx::from(page.msg("loggedOutMessage")));
            page.render(StatusCode::OK, "login/info.html", vars)
        }
    };
    clear_session_cookies(&mut response, &realm.name, info);
    response
}

/// `POST /logout` with `refresh_token` and client authentication: end that session.
fn backchannel(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    params: &BTreeMap<String, String>,
) -> Result<Response, OAuthError> {
    let now = app.clock.now_millis();
    let iss = issuer(app, request, info, &realm.name);
    let read = app.store.read()?;
    let client = authenticate_client(
        &app.store,
        &read,
        realm,
        request,
        params,
        &format!("{iss}/protocol/openid-connect/token"),
        now / 1000,
    )?;
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, now)
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    drop(read);
    let token = params
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or("");
    let claims = tokens::verify(
        &keys,
        token,
        &iss,
        &[tokens::TYP_REFRESH, tokens::TYP_OFFLINE],
        now / 1000,
    )
    .map_err(|_| OAuthError::InvalidGrant("Invalid refresh token".into()))?;
    if claims.azp != client.client_id {
        return Err(OAuthError::InvalidGrant("Invalid refresh token".into()));
    }
    if let Some(sid) = &claims.sid {
        let ip = info.peer.map(|p| p.ip().to_string());
        let ending = Ending::Logout {
            client_id: Some(&client.client_id),
            ip: ip.as_deref(),
        };
        crate::idp::sessions::end(app, realm, std::slice::from_ref(sid), ending)?;
    }
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(crate::idp::oidc::with_cors(
        r,
        request,
        &tokens::allowed_origins(&client),
    ))
}
