//! Client policies: only what the server enforces is accepted, and what is accepted is
//! enforced (PKCE, confidential clients, no password grant, full scope, redirect URIs).

use serde_json::json;

use super::shop;
use crate::idp::testing::created_id;

#[tokio::test]
async fn client_policies_are_checked_and_enforced() {
    let f = shop().await;
    let (status, _, doc) = f
        .get("/shop/client-policies/profiles?include-global-profiles=true")
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc, json!({"profiles": [], "globalProfiles": []}));
    // An executor the server would not run is refused, not stored.
    let (status, _, err) = f
        .put(
            "/shop/client-policies/profiles",
            &json!({"profiles": [{"name": "x", "executors": [{"executor": "holder-of-key-enforcer"}]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(err["errorMessage"]
        .as_str()
        .unwrap()
        .contains("not supported"));
    let profiles = json!({"profiles": [
        {"name": "public-pkce", "executors": [
            {"executor": "pkce-enforcer", "configuration": {"auto-configure": "false"}}]},
        {"name": "strict", "executors": [
            {"executor": "reject-ropc-grant", "configuration": {}},
            {"executor": "full-scope-disabled", "configuration": {"auto-configure": "true"}},
            {"executor": "secure-redirect-uris-enforcer", "configuration": {"allow-ipv4-loopback-address": "true"}}]}
    ]});
    assert_eq!(
        f.put("/shop/client-policies/profiles", &profiles).await.0,
        204
    );
    let (status, _, _) = f
        .put(
            "/shop/client-policies/policies",
            &json!({"policies": [{"name": "p", "conditions": [{"condition": "any-client"}], "profiles": ["nope"]}]}),
        )
        .await;
    assert_eq!(status, 400, "unknown profile");
    let (status, _, _) = f
        .put(
            "/shop/client-policies/policies",
            &json!({"policies": [{"name": "p", "conditions": [{"condition": "client-updater-source-host"}], "profiles": ["strict"]}]}),
        )
        .await;
    assert_eq!(status, 400, "unknown condition");
    let policies = json!({"policies": [
        {"name": "public clients use PKCE", "enabled": true,
         "conditions": [{"condition": "client-access-type", "configuration": {"type": ["public"]}}],
         "profiles": ["public-pkce"]},
        {"name": "confidential clients are strict", "enabled": true,
         "conditions": [{"condition": "client-access-type", "configuration": {"type": ["confidential"]}}],
         "profiles": ["strict"]}
    ]});
    assert_eq!(
        f.put("/shop/client-policies/policies", &policies).await.0,
        204
    );
    assert_eq!(
        f.get("/shop/client-policies/policies").await.2["policies"][0]["name"],
        "public clients use PKCE"
    );
    let (status, _, _) = f
        .put("/shop/client-policies/profiles", &json!({"profiles": []}))
        .await;
    assert_eq!(status, 400, "a profile in use stays");

    // A confidential client: full scope switched off, http redirect URIs refused.
    let (status, _, err) = f
        .post(
            "/shop/clients",
            &json!({"clientId": "web", "redirectUris": ["http://web.example.com/cb"]}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let web = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "web", "secret": "web-secret", "directAccessGrantsEnabled": true,
                    "redirectUris": ["https://web.example.com/cb", "http://127.0.0.1:8000/cb"]}),
        )
        .await,
    );
    let (_, _, client) = f.get(&format!("/shop/clients/{web}")).await;
    assert_eq!(client["fullScopeAllowed"], false, "auto-configured");
    // No password grant for it.
    f.add_user("shop", "ann", Some("ann-pw"));
    let (status, body) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "web"),
                ("client_secret", "web-secret"),
                ("username", "ann"),
                ("password", "ann-pw"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );

    // A public client must send a S256 challenge.
    f.post(
        "/shop/clients",
        &json!({"clientId": "spa", "publicClient": true, "redirectUris": ["https://spa.example.com/cb"]}),
    )
    .await;
    let auth = |extra: &str| {
        format!("/realms/shop/protocol/openid-connect/auth?client_id=spa&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb{extra}")
    };
    let r = f.send("GET", &auth("&code_challenge=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq&code_challenge_method=plain"), &[], "").await;
    let location = r.location().unwrap_or_default().to_string();
    assert!(location.contains("error=invalid_request"), "{location}");
    let r = f.send("GET", &auth("&code_challenge=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq&code_challenge_method=S256"), &[], "").await;
    assert_eq!(r.status, 200, "the login page");
    // A disabled policy applies no more.
    let mut off = policies.clone();
    off["policies"][1]["enabled"] = false.into();
    f.put("/shop/client-policies/policies", &off).await;
    let (status, _, _) = f
        .post(
            "/shop/clients",
            &json!({"clientId": "legacy", "redirectUris": ["http://legacy.example.com/cb"]}),
        )
        .await;
    assert_eq!(status, 201);
}
