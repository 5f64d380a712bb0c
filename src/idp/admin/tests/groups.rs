//! Groups: the tree, sub-groups, lookup by path, members, and group role mappings (which
//! members inherit, from ancestors too).

use serde_json::json;

use super::{names, new_user, shop};
use crate::idp::testing::{created_id, Fixture};

/// `/eng` with the sub-group `/eng/backend`, and the user `alice`.
async fn tree() -> (Fixture, String, String, String) {
    let f = shop().await;
    let eng = created_id(&f.post("/shop/groups", &json!({"name": "eng"})).await);
    let backend = created_id(
        &f.post(
            &format!("/shop/groups/{eng}/children"),
            &json!({"name": "backend"}),
        )
        .await,
    );
    let alice = new_user(&f, "shop", json!({"username": "alice", "enabled": true})).await;
    (f, eng, backend, alice)
}

#[tokio::test]
async fn the_tree_with_paths_and_counts() {
    let (f, eng, backend, _) = tree().await;
    let (s, _, list) = f.get("/shop/groups").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let top = &list[0];
    assert_eq!(
        (
            &top["id"],
            &top["name"],
            &top["path"],
            &top["subGroupCount"]
        ),
        (&json!(eng), &json!("eng"), &json!("/eng"), &json!(1))
    );
    let sub = &top["subGroups"][0];
    assert_eq!(
        (&sub["id"], &sub["path"], &sub["parentId"]),
        (&json!(backend), &json!("/eng/backend"), &json!(eng))
    );
    let (_, _, children) = f.get(&format!("/shop/groups/{eng}/children")).await;
    assert_eq!(names(&children), ["backend"]);
    let (s, _, found) = f.get("/shop/group-by-path/eng/backend").await;
    assert_eq!((s, &found["id"]), (200, &json!(backend)));
    let (s, _, body) = f.get("/shop/group-by-path/eng/nope").await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Group path does not exist"}))
    );
    assert_eq!(names(&f.get("/shop/groups?search=BACK").await.2), ["eng"]);
    assert_eq!(f.get("/shop/groups?search=ops").await.2, json!([]));
    // A match deep down comes with the path to it, and nothing beside it.
    let (_, _, found) = f.get("/shop/groups?search=back").await;
    assert_eq!(found[0]["subGroups"][0]["name"], "backend", "{found}");
    assert_eq!(found[0]["subGroups"].as_array().unwrap().len(), 1);
    assert_eq!(
        f.get("/shop/groups?search=backen&exact=true").await.2,
        json!([])
    );
    // Counts: every group, or the top-level ones; with a search, the matches.
    let (_, _, all) = f.get("/shop/groups/count").await;
    let (_, _, top) = f.get("/shop/groups/count?top=true").await;
    assert!(all["count"].as_u64().unwrap() > top["count"].as_u64().unwrap());
    assert_eq!(
        f.get("/shop/groups/count?search=backend").await.2,
        json!({"count": 1})
    );
    // Paging of the top level.
    let (_, _, page) = f.get("/shop/groups?first=0&max=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn names_are_unique_among_siblings() {
    let (f, eng, _, _) = tree().await;
    let (s, _, body) = f.post("/shop/groups", &json!({"name": "eng"})).await;
    assert_eq!(
        (s, body),
        (
            409,
            json!({"errorMessage": "Top level group named 'eng' already exists."})
        )
    );
    let children = format!("/shop/groups/{eng}/children");
    let (s, _, body) = f.post(&children, &json!({"name": "backend"})).await;
    assert_eq!(
        (s, body),
        (
            409,
            json!({"errorMessage": "Sibling group named 'backend' already exists."})
        )
    );
    // The same name elsewhere in the tree is fine.
    assert_eq!(
        f.post("/shop/groups", &json!({"name": "backend"})).await.0,
        201
    );
    let (s, _, body) = f.post("/shop/groups", &json!({"name": "a/b"})).await;
    assert_eq!(
        (s, body),
        (
            400,
            json!({"errorMessage": "Group name must not contain '/'"})
        )
    );
    let (s, _, body) = f.post("/shop/groups", &json!({"name": " "})).await;
    assert_eq!(
        (s, body),
        (400, json!({"errorMessage": "Group name is missing"}))
    );
}

#[tokio::test]
async fn members_join_and_leave() {
    let (f, _, backend, alice) = tree().await;
    let membership = format!("/shop/users/{alice}/groups/{backend}");
    assert_eq!(f.put(&membership, &json!({})).await.0, 204);
    let (_, _, members) = f.get(&format!("/shop/groups/{backend}/members")).await;
    assert_eq!(names(&members), ["alice"]);
    let (_, _, groups) = f.get(&format!("/shop/users/{alice}/groups")).await;
    assert_eq!(groups[0]["path"], "/eng/backend");
    assert_eq!(f.delete(&membership).await.0, 204);
    assert_eq!(
        f.get(&format!("/shop/groups/{backend}/members")).await.2,
        json!([])
    );
    let (s, _, body) = f.get("/shop/groups/nope/members").await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find group by id"}))
    );
}

#[tokio::test]
async fn group_roles_reach_members_through_ancestors() {
    let (f, eng, backend, alice) = tree().await;
    for name in ["viewer", "deployer"] {
        f.post("/shop/roles", &json!({"name": name})).await;
    }
    let eng_roles = format!("/shop/groups/{eng}/role-mappings/realm");
    assert_eq!(
        f.post(&eng_roles, &json!([{"name": "viewer"}])).await.0,
        204
    );
    assert_eq!(names(&f.get(&eng_roles).await.2), ["viewer"]);
    let backend_roles = format!("/shop/groups/{backend}/role-mappings/realm");
    assert_eq!(f.get(&backend_roles).await.2, json!([]), "direct: none");
    assert_eq!(
        names(&f.get(&format!("{backend_roles}/composite")).await.2),
        ["viewer"]
    );
    let available = names(&f.get(&format!("{backend_roles}/available")).await.2);
    assert!(
        available.contains(&"deployer".to_string()) && !available.contains(&"viewer".to_string())
    );

    f.put(&format!("/shop/users/{alice}/groups/{backend}"), &json!({}))
        .await;
    let user_roles = format!("/shop/users/{alice}/role-mappings/realm");
    assert!(
        names(&f.get(&format!("{user_roles}/composite")).await.2).contains(&"viewer".to_string())
    );
    assert!(
        !names(&f.get(&user_roles).await.2).contains(&"viewer".to_string()),
        "not a direct mapping"
    );
    let (s, _, body) = f.post(&eng_roles, &json!([{"name": "nope"}])).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find role"}))
    );
    assert_eq!(
        f.delete_with(&eng_roles, &json!([{"name": "viewer"}]))
            .await
            .0,
        204
    );
    assert!(
        !names(&f.get(&format!("{user_roles}/composite")).await.2).contains(&"viewer".to_string())
    );
}

#[tokio::test]
async fn rename_moves_paths_and_delete_takes_the_subtree() {
    let (f, eng, backend, alice) = tree().await;
    f.put(&format!("/shop/users/{alice}/groups/{backend}"), &json!({}))
        .await;
    assert_eq!(
        f.put(
            &format!("/shop/groups/{eng}"),
            &json!({"name": "engineering", "attributes": {"floor": "3"}}),
        )
        .await
        .0,
        204
    );
    let (_, _, group) = f.get(&format!("/shop/groups/{backend}")).await;
    assert_eq!(group["path"], "/engineering/backend");
    let (_, _, top) = f.get(&format!("/shop/groups/{eng}")).await;
    assert_eq!(top["attributes"], json!({"floor": ["3"]}));
    assert_eq!(f.delete(&format!("/shop/groups/{eng}")).await.0, 204);
    let (s, _, body) = f.get(&format!("/shop/groups/{backend}")).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Could not find group by id"}))
    );
    assert_eq!(f.get("/shop/groups").await.2, json!([]));
    assert_eq!(
        f.get(&format!("/shop/users/{alice}/groups")).await.2,
        json!([])
    );
    assert_eq!(f.delete(&format!("/shop/groups/{eng}")).await.0, 404);
}

#[tokio::test]
async fn a_roles_groups_are_listed_by_path() {
    let (f, eng, _, _) = tree().await;
    f.post("/shop/roles", &json!({"name": "deployer"})).await;
    let (status, _, body) = f
        .post(
            &format!("/shop/groups/{eng}/role-mappings/realm"),
            &json!([{"name": "deployer"}]),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, _, mappings) = f.get(&format!("/shop/groups/{eng}/role-mappings")).await;
    assert_eq!(
        mappings["realmMappings"][0]["name"], "deployer",
        "{mappings}"
    );
    let (status, _, groups) = f.get("/shop/roles/deployer/groups").await;
    assert_eq!(status, 200, "{groups}");
    assert_eq!(groups, json!([{"id": eng, "name": "eng", "path": "/eng"}]));
    assert_eq!(f.get("/shop/roles/nope/groups").await.0, 404);
}
