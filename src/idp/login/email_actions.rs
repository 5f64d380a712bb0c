//! What happens by e-mail: "Forgot password?" (`login-actions/reset-credentials`), the
//! single-use links mailed to users (`login-actions/action-token?key=...`: reset the
//! password, verify the address, or perform the actions an administrator asked for), and
//! the mail sent for the `VERIFY_EMAIL` required action.
//!
//! A link's key is random; only its SHA-256 is stored, with the user, the actions, the
//! address it was sent to and an expiry (the realm's `actionTokenGeneratedByUserLifespan`,
//! or the administrator's `lifespan`). Opening it deletes it (single use) and starts a
//! login flow in that browser at the actions; a user with an authenticator still gives a
//! one-time code before choosing a new password.

use std::collections::BTreeMap;

use http::StatusCode;
use minijinja::Value as Ctx;
use serde::{Deserialize, Serialize};

use crate::crypto::random_token;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::email::{self, SmtpSettings};
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, StoreError, UserRecord};

use super::{add_cookie, new_secret, set_cookie, sha256_hex, PageCx, AUTH_SESSION_COOKIE};

/// The store kind of action tokens (`put_object`).
const KIND: &str = "action-token";
pub(crate) const VERIFY_EMAIL: &str = "VERIFY_EMAIL";
/// Flow parameter: the flow was started by a mailed link (no client to return to unless
/// the link carries one).
pub(super) const FROM_LINK: &str = "from_link";

/// What a mailed link lets its holder do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ActionToken {
    /// `reset-credentials`, `verify-email` or `execute-actions`.
    pub kind: String,
    pub user_id: String,
    /// Required actions to perform (`UPDATE_PASSWORD`, `CONFIGURE_TOTP`, `VERIFY_EMAIL`).
    pub actions: Vec<String>,
    /// The address the link was sent to: opening it proves this address.
    pub email: String,
    pub expires_at: i64,
    /// The authorization request to continue afterwards (a login that asked for it).
    pub params: BTreeMap<String, String>,
    /// Offered as "back to application" afterwards (admin-sent links).
    pub redirect_uri: Option<String>,
    /// For a verification sent during a login: the browser of that login. Only there does
    /// the link carry the login on; anywhere else it only verifies the address.
    pub browser_hash: Option<String>,
}

/// Store a token; returns the key that goes into the link.
fn store_token(app: &App, realm: &RealmRecord, token: &ActionToken) -> Result<String, StoreError> {
    let key = random_token(32);
    let value = serde_json::to_value(token).map_err(|e| StoreError::Backend(e.to_string()))?;
    app.store
        .write(|w| w.put_object(&realm.id, KIND, &sha256_hex(&key), &value))?;
    Ok(key)
}

/// Take a token out of the store (it works once), if it exists.
fn take_token(
    app: &App,
    realm: &RealmRecord,
    key: &str,
) -> Result<Option<ActionToken>, StoreError> {
    let id = sha256_hex(key);
    app.store.write(|w| {
        let Some(value) = w.object(&realm.id, KIND, &id)? else {
            return Ok(None);
        };
        w.delete_object(&realm.id, KIND, &id)?;
        Ok(serde_json::from_value(value).ok())
    })
}

/// Drop expired tokens of a realm (housekeeping).
pub(crate) fn purge_expired(
    store: &crate::store::Store,
    realm_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let expired: Vec<String> = {
        let read = store.read()?;
        read.object_ids(realm_id, KIND)?
            .into_iter()
            .filter(|(_, v)| {
                serde_json::from_value::<ActionToken>(v.clone())
                    .map_or(true, |t| t.expires_at <= now)
            })
            .map(|(id, _)| id)
            .collect()
    };
    if !expired.is_empty() {
        store.write(|w| {
            for id in &expired {
                w.delete_object(realm_id, KIND, id)?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(expired.len())
}

/// The realm's SMTP settings, or why there are none.
pub(crate) fn smtp(realm: &RealmRecord) -> Result<SmtpSettings, String> {
    match SmtpSettings::from_map(&realm.smtp_server) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err("the realm has no SMTP server configured".into()),
        Err(e) => Err(e),
    }
}

/// Create the token and render the mail with its link. `base` is the public base URL.
pub(crate) fn prepare(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
    base: &str,
    token: &ActionToken,
    template: &str,
    subject_key: &str,
) -> Result<email::Mail, String> {
    prepare_with(
        app,
        realm,
        user,
        base,
        token,
        template,
        subject_key,
        Vec::new(),
    )
}

/// [`prepare`] with more variables for the template.
#[allow(clippy::too_many_arguments)]
fn prepare_with(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
    base: &str,
    token: &ActionToken,
    template: &str,
    subject_key: &str,
    extra: Vec<(&'static str, String)>,
) -> Result<email::Mail, String> {
    let key = store_token(app, realm, token).map_err(|e| e.to_string())?;
    let link = format!(
        "{base}/realms/{}/login-actions/action-token?key={key}",
        crate::http::path::encode_segment(&realm.name)
    );
    let minutes = ((token.expires_at - app.clock.now_millis()) / 60_000).max(1);
    let mut vars = BTreeMap::new();
    vars.insert("link", Ctx::from(link));
    vars.insert("link_expiration", Ctx::from(minutes.to_string()));
    vars.insert("actions", Ctx::from_serialize(&token.actions));
    for (k, v) in extra {
        vars.insert(k, Ctx::from(v));
    }
    email::render(app, realm, user, template, subject_key, vars)
}

/// `GET login-actions/reset-credentials?flow=`: the form.
pub(crate) fn reset_page(
    page: &PageCx,
    flow: &LoginFlowRecord,
    error_key: Option<&str>,
) -> Response {
    let mut vars = page.form_vars(
        "login-actions/reset-credentials",
        flow,
        error_key.map(|k| page.msg(k)),
    );
    vars.insert("username", Ctx::from(""));
    vars.insert("login_url", Ctx::from(login_url(page, flow)));
    page.render(StatusCode::OK, "login/login-reset-password.html", vars)
}

fn login_url(page: &PageCx, flow: &LoginFlowRecord) -> String {
    format!(
        "/realms/{}/login-actions/authenticate?flow={}",
        crate::http::path::encode_segment(&page.realm.name),
        flow.id
    )
}

/// An info page with an optional link.
pub(crate) fn info(
    page: &PageCx,
    title_key: &str,
    message_key: &str,
    link: Option<(String, String)>,
) -> Response {
    let mut vars = BTreeMap::new();
    vars.insert("title", Ctx::from(page.msg(title_key)));
    vars.insert("message", Ctx::from(page.msg(message_key)));
    if let Some((url, text)) = link {
        vars.insert("link_url", Ctx::from(url));
        vars.insert("link_text", Ctx::from(text));
    }
    page.render(StatusCode::OK, "login/info.html", vars)
}

/// `POST login-actions/reset-credentials`: mail a reset link if the account exists. The
/// page that follows is the same either way.
pub(crate) fn reset_credentials(
    app: &App,
    page: &PageCx<'_>,
    request: &Request,
    info_: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    fields: &BTreeMap<String, String>,
) -> Response {
    if !realm.reset_password_allowed {
        return page.error_text(
            StatusCode::FORBIDDEN,
            "Resetting the password is not enabled for this realm.",
        );
    }
    let username = fields.get("username").map(|u| u.trim()).unwrap_or("");
    if username.is_empty() {
        return reset_page(page, flow, Some("missingUsernameMessage"));
    }
    let settings = match smtp(realm) {
        Ok(s) => s,
        // The realm as a whole cannot send mail: the same for every account.
        Err(_) => return page.error(StatusCode::SERVICE_UNAVAILABLE, "emailNotConfiguredMessage"),
    };
    let mut params = flow.params.clone();
    // Nothing of a brokered login travels in a mail: a pending link is only ever made by
    // the login of the browser that started it.
    params.retain(|k, _| {
        !matches!(k.as_str(), "stage" | "temporary_password" | "totp_secret")
            && !k.starts_with(super::broker::PARAM_PREFIX)
    });
    let request = ResetRequest {
        app: app.clone(),
        realm: realm.clone(),
        username: username.to_string(),
        params,
        base: crate::idp::oidc::base_url(app, request, info_),
        ip: info_.peer.map(|p| p.ip().to_string()),
        settings,
    };
    // The lookup, the link and the mail happen after the reply, on the blocking pool: the
    // answer takes as long, and says the same, whether or not the account exists.
    tokio::task::spawn_blocking(move || request.mail_link());
    info(page, "emailForgotTitle", "emailSentMessage", None)
}

/// A "Forgot password?" request, handled after the reply.
struct ResetRequest {
    app: App,
    realm: RealmRecord,
    username: String,
    /// The authorization request to continue after the reset.
    params: BTreeMap<String, String>,
    base: String,
    ip: Option<String>,
    settings: SmtpSettings,
}

impl ResetRequest {
    fn mail_link(self) {
        let (app, realm) = (&self.app, &self.realm);
        let user = app.store.read().ok().and_then(|r| {
            r.user_by_username(&realm.id, &self.username)
                .ok()
                .flatten()
                .or_else(|| {
                    // By address only when it names exactly one account.
                    let mut found = r.users_by_email(&realm.id, &self.username).ok()?;
                    (found.len() == 1).then(|| found.remove(0))
                })
        });
        let client_id = self.params.get("client_id").cloned();
        let mut details = BTreeMap::new();
        details.insert("username".to_string(), self.username.clone());
        let event = |kind: &str, user_id: Option<&str>, error, details| {
            crate::idp::events::record(
                app,
                realm,
                crate::idp::events::Event {
                    kind,
                    client_id: client_id.as_deref(),
                    user_id,
                    ip_address: self.ip.as_deref(),
                    error,
                    details,
                    ..Default::default()
                },
            )
        };
        let Some(user) =
            user.filter(|u| u.enabled && u.email.as_deref().is_some_and(|e| !e.is_empty()))
        else {
            event(
                "SEND_RESET_PASSWORD_ERROR",
                None,
                Some("user_not_found"),
                details,
            );
            return;
        };
        let token = ActionToken {
            kind: "reset-credentials".into(),
            user_id: user.id.clone(),
            actions: vec![super::actions::UPDATE_PASSWORD.into()],
            email: user.email.clone().unwrap_or_default(),
            expires_at: app.clock.now_millis()
                + realm.action_token_generated_by_user_lifespan * 1000,
            params: self.params.clone(),
            redirect_uri: None,
            browser_hash: None,
        };
        match prepare(
            app,
            realm,
            &user,
            &self.base,
            &token,
            "password-reset",
            "passwordResetSubject",
        ) {
            Ok(mail) => {
                details.insert("email".to_string(), mail.to.clone());
                email::enqueue(
                    app,
                    realm,
                    self.settings.clone(),
                    mail,
                    "SEND_RESET_PASSWORD",
                    user.id.clone(),
                );
                event("SEND_RESET_PASSWORD", Some(&user.id), None, details);
            }
            Err(e) => {
                tracing::warn!(realm = %realm.name, error = %e, "could not prepare a password-reset mail");
            }
        }
    }
}

/// A link mailed during a login, and what its mail says.
struct LoginMail<'a> {
    kind: &'static str,
    actions: Vec<String>,
    params: BTreeMap<String, String>,
    template: &'a str,
    subject_key: &'a str,
    extra: Vec<(&'static str, String)>,
    /// The event recorded (`SEND_VERIFY_EMAIL`, ...).
    event: &'static str,
}

/// Mail `user` a link bound to this login's browser (opened there, it carries the login
/// on), queue it, and record the event. `Err` is a message key for the page.
fn mail_for_login(
    app: &App,
    request: &Request,
    info_: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    user: &UserRecord,
    mail: LoginMail<'_>,
) -> Result<String, &'static str> {
    let settings = smtp(realm).map_err(|_| "emailNotConfiguredMessage")?;
    let Some(address) = user.email.clone().filter(|e| !e.is_empty()) else {
        return Err("emailSendErrorMessage");
    };
    let token = ActionToken {
        kind: mail.kind.into(),
        user_id: user.id.clone(),
        actions: mail.actions,
        email: address.clone(),
        expires_at: app.clock.now_millis() + realm.action_token_generated_by_user_lifespan * 1000,
        params: mail.params,
        redirect_uri: None,
        browser_hash: Some(flow.browser_hash.clone()),
    };
    let base = crate::idp::oidc::base_url(app, request, info_);
    let rendered = prepare_with(
        app,
        realm,
        user,
        &base,
        &token,
        mail.template,
        mail.subject_key,
        mail.extra,
    )
    .map_err(|_| "emailSendErrorMessage")?;
    email::enqueue(app, realm, settings, rendered, mail.event, user.id.clone());
    crate::idp::events::record(
        app,
        realm,
        crate::idp::events::Event {
            kind: mail.event,
            client_id: flow.params.get("client_id").map(String::as_str),
            user_id: Some(&user.id),
            ip_address: info_.peer.map(|p| p.ip().to_string()).as_deref(),
            details: [("email".to_string(), address.clone())].into(),
            ..Default::default()
        },
    );
    Ok(address)
}

/// For the `VERIFY_EMAIL` required action during a login: mail a link that verifies the
/// address and then continues this login. `Err` is a message key for the page.
pub(crate) fn send_verification(
    app: &App,
    request: &Request,
    info_: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    user: &UserRecord,
) -> Result<(), &'static str> {
    let mut params = flow.params.clone();
    params.retain(|k, _| {
        !matches!(k.as_str(), "stage" | "totp_secret")
            && !k.starts_with(super::broker::PARAM_PREFIX)
    });
    let mail = LoginMail {
        kind: "verify-email",
        actions: vec![VERIFY_EMAIL.into()],
        params,
        template: "email-verification",
        subject_key: "emailVerificationSubject",
        extra: Vec::new(),
        event: "SEND_VERIFY_EMAIL",
    };
    mail_for_login(app, request, info_, realm, flow, user, mail).map(|_| ())
}

/// First broker login: an account with the identity's e-mail or username exists, and its
/// owner proves it by a mailed link instead of its password. The link, opened, links the
/// identity to the account; in the browser of the login it also signs in. `Err` is a
/// message key for the page.
pub(crate) fn send_idp_link(
    app: &App,
    request: &Request,
    info_: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    user: &UserRecord,
    provider_name: &str,
) -> Result<String, &'static str> {
    let mut params = flow.params.clone();
    params.retain(|k, _| !matches!(k.as_str(), "stage" | "totp_secret"));
    let mail = LoginMail {
        kind: IDP_LINK,
        actions: Vec::new(),
        params,
        template: "identity-provider-link",
        subject_key: "identityProviderLinkSubject",
        extra: vec![("provider_name", provider_name.to_string())],
        event: "SEND_IDENTITY_PROVIDER_LINK",
    };
    mail_for_login(app, request, info_, realm, flow, user, mail)
}

/// The kind of a mailed link that links a brokered identity to its account.
const IDP_LINK: &str = "idp-link";

/// `GET login-actions/action-token?key=`: a mailed link was opened.
pub(crate) fn action_token(
    app: &App,
    request: &Request,
    info_: &RequestInfo,
    realm: &RealmRecord,
) -> Response {
    let page = PageCx::new(app, realm, request, None);
    let key = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
    });
    let now = app.clock.now_millis();
    let token = match key.as_deref().map(|k| take_token(app, realm, k)) {
        Some(Ok(Some(t))) if t.expires_at > now => t,
        Some(Err(e)) => return crate::http::ApiError::from(e).into_response(),
        _ => return page.error(StatusCode::BAD_REQUEST, "expiredActionTokenMessage"),
    };
    let user = app
        .store
        .read()
        .ok()
        .and_then(|r| r.user(&realm.id, &token.user_id).ok().flatten())
        .filter(|u| u.enabled);
    // The address must still be the one the link was sent to.
    let Some(mut user) = user.filter(|u| u.email.as_deref() == Some(token.email.as_str())) else {
        return page.error(StatusCode::BAD_REQUEST, "expiredActionTokenMessage");
    };
    let ip = info_.peer.map(|p| p.ip().to_string());
    let mut changed = false;
    if token.actions.iter().any(|a| a == VERIFY_EMAIL) {
        // Opening the link proves the address.
        user.email_verified = true;
        user.required_actions.retain(|a| a != VERIFY_EMAIL);
        changed = true;
        crate::idp::events::record(
            app,
            realm,
            crate::idp::events::Event {
                kind: "VERIFY_EMAIL",
                user_id: Some(&user.id),
                ip_address: ip.as_deref(),
                details: [("email".to_string(), token.email.clone())].into(),
                ..Default::default()
            },
        );
    }
    if token.kind == "execute-actions" {
        for action in token.actions.iter().filter(|a| *a != VERIFY_EMAIL) {
            if !user.required_actions.contains(action) {
                user.required_actions.push(action.clone());
                changed = true;
            }
        }
    }
    if changed {
        if let Err(e) = app.store.write(|w| w.put_user(&realm.id, &user, true)) {
            return crate::http::ApiError::from(e).into_response();
        }
    }
    let same_browser = token.browser_hash.as_deref().is_none_or(|expected| {
        super::cookie(request, AUTH_SESSION_COOKIE).is_some_and(|c| {
            crate::crypto::constant_time_eq(sha256_hex(c).as_bytes(), expected.as_bytes())
        })
    });
    let mut token = token;
    if token.kind == IDP_LINK && !same_browser {
        // Linking gives the provider's account this account: only in the browser whose
        // login asked for it (opened elsewhere, a link somebody else's login sent would
        // hand them the account). The link stays usable there.
        if let Some(k) = &key {
            if let Ok(value) = serde_json::to_value(&token) {
                let _ = app
                    .store
                    .write(|w| w.put_object(&realm.id, KIND, &sha256_hex(k), &value));
            }
        }
        return info(
            &page,
            "identityProviderLinkTitle",
            "identityProviderLinkOtherBrowser",
            None,
        );
    }
    if token.kind == IDP_LINK {
        // The account gained a second factor since the mail: its own login (with it) is the
        // proof now, not the mail.
        let has_otp = app
            .store
            .read()
            .and_then(|r| r.credentials(&realm.id, &user.id))
            .is_ok_and(|c| c.iter().any(|c| c.kind == "otp"));
        if has_otp || !user.email_verified {
            return page.error(StatusCode::BAD_REQUEST, "expiredActionTokenMessage");
        }
        // Opening the link proves the account's address: the identity waiting in the
        // login is linked to it now.
        match app
            .store
            .write(|w| super::broker::link_proven_by_mail(w, realm, &token.params, &user))
        {
            Ok(Some(alias)) => {
                crate::idp::events::record(
                    app,
                    realm,
                    crate::idp::events::Event {
                        kind: "FEDERATED_IDENTITY_LINK",
                        user_id: Some(&user.id),
                        ip_address: ip.as_deref(),
                        details: [("identity_provider".to_string(), alias)].into(),
                        ..Default::default()
                    },
                );
            }
            Ok(None) => return page.error(StatusCode::BAD_REQUEST, "expiredActionTokenMessage"),
            Err(e) => return crate::http::ApiError::from(e).into_response(),
        }
        token.params.remove(super::broker::PENDING_LINK);
    }
    // A login flow in this browser, at the actions. A verification link opened outside the
    // browser of the login that sent it verifies the address and stops there: it must not
    // sign in whoever holds the mail.
    let browser_secret = new_secret();
    let mut params = if same_browser {
        token.params.clone()
    } else {
        BTreeMap::new()
    };
    params.insert(FROM_LINK.into(), token.kind.clone());
    if let Some(r) = &token.redirect_uri {
        params.insert("info_redirect_uri".into(), r.clone());
    }
    if token.kind == "reset-credentials" {
        // The password is what is being reset: the update is due whatever else is.
        params.insert("temporary_password".into(), "1".into());
    }
    let mut flow = LoginFlowRecord {
        id: random_token(16),
        browser_hash: sha256_hex(&browser_secret),
        csrf_token: new_secret(),
        params,
        user_id: Some(user.id.clone()),
        remember_me: false,
        created_at: now,
        expires_at: now + super::FLOW_LIFETIME_MS,
    };
    let page = PageCx::new(
        app,
        realm,
        request,
        flow.params.get("ui_locales").map(String::as_str),
    );
    let has_otp = token.kind == "reset-credentials"
        && app
            .store
            .read()
            .and_then(|r| r.credentials(&realm.id, &user.id))
            .is_ok_and(|c| c.iter().any(|c| c.kind == "otp"));
    let mut response = if has_otp {
        super::second_factor::start_otp_step(app, &page, realm, &mut flow)
    } else {
        super::actions::continue_flow(app, &page, info_, realm, &mut flow, &user)
    };
    add_cookie(
        &mut response,
        set_cookie(
            AUTH_SESSION_COOKIE,
            &browser_secret,
            &realm.name,
            info_,
            true,
            None,
        ),
    );
    response
}

/// The end of a flow that has no client to return to (a mailed link): the account is
/// updated; offer the administrator's redirect URI if there is one.
pub(crate) fn finished_without_client(page: &PageCx, flow: &LoginFlowRecord) -> Response {
    let message = if flow.params.get(FROM_LINK).map(String::as_str) == Some("verify-email") {
        "emailVerifiedMessage"
    } else {
        "accountUpdatedMessage"
    };
    let link = flow
        .params
        .get("info_redirect_uri")
        .map(|u| (u.clone(), page.msg("backToApplication")));
    info(page, "infoTitle", message, link)
}
