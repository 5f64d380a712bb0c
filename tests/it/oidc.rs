//! The OIDC provider over HTTP: discovery, keys, grants, userinfo, introspection,
//! revocation, and the attacks on them.

use serde_json::{json, Value};

use crate::api::{claims, header, Api};
use crate::harness::TestServer;

#[test]
fn discovery_and_keys_match_the_tokens() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let r = api.get("/realms/master/.well-known/openid-configuration");
    assert_eq!(r.status, 200);
    let d = &r.body;
    let issuer = format!("http://{}/realms/master", server.http);
    assert_eq!(d["issuer"], issuer.as_str());
    assert_eq!(
        d["token_endpoint"],
        format!("{issuer}/protocol/openid-connect/token").as_str()
    );
    assert_eq!(
        d["jwks_uri"],
        format!("{issuer}/protocol/openid-connect/certs").as_str()
    );
    assert_eq!(
        d["end_session_endpoint"],
        format!("{issuer}/protocol/openid-connect/logout").as_str()
    );
    for field in [
        "userinfo_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "authorization_endpoint",
    ] {
        assert!(d[field].as_str().unwrap().starts_with(&issuer), "{field}");
    }
    assert_eq!(
        d["code_challenge_methods_supported"],
        json!(["plain", "S256"])
    );
    assert_eq!(
        d["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        api.get("/realms/master/.well-known/oauth-authorization-server")
            .body["issuer"],
        issuer.as_str()
    );

    let jwks = api.get("/realms/master/protocol/openid-connect/certs").body;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let token = api.token.clone().unwrap();
    let h = header(&token);
    assert_eq!(h["alg"], "RS256", "RS256 is the default");
    let kid = h["kid"].as_str().unwrap();
    let key = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("token kid is in the JWKS");
    assert_eq!(key["kty"], "RSA");

    let info = api.get("/realms/master").body;
    assert_eq!(info["realm"], "master");
    let public_key = info["public_key"].as_str().unwrap();
    assert!(public_key.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));

    // The RSA key carries its self-signed certificate (Keycloak's x5c): subject CN = the
    // realm, the same public key, thumbprints; the admin API shows the same certificate.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let x5c = key["x5c"][0].as_str().expect("x5c");
    let der = b64.decode(x5c).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "master");
    assert_eq!(
        cert.public_key().raw,
        b64.decode(public_key).unwrap().as_slice()
    );
    assert!(
        key["x5t"].is_string() && key["x5t#S256"].is_string(),
        "{key}"
    );
    let admin_keys = api.get("/admin/realms/master/keys").body;
    let listed = admin_keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    assert_eq!(listed["certificate"], x5c);

    assert_eq!(
        api.get("/realms/nope/.well-known/openid-configuration")
            .status,
        404
    );
}

#[test]
fn seed_guide_admin_token_and_realm_creation() {
    // The seed's curl commands, in order: token via admin-cli, create realm, create user,
    // reset password, create client, realm role, client role, list roles.
    let server = TestServer::start();
    let api = Api::admin(&server);
    let access = claims(api.token.as_deref().unwrap());
    assert_eq!(access["typ"], "Bearer");
    assert_eq!(access["azp"], "admin-cli");
    assert_eq!(access["preferred_username"], "admin");
    assert!(access["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("admin")));

    let r = api.post(
        "/admin/realms",
        &json!({"realm": "newrealm", "enabled": true, "displayName": "New Realm"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("/admin/realms/newrealm"));
    let realm = api.get("/admin/realms/newrealm").body;
    assert_eq!(realm["displayName"], "New Realm");
    assert_eq!(realm["accessTokenLifespan"], 300);

    let r = api.post(
        "/admin/realms/newrealm/users",
        &json!({"username": "Jane", "enabled": true, "email": "jane@example.com", "firstName": "Jane", "lastName": "Doe"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let jane = r.location_id();
    let r = api.put(
        &format!("/admin/realms/newrealm/users/{jane}/reset-password"),
        &json!({"type": "password", "value": "SecurePass!123", "temporary": false}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let users = api.get("/admin/realms/newrealm/users?username=jane").body;
    assert_eq!(
        users[0]["username"], "jane",
        "usernames are stored lower-case"
    );

    let r = api.post(
        "/admin/realms/newrealm/clients",
        &json!({"clientId": "my-app", "enabled": true, "publicClient": false, "redirectUris": ["https://app.example.com/*"], "directAccessGrantsEnabled": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let client_uuid = r.location_id();
    assert_eq!(r.status, 201);
    assert_eq!(
        api.post(
            "/admin/realms/newrealm/roles",
            &json!({"name": "editor", "description": "Can edit"})
        )
        .status,
        201
    );
    assert_eq!(
        api.post(
            &format!("/admin/realms/newrealm/clients/{client_uuid}/roles"),
            &json!({"name": "app-admin"})
        )
        .status,
        201
    );
    let roles = api.get("/admin/realms/newrealm/roles").body;
    assert!(roles
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "editor"));
    let r = api.post(
        &format!("/admin/realms/newrealm/users/{jane}/role-mappings/realm"),
        &json!([{"name": "editor"}]),
    );
    assert_eq!(r.status, 204);
    let app_admin = api
        .get(&format!(
            "/admin/realms/newrealm/clients/{client_uuid}/roles/app-admin"
        ))
        .body;
    let r = api.post(
        &format!("/admin/realms/newrealm/users/{jane}/role-mappings/clients/{client_uuid}"),
        &json!([app_admin]),
    );
    assert_eq!(r.status, 204, "{}", r.text);

    // Jane logs in and her token carries both roles.
    let secret = api
        .get(&format!(
            "/admin/realms/newrealm/clients/{client_uuid}/client-secret"
        ))
        .body["value"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.token(
        "newrealm",
        &[
            ("grant_type", "password"),
            ("client_id", "my-app"),
            ("client_secret", &secret),
            ("username", "jane"),
            ("password", "SecurePass!123"),
            ("scope", "openid"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for field in [
        "access_token",
        "refresh_token",
        "id_token",
        "session_state",
        "scope",
    ] {
        assert!(r.body[field].is_string(), "{field} in {}", r.text);
    }
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 300);
    assert_eq!(r.body["not-before-policy"], 0);
    let at = claims(r.body["access_token"].as_str().unwrap());
    assert!(at["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("editor")));
    assert!(
        at["realm_access"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access")),
        "default roles"
    );
    assert_eq!(
        at["resource_access"]["my-app"]["roles"],
        json!(["app-admin"])
    );
    assert_eq!(
        at["resource_access"]["account"]["roles"],
        json!(["manage-account", "manage-account-links", "view-profile"])
    );
    assert_eq!(
        at["aud"], "account",
        "aud lists other clients whose roles are in the token"
    );
    assert_eq!(
        at["iss"],
        format!("http://{}/realms/newrealm", server.http).as_str()
    );
    assert_eq!(at["name"], "Jane Doe");
    assert_eq!(at["email"], "jane@example.com");
    assert_eq!(at["sid"], r.body["session_state"]);
    let id = claims(r.body["id_token"].as_str().unwrap());
    assert_eq!(id["typ"], "ID");
    assert_eq!(id["aud"], "my-app");
    assert!(id["at_hash"].is_string());
}

#[test]
fn bad_credentials_and_clients_get_keycloak_errors() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let grant = |user: &str, password: &str, client_secret: &str| {
        api.token(
            "t",
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", client_secret),
                ("username", user),
                ("password", password),
            ],
        )
    };
    let wrong = grant("alice", "nope", &secret);
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        json!({"error": "invalid_grant", "error_description": "Invalid user credentials"})
    );
    // An unknown user gets exactly the same answer: no user enumeration.
    let unknown = grant("nobody", "nope", &secret);
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));

    let bad_client = grant("alice", "Alice-pass-1", "wrong-secret");
    assert_eq!(bad_client.status, 401);
    assert_eq!(bad_client.body["error"], "invalid_client");
    assert_eq!(
        bad_client.header("www-authenticate"),
        Some("Basic realm=\"t\"")
    );

    let r = api.token(
        "t",
        &[
            ("grant_type", "magic"),
            ("client_id", "app"),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = api.token("t", &[("client_id", "app"), ("client_secret", &secret)]);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
        ],
    );
    assert_eq!(r.body["error_description"], "Missing parameter: password");
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
            ("scope", "openid admin"),
        ],
    );
    assert_eq!(r.body["error"], "invalid_scope");
    let r = api.token("nope", &[("grant_type", "password")]);
    assert_eq!(r.status, 404);
    // A parameter given twice is refused.
    let r = api
        .client
        .post(api.url("/realms/t/protocol/openid-connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=client_credentials&client_id=app")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    // JSON instead of a form is a clear 400.
    let r = api
        .client
        .post(api.url("/realms/t/protocol/openid-connect/token"))
        .json(&json!({"grant_type": "password"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    // Client secret via HTTP Basic works too (client_secret_basic).
    let r = api
        .client
        .post(api.url("/realms/t/protocol/openid-connect/token"))
        .basic_auth("app", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // A temporary password must be changed first.
    let users = api
        .get("/admin/realms/t/users?username=alice&exact=true")
        .body;
    let id = users[0]["id"].as_str().unwrap();
    api.put(
        &format!("/admin/realms/t/users/{id}/reset-password"),
        &json!({"type": "password", "value": "Temp-pass-2", "temporary": true}),
    );
    let r = grant("alice", "Temp-pass-2", &secret);
    assert_eq!(
        (r.status, r.body["error_description"].as_str()),
        (400, Some("Account is not fully set up"))
    );

    // A disabled user with the right password.
    api.put(
        &format!("/admin/realms/t/users/{id}/reset-password"),
        &json!({"type": "password", "value": "Alice-pass-1", "temporary": false}),
    );
    api.put(
        &format!("/admin/realms/t/users/{id}"),
        &json!({"enabled": false}),
    );
    let r = grant("alice", "Alice-pass-1", &secret);
    assert_eq!(r.body["error_description"], "Account disabled");
    assert_eq!(
        grant("alice", "wrong", &secret).body["error_description"],
        "Invalid user credentials"
    );
}

#[test]
fn refresh_tokens_follow_the_realms_revoke_refresh_token() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let first = api.alice_tokens("t", &secret, "openid");
    let refresh = |token: &str| {
        api.token(
            "t",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "app"),
                ("client_secret", &secret),
                ("refresh_token", token),
            ],
        )
    };
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = refresh(r1);
    assert_eq!(second.status, 200, "{}", second.text);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(claims(&r2)["typ"], "Refresh");
    assert_eq!(second.body["session_state"], first["session_state"]);
    // When the user authenticated, kept across refreshes.
    let auth_time = claims(first["access_token"].as_str().unwrap())["auth_time"].clone();
    assert!(auth_time.is_i64(), "{auth_time}");
    assert_eq!(
        claims(second.body["access_token"].as_str().unwrap())["auth_time"],
        auth_time
    );

    // Keycloak's default (revokeRefreshToken false): a refresh token may be used again, one
    // after the other and at once (an app refreshing from two threads, or retrying after a
    // timeout, stays signed in).
    assert_eq!(refresh(r1).status, 200);
    let r1_owned = r1.to_string();
    let together: Vec<u16> = std::thread::scope(|s| {
        let a = s.spawn(|| refresh(&r1_owned).status);
        let b = s.spawn(|| refresh(&r1_owned).status);
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(together, vec![200, 200]);

    // With revokeRefreshToken on: a rotated-out token is reuse. Only this client's session
    // ends: its newest token dies too, the user's SSO session (and other clients) stay.
    let r = api.put("/admin/realms/t", &json!({"revokeRefreshToken": true}));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(api.get("/admin/realms/t").body["revokeRefreshToken"], true);
    let fresh = api.alice_tokens("t", &secret, "openid");
    let a = fresh["refresh_token"].as_str().unwrap();
    let next = refresh(a);
    assert_eq!(next.status, 200, "{}", next.text);
    let b = next.body["refresh_token"].as_str().unwrap().to_string();
    let next = refresh(&b);
    assert_eq!(next.status, 200, "{}", next.text);
    let c = next.body["refresh_token"].as_str().unwrap().to_string();
    // `a` is neither the newest token nor the one last presented (`b`): stale.
    let reuse = refresh(a);
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.body["error"], "invalid_grant");
    assert_eq!(reuse.body["error_description"], "Stale token");
    let after = refresh(&c);
    assert_eq!(
        after.status, 400,
        "the client's session ended with the reuse"
    );
    let sid = fresh["session_state"].as_str().unwrap();
    let sessions = api.get(&format!(
        "/admin/realms/t/users/{}/sessions",
        claims(fresh["access_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
    ));
    assert!(
        sessions.text.contains(sid),
        "the user's session stays: {}",
        sessions.text
    );

    // With the default refreshTokenMaxReuse (0) the token last presented may not come back.
    let fresh = api.alice_tokens("t", &secret, "openid");
    let d = fresh["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(d).status, 200);
    let again = refresh(d);
    assert_eq!(
        again.body["error_description"],
        "Maximum allowed refresh token reuse exceeded"
    );

    // refreshTokenMaxReuse = 1: the newest token may be presented twice, not three times.
    let r = api.put("/admin/realms/t", &json!({"refreshTokenMaxReuse": 1}));
    assert_eq!(r.status, 204, "{}", r.text);
    let fresh = api.alice_tokens("t", &secret, "openid");
    let c = fresh["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(c).status, 200);
    assert_eq!(refresh(c).status, 200);
    let third = refresh(c);
    assert_eq!(third.status, 400);
    assert_eq!(
        third.body["error_description"],
        "Maximum allowed refresh token reuse exceeded"
    );

    // A refresh token of one client cannot be used by another.
    let fresh = api.alice_tokens("t", &secret, "openid");
    let r = api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "admin-cli"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
        ],
    );
    assert_eq!(r.status, 400);
}

#[test]
fn client_credentials_uses_the_service_account_roles() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let clients = api.get("/admin/realms/t/clients?clientId=app").body;
    let uuid = clients[0]["id"].as_str().unwrap();
    let sa = api
        .get(&format!(
            "/admin/realms/t/clients/{uuid}/service-account-user"
        ))
        .body;
    assert_eq!(sa["username"], "service-account-app");
    let sa_id = sa["id"].as_str().unwrap();
    assert_eq!(
        api.post(
            &format!("/admin/realms/t/users/{sa_id}/role-mappings/realm"),
            &json!([{"name": "user"}])
        )
        .status,
        204
    );
    let r = api.token(
        "t",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body.get("refresh_token").is_none(),
        "no refresh token for client credentials"
    );
    let at = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(at["preferred_username"], "service-account-app");
    assert_eq!(at["client_id"], "app");
    // Keycloak's service-account claims: where the client called from.
    assert_eq!(at["clientHost"], "127.0.0.1");
    assert_eq!(at["clientAddress"], "127.0.0.1");
    assert!(at.get("auth_time").is_none(), "no user authenticated: {at}");
    assert!(at["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("user")));
    // Service accounts are not listed as users.
    let users = api.get("/admin/realms/t/users").body;
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["username"] != "service-account-app"));
    // A public client cannot use the grant.
    let r = api.token(
        "t",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "admin-cli"),
        ],
    );
    assert_eq!(r.body["error"], "unauthorized_client");
}

#[test]
fn userinfo_introspection_and_revocation() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, user_id) = api.setup_realm("t");
    let tokens = api.alice_tokens("t", &secret, "openid email profile");
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = |token: &str| {
        api.client
            .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let r = userinfo(access);
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["sub"], user_id.as_str());
    assert_eq!(body["preferred_username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    // POST with the token in the body works too.
    let r = api.form("t", "userinfo", &[("access_token", access)]);
    assert_eq!(r.status, 200);

    // Introspection with client credentials.
    let r = api.form(
        "t",
        "token/introspect",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("token", access),
        ],
    );
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["client_id"], "app");
    assert_eq!(r.body["token_type"], "Bearer");
    let r = api.form(
        "t",
        "token/introspect",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("token", "garbage"),
        ],
    );
    assert_eq!(r.body, json!({"active": false}));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = api.form(
        "t",
        "token/introspect",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("token", refresh),
        ],
    );
    assert_eq!(r.body["active"], true);
    let r = api.form(
        "t",
        "token/introspect",
        &[("client_id", "admin-cli"), ("token", access)],
    );
    assert_eq!(r.status, 401, "public clients may not introspect");

    // Revoke the access token: userinfo and introspection stop accepting it.
    let r = api.form(
        "t",
        "revoke",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("token", access),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(userinfo(access).status(), 401);
    // Revoke the refresh token: it cannot be used any more.
    let r = api.form(
        "t",
        "revoke",
        &[
            ("client_id", "app"),
            ("client_secret", &secret),
            ("token", refresh),
        ],
    );
    assert_eq!(r.status, 200);
    let r = api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("refresh_token", refresh),
        ],
    );
    assert_eq!(r.status, 400);
    // Unknown tokens are not an error (RFC 7009).
    assert_eq!(
        api.form(
            "t",
            "revoke",
            &[
                ("client_id", "app"),
                ("client_secret", &secret),
                ("token", "x.y.z")
            ]
        )
        .status,
        200
    );
}

#[test]
fn forged_and_foreign_tokens_are_rejected() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    api.setup_realm("other");
    let access = api.alice_tokens("t", &secret, "openid")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let userinfo = |token: &str| {
        let r = api
            .client
            .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
            .bearer_auth(token)
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string()),
        )
    };
    assert_eq!(userinfo(&access).0, 200);
    let parts: Vec<&str> = access.split('.').collect();
    let mut payload = claims(&access);

    // alg: none
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let (status, challenge) = userinfo(&none);
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    // HS256 keyed with the realm's public key.
    let public_key = api.get("/realms/t").body["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let hs = portcullis::crypto::jwt::sign_hs256(&payload, public_key.as_bytes()).unwrap();
    assert_eq!(userinfo(&hs).0, 401);
    // A changed claim with the original signature.
    payload["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(userinfo(&forged).0, 401);
    // A foreign kid.
    let foreign_header =
        B64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "not-ours"}).to_string());
    assert_eq!(
        userinfo(&format!("{foreign_header}.{}.{}", parts[1], parts[2])).0,
        401
    );
    // A valid token of another realm.
    let other_secret = {
        let c = api.get("/admin/realms/other/clients?clientId=app").body;
        let uuid = c[0]["id"].as_str().unwrap().to_string();
        api.get(&format!("/admin/realms/other/clients/{uuid}/client-secret"))
            .body["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let other = api.alice_tokens("other", &other_secret, "openid")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(userinfo(&other).0, 401);
    // The refresh token is not an access token.
    let refresh = api.alice_tokens("t", &secret, "openid")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(userinfo(&refresh).0, 401);
    // No token at all.
    let r = api
        .client
        .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn es256_realms_sign_with_es256() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    assert_eq!(
        api.put(
            "/admin/realms/t",
            &json!({"defaultSignatureAlgorithm": "ES256"})
        )
        .status,
        204
    );
    let tokens = api.alice_tokens("t", &secret, "openid");
    assert_eq!(
        header(tokens["access_token"].as_str().unwrap())["alg"],
        "ES256"
    );
    assert_eq!(header(tokens["id_token"].as_str().unwrap())["alg"], "ES256");
    let r = api
        .client
        .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        api.put(
            "/admin/realms/t",
            &json!({"defaultSignatureAlgorithm": "HS256"})
        )
        .status,
        400
    );
}

#[test]
fn cors_for_web_origins() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let r = api
        .client
        .post(api.url("/realms/t/protocol/openid-connect/token"))
        .header("origin", "http://localhost:3000")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ])
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = api
        .client
        .post(api.url("/realms/t/protocol/openid-connect/token"))
        .header("origin", "https://evil.example")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ])
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Dynamic client registration (RFC 7591/7592) with an initial access token: the token's
/// count and the registration access token (replaced at each update) decide who may do
/// what; anonymous registration is refused as Keycloak's default policy does.
#[test]
fn dynamic_client_registration_with_an_initial_access_token() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    admin.setup_realm("dcr");
    let r = admin.post(
        "/admin/realms/dcr/clients-initial-access",
        &json!({"expiration": 600, "count": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let iat = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(r.body["remainingCount"], 2);
    let discovery = Api::new(&server)
        .get("/realms/dcr/.well-known/openid-configuration")
        .body;
    let endpoint = discovery["registration_endpoint"]
        .as_str()
        .unwrap()
        .replace(&format!("http://{}", server.http), "");
    assert_eq!(endpoint, "/realms/dcr/clients-registrations/openid-connect");

    let as_bearer = |token: &str| {
        let mut a = Api::new(&server);
        a.token = Some(token.to_string());
        a
    };
    let metadata = json!({
        "client_name": "Registered app",
        "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "profile email",
        "contacts": ["ops@example.com"],
    });
    let anonymous = Api::new(&server).post(&endpoint, &metadata);
    assert_eq!(anonymous.status, 403, "{}", anonymous.text);
    assert_eq!(anonymous.body["error"], "insufficient_scope");
    let bad = as_bearer(&iat).post(
        &endpoint,
        &json!({"redirect_uris": ["https://app.example.com/*"]}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.body["error"], "invalid_redirect_uri");

    let r = as_bearer(&iat).post(&endpoint, &metadata);
    assert_eq!(r.status, 201, "{}", r.text);
    let client_id = r.body["client_id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    let rat = r.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = r.body["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace(&format!("http://{}", server.http), "");
    assert_eq!(r.body["client_name"], "Registered app");
    assert_eq!(r.body["scope"], "profile email");
    assert_eq!(r.body["contacts"], json!(["ops@example.com"]));

    // The registered client works: a service-account token with its secret.
    let token = server
        .client()
        .post(format!(
            "http://{}/realms/dcr/protocol/openid-connect/token",
            server.http
        ))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(token.status().as_u16(), 200);

    // Read and update with the registration access token; the update replaces it.
    assert_eq!(
        as_bearer(&rat).get(&uri).body["client_id"],
        client_id.as_str()
    );
    assert_eq!(as_bearer("wrong").get(&uri).status, 401);
    assert_eq!(
        as_bearer(&iat).get(&uri).status,
        401,
        "not the initial token"
    );
    let mut changed = metadata.clone();
    changed["client_name"] = "Renamed".into();
    let r = as_bearer(&rat).put(&uri, &changed);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["client_name"], "Renamed");
    let new_rat = r.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_rat, rat);
    assert_eq!(
        as_bearer(&rat).get(&uri).status,
        401,
        "the old token is spent"
    );

    // The initial token allowed two registrations: one left, then none.
    let listed = admin.get("/admin/realms/dcr/clients-initial-access").body;
    assert_eq!(listed[0]["remainingCount"], 1, "{listed}");
    assert!(listed[0].get("token").is_none(), "the token is shown once");
    let mut second = metadata.clone();
    second["token_endpoint_auth_method"] = "none".into();
    second["grant_types"] = json!(["authorization_code"]);
    let r = as_bearer(&iat).post(&endpoint, &second);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["token_endpoint_auth_method"], "none");
    assert!(r.body.get("client_secret").is_none());
    assert_eq!(
        as_bearer(&iat).post(&endpoint, &second).status,
        401,
        "used up"
    );
    assert_eq!(
        admin.get("/admin/realms/dcr/clients-initial-access").body,
        json!([])
    );
    // An administrator may register with their own token; an update that adds
    // client_credentials gives the client its service account.
    let mut plain = metadata.clone();
    plain["grant_types"] = json!(["authorization_code"]);
    let r = admin.post(&endpoint, &plain);
    assert_eq!(r.status, 201, "{}", r.text);
    let (later_id, later_secret) = (
        r.body["client_id"].as_str().unwrap().to_string(),
        r.body["client_secret"].as_str().unwrap().to_string(),
    );
    let later_uri = r.body["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace(&format!("http://{}", server.http), "");
    let later_rat = r.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = as_bearer(&later_rat).put(&later_uri, &metadata);
    assert_eq!(r.status, 200, "{}", r.text);
    let token = server
        .client()
        .post(format!(
            "http://{}/realms/dcr/protocol/openid-connect/token",
            server.http
        ))
        .basic_auth(&later_id, Some(&later_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(token.status().as_u16(), 200);

    // Delete with the registration access token.
    assert_eq!(as_bearer(&new_rat).delete(&uri).status, 204);
    assert_eq!(
        admin
            .get(&format!("/admin/realms/dcr/clients?clientId={client_id}"))
            .body,
        json!([])
    );
    assert_eq!(as_bearer(&new_rat).get(&uri).status, 401);
}
