//! Clients: create, look up, update, delete; secrets and their regeneration; service
//! accounts; protocol mappers, with the refusal of reserved claims.

use serde_json::{json, Value};

use super::shop;
use crate::idp::testing::{created_id, Fixture};

async fn client(f: &Fixture, body: Value) -> String {
    created_id(&f.post("/shop/clients", &body).await)
}

/// Introspection as `client_id` with `secret`: 200 with the right secret, 401 without.
async fn introspect_status(f: &Fixture, client_id: &str, secret: &str) -> u16 {
    f.call(
        "POST",
        "/realms/shop/protocol/openid-connect/token/introspect",
        &[
            ("client_id", client_id),
            ("client_secret", secret),
            ("token", "x"),
        ],
        None,
    )
    .await
    .0
}

#[tokio::test]
async fn create_look_up_update_delete() {
    let f = shop().await;
    let (s, headers, _) = f
        .post(
            "/shop/clients",
            &json!({"clientId": "web", "redirectUris": ["https://web.test/*"]}),
        )
        .await;
    assert_eq!(s, 201);
    let location = headers["location"].to_str().unwrap();
    let id = location.rsplit('/').next().unwrap().to_string();
    let (s, _, web) = f.get(&format!("/shop/clients/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(web["clientId"], "web");
    assert_eq!(web["redirectUris"], json!(["https://web.test/*"]));
    assert_eq!(
        (
            &web["publicClient"],
            &web["standardFlowEnabled"],
            &web["directAccessGrantsEnabled"]
        ),
        (&json!(false), &json!(true), &json!(false)),
        "Keycloak's defaults"
    );
    assert!(!web["secret"].as_str().unwrap().is_empty(), "confidential");
    let (_, _, exact) = f.get("/shop/clients?clientId=web").await;
    assert_eq!(exact.as_array().unwrap().len(), 1);
    assert_eq!(f.get("/shop/clients?clientId=we").await.2, json!([]));
    let (_, _, search) = f.get("/shop/clients?clientId=WE&search=true").await;
    assert_eq!(search[0]["id"], id.as_str());

    let path = format!("/shop/clients/{id}");
    assert_eq!(f.put(&path, &json!({"publicClient": true})).await.0, 204);
    let (_, _, web) = f.get(&path).await;
    assert_eq!(web["publicClient"], true);
    assert!(web.get("secret").is_none(), "public clients show no secret");
    assert_eq!(f.delete(&path).await.0, 204);
    let (s, _, body) = f.get(&path).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find client"}))
    );
    assert_eq!(f.delete(&path).await.0, 404);
}

#[tokio::test]
async fn bad_clients_are_refused() {
    let f = shop().await;
    client(&f, json!({"clientId": "web"})).await;
    for (body, status, message) in [
        (
            json!({"clientId": "web"}),
            409,
            "Client web already exists".to_string(),
        ),
        (
            json!({"name": "x"}),
            400,
            "clientId is required".to_string(),
        ),
        (
            json!({"clientId": "w2", "redirectUris": ["https://*.web.test/cb"]}),
            400,
            "A redirect URI may use '*' only at its end: https://*.web.test/cb".to_string(),
        ),
        (
            json!({"clientId": "w3", "protocol": "saml"}),
            400,
            "protocol saml is not supported".to_string(),
        ),
    ] {
        let (s, _, answer) = f.post("/shop/clients", &body).await;
        assert_eq!(
            (s, answer),
            (status, json!({"errorMessage": message})),
            "{body}"
        );
    }
}

#[tokio::test]
async fn regenerating_the_secret_retires_the_old_one() {
    let f = shop().await;
    let id = client(&f, json!({"clientId": "web"})).await;
    let path = format!("/shop/clients/{id}/client-secret");
    let (s, _, first) = f.get(&path).await;
    assert_eq!((s, &first["type"]), (200, &json!("secret")));
    let first = first["value"].as_str().unwrap().to_string();
    assert_eq!(introspect_status(&f, "web", &first).await, 200);
    let (s, _, second) = f.post(&path, &json!({})).await;
    assert_eq!(s, 200);
    let second = second["value"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(f.get(&path).await.2["value"], second.as_str());
    assert_eq!(introspect_status(&f, "web", &first).await, 401);
    assert_eq!(introspect_status(&f, "web", &second).await, 200);

    let public = client(&f, json!({"clientId": "spa", "publicClient": true})).await;
    let (s, _, body) = f
        .post(&format!("/shop/clients/{public}/client-secret"), &json!({}))
        .await;
    assert_eq!(
        (s, body),
        (
            400,
            json!({"errorMessage": "Client has no secret (public or bearer-only)"})
        )
    );
}

#[tokio::test]
async fn service_accounts_come_with_their_client() {
    let f = shop().await;
    let svc = client(
        &f,
        json!({"clientId": "svc", "serviceAccountsEnabled": true, "secret": "svc-secret"}),
    )
    .await;
    let (s, _, user) = f
        .get(&format!("/shop/clients/{svc}/service-account-user"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(user["username"], "service-account-svc");
    assert_eq!(user["serviceAccountClientId"], svc.as_str());
    let (s, tokens) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "svc-secret"),
            ],
            None,
        )
        .await;
    assert_eq!(s, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());

    let web = client(&f, json!({"clientId": "web"})).await;
    let path = format!("/shop/clients/{web}/service-account-user");
    let (s, _, body) = f.get(&path).await;
    assert_eq!(
        (s, body),
        (
            400,
            json!({"errorMessage": "Service account not enabled for the client"})
        )
    );
    // Turning service accounts on later creates the user.
    f.put(
        &format!("/shop/clients/{web}"),
        &json!({"serviceAccountsEnabled": true}),
    )
    .await;
    assert_eq!(f.get(&path).await.2["username"], "service-account-web");
}

fn mapper(name: &str, kind: &str, config: Value) -> Value {
    json!({"name": name, "protocolMapper": kind, "config": config})
}

#[tokio::test]
async fn protocol_mappers_crud_and_their_claims() {
    let f = shop().await;
    let id = client(
        &f,
        json!({"clientId": "web", "publicClient": true, "directAccessGrantsEnabled": true}),
    )
    .await;
    let models = format!("/shop/clients/{id}/protocol-mappers/models");
    let tier = mapper(
        "tier",
        "oidc-hardcoded-claim-mapper",
        json!({"claim.name": "tier", "claim.value": "gold", "access.token.claim": "true"}),
    );
    let mapper_id = created_id(&f.post(&models, &tier).await);
    let (_, _, list) = f.get(&models).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (&list[0]["id"], &list[0]["protocol"]),
        (&json!(mapper_id), &json!("openid-connect"))
    );
    let (s, _, body) = f.post(&models, &tier).await;
    assert_eq!(
        (s, body),
        (
            409,
            json!({"errorMessage": "Protocol mapper exists with same name: tier"})
        )
    );
    // The claim is in the client's tokens.
    f.add_user("shop", "alice", Some("alice-pw"));
    let token = f.password_grant("shop", "web", "alice", "alice-pw").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let claims: Value = crate::crypto::jwt::decode_unverified(&token).unwrap();
    assert_eq!(claims["tier"], "gold");

    let one = format!("{models}/{mapper_id}");
    let changed = mapper(
        "tier",
        "oidc-hardcoded-claim-mapper",
        json!({"claim.name": "level", "claim.value": "gold"}),
    );
    assert_eq!(f.put(&one, &changed).await.0, 204);
    let (_, _, got) = f.get(&one).await;
    assert_eq!(
        (&got["id"], &got["config"]["claim.name"]),
        (&json!(mapper_id), &json!("level"))
    );
    assert_eq!(f.delete(&one).await.0, 204);
    let (s, _, body) = f.get(&one).await;
    assert_eq!((s, body), (404, json!({"errorMessage": "Model not found"})));
    assert_eq!(f.get(&models).await.2, json!([]));
}

#[tokio::test]
async fn mappers_may_not_write_reserved_claims() {
    let f = shop().await;
    let id = client(&f, json!({"clientId": "web"})).await;
    let models = format!("/shop/clients/{id}/protocol-mappers/models");
    let reserved = |claim: &str| {
        json!({"errorMessage":
            format!("Claim {claim} is reserved: it is set by the server and cannot be mapped")})
    };
    for claim in ["sub", "iss", "realm_access.roles", "resource_access"] {
        let evil = mapper(
            "evil",
            "oidc-hardcoded-claim-mapper",
            json!({"claim.name": claim, "claim.value": "admin"}),
        );
        let (s, _, body) = f.post(&models, &evil).await;
        assert_eq!((s, body), (400, reserved(claim)), "{claim}");
    }
    // The role mappers alone write the role claims (with the user's real roles).
    let roles = mapper(
        "roles",
        "oidc-usermodel-realm-role-mapper",
        json!({"claim.name": "realm_access.roles"}),
    );
    let roles_id = created_id(&f.post(&models, &roles).await);
    let (s, _, body) = f
        .post(&models, &mapper("x", "script-mapper", json!({})))
        .await;
    assert_eq!(
        (s, body),
        (
            400,
            json!({"errorMessage": "Unsupported protocol mapper type: script-mapper"})
        )
    );
    // Not through an update, a batch or the client's own representation either.
    let to_sub = mapper(
        "roles",
        "oidc-usermodel-attribute-mapper",
        json!({"claim.name": "sub", "user.attribute": "x"}),
    );
    assert_eq!(f.put(&format!("{models}/{roles_id}"), &to_sub).await.0, 400);
    let batch = json!([
        mapper(
            "ok",
            "oidc-hardcoded-claim-mapper",
            json!({"claim.name": "a", "claim.value": "1"})
        ),
        mapper(
            "bad",
            "oidc-hardcoded-claim-mapper",
            json!({"claim.name": "aud", "claim.value": "x"})
        ),
    ]);
    let (s, _, body) = f
        .post(
            &format!("/shop/clients/{id}/protocol-mappers/add-models"),
            &batch,
        )
        .await;
    assert_eq!((s, body), (400, reserved("aud")));
    assert_eq!(
        f.get(&models).await.2.as_array().unwrap().len(),
        1,
        "all or nothing"
    );
    let (s, _, body) = f
        .post(
            "/shop/clients",
            &json!({"clientId": "sneaky", "protocolMappers": [
                mapper("m", "oidc-hardcoded-claim-mapper", json!({"claim.name": "azp", "claim.value": "x"}))
            ]}),
        )
        .await;
    assert_eq!((s, body), (400, reserved("azp")));
}

#[tokio::test]
async fn the_adapter_configuration_is_keycloak_json() {
    let f = shop().await;
    let app = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "node-app", "publicClient": false, "secret": "s3cret"}),
        )
        .await,
    );
    let path = format!("/shop/clients/{app}/installation/providers/keycloak-oidc-keycloak-json");
    let (status, _, config) = f.get(&path).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["realm"], "shop");
    assert_eq!(config["resource"], "node-app");
    assert_eq!(config["ssl-required"], "external");
    assert!(config["auth-server-url"].as_str().unwrap().ends_with('/'));
    let (_, _, secret) = f.get(&format!("/shop/clients/{app}/client-secret")).await;
    assert_eq!(config["credentials"]["secret"], secret["value"]);
    let spa = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "spa", "publicClient": true}),
        )
        .await,
    );
    let (_, _, public) = f
        .get(&format!(
            "/shop/clients/{spa}/installation/providers/keycloak-oidc-keycloak-json"
        ))
        .await;
    assert_eq!(public["public-client"], true);
    assert!(public.get("credentials").is_none());
    let (status, _, _) = f
        .get(&format!(
            "/shop/clients/{app}/installation/providers/unknown-format"
        ))
        .await;
    assert_eq!(status, 404);
}

/// The realm and client roles in an access token's claims.
fn token_roles(token: &str) -> (Vec<String>, Value) {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let mut realm: Vec<String> = claims["realm_access"]["roles"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    realm.sort();
    (realm, claims["resource_access"].clone())
}

#[tokio::test]
async fn scope_mappings_decide_the_roles_of_a_client_without_full_scope() {
    let f = shop().await;
    for name in ["reader", "writer"] {
        f.post("/shop/roles", &json!({"name": name})).await;
    }
    let narrow = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "narrow", "publicClient": true, "directAccessGrantsEnabled": true,
                    "fullScopeAllowed": false}),
        )
        .await,
    );
    f.post(
        &format!("/shop/clients/{narrow}/roles"),
        &json!({"name": "own"}),
    )
    .await;
    let ann = f.add_user("shop", "ann", Some("ann-pw"));
    for (path, body) in [
        (
            format!("/shop/users/{ann}/role-mappings/realm"),
            json!([{"name": "reader"}, {"name": "writer"}]),
        ),
        (
            format!("/shop/users/{ann}/role-mappings/clients/{narrow}"),
            json!([{"name": "own"}]),
        ),
    ] {
        assert_eq!(f.post(&path, &body).await.0, 204);
    }
    // No scope mappings: only the client's own roles.
    let (realm, clients) = token_roles(&ann_token(&f).await);
    assert!(realm.is_empty(), "{realm:?}");
    assert_eq!(clients["narrow"]["roles"], json!(["own"]));

    let base = format!("/shop/clients/{narrow}/scope-mappings/realm");
    let (status, _, _) = f.post(&base, &json!([{"name": "reader"}])).await;
    assert_eq!(status, 204);
    let (realm, _) = token_roles(&ann_token(&f).await);
    assert_eq!(
        realm,
        ["reader"],
        "only the mapped role, though ann holds writer too"
    );
    let (_, _, direct) = f.get(&base).await;
    assert_eq!(direct[0]["name"], "reader");
    let (_, _, available) = f.get(&format!("{base}/available")).await;
    assert!(available
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "writer"));
    assert!(!available
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "reader"));
    let (_, _, all) = f
        .get(&format!("/shop/clients/{narrow}/scope-mappings"))
        .await;
    assert_eq!(all["realmMappings"][0]["name"], "reader", "{all}");
    // A mapping grants nothing: bob, without the role, gets none.
    f.add_user("shop", "bob", Some("bob-pw"));
    let bob = f.password_grant("shop", "narrow", "bob", "bob-pw").await;
    assert!(token_roles(bob["access_token"].as_str().unwrap())
        .0
        .is_empty());

    // Realm files carry them in Keycloak's layout.
    let (_, _, export) = f
        .post("/shop/partial-export?exportClients=true", &json!({}))
        .await;
    assert_eq!(
        export["scopeMappings"],
        json!([{"client": "narrow", "roles": ["reader"]},
               {"clientScope": "offline_access", "roles": ["offline_access"]}])
    );
    let (status, _, body) = f
        .post(
            "",
            &json!({"realm": "copy", "roles": {"realm": [{"name": "reader"}]},
                    "clients": [{"clientId": "narrow", "publicClient": true, "fullScopeAllowed": false}],
                    "scopeMappings": [{"client": "narrow", "roles": ["reader"]}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let copy = f.get("/copy/clients?clientId=narrow").await.2[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, mapped) = f
        .get(&format!("/copy/clients/{copy}/scope-mappings/realm"))
        .await;
    assert_eq!(mapped[0]["name"], "reader", "{mapped}");

    let (status, _, _) = f.delete_with(&base, &json!([{"name": "reader"}])).await;
    assert_eq!(status, 204);
    assert!(token_roles(&ann_token(&f).await).0.is_empty());
    assert_eq!(f.post(&base, &json!([{"name": "nope"}])).await.0, 404);
}

async fn ann_token(f: &Fixture) -> String {
    f.password_grant("shop", "narrow", "ann", "ann-pw").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn example_tokens_show_what_a_user_would_get() {
    let f = shop().await;
    f.post("/shop/roles", &json!({"name": "reader"})).await;
    let web = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "web", "publicClient": true, "fullScopeAllowed": false}),
        )
        .await,
    );
    let ann = f.add_user("shop", "ann", Some("ann-pw"));
    f.post(
        &format!("/shop/users/{ann}/role-mappings/realm"),
        &json!([{"name": "reader"}]),
    )
    .await;
    let base = format!("/shop/clients/{web}/evaluate-scopes");
    let (status, _, claims) = f
        .get(&format!(
            "{base}/generate-example-access-token?userId={ann}&scope=email"
        ))
        .await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["sub"], ann.as_str());
    assert_eq!(claims["azp"], "web");
    assert_eq!(claims["preferred_username"], "ann");
    assert!(claims["iss"].as_str().unwrap().ends_with("/realms/shop"));
    assert!(
        claims.get("realm_access").is_none(),
        "out of the client's scope: {claims}"
    );
    f.post(
        &format!("/shop/clients/{web}/scope-mappings/realm"),
        &json!([{"name": "reader"}]),
    )
    .await;
    let (_, _, claims) = f
        .get(&format!(
            "{base}/generate-example-access-token?userId={ann}"
        ))
        .await;
    assert_eq!(claims["realm_access"]["roles"], json!(["reader"]));
    let (_, _, id) = f
        .get(&format!("{base}/generate-example-id-token?userId={ann}"))
        .await;
    assert_eq!(id["aud"], "web");
    let (status, _, userinfo) = f
        .get(&format!("{base}/generate-example-userinfo?userId={ann}"))
        .await;
    assert_eq!(status, 200, "{userinfo}");
    assert_eq!(userinfo["sub"], ann.as_str());
    assert_eq!(userinfo["preferred_username"], "ann");
    assert_eq!(
        f.get(&format!("{base}/generate-example-access-token"))
            .await
            .0,
        400
    );
    assert_eq!(
        f.get(&format!("{base}/generate-example-access-token?userId=nope"))
            .await
            .0,
        404
    );
}

/// The rest of the client resource the admin client knows: users in a client role, the
/// evaluate tab's mapper and role-scope views, fine-grained permissions (off), and a
/// generated key whose certificate then authenticates the client (`private_key_jwt`).
#[tokio::test]
async fn role_users_evaluate_views_permissions_and_generated_keys() {
    let f = shop().await;
    let api_id = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "api", "fullScopeAllowed": false, "serviceAccountsEnabled": true,
                    "clientAuthenticatorType": "client-jwt"}),
        )
        .await,
    );
    f.post(
        &format!("/shop/clients/{api_id}/roles"),
        &json!({"name": "reader"}),
    )
    .await;
    f.post("/shop/roles", &json!({"name": "staff"})).await;
    let ann = f.add_user("shop", "ann", Some("ann-pw"));
    super::grant_client_roles(&f, "shop", &ann, "api", &["reader"]).await;
    let (status, _, users) = f
        .get(&format!("/shop/clients/{api_id}/roles/reader/users"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(users[0]["username"], "ann");

    let (_, _, mappers) = f
        .get(&format!(
            "/shop/clients/{api_id}/evaluate-scopes/protocol-mappers?scope=phone"
        ))
        .await;
    let kinds: Vec<&str> = mappers
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["containerName"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"profile") && kinds.contains(&"phone"),
        "{mappers}"
    );
    assert!(mappers
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["containerType"] == "client-scope" || m["containerType"] == "client"));
    let base = format!("/shop/clients/{api_id}/evaluate-scopes/scope-mappings");
    let (_, _, granted) = f.get(&format!("{base}/shop/granted")).await;
    assert!(!granted
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "staff"));
    let (_, _, not_granted) = f.get(&format!("{base}/shop/not-granted")).await;
    assert!(not_granted
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "staff"));
    let (_, _, own) = f.get(&format!("{base}/{api_id}/granted")).await;
    assert_eq!(
        own[0]["name"], "reader",
        "a client's own roles are in its scope"
    );
    let (_, _, with_offline) = f
        .get(&format!("{base}/shop/granted?scope=offline_access"))
        .await;
    assert!(with_offline
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "offline_access"));

    for path in [
        format!("/shop/clients/{api_id}/management/permissions"),
        "/shop/users-management-permissions".to_string(),
    ] {
        let (status, _, body) = f.get(&path).await;
        assert_eq!((status, body), (200, json!({"enabled": false})), "{path}");
        assert_eq!(f.put(&path, &json!({"enabled": true})).await.0, 400);
        assert_eq!(f.put(&path, &json!({"enabled": false})).await.0, 200);
    }

    // A generated key: its certificate is kept, its private key handed out once.
    let (status, _, generated) = f
        .post(
            &format!("/shop/clients/{api_id}/certificates/jwt.credential/generate"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{generated}");
    let (_, _, info) = f
        .get(&format!(
            "/shop/clients/{api_id}/certificates/jwt.credential"
        ))
        .await;
    assert_eq!(info["certificate"], generated["certificate"]);
    assert!(info.get("privateKey").is_none());
    use base64::Engine;
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(generated["privateKey"].as_str().unwrap())
        .unwrap();
    let key = crate::crypto::jwt::SigningKey::from_pkcs8(
        "k",
        crate::crypto::jwt::Algorithm::RS256,
        &pkcs8,
    )
    .unwrap();
    let now = f.now() / 1000;
    let assertion = key
        .sign(&json!({"iss": "api", "sub": "api", "aud": "https://idp.test/realms/shop/protocol/openid-connect/token",
                      "jti": crate::crypto::random_id(), "iat": now, "exp": now + 60}))
        .unwrap();
    let (status, body) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "api"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        f.get(&format!("/shop/clients/{api_id}/certificates/nope"))
            .await
            .0,
        404
    );
}

/// The `secret-rotation` policy: a regenerated secret's predecessor keeps authenticating the
/// client until it expires or is invalidated; without the policy it stops at once.
#[tokio::test]
async fn rotated_secrets_work_until_invalidated() {
    let f = shop().await;
    let id = client(&f, json!({"clientId": "rot", "publicClient": false})).await;
    let secret = |v: &Value| v["value"].as_str().unwrap().to_string();
    let first = secret(&f.get(&format!("/shop/clients/{id}/client-secret")).await.2);
    // No policy: the old secret is gone with the regeneration.
    let second = secret(
        &f.post(&format!("/shop/clients/{id}/client-secret"), &json!({}))
            .await
            .2,
    );
    assert_eq!(introspect_status(&f, "rot", &first).await, 401);
    assert_eq!(
        f.get(&format!("/shop/clients/{id}/client-secret/rotated"))
            .await
            .0,
        404
    );
    let profiles = json!({"profiles": [{"name": "rotation", "executors": [
        {"executor": "secret-rotation", "configuration": {"expiration-period": 2505600,
         "rotated-expiration-period": 3600, "remaining-rotation-period": 864000}}]}]});
    assert_eq!(
        f.put("/shop/client-policies/profiles", &profiles).await.0,
        204
    );
    let policies = json!({"policies": [{"name": "rotate", "enabled": true,
        "conditions": [{"condition": "any-client"}], "profiles": ["rotation"]}]});
    assert_eq!(
        f.put("/shop/client-policies/policies", &policies).await.0,
        204
    );
    let third = secret(
        &f.post(&format!("/shop/clients/{id}/client-secret"), &json!({}))
            .await
            .2,
    );
    assert_eq!(introspect_status(&f, "rot", &third).await, 200);
    assert_eq!(
        introspect_status(&f, "rot", &second).await,
        200,
        "rotated, still valid"
    );
    // `client_secret_jwt` keyed by the rotated secret works too.
    let now = f.now() / 1000;
    let assertion_with = |secret: &str| {
        crate::crypto::jwt::sign_hs256(
            &json!({"iss": "rot", "sub": "rot",
                    "aud": "https://idp.test/realms/shop/protocol/openid-connect/token",
                    "jti": crate::crypto::random_id(), "iat": now, "exp": now + 60}),
            secret.as_bytes(),
        )
        .unwrap()
    };
    let jwt_status = |assertion: String| {
        let f = &f;
        async move {
            f.call(
                "POST",
                "/realms/shop/protocol/openid-connect/token/introspect",
                &[
                    ("client_id", "rot"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("token", "x"),
                ],
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(jwt_status(assertion_with(&second)).await, 200);
    let (status, _, rotated) = f
        .get(&format!("/shop/clients/{id}/client-secret/rotated"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret(&rotated), second);
    let (_, _, repr) = f.get(&format!("/shop/clients/{id}")).await;
    assert!(repr["attributes"]["client.secret.rotated.expiration.time"].is_string());
    assert!(
        !repr.to_string().contains(&second),
        "the rotated secret is not in the client"
    );
    assert_eq!(
        f.delete(&format!("/shop/clients/{id}/client-secret/rotated"))
            .await
            .0,
        204
    );
    assert_eq!(introspect_status(&f, "rot", &second).await, 401);
    assert_eq!(introspect_status(&f, "rot", &third).await, 200);
    assert_eq!(
        jwt_status(assertion_with(&second)).await,
        401,
        "invalidated for assertions too"
    );
    assert_eq!(jwt_status(assertion_with(&third)).await, 200);
}

/// Registered cluster nodes: stored, shown, removed, and tested at the client's admin URL.
#[tokio::test]
async fn cluster_nodes_are_registered_and_tested() {
    let f = shop().await;
    // One node that answers `k_test_available`, one that does not listen.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let id = client(
        &f,
        json!({"clientId": "nodes", "adminUrl": "http://${application.session.host}/app"}),
    )
    .await;
    for node in [up.to_string(), down.to_string()] {
        assert_eq!(
            f.post(&format!("/shop/clients/{id}/nodes"), &json!({"node": node}))
                .await
                .0,
            204
        );
    }
    assert_eq!(
        f.post(
            &format!("/shop/clients/{id}/nodes"),
            &json!({"node": "evil.test/x?"})
        )
        .await
        .0,
        400
    );
    let (_, _, repr) = f.get(&format!("/shop/clients/{id}")).await;
    assert!(repr["registeredNodes"][up.to_string()].is_i64(), "{repr}");
    let (status, _, result) = f
        .get(&format!("/shop/clients/{id}/test-nodes-available"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        result,
        json!({"successRequests": [format!("http://{up}/app/k_test_available")],
               "failedRequests": [format!("http://{down}/app/k_test_available")]})
    );
    assert_eq!(
        f.delete(&format!("/shop/clients/{id}/nodes/{down}"))
            .await
            .0,
        204
    );
    assert_eq!(
        f.delete(&format!("/shop/clients/{id}/nodes/{down}"))
            .await
            .0,
        404
    );
    let (_, _, repr) = f.get(&format!("/shop/clients/{id}")).await;
    assert!(repr["registeredNodes"].get(down.to_string()).is_none());
}
