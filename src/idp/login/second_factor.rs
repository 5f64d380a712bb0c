//! The second factor of a login in progress: the one-time-code step of users with an
//! authenticator (`login-actions/otp`), and the CONFIGURE_TOTP required action
//! (`login-actions/configure-totp`) that enrols one.

use http::StatusCode;
use minijinja::Value as Ctx;

use crate::http::{IntoResponse, Response};
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, UserRecord};

use super::actions::{continue_flow, flow_event, flow_user, Step, CONFIGURE_TOTP, STAGE};
use super::{new_secret, PageCx};

/// The password (or a mailed link) is verified and the user has an authenticator: the
/// one-time code comes next.
pub(super) fn start_otp_step(
    app: &App,
    page: &PageCx<'_>,
    realm: &RealmRecord,
    flow: &mut LoginFlowRecord,
) -> Response {
    flow.params.insert(STAGE.into(), "otp".into());
    flow.csrf_token = new_secret();
    if let Err(e) = app
        .store
        .write_volatile(|w| w.put_login_flow(&realm.id, flow))
    {
        return crate::http::ApiError::from(e).into_response();
    }
    otp_page(page, flow, None)
}

pub(super) fn otp_page(page: &PageCx, flow: &LoginFlowRecord, error: Option<&str>) -> Response {
    let vars = page.form_vars("login-actions/otp", flow, error.map(|k| page.msg(k)));
    page.render(StatusCode::OK, "login/login-otp.html", vars)
}

pub(super) fn configure_totp_page(
    page: &PageCx,
    flow: &LoginFlowRecord,
    user: &UserRecord,
    error: Option<&str>,
) -> Response {
    let policy = crate::idp::otp::OtpPolicy::of(page.realm);
    let secret = flow.params.get("totp_secret").cloned().unwrap_or_default();
    let issuer = page
        .realm
        .display_name
        .clone()
        .unwrap_or_else(|| page.realm.name.clone());
    let uri = crate::idp::otp::otpauth_uri(&issuer, &user.username, &secret, &policy);
    let mut vars = page.form_vars(
        "login-actions/configure-totp",
        flow,
        error.map(|k| page.msg(k)),
    );
    vars.insert(
        "qr_data_uri",
        Ctx::from(crate::idp::otp::qr_data_uri(&uri).unwrap_or_default()),
    );
    vars.insert("totp_key", Ctx::from(crate::idp::otp::base32(&secret)));
    vars.insert("otpauth_uri", Ctx::from(uri));
    vars.insert("digits", Ctx::from(policy.digits));
    vars.insert("period", Ctx::from(policy.period));
    vars.insert("algorithm", Ctx::from(policy.algorithm));
    page.render(StatusCode::OK, "login/login-config-totp.html", vars)
}

/// `login-actions/otp`: the second factor.
pub(super) async fn otp_step(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
    let Step {
        app,
        page,
        info,
        realm,
        fields,
    } = step;
    let Some(user) = flow_user(app, realm, flow, "otp") else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let code = fields.get("otp").map(String::as_str).unwrap_or("");
    let ip = info.peer.map(|p| p.ip().to_string());
    let accepted = app
        .store
        .read()
        .and_then(|r| r.credentials(&realm.id, &user.id))
        .and_then(|credentials| {
            crate::idp::authn::verify_second_factor(
                app,
                realm,
                &user.id,
                &credentials,
                code,
                ip.as_deref(),
            )
        });
    let accepted = match accepted {
        Ok(a) => a,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    if !accepted {
        crate::idp::events::record(
            app,
            realm,
            crate::idp::events::Event {
                kind: "LOGIN_ERROR",
                client_id: flow.params.get("client_id").map(String::as_str),
                user_id: Some(&user.id),
                ip_address: ip.as_deref(),
                error: Some("invalid_user_credentials"),
                ..Default::default()
            },
        );
        return otp_page(page, flow, Some("invalidTotpMessage"));
    }
    continue_flow(app, page, info, realm, flow, &user)
}

/// `login-actions/configure-totp`: the CONFIGURE_TOTP required action.
pub(super) async fn configure_totp(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
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
    let Some(secret) = flow.params.get("totp_secret").cloned() else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let now = app.clock.now_millis();
    let policy = crate::idp::otp::OtpPolicy::of(realm);
    let code = fields.get("totp").map(String::as_str).unwrap_or("");
    let Some(step) = crate::idp::otp::verify(&policy, &secret, code, (now / 1000) as u64) else {
        return configure_totp_page(page, flow, &user, Some("invalidTotpMessage"));
    };
    let credential =
        crate::idp::otp::credential(&secret, fields.get("userLabel").cloned(), &policy, now);
    let updated = app.store.write(|w| {
        // The code that proved the set-up cannot log in again.
        crate::idp::otp::first_use(w, &realm.id, &credential.id, step, now / 1000)?;
        let mut u = w
            .user(&realm.id, &user.id)?
            .ok_or(crate::store::StoreError::Missing("user"))?;
        w.put_credential(&realm.id, &u.id, &credential)?;
        u.required_actions.retain(|a| a != CONFIGURE_TOTP);
        w.put_user(&realm.id, &u, realm.duplicate_emails_allowed)?;
        Ok::<_, crate::store::StoreError>(u)
    });
    match updated {
        Ok(u) => {
            flow_event(app, realm, flow, "UPDATE_TOTP", &u.id);
            flow.params.remove("totp_secret");
            continue_flow(app, page, info, realm, flow, &u)
        }
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}
