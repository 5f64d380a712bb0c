//! In-process tests of the console: the welcome page's first administrator, a sign-in
//! through the real login pages, escaping of echoed values, and the headers of every page.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, StatusCode};

use crate::clock::ManualClock;
use crate::config::Config;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::login::theme::Themes;
use crate::idp::App;
use crate::metrics::Metrics;

fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse("", std::path::Path::new("t.toml")).unwrap();
    let store = crate::store::testing::open(dir.path());
    crate::bootstrap::ensure_master_realm(&store, &ManualClock::at(1_700_000_000_000)).unwrap();
    let app = App::new(
        Arc::new(config),
        store,
        Arc::new(ManualClock::at(1_700_000_000_000)),
        Arc::new(Metrics::new()),
        Arc::new(Themes::builtin()),
    );
    (dir, app)
}

const LOOPBACK: &str = "127.0.0.1:50000";
const REMOTE: &str = "203.0.113.9:50000";

/// A browser: cookies kept, one request at a time through `App::handle`.
struct Browser<'a> {
    app: &'a App,
    peer: SocketAddr,
    cookies: Vec<(String, String)>,
    /// Headers added to every request (replacing `Host` when named).
    extra: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a App, peer: &str) -> Self {
        Browser {
            app,
            peer: peer.parse().unwrap(),
            cookies: Vec::new(),
            extra: Vec::new(),
        }
    }

    async fn send(&mut self, method: &str, uri: &str, form: Option<&[(&str, &str)]>) -> Response {
        let path = uri.split('?').next().unwrap();
        let (endpoint, params) = match self.app.route(path) {
            Some(found) => found,
            None if path == "/" => (crate::idp::endpoints::Endpoint::Welcome, Default::default()),
            None => panic!("no route for {path}"),
        };
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let body = form
            .map(|f| {
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(f)
                    .finish()
            })
            .unwrap_or_default();
        let host = self
            .extra
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.as_str())
            .unwrap_or("localhost:8080");
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (k, v) in self.extra.iter().filter(|(k, _)| k != "host") {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request: Request = builder
            .header(header::HOST, host)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .unwrap();
        let info = RequestInfo {
            peer: Some(self.peer),
            tls: false,
        };
        let response = self.app.handle(endpoint, &params, request, info).await;
        for set in response.headers().get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        response
    }

    /// Follow redirects from `uri` (GET) until a page.
    async fn open(&mut self, uri: &str) -> Response {
        let mut uri = uri.to_string();
        for _ in 0..10 {
            let response = self.send("GET", &uri, None).await;
            match response.headers().get(header::LOCATION) {
                Some(next) if response.status().is_redirection() => {
                    uri = local(next.to_str().unwrap());
                }
                _ => return response,
            }
        }
        panic!("redirect loop");
    }

    /// Sign in to `/admin/master/console/` with the login form.
    async fn sign_in(&mut self, username: &str, password: &str) -> String {
        let page = text(&self.open("/admin/master/console/").await);
        let action = attr(&page, "action=\"").unwrap();
        let mut fields: Vec<(String, String)> = hidden(&page);
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), password.into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = self.send("POST", &local(&action), Some(&pairs)).await;
        let next = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        text(&self.open(&local(&next)).await)
    }
}

/// The master administrator `admin` / `Admin-pass-1` (cheap hashing parameters).
fn with_admin(app: &App) {
    crate::bootstrap::create_admin(
        &app.store,
        &*app.clock,
        "admin",
        "Admin-pass-1",
        &crate::crypto::password::Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            ..Default::default()
        },
    )
    .unwrap();
}

/// The master administrator signed in to the console, on "Create realm", with the page's
/// CSRF token.
async fn admin_at_add_realm(app: &App) -> (Browser<'_>, String) {
    with_admin(app);
    let mut admin = Browser::new(app, LOOPBACK);
    admin.sign_in("admin", "Admin-pass-1").await;
    let csrf = csrf_of(&text(
        &admin.open("/admin/master/console/master/add-realm").await,
    ));
    (admin, csrf)
}

/// The CSRF token of a console page's forms.
fn csrf_of(page: &str) -> String {
    hidden(page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1
}

/// The path and query of a URL of this server.
fn local(url: &str) -> String {
    url.strip_prefix("http://localhost:8080")
        .unwrap_or(url)
        .to_string()
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(r.body()).into_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
}

fn attr(page: &str, prefix: &str) -> Option<String> {
    let start = page.find(prefix)? + prefix.len();
    let end = page[start..].find('"')? + start;
    Some(unescape(&page[start..end]))
}

fn hidden(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\"")
        .skip(1)
        .filter_map(|c| Some((attr(c, "name=\"")?, attr(c, "value=\"")?)))
        .collect()
}

#[tokio::test]
async fn the_welcome_page_creates_the_first_administrator_only_from_loopback() {
    let (_dir, app) = app();
    // From elsewhere: no form, and a forged post creates nothing.
    let mut remote = Browser::new(&app, REMOTE);
    let page = text(&remote.open("/").await);
    assert!(
        page.contains("&#x2f;admin&#x2f;master&#x2f;console&#x2f;"),
        "{page}"
    );
    assert!(!page.contains("name=\"password\""), "{page}");
    let csrf = hidden(&page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .unwrap_or_else(|| remote.cookies[0].1.clone());
    let r = remote
        .send(
            "POST",
            "/",
            Some(&[
                ("csrf", &csrf),
                ("username", "eve"),
                ("password", "x"),
                ("passwordConfirmation", "x"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!crate::bootstrap::master_has_users(&app.store).unwrap());

    // From loopback, but relayed by a proxy on this machine, or by a name that is not
    // loopback's (DNS rebinding): no form either.
    for (name, value) in [
        ("x-forwarded-for", "198.51.100.7"),
        ("host", "rebind.attacker.test:8080"),
    ] {
        let mut browser = Browser::new(&app, LOOPBACK);
        browser.extra = vec![(name.to_string(), value.to_string())];
        let page = text(&browser.open("/").await);
        assert!(!page.contains("name=\"password\""), "{name}: {page}");
        // (An unknown host is refused before the page; with `public_url` set it gets the
        // page, without the form.)
        let csrf = browser
            .cookies
            .first()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        let r = browser
            .send(
                "POST",
                "/",
                Some(&[
                    ("csrf", &csrf),
                    ("username", "eve"),
                    ("password", "x"),
                    ("passwordConfirmation", "x"),
                ]),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(!crate::bootstrap::master_has_users(&app.store).unwrap());
    }

    // From loopback: without the page's token, refused; with it, created once.
    let mut local_browser = Browser::new(&app, LOOPBACK);
    let page = text(&local_browser.open("/").await);
    assert!(page.contains("name=\"password\""), "{page}");
    let csrf = csrf_of(&page);
    let form = [
        ("username", "root"),
        ("password", "Root-pass-1"),
        ("passwordConfirmation", "Root-pass-1"),
    ];
    let mut stranger = Browser::new(&app, LOOPBACK);
    let mut forged = form.to_vec();
    forged.push(("csrf", csrf.as_str()));
    let r = stranger.send("POST", "/", Some(&forged)).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the token without its cookie"
    );
    assert!(!crate::bootstrap::master_has_users(&app.store).unwrap());
    let mismatch = [
        ("csrf", csrf.as_str()),
        ("username", "root"),
        ("password", "a"),
        ("passwordConfirmation", "b"),
    ];
    let r = local_browser.send("POST", "/", Some(&mismatch)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = text(&local_browser.open("/").await);
    let csrf = csrf_of(&page);
    let mut good = form.to_vec();
    good.push(("csrf", csrf.as_str()));
    let r = local_browser.send("POST", "/", Some(&good)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", text(&r));
    assert!(crate::bootstrap::master_has_users(&app.store).unwrap());
    // Once an administrator exists, the page offers no form and refuses another.
    let page = text(&local_browser.open("/").await);
    assert!(!page.contains("name=\"password\""));
    // A hand-made form with the cookie's token.
    let csrf = local_browser
        .cookies
        .iter()
        .find(|(k, _)| k == "PORTCULLIS_WELCOME")
        .unwrap()
        .1
        .clone();
    let mut again = form.to_vec();
    again[0] = ("username", "second");
    again.push(("csrf", csrf.as_str()));
    let r = local_browser.send("POST", "/", Some(&again)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The administrator signs in to the console through the login pages.
    let mut admin = Browser::new(&app, LOOPBACK);
    let home = admin.sign_in("root", "Root-pass-1").await;
    assert!(home.contains("nav class=\"side\""), "{home}");
}

#[tokio::test]
async fn console_pages_escape_what_they_echo_and_carry_strict_headers() {
    let (_dir, app) = app();
    let (mut admin, csrf) = admin_at_add_realm(&app).await;
    let evil = "\"><script>alert(1)</script>";
    let r = admin
        .send(
            "POST",
            "/admin/master/console/master/add-realm",
            Some(&[
                ("csrf", &csrf),
                ("realm", "x"),
                ("displayName", evil),
                ("enabled", "on"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", text(&r));
    for path in [
        "/admin/master/console/x/",
        "/admin/master/console/x/realm-settings/general",
    ] {
        let r = admin.open(path).await;
        let body = text(&r);
        assert!(!body.contains("<script>alert"), "{path}: {body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{path}: {body}"
        );
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert!(r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("no-store"));
        assert!(body.len() < 100 * 1024, "{path}: {} bytes", body.len());
    }
    // An unknown screen is a page of its own, not an error of the API.
    assert_eq!(
        admin
            .open("/admin/master/console/x/nothing-here")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Signing out ends the session: the next page asks for the password again.
    let page = text(&admin.open("/admin/master/console/x/").await);
    let csrf = csrf_of(&page);
    let r = admin
        .send(
            "POST",
            "/admin/master/console/logout",
            Some(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let page = text(&admin.open("/admin/master/console/x/").await);
    assert!(page.contains("name=\"password\""), "{page}");
}

#[tokio::test]
async fn planted_cookies_and_same_site_forms_are_refused() {
    let (_dir, app) = app();
    let (mut admin, csrf) = admin_at_add_realm(&app).await;
    // A sibling subdomain's page (same site, another origin) posts the form: refused,
    // even with the right token, and nothing is created.
    for (header, value) in [
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.localhost:8080"),
    ] {
        admin.extra = vec![(header.into(), value.into())];
        let r = admin
            .send(
                "POST",
                "/admin/master/console/master/add-realm",
                Some(&[("csrf", &csrf), ("realm", "planted")]),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{header}: {value}");
    }
    assert!(app
        .store
        .read()
        .unwrap()
        .realm_by_name("planted")
        .unwrap()
        .is_none());
    // A second console cookie of the same name (planted with a longer path, so sent first)
    // makes the request signed out, never signed in as whoever planted it.
    admin.extra.clear();
    admin
        .cookies
        .insert(0, ("PORTCULLIS_CONSOLE".into(), "planted-session".into()));
    let r = admin
        .send("GET", "/admin/master/console/master/", None)
        .await;
    assert_eq!(r.status(), StatusCode::FOUND, "a sign-in starts");
    let to = r.headers()[header::LOCATION].to_str().unwrap();
    assert!(to.contains("/protocol/openid-connect/auth"), "{to}");
}
