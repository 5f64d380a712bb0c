//! In-process tests of the OIDC endpoints with a clock the test moves: expiry of access
//! tokens, refresh tokens (session idle and maximum lifetime) and authorization codes.

use serde_json::{json, Value};

use crate::idp::testing::Fixture;
use crate::store::{AuthCodeRecord, ClientRecord, RealmRecord, UserRecord};

/// Realm `t` (session idle 600 s, maximum 3600 s) with the confidential client `app` and
/// the user `alice` (id `u`, password `pw`).
fn fixture() -> Fixture {
    let f = Fixture::bare();
    f.create_realm(RealmRecord {
        name: "t".into(),
        sso_session_idle_timeout: 600,
        sso_session_max_lifespan: 3600,
        ..Default::default()
    });
    f.add_client(
        "t",
        ClientRecord {
            id: "c".into(),
            client_id: "app".into(),
            secret: Some("s".into()),
            enabled: true,
            direct_access_grants_enabled: true,
            full_scope_allowed: true,
            ..Default::default()
        },
    );
    f.add_user_record(
        "t",
        UserRecord {
            id: "u".into(),
            username: "alice".into(),
            enabled: true,
            ..Default::default()
        },
        Some("pw"),
        false,
    );
    f
}

async fn password_grant(f: &Fixture) -> Value {
    let (status, body) = f
        .call(
            "POST",
            "/realms/t/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", "s"),
                ("username", "alice"),
                ("password", "pw"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn userinfo(f: &Fixture, token: &str) -> u16 {
    f.call(
        "GET",
        "/realms/t/protocol/openid-connect/userinfo",
        &[],
        Some(token),
    )
    .await
    .0
}

async fn refresh_grant(f: &Fixture, token: &str) -> (u16, Value) {
    f.call(
        "POST",
        "/realms/t/protocol/openid-connect/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "s"),
            ("refresh_token", token),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn access_tokens_expire_with_the_realm_lifespan() {
    let f = fixture();
    let tokens = password_grant(&f).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&f, access).await, 200);
    f.clock.advance_millis(299_000);
    assert_eq!(userinfo(&f, access).await, 200);
    f.clock.advance_millis(2_000);
    assert_eq!(
        userinfo(&f, access).await,
        401,
        "expired after accessTokenLifespan (300 s)"
    );
    let (status, body) = f
        .call(
            "POST",
            "/realms/t/protocol/openid-connect/token/introspect",
            &[
                ("client_id", "app"),
                ("client_secret", "s"),
                ("token", access),
            ],
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({"active": false})));
}

#[tokio::test]
async fn refresh_keeps_the_session_alive_until_its_maximum() {
    let f = fixture();
    let mut refresh = password_grant(&f).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Refresh every 500 s (idle timeout 600 s): the session lives until its 3600 s maximum.
    for _ in 0..7 {
        f.clock.advance_millis(500_000);
        let (status, body) = refresh_grant(&f, &refresh).await;
        assert_eq!(status, 200, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_string();
    }
    f.clock.advance_millis(200_000);
    let (status, body) = refresh_grant(&f, &refresh).await;
    assert_eq!(status, 400, "past ssoSessionMaxLifespan: {body}");
}

#[tokio::test]
async fn an_idle_session_ends() {
    let f = fixture();
    let refresh = password_grant(&f).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    f.clock.advance_millis(601_000);
    let (status, body) = refresh_grant(&f, &refresh).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn authorization_codes_expire_with_access_code_lifespan() {
    let f = fixture();
    let tokens = password_grant(&f).await;
    let sid = tokens["session_state"].as_str().unwrap().to_string();
    let realm_id = f
        .app
        .store
        .read()
        .unwrap()
        .realm_by_name("t")
        .unwrap()
        .unwrap()
        .id;
    let code_for = |code: &str| {
        f.app
            .store
            .write(|w| {
                w.put_auth_code(
                    &realm_id,
                    &super::hash_code(code),
                    &AuthCodeRecord {
                        client_id: "app".into(),
                        redirect_uri: "https://app.test/cb".into(),
                        session_id: sid.clone(),
                        user_id: "u".into(),
                        scope: "openid".into(),
                        expires_at: f.now() + 60_000,
                        ..Default::default()
                    },
                )
            })
            .unwrap()
    };
    let form = |code: &'static str| -> [(&'static str, &'static str); 5] {
        [
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("client_secret", "s"),
            ("code", code),
            ("redirect_uri", "https://app.test/cb"),
        ]
    };
    const TOKEN: &str = "/realms/t/protocol/openid-connect/token";
    code_for("fresh-code");
    assert_eq!(
        f.call("POST", TOKEN, &form("fresh-code"), None).await.0,
        200
    );
    code_for("late-code");
    f.clock.advance_millis(61_000);
    let (status, body) = f.call("POST", TOKEN, &form("late-code"), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_description"], "Code is expired");
}

#[tokio::test]
async fn brute_force_lockout_moves_with_the_clock() {
    let f = fixture();
    f.app
        .store
        .write(|w| {
            let mut r = w.realm_by_name("t")?.unwrap();
            r.brute_force_protected = true;
            r.failure_factor = 3;
            r.wait_increment_seconds = 60;
            r.quick_login_check_milli_seconds = 0;
            w.put_realm(&r)
        })
        .unwrap();
    let grant = |password: &'static str| {
        [
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", "s"),
            ("username", "alice"),
            ("password", password),
        ]
    };
    const TOKEN: &str = "/realms/t/protocol/openid-connect/token";
    for _ in 0..3 {
        f.clock.advance_millis(2_000);
        assert_eq!(f.call("POST", TOKEN, &grant("wrong"), None).await.0, 401);
    }
    // Locked: the right password gets exactly the wrong password's answer.
    let (status, body) = f.call("POST", TOKEN, &grant("pw"), None).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("Invalid user credentials"))
    );
    f.clock.advance_millis(61_000);
    assert_eq!(
        f.call("POST", TOKEN, &grant("pw"), None).await.0,
        200,
        "unlocked after waitIncrementSeconds"
    );
}

#[tokio::test]
async fn a_replayed_code_ends_only_that_clients_session() {
    let f = fixture();
    f.add_client(
        "t",
        ClientRecord {
            id: "c2".into(),
            client_id: "other".into(),
            secret: Some("s2".into()),
            enabled: true,
            standard_flow_enabled: true,
            full_scope_allowed: true,
            ..Default::default()
        },
    );
    // The user's SSO session, already holding tokens of `app`.
    let app_tokens = password_grant(&f).await;
    let sid = app_tokens["session_state"].as_str().unwrap().to_string();
    let realm_id = f.realm("t").id;
    f.app
        .store
        .write(|w| {
            w.put_auth_code(
                &realm_id,
                &super::hash_code("code-of-other"),
                &AuthCodeRecord {
                    client_id: "other".into(),
                    redirect_uri: "https://other.test/cb".into(),
                    session_id: sid.clone(),
                    user_id: "u".into(),
                    scope: "openid".into(),
                    expires_at: f.now() + 60_000,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    const TOKEN: &str = "/realms/t/protocol/openid-connect/token";
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "other"),
        ("client_secret", "s2"),
        ("code", "code-of-other"),
        ("redirect_uri", "https://other.test/cb"),
    ];
    let (status, other_tokens) = f.call("POST", TOKEN, &form, None).await;
    assert_eq!(status, 200, "{other_tokens}");
    let (status, body) = f.call("POST", TOKEN, &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // What the code issued is revoked...
    let (status, body) = f
        .call(
            "POST",
            TOKEN,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "other"),
                ("client_secret", "s2"),
                (
                    "refresh_token",
                    other_tokens["refresh_token"].as_str().unwrap(),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "Session doesn't have required client"
    );
    // ...and nothing else: the session and `app`'s tokens stay.
    let (status, body) = refresh_grant(&f, app_tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_state"].as_str(), Some(sid.as_str()));
}

#[tokio::test]
async fn introspection_follows_the_refresh_rules() {
    let f = fixture();
    let tokens = password_grant(&f).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = refresh_grant(&f, &first).await;
    assert_eq!(status, 200, "{body}");
    let introspect = |token: String| {
        let f = &f;
        async move {
            f.call(
                "POST",
                "/realms/t/protocol/openid-connect/token/introspect",
                &[
                    ("client_id", "app"),
                    ("client_secret", "s"),
                    ("token", &token),
                ],
                None,
            )
            .await
            .1["active"]
                .clone()
        }
    };
    // Without revokeRefreshToken an older refresh token is still good.
    assert_eq!(introspect(first.clone()).await, json!(true));
    f.update_realm("t", |r| r.revoke_refresh_token = true);
    assert_eq!(introspect(first).await, json!(false));
    let newest = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(newest).await, json!(true));
}
