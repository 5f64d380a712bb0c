//! Attack tests, grouped by class; each names the class of vulnerability (and a CVE of
//! a comparable gateway or IdP) it guards against. Every one failed before its fix.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::{claims, Api};
use crate::browser::Browser;
use crate::gateway::{echo_json, gateway_server_with, login_through_gateway, SESSION_ROUTE};
use crate::harness::{Options, TestServer};
use crate::proxy::{echo_upstream, raw};

/// A user of `realm` holding `roles` (`(clientId, role)`), and a token for it from that
/// realm's `admin-cli` (as kcadm or the admin console would get one).
fn delegated_admin(
    admin: &Api,
    realm: &str,
    username: &str,
    roles: &[(&str, &str)],
) -> (Api, String) {
    let r = admin.post(
        &format!("/admin/realms/{realm}/users"),
        &json!({"username": username, "enabled": true,
                "credentials": [{"type": "password", "value": "Delegate-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    for (client_id, role) in roles {
        let client = &admin
            .get(&format!(
                "/admin/realms/{realm}/clients?clientId={client_id}"
            ))
            .body[0];
        let uuid = client["id"].as_str().unwrap();
        let role = admin
            .get(&format!(
                "/admin/realms/{realm}/clients/{uuid}/roles/{role}"
            ))
            .body;
        let r = admin.post(
            &format!("/admin/realms/{realm}/users/{id}/role-mappings/clients/{uuid}"),
            &json!([role]),
        );
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let mut api = Api::new_like(admin);
    api.token = Some(password_token(admin, realm, username));
    (api, id)
}

fn password_token(api: &Api, realm: &str, username: &str) -> String {
    let r = api.token(
        realm,
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", username),
            ("password", "Delegate-pass-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_string()
}

fn client_uuid(api: &Api, realm: &str, client_id: &str) -> String {
    api.get(&format!(
        "/admin/realms/{realm}/clients?clientId={client_id}"
    ))
    .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn role(api: &Api, realm: &str, client_id: Option<&str>, name: &str) -> Value {
    match client_id {
        None => api.get(&format!("/admin/realms/{realm}/roles/{name}")).body,
        Some(c) => {
            let uuid = client_uuid(api, realm, c);
            api.get(&format!(
                "/admin/realms/{realm}/clients/{uuid}/roles/{name}"
            ))
            .body
        }
    }
}

/// Privilege escalation between admin roles (Keycloak CVE-2023-0105 / CVE-2024-3656 class):
/// a delegated administrator cannot pass on, to itself or anyone, an administrative role it
/// does not hold, by any of the paths that assign roles.
#[test]
fn privilege_escalation_delegated_admins_cannot_grant_admin_roles() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    admin.setup_realm("shop");

    // master-realm:manage-users only, in master.
    let (mallory, mallory_id) = delegated_admin(
        &admin,
        "master",
        "mallory",
        &[("master-realm", "manage-users")],
    );
    let master_admin = role(&admin, "master", None, "admin");
    let r = mallory.post(
        &format!("/admin/realms/master/users/{mallory_id}/role-mappings/realm"),
        &json!([{"name": "admin"}]),
    );
    assert_eq!(r.status, 403, "mapped master admin to itself: {}", r.text);
    assert!(
        r.body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("admin"),
        "{}",
        r.text
    );
    let realm_roles = admin.get(&format!(
        "/admin/realms/master/users/{mallory_id}/role-mappings/realm"
    ));
    assert!(
        !realm_roles
            .text
            .contains(master_admin["id"].as_str().unwrap()),
        "nothing was granted"
    );
    // A client role of master-realm it does not hold, and a realm's management client.
    let manage_realm = role(&admin, "master", Some("master-realm"), "manage-realm");
    let master_realm = client_uuid(&admin, "master", "master-realm");
    let r = mallory.post(
        &format!("/admin/realms/master/users/{mallory_id}/role-mappings/clients/{master_realm}"),
        &json!([manage_realm]),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let shop_realm = client_uuid(&admin, "master", "shop-realm");
    let shop_users = role(&admin, "master", Some("shop-realm"), "manage-users");
    let r = mallory.post(
        &format!("/admin/realms/master/users/{mallory_id}/role-mappings/clients/{shop_realm}"),
        &json!([shop_users]),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    // Creating a user that holds it, directly or through a group.
    let r = mallory.post(
        "/admin/realms/master/users",
        &json!({"username": "sock", "enabled": true, "realmRoles": ["admin"]}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        admin
            .get("/admin/realms/master/users?username=sock&exact=true")
            .body,
        json!([]),
        "no half-created user"
    );
    let r = mallory.post(
        "/admin/realms/master/users",
        &json!({"username": "sock", "clientRoles": {"master-realm": ["manage-realm"]}}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = admin.post("/admin/realms/master/groups", &json!({"name": "admins"}));
    assert_eq!(r.status, 201);
    let group = r.location_id();
    let r = admin.post(
        &format!("/admin/realms/master/groups/{group}/role-mappings/realm"),
        &json!([master_admin]),
    );
    assert_eq!(r.status, 204);
    let r = mallory.put(
        &format!("/admin/realms/master/users/{mallory_id}/groups/{group}"),
        &json!({}),
    );
    assert_eq!(r.status, 403, "joined a group carrying admin: {}", r.text);
    let r = mallory.post(
        "/admin/realms/master/users",
        &json!({"username": "sock", "groups": ["/admins"]}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    // Its own power it may pass on, and ordinary roles too.
    let r = mallory.post(
        "/admin/realms/master/users",
        &json!({"username": "helper", "enabled": true,
                "clientRoles": {"master-realm": ["manage-users"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = mallory.post(
        &format!("/admin/realms/master/users/{mallory_id}/role-mappings/realm"),
        &json!([{"name": "offline_access"}]),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    // Its next token still administers nothing but master's users.
    let mut again = Api::new_like(&admin);
    again.token = Some(password_token(&admin, "master", "mallory"));
    assert_eq!(again.get("/admin/realms/shop/users").status, 403);
    assert_eq!(
        again.post("/admin/realms", &json!({"realm": "x"})).status,
        403
    );

    // In a realm: manage-users may not make anyone realm-admin, nor give itself a
    // composite that contains it; manage-realm may not compose it into a role it holds.
    let (eve, eve_id) = delegated_admin(
        &admin,
        "shop",
        "eve",
        &[("realm-management", "manage-users")],
    );
    let rm = client_uuid(&admin, "shop", "realm-management");
    let realm_admin = role(&admin, "shop", Some("realm-management"), "realm-admin");
    let r = eve.post(
        &format!("/admin/realms/shop/users/{eve_id}/role-mappings/clients/{rm}"),
        &json!([realm_admin]),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = eve.post(
        "/admin/realms/shop/users",
        &json!({"username": "puppet", "clientRoles": {"realm-management": ["realm-admin"]}}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = admin.post("/admin/realms/shop/roles", &json!({"name": "boss"}));
    assert_eq!(r.status, 201);
    let r = admin.post(
        "/admin/realms/shop/roles/boss/composites",
        &json!([realm_admin]),
    );
    assert_eq!(r.status, 204, "the super-admin may");
    let r = eve.post(
        &format!("/admin/realms/shop/users/{eve_id}/role-mappings/realm"),
        &json!([{"name": "boss"}]),
    );
    assert_eq!(r.status, 403, "a composite holding realm-admin: {}", r.text);
    let (ivan, _) = delegated_admin(
        &admin,
        "shop",
        "ivan",
        &[("realm-management", "manage-realm")],
    );
    let r = ivan.post("/admin/realms/shop/roles", &json!({"name": "helpdesk"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = ivan.post(
        "/admin/realms/shop/roles/helpdesk/composites",
        &json!([realm_admin]),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    // Default roles are a composite too: everyone would get it.
    let r = ivan.post(
        "/admin/realms/shop/roles/default-roles-shop/composites",
        &json!([realm_admin]),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    // Partial import (manage-realm): users, groups or composites carrying realm-admin.
    for body in [
        json!({"users": [{"username": "imp", "clientRoles": {"realm-management": ["realm-admin"]}}]}),
        json!({"groups": [{"name": "g", "clientRoles": {"realm-management": ["manage-users"]}}]}),
        json!({"roles": {"realm": [{"name": "sneaky", "composites": {"client": {"realm-management": ["realm-admin"]}}}]}}),
        json!({"ifResourceExists": "OVERWRITE", "users": [{"username": "ivan", "realmRoles": ["boss"]}]}),
    ] {
        let r = ivan.post("/admin/realms/shop/partialImport", &body);
        assert_eq!(r.status, 403, "{body}: {}", r.text);
    }
    assert_eq!(
        admin
            .get("/admin/realms/shop/users?username=imp&exact=true")
            .body,
        json!([]),
        "all or nothing"
    );
    assert_eq!(admin.get("/admin/realms/shop/roles/sneaky").status, 404);
    // What it holds it may import.
    let r = ivan.post(
        "/admin/realms/shop/partialImport",
        &json!({"users": [{"username": "ok", "clientRoles": {"realm-management": ["manage-realm"]}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Authorisation from client-shaped claims (the "hard-coded claim" escalation): admin
/// permissions come from the store, mappers cannot write reserved claims, and a role
/// taken away stops working at once, not at token expiry.
#[test]
fn privilege_escalation_admin_rights_come_from_the_store_not_claims() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    let (clients_admin, _) = delegated_admin(
        &admin,
        "master",
        "clara",
        &[("master-realm", "manage-clients")],
    );
    let realm_access = json!({"name": "x", "protocol": "openid-connect",
        "protocolMapper": "oidc-hardcoded-claim-mapper",
        "config": {"claim.name": "realm_access", "claim.value": "{\"roles\":[\"admin\"]}",
                   "jsonType.label": "JSON", "access.token.claim": "true"}});
    let r = clients_admin.post(
        "/admin/realms/master/clients",
        &json!({"clientId": "evil", "publicClient": true, "directAccessGrantsEnabled": true,
                "fullScopeAllowed": false, "protocolMappers": [realm_access]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("reserved"), "{}", r.text);
    let r = clients_admin.post(
        "/admin/realms/master/clients",
        &json!({"clientId": "evil", "publicClient": true, "directAccessGrantsEnabled": true,
                "fullScopeAllowed": false}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let evil = r.location_id();
    for claim in [
        "realm_access",
        "resource_access.master-realm.roles",
        "sub",
        "azp",
        "iss",
    ] {
        let mut m = realm_access.clone();
        m["config"]["claim.name"] = claim.into();
        let r = clients_admin.post(
            &format!("/admin/realms/master/clients/{evil}/protocol-mappers/models"),
            &m,
        );
        assert_eq!(r.status, 400, "{claim}: {}", r.text);
    }
    // A token of the plain user through that client administers nothing.
    let (_, _) = delegated_admin(&admin, "master", "nobody", &[]);
    let r = admin.token(
        "master",
        &[
            ("grant_type", "password"),
            ("client_id", "evil"),
            ("username", "nobody"),
            ("password", "Delegate-pass-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    assert!(claims(&token).get("realm_access").is_none());
    let mut nobody = Api::new_like(&admin);
    nobody.token = Some(token);
    assert_eq!(nobody.get("/admin/realms").body, json!([]));
    assert_eq!(nobody.get("/admin/realms/master/users").status, 403);

    // A role taken away stops working with the token already issued.
    let (viewer, viewer_id) =
        delegated_admin(&admin, "master", "vera", &[("master-realm", "view-users")]);
    assert_eq!(viewer.get("/admin/realms/master/users").status, 200);
    let mr = client_uuid(&admin, "master", "master-realm");
    let view_users = role(&admin, "master", Some("master-realm"), "view-users");
    let r = admin.delete_json(
        &format!("/admin/realms/master/users/{viewer_id}/role-mappings/clients/{mr}"),
        &json!([view_users]),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(viewer.get("/admin/realms/master/users").status, 403);

    // A user without admin roles does not read the realm's settings (Low 17).
    let (secret, _) = admin.setup_realm("t");
    let mut alice = Api::new_like(&admin);
    alice.token = Some(
        admin.alice_tokens("t", &secret, "openid")["access_token"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let r = alice.get("/admin/realms/t");
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(alice.get("/admin/realms").body, json!([]));
    // An admin of the realm's users only sees its name.
    let (helper, _) = delegated_admin(&admin, "t", "helper", &[("realm-management", "view-users")]);
    let r = helper.get("/admin/realms/t");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["realm"], "t");
    assert!(
        r.body.get("passwordPolicy").is_none() && r.body.get("smtpServer").is_none(),
        "{}",
        r.text
    );
}

/// Mass assignment of server-owned fields (the "overwrite by id" class): `POST /users`
/// with an existing user's id creates a new user; nothing is overwritten anywhere.
#[test]
fn mass_assignment_create_never_overwrites_by_id() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    let (_, alice) = admin.setup_realm("t");
    let r = admin.post(
        "/admin/realms/t/users",
        &json!({"id": alice, "username": "bob", "createdTimestamp": 1, "origin": "x",
                "federationLink": "ldap", "serviceAccountClientId": "app"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let bob = r.location_id();
    assert_ne!(bob, alice);
    let alice_now = admin.get(&format!("/admin/realms/t/users/{alice}")).body;
    assert_eq!(alice_now["username"], "alice", "alice intact");
    let bob_now = admin.get(&format!("/admin/realms/t/users/{bob}")).body;
    assert_ne!(bob_now["createdTimestamp"], 1);
    assert!(
        bob_now
            .get("serviceAccountClientId")
            .is_none_or(|v| v.is_null()),
        "{bob_now}"
    );
    // Groups and roles get their own ids; a client id that is taken is a conflict.
    let r = admin.post("/admin/realms/t/groups", &json!({"name": "g1"}));
    let g1 = r.location_id();
    let r = admin.post("/admin/realms/t/groups", &json!({"name": "g2", "id": g1}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.location_id(), g1);
    assert_eq!(
        admin.get(&format!("/admin/realms/t/groups/{g1}")).body["name"],
        "g1"
    );
    let user_role = role(&admin, "t", None, "user");
    let r = admin.post(
        "/admin/realms/t/roles",
        &json!({"name": "r2", "id": user_role["id"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(role(&admin, "t", None, "user")["name"], "user");
    let app = client_uuid(&admin, "t", "app");
    let r = admin.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "other", "id": app}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        admin.get(&format!("/admin/realms/t/clients/{app}")).body["clientId"],
        "app"
    );
    // Partial import keeps ids (as Keycloak does) but never over another resource.
    let r = admin.post(
        "/admin/realms/t/partialImport",
        &json!({"users": [{"username": "carol", "id": alice}]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        admin.get(&format!("/admin/realms/t/users/{alice}")).body["username"],
        "alice"
    );
}

/// Secrets in logs and events (CWE-532): no admin event keeps a password, secret or
/// credential, whatever path carried it.
#[test]
fn secrets_never_reach_admin_events() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    admin.setup_realm("t");
    let r = admin.put(
        "/admin/realms/t/events/config",
        &json!({"adminEventsEnabled": true, "adminEventsDetailsEnabled": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let secret_values = [
        "Sekrit-user-pass-1",
        "Sekrit-reset-pass-2",
        "client-sekrit-3",
        "smtp-sekrit-4",
        "bind-sekrit-5",
    ];
    let r = admin.post(
        "/admin/realms/t/users",
        &json!({"username": "user1", "credentials": [{"type": "password", "value": secret_values[0]}]}),
    );
    assert_eq!(r.status, 201);
    let u1 = r.location_id();
    let r = admin.put(
        &format!("/admin/realms/t/users/{u1}/reset-password"),
        &json!({"type": "password", "value": secret_values[1], "temporary": false}),
    );
    assert_eq!(r.status, 204);
    let r = admin.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "c", "secret": secret_values[2]}),
    );
    assert_eq!(r.status, 201);
    let r = admin.put(
        "/admin/realms/t",
        &json!({"smtpServer": {"host": "127.0.0.1", "port": "25", "from": "a@example.com", "auth": "true", "user": "u", "password": secret_values[3]}}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let r = admin.post(
        "/admin/realms/t/partialImport",
        &json!({"users": [{"username": "u2", "credentials": [{"type": "password", "value": secret_values[4]}]}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let events = admin.get("/admin/realms/t/admin-events?max=100");
    assert!(
        events.body.as_array().is_some_and(|e| e.len() >= 5),
        "{}",
        events.text
    );
    assert!(
        events.text.contains("representation"),
        "details are on: {}",
        events.text
    );
    for s in secret_values {
        assert!(
            !events.text.contains(s),
            "{s} in the admin events: {}",
            events.text
        );
    }
}

/// Host-header poisoning (Keycloak CVE-2020-1697 / password-reset poisoning class): with
/// no public URL, a request naming an unknown host gets 400, never an issuer or a mailed
/// link with that host; configured names work.
#[test]
fn host_header_poisoning_is_refused() {
    let server = TestServer::start_with(Options {
        extra_config: "[server]\nhostnames = [\"auth.example.test\"]\n".into(),
        ..Default::default()
    });
    let sink = crate::mail::SmtpSink::start();
    let admin = Api::admin(&server);
    admin.setup_realm("t");
    let r = admin.put(
        "/admin/realms/t",
        &json!({"resetPasswordAllowed": true, "smtpServer": sink.settings()}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let discovery = "/realms/t/.well-known/openid-configuration";
    for evil in [
        "evil.example",
        "evil.example:8080",
        "auth.example.test.evil.example",
    ] {
        let (status, body) = raw(server.http, "GET", discovery, &[("host", evil)]);
        assert_eq!(status, 400, "{evil}: {body}");
        assert!(!body.contains("evil"), "{body}");
    }
    let (status, body) = raw(
        server.http,
        "GET",
        discovery,
        &[("host", "auth.example.test:8080")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"issuer\":\"http://auth.example.test:8080/realms/t\""),
        "{body}"
    );
    let (status, _) = raw(server.http, "GET", discovery, &[("host", "localhost")]);
    assert_eq!(status, 200);

    // "Forgot password?" posted with a poisoned Host: refused, and no mail goes out.
    let b = Browser::new(&server);
    let (status, _, html) = b.get(&b.auth_url("t", "app", &[("state", "s")]));
    assert_eq!(status, 200);
    let start = html
        .find("reset-credentials")
        .expect("Forgot password link");
    let href =
        &html[html[..start].rfind('"').unwrap() + 1..start + html[start..].find('"').unwrap()];
    let href = href.replace("&#x2f;", "/").replace("&amp;", "&");
    let (status, _, page) = b.get(&href);
    assert_eq!(status, 200, "{page}");
    let mut form = crate::browser::find_form(&page, "kc-reset-password-form").unwrap();
    form.set("username", "alice");
    let r = b
        .client
        .post(b.url(&form.action))
        .header("host", "evil.example")
        .form(&form.fields)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 0, "a reset mail went out for a poisoned host");
}

/// Brute-force race (CVE-2024-4629): attempts sent at once are counted before any of them
/// is checked, so no more than `failureFactor` guesses are ever tried.
#[test]
fn brute_force_guesses_sent_at_once_are_counted_first() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    let (secret, alice) = admin.setup_realm("t");
    let r = admin.put(
        "/admin/realms/t",
        &json!({"bruteForceProtected": true, "failureFactor": 3, "waitIncrementSeconds": 600,
                "quickLoginCheckMilliSeconds": 1, "maxFailureWaitSeconds": 900}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let url = format!(
        "http://{}/realms/t/protocol/openid-connect/token",
        server.http
    );
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            let secret = secret.clone();
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(url)
                    .form(&[
                        ("grant_type", "password"),
                        ("client_id", "app"),
                        ("client_secret", secret.as_str()),
                        ("username", "alice"),
                        ("password", format!("wrong-{i}").as_str()),
                    ])
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 401);
    }
    let state = admin.get(&format!(
        "/admin/realms/t/attack-detection/brute-force/users/{alice}"
    ));
    assert!(
        state.body["numFailures"].as_u64().unwrap_or(99) <= 3,
        "more guesses were checked than failureFactor allows: {}",
        state.text
    );
    assert_eq!(state.body["disabled"], true);
    // Locked: the right password is refused like a wrong one.
    let r = admin.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.text);
}

/// Resource exhaustion by unauthenticated logins (CWE-400; the argon2 memory bomb): hashes
/// run a bounded number at a time; when the queue is full the answer is 503 with
/// `Retry-After`, not more memory.
#[test]
fn resource_exhaustion_password_hashing_is_bounded() {
    let server = TestServer::start_with(Options {
        extra_config: "[server]\nmax_concurrent_hashes = 1\nhash_queue_timeout = \"20ms\"\n".into(),
        ..Default::default()
    });
    let admin = Api::admin(&server);
    admin.setup_realm("t");
    let pid = server.pid();
    let baseline = peak_memory_kib(pid);
    let url = format!(
        "http://{}/realms/t/protocol/openid-connect/token",
        server.http
    );
    let threads: Vec<_> = (0..96)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let r = reqwest::blocking::Client::new()
                    .post(url)
                    .form(&[
                        ("grant_type", "password"),
                        ("client_id", "admin-cli"),
                        ("username", format!("nobody-{i}").as_str()),
                        ("password", "guess"),
                    ])
                    .send()
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap_or("").to_string()),
                )
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(
        !busy.is_empty(),
        "96 at once through one hashing place: some must wait out"
    );
    assert!(
        busy.iter().all(|(_, retry)| retry.is_some()),
        "503 carries Retry-After"
    );
    assert!(
        results.iter().all(|(s, _)| *s == 401 || *s == 503),
        "{results:?}"
    );
    let grown_mib = (peak_memory_kib(pid).saturating_sub(baseline)) / 1024;
    assert!(grown_mib < 150, "peak memory grew by {grown_mib} MiB");
}

fn peak_memory_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Write `bytes` slowly and see whether (and when) the server hangs up.
fn send_slowly(addr: SocketAddr, head: &[u8], every: Duration, limit: Duration) -> (bool, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for b in head.iter().cycle() {
        if started.elapsed() > limit {
            return (false, String::from_utf8_lossy(&answer).into_owned());
        }
        if s.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(every);
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.read_to_end(&mut answer);
    (true, String::from_utf8_lossy(&answer).into_owned())
}

/// Slowloris and header floods (CWE-400): a slow head is cut at the header deadline (408),
/// an idle kept-alive connection at the idle limit, oversized or too many headers get 431,
/// bodies over a route's limit 413, and one address holds at most its share of connections.
#[test]
fn resource_exhaustion_slow_clients_and_floods_are_cut() {
    let up = echo_upstream("app");
    let server = TestServer::start_with(Options {
        extra_config: format!(
            "[server]\nheader_read_timeout = \"1s\"\nkeepalive_timeout = \"1s\"\nmax_header_size = 4096\nmax_headers = 20\nmax_connections_per_ip = 8\n\
             [[route]]\nhost = \"app.test\"\nupstream = \"http://{up}\"\nmax_body_size = 1000\n"
        ),
        ..Default::default()
    });
    // One header byte every 200 ms: cut after about a second, not served forever.
    let (closed, answer) = send_slowly(
        server.http,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Duration::from_millis(200),
        Duration::from_secs(8),
    );
    assert!(closed, "a trickled head kept the connection open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A kept-alive connection that goes quiet, or half-sends a second request, is closed.
    for second in [&b""[..], b"GET / HTTP/1.1\r\nHost: app"] {
        let mut s = TcpStream::connect(server.http).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s.write_all(second).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "idle connection held"
        );
    }
    // Header size and count.
    let big = "x".repeat(5000);
    let (status, _) = raw(server.http, "GET", "/", &[("x-big", big.as_str())]);
    assert_eq!(status, 431);
    let many: Vec<(String, String)> = (0..30).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, _) = raw(server.http, "GET", "/", &many);
    assert_eq!(status, 431);
    let (status, _) = raw(server.http, "GET", "/", &[]);
    assert_eq!(status, 200, "an ordinary request still passes");
    // Bodies over the route's limit, declared or chunked.
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("http://{}/upload", server.http))
        .header("host", "app.test")
        .body(vec![b'a'; 5000])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let mut s = TcpStream::connect(server.http).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
    for _ in 0..5 {
        let _ = s.write_all(b"3e8\r\n");
        let _ = s.write_all(&[b'b'; 1000]);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "5000 chunked bytes passed a 1000-byte limit: {answer}"
    );
    // Connections per address.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(server.http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut ninth = TcpStream::connect(server.http).unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = ninth.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
    let mut buf = Vec::new();
    let _ = ninth.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "the ninth connection was served: {}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = raw(server.http, "GET", "/", &[]);
    assert_eq!(status, 200, "slots come back when connections close");
}

/// Request smuggling by absolute-form and host confusion (CWE-444 class): the URI's
/// authority routes the request, a request with no host at all is refused, and a trailing
/// dot or upper case still finds the route.
#[test]
fn host_confusion_absolute_form_and_trailing_dots() {
    let up = echo_upstream("app");
    let (server, _api, _, _) = gateway_server_with(
        "",
        &format!("{SESSION_ROUTE}\n[[route]]\nupstream = \"http://{up}\"\n"),
        &[],
    );
    // Absolute-form naming the protected host with Host naming the open catch-all: refused
    // (the two disagree); agreeing, the protected route's session check applies.
    let (status, body) = raw(
        server.http,
        "GET",
        "http://app.test/private",
        &[("host", "anything.test")],
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(
        server.http,
        "GET",
        "http://app.test/private",
        &[("host", "app.test")],
    );
    assert_eq!(status, 302, "{body}");
    let mut s = TcpStream::connect(server.http).unwrap();
    s.write_all(b"GET /private HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.0 400"),
        "{answer}"
    );
    for host in ["app.test.", "APP.Test", "app.test.:80"] {
        let (status, _) = raw(server.http, "GET", "/private", &[("host", host)]);
        assert_eq!(status, 302, "{host} missed its route");
    }
}

/// Path-parameter confusion (CVE-2020-1957 / Tomcat `..;` class) on routes and in
/// forward-auth: `/public/..;/private` is refused, not passed as public.
#[test]
fn path_confusion_dot_segments_with_parameters() {
    let (server, _api, _, _) =
        gateway_server_with("trusted_proxies = [\"127.0.0.1/32\"]", SESSION_ROUTE, &[]);
    for path in [
        "/public/..;/private",
        "/public/.;/private",
        "/public/%2e%2e;x/private",
    ] {
        let (status, body) = raw(server.http, "GET", path, &[]);
        assert_eq!(status, 400, "{path}: {body}");
        let (status, body) = raw(
            server.http,
            "GET",
            "/_portcullis/forward-auth",
            &[("x-original-url", &format!("http://app.test{path}"))],
        );
        assert_eq!(status, 400, "forward-auth {path}: {body}");
    }
    let (status, _) = raw(server.http, "GET", "/public/x;v=1", &[]);
    assert_eq!(status, 200, "ordinary ;parameters on public paths");
}

/// Forward-auth header confusion (Traefik/Authelia `X-Forwarded-Uri` and oauth2-proxy
/// CVE-2021-21291 class): headers of the set the proxy does not send are never believed.
#[test]
fn forward_auth_header_sets_are_never_mixed() {
    let (server, _api, _, _) =
        gateway_server_with("trusted_proxies = [\"127.0.0.1/32\"]", SESSION_ROUTE, &[]);
    let fa = "/_portcullis/forward-auth";
    // Caddy/Traefik send X-Forwarded-*; a client-added X-Original-URL must not win.
    let (status, _) = raw(
        server.http,
        "GET",
        fa,
        &[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "app.test"),
            ("x-forwarded-uri", "/private"),
            ("x-original-url", "http://app.test/public/x"),
        ],
    );
    assert_eq!(status, 400);
    // nginx sends X-Original-URL; client-added X-Forwarded-Uri / -Method must not win.
    let (status, _) = raw(
        server.http,
        "GET",
        fa,
        &[
            ("x-original-url", "http://app.test/private"),
            ("x-original-method", "DELETE"),
            ("x-forwarded-uri", "/public/x"),
            ("x-forwarded-method", "GET"),
        ],
    );
    assert_eq!(status, 400);
    // Raw UTF-8 from nginx is judged as sent (a protected path: 401), never skipped.
    let mut s = TcpStream::connect(server.http).unwrap();
    s.write_all("GET /_portcullis/forward-auth HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nX-Original-URL: http://app.test/caf\u{e9}\r\n\r\n".as_bytes()).unwrap();
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // Each set alone still works.
    let (status, _) = raw(
        server.http,
        "GET",
        fa,
        &[("x-original-url", "http://app.test/public/x")],
    );
    assert_eq!(status, 200);
    let (status, _) = raw(
        server.http,
        "GET",
        fa,
        &[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "app.test"),
            ("x-forwarded-uri", "/public/x"),
        ],
    );
    assert_eq!(status, 200);
}

/// Header spoofing towards upstreams (CWE-348; the `X-Real-IP` / `X-Original-URL` rewrite
/// class): forwarding headers a client sends never reach the app as sent.
#[test]
fn header_spoofing_forwarding_headers_are_stripped() {
    let up = echo_upstream("app");
    let server = TestServer::start_with(Options {
        extra_config: format!("[[route]]\nhost = \"app.test\"\nupstream = \"http://{up}\"\n"),
        ..Default::default()
    });
    let (status, body) = raw(
        server.http,
        "GET",
        "/x",
        &[
            ("X-Real-IP", "10.9.9.9"),
            ("True-Client-IP", "10.9.9.9"),
            ("Forwarded", "for=10.9.9.9;host=evil"),
            ("X-Original-URL", "/admin"),
            ("X-Rewrite-URL", "/admin"),
            ("X-Forwarded-Prefix", "/admin"),
            ("X-HTTP-Method-Override", "DELETE"),
            ("X_Real_IP", "10.9.9.9"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let headers = seen["headers"].as_object().unwrap();
    for name in [
        "true-client-ip",
        "forwarded",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-prefix",
        "x-http-method-override",
        "x_real_ip",
    ] {
        assert!(
            !headers.contains_key(name),
            "{name} reached the upstream: {body}"
        );
    }
    assert_eq!(
        headers["x-real-ip"], "127.0.0.1",
        "set from what the gateway knows"
    );
}

/// Logout CSRF and cookie replay across hosts: a cross-site GET does not sign the user
/// out, and a cookie issued for one app's host does not open another's.
#[test]
fn sign_out_csrf_and_cookies_bound_to_their_host() {
    let routes = format!(
        "{SESSION_ROUTE}\n{}",
        SESSION_ROUTE.replace("app.test", "other.test")
    );
    let (server, _api, _, _) = gateway_server_with("", &routes, &[]);
    let b = Browser::for_host(&server, "app.test");
    login_through_gateway(&b, "/private");
    let cookie = {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = b.base.parse().unwrap();
        b.jar.cookies(&url).unwrap().to_str().unwrap().to_string()
    };
    // Replayed on the other app's host: no session there.
    let other = Browser::for_host(&server, "other.test");
    let r = other
        .client
        .get(other.url("/private"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        302,
        "a cookie for app.test opened other.test"
    );
    // A cross-site GET of sign-out only asks.
    let r = b
        .client
        .get(b.url("/_portcullis/sign_out"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().unwrap();
    assert!(page.contains("method=\"post\""), "{page}");
    let (status, _) = echo_json(&b, "/private", &[]);
    assert_eq!(status, 200, "still signed in after a cross-site GET");
    // A POST without the token neither.
    let r = b
        .client
        .post(b.url("/_portcullis/sign_out"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(echo_json(&b, "/private", &[]).0, 200);
    // The confirmation's own form does.
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|a| a.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let r = b.client.post(b.url(&action)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "signed out");
    std::thread::sleep(Duration::from_millis(400));
    let (status, _, _) = b.get("/private");
    assert_eq!(status, 302, "the session ended");
    // A same-origin GET (a link on the app's own page) signs out at once.
    login_through_gateway(&b, "/private");
    let r = b
        .client
        .get(b.url("/_portcullis/sign_out"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .unwrap();
    assert!(r.text().unwrap().contains("signed out"));
}

/// Open redirect through wildcard redirect URIs (Keycloak CVE-2023-6927 / CVE-2024-1132)
/// and PKCE downgrade (a configured S256 skipped by a confidential client): refused at the
/// authorization endpoint.
#[test]
fn open_redirect_and_pkce_downgrade_at_authorization() {
    let server = TestServer::start();
    let admin = Api::admin(&server);
    admin.setup_realm("t");
    let r = admin.post(
        "/admin/realms/t/clients",
        &json!({"clientId": "web", "publicClient": false, "redirectUris": ["https://x.example/app/*"],
                "attributes": {"pkce.code.challenge.method": "S256"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let b = Browser::new(&server);
    for evil in [
        "https://x.example/app/..;/evil",
        "https://x.example/app/%252e%252e/evil",
        "https://x.example/app/..%2fevil",
        "https://x.example/app/..%5cevil",
    ] {
        let url = b.auth_url(
            "t",
            "web",
            &[
                ("redirect_uri", evil),
                ("code_challenge", &"a".repeat(43)),
                ("code_challenge_method", "S256"),
            ],
        );
        let (status, location, body) = b.get(&url);
        assert_eq!(status, 400, "{evil}: {location:?} {body}");
    }
    let url = b.auth_url("t", "web", &[("redirect_uri", "https://x.example/app/cb")]);
    let (status, location, body) = b.get(&url);
    assert_ne!(
        status, 200,
        "a code flow without the configured PKCE: {body}"
    );
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.contains("error=invalid_request"))
            || status == 400,
        "{location:?}"
    );
}

/// `/metrics` and the admin paths follow `server.metrics_allow` / `admin_allow`: a client
/// (as a trusted proxy reports it) outside them is refused.
#[test]
fn metrics_and_admin_api_follow_their_address_rules() {
    let server = TestServer::start_with(Options {
        extra_config: "[server]\nadmin_allow = [\"127.0.0.1/32\", \"10.0.0.0/8\"]\n[proxy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n".into(),
        ..Default::default()
    });
    let get = |path: &str, client: Option<&str>| {
        let mut headers = vec![("host", "localhost")];
        if let Some(ip) = client {
            headers.push(("x-forwarded-for", ip));
        }
        raw(server.http, "GET", path, &headers)
    };
    assert_eq!(get("/metrics", None).0, 200, "loopback");
    assert_eq!(
        get("/metrics", Some("203.0.113.9")).0,
        200,
        "a trusted proxy scrapes"
    );
    // (Private addresses: the master realm's sslRequired=external lets them use HTTP.)
    let (status, body) = get("/admin/realms", Some("172.16.0.5"));
    assert_eq!(status, 403);
    assert!(body.contains("\"forbidden\""), "{body}");
    assert_eq!(
        get("/admin/realms", Some("10.1.2.3")).0,
        401,
        "allowed, then asked for a token"
    );
    // Every admin path: the console's server info and whoami, and the API's document.
    for path in [
        "/admin/serverinfo",
        "/admin/master/console/whoami",
        "/admin/openapi.json",
    ] {
        assert_eq!(get(path, Some("172.16.0.5")).0, 403, "{path}");
    }
    assert_eq!(get("/admin/openapi.json", Some("10.1.2.3")).0, 200);
    assert_eq!(
        get("/realms/master", Some("172.16.0.5")).0,
        200,
        "the rest of the IdP is open"
    );

    // Metrics from a client that is not a trusted proxy: loopback only by default.
    let untrusted = TestServer::start_with(Options {
        extra_config: "[server]\nmetrics_allow = [\"192.0.2.0/24\"]\n".into(),
        ..Default::default()
    });
    let (status, _) = raw(untrusted.http, "GET", "/metrics", &[("host", "localhost")]);
    assert_eq!(status, 403, "127.0.0.1 is not in metrics_allow");
}

/// Cache flushing by anonymous traffic (CWE-400): one address can start only so many
/// gateway logins at once (then 429), so it cannot push everybody else's out.
#[test]
fn resource_exhaustion_pending_logins_are_bounded_per_address() {
    let (server, _api, _, _) = gateway_server_with("", SESSION_ROUTE, &[]);
    let b = Browser::for_host(&server, "app.test");
    for i in 0..200 {
        let (status, _, _) = b.get(&format!("/private/{i}"));
        assert_eq!(status, 302, "login {i}");
    }
    let r = b.client.get(b.url("/private/x")).send().unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
}
