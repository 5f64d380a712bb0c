//! In-process tests of the browser login: the authorization endpoint, the login form,
//! required actions, the second factor, brute-force protection, logout and the binding of
//! a login to its browser. Pages are parsed like a browser would read them; cookies live
//! in a [`Jar`]; time moves with the fixture's clock.

mod actions;
mod logout;

use bytes::Bytes;
use serde_json::Value;

use super::*;
use crate::idp::testing::{page_error, Fixture, Form, Jar, Reply};
use crate::store::{ClientRecord, RealmRecord};

pub(super) const REDIRECT: &str = "https://app.test/cb";
const TOKEN: &str = "/realms/shop/protocol/openid-connect/token";

/// The realm `shop` with the confidential client `app` (secret `s`, redirect URI
/// [`REDIRECT`]) and the user `alice` (password `alice-pw`).
pub(super) fn login_fixture() -> Fixture {
    let f = Fixture::bare();
    f.create_realm(RealmRecord {
        name: "shop".into(),
        ..Default::default()
    });
    f.add_client(
        "shop",
        ClientRecord {
            id: "app-id".into(),
            client_id: "app".into(),
            secret: Some("s".into()),
            enabled: true,
            standard_flow_enabled: true,
            full_scope_allowed: true,
            redirect_uris: vec![REDIRECT.into()],
            protocol: "openid-connect".into(),
            ..Default::default()
        },
    );
    f.add_user("shop", "alice", Some("alice-pw"));
    f
}

/// The authorization request of `app`, with `state=xyz` and `extra` parameters.
pub(super) fn auth_url(extra: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "app"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "xyz"),
        ])
        .extend_pairs(extra)
        .finish();
    format!("/realms/shop/protocol/openid-connect/auth?{query}")
}

/// Start a login in the browser `jar`: its login form.
pub(super) async fn login_form(f: &Fixture, jar: &mut Jar) -> Form {
    let page = f.browse(&auth_url(&[]), jar).await;
    assert_eq!(page.status, 200, "{}", page.text());
    page.form("kc-form-login")
}

/// The login form filled in.
pub(super) fn filled(form: &Form, username: &str, password: &str) -> Form {
    form.clone()
        .with("username", username)
        .with("password", password)
}

/// The code (and its `state`) a finished login sent to the client.
pub(super) fn code_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 302, "{}", reply.text());
    let location = reply.location().unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let params = reply.redirect_params();
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some("https://idp.test/realms/shop")
    );
    params["code"].clone()
}

/// Redeem an authorization code of `app`.
pub(super) async fn exchange(f: &Fixture, code: &str) -> (u16, Value) {
    f.call(
        "POST",
        TOKEN,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("client_secret", "s"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        None,
    )
    .await
}

/// A whole login of `alice` in `jar`; the client's tokens.
pub(super) async fn log_in(f: &Fixture, jar: &mut Jar) -> Value {
    let form = login_form(f, jar).await;
    let done = f.submit(&filled(&form, "alice", "alice-pw"), jar).await;
    let (status, tokens) = exchange(f, &code_of(&done)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn wrong_then_right_password_sends_a_code_to_the_client() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    assert!(
        jar.get(AUTH_SESSION_COOKIE).is_some(),
        "the login is bound to this browser"
    );
    assert!(form
        .action
        .starts_with("/realms/shop/login-actions/authenticate?flow="));
    assert!(!form.get("csrf_token").unwrap_or("").is_empty());

    let wrong = f.submit(&filled(&form, "alice", "nope"), &mut jar).await;
    assert_eq!(wrong.status, 200);
    assert_eq!(
        page_error(&wrong.text()).as_deref(),
        Some("Invalid username or password.")
    );
    // The username stays in the form; an unknown user gets the very same page.
    let again = wrong.form("kc-form-login");
    assert_eq!(again.get("username"), Some("alice"));
    let unknown = f.submit(&filled(&form, "mallory", "nope"), &mut jar).await;
    assert_eq!(
        page_error(&unknown.text()).as_deref(),
        Some("Invalid username or password.")
    );

    let done = f
        .submit(&filled(&again, "alice", "alice-pw"), &mut jar)
        .await;
    let code = code_of(&done);
    assert!(jar.get(IDENTITY_COOKIE).is_some() && jar.get(SESSION_COOKIE).is_some());
    assert!(jar.get(AUTH_SESSION_COOKIE).is_none(), "the login is over");
    let (status, tokens) = exchange(&f, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
    assert_eq!(exchange(&f, &code).await.0, 400, "a code is used once");
}

#[tokio::test]
async fn the_sso_session_answers_at_once_unless_a_login_is_asked_for() {
    let f = login_fixture();
    let mut jar = Jar::default();
    log_in(&f, &mut jar).await;
    let again = f.browse(&auth_url(&[]), &mut jar).await;
    assert_eq!(exchange(&f, &code_of(&again)).await.0, 200);
    let forced = f.browse(&auth_url(&[("prompt", "login")]), &mut jar).await;
    assert_eq!(forced.status, 200);
    forced.form("kc-form-login");
    // A browser without the session, asking not to be prompted, is told so.
    let mut stranger = Jar::default();
    let none = f
        .browse(&auth_url(&[("prompt", "none")]), &mut stranger)
        .await;
    assert_eq!(none.status, 302);
    assert_eq!(
        none.redirect_params().get("error").map(String::as_str),
        Some("login_required")
    );
}

#[tokio::test]
async fn bad_authorization_requests_never_redirect_to_unknown_places() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let evil = auth_url(&[]).replace("app.test", "evil.test");
    let page = f.browse(&evil, &mut jar).await;
    assert_eq!(page.status, 400);
    assert_eq!(
        page_error(&page.text()).as_deref(),
        Some("Invalid parameter: redirect_uri")
    );
    let page = f
        .browse(
            &auth_url(&[]).replace("client_id=app", "client_id=nope"),
            &mut jar,
        )
        .await;
    assert_eq!(
        (page.status, page_error(&page.text()).as_deref()),
        (400, Some("Client not found."))
    );
    // Once client and redirect URI are known good, errors go back to the client.
    let token = f
        .browse(
            &auth_url(&[]).replace("response_type=code", "response_type=token"),
            &mut jar,
        )
        .await;
    assert_eq!(token.status, 302);
    assert_eq!(
        token.redirect_params().get("error").map(String::as_str),
        Some("unsupported_response_type")
    );
}

/// What a refused form post looks like: a 400 page with `message`, and no login.
fn refused(reply: &Reply, message: &str, jar: &Jar) {
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(page_error(&reply.text()).as_deref(), Some(message));
    assert!(reply.location().is_none());
    assert!(jar.get(IDENTITY_COOKIE).is_none());
}

#[tokio::test]
async fn a_login_form_is_refused_from_another_browser() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let form = filled(&login_form(&f, &mut jar).await, "alice", "alice-pw");
    let timeout = "Your login attempt timed out. Please sign in again.";
    // No cookie at all.
    let mut bare = Jar::default();
    refused(&f.submit(&form, &mut bare).await, timeout, &bare);
    // A cookie, but not the one of this login.
    let mut forged = Jar::default();
    forged.set(AUTH_SESSION_COOKIE, "guessed");
    refused(&f.submit(&form, &mut forged).await, timeout, &forged);
    // Another browser's own login does not make this one's form valid.
    let mut other = Jar::default();
    login_form(&f, &mut other).await;
    refused(&f.submit(&form, &mut other).await, timeout, &other);
    // The right browser without the form's CSRF token.
    let expired = "Your session has expired. Please try again.";
    let tampered = form.clone().with("csrf_token", "x");
    refused(&f.submit(&tampered, &mut jar).await, expired, &jar);
    let mut missing = form.clone();
    missing.fields.retain(|(k, _)| k != "csrf_token");
    refused(&f.submit(&missing, &mut jar).await, expired, &jar);
    // The flow survived all that: the real browser still logs in.
    code_of(&f.submit(&form, &mut jar).await);
}

#[tokio::test]
async fn a_login_left_too_long_times_out() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let form = filled(&login_form(&f, &mut jar).await, "alice", "alice-pw");
    f.clock.advance_millis(31 * 60 * 1000);
    let reply = f.submit(&form, &mut jar).await;
    refused(
        &reply,
        "Your login attempt timed out. Please sign in again.",
        &jar,
    );
}

#[test]
fn cookies_are_parsed_from_any_header() {
    let request = http::Request::builder()
        .header("cookie", "a=1; KEYCLOAK_IDENTITY=s.x")
        .header("cookie", "b=2")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(cookie(&request, IDENTITY_COOKIE), Some("s.x"));
    assert_eq!(cookie(&request, "b"), Some("2"));
    assert_eq!(cookie(&request, "c"), None);
}

#[test]
fn set_cookie_attributes() {
    let tls = RequestInfo {
        peer: None,
        tls: true,
    };
    let c = set_cookie(IDENTITY_COOKIE, "v", "my realm", &tls, true, None);
    assert_eq!(
        c,
        "KEYCLOAK_IDENTITY=v; Path=/realms/my%20realm/; SameSite=Lax; HttpOnly; Secure"
    );
    let plain = RequestInfo {
        peer: None,
        tls: false,
    };
    assert!(!set_cookie(SESSION_COOKIE, "v", "r", &plain, false, Some(0)).contains("HttpOnly"));
}
