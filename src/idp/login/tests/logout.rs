//! RP-initiated logout: with `id_token_hint` at once, without it after the user confirms
//! (from the browser that holds the session).

use serde_json::Value;

use super::{auth_url, log_in, login_fixture, REDIRECT, TOKEN};
use crate::idp::login::{AUTH_SESSION_COOKIE, IDENTITY_COOKIE, SESSION_COOKIE};
use crate::idp::testing::{page_error, Fixture, Jar};

const LOGOUT: &str = "/realms/shop/protocol/openid-connect/logout";

fn logout_url(params: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{LOGOUT}?{query}")
}

fn session_exists(f: &Fixture, tokens: &Value) -> bool {
    let realm = f.realm("shop");
    let sid = tokens["session_state"].as_str().unwrap();
    f.app
        .store
        .read()
        .unwrap()
        .session(&realm.id, sid)
        .unwrap()
        .is_some()
}

async fn refresh_status(f: &Fixture, tokens: &Value) -> u16 {
    f.call(
        "POST",
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "s"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await
    .0
}

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_session_and_goes_back() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let tokens = log_in(&f, &mut jar).await;
    let hint = tokens["id_token"].as_str().unwrap();
    // The hint's signature counts, not its age.
    f.clock.advance_millis(600_000);
    let url = logout_url(&[
        ("id_token_hint", hint),
        ("post_logout_redirect_uri", REDIRECT),
        ("state", "bye"),
    ]);
    let reply = f.browse(&url, &mut jar).await;
    assert_eq!(reply.status, 302, "{}", reply.text());
    assert_eq!(
        reply.location(),
        Some(format!("{REDIRECT}?state=bye").as_str())
    );
    for cookie in [IDENTITY_COOKIE, SESSION_COOKIE, AUTH_SESSION_COOKIE] {
        assert!(jar.get(cookie).is_none(), "{cookie} is deleted");
    }
    assert!(!session_exists(&f, &tokens));
    assert_eq!(refresh_status(&f, &tokens).await, 400);
    // The next authorization request asks for the password again.
    let page = f.browse(&auth_url(&[]), &mut jar).await;
    assert_eq!(page.status, 200);
    page.form("kc-form-login");
}

#[tokio::test]
async fn bad_logout_requests_are_refused_without_logging_out() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let tokens = log_in(&f, &mut jar).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    for (params, message) in [
        (
            vec![("id_token_hint", "not-a-token")],
            "Invalid parameter: id_token_hint",
        ),
        (
            vec![("id_token_hint", access)],
            "Invalid parameter: id_token_hint",
        ),
        (
            vec![("id_token_hint", hint), ("client_id", "admin-cli")],
            "Parameter client_id different than the client of the id_token_hint",
        ),
        (
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://evil.test/"),
            ],
            "Invalid redirect uri",
        ),
        (
            vec![("post_logout_redirect_uri", REDIRECT)],
            "Either the parameter client_id or the parameter id_token_hint is required when post_logout_redirect_uri is used.",
        ),
    ] {
        let reply = f.browse(&logout_url(&params), &mut jar).await;
        assert_eq!(reply.status, 400, "{params:?}");
        assert_eq!(page_error(&reply.text()).as_deref(), Some(message));
    }
    assert!(session_exists(&f, &tokens));
    assert_eq!(refresh_status(&f, &tokens).await, 200);
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_only_its_browser_may_confirm() {
    let f = login_fixture();
    let mut jar = Jar::default();
    let tokens = log_in(&f, &mut jar).await;
    let page = f.browse(LOGOUT, &mut jar).await;
    assert_eq!(page.status, 200);
    let confirm = page.form("kc-logout-form");
    assert!(
        session_exists(&f, &tokens),
        "nothing ends before the user confirms"
    );
    // Another browser posting the confirmation (a cross-site form, say) is refused.
    let mut other = Jar::default();
    let reply = f.submit(&confirm, &mut other).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        page_error(&reply.text()).as_deref(),
        Some("Your session has expired. Please try again.")
    );
    let tampered = confirm.clone().with("csrf_token", "x");
    assert_eq!(f.submit(&tampered, &mut jar).await.status, 400);
    assert!(session_exists(&f, &tokens));

    let done = f.submit(&confirm, &mut jar).await;
    assert_eq!(done.status, 200);
    assert!(done.text().contains("You have been signed out."));
    assert!(!session_exists(&f, &tokens));
    assert!(jar.get(IDENTITY_COOKIE).is_none());
    // Nobody logged in: nothing to confirm.
    let again = f.browse(LOGOUT, &mut jar).await;
    assert_eq!(again.status, 200);
    assert!(again.text().contains("You have been signed out."));
}

/// The events of `kind` recorded in realm `shop`.
fn events_of(f: &Fixture, kind: &str) -> Vec<crate::store::EventRecord> {
    let realm = f.realm("shop");
    f.app
        .store
        .read()
        .unwrap()
        .events(&realm.id, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

#[tokio::test]
async fn every_logout_path_records_one_logout_event() {
    let f = login_fixture();
    f.update_realm("shop", |r| r.events_enabled = true);
    // A refresh-token logout (an app's back channel) is the app's LOGOUT.
    let mut jar = Jar::default();
    let tokens = log_in(&f, &mut jar).await;
    let (status, _) = f
        .call(
            "POST",
            LOGOUT,
            &[
                ("client_id", "app"),
                ("client_secret", "s"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(!session_exists(&f, &tokens));
    let logouts = events_of(&f, "LOGOUT");
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert_eq!(logouts[0].client_id.as_deref(), Some("app"));
    assert_eq!(
        logouts[0].session_id.as_deref(),
        tokens["session_state"].as_str()
    );
    // A browser logout with a hint: one more, for that session.
    let mut jar = Jar::default();
    let tokens = log_in(&f, &mut jar).await;
    let url = logout_url(&[("id_token_hint", tokens["id_token"].as_str().unwrap())]);
    f.browse(&url, &mut jar).await;
    assert!(!session_exists(&f, &tokens));
    let logouts = events_of(&f, "LOGOUT");
    assert_eq!(logouts.len(), 2, "{logouts:?}");
    // Logging out a session that is already gone records nothing more.
    f.browse(&url, &mut jar).await;
    assert_eq!(events_of(&f, "LOGOUT").len(), 2);
}
