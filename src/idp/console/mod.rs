//! The admin console: server-rendered pages under `/admin/{realm}/console/`, a client of
//! the admin REST API like any other. Every page reads and every form writes through
//! [`api::Api`] with the signed-in administrator's token, so what an administrator sees
//! and may change is exactly what the REST API allows them (checked on the server for each
//! call), and no rule is implemented twice. Pages work without JavaScript, at phone width
//! and by keyboard; texts come from the message bundles.
//!
//! Paths: `/admin/{home}/console/{realm}/{screen...}`, where `home` is the realm the
//! administrator signed in to and `realm` the one they administer. A screen is one match
//! arm in [`dispatch`], one handler in `screens/` and one template in `themes/*/admin/`.
//!
//! Must not: touch the store directly (only the REST API), or render a value unescaped.

pub(crate) mod api;
pub(crate) mod form;
mod screens;
pub mod session;
pub mod welcome;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{header, HeaderValue, Method, StatusCode};
use minijinja::Value as Ctx;
use serde_json::{json, Value};

use crate::crypto::constant_time_eq;
use crate::http::path::encode_segment;
use crate::http::{redirect, Request, RequestInfo, Response};
use crate::idp::oidc::base_url;
use crate::idp::App;

use api::{Api, Failure};
use form::Submitted;
use session::{console_path, Entry};

pub use session::Sessions;
pub(crate) use session::IDLE_MS;

/// Why a screen did not render.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// The admin API refused or failed.
    Api(Failure),
    /// A path the console does not have.
    NotFound,
    /// A form without this session's CSRF token, or sent from another site.
    Csrf,
}

impl From<Failure> for Trouble {
    fn from(f: Failure) -> Self {
        Trouble::Api(f)
    }
}

pub(crate) type Outcome = Result<Response, Trouble>;

/// What every screen gets.
pub(crate) struct Console<'a> {
    pub app: &'a App,
    pub request: &'a Request,
    pub info: &'a RequestInfo,
    /// The realm the administrator signed in to.
    pub home: String,
    /// The realm administered.
    pub realm: String,
    pub api: Api<'a>,
    session: Arc<Entry>,
    /// The submitted form of a `POST` (its CSRF token checked).
    pub form: Submitted,
    messages: BTreeMap<String, String>,
    locale: String,
}

/// The HTML headers of every console page: nothing from elsewhere, no framing, scripts and
/// styles only from this server.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = crate::http::html_response(status, body);
    let h = r.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

/// `303 See Other` after a form: the browser fetches the page with `GET`.
pub(crate) fn see_other(location: &str) -> Response {
    let mut r = redirect(location);
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// `/admin/{home}/console/{rest}`.
pub async fn serve(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    home: &str,
    rest: &str,
) -> Response {
    let Some(home_realm) = crate::idp::login::enabled_realm(app, home) else {
        return plain_error(app, StatusCode::NOT_FOUND, "Realm not found.");
    };
    let query = |name: &str| {
        request.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    };
    let sessions = &app.console;
    if rest.is_empty() && request.method() == Method::GET {
        if let (Some(code), Some(state)) = (query("code"), query("state")) {
            return match sessions
                .finish_sign_in(app, request, info, home, &code, &state)
                .await
            {
                Ok(r) => r,
                Err(message) => plain_error(app, StatusCode::BAD_REQUEST, &message),
            };
        }
        if query("error").is_some() {
            // Not the description: a link could make the server's page say anything.
            return plain_error(app, StatusCode::BAD_REQUEST, "The sign-in did not succeed.");
        }
    }
    let here = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let current = sessions.current(app, request, home);
    if rest == "logout" && request.method() == Method::POST {
        let form = Submitted::parse(request.body());
        // Without a console session there is nothing to forge: the realm's logout asks.
        if current
            .as_ref()
            .is_some_and(|s| !csrf_ok(request, &base_url(app, request, info), &form, s))
        {
            return plain_error(app, StatusCode::FORBIDDEN, "Invalid CSRF token.");
        }
        return sessions.sign_out(app, request, info, home).await;
    }
    let Some(session) = current else {
        // A form posted after the session ended returns to its page once signed in.
        let back = if request.method() == Method::GET {
            here
        } else {
            request.uri().path().to_string()
        };
        return sessions.start_sign_in(app, request, info, home, &back);
    };
    let Some(token) = sessions.access_token(app, request, info, &session).await else {
        sessions.forget(app, request);
        return sessions.start_sign_in(app, request, info, home, &here);
    };
    let mut segments: Vec<String> = Vec::new();
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        match crate::http::path::percent_decode(raw) {
            Some(decoded) => segments.push(decoded.into_owned()),
            None => return plain_error(app, StatusCode::NOT_FOUND, "Not found."),
        }
    }
    let Some((realm, screen)) = segments.split_first() else {
        return redirect(&format!("{}/{}/", console_path(home), encode_segment(home)));
    };
    let locale = crate::idp::login::page_locale(app, &home_realm, request);
    let messages = crate::idp::localization::messages(app, &home_realm, None, &locale);
    let mut cx = Console {
        app,
        request,
        info,
        home: home.to_string(),
        realm: realm.clone(),
        api: Api::new(app, request, *info, token),
        session,
        form: Submitted::default(),
        messages,
        locale,
    };
    if request.method() == Method::POST {
        cx.form = Submitted::parse(request.body());
        if !csrf_ok(
            request,
            &base_url(app, request, info),
            &cx.form,
            &cx.session,
        ) {
            return cx.trouble(Trouble::Csrf);
        }
    }
    let screen: Vec<&str> = screen.iter().map(String::as_str).collect();
    match screens::dispatch(&mut cx, request.method(), &screen).await {
        Ok(r) => r,
        Err(Trouble::Api(f)) if f.unauthenticated() => {
            sessions.forget(app, request);
            sessions.start_sign_in(app, request, info, home, &here)
        }
        Err(t) => cx.trouble(t),
    }
}

/// The form's CSRF token is this session's, and the browser did not send it from another
/// site (`Sec-Fetch-Site`, where the browser says).
fn csrf_ok(request: &Request, base_url: &str, form: &Submitted, session: &Entry) -> bool {
    let expected = session.lock().map(|s| s.csrf.clone()).unwrap_or_default();
    same_origin_form(request, base_url)
        && !expected.is_empty()
        && form
            .get("csrf")
            .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
}

/// Whether the browser says a form came from this origin's own pages: `Sec-Fetch-Site` is
/// `same-origin` (or `none`: typed or bookmarked) where a browser sends it, and `Origin`,
/// where sent, names the host the request was sent to (or the public URL). A sibling
/// subdomain (`same-site`) is refused like another site; clients that send neither rely on
/// the CSRF token alone.
pub(super) fn same_origin_form(request: &Request, base_url: &str) -> bool {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let fetch_site = header("sec-fetch-site");
    let fetch_site_ok = fetch_site.is_none_or(|v| v == "same-origin" || v == "none");
    let origin_ok = match header("origin") {
        None => true,
        // Pages sent with `Referrer-Policy: no-referrer` (ours) post with `Origin: null`;
        // so does a sandboxed frame of any site. The browser's `Sec-Fetch-Site` tells them
        // apart: only a same-origin one passes.
        Some("null") => fetch_site == Some("same-origin"),
        Some(origin) => {
            // The host the request was sent to, or the public URL in front of it.
            let host = header("host").unwrap_or("");
            let by_host = origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
            let by_base = base_url
                .get(..origin.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(origin))
                && matches!(base_url.as_bytes().get(origin.len()), None | Some(b'/'));
            by_host || by_base
        }
    };
    fetch_site_ok && origin_ok
}

/// An error page outside a signed-in console (a failed sign-in, an unknown realm).
fn plain_error(app: &App, status: StatusCode, message: &str) -> Response {
    let messages = app
        .themes
        .messages(None, crate::idp::login::theme::DEFAULT_LOCALE);
    let context = json!({
        "msg": messages,
        "message": message,
        "resources_url": "/resources/default",
        "locale": "en",
    });
    render_template(app, status, "admin/error.html", &context)
}

fn render_template(app: &App, status: StatusCode, template: &str, context: &Value) -> Response {
    match app
        .themes
        .render(None, template, Ctx::from_serialize(context))
    {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "console page rendering failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>Unexpected error.</p>".into(),
            )
        }
    }
}

/// One entry of the console's navigation.
struct NavItem {
    id: &'static str,
    label: &'static str,
    path: &'static str,
}

const NAV_MANAGE: &[NavItem] = &[
    NavItem {
        id: "clients",
        label: "clients",
        path: "clients",
    },
    NavItem {
        id: "client-scopes",
        label: "clientScopes",
        path: "client-scopes",
    },
    NavItem {
        id: "roles",
        label: "realmRoles",
        path: "roles",
    },
    NavItem {
        id: "users",
        label: "users",
        path: "users",
    },
    NavItem {
        id: "groups",
        label: "groups",
        path: "groups",
    },
    NavItem {
        id: "sessions",
        label: "sessions",
        path: "sessions",
    },
    NavItem {
        id: "events",
        label: "events",
        path: "events",
    },
];

const NAV_CONFIGURE: &[NavItem] = &[
    NavItem {
        id: "realm-settings",
        label: "realmSettings",
        path: "realm-settings",
    },
    NavItem {
        id: "authentication",
        label: "authentication",
        path: "authentication",
    },
    NavItem {
        id: "identity-providers",
        label: "identityProviders",
        path: "identity-providers",
    },
    NavItem {
        id: "user-federation",
        label: "userFederation",
        path: "user-federation",
    },
];

impl Console<'_> {
    /// A message in the page's language (the key itself when missing).
    pub(crate) fn msg(&self, key: &str) -> String {
        self.messages
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// A closure form of [`Console::msg`] for the form module.
    pub(crate) fn msg_fn(&self) -> impl Fn(&str) -> String + '_ {
        move |k| self.msg(k)
    }

    /// `/admin/{home}/console/{realm}` followed by `tail` (already encoded).
    pub(crate) fn url(&self, tail: &str) -> String {
        let base = format!(
            "{}/{}",
            console_path(&self.home),
            encode_segment(&self.realm)
        );
        if tail.is_empty() {
            format!("{base}/")
        } else {
            format!("{base}/{tail}")
        }
    }

    /// `/admin/realms/{realm}/...` of the administered realm.
    pub(crate) fn rest(&self, tail: &[&str]) -> String {
        api::realm_path(&self.realm, tail)
    }

    /// A query parameter.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        self.request.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    }

    /// Show `message` once on the next page.
    pub(crate) fn flash(&self, key: &str) {
        self.flash_text(self.msg(key));
    }

    /// Show a literal (already translated) text once on the next page.
    pub(crate) fn flash_text(&self, text: String) {
        self.app
            .console
            .update(self.app, &self.session, |s| s.flash = Some(text.clone()));
    }

    /// After a successful form: a notice, and `303` to `tail`.
    pub(crate) fn done(&self, notice: &str, tail: &str) -> Outcome {
        self.flash(notice);
        Ok(see_other(&self.url(tail)))
    }

    /// Render a screen: `template` with `vars` and what every page has (navigation, realm
    /// selector, the signed-in user, CSRF token, notice, the REST calls made).
    pub(crate) async fn page(
        &self,
        status: StatusCode,
        template: &str,
        section: &str,
        title: &str,
        vars: Value,
    ) -> Outcome {
        // The realm selector: the first realms the administrator may see, and a search.
        let realms = self
            .api
            .get("/admin/realms?briefRepresentation=true")
            .await
            .unwrap_or(Value::Null);
        let realm_list: Vec<Value> = realms
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["realm"].as_str())
                    .take(10)
                    .map(|name| {
                        json!({
                            "name": name,
                            "href": format!("{}/{}/", console_path(&self.home), encode_segment(name)),
                            "current": name == self.realm,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let realm_count = realms.as_array().map(Vec::len).unwrap_or(0);
        let (csrf, username, flash) = match self.session.lock() {
            Ok(s) => (s.csrf.clone(), s.username.clone(), s.flash.clone()),
            Err(_) => (String::new(), String::new(), None),
        };
        if flash.is_some() {
            // Shown once.
            self.app
                .console
                .update(self.app, &self.session, |s| s.flash = None);
        }
        let nav = |items: &[NavItem]| -> Vec<Value> {
            items
                .iter()
                .map(|i| {
                    json!({
                        "label": self.msg(i.label),
                        "href": self.url(i.path),
                        "current": i.id == section,
                    })
                })
                .collect()
        };
        let mut context = json!({
            "msg": &self.messages,
            "locale": &self.locale,
            "resources_url": "/resources/default",
            "base": console_path(&self.home),
            "realm": &self.realm,
            "realm_url": self.url(""),
            "realms": realm_list,
            "more_realms": realm_count > 10,
            "username": username,
            "csrf": csrf,
            "flash": flash,
            "title": title,
            "nav_manage": nav(NAV_MANAGE),
            "nav_configure": nav(NAV_CONFIGURE),
            "calls": self.api.calls(),
        });
        if let (Value::Object(c), Value::Object(v)) = (&mut context, vars) {
            c.extend(v);
        }
        Ok(render_template(self.app, status, template, &context))
    }

    /// The page for a refusal or failure, inside the console's frame where possible.
    fn trouble(&self, trouble: Trouble) -> Response {
        let (status, message) = match trouble {
            Trouble::NotFound => (StatusCode::NOT_FOUND, self.msg("consoleNotFound")),
            Trouble::Csrf => (StatusCode::FORBIDDEN, self.msg("consoleCsrf")),
            Trouble::Api(f) if f.status == StatusCode::FORBIDDEN => {
                (StatusCode::FORBIDDEN, self.msg("consoleForbidden"))
            }
            Trouble::Api(f) => (
                if f.status.is_server_error() {
                    f.status
                } else if f.status == StatusCode::NOT_FOUND {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_REQUEST
                },
                f.message,
            ),
        };
        let context = json!({
            "msg": &self.messages,
            "locale": &self.locale,
            "resources_url": "/resources/default",
            "message": message,
            "back": self.url(""),
        });
        render_template(self.app, status, "admin/error.html", &context)
    }
}

#[cfg(test)]
mod tests;
