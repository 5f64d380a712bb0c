//! Realm and client roles, composites, and users' role mappings (direct, available and
//! composite views).

use serde_json::json;

use super::{names, new_user, shop};
use crate::idp::testing::{created_id, Fixture};

/// `viewer`, `editor` (composite of viewer) and `auditor`, the client `shop-app` with the
/// roles `buyer` and `seller`, and the user `alice`. Returns (client uuid, alice's id).
async fn roles_fixture() -> (Fixture, String, String) {
    let f = shop().await;
    for name in ["viewer", "editor", "auditor"] {
        assert_eq!(
            created_id(&f.post("/shop/roles", &json!({"name": name})).await),
            name
        );
    }
    let (status, _, _) = f
        .post(
            "/shop/roles/editor/composites",
            &json!([{"name": "viewer"}]),
        )
        .await;
    assert_eq!(status, 204);
    let client = created_id(
        &f.post("/shop/clients", &json!({"clientId": "shop-app"}))
            .await,
    );
    for name in ["buyer", "seller"] {
        let answer = f
            .post(
                &format!("/shop/clients/{client}/roles"),
                &json!({"name": name}),
            )
            .await;
        assert_eq!(answer.0, 201, "{}", answer.2);
    }
    let alice = new_user(&f, "shop", json!({"username": "alice", "enabled": true})).await;
    (f, client, alice)
}

#[tokio::test]
async fn realm_roles_crud() {
    let f = shop().await;
    let realm_id = f.realm("shop").id;
    let (status, headers, _) = f
        .post(
            "/shop/roles",
            &json!({"name": "viewer", "description": "reads"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        headers["location"],
        "https://idp.test/admin/realms/shop/roles/viewer"
    );
    let (s, _, body) = f.post("/shop/roles", &json!({"name": "viewer"})).await;
    assert_eq!(
        (s, body),
        (
            409,
            json!({"errorMessage": "Role with name viewer already exists"})
        )
    );
    let (s, _, body) = f.post("/shop/roles", &json!({"description": "x"})).await;
    assert_eq!(
        (s, body),
        (400, json!({"errorMessage": "Role name is required"}))
    );
    let (s, _, role) = f.get("/shop/roles/viewer").await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            &role["description"],
            &role["composite"],
            &role["clientRole"]
        ),
        (&json!("reads"), &json!(false), &json!(false))
    );
    assert_eq!(role["containerId"], realm_id.as_str());
    let id = role["id"].as_str().unwrap().to_string();
    assert_eq!(names(&f.get("/shop/roles?search=VIE").await.2), ["viewer"]);
    assert_eq!(
        f.put("/shop/roles/viewer", &json!({"description": "looks"}))
            .await
            .0,
        204
    );
    let (_, _, by_id) = f.get(&format!("/shop/roles-by-id/{id}")).await;
    assert_eq!(by_id["description"], "looks");
    let (s, _, body) = f
        .put("/shop/roles/viewer", &json!({"name": "offline_access"}))
        .await;
    assert_eq!(
        (s, body),
        (
            409,
            json!({"errorMessage": "Role with name offline_access already exists"})
        )
    );
    assert_eq!(f.delete("/shop/roles/viewer").await.0, 204);
    let (s, _, body) = f.get("/shop/roles/viewer").await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find role"}))
    );
    let (s, _, body) = f.get(&format!("/shop/roles-by-id/{id}")).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find role with id"}))
    );
}

#[tokio::test]
async fn composites_of_realm_and_client_roles() {
    let (f, client, _) = roles_fixture().await;
    assert_eq!(f.get("/shop/roles/editor").await.2["composite"], true);
    assert_eq!(
        names(&f.get("/shop/roles/editor/composites").await.2),
        ["viewer"]
    );
    let (s, _, _) = f
        .post(
            "/shop/roles/editor/composites",
            &json!([{"name": "buyer", "containerId": client}]),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        names(&f.get("/shop/roles/editor/composites").await.2),
        ["buyer", "viewer"]
    );
    let (s, _, body) = f
        .post("/shop/roles/editor/composites", &json!([{"name": "nope"}]))
        .await;
    assert_eq!(
        (s, body),
        (
            404,
            json!({"errorMessage": "Could not find composite role"})
        )
    );
    let composites = "/shop/roles/editor/composites";
    let viewer_and_buyer = json!([{"name": "viewer"}, {"name": "buyer", "containerId": client}]);
    assert_eq!(f.delete_with(composites, &viewer_and_buyer).await.0, 204);
    assert_eq!(f.get(composites).await.2, json!([]));
    assert_eq!(f.get("/shop/roles/editor").await.2["composite"], false);
}

#[tokio::test]
async fn client_roles_live_under_their_client() {
    let (f, client, _) = roles_fixture().await;
    let path = format!("/shop/clients/{client}/roles");
    assert_eq!(names(&f.get(&path).await.2), ["buyer", "seller"]);
    let (s, _, buyer) = f.get(&format!("{path}/buyer")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&buyer["clientRole"], &buyer["containerId"]),
        (&json!(true), &json!(client))
    );
    assert_eq!(f.get("/shop/roles/buyer").await.0, 404, "not a realm role");
    assert_eq!(f.delete(&format!("{path}/seller")).await.0, 204);
    assert_eq!(names(&f.get(&path).await.2), ["buyer"]);
    let (s, _, body) = f.get("/shop/clients/nope/roles").await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find client"}))
    );
}

#[tokio::test]
async fn realm_role_mappings_direct_available_and_composite() {
    let (f, client, alice) = roles_fixture().await;
    let base = format!("/shop/users/{alice}/role-mappings/realm");
    assert_eq!(f.post(&base, &json!([{"name": "editor"}])).await.0, 204);
    assert_eq!(
        names(&f.get(&base).await.2),
        ["default-roles-shop", "editor"]
    );
    assert_eq!(
        names(&f.get(&format!("{base}/composite")).await.2),
        [
            "default-roles-shop",
            "editor",
            "offline_access",
            "uma_authorization",
            "viewer"
        ]
    );
    assert_eq!(
        names(&f.get(&format!("{base}/available")).await.2),
        ["auditor"]
    );
    assert_eq!(names(&f.get("/shop/roles/editor/users").await.2), ["alice"]);
    assert_eq!(
        f.get("/shop/roles/viewer/users").await.2,
        json!([]),
        "only direct holders"
    );
    let (s, _, body) = f.post(&base, &json!([{"name": "nope"}])).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find role: nope"}))
    );
    // A client role named by id is not a realm role.
    let (_, _, buyer) = f.get(&format!("/shop/clients/{client}/roles/buyer")).await;
    let buyer_id = buyer["id"].as_str().unwrap();
    assert_eq!(f.post(&base, &json!([{"id": buyer_id}])).await.0, 404);
    assert_eq!(
        f.post(&format!("{base}/available"), &json!([])).await.0,
        405
    );
    assert_eq!(
        f.delete_with(&base, &json!([{"name": "editor"}])).await.0,
        204
    );
    let composite = names(&f.get(&format!("{base}/composite")).await.2);
    assert!(!composite.contains(&"viewer".to_string()), "{composite:?}");
    let (s, _, body) = f.get("/shop/users/nobody/role-mappings/realm").await;
    assert_eq!((s, body), (404, json!({"errorMessage": "User not found"})));
}

#[tokio::test]
async fn client_role_mappings_and_the_summary() {
    let (f, client, alice) = roles_fixture().await;
    let base = format!("/shop/users/{alice}/role-mappings/clients/{client}");
    assert_eq!(f.post(&base, &json!([{"name": "buyer"}])).await.0, 204);
    assert_eq!(names(&f.get(&base).await.2), ["buyer"]);
    assert_eq!(
        names(&f.get(&format!("{base}/available")).await.2),
        ["seller"]
    );
    assert_eq!(
        names(&f.get(&format!("{base}/composite")).await.2),
        ["buyer"]
    );
    f.post(
        &format!("/shop/users/{alice}/role-mappings/realm"),
        &json!([{"name": "auditor"}]),
    )
    .await;
    let (s, _, all) = f.get(&format!("/shop/users/{alice}/role-mappings")).await;
    assert_eq!(s, 200);
    assert_eq!(
        names(&all["realmMappings"]),
        ["auditor", "default-roles-shop"]
    );
    assert_eq!(all["clientMappings"].as_object().unwrap().len(), 1, "{all}");
    let app = &all["clientMappings"]["shop-app"];
    assert_eq!(
        (&app["id"], &app["client"]),
        (&json!(client), &json!("shop-app"))
    );
    assert_eq!(names(&app["mappings"]), ["buyer"]);
    let (s, _, body) = f
        .get(&format!("/shop/users/{alice}/role-mappings/clients/nope"))
        .await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Client not found"}))
    );
    assert_eq!(
        f.delete_with(&base, &json!([{"name": "buyer"}])).await.0,
        204
    );
    assert_eq!(f.get(&base).await.2, json!([]));
}
