//! In-process tests of the admin REST API: every request goes through `App::handle` with a
//! real access token from the token endpoint. This file holds the helpers and the
//! permission rules; the resources have their own files under `tests/`.

mod client_policies;
mod client_scopes;
mod clients;
mod coverage;
mod flows;
mod groups;
mod realms;
mod roles;
mod sessions;
mod users;

use serde_json::{json, Value};

use crate::idp::testing::{created_id, Fixture};
use crate::store::RealmRecord;

/// The administrator's fixture with the realm `shop`.
async fn shop() -> Fixture {
    let f = Fixture::new().await;
    f.create_realm(RealmRecord {
        name: "shop".into(),
        ..Default::default()
    });
    f
}

/// Create a user through the API; returns its id.
async fn new_user(f: &Fixture, realm: &str, body: Value) -> String {
    created_id(&f.post(&format!("/{realm}/users"), &body).await)
}

/// The uuid of a client by its `clientId`.
async fn client_uuid(f: &Fixture, realm: &str, client_id: &str) -> String {
    let (status, _, list) = f
        .get(&format!("/{realm}/clients?clientId={client_id}"))
        .await;
    assert_eq!(status, 200, "{list}");
    list[0]["id"].as_str().unwrap().to_string()
}

/// Give `user` the roles `names` of the client `client_id` (as the administrator).
async fn grant_client_roles(f: &Fixture, realm: &str, user: &str, client_id: &str, names: &[&str]) {
    let client = client_uuid(f, realm, client_id).await;
    let roles: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let (status, _, body) = f
        .post(
            &format!("/{realm}/users/{user}/role-mappings/clients/{client}"),
            &json!(roles),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// The names (or usernames) in a list of representations, sorted.
fn names(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| {
            r.get("name")
                .or_else(|| r.get("username"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    out.sort();
    out
}

/// A user of `realm` holding the `realm-management` roles `roles`, and its access token.
async fn delegate(f: &Fixture, realm: &str, username: &str, roles: &[&str]) -> (String, String) {
    let id = f.add_user(realm, username, Some("delegate-pw"));
    grant_client_roles(f, realm, &id, "realm-management", roles).await;
    let token = f.access_token(realm, username, "delegate-pw").await;
    (id, token)
}

#[tokio::test]
async fn no_or_bad_token_is_401_with_a_bearer_challenge() {
    let f = Fixture::new().await;
    let (status, headers, body) = f.api(None).get("/master/users").await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(body, json!({"error": "HTTP 401 Unauthorized"}));
    assert_eq!(f.api(Some("not-a-jwt")).get("/master/users").await.0, 401);
    assert_eq!(f.get("/master/users").await.0, 200);
    // Master access tokens live 300 s.
    f.clock.advance_millis(301_000);
    assert_eq!(f.get("/master/users").await.0, 401, "expired");
}

#[tokio::test]
async fn a_disabled_user_s_token_stops_working_at_once() {
    let f = shop().await;
    let (id, token) = delegate(&f, "shop", "helper", &["view-users"]).await;
    assert_eq!(f.api(Some(&token)).get("/shop/users").await.0, 200);
    let (status, _, _) = f
        .put(&format!("/shop/users/{id}"), &json!({"enabled": false}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(f.api(Some(&token)).get("/shop/users").await.0, 401);
}

#[tokio::test]
async fn too_few_roles_is_403_and_roles_are_read_at_each_request() {
    let f = shop().await;
    let shop_id = f.realm("shop").id;
    let (id, token) = delegate(&f, "shop", "helper", &["view-users"]).await;
    let api = f.api(Some(&token));
    assert_eq!(api.get("/shop/users").await.0, 200);
    assert_eq!(api.get("/shop/users/count").await.0, 200);
    let (status, _, body) = api.post("/shop/users", &json!({"username": "x"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": "HTTP 403 Forbidden", "errorMessage": "HTTP 403 Forbidden"})
    );
    assert_eq!(api.get("/shop/clients").await.0, 403, "no query-clients");
    assert_eq!(api.get("/master/users").await.0, 403, "another realm");
    assert_eq!(api.post("/", &json!({"realm": "x"})).await.0, 403);
    // It administers shop in some way: it sees the realm's name, not its settings.
    let (status, _, list) = api.get("").await;
    assert_eq!(
        (status, list),
        (200, json!([{"id": shop_id, "realm": "shop"}]))
    );
    let (status, _, one) = api.get("/shop").await;
    assert_eq!(
        (status, one),
        (200, json!({"id": shop_id, "realm": "shop"}))
    );
    assert_eq!(api.get("/master").await.0, 403);
    // Taking the role away works on the same token.
    let rm = client_uuid(&f, "shop", "realm-management").await;
    let (status, _, _) = f
        .delete_with(
            &format!("/shop/users/{id}/role-mappings/clients/{rm}"),
            &json!([{"name": "view-users"}]),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(api.get("/shop/users").await.0, 403);
}

#[tokio::test]
async fn a_manage_users_delegate_cannot_hand_out_power_it_lacks() {
    let f = shop().await;
    let (_, token) = delegate(&f, "shop", "helper", &["manage-users"]).await;
    let api = f.api(Some(&token));
    let rm = client_uuid(&f, "shop", "realm-management").await;
    assert_eq!(
        created_id(&f.post("/shop/roles", &json!({"name": "viewer"})).await),
        "viewer"
    );
    let user = created_id(
        &api.post(
            "/shop/users",
            &json!({"username": "user1", "enabled": true}),
        )
        .await,
    );
    let realm_path = format!("/shop/users/{user}/role-mappings/realm");
    let client_path = format!("/shop/users/{user}/role-mappings/clients/{rm}");
    assert_eq!(
        api.post(&realm_path, &json!([{"name": "viewer"}])).await.0,
        204
    );
    let (status, _, body) = api
        .post(&client_path, &json!([{"name": "realm-admin"}]))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["errorMessage"],
        "You may not grant the administrative role realm-admin which you do not hold"
    );
    // What it holds it may pass on: exactly those roles, not those they imply.
    assert_eq!(
        api.post(&client_path, &json!([{"name": "manage-users"}]))
            .await
            .0,
        204
    );
    assert_eq!(
        api.post(&client_path, &json!([{"name": "view-users"}]))
            .await
            .0,
        403
    );
    let (_, _, held) = f.get(&client_path).await;
    assert_eq!(names(&held), ["manage-users"]);

    // Nor through a composite, a new user's roles, or a group's.
    f.post("/shop/roles", &json!({"name": "sneaky"})).await;
    let (status, _, _) = f
        .post(
            "/shop/roles/sneaky/composites",
            &json!([{"name": "realm-admin", "containerId": rm}]),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = api.post(&realm_path, &json!([{"name": "sneaky"}])).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("realm-admin"));
    let (status, _, _) = api
        .post(
            "/shop/users",
            &json!({"username": "user2", "clientRoles": {"realm-management": ["realm-admin"]}}),
        )
        .await;
    assert_eq!(status, 403);
    let (_, _, found) = f.get("/shop/users?username=u2&exact=true").await;
    assert_eq!(found, json!([]), "nothing created");
    let group = created_id(&f.post("/shop/groups", &json!({"name": "admins"})).await);
    let (status, _, _) = f
        .post(
            &format!("/shop/groups/{group}/role-mappings/clients/{rm}"),
            &json!([{"name": "realm-admin"}]),
        )
        .await;
    assert_eq!(status, 204);
    let join = format!("/shop/users/{user}/groups/{group}");
    assert_eq!(api.put(&join, &json!({})).await.0, 403);
    let (_, _, groups) = f.get(&format!("/shop/users/{user}/groups")).await;
    assert_eq!(groups, json!([]));
    // The administrator may.
    assert_eq!(f.put(&join, &json!({})).await.0, 204);
}

#[tokio::test]
async fn a_master_delegate_may_not_grant_master_s_admin_role() {
    let f = shop().await;
    let ops = f.add_user("master", "ops", Some("ops-pw"));
    grant_client_roles(&f, "master", &ops, "master-realm", &["manage-users"]).await;
    grant_client_roles(&f, "master", &ops, "shop-realm", &["manage-users"]).await;
    let token = f.access_token("master", "ops", "ops-pw").await;
    let api = f.api(Some(&token));
    assert_eq!(api.get("/master/users").await.0, 200);
    let (status, _, _) = api.post("/shop/users", &json!({"username": "sam"})).await;
    assert_eq!(status, 201, "shop-realm's manage-users works on shop");
    assert_eq!(api.get("/shop/clients").await.0, 403);

    let victim = f.add_user("master", "victim", None);
    let realm_path = format!("/master/users/{victim}/role-mappings/realm");
    for role in ["admin", "create-realm"] {
        let (status, _, body) = api.post(&realm_path, &json!([{"name": role}])).await;
        assert_eq!(status, 403);
        assert_eq!(
            body["errorMessage"],
            format!("You may not grant the administrative role {role} which you do not hold")
        );
    }
    let shop_realm = client_uuid(&f, "master", "shop-realm").await;
    let client_path = format!("/master/users/{victim}/role-mappings/clients/{shop_realm}");
    assert_eq!(
        api.post(&client_path, &json!([{"name": "manage-users"}]))
            .await
            .0,
        204
    );
    let (status, _, body) = api
        .post(&client_path, &json!([{"name": "manage-clients"}]))
        .await;
    assert_eq!(status, 403, "{body}");
    // The super-administrator grants anything.
    assert_eq!(
        f.post(&realm_path, &json!([{"name": "admin"}])).await.0,
        204
    );
}

#[tokio::test]
async fn a_realm_creator_administers_what_it_created_only() {
    let f = shop().await;
    let creator = f.add_user("master", "creator", Some("creator-pw"));
    let (status, _, _) = f
        .post(
            &format!("/master/users/{creator}/role-mappings/realm"),
            &json!([{"name": "create-realm"}]),
        )
        .await;
    assert_eq!(status, 204);
    let token = f.access_token("master", "creator", "creator-pw").await;
    let api = f.api(Some(&token));
    let (status, _, _) = api.post("/", &realms::realm_body("fresh")).await;
    assert_eq!(status, 201);
    let (status, _, repr) = api.get("/fresh").await;
    assert_eq!((status, repr["enabled"].clone()), (200, json!(true)));
    assert_eq!(api.get("/shop").await.0, 403);
    let (_, _, list) = api.get("").await;
    assert_eq!(names_of_realms(&list), ["fresh"]);
    assert_eq!(api.delete("/fresh").await.0, 204);
}

fn names_of_realms(list: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["realm"].as_str().unwrap())
        .collect();
    out.sort();
    out
}
