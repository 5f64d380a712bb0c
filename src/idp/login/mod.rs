//! Browser flows: the authorization endpoint, the login form and its required actions, SSO
//! sessions in cookies, RP-initiated logout, and keycloak-js's helper pages. Pages are
//! rendered from the realm's theme and work without JavaScript.
//!
//! Cookies (all `HttpOnly; SameSite=Lax`, `Secure` over TLS, path `/realms/{realm}/`):
//! - `AUTH_SESSION_ID`: binds a login in progress to one browser (its hash is stored);
//! - `KEYCLOAK_IDENTITY`: the SSO session, `{sid}.{secret}` (only the secret's hash is stored,
//!   so knowing the session id alone does not let anyone forge the cookie);
//! - `KEYCLOAK_SESSION` (readable by scripts, as keycloak-js expects): `{realm}/{user}/{sid}`.

pub mod account;
mod actions;
mod authorize;
mod broker;
mod device;
pub(crate) mod email_actions;
mod iframe;
mod logout;
mod profile_form;
mod registration;
mod second_factor;
pub mod theme;

use std::collections::BTreeMap;

use http::{header, HeaderValue, StatusCode};
use minijinja::Value as Ctx;

use crate::crypto::sha256_hex;
use crate::crypto::{constant_time_eq, random_token};
use crate::http::cookie as cookie_in;
use crate::http::IntoResponse;
use crate::http::{html_response, redirect};
use crate::http::{Request, RequestInfo, Response};
use crate::idp::App;
use crate::store::{LoginFlowRecord, RealmRecord, SessionRecord};

pub use actions::login_action;
pub use authorize::authorize;
pub use broker::broker;
pub use device::device_page;
pub use iframe::{login_status_iframe, third_party_cookies};
pub use logout::logout;

pub const AUTH_SESSION_COOKIE: &str = "AUTH_SESSION_ID";
pub const IDENTITY_COOKIE: &str = "KEYCLOAK_IDENTITY";
pub const SESSION_COOKIE: &str = "KEYCLOAK_SESSION";

/// How long a login in progress stays valid.
const FLOW_LIFETIME_MS: i64 = 30 * 60 * 1000;

/// An enabled realm by name (`None` when missing, disabled or the store fails).
pub fn enabled_realm(app: &App, name: &str) -> Option<RealmRecord> {
    app.store
        .read()
        .ok()?
        .realm_by_name(name)
        .ok()
        .flatten()
        .filter(|r| r.enabled)
}

/// A cookie value from the request.
pub fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    cookie_in(request.headers(), name)
}

/// The path cookies of a realm live under.
fn cookie_path(realm: &str) -> String {
    format!("/realms/{}/", crate::http::path::encode_segment(realm))
}

/// A `Set-Cookie` value. `max_age` `None` is a session cookie; `Some(0)` deletes.
fn set_cookie(
    name: &str,
    value: &str,
    realm: &str,
    info: &RequestInfo,
    http_only: bool,
    max_age: Option<i64>,
) -> String {
    let mut c = format!("{name}={value}; Path={}; SameSite=Lax", cookie_path(realm));
    if http_only {
        c.push_str("; HttpOnly");
    }
    if info.tls {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

fn add_cookie(response: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether the request comes from the browser that started `flow` (its `AUTH_SESSION_ID`).
pub fn browser_bound(request: &Request, flow: &crate::store::LoginFlowRecord) -> bool {
    cookie(request, AUTH_SESSION_COOKIE)
        .is_some_and(|c| constant_time_eq(sha256_hex(c).as_bytes(), flow.browser_hash.as_bytes()))
}

/// Whether a submitted form carries the flow's CSRF token.
pub fn csrf_valid(fields: &BTreeMap<String, String>, flow: &crate::store::LoginFlowRecord) -> bool {
    fields
        .get("csrf_token")
        .is_some_and(|t| constant_time_eq(t.as_bytes(), flow.csrf_token.as_bytes()))
}

/// The live SSO session named by the browser's identity cookie, if any.
pub fn sso_session(
    app: &App,
    request: &Request,
    realm: &RealmRecord,
    now_ms: i64,
) -> Option<SessionRecord> {
    let value = cookie(request, IDENTITY_COOKIE)?;
    let (sid, secret) = value.split_once('.')?;
    let session = app.store.read().ok()?.session(&realm.id, sid).ok()??;
    let expected = session.cookie_hash.as_deref()?;
    if session.offline
        || !constant_time_eq(sha256_hex(secret).as_bytes(), expected.as_bytes())
        || !crate::idp::sessions::is_valid(realm, &session, now_ms)
    {
        return None;
    }
    Some(session)
}

/// Cookies that establish an SSO session in this browser.
/// A new browser SSO session for `user` opened by an administrator (`impersonator`), with
/// its cookies on `response`; returns the session.
pub fn impersonation_session(
    app: &App,
    realm: &RealmRecord,
    user: &crate::store::UserRecord,
    impersonator: &str,
    info: &RequestInfo,
    response: &mut Response,
) -> Result<SessionRecord, crate::store::StoreError> {
    let now = app.clock.now_millis();
    let secret = new_secret();
    let mut session = crate::idp::sessions::new_session(
        &user.id,
        now,
        info.peer.map(|p| p.ip().to_string()),
        false,
        false,
    );
    session.cookie_hash = Some(sha256_hex(&secret));
    session.impersonator_id = Some(impersonator.to_string());
    app.store.write(|w| w.put_session(&realm.id, &session))?;
    session_cookies(response, realm, &session, &secret, info);
    Ok(session)
}

fn session_cookies(
    response: &mut Response,
    realm: &RealmRecord,
    session: &SessionRecord,
    secret: &str,
    info: &RequestInfo,
) {
    let max_age = session
        .remember_me
        .then_some(realm.sso_session_max_lifespan);
    add_cookie(
        response,
        set_cookie(
            IDENTITY_COOKIE,
            &format!("{}.{secret}", session.id),
            &realm.name,
            info,
            true,
            max_age,
        ),
    );
    let mut status = set_cookie(
        SESSION_COOKIE,
        &format!("{}/{}/{}", realm.name, session.user_id, session.id),
        &realm.name,
        info,
        false,
        max_age,
    );
    if info.tls {
        // keycloak-js reads this from its session iframe, which is often cross-site. It
        // names the session, it does not authenticate anyone.
        status = status.replace("SameSite=Lax", "SameSite=None");
    }
    add_cookie(response, status);
}

/// Cookies that forget the SSO session (and any login in progress).
fn clear_session_cookies(response: &mut Response, realm: &str, info: &RequestInfo) {
    for (name, http_only) in [
        (IDENTITY_COOKIE, true),
        (SESSION_COOKIE, false),
        (AUTH_SESSION_COOKIE, true),
    ] {
        add_cookie(
            response,
            set_cookie(name, "", realm, info, http_only, Some(0)),
        );
    }
}

/// The locale of a page outside a login (the admin console): `Accept-Language`, among
/// those the realm's theme has.
pub fn page_locale(app: &App, realm: &RealmRecord, request: &Request) -> String {
    locale(app, realm, request, None)
}

/// The locale of a page: `ui_locales`, then `Accept-Language`, among those the theme has.
fn locale(app: &App, realm: &RealmRecord, request: &Request, ui_locales: Option<&str>) -> String {
    let theme = realm.login_theme.as_deref();
    let accept = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let candidates = ui_locales.unwrap_or("").split_whitespace().chain(
        accept
            .split(',')
            .map(|l| l.split(';').next().unwrap_or("").trim()),
    );
    for candidate in candidates {
        let lang = candidate
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !lang.is_empty() && app.themes.has_locale(theme, &lang) {
            return lang;
        }
    }
    theme::DEFAULT_LOCALE.to_string()
}

/// What every page needs besides its own variables.
pub struct PageCx<'a> {
    pub app: &'a App,
    pub realm: &'a RealmRecord,
    pub request: &'a Request,
    pub locale: String,
    /// The page's texts, read once (theme and realm overrides) on first use.
    messages: std::sync::OnceLock<BTreeMap<String, String>>,
}

impl<'a> PageCx<'a> {
    pub fn new(
        app: &'a App,
        realm: &'a RealmRecord,
        request: &'a Request,
        ui_locales: Option<&str>,
    ) -> PageCx<'a> {
        PageCx {
            app,
            realm,
            request,
            locale: locale(app, realm, request, ui_locales),
            messages: std::sync::OnceLock::new(),
        }
    }

    pub fn msg(&self, key: &str) -> String {
        self.messages()
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// The texts of this page: the theme's in the page's locale, the realm's overrides on
    /// top.
    pub fn messages(&self) -> &BTreeMap<String, String> {
        self.messages.get_or_init(|| {
            crate::idp::localization::messages(
                self.app,
                self.realm,
                self.realm.login_theme.as_deref(),
                &self.locale,
            )
        })
    }

    /// Render a theme template with `vars` merged into the common context.
    pub fn render(
        &self,
        status: StatusCode,
        template: &str,
        vars: BTreeMap<&str, Ctx>,
    ) -> Response {
        let theme = self.realm.login_theme.as_deref();
        let mut context: BTreeMap<&str, Ctx> = BTreeMap::new();
        context.insert("locale", Ctx::from(self.locale.clone()));
        context.insert("realm_name", Ctx::from(self.realm.name.clone()));
        context.insert(
            "realm_display_name",
            Ctx::from(
                self.realm
                    .display_name
                    .clone()
                    .unwrap_or_else(|| self.realm.name.clone()),
            ),
        );
        let theme_name = theme
            .filter(|t| !t.is_empty())
            .unwrap_or(theme::DEFAULT_THEME);
        context.insert(
            "resources_url",
            Ctx::from(format!("/resources/{theme_name}")),
        );
        context.insert("msg", Ctx::from_serialize(self.messages()));
        context.extend(vars);
        match self
            .app
            .themes
            .render(theme, template, Ctx::from_serialize(&context))
        {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!(error = %e, "login page rendering failed");
                html_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>Unexpected error.</p>".into(),
                )
            }
        }
    }

    /// The variables of every form page of a flow: where it posts
    /// (`/realms/{realm}/{path}?flow=...`), the flow's CSRF token and the error to show
    /// (already translated), if any.
    pub fn form_vars(
        &self,
        path: &str,
        flow: &LoginFlowRecord,
        error: Option<String>,
    ) -> BTreeMap<&'static str, Ctx> {
        let mut vars = BTreeMap::new();
        vars.insert(
            "action_url",
            Ctx::from(format!(
                "/realms/{}/{path}?flow={}",
                crate::http::path::encode_segment(&self.realm.name),
                flow.id
            )),
        );
        vars.insert("csrf_token", Ctx::from(flow.csrf_token.clone()));
        vars.insert("error", error.map(Ctx::from).unwrap_or(Ctx::from(())));
        vars
    }

    /// The error page; never redirects anywhere.
    pub fn error(&self, status: StatusCode, message_key: &str) -> Response {
        let mut vars = BTreeMap::new();
        vars.insert("message", Ctx::from(self.msg(message_key)));
        self.render(status, "login/error.html", vars)
    }

    /// 503 with `Retry-After`: too many password checks at once.
    pub fn busy(&self) -> Response {
        let mut r = self.error(StatusCode::SERVICE_UNAVAILABLE, "serverBusyMessage");
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(crate::http::error::RETRY_AFTER_SECS),
        );
        r
    }

    /// The error page with a literal (already safe, translated) message.
    pub fn error_text(&self, status: StatusCode, message: &str) -> Response {
        let mut vars = BTreeMap::new();
        vars.insert("message", Ctx::from(message.to_string()));
        self.render(status, "login/error.html", vars)
    }
}

/// A new random value for `AUTH_SESSION_ID` and CSRF tokens.
fn new_secret() -> String {
    random_token(32)
}

/// Serve `/resources/{theme}/{path}` from the themes.
pub fn resource(app: &App, rest: &str) -> Response {
    let Some((theme, path)) = rest.split_once('/') else {
        return crate::http::ApiError::NotFound.into_response();
    };
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return crate::http::ApiError::NotFound.into_response();
    }
    match app.themes.resource(theme, path) {
        Some((bytes, content_type)) => {
            let mut r = Response::new(bytes);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            r.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => crate::http::ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests;
