//! Sessions through the admin API (per client, statistics, ending one by id, consents and
//! offline sessions), default groups, composites by role id, and the cache endpoints.

use serde_json::{json, Value};

use super::{client_uuid, delegate, new_user, shop};
use crate::idp::testing::created_id;

#[tokio::test]
async fn client_sessions_statistics_and_ending_one_session() {
    let f = shop().await;
    f.add_user("shop", "ann", Some("ann-pw"));
    let tokens = f.password_grant("shop", "admin-cli", "ann", "ann-pw").await;
    let sid = tokens["session_state"].as_str().unwrap().to_string();
    let cli = client_uuid(&f, "shop", "admin-cli").await;

    let (status, _, list) = f.get(&format!("/shop/clients/{cli}/user-sessions")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], sid.as_str());
    assert_eq!(list[0]["username"], "ann");
    assert_eq!(list[0]["clients"][cli.as_str()], "admin-cli");
    let (_, _, count) = f.get(&format!("/shop/clients/{cli}/session-count")).await;
    assert_eq!(count, json!({"count": 1}));
    let (_, _, offline) = f
        .get(&format!("/shop/clients/{cli}/offline-session-count"))
        .await;
    assert_eq!(offline, json!({"count": 0}));
    let (_, _, stats) = f.get("/shop/client-session-stats").await;
    assert_eq!(
        stats,
        json!([{"id": cli, "clientId": "admin-cli", "active": "1", "offline": "0"}])
    );

    let (status, _, _) = f.delete(&format!("/shop/sessions/{sid}")).await;
    assert_eq!(status, 204);
    let (_, _, count) = f.get(&format!("/shop/clients/{cli}/session-count")).await;
    assert_eq!(count, json!({"count": 0}));
    let (status, _, body) = f.delete(&format!("/shop/sessions/{sid}")).await;
    assert_eq!(
        (status, body),
        (404, json!({"errorMessage": "Session not found"}))
    );
}

#[tokio::test]
async fn offline_tokens_are_the_users_consents_and_can_be_revoked() {
    let f = shop().await;
    let id = f.add_user("shop", "ann", Some("ann-pw"));
    let (status, body) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "ann"),
                ("password", "ann-pw"),
                ("scope", "openid offline_access"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, consents) = f.get(&format!("/shop/users/{id}/consents")).await;
    assert_eq!(consents.as_array().unwrap().len(), 1, "{consents}");
    assert_eq!(consents[0]["clientId"], "admin-cli");
    assert_eq!(consents[0]["additionalGrants"][0]["key"], "Offline Token");
    let cli = client_uuid(&f, "shop", "admin-cli").await;
    let (_, _, offline) = f
        .get(&format!("/shop/users/{id}/offline-sessions/{cli}"))
        .await;
    assert_eq!(offline.as_array().unwrap().len(), 1, "{offline}");

    let (status, _, _) = f
        .delete(&format!("/shop/users/{id}/consents/admin-cli"))
        .await;
    assert_eq!(status, 204);
    let (_, _, consents) = f.get(&format!("/shop/users/{id}/consents")).await;
    assert_eq!(consents, json!([]));
    // The revoked offline token no longer refreshes.
    let (status, _) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "admin-cli"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = f
        .delete(&format!("/shop/users/{id}/consents/admin-cli"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn new_users_join_the_default_groups() {
    let f = shop().await;
    let staff = created_id(&f.post("/shop/groups", &json!({"name": "staff"})).await);
    let (status, _, _) = f
        .put(&format!("/shop/default-groups/{staff}"), &json!({}))
        .await;
    assert_eq!(status, 204);
    // Twice is once.
    f.put(&format!("/shop/default-groups/{staff}"), &json!({}))
        .await;
    let (_, _, defaults) = f.get("/shop/default-groups").await;
    assert_eq!(
        defaults,
        json!([{"id": staff, "name": "staff", "path": "/staff"}])
    );
    let (status, _, _) = f.put("/shop/default-groups/nope", &json!({})).await;
    assert_eq!(status, 404);

    let bob = new_user(&f, "shop", json!({"username": "bob", "enabled": true})).await;
    let (_, _, groups) = f.get(&format!("/shop/users/{bob}/groups")).await;
    assert_eq!(groups[0]["name"], "staff", "{groups}");
    let (_, _, count) = f.get(&format!("/shop/users/{bob}/groups/count")).await;
    assert_eq!(count, json!({"count": 1}));

    // They travel with the realm: export names them by path, import resolves the paths.
    let (_, _, export) = f.post("/shop/partial-export", &json!({})).await;
    assert_eq!(export["defaultGroups"], json!(["/staff"]), "{export}");
    let (status, _, body) = f
        .post(
            "",
            &json!({"realm": "copy", "enabled": true, "groups": [{"name": "crew"}],
                    "defaultGroups": ["/crew"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, copied) = f.get("/copy/default-groups").await;
    assert_eq!(copied[0]["path"], "/crew", "{copied}");
    let (status, _, _) = f
        .post("", &json!({"realm": "bad", "defaultGroups": ["/nope"]}))
        .await;
    assert_eq!(
        status, 400,
        "an unknown default group is refused, nothing is created"
    );
    assert_eq!(f.get("/bad").await.0, 404);

    let (status, _, _) = f.delete(&format!("/shop/default-groups/{staff}")).await;
    assert_eq!(status, 204);
    assert_eq!(f.get("/shop/default-groups").await.2, json!([]));
    let carl = new_user(&f, "shop", json!({"username": "carl", "enabled": true})).await;
    let (_, _, count) = f.get(&format!("/shop/users/{carl}/groups/count")).await;
    assert_eq!(count, json!({"count": 0}));
}

#[tokio::test]
async fn composites_by_role_id_and_by_container() {
    let f = shop().await;
    for name in ["reader", "writer"] {
        f.post("/shop/roles", &json!({"name": name})).await;
    }
    let client = created_id(&f.post("/shop/clients", &json!({"clientId": "books"})).await);
    f.post(
        &format!("/shop/clients/{client}/roles"),
        &json!({"name": "lend"}),
    )
    .await;
    let role_id = |v: Value| v["id"].as_str().unwrap().to_string();
    let writer = role_id(f.get("/shop/roles/writer").await.2);
    let reader = role_id(f.get("/shop/roles/reader").await.2);
    let lend = role_id(f.get(&format!("/shop/clients/{client}/roles/lend")).await.2);
    let base = format!("/shop/roles-by-id/{writer}/composites");
    let (status, _, body) = f.post(&base, &json!([{"id": reader}, {"id": lend}])).await;
    assert_eq!(status, 204, "{body}");
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&f.get(&base).await.2), ["lend", "reader"]);
    assert_eq!(names(&f.get(&format!("{base}/realm")).await.2), ["reader"]);
    assert_eq!(
        names(&f.get(&format!("{base}/clients/{client}")).await.2),
        ["lend"]
    );
    assert_eq!(
        names(&f.get("/shop/roles/writer/composites/realm").await.2),
        ["reader"]
    );
    let (status, _, _) = f.delete_with(&base, &json!([{"id": reader}])).await;
    assert_eq!(status, 204);
    assert_eq!(names(&f.get(&base).await.2), ["lend"]);
    let (status, _, _) = f.get("/shop/roles-by-id/nope/composites").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cache_endpoints_answer_and_need_manage_realm() {
    let f = shop().await;
    for cache in ["clear-realm-cache", "clear-user-cache", "clear-keys-cache"] {
        let (status, _, _) = f.post(&format!("/shop/{cache}"), &json!({})).await;
        assert_eq!(status, 204, "{cache}");
    }
    let (status, _, _) = f.get("/shop/clear-realm-cache").await;
    assert_eq!(status, 405);
    let (status, _, pushed) = f.post("/shop/push-revocation", &json!({})).await;
    assert_eq!(
        (status, pushed),
        (200, json!({"successRequests": [], "failedRequests": []}))
    );
    assert_eq!(
        f.post("/shop/clients/nope/push-revocation", &json!({}))
            .await
            .0,
        404
    );
    let (_, viewer) = delegate(&f, "shop", "viewer", &["view-realm"]).await;
    let (status, _, _) = f
        .api(Some(&viewer))
        .post("/shop/clear-keys-cache", &json!({}))
        .await;
    assert_eq!(status, 403);
    // The keys still sign after their cache is dropped.
    f.add_user("shop", "ann", Some("ann-pw"));
    f.password_grant("shop", "admin-cli", "ann", "ann-pw").await;
}

/// `GET {path}` outside `/admin/realms` with `token`; (status, JSON).
async fn get_outside(f: &crate::idp::testing::Fixture, path: &str, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = f.send("GET", path, &[("authorization", &auth)], "").await;
    (r.status, r.json())
}

#[tokio::test]
async fn serverinfo_and_the_consoles_whoami() {
    let f = shop().await;
    let admin = f.admin_token.clone();
    let (status, info) = get_outside(&f, "/admin/serverinfo", &admin).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["systemInfo"]["version"], "26.0.0");
    assert!(info["passwordPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "length"));
    assert!(info["protocolMapperTypes"]["openid-connect"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "oidc-usermodel-attribute-mapper"));
    assert_eq!(
        info["enums"]["sslRequired"],
        json!(["all", "external", "none"])
    );
    let r = f.send("GET", "/admin/serverinfo", &[], "").await;
    assert_eq!(r.status, 401, "an administrator's token is needed");

    // The master administrator administers every realm with every role.
    let (status, me) = get_outside(&f, "/admin/master/console/whoami", &admin).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["realm"], "master");
    assert_eq!(me["createRealm"], true);
    let shop_roles = me["realm_access"]["shop"].as_array().unwrap();
    assert!(shop_roles.contains(&json!("manage-users")), "{me}");
    let (_, only) = get_outside(&f, "/admin/master/console/whoami?currentRealm=shop", &admin).await;
    assert_eq!(
        only["realm_access"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["shop"]
    );

    // A realm's delegate sees its own roles in its own realm, and may not ask as another.
    let (_, viewer) = delegate(&f, "shop", "viewer", &["view-users"]).await;
    let (status, me) = get_outside(&f, "/admin/shop/console/whoami", &viewer).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["realm_access"], json!({"shop": ["view-users"]}));
    assert_eq!(me["createRealm"], false);
    let (status, _) = get_outside(&f, "/admin/master/console/whoami", &viewer).await;
    assert_eq!(status, 403);
}
