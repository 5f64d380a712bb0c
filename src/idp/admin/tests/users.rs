//! Users: create, search (prefix, `*infix*`, `"exact"`, field filters), paging, count,
//! update, delete, credentials and reset-password with the realm's password policy.

use serde_json::{json, Value};

use super::{names, new_user, shop};
use crate::idp::testing::{created_id, Fixture};
use crate::store::UserRecord;

fn person(f: &Fixture, username: &str, email: &str, first: &str, last: &str) -> String {
    f.add_user_record(
        "shop",
        UserRecord {
            id: crate::crypto::random_id(),
            username: username.into(),
            email: Some(email.into()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            enabled: true,
            ..Default::default()
        },
        None,
        false,
    )
}

/// alice, albert, bob, carol and zed, and the service account of the client `svc`.
async fn people() -> Fixture {
    let f = shop().await;
    person(&f, "alice", "alice@example.com", "Alice", "Smith");
    person(&f, "albert", "al@corp.test", "Albert", "Jones");
    person(&f, "bob", "bob@example.com", "Bob", "Malley");
    person(&f, "carol", "carol@example.com", "Carol", "Alvarez");
    person(&f, "zed", "zed@corp.test", "Zed", "Young");
    let (status, _, _) = f
        .post(
            "/shop/clients",
            &json!({"clientId": "svc", "serviceAccountsEnabled": true}),
        )
        .await;
    assert_eq!(status, 201);
    f
}

/// The usernames `GET /users?{query}` answers, in the API's order (by username).
async fn found(f: &Fixture, query: &str) -> Vec<String> {
    let (status, _, list) = f.get(&format!("/shop/users?{query}")).await;
    assert_eq!(status, 200, "{query}: {list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

const NONE: [&str; 0] = [];

#[tokio::test]
async fn create_then_get() {
    let f = shop().await;
    let (status, headers, _) = f
        .post(
            "/shop/users",
            &json!({"username": "Alice", "email": "alice@example.com", "firstName": "Alice",
                    "enabled": true, "attributes": {"dept": "R&D"}}),
        )
        .await;
    assert_eq!(status, 201);
    let location = headers["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap();
    assert_eq!(
        location,
        format!("https://idp.test/admin/realms/shop/users/{id}")
    );
    let (status, _, user) = f.get(&format!("/shop/users/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(user["username"], "alice", "lower-cased");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["enabled"], true);
    assert_eq!(user["totp"], false);
    assert_eq!(user["attributes"], json!({"dept": ["R&D"]}));
    assert_eq!(user["createdTimestamp"], f.now());
    // New users get the realm's default roles.
    let (_, _, roles) = f
        .get(&format!("/shop/users/{id}/role-mappings/realm"))
        .await;
    assert_eq!(names(&roles), ["default-roles-shop"]);
    // Without `enabled` a user is created disabled.
    let other = new_user(&f, "shop", json!({"username": "bob"})).await;
    assert_eq!(
        f.get(&format!("/shop/users/{other}")).await.2["enabled"],
        false
    );
}

#[tokio::test]
async fn duplicates_and_bad_users_are_refused() {
    let f = shop().await;
    new_user(
        &f,
        "shop",
        json!({"username": "alice", "email": "a@example.com"}),
    )
    .await;
    for (body, status, message) in [
        (
            json!({"username": "ALICE"}),
            409,
            "User exists with same username",
        ),
        (
            json!({"username": "other", "email": "A@example.com"}),
            409,
            "User exists with same email",
        ),
        (
            json!({"email": "x@example.com"}),
            400,
            "User name is missing",
        ),
        (json!({"username": "a b"}), 400, "error-invalid-username"),
        (
            json!({"username": "c", "email": "nope"}),
            400,
            "error-invalid-email",
        ),
    ] {
        let (s, _, answer) = f.post("/shop/users", &body).await;
        assert_eq!(
            (s, answer["errorMessage"].as_str()),
            (status, Some(message)),
            "{body}"
        );
    }
    assert_eq!(f.get("/shop/users/count").await.2, json!(1));
}

#[tokio::test]
async fn search_grammar() {
    let f = people().await;
    // `foo` and `foo*`: a prefix of the username, e-mail, first or last name.
    assert_eq!(found(&f, "search=al").await, ["albert", "alice", "carol"]);
    assert_eq!(found(&f, "search=AL*").await, ["albert", "alice", "carol"]);
    // `*foo*`: anywhere.
    assert_eq!(found(&f, "search=*ley*").await, ["bob"]);
    assert_eq!(found(&f, "search=ley").await, NONE);
    assert_eq!(
        found(&f, "search=*example*").await,
        ["alice", "bob", "carol"]
    );
    // `"foo"`: the whole of one of the fields.
    assert_eq!(found(&f, "search=%22alice%22").await, ["alice"]);
    assert_eq!(found(&f, "search=%22al%40corp.test%22").await, ["albert"]);
    assert_eq!(found(&f, "search=%22al%22").await, NONE);
    // Service accounts are never listed (`s` is service-account-svc's prefix too).
    assert_eq!(found(&f, "search=s").await, ["alice"]);
    assert_eq!(found(&f, "search=*").await.len(), 5);
}

#[tokio::test]
async fn field_filters_contain_unless_exact() {
    let f = people().await;
    assert_eq!(found(&f, "username=al").await, ["albert", "alice"]);
    assert_eq!(found(&f, "username=alice&exact=true").await, ["alice"]);
    assert_eq!(found(&f, "username=al&exact=true").await, NONE);
    assert_eq!(found(&f, "email=corp.test").await, ["albert", "zed"]);
    assert_eq!(found(&f, "lastName=AL").await, ["bob", "carol"]);
    assert_eq!(found(&f, "firstName=bob&exact=true").await, ["bob"]);
    let bob = f.user("shop", "bob").id;
    f.put(&format!("/shop/users/{bob}"), &json!({"enabled": false}))
        .await;
    assert_eq!(found(&f, "enabled=false").await, ["bob"]);
    assert_eq!(
        found(&f, "enabled=true&email=example").await,
        ["alice", "carol"]
    );
}

#[tokio::test]
async fn paging_skips_service_accounts_and_count_leaves_them_out() {
    let f = people().await;
    f.user("shop", "service-account-svc");
    assert_eq!(
        found(&f, "").await,
        ["albert", "alice", "bob", "carol", "zed"]
    );
    assert_eq!(found(&f, "first=1&max=2").await, ["alice", "bob"]);
    // The service account sorts between carol and zed.
    assert_eq!(found(&f, "first=3&max=2").await, ["carol", "zed"]);
    assert_eq!(found(&f, "first=4&max=10").await, ["zed"]);
    assert_eq!(found(&f, "first=5").await, NONE);
    assert_eq!(found(&f, "search=al&first=1&max=1").await, ["alice"]);
    // By key: the page after a username (the service account still left out).
    assert_eq!(found(&f, "after=alice&max=2").await, ["bob", "carol"]);
    assert_eq!(found(&f, "after=carol&max=5").await, ["zed"]);
    assert_eq!(found(&f, "after=ALICE&first=1&max=1").await, ["carol"]);
    assert_eq!(found(&f, "after=zed").await, NONE);
    assert_eq!(found(&f, "after=b&max=1").await, ["bob"]);
    let (status, _, count) = f.get("/shop/users/count").await;
    assert_eq!((status, count), (200, json!(5)));
    let (_, _, brief) = f.get("/shop/users?briefRepresentation=true&max=1").await;
    assert!(brief[0].get("attributes").is_none(), "{brief}");
    let (_, _, full) = f.get("/shop/users?max=1").await;
    assert!(full[0].get("attributes").is_some(), "{full}");
}

#[tokio::test]
async fn update_changes_named_fields_and_disabling_ends_sessions() {
    let f = people().await;
    let id = f.add_user_record(
        "shop",
        UserRecord {
            id: "dora-id".into(),
            username: "dora".into(),
            email: Some("dora@example.com".into()),
            email_verified: true,
            last_name: Some("Explorer".into()),
            enabled: true,
            ..Default::default()
        },
        Some("dora-pw"),
        false,
    );
    f.password_grant("shop", "admin-cli", "dora", "dora-pw")
        .await;
    let (_, _, sessions) = f.get(&format!("/shop/users/{id}/sessions")).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    let path = format!("/shop/users/{id}");
    let (status, _, _) = f
        .put(&path, &json!({"firstName": "Dorothy", "enabled": false}))
        .await;
    assert_eq!(status, 204);
    let (_, _, user) = f.get(&path).await;
    assert_eq!(
        (&user["firstName"], &user["lastName"], &user["enabled"]),
        (&json!("Dorothy"), &json!("Explorer"), &json!(false))
    );
    let (_, _, sessions) = f.get(&format!("/shop/users/{id}/sessions")).await;
    assert_eq!(sessions, json!([]), "a disabled user's sessions end");
    // A new address is not verified.
    f.put(&path, &json!({"email": "dora@new.example"})).await;
    assert!(!f.user("shop", "dora").email_verified);
    for (body, status, message) in [
        (
            json!({"email": "bob@example.com"}),
            409,
            "User exists with same email",
        ),
        (
            json!({"requiredActions": ["NOPE"]}),
            400,
            "Unknown required action: NOPE",
        ),
    ] {
        let (s, _, answer) = f.put(&path, &body).await;
        assert_eq!(
            (s, answer["errorMessage"].as_str()),
            (status, Some(message))
        );
    }
    let (s, _, answer) = f.put("/shop/users/nobody", &json!({})).await;
    assert_eq!(
        (s, answer),
        (404, json!({"errorMessage": "User not found"}))
    );
}

#[tokio::test]
async fn delete_then_404() {
    let f = people().await;
    let id = f.user("shop", "bob").id;
    assert_eq!(f.delete(&format!("/shop/users/{id}")).await.0, 204);
    let (s, _, body) = f.get(&format!("/shop/users/{id}")).await;
    assert_eq!((s, body), (404, json!({"errorMessage": "User not found"})));
    assert_eq!(f.delete(&format!("/shop/users/{id}")).await.0, 404);
    assert_eq!(f.get("/shop/users/count").await.2, json!(4));
    assert_eq!(found(&f, "search=bob").await, NONE);
}

async fn reset(f: &Fixture, id: &str, body: Value) -> (u16, Value) {
    let (s, _, answer) = f
        .put(&format!("/shop/users/{id}/reset-password"), &body)
        .await;
    (s, answer)
}

#[tokio::test]
async fn reset_password_permanent_or_temporary() {
    let f = shop().await;
    let id = new_user(&f, "shop", json!({"username": "dora", "enabled": true})).await;
    let permanent = json!({"type": "password", "value": "first-pw", "temporary": false});
    assert_eq!(reset(&f, &id, permanent).await.0, 204);
    f.password_grant("shop", "admin-cli", "dora", "first-pw")
        .await;
    let (_, _, creds) = f.get(&format!("/shop/users/{id}/credentials")).await;
    assert_eq!(creds.as_array().unwrap().len(), 1);
    assert_eq!(creds[0]["type"], "password");
    assert!(creds[0].get("secretData").is_none(), "hashes stay inside");

    // Keycloak's default: temporary, so UPDATE_PASSWORD is due and grants are refused.
    assert_eq!(reset(&f, &id, json!({"value": "second-pw"})).await.0, 204);
    let (_, _, user) = f.get(&format!("/shop/users/{id}")).await;
    assert_eq!(user["requiredActions"], json!(["UPDATE_PASSWORD"]));
    let (status, body) = f
        .call(
            "POST",
            "/realms/shop/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "dora"),
                ("password", "second-pw"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Account is not fully set up"))
    );
    // A permanent one takes the action away again.
    reset(&f, &id, json!({"value": "third-pw", "temporary": false})).await;
    assert!(f.user("shop", "dora").required_actions.is_empty());
    let first = creds[0]["id"].as_str().unwrap();
    let path = format!("/shop/users/{id}/credentials/{first}");
    assert_eq!(f.delete(&path).await.0, 404, "replaced by the later resets");
}

#[tokio::test]
async fn reset_password_errors_are_400_with_the_policy_s_message() {
    let f = shop().await;
    let policy = "length(12) and notUsername and passwordHistory(2)";
    assert_eq!(
        f.put("/shop", &json!({"passwordPolicy": policy})).await.0,
        204
    );
    let id = new_user(&f, "shop", json!({"username": "dora", "enabled": true})).await;
    for (body, message) in [
        (
            json!({"value": "short"}),
            "Invalid password: minimum length 12.",
        ),
        (json!({"value": ""}), "Password must not be empty"),
        (
            json!({"type": "otp", "value": "123456"}),
            "Only password credentials can be reset",
        ),
    ] {
        assert_eq!(
            reset(&f, &id, body.clone()).await,
            (400, json!({"errorMessage": message})),
            "{body}"
        );
    }
    let good = json!({"value": "a-long-password", "temporary": false});
    assert_eq!(reset(&f, &id, good).await.0, 204);
    assert_eq!(
        reset(&f, &id, json!({"value": "a-long-password"})).await,
        (
            400,
            json!({"errorMessage": "Invalid password: must not be equal to any of last 2 passwords."})
        )
    );
    // Remembered passwords are not the user's credentials: deleting one by id is a 404
    // and the history still refuses the old password.
    assert_eq!(
        reset(
            &f,
            &id,
            json!({"value": "another-long-pw", "temporary": false})
        )
        .await
        .0,
        204
    );
    let realm = f
        .app
        .store
        .read()
        .unwrap()
        .realm_by_name("shop")
        .unwrap()
        .unwrap();
    let history: Vec<String> = f
        .app
        .store
        .read()
        .unwrap()
        .credentials(&realm.id, &id)
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == crate::idp::password_policy::HISTORY_KIND)
        .map(|c| c.id)
        .collect();
    assert!(!history.is_empty());
    for cred in &history {
        let path = format!("/shop/users/{id}/credentials/{cred}");
        assert_eq!(f.delete(&path).await.0, 404);
    }
    assert_eq!(
        reset(&f, &id, json!({"value": "a-long-password"})).await.0,
        400
    );
    assert_eq!(
        reset(&f, "nobody", json!({"value": "a-long-password-2"})).await,
        (404, json!({"errorMessage": "User not found"}))
    );
    // The policy applies to passwords given at creation too.
    let (s, _, body) = f
        .post(
            "/shop/users",
            &json!({"username": "eve", "credentials": [{"type": "password", "value": "short"}]}),
        )
        .await;
    assert_eq!(
        (s, body["errorMessage"].as_str()),
        (400, Some("Invalid password: minimum length 12."))
    );
    assert_eq!(
        f.get("/shop/users?username=eve&exact=true").await.2,
        json!([])
    );
}

#[tokio::test]
async fn credentials_can_be_listed_and_deleted() {
    let f = shop().await;
    let id = created_id(
        &f.post(
            "/shop/users",
            &json!({"username": "dora", "enabled": true,
                    "credentials": [{"type": "password", "value": "dora-pw", "temporary": false}]}),
        )
        .await,
    );
    f.password_grant("shop", "admin-cli", "dora", "dora-pw")
        .await;
    let (_, _, creds) = f.get(&format!("/shop/users/{id}/credentials")).await;
    let cred = creds[0]["id"].as_str().unwrap().to_string();
    let path = format!("/shop/users/{id}/credentials/{cred}");
    assert_eq!(f.delete(&path).await.0, 204);
    let (s, _, body) = f.delete(&path).await;
    assert_eq!(
        (s, body),
        (404, json!({"errorMessage": "Credential not found"}))
    );
    assert_eq!(
        f.get(&format!("/shop/users/{id}/credentials")).await.2,
        json!([])
    );
}

/// `GET /users/count` and the unfiltered page leave out the service-account users that
/// exist: a client whose service accounts were switched off keeps its user (not counted,
/// never listed), and a deleted one no longer moves the page offset past real users.
#[tokio::test]
async fn count_and_pages_follow_the_service_account_users_that_exist() {
    let f = people().await;
    let svc = super::client_uuid(&f, "shop", "svc").await;
    let all = ["albert", "alice", "bob", "carol", "zed"];
    f.put(
        &format!("/shop/clients/{svc}"),
        &json!({"serviceAccountsEnabled": false}),
    )
    .await;
    assert_eq!(f.get("/shop/users/count").await.2, json!(5));
    assert_eq!(found(&f, "max=5").await, all);
    f.put(
        &format!("/shop/clients/{svc}"),
        &json!({"serviceAccountsEnabled": true}),
    )
    .await;
    let sa = f.user("shop", "service-account-svc").id;
    assert_eq!(f.delete(&format!("/shop/users/{sa}")).await.0, 204);
    assert_eq!(f.get("/shop/users/count").await.2, json!(5));
    assert_eq!(found(&f, "first=4").await, ["zed"]);
}

#[tokio::test]
async fn a_user_with_an_authenticator_shows_totp_and_what_may_be_removed() {
    let f = people().await;
    let realm = f.realm("shop");
    let id = f.user("shop", "alice").id;
    let (_, _, before) = f.get(&format!("/shop/users/{id}")).await;
    assert_eq!(before["totp"], false);
    assert_eq!(before["disableableCredentialTypes"], json!([]));
    let policy = crate::idp::otp::OtpPolicy::of(&realm);
    let otp = crate::idp::otp::credential("JBSWY3DPEHPK3PXP", None, &policy, f.now());
    f.app
        .store
        .write(|w| w.put_credential(&realm.id, &id, &otp))
        .unwrap();
    let (_, _, after) = f.get(&format!("/shop/users/{id}")).await;
    assert_eq!(after["totp"], true);
    assert_eq!(after["disableableCredentialTypes"], json!(["otp"]));
    // The list says the same (full representations), the brief one does not look.
    let (_, _, list) = f.get("/shop/users?username=alice&exact=true").await;
    assert_eq!(list[0]["totp"], true, "{list}");
}

#[tokio::test]
async fn credentials_get_labels_and_an_order() {
    let f = people().await;
    let realm = f.realm("shop");
    let id = f.user("shop", "alice").id;
    let (status, _, _) = f
        .put(
            &format!("/shop/users/{id}/reset-password"),
            &json!({"type": "password", "value": "Alice-pass-1", "temporary": false}),
        )
        .await;
    assert_eq!(status, 204);
    let policy = crate::idp::otp::OtpPolicy::of(&realm);
    let mut otp = crate::idp::otp::credential("JBSWY3DPEHPK3PXP", None, &policy, f.now() + 1);
    otp.priority = 20;
    f.app
        .store
        .write(|w| w.put_credential(&realm.id, &id, &otp))
        .unwrap();
    assert_eq!(credential_types(&f, &id).await, ["password", "otp"]);
    let (_, _, creds) = f.get(&format!("/shop/users/{id}/credentials")).await;
    let password = creds[0]["id"].as_str().unwrap().to_string();

    // The label is sent as plain text, as the admin console does.
    let auth = format!("Bearer {}", f.admin_token);
    let r = f
        .send(
            "PUT",
            &format!(
                "/admin/realms/shop/users/{id}/credentials/{}/userLabel",
                otp.id
            ),
            &[("authorization", &auth), ("content-type", "text/plain")],
            "My phone",
        )
        .await;
    assert_eq!(r.status, 204);
    let (_, _, creds) = f.get(&format!("/shop/users/{id}/credentials")).await;
    assert_eq!(creds[1]["userLabel"], "My phone", "{creds}");

    let (status, _, _) = f
        .post(
            &format!("/shop/users/{id}/credentials/{}/moveToFirst", otp.id),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(credential_types(&f, &id).await, ["otp", "password"]);
    let (status, _, _) = f
        .post(
            &format!(
                "/shop/users/{id}/credentials/{}/moveAfter/{password}",
                otp.id
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(credential_types(&f, &id).await, ["password", "otp"]);
    let (status, _, _) = f
        .post(
            &format!("/shop/users/{id}/credentials/nope/moveToFirst"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

async fn credential_types(f: &Fixture, user: &str) -> Vec<String> {
    let (_, _, creds) = f.get(&format!("/shop/users/{user}/credentials")).await;
    creds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn remove_totp_and_unmanaged_attributes() {
    let f = people().await;
    let realm = f.realm("shop");
    let id = f.user("shop", "alice").id;
    let policy = crate::idp::otp::OtpPolicy::of(&realm);
    let otp = crate::idp::otp::credential("JBSWY3DPEHPK3PXP", None, &policy, f.now());
    f.app
        .store
        .write(|w| w.put_credential(&realm.id, &id, &otp))
        .unwrap();
    assert_eq!(f.get(&format!("/shop/users/{id}")).await.2["totp"], true);
    let (status, _, _) = f
        .put(&format!("/shop/users/{id}/remove-totp"), &json!({}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(f.get(&format!("/shop/users/{id}")).await.2["totp"], false);
    f.put(
        &format!("/shop/users/{id}"),
        &json!({"attributes": {"team": ["blue"]}}),
    )
    .await;
    let (status, _, attrs) = f
        .get(&format!("/shop/users/{id}/unmanagedAttributes"))
        .await;
    assert_eq!((status, attrs), (200, json!({"team": ["blue"]})));
    assert_eq!(
        f.put("/shop/users/nope/remove-totp", &json!({})).await.0,
        404
    );
}

/// Impersonation: the `impersonation` role signs the administrator's browser in as the
/// user, never as a user with administrative power the administrator lacks.
#[tokio::test]
async fn impersonation_signs_in_as_the_user_within_the_admins_power() {
    use crate::idp::testing::Jar;
    let f = shop().await;
    let ann = f.add_user("shop", "ann", Some("ann-pw"));
    let (boss, _) = super::delegate(&f, "shop", "boss", &["realm-admin"]).await;
    let (_, helper) = super::delegate(&f, "shop", "helper", &["impersonation", "view-users"]).await;
    let (_, viewer) = super::delegate(&f, "shop", "viewer", &["view-users"]).await;

    let path = format!("/shop/users/{ann}/impersonation");
    assert_eq!(f.api(Some(&viewer)).post(&path, &json!({})).await.0, 403);
    let (status, headers, body) = f.api(Some(&helper)).post(&path, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sameRealm"], true);
    assert!(body["redirect"]
        .as_str()
        .unwrap()
        .ends_with("/realms/shop/account"));
    let mut jar = Jar::default();
    jar.absorb(&headers);
    let page = f.browse("/realms/shop/account", &mut jar).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("ann"), "the account page is ann's");
    let sessions = f.get(&format!("/shop/users/{ann}/sessions")).await.2;
    assert_eq!(sessions.as_array().unwrap().len(), 1);

    // boss holds realm-admin, which helper does not: no impersonation of boss.
    let (status, _, body) = f
        .api(Some(&helper))
        .post(&format!("/shop/users/{boss}/impersonation"), &json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    // The master administrator may.
    assert_eq!(
        f.post(&format!("/shop/users/{boss}/impersonation"), &json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        f.post("/shop/users/nobody/impersonation", &json!({}))
            .await
            .0,
        404
    );
}

/// `configured-user-storage-credential-types`: none for a local user.
#[tokio::test]
async fn a_local_user_has_no_storage_credential_types() {
    let f = shop().await;
    let id = created_id(
        &f.post(
            "/shop/users",
            &json!({"username": "plain", "enabled": true}),
        )
        .await,
    );
    let (status, _, types) = f
        .get(&format!(
            "/shop/users/{id}/configured-user-storage-credential-types"
        ))
        .await;
    assert_eq!((status, types), (200, json!([])));
}
