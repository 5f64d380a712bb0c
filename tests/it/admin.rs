//! The admin REST API: permissions, Keycloak's status codes and messages, and clean deletes.

use serde_json::json;

use crate::api::Api;
use crate::harness::TestServer;

#[test]
fn no_token_is_401_and_missing_roles_403() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    let (secret, alice) = admin.setup_realm("t");
    let anonymous = Api::new(&server);
    let r = anonymous.get("/admin/realms/t/users");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let mut garbage = Api::new(&server);
    garbage.token = Some("not.a.token".into());
    assert_eq!(garbage.get("/admin/realms/t/users").status, 401);

    // Alice holds no management role.
    let mut alice_api = Api::new(&server);
    alice_api.token = Some(
        admin.alice_tokens("t", &secret, "openid")["access_token"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let r = alice_api.get("/admin/realms/t/users");
    assert_eq!(r.status, 403);
    assert!(r.body["error"].is_string());
    assert_eq!(
        alice_api
            .post("/admin/realms", &json!({"realm": "mine"}))
            .status,
        403
    );

    // Give her view-users on realm-management: she can list but not create.
    let rm = admin
        .get("/admin/realms/t/clients?clientId=realm-management")
        .body;
    let rm_id = rm[0]["id"].as_str().unwrap().to_string();
    let view_users = admin
        .get(&format!("/admin/realms/t/clients/{rm_id}/roles/view-users"))
        .body;
    let r = admin.post(
        &format!("/admin/realms/t/users/{alice}/role-mappings/clients/{rm_id}"),
        &json!([view_users]),
    );
    assert_eq!(r.status, 204);
    alice_api.token = Some(
        admin.alice_tokens("t", &secret, "openid")["access_token"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(alice_api.get("/admin/realms/t/users").status, 200);
    assert_eq!(
        alice_api
            .post("/admin/realms/t/users", &json!({"username": "bob"}))
            .status,
        403
    );
    // Her roles do not reach another realm.
    admin.setup_realm("other");
    assert_eq!(alice_api.get("/admin/realms/other/users").status, 403);
}

#[test]
fn conflicts_bad_bodies_and_unknown_ids() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let r = api.post("/admin/realms/t/users", &json!({"username": "ALICE"}));
    assert_eq!(r.status, 409);
    assert_eq!(r.body["errorMessage"], "User exists with same username");
    let r = api.post(
        "/admin/realms/t/users",
        &json!({"username": "alice2", "email": "Alice@Example.com"}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(r.body["errorMessage"], "User exists with same email");
    let r = api.post("/admin/realms/t/clients", &json!({"clientId": "app"}));
    assert_eq!(r.status, 409);
    assert_eq!(r.body["errorMessage"], "Client app already exists");
    let r = api.post("/admin/realms/t/roles", &json!({"name": "user"}));
    assert_eq!(r.status, 409);
    assert_eq!(r.body["errorMessage"], "Role with name user already exists");
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "t"})).status,
        409
    );
    assert_eq!(
        api.post("/admin/realms/t/groups", &json!({"name": "g"}))
            .status,
        201
    );
    assert_eq!(
        api.post("/admin/realms/t/groups", &json!({"name": "g"}))
            .status,
        409
    );

    // Bad bodies: 400 with errorMessage, nothing written.
    let before = api.get("/admin/realms/t/users/count").body;
    for body in [
        json!({"username": ""}),
        json!({"username": 5}),
        json!({"enabled": "yes", "username": "x"}),
        json!({"email": "x@y"}),
    ] {
        let r = api.post("/admin/realms/t/users", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.body["errorMessage"].is_string(), "{}", r.text);
    }
    let r = api
        .client
        .post(api.url("/admin/realms/t/users"))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(api.get("/admin/realms/t/users/count").body, before);
    let r = api.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "bad", "redirectUris": ["https://*.evil.com/cb"]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(api.post("/admin/realms", &json!({"realm": ""})).status, 400);

    // Unknown ids.
    assert_eq!(api.get("/admin/realms/t/users/nope").status, 404);
    assert_eq!(api.get("/admin/realms/t/clients/nope").status, 404);
    assert_eq!(api.get("/admin/realms/t/roles/nope").status, 404);
    assert_eq!(api.get("/admin/realms/t/groups/nope").status, 404);
    assert_eq!(api.get("/admin/realms/nope").status, 404);
    assert_eq!(api.delete("/admin/realms/t/users/nope").status, 404);
    assert_eq!(api.get("/admin/realms/t/no-such-resource").status, 404);
}

#[test]
fn search_count_paging_and_groups() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.post("/admin/realms", &json!({"realm": "t"}));
    for i in 0..12 {
        let r = api.post(
            "/admin/realms/t/users",
            &json!({"username": format!("user{i:02}"), "email": format!("u{i}@example.com"), "firstName": if i % 2 == 0 { "Even" } else { "Odd" }, "enabled": i != 3}),
        );
        assert_eq!(r.status, 201);
    }
    assert_eq!(api.get("/admin/realms/t/users/count").body, 12);
    let page = api.get("/admin/realms/t/users?first=5&max=3").body;
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["user05", "user06", "user07"]);
    assert_eq!(
        api.get("/admin/realms/t/users?search=even")
            .body
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        api.get("/admin/realms/t/users?firstName=odd&max=2")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/admin/realms/t/users?username=user1&exact=true")
            .body
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        api.get("/admin/realms/t/users?username=user1")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/admin/realms/t/users?enabled=False")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/admin/realms/t/users?email=u7@example.com&exact=true")
            .body[0]["username"],
        "user07"
    );
    let brief = api
        .get("/admin/realms/t/users?briefRepresentation=true&max=1")
        .body;
    assert!(brief[0].get("attributes").is_none());

    // A group tree with a member and a role inherited through the parent group.
    let parent = api
        .post("/admin/realms/t/groups", &json!({"name": "eng"}))
        .location_id();
    let child = api
        .post(
            &format!("/admin/realms/t/groups/{parent}/children"),
            &json!({"name": "backend"}),
        )
        .location_id();
    api.post("/admin/realms/t/roles", &json!({"name": "engineer"}));
    assert_eq!(
        api.post(
            &format!("/admin/realms/t/groups/{parent}/role-mappings/realm"),
            &json!([{"name": "engineer"}])
        )
        .status,
        204
    );
    let user = api
        .get("/admin/realms/t/users?username=user00&exact=true")
        .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.put(
            &format!("/admin/realms/t/users/{user}/groups/{child}"),
            &json!({})
        )
        .status,
        204
    );
    let groups = api
        .get(&format!("/admin/realms/t/users/{user}/groups"))
        .body;
    assert_eq!(groups[0]["path"], "/eng/backend");
    let found = api.get("/admin/realms/t/group-by-path/eng/backend").body;
    assert_eq!(found["id"], child.as_str());
    let tree = api.get("/admin/realms/t/groups").body;
    assert_eq!(tree[0]["subGroups"][0]["name"], "backend");
    let composite = api
        .get(&format!(
            "/admin/realms/t/users/{user}/role-mappings/realm/composite"
        ))
        .body;
    assert!(composite
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "engineer"));
    let members = api
        .get(&format!("/admin/realms/t/groups/{child}/members"))
        .body;
    assert_eq!(members[0]["username"], "user00");
}

#[test]
fn deleting_leaves_nothing_dangling_and_tokens_stop_working() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let tokens = api.alice_tokens("t", &secret, "openid");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let userinfo = || {
        api.client
            .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
            .bearer_auth(&access)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(userinfo(), 200);
    let sessions = api
        .get(&format!("/admin/realms/t/users/{alice}/sessions"))
        .body;
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    // Keycloak's UserSessionRepresentation: `clients` maps the client's uuid to its clientId.
    let uuid = api.get("/admin/realms/t/clients?clientId=app").body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sessions[0]["clients"][uuid.as_str()], "app", "{sessions}");

    // Deleting the role removes it from the user's mappings.
    assert_eq!(api.delete("/admin/realms/t/roles/user").status, 204);
    let mapped = api
        .get(&format!(
            "/admin/realms/t/users/{alice}/role-mappings/realm"
        ))
        .body;
    assert!(mapped
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] != "user"));

    // Logging the user out ends the session: the token stops working.
    assert_eq!(
        api.post(&format!("/admin/realms/t/users/{alice}/logout"), &json!({}))
            .status,
        204
    );
    assert_eq!(userinfo(), 401);

    // Deleting the user removes it and its sessions.
    api.alice_tokens("t", &secret, "openid");
    assert_eq!(
        api.delete(&format!("/admin/realms/t/users/{alice}")).status,
        204
    );
    assert_eq!(
        api.get(&format!("/admin/realms/t/users/{alice}")).status,
        404
    );
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ],
    );
    assert_eq!(r.status, 401);

    // Deleting the realm removes it and its management client in master.
    assert_eq!(api.delete("/admin/realms/t").status, 204);
    assert_eq!(api.get("/admin/realms/t").status, 404);
    assert_eq!(
        api.get("/admin/realms/master/clients?clientId=t-realm")
            .body,
        json!([])
    );
    assert_eq!(api.delete("/admin/realms/master").status, 400);
}

#[test]
fn realm_import_in_the_create_body() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let r = api.post(
        "/admin/realms",
        &json!({
            "realm": "full", "enabled": true, "accessTokenLifespan": 120,
            "roles": {"realm": [{"name": "reader"}], "client": {"web": [{"name": "web-admin"}]}},
            "clients": [{"clientId": "web", "secret": "web-secret", "directAccessGrantsEnabled": true}],
            "groups": [{"name": "staff", "realmRoles": ["reader"], "subGroups": [{"name": "night"}]}],
            "users": [{"username": "bob", "enabled": true, "credentials": [{"type": "password", "value": "Bob-pass-1"}],
                       "groups": ["/staff/night"], "clientRoles": {"web": ["web-admin"]}}]
        }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.token(
        "full",
        &[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", "web-secret"),
            ("username", "bob"),
            ("password", "Bob-pass-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["expires_in"], 120);
    let at = crate::api::claims(r.body["access_token"].as_str().unwrap());
    assert!(
        at["realm_access"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("reader")),
        "{at}"
    );
    assert_eq!(at["resource_access"]["web"]["roles"], json!(["web-admin"]));
}

#[test]
fn protocol_mappers_shape_the_tokens() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let uuid = api.get("/admin/realms/t/clients?clientId=app").body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/admin/realms/t/clients/{uuid}/protocol-mappers/models");
    let r = api.post(&base, &json!({"name": "groups", "protocol": "openid-connect", "protocolMapper": "oidc-group-membership-mapper",
        "config": {"claim.name": "groups", "full.path": "true", "access.token.claim": "true", "id.token.claim": "true", "userinfo.token.claim": "true"}}));
    assert_eq!(r.status, 201, "{}", r.text);
    let mapper_id = r.location_id();
    assert_eq!(api.post(&base, &json!({"name": "aud", "protocolMapper": "oidc-audience-mapper", "config": {"included.custom.audience": "orders-api"}})).status, 201);
    assert_eq!(api.post(&base, &json!({"name": "dept", "protocolMapper": "oidc-usermodel-attribute-mapper", "config": {"user.attribute": "department", "claim.name": "department"}})).status, 201);
    let r = api.post(
        &base,
        &json!({"name": "aud", "protocolMapper": "oidc-audience-mapper"}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        api.post(
            &base,
            &json!({"name": "evil", "protocolMapper": "script-mapper"})
        )
        .status,
        400
    );
    assert_eq!(api.get(&base).body.as_array().unwrap().len(), 3);
    assert_eq!(
        api.get(&format!("{base}/{mapper_id}")).body["name"],
        "groups"
    );

    let group = api
        .post("/admin/realms/t/groups", &json!({"name": "staff"}))
        .location_id();
    api.put(
        &format!("/admin/realms/t/users/{alice}/groups/{group}"),
        &json!({}),
    );
    api.put(
        &format!("/admin/realms/t/users/{alice}"),
        &json!({"attributes": {"department": ["sales"]}}),
    );
    let tokens = api.alice_tokens("t", &secret, "openid");
    let at = crate::api::claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["groups"], json!(["/staff"]));
    assert_eq!(at["department"], "sales");
    assert!(
        at["aud"].as_array().unwrap().contains(&json!("orders-api")),
        "{at}"
    );
    let id = crate::api::claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["groups"], json!(["/staff"]));
    let info: serde_json::Value = api
        .client
        .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["groups"], json!(["/staff"]));
    assert_eq!(api.delete(&format!("{base}/{mapper_id}")).status, 204);
    let at = crate::api::claims(
        api.alice_tokens("t", &secret, "openid")["access_token"]
            .as_str()
            .unwrap(),
    );
    assert!(at.get("groups").is_none());
}

#[test]
fn identity_providers_and_ldap_components_are_stored_validated_and_masked() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.post("/admin/realms", &json!({"realm": "t"}));
    let idp = json!({"alias": "corp", "providerId": "oidc", "config": {"clientId": "portcullis", "clientSecret": "s3cret",
        "authorizationUrl": "https://idp.example.com/auth", "tokenUrl": "https://idp.example.com/token", "syncMode": "IMPORT"}});
    let r = api.post("/admin/realms/t/identity-provider/instances", &idp);
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("/identity-provider/instances/corp"));
    assert_eq!(
        api.post("/admin/realms/t/identity-provider/instances", &idp)
            .status,
        409
    );
    let got = api
        .get("/admin/realms/t/identity-provider/instances/corp")
        .body;
    assert_eq!(got["config"]["clientSecret"], "**********");
    assert_eq!(got["enabled"], true);
    assert!(got["internalId"].is_string());
    // Writing the mask back keeps the secret; bad input is a 400 naming the field.
    let mut update = got.clone();
    update["displayName"] = json!("Corporate SSO");
    assert_eq!(
        api.put("/admin/realms/t/identity-provider/instances/corp", &update)
            .status,
        204
    );
    let r = api.post(
        "/admin/realms/t/identity-provider/instances",
        &json!({"alias": "x", "providerId": "oidc", "config": {"clientId": "c"}}),
    );
    assert_eq!(r.status, 400);
    assert!(r.body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("authorizationUrl"));
    let r = api.post("/admin/realms/t/identity-provider/instances/corp/mappers", &json!({"name": "role", "identityProviderMapper": "hardcoded-role-idp-mapper", "config": {"role": "nobody-has-this"}}));
    assert_eq!(r.status, 400, "the role must exist, as Keycloak checks");
    let r = api.post("/admin/realms/t/identity-provider/instances/corp/mappers", &json!({"name": "role", "identityProviderMapper": "hardcoded-role-idp-mapper", "config": {"role": "offline_access"}}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        api.get("/admin/realms/t/identity-provider/instances/corp/mappers")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.delete("/admin/realms/t/identity-provider/instances/corp")
            .status,
        204
    );
    assert_eq!(
        api.get("/admin/realms/t/identity-provider/instances").body,
        json!([])
    );

    let ldap = json!({"name": "ldap", "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider", "config": {
        "connectionUrl": ["ldap://127.0.0.1:389"], "usersDn": ["ou=people,dc=example,dc=org"], "bindDn": ["cn=admin,dc=example,dc=org"],
        "bindCredential": ["admin-secret"], "vendor": ["other"], "editMode": ["READ_ONLY"], "usernameLDAPAttribute": ["uid"],
        "rdnLDAPAttribute": ["uid"], "uuidLDAPAttribute": ["entryUUID"], "userObjectClasses": ["inetOrgPerson, organizationalPerson"]}});
    let r = api.post("/admin/realms/t/components", &ldap);
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    let list = api
        .get("/admin/realms/t/components?type=org.keycloak.storage.UserStorageProvider")
        .body;
    assert_eq!(list[0]["config"]["bindCredential"], json!(["**********"]));
    let mut bad = ldap.clone();
    bad["config"]["connectionUrl"] = json!(["http://nope"]);
    assert_eq!(
        api.put(&format!("/admin/realms/t/components/{id}"), &bad)
            .status,
        400
    );
    assert_eq!(
        api.delete(&format!("/admin/realms/t/components/{id}"))
            .status,
        204
    );
}

#[test]
fn login_and_admin_events_are_recorded_and_queried() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    // Nothing is recorded until the realm enables it.
    api.alice_tokens("t", &secret, "openid");
    assert_eq!(api.get("/admin/realms/t/events").body, json!([]));
    let r = api.put(
        "/admin/realms/t/events/config",
        &json!({"eventsEnabled": true, "adminEventsEnabled": true, "adminEventsDetailsEnabled": true, "eventsExpiration": 3600}),
    );
    assert_eq!(r.status, 204);
    let config = api.get("/admin/realms/t/events/config").body;
    assert_eq!(config["eventsEnabled"], true);
    assert_eq!(config["eventsListeners"], json!(["jboss-logging"]));
    assert_eq!(
        api.put(
            "/admin/realms/t/events/config",
            &json!({"eventsListeners": ["kafka"]})
        )
        .status,
        400
    );

    let tokens = api.alice_tokens("t", &secret, "openid");
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "wrong"),
        ],
    );
    assert_eq!(r.status, 401);
    api.token(
        "t",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    );
    api.token(
        "t",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", &secret),
        ],
    );

    let events = api.get("/admin/realms/t/events").body;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["CLIENT_LOGIN", "REFRESH_TOKEN", "LOGIN_ERROR", "LOGIN"],
        "newest first"
    );
    let error = &events[2];
    assert_eq!(error["error"], "invalid_user_credentials");
    assert_eq!(error["details"]["username"], "alice");
    let login = &events[3];
    assert_eq!(login["userId"], alice.as_str());
    assert_eq!(login["clientId"], "app");
    assert_eq!(login["sessionId"], tokens["session_state"]);
    // Filters and paging.
    assert_eq!(
        api.get("/admin/realms/t/events?type=LOGIN")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get(&format!("/admin/realms/t/events?user={alice}"))
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/admin/realms/t/events?first=1&max=2")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/admin/realms/t/events?dateFrom=2999-01-01").body,
        json!([])
    );

    // Admin events: the change, its path and (details on) its body; no password ever.
    api.post("/admin/realms/t/users", &json!({"username": "dave"}));
    api.put(
        &format!("/admin/realms/t/users/{alice}/reset-password"),
        &json!({"type": "password", "value": "Secret-9", "temporary": false}),
    );
    let admin_events = api.get("/admin/realms/t/admin-events").body;
    let list = admin_events.as_array().unwrap();
    assert_eq!(list.len(), 3, "{admin_events}");
    assert_eq!(
        list[2]["resourcePath"], "events/config",
        "turning admin events on is itself recorded"
    );
    assert_eq!(list[1]["operationType"], "CREATE");
    assert_eq!(list[1]["resourceType"], "USER");
    assert!(list[1]["representation"].as_str().unwrap().contains("dave"));
    assert_eq!(list[0]["operationType"], "ACTION");
    assert!(!admin_events.to_string().contains("Secret-9"));
    assert_eq!(
        api.get("/admin/realms/t/admin-events?operationTypes=CREATE")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(api.delete("/admin/realms/t/events").status, 204);
    assert_eq!(api.get("/admin/realms/t/events").body, json!([]));
    assert_eq!(
        api.get("/admin/realms/t/admin-events")
            .body
            .as_array()
            .unwrap()
            .len(),
        4,
        "admin events kept (clearing login events is one)"
    );
}

#[test]
fn group_role_mappings_at_realm_and_client_level() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let uuid = api.get("/admin/realms/t/clients?clientId=app").body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(
        &format!("/admin/realms/t/clients/{uuid}/roles"),
        &json!({"name": "editor"}),
    );
    api.post(
        &format!("/admin/realms/t/clients/{uuid}/roles"),
        &json!({"name": "viewer"}),
    );
    let parent = api
        .post("/admin/realms/t/groups", &json!({"name": "org"}))
        .location_id();
    let child = api
        .post(
            &format!("/admin/realms/t/groups/{parent}/children"),
            &json!({"name": "team"}),
        )
        .location_id();
    let r = api.post(
        &format!("/admin/realms/t/groups/{parent}/role-mappings/clients/{uuid}"),
        &json!([{"name": "editor"}]),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let direct = api
        .get(&format!(
            "/admin/realms/t/groups/{child}/role-mappings/clients/{uuid}"
        ))
        .body;
    assert_eq!(direct, json!([]));
    let composite = api
        .get(&format!(
            "/admin/realms/t/groups/{child}/role-mappings/clients/{uuid}/composite"
        ))
        .body;
    assert_eq!(
        composite[0]["name"], "editor",
        "inherited from the parent group"
    );
    let available = api
        .get(&format!(
            "/admin/realms/t/groups/{child}/role-mappings/clients/{uuid}/available"
        ))
        .body;
    assert_eq!(available.as_array().unwrap().len(), 1);
    assert_eq!(available[0]["name"], "viewer");
    api.put(
        &format!("/admin/realms/t/users/{alice}/groups/{child}"),
        &json!({}),
    );
    let at = crate::api::claims(
        api.alice_tokens("t", &secret, "openid")["access_token"]
            .as_str()
            .unwrap(),
    );
    assert!(
        at["resource_access"]["app"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("editor")),
        "{at}"
    );
    assert_eq!(
        api.post(
            &format!("/admin/realms/t/groups/{child}/role-mappings/clients/{uuid}"),
            &json!([{"name": "user"}])
        )
        .status,
        404,
        "a realm role is not a client role"
    );
}

#[test]
fn attack_detection_endpoints() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    assert_eq!(
        api.put(
            "/admin/realms/t",
            &json!({"bruteForceProtected": true, "failureFactor": 2, "waitIncrementSeconds": 600})
        )
        .status,
        204
    );
    assert_eq!(
        api.put("/admin/realms/t", &json!({"failureFactor": 0}))
            .status,
        400
    );
    let login = |password: &str| {
        api.token(
            "t",
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", &secret),
                ("username", "alice"),
                ("password", password),
            ],
        )
    };
    let wrong = login("nope");
    login("nope");
    let locked = login("Alice-pass-1");
    assert_eq!(
        (locked.status, &locked.body),
        (wrong.status, &wrong.body),
        "a locked user looks like a wrong password"
    );
    let status = api
        .get(&format!(
            "/admin/realms/t/attack-detection/brute-force/users/{alice}"
        ))
        .body;
    assert_eq!(status["numFailures"], 2);
    assert_eq!(status["disabled"], true);
    assert_eq!(status["lastIPFailure"], "127.0.0.1");
    assert_eq!(
        api.delete(&format!(
            "/admin/realms/t/attack-detection/brute-force/users/{alice}"
        ))
        .status,
        204
    );
    assert_eq!(login("Alice-pass-1").status, 200);
    assert_eq!(api.get("/admin/realms/t").body["bruteForceProtected"], true);
}

#[test]
fn password_policy_is_enforced_wherever_a_password_is_set() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let r = api.put(
        "/admin/realms/t",
        &json!({"passwordPolicy": "length(12) and bogus(3)"}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body["errorMessage"].as_str().unwrap().contains("bogus"),
        "{}",
        r.text
    );
    let policy = "length(12) and digits(1) and upperCase(1) and specialChars(1) and notUsername and passwordHistory(2) and hashIterations(3)";
    assert_eq!(
        api.put("/admin/realms/t", &json!({"passwordPolicy": policy}))
            .status,
        204
    );
    assert_eq!(api.get("/admin/realms/t").body["passwordPolicy"], policy);
    let reset = |value: &str| {
        api.put(
            &format!("/admin/realms/t/users/{alice}/reset-password"),
            &json!({"type": "password", "value": value, "temporary": false}),
        )
    };
    let r = reset("short1!A");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errorMessage"],
        "Invalid password: minimum length 12."
    );
    assert_eq!(
        reset("longenough-but-no-digit!A").body["errorMessage"],
        "Invalid password: must contain at least 1 numerical digits."
    );
    assert_eq!(reset("Long-enough-1").status, 204);
    // The hash uses the policy's iterations.
    let creds = api
        .get(&format!("/admin/realms/t/users/{alice}/credentials"))
        .body;
    let data: serde_json::Value =
        serde_json::from_str(creds[0]["credentialData"].as_str().unwrap()).unwrap();
    assert_eq!(data["hashIterations"], 3);
    // History: the current password cannot be set again.
    assert_eq!(
        reset("Long-enough-1").body["errorMessage"],
        "Invalid password: must not be equal to any of last 2 passwords."
    );
    assert_eq!(reset("Another-long-2").status, 204);
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Another-long-2"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // New users too.
    let r = api.post(
        "/admin/realms/t/users",
        &json!({"username": "weak", "credentials": [{"type": "password", "value": "weak"}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        api.get("/admin/realms/t/users?username=weak&exact=true")
            .body,
        json!([]),
        "nothing half-written"
    );
}
