//! Form posts of a login in progress: `login-actions/authenticate` (username and
//! password) and the required action `login-actions/required-action` (UPDATE_PASSWORD);
//! the second factor and CONFIGURE_TOTP are in `second_factor.rs`. Every post must come
//! from the browser that started the flow (the `AUTH_SESSION_ID` cookie) and carry the
//! flow's CSRF token. A successful login starts a brand-new SSO session (no fixation).

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use minijinja::Value as Ctx;

use crate::crypto::password::hash_password;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::authn::{authenticate_password, AuthnFailure};
use crate::idp::flows::OtpStep;
use crate::idp::oidc::issuer;
use crate::idp::sessions::new_session;
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, UserRecord};

use super::authorize::{issue_code, login_vars};
use super::second_factor;
use super::{
    add_cookie, new_secret, session_cookies, set_cookie, sha256_hex, PageCx, AUTH_SESSION_COOKIE,
};

pub(super) const UPDATE_PASSWORD: &str = "UPDATE_PASSWORD";
pub(super) const UPDATE_PROFILE: &str = "UPDATE_PROFILE";
pub(super) const CONFIGURE_TOTP: &str = "CONFIGURE_TOTP";
use super::email_actions::VERIFY_EMAIL;
/// A form post of a login in progress, as every step handler gets it.
#[derive(Clone, Copy)]
pub(super) struct Step<'a, 'p> {
    pub app: &'a App,
    pub page: &'a PageCx<'p>,
    pub info: &'a RequestInfo,
    pub realm: &'a RealmRecord,
    /// The posted form (its CSRF token already checked).
    pub fields: &'a BTreeMap<String, String>,
}

/// Where a login in progress stands: `otp` (password verified, second factor due) or
/// `actions` (every factor verified; required actions may be due).
pub(super) const STAGE: &str = "stage";

/// The login form for a flow.
pub(super) fn login_page(
    page: &PageCx,
    flow: &LoginFlowRecord,
    username: Option<&str>,
    error_key: Option<&str>,
) -> Response {
    let error = error_key.map(|k| page.msg(k));
    page.render(
        StatusCode::OK,
        "login/login.html",
        login_vars(page, flow, username, error.as_deref()),
    )
}

fn update_password_page(
    page: &PageCx,
    flow: &LoginFlowRecord,
    username: &str,
    error_key: Option<&str>,
) -> Response {
    let mut vars = page.form_vars(
        "login-actions/required-action",
        flow,
        error_key.map(|k| page.msg(k)),
    );
    vars.insert("username", Ctx::from(username.to_string()));
    page.render(StatusCode::OK, "login/login-update-password.html", vars)
}

/// The submitted form fields.
fn form(request: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(request.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `/realms/{realm}/login-actions/{action}?flow=...`
pub async fn login_action(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
    action: &str,
) -> Response {
    let Some(realm) = super::enabled_realm(app, realm_name) else {
        return crate::http::ApiError::NotFound.into_response();
    };
    if action == "action-token" {
        return super::email_actions::action_token(app, request, info, &realm);
    }
    let page = PageCx::new(app, &realm, request, None);
    let flow_id = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "flow")
            .map(|(_, v)| v.into_owned())
    });
    let now = app.clock.now_millis();
    let flow = flow_id
        .and_then(|id| {
            app.store
                .read()
                .ok()?
                .login_flow(&realm.id, &id)
                .ok()
                .flatten()
        })
        .filter(|f| f.expires_at > now);
    let Some(mut flow) = flow else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let page = PageCx::new(
        app,
        &realm,
        request,
        flow.params.get("ui_locales").map(String::as_str),
    );
    // The flow belongs to the browser holding its cookie.
    if !super::browser_bound(request, &flow) {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    }
    if request.method() == Method::GET {
        // A reload of the form page: show the current step again.
        let stage = flow.params.get(STAGE).map(String::as_str).unwrap_or("");
        return match (flow_user(app, &realm, &flow, stage), stage, action) {
            (Some(_), "otp", "otp") => second_factor::otp_page(&page, &flow, None),
            (Some(user), "actions", "required-action") => {
                update_password_page(&page, &flow, &user.username, None)
            }
            (Some(user), "actions", "configure-totp")
                if flow.params.contains_key("totp_secret") =>
            {
                second_factor::configure_totp_page(&page, &flow, &user, None)
            }
            (_, _, "reset-credentials") if realm.reset_password_allowed => {
                super::email_actions::reset_page(&page, &flow, None)
            }
            (None, _, "registration") if realm.registration_allowed => {
                super::registration::page(&page, &flow, &UserRecord::default(), &[], None)
            }
            _ => login_page(&page, &flow, None, None),
        };
    }
    let fields = form(request);
    if !super::csrf_valid(&fields, &flow) {
        return page.error(StatusCode::BAD_REQUEST, "invalidCsrfMessage");
    }
    let step = Step {
        app,
        page: &page,
        info,
        realm: &realm,
        fields: &fields,
    };
    match action {
        "authenticate" => authenticate(step, &mut flow).await,
        "required-action" => required_action(step, &mut flow).await,
        "otp" => second_factor::otp_step(step, &mut flow).await,
        "configure-totp" => second_factor::configure_totp(step, &mut flow).await,
        "update-profile" => update_profile(step, &mut flow).await,
        "registration" => super::registration::register(step, &mut flow).await,
        "link-by-email" => super::broker::link_by_email(app, &page, request, info, &realm, &flow),
        "reset-credentials" => super::email_actions::reset_credentials(
            app, &page, request, info, &realm, &flow, &fields,
        ),
        _ => crate::http::ApiError::NotFound.into_response(),
    }
}

async fn authenticate(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
    let Step {
        app,
        page,
        info,
        realm,
        fields,
    } = step;
    let username = fields
        .get("username")
        .map(String::as_str)
        .unwrap_or("")
        .trim();
    let password = fields.get("password").map(String::as_str).unwrap_or("");
    flow.remember_me = realm.remember_me && fields.get("rememberMe").is_some_and(|v| v == "on");
    let ip = info.peer.map(|p| p.ip().to_string());
    let result = match authenticate_password(app, realm, username, password, ip.as_deref()).await {
        Ok(r) => r,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let authenticated = match result {
        Ok(a) => a,
        Err(AuthnFailure::Busy) => return page.busy(),
        // Same page, same message, whether or not the user exists.
        Err(failure) => {
            let (error, message) = match failure {
                AuthnFailure::Invalid => ("invalid_user_credentials", "invalidUserMessage"),
                AuthnFailure::Disabled => ("user_disabled", "accountDisabledMessage"),
                AuthnFailure::Locked | AuthnFailure::Busy => {
                    ("user_temporarily_disabled", "invalidUserMessage")
                }
            };
            let mut details = BTreeMap::new();
            details.insert("username".to_string(), username.to_string());
            details.insert("auth_method".to_string(), "openid-connect".to_string());
            crate::idp::events::record(
                app,
                realm,
                crate::idp::events::Event {
                    kind: "LOGIN_ERROR",
                    client_id: flow.params.get("client_id").map(String::as_str),
                    ip_address: ip.as_deref(),
                    error: Some(error),
                    details,
                    ..Default::default()
                },
            );
            return login_page(page, flow, Some(username), Some(message));
        }
    };
    let user = authenticated.user;
    // Remember who authenticated; a new CSRF token for the next form.
    flow.user_id = Some(user.id.clone());
    // A brokered identity waiting to be linked to this account: this password step is the
    // proof (the second factor, if any, still follows before `complete`).
    if flow.params.contains_key(super::broker::PENDING_LINK) {
        flow.params
            .insert(super::broker::LINK_PROVEN.into(), user.id.clone());
    }
    if authenticated.temporary_password {
        flow.params.insert("temporary_password".into(), "1".into());
    }
    // The browser flow (the client's override, else the realm's) decides whether a
    // one-time code comes next.
    let has_otp = !authenticated.otp_credentials.is_empty();
    let plan = app.store.read().and_then(|read| {
        let client = match flow.params.get("client_id") {
            Some(id) => read.client_by_client_id(&realm.id, id)?,
            None => None,
        };
        let plan = crate::idp::flows::browser_plan(&read, realm, client.as_ref())?;
        let step = plan.otp_step(&read, &realm.id, &user.id, has_otp)?;
        Ok((plan, step))
    });
    let (plan, otp) = match plan {
        Ok(p) => p,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    if let Some(step) = plan.unsupported {
        tracing::warn!(realm = %realm.name, step, "the browser flow requires a step Portcullis cannot perform");
        return page.error_text(
            StatusCode::SERVICE_UNAVAILABLE,
            "This login is not available: the realm's browser flow requires a step this server does not support.",
        );
    }
    match otp {
        OtpStep::Ask => return second_factor::start_otp_step(app, page, realm, flow),
        OtpStep::Configure => {
            flow.params.insert(CONFIGURE_OTP_PARAM.into(), "1".into());
        }
        OtpStep::Skip => {}
    }
    continue_flow(app, page, info, realm, flow, &user)
}

/// Set on a login whose flow requires a one-time code of a user without an authenticator:
/// configuring one is a required action of this login.
const CONFIGURE_OTP_PARAM: &str = "configure_otp";

/// Where a login goes once every factor is verified: the required actions, in order, then
/// the client.
pub(super) fn continue_flow(
    app: &App,
    page: &PageCx<'_>,
    info: &RequestInfo,
    realm: &RealmRecord,
    flow: &mut LoginFlowRecord,
    user: &UserRecord,
) -> Response {
    flow.params.insert(STAGE.into(), "actions".into());
    // The user's actions the realm enforces; then what the login itself requires whatever
    // the realm's required-action settings (a temporary password, the realm's OTP and
    // e-mail verification policies), all in the realm's order.
    let mut pending = crate::idp::required_actions::pending(realm, &user.required_actions);
    if flow.params.contains_key("temporary_password")
        && !pending.iter().any(|a| a == UPDATE_PASSWORD)
    {
        pending.push(UPDATE_PASSWORD.into());
    }
    if (crate::idp::otp::required_by(realm) || flow.params.contains_key(CONFIGURE_OTP_PARAM))
        && !pending.iter().any(|a| a == CONFIGURE_TOTP)
        && !app
            .store
            .read()
            .and_then(|r| r.credentials(&realm.id, &user.id))
            .is_ok_and(|c| c.iter().any(|c| c.kind == "otp"))
    {
        pending.push(CONFIGURE_TOTP.into());
    }
    // The realm's user profile wants more of this user than it has (VERIFY_PROFILE).
    if !pending
        .iter()
        .any(|a| a == UPDATE_PROFILE || a == crate::idp::required_actions::VERIFY_PROFILE)
        && app
            .store
            .read()
            .is_ok_and(|r| crate::idp::required_actions::profile_unverified(&r, realm, user))
    {
        pending.push(crate::idp::required_actions::VERIFY_PROFILE.into());
    }
    // The realm asks for verified addresses; a user without one has nothing to verify.
    if realm.verify_email
        && !user.email_verified
        && user.email.as_deref().is_some_and(|e| !e.is_empty())
        && !pending.iter().any(|a| a == VERIFY_EMAIL)
    {
        pending.push(VERIFY_EMAIL.into());
    }
    crate::idp::required_actions::sort(realm, &mut pending);
    let Some(next) = pending.first() else {
        return complete(app, page, info, realm, flow, user);
    };
    flow.csrf_token = new_secret();
    let response_page = if next == UPDATE_PASSWORD {
        None
    } else if next == CONFIGURE_TOTP {
        let secret = crate::idp::otp::new_secret();
        flow.params.insert("totp_secret".into(), secret);
        Some(CONFIGURE_TOTP)
    } else if next == VERIFY_EMAIL {
        // A link by mail verifies the address and carries on with this login.
        return match super::email_actions::send_verification(
            app,
            page.request,
            info,
            realm,
            flow,
            user,
        ) {
            Ok(()) => {
                super::email_actions::info(page, "emailVerifyTitle", "emailVerifyInstruction", None)
            }
            Err(key) => page.error(StatusCode::SERVICE_UNAVAILABLE, key),
        };
    } else if next == UPDATE_PROFILE || next == crate::idp::required_actions::VERIFY_PROFILE {
        // Both are the profile page; VERIFY_PROFILE is done when the profile passes.
        Some(UPDATE_PROFILE)
    } else {
        // An action the login does not implement: refusing is safer than skipping it.
        return page.error_text(
            StatusCode::FORBIDDEN,
            "Account is not fully set up. Please contact your administrator.",
        );
    };
    if let Err(e) = app
        .store
        .write_volatile(|w| w.put_login_flow(&realm.id, flow))
    {
        return crate::http::ApiError::from(e).into_response();
    }
    match response_page {
        None => update_password_page(page, flow, &user.username, None),
        Some(UPDATE_PROFILE) => update_profile_page(page, flow, user, &[]),
        Some(_) => second_factor::configure_totp_page(page, flow, user, None),
    }
}

/// The `UPDATE_PROFILE` page: the user-profile attributes the user may see, editable where
/// the user may edit them, with the errors of a refused submission.
fn update_profile_page(
    page: &PageCx<'_>,
    flow: &LoginFlowRecord,
    user: &UserRecord,
    violations: &[crate::idp::user_profile::Violation],
) -> Response {
    use crate::idp::user_profile::{attributes, Context};
    let config = match super::profile_form::config(page) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    // What the user's directory owns and does not let change here.
    let owned = crate::idp::federation::writes::read_only_fields_of(page.app, page.realm, user);
    let fields: Vec<Ctx> = attributes(&config)
        .iter()
        .filter(|a| a.can_view(Context::User))
        .map(|a| {
            let readonly = !a.can_edit(Context::User)
                || !a.user_editable_field()
                || owned.iter().any(|f| f == a.name);
            super::profile_form::field(page, a, user, violations, readonly)
        })
        .collect();
    let error = (!violations.is_empty()).then(|| page.msg("updateProfileErrorMessage"));
    let mut vars = page.form_vars("login-actions/update-profile", flow, error);
    vars.insert("fields", Ctx::from(fields));
    let status = if violations.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page.render(status, "login/login-update-profile.html", vars)
}

/// `login-actions/update-profile`: store the profile if it passes the user profile's
/// checks, clear `UPDATE_PROFILE` and carry on.
async fn update_profile(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
    use crate::idp::user_profile::{validate, Context, Violation};
    let Step {
        app,
        page,
        info,
        realm,
        fields,
    } = step;
    let Some(user) = flow_user(app, realm, flow, "actions") else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let config = match super::profile_form::config(page) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let mut updated = user.clone();
    super::profile_form::fill(&config, fields, &mut updated);
    // What the user's directory owns stays as it is (the form shows it read-only).
    for f in crate::idp::federation::writes::read_only_fields_of(app, realm, &user) {
        crate::idp::user_profile::set(
            &mut updated,
            &f,
            crate::idp::user_profile::values(&user, &f),
        );
    }
    if updated.email != user.email {
        updated.email_verified = false;
    }
    let violations = validate(&config, &updated, Context::User, None);
    if !violations.is_empty() {
        return update_profile_page(page, flow, &updated, &violations);
    }
    // A taken address is refused before a WRITABLE directory gets the change.
    if updated.email != user.email && !realm.duplicate_emails_allowed {
        if let Some(email) = &updated.email {
            let taken = app
                .store
                .read()
                .and_then(|r| r.users_by_email(&realm.id, email))
                .map(|owners| owners.iter().any(|u| u.id != user.id))
                .unwrap_or(false);
            if taken {
                let taken = [Violation {
                    attribute: "email".into(),
                    message: "emailExistsMessage".into(),
                }];
                return update_profile_page(page, flow, &updated, &taken);
            }
        }
    }
    if let Err(e) =
        crate::idp::federation::writes::update_profile(app, realm, &user, &updated).await
    {
        tracing::warn!(realm = %realm.name, error = ?e, "the user's directory refused a profile change");
        let refused = [Violation {
            attribute: "username".into(),
            message: "ldapErrorMessage".into(),
        }];
        return update_profile_page(page, flow, &updated, &refused);
    }
    updated
        .required_actions
        .retain(|a| a != UPDATE_PROFILE && a != crate::idp::required_actions::VERIFY_PROFILE);
    let stored = app
        .store
        .write(|w| w.put_user(&realm.id, &updated, realm.duplicate_emails_allowed));
    if stored.is_err() && user.federation_link.is_some() {
        // The directory got the change, the store did not: put the entry back.
        let _ = crate::idp::federation::writes::update_profile(app, realm, &updated, &user).await;
    }
    match stored {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) => {
            let taken = [Violation {
                attribute: "email".into(),
                message: "emailExistsMessage".into(),
            }];
            return update_profile_page(page, flow, &updated, &taken);
        }
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    flow_event(app, realm, flow, "UPDATE_PROFILE", &updated.id);
    continue_flow(app, page, info, realm, flow, &updated)
}

/// The user of a flow past its first factor, at `stage`.
pub(super) fn flow_user(
    app: &App,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    stage: &str,
) -> Option<UserRecord> {
    if flow.params.get(STAGE).map(String::as_str) != Some(stage) {
        return None;
    }
    let id = flow.user_id.as_ref()?;
    app.store
        .read()
        .ok()?
        .user(&realm.id, id)
        .ok()
        .flatten()
        .filter(|u| u.enabled)
}

async fn required_action(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
    let Step {
        app,
        page,
        info,
        realm,
        fields,
    } = step;
    let Some(user) = flow_user(app, realm, flow, "actions") else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let new = fields.get("password-new").map(String::as_str).unwrap_or("");
    let confirm = fields
        .get("password-confirm")
        .map(String::as_str)
        .unwrap_or("");
    if new.is_empty() {
        return update_password_page(page, flow, &user.username, Some("missingPasswordMessage"));
    }
    if new != confirm {
        return update_password_page(page, flow, &user.username, Some("notMatchPasswordMessage"));
    }
    let user = match set_new_password(app, realm, &user, new).await {
        Ok(u) => u,
        Err(NewPasswordError::Policy(message)) => {
            // The message says which rule failed (already a sentence, not a key).
            return update_password_page(page, flow, &user.username, Some(&message));
        }
        Err(NewPasswordError::Refused(key)) => {
            return update_password_page(page, flow, &user.username, Some(key));
        }
        Err(NewPasswordError::Busy) => return page.busy(),
        Err(NewPasswordError::Failed) => {
            return page.error(StatusCode::INTERNAL_SERVER_ERROR, "unexpectedErrorMessage")
        }
    };
    flow_event(app, realm, flow, "UPDATE_PASSWORD", &user.id);
    flow.params.remove("temporary_password");
    continue_flow(app, page, info, realm, flow, &user)
}

/// Record `kind` for `user_id` and the flow's client.
pub(super) fn flow_event(
    app: &App,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    kind: &str,
    user_id: &str,
) {
    crate::idp::events::record(
        app,
        realm,
        crate::idp::events::Event {
            kind,
            client_id: flow.params.get("client_id").map(String::as_str),
            user_id: Some(user_id),
            ..Default::default()
        },
    );
}

/// Why a new password was not stored.
pub(super) enum NewPasswordError {
    /// The realm's policy refused it; the message names the rule.
    Policy(String),
    /// Too many hashes at once (503).
    Busy,
    /// The user's directory does not take it: a message key.
    Refused(&'static str),
    Failed,
}

/// Check `password` against the realm's policy (history included) and store it as the
/// user's password, clearing `UPDATE_PASSWORD`. Hashing runs on the blocking pool.
pub(super) async fn set_new_password(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
    password: &str,
) -> Result<UserRecord, NewPasswordError> {
    // A directory's user: its provider decides where the password goes.
    use crate::idp::federation::writes::{set_password, PasswordTarget, Refusal};
    match set_password(app, realm, user, password).await {
        Ok(PasswordTarget::Local) => {}
        Ok(PasswordTarget::Directory) => {
            return app
                .store
                .write(|w| {
                    let mut user = w
                        .user(&realm.id, &user.id)?
                        .ok_or(crate::store::StoreError::Missing("user"))?;
                    user.required_actions.retain(|a| a != UPDATE_PASSWORD);
                    w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
                    Ok::<_, crate::store::StoreError>(user)
                })
                .map_err(|_| NewPasswordError::Failed)
        }
        Err(Refusal::ReadOnly(_)) => {
            return Err(NewPasswordError::Refused("readOnlyPasswordMessage"))
        }
        Err(Refusal::Policy(m)) => return Err(NewPasswordError::Policy(m)),
        Err(Refusal::Exists) => return Err(NewPasswordError::Failed),
        Err(Refusal::Directory(e)) => {
            tracing::warn!(realm = %realm.name, error = %e, "LDAP refused a password change");
            return Err(NewPasswordError::Refused("ldapErrorMessage"));
        }
        Err(Refusal::Store(_)) => return Err(NewPasswordError::Failed),
    }
    let policy = crate::idp::password_policy::Policy::parse(realm.password_policy.as_deref())
        .map_err(|_| NewPasswordError::Failed)?;
    let previous = match app.store.read() {
        Ok(r) => crate::idp::password_policy::previous_hashes(&r, &realm.id, &user.id)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let history = policy.history();
    let subject = user.clone();
    let password = password.to_string();
    let outcome = app
        .hashes
        .run(move || {
            policy
                .check(&password, &subject, &previous)
                .map(|_| hash_password(&password, &policy.argon2_params()))
        })
        .await;
    let hashed = match outcome {
        Ok(Ok(Ok(h))) => h,
        Ok(Err(violation)) => return Err(NewPasswordError::Policy(violation.message)),
        Err(crate::idp::hashing::Busy) => return Err(NewPasswordError::Busy),
        Ok(Ok(Err(_))) => return Err(NewPasswordError::Failed),
    };
    let now = app.clock.now_millis();
    let user_id = user.id.clone();
    app.store
        .write(|w| {
            let mut user = w
                .user(&realm.id, &user_id)?
                .ok_or(crate::store::StoreError::Missing("user"))?;
            crate::idp::password_policy::replace_password(
                w,
                &realm.id,
                &user_id,
                &crate::idp::password_policy::password_credential(&hashed, now),
                history,
            )?;
            user.required_actions.retain(|a| a != UPDATE_PASSWORD);
            w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
            Ok::<_, crate::store::StoreError>(user)
        })
        .map_err(|_| NewPasswordError::Failed)
}

/// The user is in: a new SSO session, its cookies, and a code for the client.
fn complete(
    app: &App,
    page: &PageCx<'_>,
    info: &RequestInfo,
    realm: &RealmRecord,
    flow: &LoginFlowRecord,
    user: &UserRecord,
) -> Response {
    if !flow.params.contains_key("client_id")
        && flow.params.contains_key(super::email_actions::FROM_LINK)
    {
        // A mailed link with no application behind it: done, without a login.
        let _ = app
            .store
            .write(|w| w.delete_login_flow(&realm.id, &flow.id));
        return super::email_actions::finished_without_client(page, flow);
    }
    let Some(client) = flow
        .params
        .get("client_id")
        .and_then(|id| {
            app.store
                .read()
                .ok()?
                .client_by_client_id(&realm.id, id)
                .ok()
                .flatten()
        })
        .filter(|c| c.enabled)
    else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let now = app.clock.now_millis();
    let secret = new_secret();
    let mut session = new_session(
        &user.id,
        now,
        info.peer.map(|p| p.ip().to_string()),
        flow.remember_me,
        false,
    );
    session.cookie_hash = Some(sha256_hex(&secret));
    session.identity_provider = flow.params.get(super::broker::SESSION_ALIAS).cloned();
    session.broker_id_token = flow.params.get(super::broker::SESSION_ID_TOKEN).cloned();
    let stored = app.store.write(|w| {
        // An identity waiting for proof that this account is its user's: linked now.
        let linked = super::broker::link_pending(w, realm, flow, user)?;
        w.put_session(&realm.id, &session)?;
        w.delete_login_flow(&realm.id, &flow.id)?;
        Ok::<_, crate::store::StoreError>(linked)
    });
    let linked = match stored {
        Ok(l) => l,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    if let Some(alias) = linked {
        let mut details = BTreeMap::new();
        details.insert("identity_provider".to_string(), alias);
        crate::idp::events::record(
            app,
            realm,
            crate::idp::events::Event {
                kind: "FEDERATED_IDENTITY_LINK",
                client_id: flow.params.get("client_id").map(String::as_str),
                user_id: Some(&user.id),
                ip_address: info.peer.map(|p| p.ip().to_string()).as_deref(),
                details,
                ..Default::default()
            },
        );
    }
    let ip = info.peer.map(|p| p.ip().to_string());
    let mut details = BTreeMap::new();
    details.insert("username".to_string(), user.username.clone());
    details.insert("auth_method".to_string(), "openid-connect".to_string());
    crate::idp::events::record(
        app,
        realm,
        crate::idp::events::Event {
            kind: "LOGIN",
            client_id: Some(&client.client_id),
            user_id: Some(&user.id),
            session_id: Some(&session.id),
            ip_address: ip.as_deref(),
            error: None,
            details,
        },
    );
    let mut response = match flow.params.get("device") {
        Some(device) => super::device::approve(app, page, realm, device, &session),
        None => {
            let iss = issuer(app, page.request, info, &realm.name);
            issue_code(app, realm, &client, &session, &flow.params, &iss)
        }
    };
    session_cookies(&mut response, realm, &session, &secret, info);
    add_cookie(
        &mut response,
        set_cookie(AUTH_SESSION_COOKIE, "", &realm.name, info, true, Some(0)),
    );
    response
}
