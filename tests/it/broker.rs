//! Identity brokering end to end: a realm signs users in through an OpenID Connect provider
//! (another realm of a real server, with its own keys, login form and PKCE), GitHub's OAuth
//! and API (a small server written here plays github.com), first-broker-login (create, or
//! link an existing account only after its own password), the admin API's links, and the
//! attacks: a replayed or foreign state, a token signed by another key, an e-mail that is
//! someone else's account.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use serde_json::{json, Value};

use crate::api::{claims, Api};
use crate::browser::{find_form, param, unescape, Browser};
use crate::harness::TestServer;

const REDIRECT: &str = "http://localhost:3000/callback";

fn user_id(api: &Api, realm: &str, username: &str) -> Option<String> {
    let r = api.get(&format!(
        "/admin/realms/{realm}/users?username={username}&exact=true"
    ));
    r.body.as_array()?.first()?["id"]
        .as_str()
        .map(str::to_string)
}

/// The app realm's confidential client the tests sign in to.
fn webapp(api: &Api) {
    let r = api.post(
        "/admin/realms/app/clients",
        &json!({"clientId": "webapp", "publicClient": false, "secret": "webapp-secret-1", "redirectUris": [REDIRECT]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

/// The upstream realm: a confidential client for the broker and its users.
fn upstream(api: &Api, base: &str) {
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "up", "enabled": true}))
            .status,
        201
    );
    let r = api.post(
        "/admin/realms/up/clients",
        &json!({"clientId": "app-broker", "secret": "broker-secret-1", "publicClient": false,
                "redirectUris": [format!("{base}/realms/app/broker/*")], "standardFlowEnabled": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    for (name, email) in [
        ("ursula", "ursula@example.com"),
        ("bobby", "bob@example.com"),
    ] {
        let r = api.post(
            "/admin/realms/up/users",
            &json!({"username": name, "email": email, "firstName": "U", "lastName": name,
                    "emailVerified": true, "enabled": true,
                    "credentials": [{"type": "password", "value": "Upstream-pass-1", "temporary": false}]}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

/// A local user of the app realm with a password; its id.
fn local_user(api: &Api, username: &str, email: &str, password: &str) -> String {
    let r = api.post(
        "/admin/realms/app/users",
        &json!({"username": username, "email": email, "enabled": true,
                "credentials": [{"type": "password", "value": password, "temporary": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.location_id()
}

/// The upstream realm, the app realm (`realm`: its representation's other fields) with its
/// webapp client, and `idp` as the app's identity provider.
fn app_with_provider(api: &Api, base: &str, realm: Value, idp: &Value) {
    upstream(api, base);
    let mut body = json!({"realm": "app", "enabled": true});
    for (k, v) in realm.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let r = api.post("/admin/realms", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    webapp(api);
    let r = api.post("/admin/realms/app/identity-provider/instances", idp);
    assert_eq!(r.status, 201, "{}", r.text);
}

fn oidc_provider(base: &str, alias: &str, jwks_realm: &str) -> Value {
    let up = format!("{base}/realms/up/protocol/openid-connect");
    json!({"alias": alias, "providerId": "oidc", "enabled": true, "displayName": "Corporate SSO",
           "trustEmail": true,
           "config": {"clientId": "app-broker", "clientSecret": "broker-secret-1",
                      "authorizationUrl": format!("{up}/auth"), "tokenUrl": format!("{up}/token"),
                      "userInfoUrl": format!("{up}/userinfo"),
                      "jwksUrl": format!("{base}/realms/{jwks_realm}/protocol/openid-connect/certs"),
                      "issuer": format!("{base}/realms/up"), "pkceEnabled": "true",
                      "pkceMethod": "S256", "defaultScope": "openid profile email",
                      "syncMode": "IMPORT"}})
}

/// Start a login at the app, click the provider's button; returns the provider's URL.
fn to_provider(browser: &Browser, alias: &str) -> String {
    let (status, _, html) = browser.get(&browser.auth_url("app", "webapp", &[]));
    assert_eq!(status, 200);
    let marker = format!("id=\"social-{alias}\" href=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {alias} button:\n{html}"))
        + marker.len();
    let href = unescape(&html[start..start + html[start..].find('"').unwrap()]);
    let (status, location, _) = browser.get(&href);
    assert_eq!(status, 302, "broker login redirects");
    location.unwrap()
}

/// Log in at the upstream realm and come back; returns where the app's callback sent us.
fn through_upstream(
    browser: &Browser,
    provider_url: &str,
    user: &str,
) -> (u16, Option<String>, String) {
    let (status, _, html) = browser.get(provider_url);
    assert_eq!(status, 200, "upstream login page");
    let (status, back, _) = browser.login(&html, user, "Upstream-pass-1");
    assert_eq!(status, 302, "upstream redirects back");
    let back = back.unwrap();
    assert!(back.contains("/realms/app/broker/corp/endpoint?"), "{back}");
    browser.get(&back)
}

fn code_claims(api: &Api, location: &str) -> Value {
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = param(location, "code").expect("code");
    let r = api.token(
        "app",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "webapp"),
            ("client_secret", "webapp-secret-1"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    claims(r.body["access_token"].as_str().unwrap())
}

#[test]
fn sign_in_through_an_oidc_provider_creates_links_and_refuses_forgeries() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    upstream(&api, &base);
    assert_eq!(
        api.post(
            "/admin/realms",
            &json!({"realm": "app", "enabled": true, "eventsEnabled": true})
        )
        .status,
        201
    );
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "other", "enabled": true}))
            .status,
        201
    );
    webapp(&api);
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &oidc_provider(&base, "corp", "up"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // The console's "import from discovery": the upstream's endpoints as a config.
    let discovery = format!("{base}/realms/up/.well-known/openid-configuration");
    let r = api.post(
        "/admin/realms/app/identity-provider/import-config",
        &json!({"providerId": "oidc", "fromUrl": discovery}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let up = format!("{base}/realms/up/protocol/openid-connect");
    assert_eq!(r.body["authorizationUrl"], format!("{up}/auth"));
    assert_eq!(r.body["tokenUrl"], format!("{up}/token"));
    assert_eq!(r.body["jwksUrl"], format!("{up}/certs"));
    assert_eq!(r.body["issuer"], format!("{base}/realms/up"));
    assert_eq!(r.body["pkceEnabled"], "true");
    let r = api.post(
        "/admin/realms/app/identity-provider/import-config",
        &json!({"providerId": "oidc", "fromUrl": format!("{up}/certs")}),
    );
    assert_eq!(r.status, 400, "not a discovery document: {}", r.text);
    // An account of the app's own with the e-mail an upstream user has.
    let r = api.post(
        "/admin/realms/app/users",
        &json!({"username": "bob", "email": "bob@example.com", "enabled": true,
                "credentials": [{"type": "password", "value": "Bob-local-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201);

    // First login: the user is created and linked, and the app gets a code.
    let browser = Browser::new(&server);
    let provider_url = to_provider(&browser, "corp");
    assert!(provider_url.starts_with(&format!("{base}/realms/up/protocol/openid-connect/auth?")));
    for part in [
        "client_id=app-broker",
        "code_challenge=",
        "code_challenge_method=S256",
        "nonce=",
        "state=",
    ] {
        assert!(provider_url.contains(part), "{provider_url} lacks {part}");
    }
    let (status, _, html) = browser.get(&provider_url);
    assert_eq!(status, 200);
    let (_, back, _) = browser.login(&html, "ursula", "Upstream-pass-1");
    let back = back.unwrap();
    let (status, location, body) = browser.get(&back);
    assert_eq!(status, 302, "{body}");
    let c = code_claims(&api, &location.unwrap());
    assert_eq!(c["preferred_username"], "ursula");
    assert_eq!(c["email"], "ursula@example.com");
    let ursula = user_id(&api, "app", "ursula").expect("created");
    let u = api.get(&format!("/admin/realms/app/users/{ursula}")).body;
    assert_eq!(u["emailVerified"], true, "trustEmail");
    assert_eq!(u["lastName"], "ursula");
    let links = api
        .get(&format!(
            "/admin/realms/app/users/{ursula}/federated-identity"
        ))
        .body;
    assert_eq!(links[0]["identityProvider"], "corp");
    assert_eq!(links[0]["userName"], "ursula");
    let events = api
        .get("/admin/realms/app/events?type=IDENTITY_PROVIDER_LOGIN")
        .body;
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["userId"], ursula);
    assert_eq!(events[0]["details"]["identity_provider"], "corp");

    // The state is single use: the same callback again is refused, and creates nothing.
    let (status, _, _) = browser.get(&back);
    assert_eq!(status, 400, "a replayed state");
    // A state from another browser is refused.
    let other = Browser::new(&server);
    let url = to_provider(&other, "corp");
    let state = param(&url, "state").unwrap();
    let stranger = Browser::new(&server);
    let (status, _, _) = stranger.get(&format!(
        "/realms/app/broker/corp/endpoint?code=x&state={state}"
    ));
    assert_eq!(status, 400, "state of another browser");
    let (flow, _) = state.split_once('.').unwrap();
    let (status, _, _) = other.get(&format!(
        "/realms/app/broker/corp/endpoint?code=x&state={flow}.forged"
    ));
    assert_eq!(status, 400, "a forged state");

    // Second login: the link signs the same user in, nothing new is created.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, location, _) = through_upstream(&browser, &url, "ursula");
    assert_eq!(status, 302);
    assert_eq!(code_claims(&api, &location.unwrap())["sub"], ursula);
    let count = api.get("/admin/realms/app/users/count").body;
    assert_eq!(count, 2, "ursula and bob only");

    // An upstream account whose e-mail is bob's: never linked silently. The login form asks
    // for bob's own password; a wrong one links nothing, the right one links and signs in.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, _, html) = through_upstream(&browser, &url, "bobby");
    assert_eq!(status, 200, "asked to prove the account: {html}");
    assert!(
        html.contains("kc-info-message") && html.contains("bob"),
        "{html}"
    );
    let bob = user_id(&api, "app", "bob").unwrap();
    assert_eq!(
        api.get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
            .body,
        json!([])
    );
    // The page names the provider's address, never the local account's username, and the
    // form is empty: whoever goes on must know the account.
    assert!(html.contains("bob@example.com"), "{html}");
    let form = find_form(&html, "kc-form-login").unwrap();
    assert_eq!(form.get("username"), Some(""));
    let (status, _, html) = browser.login(&html, "bob", "wrong-password");
    assert_eq!(status, 200);
    assert!(html.contains("Invalid"), "{html}");
    assert_eq!(
        api.get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
            .body,
        json!([])
    );
    let (status, location, _) = browser.login(&html, "bob", "Bob-local-pass-1");
    assert_eq!(status, 302);
    assert_eq!(code_claims(&api, &location.unwrap())["sub"], bob);
    let links = api
        .get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
        .body;
    assert_eq!(links[0]["identityProvider"], "corp");
    assert_eq!(links[0]["userName"], "bobby");
    assert_eq!(api.get("/admin/realms/app/users/count").body, 2);

    // A provider whose keys are not the ones that signed the ID token: refused with a page
    // that leads back to the login form, and no user is created.
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &oidc_provider(&base, "corp2", "other"),
    );
    assert_eq!(r.status, 201);
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp2");
    let (status, _, html) = browser.get(&url);
    assert_eq!(status, 200);
    let (_, back, _) = browser.login(&html, "bobby", "Upstream-pass-1");
    let (status, _, html) = browser.get(&back.unwrap());
    assert_eq!(status, 400);
    assert!(
        html.contains("kc-form-login") && html.contains("did not work"),
        "{html}"
    );
    assert_eq!(api.get("/admin/realms/app/users/count").body, 2);

    // kc_idp_hint goes straight to the provider.
    let browser = Browser::new(&server);
    let (status, location, _) =
        browser.get(&browser.auth_url("app", "webapp", &[("kc_idp_hint", "corp")]));
    assert_eq!(status, 302);
    assert!(location
        .unwrap()
        .contains("/realms/app/broker/corp/login?flow="));

    // The admin API's links: remove and add.
    let r = api.delete(&format!(
        "/admin/realms/app/users/{bob}/federated-identity/corp"
    ));
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
            .body,
        json!([])
    );
    let r = api.post(
        &format!("/admin/realms/app/users/{bob}/federated-identity/corp"),
        &json!({"userId": "up-id-1", "userName": "bobby"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.post(
        &format!("/admin/realms/app/users/{ursula}/federated-identity/corp"),
        &json!({"userId": "up-id-1", "userName": "bobby"}),
    );
    assert_eq!(r.status, 409, "one identity, one user");
    let r = api.post(
        &format!("/admin/realms/app/users/{bob}/federated-identity/nope"),
        &json!({"userId": "x"}),
    );
    assert_eq!(r.status, 400);
    // Deleting the user removes its links (the identity may be linked anew).
    assert_eq!(
        api.delete(&format!("/admin/realms/app/users/{bob}")).status,
        204
    );
    let r = api.post(
        &format!("/admin/realms/app/users/{ursula}/federated-identity/corp2"),
        &json!({"userId": "up-id-1", "userName": "bobby"}),
    );
    assert_eq!(r.status, 204);
}

/// GitHub's OAuth and API, played on loopback: `/login/oauth/access_token`, `/user`,
/// `/user/emails` (the profile hides its address, as many do).
pub(crate) fn fake_github() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(3) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if l.starts_with("authorization:") {
                    auth = line.trim().to_string();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body);
            let answer = if request_line.starts_with("POST /login/oauth/access_token") {
                assert!(
                    body.contains("code=gh-code") && body.contains("client_secret=gh-secret"),
                    "{body}"
                );
                json!({"access_token": "gho_token", "token_type": "bearer", "scope": "user:email"})
            } else if request_line.starts_with("GET /user/emails") {
                assert!(auth.ends_with("Bearer gho_token"), "{auth}");
                json!([{"email": "old@example.com", "primary": false, "verified": true},
                       {"email": "mona@example.com", "primary": true, "verified": true}])
            } else if request_line.starts_with("GET /user") {
                assert!(auth.ends_with("Bearer gho_token"), "{auth}");
                json!({"id": 583231, "login": "octocat", "name": "Mona Lisa", "email": null})
            } else {
                json!({"message": "Not Found"})
            };
            let text = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (base, handle)
}

#[test]
fn sign_in_with_github_reads_the_api_and_the_primary_address() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "app", "enabled": true}))
            .status,
        201
    );
    webapp(&api);
    let (github, handle) = fake_github();
    // The seed's provider, with the API at our stand-in.
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &json!({"alias": "github", "providerId": "github", "enabled": true,
                "config": {"clientId": "gh-client", "clientSecret": "gh-secret",
                           "baseUrl": github, "apiUrl": github}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let browser = Browser::new(&server);
    let (status, location, html) = browser.get(&browser.auth_url("app", "webapp", &[]));
    assert!(
        html.contains(">GitHub</a>"),
        "the button: {status} {location:?} {html}"
    );
    let url = to_provider(&browser, "github");
    assert!(
        url.starts_with(&format!("{github}/login/oauth/authorize?")),
        "{url}"
    );
    assert!(
        url.contains("scope=user%3Aemail") && !url.contains("nonce="),
        "{url}"
    );
    // GitHub would show its consent page and come back with a code.
    let state = param(&url, "state").unwrap();
    let (status, location, body) = browser.get(&format!(
        "/realms/app/broker/github/endpoint?code=gh-code&state={state}"
    ));
    assert_eq!(status, 302, "{body}");
    let c = code_claims(&api, &location.unwrap());
    assert_eq!(c["preferred_username"], "octocat");
    assert_eq!(c["email"], "mona@example.com");
    assert_eq!(c["given_name"], "Mona");
    let id = user_id(&api, "app", "octocat").unwrap();
    let u = api.get(&format!("/admin/realms/app/users/{id}")).body;
    assert_eq!(u["emailVerified"], false, "trustEmail is off");
    let links = api
        .get(&format!("/admin/realms/app/users/{id}/federated-identity"))
        .body;
    assert_eq!(
        links,
        json!([{"identityProvider": "github", "userId": "583231", "userName": "octocat"}])
    );
    handle.join().unwrap();
}

#[test]
fn mappers_stored_tokens_admin_limits_and_an_unreachable_provider() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    upstream(&api, &base);
    // The upstream user carries a group-like claim: a realm role of the upstream realm.
    assert_eq!(
        api.post("/admin/realms/up/roles", &json!({"name": "engineer"}))
            .status,
        201
    );
    let ursula = user_id(&api, "up", "ursula").unwrap();
    let role = api.get("/admin/realms/up/roles/engineer").body;
    assert_eq!(
        api.post(
            &format!("/admin/realms/up/users/{ursula}/role-mappings/realm"),
            &json!([role])
        )
        .status,
        204
    );
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "app", "enabled": true}))
            .status,
        201
    );
    webapp(&api);
    for name in ["staff", "builder"] {
        assert_eq!(
            api.post("/admin/realms/app/roles", &json!({"name": name}))
                .status,
            201
        );
    }
    let mut corp = oidc_provider(&base, "corp", "up");
    corp["storeToken"] = json!(true);
    corp["addReadTokenRoleOnCreate"] = json!(true);
    assert_eq!(
        api.post("/admin/realms/app/identity-provider/instances", &corp)
            .status,
        201
    );
    let types = api
        .get("/admin/realms/app/identity-provider/instances/corp/mapper-types")
        .body;
    assert!(
        types["oidc-role-idp-mapper"]["properties"].is_array(),
        "{types}"
    );
    assert_eq!(
        api.get("/admin/realms/app/identity-provider/providers/github")
            .body["name"],
        "GitHub"
    );
    let mappers = "/admin/realms/app/identity-provider/instances/corp/mappers";
    for m in [
        json!({"name": "staff", "identityProviderMapper": "hardcoded-role-idp-mapper", "config": {"role": "staff"}}),
        json!({"name": "engineers build", "identityProviderMapper": "oidc-role-idp-mapper",
               "config": {"claim": "realm_access.roles", "claim.value": "engineer", "role": "builder", "syncMode": "FORCE"}}),
        json!({"name": "family", "identityProviderMapper": "oidc-user-attribute-idp-mapper",
               "config": {"claim": "family_name", "user.attribute": "upstream_family"}}),
        json!({"name": "dept", "identityProviderMapper": "hardcoded-attribute-idp-mapper",
               "config": {"attribute": "department", "attribute.value": "research"}}),
        json!({"name": "names", "identityProviderMapper": "oidc-username-idp-mapper",
               "config": {"template": "${ALIAS}.${CLAIM.preferred_username}"}}),
    ] {
        let r = api.post(mappers, &m);
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = api.post(mappers, &json!({"name": "x", "identityProviderMapper": "hardcoded-role-idp-mapper", "config": {"role": "nope"}}));
    assert_eq!(r.status, 400, "an unknown role");
    let r = api.post(
        mappers,
        &json!({"name": "x", "identityProviderMapper": "script-mapper", "config": {}}),
    );
    assert_eq!(r.status, 400, "an unknown mapper type");

    // An administrator of identity providers only cannot grant admin power through a mapper.
    let r = api.post(
        "/admin/realms/app/users",
        &json!({"username": "idp-admin", "enabled": true,
                "credentials": [{"type": "password", "value": "Idp-admin-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201);
    let idp_admin = user_id(&api, "app", "idp-admin").unwrap();
    let rm = api
        .get("/admin/realms/app/clients?clientId=realm-management")
        .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let manage_idps = api
        .get(&format!(
            "/admin/realms/app/clients/{rm}/roles/manage-identity-providers"
        ))
        .body;
    let r = api.post(
        &format!("/admin/realms/app/users/{idp_admin}/role-mappings/clients/{rm}"),
        &json!([manage_idps]),
    );
    assert_eq!(r.status, 204);
    let mut limited = Api::new_like(&api);
    let t = limited.token(
        "app",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "idp-admin"),
            ("password", "Idp-admin-pass-1"),
        ],
    );
    assert_eq!(t.status, 200, "{}", t.text);
    limited.token = Some(t.body["access_token"].as_str().unwrap().to_string());
    let r = limited.post(
        mappers,
        &json!({"name": "escalate", "identityProviderMapper": "hardcoded-role-idp-mapper",
        "config": {"role": "realm-management.realm-admin"}}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = limited.post(
        mappers,
        &json!({"name": "fine", "identityProviderMapper": "hardcoded-attribute-idp-mapper",
        "config": {"attribute": "a", "attribute.value": "b"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    // First login: the mappers ran.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, location, body) = through_upstream(&browser, &url, "ursula");
    assert_eq!(status, 302, "{body}");
    let c = code_claims(&api, &location.unwrap());
    assert_eq!(
        c["preferred_username"], "corp.ursula",
        "the username template"
    );
    let roles: Vec<&str> = c["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        roles.contains(&"staff") && roles.contains(&"builder"),
        "{roles:?}"
    );
    let local = user_id(&api, "app", "corp.ursula").unwrap();
    let u = api.get(&format!("/admin/realms/app/users/{local}")).body;
    assert_eq!(u["attributes"]["upstream_family"], json!(["ursula"]));
    assert_eq!(u["attributes"]["department"], json!(["research"]));

    // storeToken: the upstream tokens, for the user holding broker's read-token.
    let code = param(&browser_login_again(&server, &api), "code").unwrap();
    let r = api.token(
        "app",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "webapp"),
            ("client_secret", "webapp-secret-1"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    );
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let stored = server
        .client()
        .get(format!("{base}/realms/app/broker/corp/token"))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(stored.status().as_u16(), 200);
    let stored: Value = stored.json().unwrap();
    assert!(
        stored["access_token"].is_string() && stored["id_token"].is_string(),
        "{stored}"
    );
    let none = server
        .client()
        .get(format!("{base}/realms/app/broker/corp/token"))
        .send()
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    // Another user's token (no read-token role) reads nothing.
    let admin_token = api.token.clone().unwrap();
    let other = server
        .client()
        .get(format!("{base}/realms/app/broker/corp/token"))
        .bearer_auth(&admin_token)
        .send()
        .unwrap();
    assert_eq!(other.status().as_u16(), 401, "a token of another realm");

    // FORCE: the claim is gone upstream, so the role goes at the next login.
    let r = api.delete_json(
        &format!("/admin/realms/up/users/{ursula}/role-mappings/realm"),
        &json!([role]),
    );
    assert_eq!(r.status, 204);
    browser_login_again(&server, &api);
    let mapped = api
        .get(&format!(
            "/admin/realms/app/users/{local}/role-mappings/realm"
        ))
        .body;
    let names: Vec<&str> = mapped
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"staff") && !names.contains(&"builder"),
        "{names:?}"
    );

    // Deleting the provider removes its links; the user stays.
    assert_eq!(
        api.delete("/admin/realms/app/identity-provider/instances/corp")
            .status,
        204
    );
    assert_eq!(
        api.get(&format!(
            "/admin/realms/app/users/{local}/federated-identity"
        ))
        .body,
        json!([])
    );
    assert_eq!(
        api.get(&format!("/admin/realms/app/users/{local}")).status,
        200
    );

    // A provider nobody answers for: a page with the way back, quickly, and no user.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &json!({"alias": "dead", "providerId": "oidc",
                "config": {"clientId": "c", "clientSecret": "s", "authorizationUrl": format!("{dead}/auth"),
                           "tokenUrl": format!("{dead}/token"), "jwksUrl": format!("{dead}/certs")}}),
    );
    assert_eq!(r.status, 201);
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "dead");
    let state = param(&url, "state").unwrap();
    let started = std::time::Instant::now();
    let (status, _, html) = browser.get(&format!(
        "/realms/app/broker/dead/endpoint?code=c&state={state}"
    ));
    assert_eq!(status, 400);
    assert!(html.contains("kc-form-login"), "{html}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The provider said no: the same page.
    let url = to_provider(&browser, "dead");
    let state = param(&url, "state").unwrap();
    let (status, _, html) = browser.get(&format!(
        "/realms/app/broker/dead/endpoint?error=access_denied&state={state}"
    ));
    assert_eq!(status, 400);
    assert!(html.contains("cancelled or refused"), "{html}");
}

/// A new browser logs in again through `corp` as ursula; returns the app's redirect.
fn browser_login_again(server: &TestServer, _api: &Api) -> String {
    let browser = Browser::new(server);
    let url = to_provider(&browser, "corp");
    let (status, location, body) = through_upstream(&browser, &url, "ursula");
    assert_eq!(status, 302, "{body}");
    location.unwrap()
}

#[test]
fn the_account_page_links_and_unlinks_providers() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    app_with_provider(&api, &base, json!({}), &oidc_provider(&base, "corp", "up"));
    let carol = local_user(&api, "carol", "carol@example.org", "Carol-pass-1");

    // Carol signs in to her account page and links her upstream account (bobby).
    let browser = Browser::new(&server);
    let (status, location, _) = browser.get("/realms/app/account");
    assert_eq!(status, 302);
    let (_, _, html) = browser.get(&location.unwrap());
    let (status, location, _) = browser.login(&html, "carol", "Carol-pass-1");
    assert_eq!(status, 302);
    let (status, _, _) = browser.get(&location.unwrap());
    assert!(status == 302 || status == 200);
    let (status, _, html) = browser.get("/realms/app/account/");
    assert_eq!(status, 200);
    let form =
        find_form(&html, "account-link-corp").unwrap_or_else(|| panic!("no link form:\n{html}"));
    let (status, location, _) = browser.submit(&form);
    assert_eq!(status, 302);
    let upstream_url = location.unwrap();
    assert!(
        upstream_url.starts_with(&format!("{base}/realms/up/")),
        "{upstream_url}"
    );
    let (_, _, html) = browser.get(&upstream_url);
    let (status, back, _) = browser.login(&html, "bobby", "Upstream-pass-1");
    assert_eq!(status, 302);
    let (status, location, body) = browser.get(&back.unwrap());
    assert_eq!(status, 302, "{body}");
    assert!(location.unwrap().ends_with("/realms/app/account/"));
    let links = api
        .get(&format!(
            "/admin/realms/app/users/{carol}/federated-identity"
        ))
        .body;
    assert_eq!(links[0]["identityProvider"], "corp");
    assert_eq!(links[0]["userName"], "bobby");
    let (_, _, html) = browser.get("/realms/app/account/");
    assert!(html.contains("bobby"), "{html}");
    // From now on bobby's upstream login is carol here.
    let other = Browser::new(&server);
    let url = to_provider(&other, "corp");
    let (status, location, _) = through_upstream(&other, &url, "bobby");
    assert_eq!(status, 302);
    assert_eq!(code_claims(&api, &location.unwrap())["sub"], carol);

    // Unlink (she has a password, so it is not her last way in).
    let form = find_form(&html, "account-link-corp").unwrap();
    assert!(form.action.ends_with("/linked-accounts/remove"));
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    assert!(html.contains("unlinked"), "{html}");
    assert_eq!(
        api.get(&format!(
            "/admin/realms/app/users/{carol}/federated-identity"
        ))
        .body,
        json!([])
    );

    // A brokered user without a password cannot remove the only link.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, location, _) = through_upstream(&browser, &url, "ursula");
    assert_eq!(status, 302);
    let _ = code_claims(&api, &location.unwrap());
    let (status, _, html) = browser.get("/realms/app/account/");
    assert_eq!(status, 200);
    let form = find_form(&html, "account-link-corp").unwrap();
    let (status, _, html) = browser.submit(&form);
    assert_eq!(status, 200);
    assert!(html.contains("last way to sign in"), "{html}");
    let ursula = user_id(&api, "app", "ursula").unwrap();
    assert_eq!(
        api.get(&format!(
            "/admin/realms/app/users/{ursula}/federated-identity"
        ))
        .body[0]["identityProvider"],
        "corp"
    );
    // The form needs the page's CSRF token.
    let mut forged = form.clone();
    forged.set("csrf_token", "forged");
    let (status, _, _) = browser.submit(&forged);
    assert_eq!(status, 400);
}

/// npm's oidc-provider on loopback, stopped when dropped.
struct Upstream {
    child: std::process::Child,
    base: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_oidc_provider(redirect_uri: &str) -> Upstream {
    start_oidc_provider_with(redirect_uri, &[])
}

fn start_oidc_provider_with(redirect_uri: &str, env: &[(&str, String)]) -> Upstream {
    crate::clients::setup();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oidc_upstream.mjs");
    let mut child = std::process::Command::new("node")
        .arg(script)
        .env("PORT", port.to_string())
        .env("REDIRECT_URI", redirect_uri)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start node");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "oidc-provider did not start");
    // Keep reading: the provider writes notices, and a closed pipe would end it.
    // What it says goes to the test's output (shown when a test fails).
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    Upstream {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Walk the provider's pages as a user would: follow redirects, and submit each page's form
/// (login with any password, then consent) until the provider sends us back to `until`.
fn through_oidc_provider(browser: &Browser, start: &str, login: &str, until: &str) -> String {
    let mut next = start.to_string();
    for _ in 0..12 {
        let r = browser.client.get(&next).send().unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let url = r.url().clone();
        let html = r.text().unwrap();
        if let Some(loc) = location {
            let absolute = url.join(&loc).unwrap().to_string();
            if absolute.starts_with(until) {
                return absolute;
            }
            next = absolute;
            continue;
        }
        assert_eq!(status, 200, "{next}: {html}");
        let start = html.find("action=\"").expect("a form") + 8;
        let action = unescape(&html[start..start + html[start..].find('"').unwrap()]);
        let prompt = if html.contains("value=\"login\"") {
            "login"
        } else {
            "consent"
        };
        let mut fields = vec![("prompt", prompt)];
        if prompt == "login" {
            fields.extend([("login", login), ("password", "anything")]);
        }
        let r = browser
            .client
            .post(url.join(&action).unwrap())
            .form(&fields)
            .send()
            .unwrap();
        let loc = r
            .headers()
            .get("location")
            .expect("a redirect after the form")
            .to_str()
            .unwrap()
            .to_string();
        next = url.join(&loc).unwrap().to_string();
        if next.starts_with(until) {
            return next;
        }
    }
    panic!("the provider never sent the browser back");
}

#[test]
fn npm_oidc_provider_as_a_corporate_sso_with_basic_auth_pkce_and_a_claim_mapper() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    let callback = format!("{base}/realms/app/broker/corp/endpoint");
    let upstream = start_oidc_provider(&callback);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "app", "enabled": true}))
            .status,
        201
    );
    webapp(&api);
    assert_eq!(
        api.post("/admin/realms/app/roles", &json!({"name": "sso-admin"}))
            .status,
        201
    );
    // The endpoints from the provider's discovery document, as an administrator would.
    let r = api.post(
        "/admin/realms/app/identity-provider/import-config",
        &json!({"providerId": "oidc", "fromUrl": format!("{}/.well-known/openid-configuration", upstream.base)}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut config = r.body.clone();
    config["clientId"] = json!("portcullis");
    config["clientSecret"] = json!("upstream-secret-1");
    config["clientAuthMethod"] = json!("client_secret_basic");
    config["defaultScope"] = json!("openid email profile groups");
    config["syncMode"] = json!("FORCE");
    assert_eq!(config["pkceEnabled"], "true");
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &json!({"alias": "corp", "providerId": "oidc", "displayName": "Corp SSO", "trustEmail": true, "config": config}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post(
        "/admin/realms/app/identity-provider/instances/corp/mappers",
        &json!({"name": "admins", "identityProviderMapper": "oidc-role-idp-mapper",
                "config": {"claim": "groups", "claim.value": "admins", "role": "sso-admin"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    assert!(url.starts_with(&upstream.base), "{url}");
    let back = through_oidc_provider(&browser, &url, "gina", &callback);
    let (status, location, body) = browser.get(&back);
    assert_eq!(status, 302, "{body}");
    let c = code_claims(&api, &location.unwrap());
    assert_eq!(c["preferred_username"], "gina");
    assert_eq!(c["email"], "gina@corp.example");
    let roles: Vec<&str> = c["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        roles.contains(&"sso-admin"),
        "the groups claim mapped to a role: {roles:?}"
    );
    let gina = user_id(&api, "app", "gina").unwrap();
    let links = api
        .get(&format!(
            "/admin/realms/app/users/{gina}/federated-identity"
        ))
        .body;
    assert_eq!(links[0]["userId"], "gina", "the provider's sub");

    // Another account of the same provider gets its own user, without the role.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let back = through_oidc_provider(&browser, &url, "gus", &callback);
    let (status, location, _) = browser.get(&back);
    assert_eq!(status, 302);
    let c = code_claims(&api, &location.unwrap());
    assert_eq!(c["preferred_username"], "gus");
    let roles: Vec<&str> = c["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!roles.contains(&"sso-admin"), "{roles:?}");
}

#[test]
fn a_pending_link_never_travels_in_a_reset_mail() {
    // The attack: an upstream account with the victim's address reaches "account exists",
    // then asks for the victim's password reset from that page. The victim's genuine reset
    // must not link the attacker's identity to the victim's account.
    let server = TestServer::start();
    let sink = crate::mail::SmtpSink::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    upstream(&api, &base);
    let r = api.post(
        "/admin/realms",
        &json!({"realm": "app", "enabled": true, "resetPasswordAllowed": true, "smtpServer": sink.settings()}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    webapp(&api);
    assert_eq!(
        api.post(
            "/admin/realms/app/identity-provider/instances",
            &oidc_provider(&base, "corp", "up")
        )
        .status,
        201
    );
    let bob = local_user(&api, "bob", "bob@example.com", "Bob-local-pass-1");

    let attacker = Browser::new(&server);
    let url = to_provider(&attacker, "corp");
    let (status, _, html) = through_upstream(&attacker, &url, "bobby");
    assert_eq!(status, 200, "account exists: {html}");
    let reset = crate::mail::forgot_password_link(&html);
    let (_, _, page) = attacker.get(&reset);
    let mut form = find_form(&page, "kc-reset-password-form").expect("reset form");
    form.set("username", "bob");
    let (status, _, _) = attacker.submit(&form);
    assert_eq!(status, 200);

    // The victim follows the genuine mail and sets a new password.
    let victim = Browser::new(&server);
    let link = crate::mail::link_in(&sink.mail(0));
    let (status, _, page) = victim.get(&link);
    assert_eq!(status, 200, "{page}");
    let mut form = find_form(&page, "kc-passwd-update-form").expect("update password form");
    form.set("password-new", "Bob-new-pass-42");
    form.set("password-confirm", "Bob-new-pass-42");
    let (status, _, body) = victim.submit(&form);
    assert_eq!(status, 302, "{body}");
    assert_eq!(
        api.get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
            .body,
        json!([]),
        "nothing linked"
    );
}

#[test]
fn chromium_signs_in_with_a_provider_button_and_lands_on_the_account_page() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://127.0.0.1:{}", server.http.port());
    upstream(&api, &base);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "app", "enabled": true}))
            .status,
        201
    );
    let r = api.post(
        "/admin/realms/app/identity-provider/instances",
        &oidc_provider(&base, "corp", "up"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let result = crate::clients::run(
        std::path::Path::new("node"),
        "broker_chromium.mjs",
        &[
            ("SERVER_URL", base.clone()),
            ("APP", "app".into()),
            ("ALIAS", "corp".into()),
            ("UP_USERNAME", "ursula".into()),
            ("UP_PASSWORD", "Upstream-pass-1".into()),
            (
                "SCREENSHOT_DIR",
                crate::clients::screenshot_dir().display().to_string(),
            ),
        ],
    );
    assert_eq!(
        result["steps"]["login page offers the provider"]["label"]
            .as_str()
            .map(str::trim),
        Some("Corporate SSO"),
        "{result}"
    );
    assert_eq!(
        result["screenshots"].as_array().unwrap().len(),
        6,
        "{result}"
    );
    let ursula = user_id(&api, "app", "ursula").expect("created by the brokered login");
    let links = api
        .get(&format!(
            "/admin/realms/app/users/{ursula}/federated-identity"
        ))
        .body;
    assert_eq!(links[0]["identityProvider"], "corp");
}

/// The code exchange authenticated by a signed client assertion (RFC 7523), as npm's
/// oidc-provider checks it: `client_secret_jwt` (HS256 with the client secret) and
/// `private_key_jwt` (the realm's RS256 key, read by the provider from our JWKS). The
/// client's `ui_locales` goes along by `forwardParameters`.
#[test]
fn npm_oidc_provider_takes_signed_client_assertions_and_forwarded_parameters() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    let callback = |alias: &str| format!("{base}/realms/app/broker/{alias}/endpoint");
    let upstream = start_oidc_provider_with(
        &callback("corp"),
        &[
            ("JWT_REDIRECT_URI", callback("corp-jwt")),
            ("PK_REDIRECT_URI", callback("corp-pk")),
            (
                "JWKS_URI",
                format!("{base}/realms/app/protocol/openid-connect/certs"),
            ),
        ],
    );
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "app", "enabled": true}))
            .status,
        201
    );
    webapp(&api);
    let discovered = api.post(
        "/admin/realms/app/identity-provider/import-config",
        &json!({"providerId": "oidc", "fromUrl": format!("{}/.well-known/openid-configuration", upstream.base)}),
    );
    assert_eq!(discovered.status, 200, "{}", discovered.text);
    for (alias, client, secret, method) in [
        (
            "corp-jwt",
            "portcullis-jwt",
            "upstream-jwt-secret-0123456789abcdef0123456789",
            "client_secret_jwt",
        ),
        ("corp-pk", "portcullis-pk", "", "private_key_jwt"),
    ] {
        let mut config = discovered.body.clone();
        config["clientId"] = json!(client);
        config["clientSecret"] = json!(secret);
        config["clientAuthMethod"] = json!(method);
        config["defaultScope"] = json!("openid email profile");
        config["forwardParameters"] = json!("ui_locales");
        let r = api.post(
            "/admin/realms/app/identity-provider/instances",
            &json!({"alias": alias, "providerId": "oidc", "trustEmail": true, "config": config}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for (alias, login) in [("corp-jwt", "jill"), ("corp-pk", "pat")] {
        let browser = Browser::new(&server);
        let (status, _, html) =
            browser.get(&browser.auth_url("app", "webapp", &[("ui_locales", "de")]));
        assert_eq!(status, 200);
        let marker = format!("id=\"social-{alias}\" href=\"");
        let start = html.find(&marker).expect("the provider's button") + marker.len();
        let href = unescape(&html[start..start + html[start..].find('"').unwrap()]);
        let (status, location, _) = browser.get(&href);
        assert_eq!(status, 302);
        let url = location.unwrap();
        assert!(url.contains("ui_locales=de"), "forwarded: {url}");
        let back = through_oidc_provider(&browser, &url, login, &callback(alias));
        let (status, location, body) = browser.get(&back);
        assert_eq!(status, 302, "{alias}: the assertion was accepted: {body}");
        let c = code_claims(&api, &location.unwrap());
        assert_eq!(c["preferred_username"], login, "{alias}");
    }
}

/// Keycloak's client-initiated account linking: the app sends the signed-in browser to
/// `/broker/{alias}/link` with a hash only a holder of the session's token can compute; the
/// user signs in upstream and comes back linked, to the app's own redirect URI.
#[test]
fn a_client_links_the_signed_in_user_to_a_provider() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    app_with_provider(&api, &base, json!({}), &oidc_provider(&base, "corp", "up"));
    let carla = local_user(&api, "carla", "carla@example.org", "Carla-pass-1");
    // Carla signs in to the app; its token names her session.
    let browser = Browser::new(&server);
    let (_, _, html) = browser.get(&browser.auth_url("app", "webapp", &[]));
    let (status, location, _) = browser.login(&html, "carla", "Carla-pass-1");
    assert_eq!(status, 302);
    let c = code_claims(&api, &location.unwrap());
    let session = c["sid"]
        .as_str()
        .expect("the session in the token")
        .to_string();
    let link = |browser: &Browser, hash: &str, redirect: &str| {
        let url = format!(
            "/realms/app/broker/corp/link?client_id=webapp&nonce=n-1&hash={hash}&redirect_uri={}",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        );
        browser.get(&url)
    };
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
            format!("n-1{session}webappcorp").as_bytes(),
        ))
    };
    // A URI the client did not register is never redirected to.
    let (status, location, _) = link(&browser, &hash, "https://evil.example/cb");
    assert_eq!(status, 400);
    assert!(location.is_none());
    // Another client of the realm, one this session never signed in to, cannot ask in
    // its name, even with a hash that names it.
    let r = api.post(
        "/admin/realms/app/clients",
        &json!({"clientId": "other", "publicClient": true, "redirectUris": [REDIRECT]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let other_hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
            format!("n-1{session}othercorp").as_bytes(),
        ))
    };
    let url = format!(
        "/realms/app/broker/corp/link?client_id=other&nonce=n-1&hash={other_hash}&redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let (_, location, _) = browser.get(&url);
    assert!(location.unwrap().contains("error=invalid_token"));
    // A hash computed without the session is refused, back at the app.
    let (status, location, _) = link(&browser, "bm90LXRoZS1oYXNo", REDIRECT);
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(
        location.starts_with(REDIRECT) && location.contains("error=invalid_token"),
        "{location}"
    );
    assert!(location.contains("nonce=n-1"));
    // Another browser, without her session, is not signed in.
    let (_, location, _) = link(&Browser::new(&server), &hash, REDIRECT);
    assert!(location.unwrap().contains("error=not_logged_in"));
    // With it: to the provider, back linked, and on to the app.
    let (status, location, _) = link(&browser, &hash, REDIRECT);
    assert_eq!(status, 302);
    let (status, location, body) = through_upstream(&browser, &location.unwrap(), "bobby");
    assert_eq!(status, 302, "{body}");
    assert_eq!(location.as_deref(), Some(REDIRECT));
    let links = api
        .get(&format!(
            "/admin/realms/app/users/{carla}/federated-identity"
        ))
        .body;
    assert_eq!(links[0]["identityProvider"], "corp");
    assert_eq!(links[0]["userName"], "bobby");
}

/// A session opened through a provider with a `logoutUrl` ends there too: by a call from the
/// server (`backchannelSupported`), or by sending the browser through the provider's logout
/// and back (`/broker/{alias}/endpoint/logout_response`) on to the client.
#[test]
fn logging_out_ends_the_providers_session_by_back_and_front_channel() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    let mut idp = oidc_provider(&base, "corp", "up");
    idp["config"]["logoutUrl"] = json!(format!("{base}/realms/up/protocol/openid-connect/logout"));
    idp["config"]["backchannelSupported"] = json!("true");
    app_with_provider(&api, &base, json!({}), &idp);
    let ursula = user_id(&api, "up", "ursula").unwrap();
    let upstream_sessions = || {
        api.get(&format!("/admin/realms/up/users/{ursula}/sessions"))
            .body
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    let sign_in = || {
        let browser = Browser::new(&server);
        let url = to_provider(&browser, "corp");
        let (status, location, body) = through_upstream(&browser, &url, "ursula");
        assert_eq!(status, 302, "{body}");
        let code = param(&location.unwrap(), "code").unwrap();
        let r = api.token(
            "app",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "webapp"),
                ("client_secret", "webapp-secret-1"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text);
        (browser, r.body["id_token"].as_str().unwrap().to_string())
    };
    let logout_url = |id_token: &str| {
        format!(
            "/realms/app/protocol/openid-connect/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        )
    };
    let wait_for_no_upstream_session = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while upstream_sessions() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the provider's session stayed"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };

    // Back channel: the app's logout ends the provider's session from the server.
    let (browser, id_token) = sign_in();
    assert_eq!(upstream_sessions(), 1);
    let (status, location, _) = browser.get(&logout_url(&id_token));
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some(REDIRECT));
    wait_for_no_upstream_session();

    // Front channel: the browser goes through the provider's logout and comes back.
    idp["config"]["backchannelSupported"] = json!("false");
    let r = api.put("/admin/realms/app/identity-provider/instances/corp", &idp);
    assert_eq!(r.status, 204, "{}", r.text);
    let (browser, id_token) = sign_in();
    assert_eq!(upstream_sessions(), 1);
    let (status, location, _) = browser.get(&logout_url(&id_token));
    assert_eq!(status, 302);
    let at_provider = location.unwrap();
    assert!(
        at_provider.starts_with(&format!("{base}/realms/up/protocol/openid-connect/logout?")),
        "{at_provider}"
    );
    assert!(at_provider.contains("id_token_hint="), "{at_provider}");
    let (status, location, body) = browser.get(&at_provider);
    assert_eq!(status, 302, "{body}");
    let back = location.unwrap();
    assert!(
        back.contains("/realms/app/broker/corp/endpoint/logout_response?"),
        "{back}"
    );
    let (status, location, _) = browser.get(&back);
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some(REDIRECT));
    assert_eq!(upstream_sessions(), 0);
    // The way back works once.
    let (status, _, _) = browser.get(&back);
    assert_eq!(status, 400);
}

/// "Account exists": instead of its password, the account's owner may prove it by a mailed
/// link — which links only in the browser of that login (opened elsewhere it links nothing
/// and stays usable), then signs in there.
#[test]
fn an_existing_account_is_linked_by_a_mailed_link_in_the_same_browser() {
    let server = TestServer::start();
    let sink = crate::mail::SmtpSink::start();
    let api = Api::admin(&server);
    let base = format!("http://{}", server.http);
    app_with_provider(
        &api,
        &base,
        json!({"smtpServer": sink.settings()}),
        &oidc_provider(&base, "corp", "up"),
    );
    let r = api.post(
        "/admin/realms/app/users",
        &json!({"username": "bob", "email": "bob@example.com", "enabled": true, "emailVerified": false,
                "credentials": [{"type": "password", "value": "Bob-local-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201);
    let bob = user_id(&api, "app", "bob").unwrap();
    // An account whose address is not verified is never offered the mail (someone may have
    // made it with the victim's address, a pre-hijack): only its password links it.
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, _, html) = through_upstream(&browser, &url, "bobby");
    assert_eq!(status, 200, "account exists: {html}");
    assert!(find_form(&html, "kc-link-by-email").is_none(), "{html}");
    let r = api.put(
        &format!("/admin/realms/app/users/{bob}"),
        &json!({"emailVerified": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let links = || {
        api.get(&format!("/admin/realms/app/users/{bob}/federated-identity"))
            .body
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    let browser = Browser::new(&server);
    let url = to_provider(&browser, "corp");
    let (status, _, html) = through_upstream(&browser, &url, "bobby");
    assert_eq!(status, 200, "account exists: {html}");
    let form = find_form(&html, "kc-link-by-email").expect("the mail option");
    let (status, _, page) = browser.submit(&form);
    assert_eq!(status, 200, "{page}");
    let mail = sink.mail(0);
    let link = crate::mail::link_in(&mail);
    // One mail per login: the same page cannot mail the owner again.
    let (status, _, _) = browser.submit(&form);
    assert_eq!(status, 429);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sink.count(), 1);
    // Opened in another browser: nothing linked, nobody signed in.
    let (status, location, page) = Browser::new(&server).get(&link);
    assert_eq!(status, 200, "{page}");
    assert!(location.is_none());
    assert!(page.contains("browser where you signed in"), "{page}");
    assert_eq!(links(), 0);
    // In the browser of the login: linked, and on to the app.
    let (status, location, body) = browser.get(&link);
    assert_eq!(status, 302, "{body}");
    assert!(location.unwrap().starts_with(REDIRECT));
    assert_eq!(links(), 1);
    // Once.
    let (status, _, _) = browser.get(&link);
    assert_eq!(status, 400);
}
