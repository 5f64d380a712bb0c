//! Client scopes: the built-in ones, CRUD, mappers and scope mappings, the realm's and a
//! client's default and optional lists, and the tokens they shape.

use serde_json::{json, Value};

use super::{delegate, names, shop};
use crate::idp::testing::{created_id, Fixture};

fn claims(token: &str) -> Value {
    crate::crypto::jwt::decode_unverified(token).unwrap()
}

/// The id of a scope by name.
async fn scope_id(f: &Fixture, realm: &str, name: &str) -> String {
    let (_, _, list) = f.get(&format!("/{realm}/client-scopes")).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scope {name} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn public_client(f: &Fixture, client_id: &str, extra: Value) -> String {
    let mut body = json!({"clientId": client_id, "publicClient": true,
        "directAccessGrantsEnabled": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    created_id(&f.post("/shop/clients", &body).await)
}

/// A refresh of `tokens` (from `app`).
async fn refresh(f: &Fixture, tokens: &Value) -> (u16, Value) {
    f.call(
        "POST",
        "/realms/shop/protocol/openid-connect/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await
}

async fn grant(f: &Fixture, client_id: &str, scope: &str) -> (u16, Value) {
    let (status, body) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "ann"),
                ("password", "ann-pw"),
                ("scope", scope),
            ],
            None,
        )
        .await;
    (status, body)
}

#[tokio::test]
async fn every_realm_has_keycloaks_builtin_scopes_and_new_clients_get_the_defaults() {
    let f = shop().await;
    let (status, _, list) = f.get("/shop/client-scopes").await;
    assert_eq!(status, 200);
    for name in [
        "profile",
        "email",
        "roles",
        "web-origins",
        "acr",
        "basic",
        "address",
        "phone",
        "offline_access",
        "microprofile-jwt",
    ] {
        assert!(names(&list).contains(&name.to_string()), "{name}: {list}");
    }
    let profile = scope_id(&f, "shop", "profile").await;
    let (_, _, p) = f.get(&format!("/shop/client-scopes/{profile}")).await;
    assert_eq!(p["protocol"], "openid-connect");
    assert_eq!(p["attributes"]["include.in.token.scope"], "true");
    assert!(p["protocolMappers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "username" && m["config"]["claim.name"] == "preferred_username"));

    let (_, _, defaults) = f.get("/shop/default-default-client-scopes").await;
    assert_eq!(
        names(&defaults),
        ["acr", "basic", "email", "profile", "roles", "web-origins"]
    );
    let (_, _, optional) = f.get("/shop/default-optional-client-scopes").await;
    assert_eq!(
        names(&optional),
        ["address", "microprofile-jwt", "offline_access", "phone"]
    );
    let app = public_client(&f, "app", json!({})).await;
    let (_, _, client) = f.get(&format!("/shop/clients/{app}")).await;
    assert_eq!(client["defaultClientScopes"].as_array().unwrap().len(), 6);
    assert!(client["optionalClientScopes"]
        .as_array()
        .unwrap()
        .contains(&json!("offline_access")));
    let (_, _, listed) = f
        .get(&format!("/shop/clients/{app}/optional-client-scopes"))
        .await;
    assert_eq!(
        names(&listed),
        ["address", "microprofile-jwt", "offline_access", "phone"]
    );
    // The built-in clients have them too.
    let admin_cli = super::client_uuid(&f, "shop", "admin-cli").await;
    let (_, _, listed) = f
        .get(&format!("/shop/clients/{admin_cli}/default-client-scopes"))
        .await;
    assert!(names(&listed).contains(&"profile".to_string()), "{listed}");
}

#[tokio::test]
async fn client_scopes_crud_with_keycloaks_answers() {
    let f = shop().await;
    let body = json!({"name": "read:orders", "protocol": "openid-connect",
        "description": "Orders",
        "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": true},
        "protocolMappers": [{"name": "tier", "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "tier", "claim.value": "gold", "access.token.claim": "true"}}]});
    let answer = f.post("/shop/client-scopes", &body).await;
    assert_eq!(answer.0, 201, "{}", answer.2);
    let id = created_id(&answer);
    let (_, _, got) = f.get(&format!("/shop/client-scopes/{id}")).await;
    assert_eq!(got["name"], "read:orders");
    assert_eq!(got["description"], "Orders");
    assert_eq!(got["attributes"]["display.on.consent.screen"], "true");
    assert!(got["protocolMappers"][0]["id"].as_str().is_some());

    let (status, _, err) = f.post("/shop/client-scopes", &body).await;
    assert_eq!(status, 409);
    assert_eq!(
        err["errorMessage"],
        "Client Scope read:orders already exists"
    );
    for (bad, message) in [
        (
            json!({"name": "two words", "protocol": "openid-connect"}),
            "Unexpected name \"two words\" for ClientScope",
        ),
        (
            json!({"name": "x", "protocol": "cas"}),
            "Unexpected protocol",
        ),
        (
            json!({"protocol": "openid-connect"}),
            "Unexpected name \"null\" for ClientScope",
        ),
    ] {
        let (status, _, err) = f.post("/shop/client-scopes", &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["errorMessage"], message);
    }
    // A mapper that would shape the role claims is refused here as on clients.
    let (status, _, _) = f
        .post(
            "/shop/client-scopes",
            &json!({"name": "evil", "protocol": "openid-connect", "protocolMappers": [
                {"name": "x", "protocolMapper": "oidc-hardcoded-claim-mapper",
                 "config": {"claim.name": "realm_access", "claim.value": "{\"roles\":[\"admin\"]}", "jsonType.label": "JSON"}}]}),
        )
        .await;
    assert_eq!(status, 400);

    let (status, _, _) = f
        .put(
            &format!("/shop/client-scopes/{id}"),
            &json!({"name": "orders", "description": "All orders"}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, _, got) = f.get(&format!("/shop/client-scopes/{id}")).await;
    assert_eq!(
        (got["name"].clone(), got["description"].clone()),
        (json!("orders"), json!("All orders"))
    );
    assert_eq!(
        got["protocolMappers"].as_array().unwrap().len(),
        1,
        "PUT keeps the mappers"
    );
    let (status, _, _) = f
        .put(
            &format!("/shop/client-scopes/{id}"),
            &json!({"name": "email"}),
        )
        .await;
    assert_eq!(status, 409);

    // Mappers of a scope, as of a client.
    let base = format!("/shop/client-scopes/{id}/protocol-mappers");
    let mapper = created_id(
        &f.post(
            &format!("{base}/models"),
            &json!({"name": "dept", "protocol": "openid-connect",
                "protocolMapper": "oidc-usermodel-attribute-mapper",
                "config": {"user.attribute": "dept", "claim.name": "dept"}}),
        )
        .await,
    );
    assert_eq!(
        f.get(&format!("{base}/models/{mapper}")).await.2["name"],
        "dept"
    );
    assert_eq!(
        f.get(&format!("{base}/protocol/openid-connect"))
            .await
            .2
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(f.delete(&format!("{base}/models/{mapper}")).await.0, 204);
    assert_eq!(f.get(&format!("{base}/models/{mapper}")).await.0, 404);

    // Deleting a scope takes it off the clients and the realm's lists.
    let app = public_client(&f, "app", json!({"optionalClientScopes": ["orders"]})).await;
    assert_eq!(
        f.put(
            &format!("/shop/default-optional-client-scopes/{id}"),
            &json!({})
        )
        .await
        .0,
        204
    );
    assert_eq!(f.delete(&format!("/shop/client-scopes/{id}")).await.0, 204);
    assert_eq!(f.get(&format!("/shop/client-scopes/{id}")).await.0, 404);
    let (_, _, client) = f.get(&format!("/shop/clients/{app}")).await;
    assert_eq!(client["optionalClientScopes"], json!([]));
    let (_, _, optional) = f.get("/shop/default-optional-client-scopes").await;
    assert!(!names(&optional).contains(&"orders".to_string()));
    assert_eq!(f.delete(&format!("/shop/client-scopes/{id}")).await.0, 404);
}

#[tokio::test]
async fn scopes_shape_the_tokens() {
    let f = shop().await;
    f.add_user("shop", "ann", Some("ann-pw"));
    let mut ann = f.user("shop", "ann");
    f.app
        .store
        .write(|w| {
            let realm = w.realm_by_name("shop")?.unwrap();
            ann.email = Some("ann@example.com".into());
            ann.attributes
                .insert("phoneNumber".into(), vec!["+44 20".into()]);
            w.put_user(&realm.id, &ann, false)
        })
        .unwrap();
    let app = public_client(&f, "app", json!({})).await;

    // Defaults: profile and email claims, roles; `scope` names the included ones.
    let (status, tokens) = grant(&f, "app", "openid").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile email");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["preferred_username"], "ann");
    assert_eq!(access["email"], "ann@example.com");
    assert!(access["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("offline_access")));
    assert!(access.get("phone_number").is_none());
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "ann@example.com");
    assert!(id.get("realm_access").is_none());

    // An optional scope asked for adds its claims; one the client lacks is refused.
    let (_, tokens) = grant(&f, "app", "openid phone").await;
    assert_eq!(tokens["scope"], "openid profile email phone");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["phone_number"], "+44 20");
    let (status, err) = grant(&f, "app", "openid admin").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_scope");
    assert_eq!(err["error_description"], "Invalid scopes: openid admin");

    // Userinfo follows the token's scopes.
    let token = tokens["access_token"].as_str().unwrap();
    let r = f
        .send(
            "GET",
            "/realms/shop/protocol/openid-connect/userinfo",
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    let info = r.json();
    assert_eq!(info["phone_number"], "+44 20", "{info}");
    assert_eq!(info["email"], "ann@example.com");

    // Taking `email` off the client takes the e-mail claims out of its tokens.
    let email = scope_id(&f, "shop", "email").await;
    assert_eq!(
        f.delete(&format!(
            "/shop/clients/{app}/default-client-scopes/{email}"
        ))
        .await
        .0,
        204
    );
    let (_, tokens) = grant(&f, "app", "openid").await;
    assert_eq!(tokens["scope"], "openid profile");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert!(access.get("email").is_none(), "{access}");
    // ...and `email` as an optional scope brings them back when asked for.
    assert_eq!(
        f.put(
            &format!("/shop/clients/{app}/optional-client-scopes/{email}"),
            &json!({})
        )
        .await
        .0,
        204
    );
    let (_, tokens) = grant(&f, "app", "openid email").await;
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["email"],
        "ann@example.com"
    );
    let (_, tokens) = grant(&f, "app", "openid").await;
    assert!(claims(tokens["access_token"].as_str().unwrap())
        .get("email")
        .is_none());

    // A scope's own mapper applies to the clients that have it.
    let custom = created_id(
        &f.post(
            "/shop/client-scopes",
            &json!({"name": "tiered", "protocol": "openid-connect",
                "attributes": {"include.in.token.scope": "false"}}),
        )
        .await,
    );
    f.post(
        &format!("/shop/client-scopes/{custom}/protocol-mappers/add-models"),
        &json!([{"name": "tier", "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "tier", "claim.value": "2", "jsonType.label": "long",
                       "access.token.claim": "true", "id.token.claim": "true"}}]),
    )
    .await;
    f.put(
        &format!("/shop/clients/{app}/default-client-scopes/{custom}"),
        &json!({}),
    )
    .await;
    let (_, tokens) = grant(&f, "app", "openid").await;
    assert_eq!(
        tokens["scope"], "openid profile",
        "not included in the scope"
    );
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["tier"], 2);
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["tier"], 2);
    // The refresh keeps them.
    let (status, refreshed) = refresh(&f, &tokens).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["tier"],
        2
    );

    // The evaluate tab shows the same.
    let ann = f.user("shop", "ann").id;
    let (_, _, example) = f
        .get(&format!(
            "/shop/clients/{app}/evaluate-scopes/generate-example-access-token?userId={ann}&scope=phone"
        ))
        .await;
    assert_eq!(example["phone_number"], "+44 20", "{example}");
    assert_eq!(example["tier"], 2);

    // An optional scope left out of the `scope` claim still applies after a refresh.
    f.delete(&format!(
        "/shop/clients/{app}/default-client-scopes/{custom}"
    ))
    .await;
    f.put(
        &format!("/shop/clients/{app}/optional-client-scopes/{custom}"),
        &json!({}),
    )
    .await;
    let (_, tokens) = grant(&f, "app", "openid tiered").await;
    assert_eq!(tokens["scope"], "openid profile");
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["tier"], 2);
    let (_, refreshed) = refresh(&f, &tokens).await;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["tier"],
        2,
        "{refreshed}"
    );
    let (_, tokens) = grant(&f, "app", "openid").await;
    assert!(claims(tokens["access_token"].as_str().unwrap())
        .get("tier")
        .is_none());
}

#[tokio::test]
async fn a_scopes_role_mappings_widen_a_narrow_clients_role_scope() {
    let f = shop().await;
    f.post("/shop/roles", &json!({"name": "reader"})).await;
    let ann = f.add_user("shop", "ann", Some("ann-pw"));
    f.post(
        &format!("/shop/users/{ann}/role-mappings/realm"),
        &json!([{"name": "reader"}]),
    )
    .await;
    public_client(&f, "narrow", json!({"fullScopeAllowed": false})).await;
    let roles =
        |t: &Value| claims(t["access_token"].as_str().unwrap())["realm_access"]["roles"].clone();
    let (_, tokens) = grant(&f, "narrow", "openid").await;
    assert_eq!(roles(&tokens), Value::Null, "no role in scope: {tokens}");

    let scope = created_id(
        &f.post(
            "/shop/client-scopes",
            &json!({"name": "reading", "protocol": "openid-connect"}),
        )
        .await,
    );
    let base = format!("/shop/client-scopes/{scope}/scope-mappings/realm");
    assert_eq!(f.post(&base, &json!([{"name": "reader"}])).await.0, 204);
    assert_eq!(names(&f.get(&base).await.2), ["reader"]);
    let (_, _, all) = f
        .get(&format!("/shop/client-scopes/{scope}/scope-mappings"))
        .await;
    assert_eq!(all["realmMappings"][0]["name"], "reader");
    let narrow = super::client_uuid(&f, "shop", "narrow").await;
    f.put(
        &format!("/shop/clients/{narrow}/optional-client-scopes/{scope}"),
        &json!({}),
    )
    .await;
    let (_, tokens) = grant(&f, "narrow", "openid").await;
    assert_eq!(roles(&tokens), Value::Null, "not asked for");
    let (_, tokens) = grant(&f, "narrow", "openid reading").await;
    assert_eq!(roles(&tokens), json!(["reader"]));
    // offline_access works through the built-in scope's own mapping.
    let (status, tokens) = grant(&f, "narrow", "openid offline_access").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims(tokens["refresh_token"].as_str().unwrap())["typ"],
        "Offline"
    );
    // Deleting the role takes it off the scope.
    f.delete("/shop/roles/reader").await;
    assert_eq!(f.get(&base).await.2, json!([]));
}

#[tokio::test]
async fn default_scope_lists_need_the_right_admin_roles() {
    let f = shop().await;
    let email = scope_id(&f, "shop", "email").await;
    let (_, viewer) = delegate(&f, "shop", "viewer", &["view-clients"]).await;
    let api = f.api(Some(&viewer));
    assert_eq!(api.get("/shop/client-scopes").await.0, 200);
    assert_eq!(
        api.get(&format!("/shop/client-scopes/{email}")).await.0,
        200
    );
    for (status, what) in [
        (
            api.put(
                &format!("/shop/client-scopes/{email}"),
                &json!({"name": "x"}),
            )
            .await
            .0,
            "update",
        ),
        (
            api.delete(&format!("/shop/client-scopes/{email}")).await.0,
            "delete",
        ),
        (
            api.put(
                &format!("/shop/default-default-client-scopes/{email}"),
                &json!({}),
            )
            .await
            .0,
            "realm default",
        ),
        (
            api.post(
                &format!("/shop/client-scopes/{email}/protocol-mappers/models"),
                &json!({"name": "n", "protocolMapper": "oidc-hardcoded-claim-mapper"}),
            )
            .await
            .0,
            "mapper",
        ),
    ] {
        assert_eq!(status, 403, "{what}");
    }
    let (_, clients_admin) = delegate(&f, "shop", "clients", &["manage-clients"]).await;
    let api = f.api(Some(&clients_admin));
    assert_eq!(
        api.put(
            &format!("/shop/default-default-client-scopes/{email}"),
            &json!({})
        )
        .await
        .0,
        403,
        "the realm's lists need manage-realm"
    );
    let (status, _, _) = f
        .put("/shop/default-default-client-scopes/nope", &json!({}))
        .await;
    assert_eq!(status, 404);
    // Moving a scope between the realm's lists.
    assert_eq!(
        f.put(
            &format!("/shop/default-optional-client-scopes/{email}"),
            &json!({})
        )
        .await
        .0,
        204
    );
    let (_, _, defaults) = f.get("/shop/default-default-client-scopes").await;
    assert!(!names(&defaults).contains(&"email".to_string()));
    let app = public_client(&f, "later", json!({})).await;
    let (_, _, client) = f.get(&format!("/shop/clients/{app}")).await;
    assert!(client["optionalClientScopes"]
        .as_array()
        .unwrap()
        .contains(&json!("email")));
}

#[tokio::test]
async fn realm_files_carry_client_scopes() {
    let f = shop().await;
    created_id(
        &f.post(
            "/shop/client-scopes",
            &json!({"name": "orders", "protocol": "openid-connect",
                "protocolMappers": [{"name": "tier", "protocol": "openid-connect",
                    "protocolMapper": "oidc-hardcoded-claim-mapper",
                    "config": {"claim.name": "tier", "claim.value": "1"}}]}),
        )
        .await,
    );
    public_client(
        &f,
        "app",
        json!({"defaultClientScopes": ["profile", "orders"], "optionalClientScopes": ["phone", "missing"]}),
    )
    .await;
    let (_, _, export) = f
        .post("/shop/partial-export?exportClients=true", &json!({}))
        .await;
    assert!(names(&export["clientScopes"]).contains(&"orders".to_string()));
    assert!(export["defaultDefaultClientScopes"]
        .as_array()
        .unwrap()
        .contains(&json!("profile")));
    let app = export["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "app")
        .unwrap()
        .clone();
    assert_eq!(app["defaultClientScopes"], json!(["profile", "orders"]));
    assert_eq!(
        app["optionalClientScopes"],
        json!(["phone"]),
        "unknown names skipped"
    );

    // The export imported as a new realm gives the same scopes.
    let mut copy = export.clone();
    copy["realm"] = "copy".into();
    copy["id"] = Value::Null;
    let (status, _, body) = f.post("", &copy).await;
    assert_eq!(status, 201, "{body}");
    let (_, _, scopes) = f.get("/copy/client-scopes").await;
    assert_eq!(names(&scopes), names(&export["clientScopes"]));
    let app = super::client_uuid(&f, "copy", "app").await;
    let (_, _, listed) = f
        .get(&format!("/copy/clients/{app}/default-client-scopes"))
        .await;
    assert_eq!(names(&listed), ["orders", "profile"]);
    let offline = scope_id(&f, "copy", "offline_access").await;
    let (_, _, mapped) = f
        .get(&format!(
            "/copy/client-scopes/{offline}/scope-mappings/realm"
        ))
        .await;
    assert_eq!(names(&mapped), ["offline_access"]);

    // A file without client scopes gets the built-in ones, with Keycloak's lists.
    let (status, _, _) = f
        .post(
            "",
            &json!({"realm": "bare", "clients": [{"clientId": "c", "publicClient": true}]}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, _, defaults) = f.get("/bare/default-default-client-scopes").await;
    assert_eq!(defaults.as_array().unwrap().len(), 6);
    let c = super::client_uuid(&f, "bare", "c").await;
    let (_, _, listed) = f
        .get(&format!("/bare/clients/{c}/default-client-scopes"))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 6);
    let offline = scope_id(&f, "bare", "offline_access").await;
    let (_, _, mapped) = f
        .get(&format!(
            "/bare/client-scopes/{offline}/scope-mappings/realm"
        ))
        .await;
    assert_eq!(names(&mapped), ["offline_access"]);
}

/// A store written before client scopes existed: the realm and its clients are brought up
/// to date at start, and tokens keep their claims.
#[tokio::test]
async fn older_realms_get_their_client_scopes_at_start() {
    let f = shop().await;
    public_client(&f, "old", json!({})).await;
    // As an older version left it: no scopes, no lists, clients with none.
    f.app
        .store
        .write(|w| {
            let mut realm = w.realm_by_name("shop")?.unwrap();
            for s in w.client_scopes(&realm.id)? {
                w.delete_client_scope(&realm.id, &s.id)?;
            }
            realm.default_client_scope_ids = None;
            realm.optional_client_scope_ids.clear();
            w.put_realm(&realm)?;
            let mut c = w.client_by_client_id(&realm.id, "old")?.unwrap();
            c.default_client_scopes = vec![];
            c.optional_client_scopes = vec!["phone".into()]; // names, as then
            w.put_client(&realm.id, &c)
        })
        .unwrap();
    let n = f
        .app
        .store
        .write(crate::idp::client_scopes::upgrade)
        .unwrap();
    assert!(n >= 1);
    assert_eq!(
        f.app
            .store
            .write(crate::idp::client_scopes::upgrade)
            .unwrap(),
        0
    );
    let old = super::client_uuid(&f, "shop", "old").await;
    let (_, _, client) = f.get(&format!("/shop/clients/{old}")).await;
    assert_eq!(client["optionalClientScopes"], json!(["phone"]));
    let admin_cli = super::client_uuid(&f, "shop", "admin-cli").await;
    let (_, _, client) = f.get(&format!("/shop/clients/{admin_cli}")).await;
    assert_eq!(client["defaultClientScopes"].as_array().unwrap().len(), 6);
}
