//! `/realms/{realm}/device`: where a user enters the code shown on a device (RFC 8628),
//! then logs in (or uses the SSO session) to approve it. The form is bound to the browser
//! and carries a CSRF token: otherwise a page could make a logged-in browser approve an
//! attacker's device.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use minijinja::Value as Ctx;

use crate::crypto::random_token;
use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::device::normalise_user_code;
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, SessionRecord};

use super::{
    add_cookie, new_secret, set_cookie, sha256_hex, sso_session, PageCx, AUTH_SESSION_COOKIE,
    FLOW_LIFETIME_MS,
};

fn device_form(
    page: &PageCx,
    flow: &LoginFlowRecord,
    user_code: &str,
    error_key: Option<&str>,
) -> Response {
    let mut vars = page.form_vars("device", flow, error_key.map(|k| page.msg(k)));
    vars.insert("user_code", Ctx::from(user_code.to_string()));
    page.render(StatusCode::OK, "login/device.html", vars)
}

/// Mark the device authorization approved by `session` and say so.
pub(super) fn approve(
    app: &App,
    page: &PageCx,
    realm: &RealmRecord,
    code_hash: &str,
    session: &SessionRecord,
) -> Response {
    let result = app.store.write(|w| {
        let Some(mut record) = w.device_code(&realm.id, code_hash)? else {
            return Ok(false);
        };
        if record.status != "pending" || record.expires_at <= app.clock.now_millis() {
            return Ok(false);
        }
        record.status = "approved".into();
        record.session_id = Some(session.id.clone());
        record.user_id = Some(session.user_id.clone());
        w.put_device_code(&realm.id, code_hash, &record)?;
        Ok::<_, crate::store::StoreError>(true)
    });
    match result {
        Ok(true) => {
            let mut vars = BTreeMap::new();
            vars.insert("title", Ctx::from(page.msg("deviceLoginSuccessTitle")));
            vars.insert("message", Ctx::from(page.msg("deviceLoginSuccessMessage")));
            page.render(StatusCode::OK, "login/info.html", vars)
        }
        Ok(false) => page.error(StatusCode::BAD_REQUEST, "invalidUserCodeMessage"),
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}

pub async fn device_page(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Response {
    let Some(realm) = super::enabled_realm(app, realm_name) else {
        return crate::http::ApiError::NotFound.into_response();
    };
    let page = PageCx::new(app, &realm, request, None);
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let now = app.clock.now_millis();
    if request.method() == Method::GET {
        let browser_secret = new_secret();
        let flow = LoginFlowRecord {
            id: random_token(16),
            browser_hash: sha256_hex(&browser_secret),
            csrf_token: new_secret(),
            created_at: now,
            expires_at: now + FLOW_LIFETIME_MS,
            ..Default::default()
        };
        if let Err(e) = app.store.write(|w| w.put_login_flow(&realm.id, &flow)) {
            return crate::http::ApiError::from(e).into_response();
        }
        let mut response = device_form(
            &page,
            &flow,
            query.get("user_code").map(String::as_str).unwrap_or(""),
            None,
        );
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
        return response;
    }
    let flow = query
        .get("flow")
        .and_then(|id| {
            app.store
                .read()
                .ok()?
                .login_flow(&realm.id, id)
                .ok()
                .flatten()
        })
        .filter(|f| f.expires_at > now);
    let Some(mut flow) = flow else {
        return page.error(StatusCode::BAD_REQUEST, "loginTimeout");
    };
    let fields: BTreeMap<String, String> = form_urlencoded::parse(request.body())
        .into_owned()
        .collect();
    if !super::browser_bound(request, &flow) || !super::csrf_valid(&fields, &flow) {
        return page.error(StatusCode::BAD_REQUEST, "invalidCsrfMessage");
    }
    let typed = fields.get("user_code").map(String::as_str).unwrap_or("");
    let code = normalise_user_code(typed);
    let device = app.store.read().ok().and_then(|r| {
        let hash = r.device_code_for_user_code(&realm.id, &code).ok()??;
        let record = r.device_code(&realm.id, &hash).ok()??;
        Some((hash, record))
    });
    let Some((hash, record)) = device.filter(|(_, d)| d.status == "pending" && d.expires_at > now)
    else {
        return device_form(&page, &flow, typed, Some("invalidUserCodeMessage"));
    };
    if let Some(session) = sso_session(app, request, &realm, now) {
        let _ = app
            .store
            .write(|w| w.delete_login_flow(&realm.id, &flow.id));
        return approve(app, &page, &realm, &hash, &session);
    }
    // Log in first: the flow continues as a login that approves the device at the end.
    flow.params
        .insert("client_id".into(), record.client_id.clone());
    flow.params.insert("device".into(), hash);
    flow.params.insert("scope".into(), record.scope.clone());
    flow.csrf_token = new_secret();
    if let Err(e) = app.store.write(|w| w.put_login_flow(&realm.id, &flow)) {
        return crate::http::ApiError::from(e).into_response();
    }
    super::actions::login_page(&page, &flow, None, None)
}
