//! The browser login flow driven over HTTP without a browser: authorization request, login
//! form, required actions, code exchange with PKCE, SSO, logout, and the attacks on them.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{claims, Api};
use crate::harness::TestServer;

const REDIRECT: &str = "http://localhost:3000/callback";

/// A cookie-keeping HTTP client that does not follow redirects.
pub struct Browser {
    pub client: Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub base: String,
}

/// A parsed HTML form.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Find `<form id="{id}">` in `html` and read its action and inputs.
pub fn find_form(html: &str, id: &str) -> Option<Form> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let form_start = html[..start].rfind("<form")?;
    let form_end = html[form_start..].find("</form>")? + form_start;
    let form = &html[form_start..form_end];
    let open_tag = &form[..form.find('>')?];
    let action = attr(open_tag, "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        if let Some(name) = attr(tag, "name") {
            let kind = attr(tag, "type").unwrap_or_default();
            if kind != "checkbox" || tag.contains(" checked") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
        }
        rest = &rest[tag_end..];
    }
    Some(Form { action, fields })
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_string(), value.to_string()));
    }
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn new_pkce() -> Pkce {
    let verifier = portcullis::crypto::random_token(48);
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

impl Browser {
    pub fn new(server: &TestServer) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: format!("http://{}", server.http),
        }
    }

    /// A browser that reaches the server under the name `host` (resolved to the server's
    /// loopback address), base `http://HOST:PORT`.
    pub fn for_host(server: &TestServer, host: &str) -> Browser {
        Browser::for_host_at(host, server.http)
    }

    /// Like [`Browser::for_host_at`] over HTTPS, trusting the server's development
    /// certificate (it is for `localhost`).
    pub fn for_https_host_at(host: &str, addr: std::net::SocketAddr) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, addr)
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: format!("https://{host}:{}", addr.port()),
        }
    }

    /// A browser that reaches `addr` under the name `host`.
    pub fn for_host_at(host: &str, addr: std::net::SocketAddr) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, addr)
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: format!("http://{host}:{}", addr.port()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// GET; returns (status, Location, body).
    pub fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let r = self.client.get(self.url(path)).send().unwrap();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), loc, r.text().unwrap())
    }

    /// GET as a link on one of this origin's own pages would (`Sec-Fetch-Site:
    /// same-origin`): what a sign-out link needs to act without asking.
    pub fn get_same_origin(&self, path: &str) -> (u16, Option<String>, String) {
        let r = self
            .client
            .get(self.url(path))
            .header("sec-fetch-site", "same-origin")
            .send()
            .unwrap();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), loc, r.text().unwrap())
    }

    pub fn submit(&self, form: &Form) -> (u16, Option<String>, String) {
        let r = self
            .client
            .post(self.url(&form.action))
            .form(&form.fields)
            .send()
            .unwrap();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), loc, r.text().unwrap())
    }

    pub fn auth_url(&self, realm: &str, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
        ];
        params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        params.extend_from_slice(extra);
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("/realms/{realm}/protocol/openid-connect/auth?{q}")
    }

    /// Fill and submit the login form; returns the response.
    pub fn login(
        &self,
        html: &str,
        username: &str,
        password: &str,
    ) -> (u16, Option<String>, String) {
        let mut form =
            find_form(html, "kc-form-login").unwrap_or_else(|| panic!("no login form in:\n{html}"));
        form.set("username", username);
        form.set("password", password);
        self.submit(&form)
    }
}

/// The query (or fragment) parameters of a redirect.
pub fn redirect_params(location: &str) -> Vec<(String, String)> {
    let query = location
        .split_once(['?', '#'])
        .map(|(_, q)| q)
        .unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub fn param(location: &str, name: &str) -> Option<String> {
    redirect_params(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn exchange(
    api: &Api,
    realm: &str,
    secret: &str,
    code: &str,
    verifier: Option<&str>,
) -> crate::api::Reply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "app"),
        ("client_secret", secret),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    api.token(realm, &form)
}

#[test]
fn code_flow_with_pkce_sso_and_logout() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, user_id) = api.setup_realm("t");
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    let auth = browser.auth_url(
        "t",
        "app",
        &[
            ("state", "s-1"),
            ("nonce", "n-1"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let (status, _, html) = browser.get(&auth);
    assert_eq!(status, 200);
    assert!(html.contains("kc-form-login"));

    // Wrong password: the form again, with the generic message.
    let (status, loc, html) = browser.login(&html, "alice", "wrong");
    assert_eq!((status, loc), (200, None));
    assert!(html.contains("Invalid username or password."));
    let (_, _, html_unknown) = browser.login(&html, "nobody", "wrong");
    assert!(html_unknown.contains("Invalid username or password."));

    let (status, loc, _) = browser.login(&html_unknown, "alice", "Alice-pass-1");
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("s-1"));
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(format!("http://{}/realms/t", server.http).as_str())
    );
    let code = param(&loc, "code").unwrap();

    // PKCE downgrade: the verifier is required.
    let r = exchange(&api, "t", &secret, &code, None);
    assert_eq!(r.status, 400, "{}", r.text);
    // The failed attempt consumed the code: single use. A code presented twice means
    // someone else may hold it, so what it issued (this client's session) is revoked; the
    // user's SSO session stays, as in Keycloak.
    let r = exchange(&api, "t", &secret, &code, Some(&pkce.verifier));
    assert_eq!(r.status, 400);
    let pkce = new_pkce();

    // Log in again through SSO: no form this time.
    let auth = browser.auth_url(
        "t",
        "app",
        &[
            ("state", "s-2"),
            ("nonce", "n-2"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let (status, loc, _) = browser.get(&auth);
    assert_eq!(status, 302, "the SSO session answers without a form");
    let code = param(&loc.unwrap(), "code").unwrap();
    let r = exchange(&api, "t", &secret, &code, Some(&pkce.verifier));
    assert_eq!(r.status, 200, "{}", r.text);
    let id = claims(r.body["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-2");
    assert_eq!(id["sub"], user_id.as_str());
    assert!(id["auth_time"].is_i64());
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let id_token = r.body["id_token"].as_str().unwrap().to_string();

    // Replaying the code fails and revokes what it issued.
    let r = exchange(&api, "t", &secret, &code, Some(&pkce.verifier));
    assert_eq!(r.status, 400);
    let status = api
        .client
        .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
        .bearer_auth(&access)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 401, "the replay revoked the client's session");

    // The user's SSO session survives the replay (as in Keycloak): a new authorization
    // request is answered without a form. Then RP-initiated logout with id_token_hint.
    let (status, loc, _) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    assert_eq!(status, 302, "SSO answers");
    let code = param(&loc.unwrap(), "code").unwrap();
    let r = exchange(&api, "t", &secret, &code, Some(&pkce.verifier));
    let id_token2 = r.body["id_token"].as_str().unwrap().to_string();
    let access2 = r.body["access_token"].as_str().unwrap().to_string();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token2.as_str()),
            ("post_logout_redirect_uri", "http://localhost:3000/bye"),
            ("state", "bye-1"),
        ])
        .finish();
    let (status, loc, _) = browser.get(&format!("/realms/t/protocol/openid-connect/logout?{q}"));
    assert_eq!(status, 302);
    assert_eq!(
        loc.as_deref(),
        Some("http://localhost:3000/bye?state=bye-1")
    );
    let status = api
        .client
        .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
        .bearer_auth(&access2)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 401, "logout ends the session everywhere");
    let (status, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    assert_eq!(status, 200);
    assert!(html.contains("kc-form-login"), "a new login is needed");

    // An unregistered post-logout URI is refused, without redirecting.
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .finish();
    let (status, loc, _) = browser.get(&format!("/realms/t/protocol/openid-connect/logout?{q}"));
    assert_eq!((status, loc), (400, None));
}

#[test]
fn logout_without_hint_asks_for_confirmation() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    let (_, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    let (status, _, _) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 302);
    let (status, _, html) = browser.get("/realms/t/protocol/openid-connect/logout?client_id=app&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fbye");
    assert_eq!(status, 200);
    let mut form = find_form(&html, "kc-logout-form").expect("confirmation form");
    // A forged confirmation (wrong CSRF token) does nothing.
    let good = form
        .fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .unwrap()
        .1
        .clone();
    form.set("csrf_token", "forged");
    assert_eq!(browser.submit(&form).0, 400);
    form.set("csrf_token", &good);
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(
        (status, loc.as_deref()),
        (302, Some("http://localhost:3000/bye"))
    );
}

#[test]
fn authorization_request_attacks() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    // Open redirects: an error page, never a redirect.
    for evil in [
        "https://evil.example/",
        "http://localhost:3000.evil.example/",
        "http://localhost:3000@evil.example/",
        "//evil.example",
        "/\\evil.example",
        "http://localhost:3001/callback",
        "http://localhost:3000/callback#x",
        " http://localhost:3000/callback",
    ] {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "app"),
                ("redirect_uri", evil),
                ("response_type", "code"),
                ("scope", "openid"),
            ])
            .finish();
        let (status, loc, html) =
            browser.get(&format!("/realms/t/protocol/openid-connect/auth?{q}"));
        assert_eq!((status, loc), (400, None), "{evil}");
        assert!(html.contains("Invalid parameter: redirect_uri"));
    }
    // Unknown client: error page.
    let (status, loc, _) = browser.get(&browser.auth_url("t", "nope", &[]));
    assert_eq!((status, loc), (400, None));
    // Errors after the redirect URI is known go back to the client.
    let (status, loc, _) =
        browser.get(&browser.auth_url("t", "app", &[("response_type", "token"), ("state", "x")]));
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&loc, "state").as_deref(), Some("x"));
    // prompt=none without a session.
    let (status, loc, _) =
        browser.get(&browser.auth_url("t", "app", &[("prompt", "none"), ("state", "p")]));
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&loc, "state").as_deref(), Some("p"));
    // Fragment response mode.
    let (_, loc, _) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[("prompt", "none"), ("response_mode", "fragment")],
    ));
    assert!(loc
        .unwrap()
        .starts_with(&format!("{REDIRECT}#error=login_required")));

    // CSRF: a login form posted without the right token is refused.
    let (_, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    let mut form = find_form(&html, "kc-form-login").unwrap();
    form.set("username", "alice");
    form.set("password", "Alice-pass-1");
    let good = form
        .fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .unwrap()
        .1
        .clone();
    form.set("csrf_token", "forged");
    let (status, loc, _) = browser.submit(&form);
    assert_eq!((status, loc), (400, None));
    // Another browser (without the flow cookie) cannot use the form either.
    form.set("csrf_token", &good);
    let other = Browser::new(&server);
    let (status, loc, _) = other.submit(&form);
    assert_eq!((status, loc), (400, None));
    // The right browser can; the session cookie is new (no fixation) and protected.
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(status, 302, "{loc:?}");
    use reqwest::cookie::CookieStore;
    let cookies = browser
        .jar
        .cookies(&reqwest::Url::parse(&format!("{}/realms/t/", browser.base)).unwrap())
        .unwrap();
    let cookies = cookies.to_str().unwrap().to_string();
    assert!(cookies.contains("KEYCLOAK_IDENTITY="), "{cookies}");
    assert!(
        !cookies.contains("AUTH_SESSION_ID=") || cookies.contains("AUTH_SESSION_ID=;"),
        "{cookies}"
    );

    // Public clients must use PKCE.
    api.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "spa", "publicClient": true, "redirectUris": ["http://localhost:3000/*"], "webOrigins": ["+"]}),
    );
    let (status, loc, _) = browser.get(&browser.auth_url("t", "spa", &[("prompt", "none")]));
    assert_eq!(status, 302);
    assert_eq!(
        param(&loc.unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    // plain is refused unless the client allows it.
    let (_, loc, _) = browser.get(&browser.auth_url(
        "t",
        "spa",
        &[
            ("code_challenge", &pkce.verifier),
            ("code_challenge_method", "plain"),
        ],
    ));
    assert_eq!(
        param(&loc.unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    let _ = secret;
}

#[test]
fn temporary_password_must_be_changed_before_a_code_is_issued() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    api.put(
        &format!("/admin/realms/t/users/{alice}/reset-password"),
        &json!({"type": "password", "value": "Temp-1", "temporary": true}),
    );
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    let (_, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    let (status, loc, html) = browser.login(&html, "alice", "Temp-1");
    assert_eq!((status, loc), (200, None));
    let mut form = find_form(&html, "kc-passwd-update-form").expect("update password form");
    form.set("password-new", "New-pass-9");
    form.set("password-confirm", "Different-9");
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    assert!(html.contains("Passwords don"), "{html}");
    let mut form = find_form(&html, "kc-passwd-update-form").unwrap();
    form.set("password-new", "New-pass-9");
    form.set("password-confirm", "New-pass-9");
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(status, 302);
    let code = param(&loc.unwrap(), "code").unwrap();
    assert_eq!(
        exchange(&api, "t", &secret, &code, Some(&pkce.verifier)).status,
        200
    );
    // The new password works, the temporary one does not.
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "New-pass-9"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let user: Value = api.get(&format!("/admin/realms/t/users/{alice}")).body;
    assert_eq!(user["requiredActions"], json!([]));
}

#[test]
fn disabled_user_cannot_log_in_and_pages_are_themed() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (_, alice) = api.setup_realm("t");
    api.put(
        &format!("/admin/realms/t/users/{alice}"),
        &json!({"enabled": false}),
    );
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    let (_, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    let (status, loc, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, loc), (200, None));
    assert!(html.contains("disabled"), "{html}");
    // The stylesheet the page links to is served.
    let (status, _, css) = browser.get("/resources/default/login/login.css");
    assert_eq!(status, 200);
    assert!(css.contains("{"));
    assert_eq!(browser.get("/resources/default/../theme.toml").0, 404);
    // German when the browser asks for it.
    let r = browser
        .client
        .get(browser.url(&browser.auth_url(
            "t",
            "app",
            &[
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ],
        )))
        .header("accept-language", "de-DE,de;q=0.9")
        .send()
        .unwrap();
    let html = r.text().unwrap();
    assert!(html.contains("lang=\"de\""), "{html}");
}

#[test]
fn keycloak_js_helper_pages() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let browser = Browser::new(&server);
    let (status, _, html) =
        browser.get("/realms/t/protocol/openid-connect/login-status-iframe.html");
    assert_eq!(status, 200);
    assert!(html.contains("KEYCLOAK_SESSION"));
    let (status, _, _) = browser.get("/realms/t/protocol/openid-connect/login-status-iframe.html/init?client_id=app&origin=http%3A%2F%2Flocalhost%3A3000");
    assert_eq!(status, 204);
    let (status, _, _) = browser.get("/realms/t/protocol/openid-connect/login-status-iframe.html/init?client_id=app&origin=https%3A%2F%2Fevil.example");
    assert_eq!(status, 403);
    let (status, _, html) = browser.get("/realms/t/protocol/openid-connect/3p-cookies/step1.html");
    assert_eq!(status, 200);
    assert!(html.contains("step2.html"));
    let (status, _, html) = browser.get("/realms/t/protocol/openid-connect/3p-cookies/step2.html");
    assert_eq!(status, 200);
    assert!(html.contains("postMessage"));
}

#[test]
fn pushed_requests_form_post_prompt_login_and_client_algorithm() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let browser = Browser::new(&server);
    let pkce = new_pkce();

    // PAR: the parameters go over the back channel; the browser carries only request_uri.
    let r = api.form(
        "t",
        "ext/par/request",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "par-state"),
            ("response_mode", "form_post"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let request_uri = r.body["request_uri"].as_str().unwrap().to_string();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", "app"), ("request_uri", request_uri.as_str())])
        .finish();
    // Another client naming it is refused and does not use it up for its own client.
    let stolen: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "account"),
            ("request_uri", request_uri.as_str()),
        ])
        .finish();
    let (status, _, _) = browser.get(&format!("/realms/t/protocol/openid-connect/auth?{stolen}"));
    assert_eq!(status, 400);
    let (status, _, html) = browser.get(&format!("/realms/t/protocol/openid-connect/auth?{q}"));
    assert_eq!(status, 200);
    // form_post: the response is a page that posts code and state to the client.
    let (status, loc, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, loc), (200, None));
    assert!(html.contains(&format!("action=\"{REDIRECT}\"")), "{html}");
    assert!(html.contains("name=\"state\" value=\"par-state\""));
    let code_at = html.find("name=\"code\" value=\"").unwrap() + "name=\"code\" value=\"".len();
    let code = &html[code_at..code_at + html[code_at..].find('"').unwrap()];
    assert_eq!(
        exchange(&api, "t", &secret, code, Some(&pkce.verifier)).status,
        200
    );
    // A request_uri is single-use.
    let (status, loc, _) = browser.get(&format!("/realms/t/protocol/openid-connect/auth?{q}"));
    assert_eq!((status, loc), (400, None));

    // prompt=login shows the form despite the SSO session; max_age=0 too.
    let extra = [
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (status, _, _) = browser.get(&browser.auth_url("t", "app", &extra));
    assert_eq!(status, 302, "SSO");
    let mut with_prompt = extra.to_vec();
    with_prompt.push(("prompt", "login"));
    assert_eq!(
        browser.get(&browser.auth_url("t", "app", &with_prompt)).0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut with_max_age = extra.to_vec();
    with_max_age.push(("max_age", "0"));
    assert_eq!(
        browser.get(&browser.auth_url("t", "app", &with_max_age)).0,
        200
    );
    // login_hint pre-fills the username.
    let mut with_hint = with_prompt.clone();
    with_hint.push(("login_hint", "alice@example.com"));
    let (_, _, html) = browser.get(&browser.auth_url("t", "app", &with_hint));
    assert!(html.contains("value=\"alice@example.com\""), "{html}");

    // A per-client signature algorithm overrides the realm's.
    let uuid = api.get("/admin/realms/t/clients?clientId=app").body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.put(
        &format!("/admin/realms/t/clients/{uuid}"),
        &json!({"attributes": {"access.token.signed.response.alg": "ES256"}}),
    );
    assert_eq!(r.status, 204);
    let tokens = api.alice_tokens("t", &secret, "openid");
    assert_eq!(
        crate::api::header(tokens["access_token"].as_str().unwrap())["alg"],
        "ES256"
    );
    assert_eq!(
        crate::api::header(tokens["id_token"].as_str().unwrap())["alg"],
        "RS256"
    );
}

#[test]
fn update_password_says_which_policy_rule_failed() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    api.put(
        &format!("/admin/realms/t/users/{alice}/reset-password"),
        &json!({"type": "password", "value": "Temp-1", "temporary": true}),
    );
    api.put(
        "/admin/realms/t",
        &json!({"passwordPolicy": "length(10) and digits(2)"}),
    );
    let browser = Browser::new(&server);
    let pkce = new_pkce();
    let (_, _, html) = browser.get(&browser.auth_url(
        "t",
        "app",
        &[
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    ));
    let (_, _, html) = browser.login(&html, "alice", "Temp-1");
    let mut form = find_form(&html, "kc-passwd-update-form").unwrap();
    form.set("password-new", "only-1-digit");
    form.set("password-confirm", "only-1-digit");
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    assert!(
        html.contains("must contain at least 2 numerical digits"),
        "{html}"
    );
    let mut form = find_form(&html, "kc-passwd-update-form").unwrap();
    form.set("password-new", "now-has-22-digits");
    form.set("password-confirm", "now-has-22-digits");
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(status, 302);
    let code = param(&loc.unwrap(), "code").unwrap();
    assert_eq!(
        exchange(&api, "t", &secret, &code, Some(&pkce.verifier)).status,
        200
    );
}

/// The key shown on the set-up page, as the HMAC secret an authenticator app derives.
pub fn totp_secret_from_page(html: &str) -> String {
    let start = html
        .find("id=\"kc-totp-secret-key\"")
        .expect("key on the page");
    let key = &html[start..];
    let key = &key[key.find('>').unwrap() + 1..key.find('<').unwrap()];
    let secret = totp_rs::Secret::try_from_base32(key.trim()).expect("base32 key");
    String::from_utf8(secret.as_bytes().to_vec()).unwrap()
}

/// The realm's default OTP policy.
pub const DEFAULT_OTP: portcullis::idp::otp::OtpPolicy = portcullis::idp::otp::OtpPolicy {
    algorithm: "HmacSHA1",
    digits: 6,
    period: 30,
    look_ahead: 1,
};

pub fn totp_now(secret: &str) -> String {
    totp_at(&DEFAULT_OTP, secret, 0)
}

/// The code `offset` seconds from now (the realm accepts one step ahead).
pub fn totp_at(policy: &portcullis::idp::otp::OtpPolicy, secret: &str, offset: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    portcullis::idp::otp::code(policy, secret, now + offset).unwrap()
}

#[test]
fn configure_totp_then_every_login_needs_a_fresh_code() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let r = api.put(
        &format!("/admin/realms/t/users/{alice}"),
        &json!({"requiredActions": ["CONFIGURE_TOTP"]}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    // The password grant refuses until the set-up is done.
    let grant = |otp: Option<&str>| {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", secret.as_str()),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ];
        if let Some(otp) = otp {
            form.push(("otp", otp));
        }
        api.token("t", &form)
    };
    assert_eq!(grant(None).status, 400);

    let browser = Browser::new(&server);
    let (_, _, html) = browser.get(&browser.auth_url("t", "app", &[]));
    let (status, loc, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, loc), (200, None));
    assert!(
        html.contains("id=\"kc-totp-secret-qr-code\"") && html.contains("svg+xml;base64,"),
        "QR code: {html}"
    );
    let totp_secret = totp_secret_from_page(&html);
    // A wrong code keeps the user on the page with the same key.
    let mut form = find_form(&html, "kc-totp-settings-form").expect("configure TOTP form");
    form.set("totp", "000000");
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    assert!(html.contains("Invalid authenticator code"), "{html}");
    assert_eq!(totp_secret_from_page(&html), totp_secret);
    let mut form = find_form(&html, "kc-totp-settings-form").unwrap();
    let setup_code = totp_now(&totp_secret);
    form.set("totp", &setup_code);
    form.set("userLabel", "phone");
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(status, 302);
    assert!(param(&loc.unwrap(), "code").is_some());

    // Stored in Keycloak's credential layout; the action is done.
    let user: Value = api.get(&format!("/admin/realms/t/users/{alice}")).body;
    assert_eq!(user["requiredActions"], json!([]));
    assert_eq!(user["totp"], true);
    let creds: Value = api
        .get(&format!("/admin/realms/t/users/{alice}/credentials"))
        .body;
    let otp = creds
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "otp")
        .expect("otp credential");
    assert_eq!(otp["userLabel"], "phone");
    assert!(otp.get("secretData").is_none(), "secret leaked: {otp}");

    // A new browser: the password alone is not enough.
    let browser = Browser::new(&server);
    let (_, _, html) = browser.get(&browser.auth_url("t", "app", &[]));
    let (status, loc, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, loc), (200, None));
    let mut form = find_form(&html, "kc-otp-login-form").expect("OTP form");
    // A reload shows the OTP step again, not a way around it.
    let (status, _, reloaded) = browser.get(&form.action);
    assert_eq!(status, 200);
    assert!(
        find_form(&reloaded, "kc-otp-login-form").is_some(),
        "{reloaded}"
    );
    // The code that completed the set-up cannot be replayed.
    form.set("otp", &setup_code);
    let (status, loc, html) = browser.submit(&form);
    assert_eq!((status, loc), (200, None));
    assert!(html.contains("Invalid authenticator code"), "{html}");
    // Skipping the OTP step by posting to the required-action endpoint does not work.
    let mut skip = find_form(&html, "kc-otp-login-form").unwrap();
    skip.action = skip.action.replace("/otp?", "/required-action?");
    skip.set("password-new", "Other-pass-9");
    skip.set("password-confirm", "Other-pass-9");
    let (status, loc, _) = browser.submit(&skip);
    assert!(loc.is_none() && status >= 400, "{status}");

    // The password grant wants the code too, and takes each code once.
    assert_eq!(grant(None).status, 401);
    assert_eq!(grant(Some("12345")).status, 401);
    // The next time step's code (inside the look-ahead window) has not been used.
    let code = totp_at(&DEFAULT_OTP, &totp_secret, 30);
    let r = grant(Some(&code));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(grant(Some(&code)).status, 401, "replayed code accepted");

    // An administrator removes the authenticator (a lost phone): the password is enough again.
    let otp_id = otp["id"].as_str().unwrap();
    let r = api.delete(&format!(
        "/admin/realms/t/users/{alice}/credentials/{otp_id}"
    ));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(grant(None).status, 200);
}

#[test]
fn otp_policy_is_validated_and_wrong_codes_lock_the_account() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    for bad in [
        json!({"otpPolicyDigits": 7}),
        json!({"otpPolicyAlgorithm": "HmacMD5"}),
        json!({"otpPolicyPeriod": 5}),
        json!({"otpPolicyType": "hotp"}),
    ] {
        let r = api.put("/admin/realms/t", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.body.is_object(), "a JSON error for {bad}");
    }
    let r = api.put(
        "/admin/realms/t",
        &json!({"otpPolicyDigits": 8, "otpPolicyAlgorithm": "HmacSHA256",
                "bruteForceProtected": true, "failureFactor": 2, "waitIncrementSeconds": 600}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let realm: Value = api.get("/admin/realms/t").body;
    assert_eq!(realm["otpPolicyDigits"], 8);
    assert_eq!(realm["otpPolicyAlgorithm"], "HmacSHA256");

    let r = api.put(
        "/admin/realms/t/events/config",
        &json!({"eventsEnabled": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);

    // The set-up page follows the policy; its GET reload shows the same key.
    let r = api.put(
        &format!("/admin/realms/t/users/{alice}"),
        &json!({"requiredActions": ["CONFIGURE_TOTP"]}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let browser = Browser::new(&server);
    let (_, _, html) = browser.get(&browser.auth_url("t", "app", &[]));
    let (_, _, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert!(html.contains("8 / 30s / HmacSHA256"), "{html}");
    let key = totp_secret_from_page(&html);
    let form = find_form(&html, "kc-totp-settings-form").unwrap();
    let (status, _, reloaded) = browser.get(&form.action);
    assert_eq!(status, 200);
    assert_eq!(totp_secret_from_page(&reloaded), key);
    let policy = portcullis::idp::otp::OtpPolicy {
        algorithm: "HmacSHA256",
        digits: 8,
        period: 30,
        look_ahead: 1,
    };
    let mut form = find_form(&reloaded, "kc-totp-settings-form").unwrap();
    form.set("totp", &totp_at(&policy, &key, 0));
    let (status, loc, _) = browser.submit(&form);
    assert_eq!(status, 302, "set-up with an 8-digit SHA-256 code");
    assert!(param(&loc.unwrap(), "code").is_some());
    let events: Value = api.get("/admin/realms/t/events?type=UPDATE_TOTP").body;
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");

    // Two wrong codes lock the account: then even a right code is refused.
    let grant = |otp: &str| {
        api.token(
            "t",
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", secret.as_str()),
                ("username", "alice"),
                ("password", "Alice-pass-1"),
                ("otp", otp),
            ],
        )
        .status
    };
    assert_eq!(grant("00000000"), 401);
    assert_eq!(grant("11111111"), 401);
    let next = totp_at(&policy, &key, 30);
    assert_eq!(grant(&next), 401, "locked");
    let status: Value = api
        .get(&format!(
            "/admin/realms/t/attack-detection/brute-force/users/{alice}"
        ))
        .body;
    assert_eq!(status["disabled"], true);
}
