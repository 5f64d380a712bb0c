//! The account page at `/realms/{realm}/account`: who you are, a new password, your
//! authenticators (set one up, remove one), your sessions (sign any of them out).
//! Server-rendered and usable without JavaScript. It is authenticated by the realm's SSO
//! cookie; without one the browser goes through the login with the built-in `account`
//! client and comes back. Every form carries a token derived from the secret half of the
//! SSO cookie, so another site cannot post them (CSRF).

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::{Method, StatusCode};
use minijinja::Value as Ctx;
use sha2::{Digest, Sha256};

use crate::crypto::{constant_time_eq, random_token};
use crate::http::path::encode_segment;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::authn::authenticate_password;
use crate::idp::oidc::base_url;
use crate::idp::App;
use crate::store::{RealmRecord, SessionRecord, UserRecord};

use super::actions::{set_new_password, NewPasswordError, CONFIGURE_TOTP};
use super::{cookie, redirect, sha256_hex, PageCx, IDENTITY_COOKIE};

/// `/realms/{realm}/account[/{action}]`
pub async fn account(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
    rest: &str,
) -> Response {
    let Some(realm) = super::enabled_realm(app, realm_name) else {
        return crate::http::ApiError::NotFound.into_response();
    };
    let now = app.clock.now_millis();
    let Some((session, secret)) = current_session(app, request, &realm, now) else {
        return login_redirect(app, request, info, &realm, false);
    };
    let Some(user) = app
        .store
        .read()
        .ok()
        .and_then(|r| r.user(&realm.id, &session.user_id).ok().flatten())
        .filter(|u| u.enabled)
    else {
        return login_redirect(app, request, info, &realm, false);
    };
    let page = PageCx::new(app, &realm, request, None);
    let csrf = sha256_hex(&format!("account:{secret}"));
    let action = rest.trim_matches('/');
    if request.method() == Method::GET && action.is_empty() {
        if request.uri().query().is_some_and(|q| q.contains("code=")) {
            // Back from the login: show the page under its plain address.
            return redirect(&account_url(app, request, info, &realm));
        }
        return render(&page, &user, &session, &csrf, None, None);
    }
    // The table lets GET and POST through; the sub-pages take only POST.
    if request.method() != Method::POST {
        return crate::http::ApiError::MethodNotAllowed(vec![Method::GET, Method::POST])
            .into_response();
    }
    let fields: BTreeMap<String, String> = form_urlencoded::parse(request.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !fields
        .get("csrf_token")
        .is_some_and(|t| constant_time_eq(t.as_bytes(), csrf.as_bytes()))
    {
        return page.error(StatusCode::BAD_REQUEST, "invalidCsrfMessage");
    }
    let ip = info.peer.map(|p| p.ip().to_string());
    let event = |kind: &str| {
        crate::idp::events::record(
            app,
            &realm,
            crate::idp::events::Event {
                kind,
                client_id: Some("account"),
                user_id: Some(&user.id),
                session_id: Some(&session.id),
                ip_address: ip.as_deref(),
                ..Default::default()
            },
        )
    };
    match action {
        "password" => {
            let current = fields.get("password").map(String::as_str).unwrap_or("");
            let new = fields.get("password-new").map(String::as_str).unwrap_or("");
            let confirm = fields
                .get("password-confirm")
                .map(String::as_str)
                .unwrap_or("");
            let fail = |key: &str| render(&page, &user, &session, &csrf, None, Some(page.msg(key)));
            if new.is_empty() {
                return fail("missingPasswordMessage");
            }
            if new != confirm {
                return fail("notMatchPasswordMessage");
            }
            // The current password, with the realm's brute-force protection.
            match authenticate_password(app, &realm, &user.username, current, ip.as_deref()).await {
                Ok(Ok(_)) => {}
                Ok(Err(crate::idp::authn::AuthnFailure::Busy)) => return page.busy(),
                Ok(Err(_)) => return fail("accountWrongPasswordMessage"),
                Err(e) => return crate::http::ApiError::from(e).into_response(),
            }
            match set_new_password(app, &realm, &user, new).await {
                Ok(updated) => {
                    event("UPDATE_PASSWORD");
                    render(
                        &page,
                        &updated,
                        &session,
                        &csrf,
                        Some(page.msg("accountPasswordUpdatedMessage")),
                        None,
                    )
                }
                Err(NewPasswordError::Policy(message)) => {
                    render(&page, &user, &session, &csrf, None, Some(message))
                }
                Err(NewPasswordError::Refused(key)) => {
                    render(&page, &user, &session, &csrf, None, Some(page.msg(key)))
                }
                Err(NewPasswordError::Busy) => page.busy(),
                Err(NewPasswordError::Failed) => {
                    page.error(StatusCode::INTERNAL_SERVER_ERROR, "unexpectedErrorMessage")
                }
            }
        }
        "totp/remove" => {
            let id = fields.get("credential_id").cloned().unwrap_or_default();
            let removed = app.store.write(|w| {
                let own_otp = w
                    .credentials(&realm.id, &user.id)?
                    .iter()
                    .any(|c| c.id == id && c.kind == "otp");
                if own_otp {
                    w.delete_credential(&realm.id, &user.id, &id)?;
                }
                Ok::<_, crate::store::StoreError>(own_otp)
            });
            match removed {
                Ok(true) => {
                    event("REMOVE_TOTP");
                    render(
                        &page,
                        &user,
                        &session,
                        &csrf,
                        Some(page.msg("accountTotpRemovedMessage")),
                        None,
                    )
                }
                Ok(false) => render(
                    &page,
                    &user,
                    &session,
                    &csrf,
                    None,
                    Some(page.msg("unexpectedErrorMessage")),
                ),
                Err(e) => crate::http::ApiError::from(e).into_response(),
            }
        }
        "totp/setup" => {
            // The set-up is the CONFIGURE_TOTP required action, after a fresh login.
            let mut updated = user.clone();
            if !updated.required_actions.iter().any(|a| a == CONFIGURE_TOTP) {
                updated.required_actions.push(CONFIGURE_TOTP.into());
            }
            if let Err(e) = app
                .store
                .write(|w| w.put_user(&realm.id, &updated, realm.duplicate_emails_allowed))
            {
                return crate::http::ApiError::from(e).into_response();
            }
            login_redirect(app, request, info, &realm, true)
        }
        "linked-accounts/link" => {
            let alias = fields.get("alias").cloned().unwrap_or_default();
            super::broker::start_link(app, &page, request, info, &realm, &user, &alias)
        }
        "linked-accounts/remove" => {
            let alias = fields.get("alias").cloned().unwrap_or_default();
            let result = app.store.write(|w| {
                let links = w.federated_identities(&realm.id, &user.id)?;
                let has_password = w
                    .credentials(&realm.id, &user.id)?
                    .iter()
                    .any(|c| c.kind == "password");
                if links.len() <= 1 && !has_password {
                    return Ok(None);
                }
                w.unlink_federated_identity(&realm.id, &user.id, &alias)
                    .map(Some)
            });
            match result {
                Ok(Some(true)) => {
                    event("REMOVE_FEDERATED_IDENTITY");
                    render(
                        &page,
                        &user,
                        &session,
                        &csrf,
                        Some(page.msg("accountUnlinkedMessage")),
                        None,
                    )
                }
                Ok(Some(false)) => crate::http::ApiError::NotFound.into_response(),
                Ok(None) => render(
                    &page,
                    &user,
                    &session,
                    &csrf,
                    None,
                    Some(page.msg("accountLastLinkMessage")),
                ),
                Err(e) => crate::http::ApiError::from(e).into_response(),
            }
        }
        "sessions/signout" => {
            let target = fields.get("session_id").cloned().unwrap_or_default();
            let sessions = match app
                .store
                .read()
                .and_then(|r| r.user_sessions(&realm.id, &user.id))
            {
                Ok(s) => s,
                Err(e) => return crate::http::ApiError::from(e).into_response(),
            };
            // Offline sessions are not listed here and stay (as with the admin's logout).
            let doomed: Vec<String> = sessions
                .iter()
                .filter(|s| !s.offline)
                .filter(|s| {
                    if target == "others" {
                        s.id != session.id
                    } else {
                        s.id == target
                    }
                })
                .map(|s| s.id.clone())
                .collect();
            let ending = crate::idp::sessions::Ending::Logout {
                client_id: Some("account"),
                ip: ip.as_deref(),
            };
            if let Err(e) = crate::idp::sessions::end(app, &realm, &doomed, ending) {
                return crate::http::ApiError::from(e).into_response();
            }
            if doomed.contains(&session.id) {
                // This browser signed itself out.
                return redirect(&account_url(app, request, info, &realm));
            }
            render(
                &page,
                &user,
                &session,
                &csrf,
                Some(page.msg("accountSessionsSignedOutMessage")),
                None,
            )
        }
        _ => crate::http::ApiError::NotFound.into_response(),
    }
}

/// The live SSO session of this browser and its cookie secret.
fn current_session(
    app: &App,
    request: &Request,
    realm: &RealmRecord,
    now: i64,
) -> Option<(SessionRecord, String)> {
    let session = super::sso_session(app, request, realm, now)?;
    let secret = cookie(request, IDENTITY_COOKIE)?
        .split_once('.')?
        .1
        .to_string();
    Some((session, secret))
}

fn account_url(app: &App, request: &Request, info: &RequestInfo, realm: &RealmRecord) -> String {
    format!(
        "{}/realms/{}/account/",
        base_url(app, request, info),
        encode_segment(&realm.name)
    )
}

/// To the login with the built-in `account` client, coming back here. `fresh` asks for
/// the password again (before setting up an authenticator).
fn login_redirect(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &RealmRecord,
    fresh: bool,
) -> Response {
    let verifier = random_token(32);
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", "account")
        .append_pair("redirect_uri", &account_url(app, request, info, realm))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", &random_token(16))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if fresh {
        query.append_pair("prompt", "login");
    }
    redirect(&format!(
        "{}/realms/{}/protocol/openid-connect/auth?{}",
        base_url(app, request, info),
        encode_segment(&realm.name),
        query.finish()
    ))
}

fn timestamp(ms: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

fn render(
    page: &PageCx,
    user: &UserRecord,
    current: &SessionRecord,
    csrf: &str,
    success: Option<String>,
    error: Option<String>,
) -> Response {
    let realm = page.realm;
    let read = match page.app.store.read() {
        Ok(r) => r,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let otp: Vec<BTreeMap<&str, String>> = read
        .credentials(&realm.id, &user.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.kind == "otp")
        .map(|c| {
            BTreeMap::from([
                ("id", c.id.clone()),
                (
                    "label",
                    c.user_label
                        .clone()
                        .unwrap_or_else(|| page.msg("authenticatorApp")),
                ),
                ("created", timestamp(c.created_date)),
            ])
        })
        .collect();
    let links = read
        .federated_identities(&realm.id, &user.id)
        .unwrap_or_default();
    let linked_accounts: Vec<BTreeMap<&str, Ctx>> = read
        .objects(&realm.id, crate::idp::broker::IDP_KIND)
        .unwrap_or_default()
        .iter()
        .filter_map(crate::idp::broker::Provider::from_representation)
        .filter(|p| p.enabled)
        .map(|p| {
            let link = links
                .iter()
                .find(|l| l["identityProvider"] == p.alias.as_str());
            BTreeMap::from([
                ("alias", Ctx::from(p.alias.clone())),
                ("display_name", Ctx::from(p.display_name.clone())),
                ("linked", Ctx::from(link.is_some())),
                (
                    "user_name",
                    Ctx::from(
                        link.and_then(|l| l["userName"].as_str())
                            .unwrap_or_default()
                            .to_string(),
                    ),
                ),
            ])
        })
        .collect();
    let mut sessions: Vec<SessionRecord> = read
        .user_sessions(&realm.id, &user.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.offline)
        .collect();
    drop(read);
    sessions.sort_by_key(|s| std::cmp::Reverse(s.last_access));
    let sessions: Vec<BTreeMap<&str, Ctx>> = sessions
        .iter()
        .map(|s| {
            BTreeMap::from([
                ("id", Ctx::from(s.id.clone())),
                ("started", Ctx::from(timestamp(s.created_at))),
                ("last_access", Ctx::from(timestamp(s.last_access))),
                ("ip", Ctx::from(s.ip_address.clone().unwrap_or_default())),
                (
                    "clients",
                    Ctx::from(s.clients.keys().cloned().collect::<Vec<_>>().join(", ")),
                ),
                ("current", Ctx::from(s.id == current.id)),
            ])
        })
        .collect();
    let base = format!("/realms/{}/account", encode_segment(&realm.name));
    let mut vars = BTreeMap::new();
    vars.insert("account_url", Ctx::from(base));
    vars.insert("csrf_token", Ctx::from(csrf.to_string()));
    vars.insert("username", Ctx::from(user.username.clone()));
    vars.insert("email", Ctx::from(user.email.clone().unwrap_or_default()));
    vars.insert(
        "full_name",
        Ctx::from(
            [user.first_name.as_deref(), user.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
    );
    vars.insert("otp_credentials", Ctx::from_serialize(&otp));
    vars.insert("sessions", Ctx::from_serialize(&sessions));
    vars.insert("linked_accounts", Ctx::from_serialize(&linked_accounts));
    vars.insert("success", success.map(Ctx::from).unwrap_or(Ctx::from(())));
    vars.insert("error", error.map(Ctx::from).unwrap_or(Ctx::from(())));
    page.render(StatusCode::OK, "login/account.html", vars)
}
