//! The less common grants and client authentications: device code, offline tokens,
//! `client_secret_jwt` and `private_key_jwt`.

use serde_json::{json, Value};

use crate::api::{claims, Api};
use crate::browser::{find_form, Browser};
use crate::harness::{Options, TestServer};

fn client_uuid(api: &Api, realm: &str, client_id: &str) -> String {
    api.get(&format!(
        "/admin/realms/{realm}/clients?clientId={client_id}"
    ))
    .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn device_authorization_grant() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let r = api.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "tv", "publicClient": true, "attributes": {"oauth2.device.authorization.grant.enabled": "true"}}),
    );
    assert_eq!(r.status, 201);
    // A client without the switch may not start the flow.
    let r = api.form("t", "auth/device", &[("client_id", "admin-cli")]);
    assert_eq!(r.body["error"], "unauthorized_client");

    let r = api.form(
        "t",
        "auth/device",
        &[("client_id", "tv"), ("scope", "openid")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let device_code = r.body["device_code"].as_str().unwrap().to_string();
    let user_code = r.body["user_code"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["verification_uri"],
        format!("http://{}/realms/t/device", server.http).as_str()
    );
    assert_eq!(r.body["interval"], 5);
    let poll = || {
        api.token(
            "t",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "tv"),
                ("device_code", &device_code),
            ],
        )
    };
    assert_eq!(poll().body["error"], "authorization_pending");
    assert_eq!(
        poll().body["error"],
        "slow_down",
        "polling faster than the interval"
    );

    // The user enters the code (lower case, no dash is fine), logs in, approves.
    let browser = Browser::new(&server);
    let (status, _, html) = browser.get("/realms/t/device");
    assert_eq!(status, 200);
    let mut form = find_form(&html, "kc-device-form").expect("device form");
    form.set("user_code", "WRONGCODE");
    let (_, _, html) = browser.submit(&form);
    assert!(
        html.contains("kc-device-form"),
        "a wrong code shows the form again"
    );
    let mut form = find_form(&html, "kc-device-form").unwrap();
    form.set("user_code", &user_code.replace('-', "").to_lowercase());
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    let (status, _, html) = browser.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Device"), "{html}");

    // Let the interval pass, then the device gets its tokens, once.
    std::thread::sleep(std::time::Duration::from_millis(5100));
    let r = poll();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        claims(r.body["access_token"].as_str().unwrap())["preferred_username"],
        "alice"
    );
    assert!(r.body["id_token"].is_string());
    assert_eq!(poll().status, 400, "the device code is single-use");
}

#[test]
fn offline_tokens_survive_logout_of_the_sso_session() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let tokens = api.alice_tokens("t", &secret, "openid offline_access");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(claims(refresh)["typ"], "Offline");
    assert_eq!(tokens["refresh_expires_in"], 0);
    assert!(tokens["scope"].as_str().unwrap().contains("offline_access"));
    let online = api.alice_tokens("t", &secret, "openid");
    // Ending the user's SSO sessions from the admin API...
    let sessions = api
        .get(&format!("/admin/realms/t/users/{alice}/sessions"))
        .body;
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "offline sessions are not listed: {sessions}"
    );
    let refresh = r_refresh(&api, &secret, refresh);
    // Logging the user out ends the SSO session; the offline token keeps working.
    assert_eq!(
        api.post(&format!("/admin/realms/t/users/{alice}/logout"), &json!({}))
            .status,
        204
    );
    let r = api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("refresh_token", online["refresh_token"].as_str().unwrap()),
        ],
    );
    assert_eq!(r.status, 400, "the online session ended");
    let again = api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("refresh_token", refresh.as_str()),
        ],
    );
    assert_eq!(again.status, 200, "{}", again.text);
    // A user without the offline_access role cannot get one.
    let del = api
        .client
        .delete(api.url(&format!(
            "/admin/realms/t/users/{alice}/role-mappings/realm"
        )))
        .bearer_auth(api.token.as_ref().unwrap())
        .json(&json!([{"name": "default-roles-t"}]))
        .send()
        .unwrap();
    assert_eq!(del.status(), 204);
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
            ("scope", "offline_access"),
        ],
    );
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.text);
}

#[test]
fn client_secret_jwt_and_private_key_jwt() {
    use portcullis::crypto::jwt::{generate_pkcs8, sign_hs256, Algorithm, SigningKey};
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let token_endpoint = format!(
        "http://{}/realms/t/protocol/openid-connect/token",
        server.http
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let assertion_claims = |client: &str, jti: &str| json!({"iss": client, "sub": client, "aud": token_endpoint, "exp": now + 60, "iat": now, "jti": jti});

    // client_secret_jwt: HS256 with the client secret.
    api.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "hs", "secret": "hs-secret-value", "serviceAccountsEnabled": true, "clientAuthenticatorType": "client-secret-jwt"}),
    );
    let grant = |client: &str, assertion: &str| {
        api.token(
            "t",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
                ("client_id", client),
            ],
        )
    };
    let assertion = sign_hs256(&assertion_claims("hs", "j1"), b"hs-secret-value").unwrap();
    assert_eq!(grant("hs", &assertion).status, 200);
    assert_eq!(
        grant("hs", &assertion).status,
        401,
        "a replayed assertion is refused"
    );
    let wrong = sign_hs256(&assertion_claims("hs", "j2"), b"other").unwrap();
    assert_eq!(grant("hs", &wrong).status, 401);

    // private_key_jwt: ES256 with a key registered as a JWKS.
    let key = SigningKey::from_pkcs8(
        "client-key",
        Algorithm::ES256,
        &generate_pkcs8(Algorithm::ES256).unwrap(),
    )
    .unwrap();
    let jwks = json!({"keys": [key.verifying_key().jwk()]}).to_string();
    api.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "pk", "serviceAccountsEnabled": true, "clientAuthenticatorType": "client-jwt", "attributes": {"jwks.string": jwks}}),
    );
    let assertion = key.sign(&assertion_claims("pk", "k1")).unwrap();
    let r = grant("pk", &assertion);
    assert_eq!(r.status, 200, "{}", r.text);
    // Another key, an expired assertion, or a secret instead: refused.
    let other = SigningKey::from_pkcs8(
        "client-key",
        Algorithm::ES256,
        &generate_pkcs8(Algorithm::ES256).unwrap(),
    )
    .unwrap();
    assert_eq!(
        grant("pk", &other.sign(&assertion_claims("pk", "k2")).unwrap()).status,
        401
    );
    let mut expired = assertion_claims("pk", "k3");
    expired["exp"] = json!(now - 10);
    assert_eq!(grant("pk", &key.sign(&expired).unwrap()).status, 401);
    assert!(!client_uuid(&api, "t", "pk").is_empty());
    let r = api.token(
        "t",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "pk"),
            ("client_secret", "anything"),
        ],
    );
    assert_eq!(r.status, 401);
}

/// Refresh once and return the new (rotated) refresh token.
fn r_refresh(api: &Api, secret: &str, refresh: &str) -> String {
    let r = api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("refresh_token", refresh),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["refresh_token"].as_str().unwrap().to_string()
}

#[test]
fn realm_ssl_required_guards_plain_http() {
    // The loopback test client is a trusted proxy; the client it forwards for decides.
    let server = TestServer::start_with(Options {
        extra_config: "[proxy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n".into(),
        ..Default::default()
    });
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("s");
    let client = server.client();
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("client_secret", secret.as_str()),
        ("username", "alice"),
        ("password", "Alice-pass-1"),
    ];
    let token = |https: bool, headers: &[(&str, &str)]| {
        let path = "/realms/s/protocol/openid-connect/token";
        let url = if https {
            server.https_url(path)
        } else {
            server.http_url(path)
        };
        let mut request = client.post(url).form(&form);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request.send().unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    // `external` (the default): local clients may use plain HTTP, public ones may not.
    assert_eq!(token(false, &[]).0, 200);
    let (status, body) = token(false, &[("x-forwarded-for", "203.0.113.9")]);
    assert_eq!(status, 403, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "HTTPS required");
    // The trusted proxy terminated TLS.
    let forwarded = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(token(false, &forwarded).0, 200);
    assert_eq!(token(true, &[("x-forwarded-for", "203.0.113.9")]).0, 200);
    // Browsers get a page.
    let r = client
        .get(server.http_url(
            "/realms/s/protocol/openid-connect/auth?client_id=app&response_type=code&redirect_uri=http://localhost:3000/cb",
        ))
        .header("accept", "text/html")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().unwrap().contains("HTTPS required"));
    // Discovery stays reachable.
    let r = client
        .get(server.http_url("/realms/s/.well-known/openid-configuration"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // `all`: even local plain HTTP is refused; TLS works.
    let r = api.put("/admin/realms/s", &json!({"sslRequired": "all"}));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(token(false, &[]).0, 403);
    assert_eq!(token(true, &[]).0, 200);
    // Only a trusted proxy's X-Forwarded-Proto counts: an untrusted peer's is ignored
    // (here the peer is trusted, so the header is believed).
    assert_eq!(token(false, &[("x-forwarded-proto", "https")]).0, 200);

    // The admin API follows the master realm (`external` by default).
    let r = client
        .get(server.http_url("/admin/realms/s"))
        .bearer_auth(api.token.as_deref().unwrap())
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client
        .get(server.http_url("/admin/realms/s"))
        .bearer_auth(api.token.as_deref().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "a local administrator");

    // `none`: plain HTTP from anywhere.
    let r = api.put("/admin/realms/s", &json!({"sslRequired": "none"}));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(token(false, &[("x-forwarded-for", "203.0.113.9")]).0, 200);
}

#[test]
fn forwarded_proto_from_an_untrusted_peer_is_ignored() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("s");
    let r = api.put("/admin/realms/s", &json!({"sslRequired": "all"}));
    assert_eq!(r.status, 204, "{}", r.text);
    let r = server
        .client()
        .post(server.http_url("/realms/s/protocol/openid-connect/token"))
        .header("x-forwarded-proto", "https")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}
