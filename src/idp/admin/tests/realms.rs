//! Realms: create, read, update, rename, delete; partial import and export.

use serde_json::{json, Value};

use super::{names, names_of_realms, new_user, shop};
use crate::idp::testing::{created_id, test_keys, Fixture};

/// A realm representation carrying the shared test keys (as key-provider components, the
/// way exports carry keys), so that creating it generates none.
pub(super) fn realm_body(name: &str) -> Value {
    let keys: Vec<Value> = test_keys()
        .iter()
        .map(|k| {
            json!({"providerId": "generated", "config": {
                "privateKey": [k.private_key_pkcs8], "algorithm": [k.algorithm],
            }})
        })
        .collect();
    json!({"realm": name, "components": {"org.keycloak.keys.KeyProvider": keys}})
}

#[tokio::test]
async fn create_get_list_and_refuse_duplicates() {
    let f = Fixture::new().await;
    let (status, headers, _) = f.post("/", &realm_body("shop")).await;
    assert_eq!(status, 201);
    assert_eq!(headers["location"], "https://idp.test/admin/realms/shop");
    let (status, _, repr) = f.get("/shop").await;
    assert_eq!(status, 200);
    assert_eq!(repr["realm"], "shop");
    assert_eq!(repr["enabled"], true);
    assert_eq!(repr["accessTokenLifespan"], 300);
    assert_eq!(names_of_realms(&f.get("").await.2), ["master", "shop"]);
    // Keycloak's defaults came along, and master got the realm's management client.
    let (_, _, clients) = f.get("/shop/clients").await;
    let mut ids: Vec<&str> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "account",
            "admin-cli",
            "broker",
            "realm-management",
            "security-admin-console"
        ]
    );
    let (_, _, master_clients) = f.get("/master/clients?clientId=shop-realm").await;
    assert_eq!(master_clients.as_array().unwrap().len(), 1);
    // The imported keys are the realm's keys.
    let (_, _, keys) = f.get("/shop/keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");

    let (status, _, body) = f.post("/", &realm_body("shop")).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["errorMessage"],
        "Conflict detected. See logs for details"
    );
}

#[tokio::test]
async fn bad_realm_names_are_400() {
    let f = Fixture::new().await;
    let (status, _, body) = f.post("/", &json!({"realm": "  "})).await;
    assert_eq!(
        (status, body),
        (400, json!({"errorMessage": "Realm name cannot be empty"}))
    );
    let (status, _, body) = f.post("/", &json!({"realm": "a/b"})).await;
    assert_eq!(
        (status, body),
        (400, json!({"errorMessage": "Invalid realm name: a/b"}))
    );
    let (status, _, body) = f.post("/", &json!(null)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(names_of_realms(&f.get("").await.2), ["master"]);
}

/// A realm body whose components are not objects is refused whole (it panicked once).
#[tokio::test]
async fn a_realm_with_non_object_components_is_400_and_not_created() {
    let f = Fixture::new().await;
    let (status, _, body) = f
        .post(
            "/",
            &json!({"realm": "odd", "components": {
                "org.keycloak.storage.UserStorageProvider": [1]}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errorMessage"].is_string(), "{body}");
    assert_eq!(names_of_realms(&f.get("").await.2), ["master"]);
}

#[tokio::test]
async fn unknown_realms_are_404() {
    let f = Fixture::new().await;
    for (status, _, body) in [
        f.get("/nope").await,
        f.put("/nope", &json!({"displayName": "x"})).await,
        f.delete("/nope").await,
        f.get("/nope/users").await,
        f.get("/nope/clients").await,
    ] {
        assert_eq!(
            (status, body),
            (404, json!({"errorMessage": "Realm not found."}))
        );
    }
    let (status, _, _) = f.get("/master/no-such-resource").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn update_changes_only_what_it_names() {
    let f = shop().await;
    let (status, _, _) = f
        .put(
            "/shop",
            &json!({"displayName": "The Shop", "accessTokenLifespan": 600, "unknownField": 1}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, _, repr) = f.get("/shop").await;
    assert_eq!(repr["displayName"], "The Shop");
    assert_eq!(repr["accessTokenLifespan"], 600);
    assert_eq!(repr["ssoSessionIdleTimeout"], 1800, "untouched");
    let (status, _, body) = f.put("/shop", &json!({"accessTokenLifespan": -1})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errorMessage"],
        "accessTokenLifespan must not be negative"
    );
    let (status, _, body) = f.put("/shop", &json!({"otpPolicyDigits": 7})).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errorMessage": "otpPolicyDigits must be 6 or 8"})
        )
    );
    assert_eq!(
        f.realm("shop").access_token_lifespan,
        600,
        "refused: unchanged"
    );
}

#[tokio::test]
async fn rename_moves_the_master_management_client() {
    let f = shop().await;
    let id = f.realm("shop").id;
    assert_eq!(f.put("/shop", &json!({"realm": "store"})).await.0, 204);
    assert_eq!(f.get("/shop").await.0, 404);
    let (status, _, repr) = f.get("/store").await;
    assert_eq!((status, repr["id"].as_str()), (200, Some(id.as_str())));
    let (_, _, old) = f.get("/master/clients?clientId=shop-realm").await;
    let (_, _, new) = f.get("/master/clients?clientId=store-realm").await;
    assert_eq!(
        (old.as_array().unwrap().len(), new.as_array().unwrap().len()),
        (0, 1)
    );
    let (status, _, body) = f.put("/store", &json!({"realm": "master"})).await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"errorMessage": "Conflict detected. See logs for details"})
        )
    );
    let (status, _, body) = f.put("/master", &json!({"realm": "boss"})).await;
    assert_eq!(
        (status, body),
        (400, json!({"errorMessage": "Can't rename master realm"}))
    );
}

#[tokio::test]
async fn delete_removes_the_realm_and_its_management_client() {
    let f = shop().await;
    assert_eq!(f.delete("/shop").await.0, 204);
    assert_eq!(f.get("/shop").await.0, 404);
    assert!(f
        .app
        .store
        .read()
        .unwrap()
        .realm_by_name("shop")
        .unwrap()
        .is_none());
    let (_, _, clients) = f.get("/master/clients?clientId=shop-realm").await;
    assert_eq!(clients, json!([]));
    let (status, _, body) = f.delete("/master").await;
    assert_eq!(
        (status, body),
        (400, json!({"errorMessage": "Can't delete master realm"}))
    );
}

fn import_body(policy: Option<&str>, users: &[&str]) -> Value {
    let users: Vec<Value> = users
        .iter()
        .map(|u| json!({"username": u, "enabled": true}))
        .collect();
    let mut body = json!({
        "users": users,
        "groups": [{"name": "staff"}],
        "roles": {"realm": [{"name": "clerk", "description": "sells"}]},
        "clients": [{"clientId": "till"}],
    });
    if let Some(p) = policy {
        body["ifResourceExists"] = p.into();
    }
    body
}

#[tokio::test]
async fn partial_import_adds_then_fails_skips_or_overwrites() {
    let f = shop().await;
    let (status, _, counts) = f
        .post("/shop/partialImport", &import_body(None, &["ann"]))
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        counts,
        json!({"added": 4, "skipped": 0, "overwritten": 0, "results": []})
    );
    let (_, _, users) = f.get("/shop/users").await;
    assert_eq!(names(&users), ["ann"]);
    assert_eq!(f.get("/shop/roles/clerk").await.2["description"], "sells");

    // FAIL (the default) is all or nothing: what came before the conflict is not kept.
    let (status, _, body) = f
        .post(
            "/shop/partialImport",
            &json!({"roles": {"realm": [{"name": "cashier"}]},
                    "users": [{"username": "ben"}, {"username": "ann"}]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"errorMessage": "User exists with same username"})
        )
    );
    let (_, _, users) = f.get("/shop/users").await;
    assert_eq!(names(&users), ["ann"]);
    assert_eq!(f.get("/shop/roles/cashier").await.0, 404);
    let (status, _, body) = f.post("/shop/partialImport", &import_body(None, &[])).await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"errorMessage": "Role with name clerk already exists"})
        )
    );

    let (_, _, counts) = f
        .post(
            "/shop/partialImport",
            &import_body(Some("SKIP"), &["ann", "ben"]),
        )
        .await;
    assert_eq!(
        counts,
        json!({"added": 1, "skipped": 4, "overwritten": 0, "results": []})
    );
    let (_, _, counts) = f
        .post(
            "/shop/partialImport",
            &import_body(Some("OVERWRITE"), &["ann"]),
        )
        .await;
    assert_eq!(counts["overwritten"], 4, "{counts}");
    assert_eq!(names(&f.get("/shop/users").await.2), ["ann", "ben"]);
    let (status, _, body) = f
        .post("/shop/partialImport", &import_body(Some("MERGE"), &[]))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errorMessage"],
        "Invalid ifResourceExists: MERGE (FAIL, SKIP or OVERWRITE)"
    );
}

#[tokio::test]
async fn partial_export_masks_secrets_and_leaves_out_users() {
    let f = shop().await;
    new_user(&f, "shop", json!({"username": "ann"})).await;
    let client = created_id(&f.post("/shop/clients", &json!({"clientId": "till"})).await);
    f.post("/shop/roles", &json!({"name": "clerk"})).await;
    f.post("/shop/groups", &json!({"name": "staff"})).await;

    let (status, _, plain) = f.post("/shop/partial-export", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(plain["realm"], "shop");
    assert_eq!(plain["clients"], json!([]));
    assert_eq!(plain["groups"], json!([]));
    assert_eq!(plain["roles"], json!({"realm": [], "client": {}}));
    assert_eq!(plain["components"], json!({}), "no private keys");
    assert!(plain.get("users").is_none());

    let (_, _, full) = f
        .post(
            "/shop/partial-export?exportClients=true&exportGroupsAndRoles=true",
            &json!({}),
        )
        .await;
    let till = full["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == client.as_str())
        .unwrap();
    assert_eq!(till["secret"], "**********");
    assert!(names(&full["roles"]["realm"]).contains(&"clerk".to_string()));
    assert_eq!(full["groups"][0]["name"], "staff");
    assert!(full.get("users").is_none());
}

#[tokio::test]
async fn realm_texts_override_the_themes_on_the_login_page() {
    let f = shop().await;
    let auth = format!("Bearer {}", f.admin_token);
    let r = f
        .send(
            "PUT",
            "/admin/realms/shop/localization/en/loginTitle",
            &[("authorization", &auth), ("content-type", "text/plain")],
            "Welcome to the shop",
        )
        .await;
    assert_eq!(r.status, 204);
    let (status, _, body) = f
        .post(
            "/shop/localization/de",
            &json!({"loginTitle": "Willkommen", "usernameOrEmail": "Benutzer"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(f.get("/shop/localization").await.2, json!(["de", "en"]));
    assert_eq!(
        f.get("/shop/localization/de").await.2,
        json!({"loginTitle": "Willkommen", "usernameOrEmail": "Benutzer"})
    );
    let r = f
        .send(
            "GET",
            "/admin/realms/shop/localization/en/loginTitle",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(
        (r.status, r.text()),
        (200, "Welcome to the shop".to_string())
    );
    assert_eq!(f.get("/shop/localization/en/nope").await.0, 404);
    assert_eq!(f.get("/shop/localization/e%20n").await.0, 400);

    // The login page renders the realm's text.
    f.add_client(
        "shop",
        crate::store::ClientRecord {
            id: "web-id".into(),
            client_id: "web".into(),
            enabled: true,
            public_client: true,
            standard_flow_enabled: true,
            redirect_uris: vec!["https://web.test/*".into()],
            ..Default::default()
        },
    );
    let mut jar = crate::idp::testing::Jar::default();
    let page = f
        .browse(
            "/realms/shop/protocol/openid-connect/auth?client_id=web&response_type=code&redirect_uri=https%3A%2F%2Fweb.test%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            &mut jar,
        )
        .await;
    assert!(
        page.text().contains("Welcome to the shop"),
        "{}",
        page.text()
    );

    let (status, _, _) = f.delete("/shop/localization/en/loginTitle").await;
    assert_eq!(status, 204);
    assert_eq!(f.get("/shop/localization").await.2, json!(["de"]));
    let (status, _, _) = f.delete("/shop/localization/de").await;
    assert_eq!(status, 204);
    assert_eq!(f.get("/shop/localization").await.2, json!([]));
}

#[tokio::test]
async fn required_actions_are_configured_and_the_login_follows_them() {
    let f = shop().await;
    let aliases = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["alias"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, _, list) = f.get("/shop/authentication/required-actions").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        aliases(&list),
        [
            "CONFIGURE_TOTP",
            "UPDATE_PASSWORD",
            "UPDATE_PROFILE",
            "VERIFY_EMAIL",
            "VERIFY_PROFILE"
        ]
    );
    assert_eq!(
        list[4]["enabled"], false,
        "VERIFY_PROFILE is off until turned on"
    );
    assert_eq!(list[0]["enabled"], true);
    assert_eq!(list[0]["name"], "Configure OTP");

    // A disabled action is not asked for: a user who has it logs in.
    let bob = f.add_user("shop", "bob", Some("bob-pw"));
    let (status, _, _) = f
        .put(
            &format!("/shop/users/{bob}"),
            &json!({"requiredActions": ["CONFIGURE_TOTP"]}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(bob_grant(&f).await, 400, "the action is pending");
    let (status, _, _) = f
        .put(
            "/shop/authentication/required-actions/CONFIGURE_TOTP",
            &json!({"alias": "CONFIGURE_TOTP", "enabled": false}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        bob_grant(&f).await,
        200,
        "a disabled action is not asked for"
    );

    // A default action is given to every new user.
    f.put(
        "/shop/authentication/required-actions/UPDATE_PASSWORD",
        &json!({"defaultAction": true}),
    )
    .await;
    let carl = new_user(&f, "shop", json!({"username": "carl", "enabled": true})).await;
    let (_, _, user) = f.get(&format!("/shop/users/{carl}")).await;
    assert_eq!(user["requiredActions"], json!(["UPDATE_PASSWORD"]));

    // Priorities move; an unregistered action can come back.
    let (status, _, _) = f
        .post(
            "/shop/authentication/required-actions/VERIFY_EMAIL/raise-priority",
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, _, list) = f.get("/shop/authentication/required-actions").await;
    assert_eq!(
        aliases(&list),
        [
            "CONFIGURE_TOTP",
            "UPDATE_PASSWORD",
            "VERIFY_EMAIL",
            "UPDATE_PROFILE",
            "VERIFY_PROFILE"
        ]
    );
    let (status, _, _) = f
        .delete("/shop/authentication/required-actions/VERIFY_EMAIL")
        .await;
    assert_eq!(status, 204);
    let (_, _, free) = f
        .get("/shop/authentication/unregistered-required-actions")
        .await;
    assert_eq!(
        free,
        json!([{"providerId": "VERIFY_EMAIL", "name": "Verify Email"}])
    );
    let (status, _, _) = f
        .post(
            "/shop/authentication/register-required-action",
            &json!({"providerId": "VERIFY_EMAIL", "name": "Verify Email"}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = f
        .post(
            "/shop/authentication/register-required-action",
            &json!({"providerId": "VERIFY_EMAIL"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        f.get("/shop/authentication/required-actions/NOPE").await.0,
        404
    );

    // Realm files carry them; an import keeps the ones the login implements.
    let (_, _, export) = f.post("/shop/partial-export", &json!({})).await;
    let exported = export["requiredActions"].as_array().unwrap();
    assert!(exported
        .iter()
        .any(|r| r["alias"] == "CONFIGURE_TOTP" && r["enabled"] == false));
    let (status, _, body) = f
        .post(
            "",
            &json!({"realm": "copy", "requiredActions": [
                {"alias": "CONFIGURE_TOTP", "name": "Configure OTP", "enabled": true,
                 "defaultAction": true, "priority": 10},
                {"alias": "TERMS_AND_CONDITIONS", "enabled": true, "priority": 20}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, list) = f.get("/copy/authentication/required-actions").await;
    assert_eq!(aliases(&list), ["CONFIGURE_TOTP"]);
    assert_eq!(list[0]["defaultAction"], true);
}

/// The status of a password grant for `bob` (password `bob-pw`) in `shop`.
async fn bob_grant(f: &Fixture) -> u16 {
    f.call(
        "POST",
        "/realms/shop/protocol/openid-connect/token",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "bob"),
            ("password", "bob-pw"),
        ],
        None,
    )
    .await
    .0
}

#[tokio::test]
async fn partial_import_hashes_plain_passwords_before_storing_them() {
    let f = shop().await;
    let (status, _, body) = f
        .post(
            "/shop/partialImport",
            &json!({"users": [{"username": "dana", "enabled": true,
                "credentials": [{"type": "password", "value": "Dana-pass-1"}]}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = f.user("shop", "dana").id;
    let stored = f
        .app
        .store
        .read()
        .unwrap()
        .credentials(&f.realm("shop").id, &id)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].secret_data.contains("Dana-pass-1"));
    // The imported password signs in.
    f.password_grant("shop", "admin-cli", "dana", "Dana-pass-1")
        .await;
    // An empty one is refused and nothing is imported.
    let (status, _, _) = f
        .post(
            "/shop/partialImport",
            &json!({"users": [{"username": "eve", "credentials": [{"type": "password", "value": ""}]}]}),
        )
        .await;
    assert_eq!(status, 400);
    let (_, _, found) = f.get("/shop/users?username=eve&exact=true").await;
    assert_eq!(found, json!([]));
    // A whole realm created with its users: the same.
    let (status, _, body) = f
        .post(
            "",
            &json!({"realm": "team", "enabled": true, "users": [{"username": "finn",
                "enabled": true, "credentials": [{"type": "password", "value": "Finn-pass-1"}]}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    f.password_grant("team", "admin-cli", "finn", "Finn-pass-1")
        .await;
}

/// Required-action configuration: only the actions Keycloak makes configurable, only
/// `max_auth_age` as a number of seconds; stored, read back, removed.
#[tokio::test]
async fn required_action_configuration() {
    let f = shop().await;
    let base = "/shop/authentication/required-actions";
    let (status, _, d) = f
        .get(&format!("{base}/UPDATE_PASSWORD/config-description"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(d["properties"][0]["name"], "max_auth_age");
    assert_eq!(
        f.get(&format!("{base}/VERIFY_EMAIL/config-description"))
            .await
            .0,
        400,
        "not configurable"
    );
    assert_eq!(f.get(&format!("{base}/NOPE/config")).await.0, 404);
    assert_eq!(
        f.get(&format!("{base}/UPDATE_PASSWORD/config")).await.2,
        json!({"config": {}})
    );
    for bad in [
        json!({"config": {"max_auth_age": "-1"}}),
        json!({"config": {"other": "1"}}),
        json!({}),
    ] {
        assert_eq!(
            f.put(&format!("{base}/UPDATE_PASSWORD/config"), &bad)
                .await
                .0,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        f.put(
            &format!("{base}/UPDATE_PASSWORD/config"),
            &json!({"config": {"max_auth_age": 600}})
        )
        .await
        .0,
        204
    );
    assert_eq!(
        f.get(&format!("{base}/UPDATE_PASSWORD/config")).await.2,
        json!({"config": {"max_auth_age": "600"}})
    );
    assert_eq!(
        f.delete(&format!("{base}/UPDATE_PASSWORD/config")).await.0,
        204
    );
    assert_eq!(
        f.get(&format!("{base}/UPDATE_PASSWORD/config")).await.2,
        json!({"config": {}})
    );
}
