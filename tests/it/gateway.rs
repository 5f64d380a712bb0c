//! Routes that require a login: the gateway's own code flow (redirect, login page, callback,
//! app-host cookie), identity headers and the signed assertion, bearer tokens, policies,
//! sign-out and revocation, and the attacks on each.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::{claims, Api};
use crate::browser::{param, Browser};
use crate::harness::{Options, TestServer};
use crate::proxy::echo_upstream;

/// A server with `routes` (`{UP}` is replaced by the echo upstream's address), realm `demo`
/// (alice, client `app`) and a confidential client `gateway` allowed to come back to
/// `app.test` and `other.test`.
pub fn gateway_server(routes: &str) -> (TestServer, Api, String, String) {
    gateway_server_with("", routes, &[])
}

/// Like [`gateway_server`], with more `[proxy]` settings and more redirect URIs for the
/// `gateway` client (hosts served by another proxy in front).
pub fn gateway_server_with(
    proxy_settings: &str,
    routes: &str,
    more_redirects: &[String],
) -> (TestServer, Api, String, String) {
    let up = echo_upstream("app");
    let server = TestServer::start_with(Options {
        extra_config: format!(
            "[proxy]\nsession_check_interval = \"300ms\"\n{proxy_settings}\n{}",
            routes.replace("{UP}", &up.to_string())
        ),
        ..Default::default()
    });
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("demo");
    let port = server.http.port();
    let mut redirects = vec![
        format!("http://app.test:{port}/_portcullis/callback"),
        format!("http://other.test:{port}/_portcullis/callback"),
    ];
    redirects.extend_from_slice(more_redirects);
    let r = api.post(
        "/admin/realms/demo/clients",
        &json!({"clientId": "gateway", "publicClient": false, "standardFlowEnabled": true,
                "redirectUris": redirects}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    (server, api, secret, alice)
}

pub const SESSION_ROUTE: &str = r#"
[[route]]
host = "app.test"
upstream = "http://{UP}"
auth = "session"
realm = "demo"
client = "gateway"
public_paths = ["/public"]
"#;

/// Follow the gateway's login for `path` as alice; returns the final response's location.
pub fn login_through_gateway(b: &Browser, path: &str) -> String {
    let (status, location, _) = b.get(path);
    assert_eq!(status, 302, "{path} should redirect to the login");
    let mut location = location.unwrap();
    if location.contains("/_portcullis/start?") {
        // nginx's error_page sends the browser here first.
        let (status, next, _) = b.get(&location);
        assert_eq!(status, 302, "{location}");
        location = next.unwrap();
    }
    assert!(
        location.starts_with(&format!(
            "{}/realms/demo/protocol/openid-connect/auth?",
            b.base
        )),
        "{location}"
    );
    assert_eq!(
        param(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&location, "client_id").as_deref(), Some("gateway"));
    let (status, _, html) = b.get(&location);
    assert_eq!(status, 200, "{html}");
    let (status, callback, body) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 302, "{body}");
    let callback = callback.unwrap();
    assert!(
        callback.starts_with(&format!("{}/_portcullis/callback?", b.base)),
        "{callback}"
    );
    let (status, back, body) = b.get(&callback);
    assert_eq!(status, 302, "{body}");
    back.unwrap()
}

pub fn echo_json(b: &Browser, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = b.client.get(b.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn session_cookie(b: &Browser) -> String {
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = b.base.parse().unwrap();
    let cookies = b.jar.cookies(&url).unwrap();
    cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with("portcullis="))
        .expect("gateway cookie")
        .to_string()
}

#[test]
fn a_browser_logs_in_through_the_gateway_and_the_app_sees_who_it_is() {
    let (server, _api, _, alice) = gateway_server(SESSION_ROUTE);
    let b = Browser::for_host(&server, "app.test");

    let back = login_through_gateway(&b, "/private/page?x=1&y=2");
    assert_eq!(
        back, "/private/page?x=1&y=2",
        "back to the exact URL asked for"
    );

    let spoofed = [
        ("X-Forwarded-User", "mallory"),
        ("X_Forwarded_User", "mallory"),
        ("X.Forwarded.User", "mallory"),
        ("X-Forwarded-Groups", "/admins"),
        ("x-portcullis-jwt-assertion", "forged"),
    ];
    let (status, echo) = echo_json(&b, &back, &spoofed);
    assert_eq!(status, 200, "{echo}");
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-user"], alice.as_str());
    assert_eq!(h["x-forwarded-preferred-username"], "alice");
    assert_eq!(h["x-forwarded-email"], "alice@example.com");
    assert!(h["x-forwarded-roles"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|r| r == "user"));
    assert_eq!(h["x-forwarded-groups"], "");
    for name in ["x_forwarded_user", "x.forwarded.user"] {
        assert!(h.get(name).is_none(), "{name} reached the upstream: {h}");
    }
    let cookie = h["cookie"].as_str().unwrap_or("");
    assert!(
        !cookie.contains("portcullis"),
        "gateway cookie leaked upstream: {cookie}"
    );
    assert!(h.get("x-forwarded-access-token").is_none(), "not asked for");

    // The assertion verifies with the realm's JWKS and names the route host as audience.
    let assertion = h["x-portcullis-jwt-assertion"].as_str().unwrap();
    assert_eq!(crate::api::header(assertion)["alg"], "ES256");
    let jwks: Value = b
        .client
        .get(b.url("/realms/demo/protocol/openid-connect/certs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let kid = crate::api::header(assertion)["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("assertion key in the realm JWKS");
    let key = portcullis::crypto::jwt::VerifyingKey::from_jwk(jwk).unwrap();
    let verified: Value = key.verify(assertion).expect("assertion signature");
    assert_eq!(verified["aud"], "app.test");
    assert_eq!(verified["sub"], alice.as_str());
    assert_eq!(verified["preferred_username"], "alice");
    assert!(verified["sid"].is_string());
    let lifetime = verified["exp"].as_i64().unwrap() - verified["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 300);
    assert!(verified["iss"].as_str().unwrap().ends_with("/realms/demo"));

    // Public paths pass without a session, still without spoofed identity.
    let anonymous = Browser::for_host(&server, "app.test");
    let (status, echo) = echo_json(&anonymous, "/public/logo.png", &spoofed);
    assert_eq!(status, 200);
    assert!(echo["headers"].get("x-forwarded-user").is_none(), "{echo}");
    // `/public/../private` is `/private` after normalisation: login required.
    let (status, location, _) = anonymous.get("/public/../private");
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("/realms/demo/"));
    let (status, location, _) = anonymous.get("/public/%2e%2e/private");
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("/realms/demo/"));
    // API clients get 401 with a challenge instead of a redirect.
    let r = anonymous
        .client
        .get(anonymous.url("/private"))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"demo\""
    );
    let r = anonymous
        .client
        .post(anonymous.url("/private"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "no redirect for a POST");

    // The cookie is host-only, HttpOnly and SameSite=Lax; over plain HTTP without Secure.
    let b2 = Browser::for_host(&server, "app.test");
    let (_, location, _) = b2.get("/x");
    let (_, _, html) = b2.get(&location.unwrap());
    let (_, callback, _) = b2.login(&html, "alice", "Alice-pass-1");
    let r = b2
        .client
        .get(b2.url(&callback.clone().unwrap()))
        .send()
        .unwrap();
    let set_cookie: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("portcullis="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/")
    );
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "host-only: {session}"
    );
    // A callback cannot be replayed.
    let (status, _, _) = b2.get(&callback.unwrap());
    assert_eq!(status, 400);
}

#[test]
fn the_login_callback_refuses_forged_states_and_returns_only_to_the_same_host() {
    let (server, _api, _, _) = gateway_server(SESSION_ROUTE);
    // Login CSRF: a callback URL from someone else's login does not work in this browser.
    let victim = Browser::for_host(&server, "app.test");
    let attacker = Browser::for_host(&server, "app.test");
    let (_, location, _) = attacker.get("/x");
    let (_, _, html) = attacker.get(&location.unwrap());
    let (_, callback, _) = attacker.login(&html, "alice", "Alice-pass-1");
    let (status, _, body) = victim.get(&callback.unwrap());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid in this browser"), "{body}");
    let (status, _, _) = victim.get("/_portcullis/callback?code=x&state=y");
    assert_eq!(status, 400);

    // Open redirects through the return path all land on `/`.
    for rd in [
        "//evil.example/x",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "https://evil.example/",
        "/\\evil.example",
        "%20//evil.example",
    ] {
        let b = Browser::for_host(&server, "app.test");
        let target = format!(
            "/_portcullis/start?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        let back = login_through_gateway(&b, &target);
        assert_eq!(back, "/", "rd={rd}");
    }
    // nginx passes `$request_uri` unencoded; the query survives.
    let b = Browser::for_host(&server, "app.test");
    let back = login_through_gateway(&b, "/_portcullis/start?rd=/a/b?c=1&d=2");
    assert_eq!(back, "/a/b?c=1&d=2");
}

#[test]
fn ending_the_provider_session_ends_the_app_session_within_seconds() {
    let (server, api, _, alice) = gateway_server(SESSION_ROUTE);
    let b = Browser::for_host(&server, "app.test");
    let back = login_through_gateway(&b, "/private");
    assert_eq!(echo_json(&b, &back, &[]).0, 200);
    let stolen = session_cookie(&b);

    // The admin signs alice out everywhere.
    let r = api.post(
        &format!("/admin/realms/demo/users/{alice}/logout"),
        &json!({}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = b.get("/private");
        if status == 302 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session still accepted after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Sign-out ends the provider session too, and the old cookie is worthless afterwards.
    let b = Browser::for_host(&server, "app.test");
    login_through_gateway(&b, "/private");
    let stolen_again = session_cookie(&b);
    assert_ne!(stolen, stolen_again, "a new cookie at every login");
    let (status, _, body) = b.get_same_origin("/_portcullis/sign_out");
    assert_eq!(status, 200);
    assert!(body.contains("signed out"), "{body}");
    let replay = Browser::for_host(&server, "app.test");
    let r = replay
        .client
        .get(replay.url("/private"))
        .header("cookie", &stolen_again)
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        302,
        "cookie must be dead after sign-out"
    );
    let sessions = api.get(&format!("/admin/realms/demo/users/{alice}/sessions"));
    assert_eq!(
        sessions.body.as_array().unwrap().len(),
        0,
        "{}",
        sessions.text
    );
    // A made-up cookie is not a session.
    let r = replay
        .client
        .get(replay.url("/private"))
        .header("cookie", "portcullis=abc.def")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
}

#[test]
fn policies_methods_and_tokens_passed_to_the_upstream() {
    let routes = r#"
[[route]]
host = "app.test"
path = "/admin"
upstream = "http://{UP}"
auth = "session"
realm = "demo"
client = "gateway"
realm_roles = ["admin"]
groups = ["/staff"]

[[route]]
host = "app.test"
path = "/both"
upstream = "http://{UP}"
auth = "session"
realm = "demo"
client = "gateway"
realm_roles = ["user"]
groups = ["/staff"]
policy = "all"

[[route]]
host = "app.test"
upstream = "http://{UP}"
auth = "session"
realm = "demo"
client = "gateway"
methods = ["GET", "HEAD"]
pass_access_token = true
pass_authorization_header = true
signout_path = "/logout"
identity_headers = { user = "X-Remote-User" }
"#;
    let (server, api, _, alice) = gateway_server(routes);
    let b = Browser::for_host(&server, "app.test");
    login_through_gateway(&b, "/");

    // Renamed header, also stripped when spoofed in any spelling.
    let (status, echo) = echo_json(&b, "/", &[("X_Remote_User", "mallory")]);
    assert_eq!(status, 200);
    let h = &echo["headers"];
    assert_eq!(h["x-remote-user"], alice.as_str());
    assert!(h.get("x_remote_user").is_none());
    let token = h["x-forwarded-access-token"].as_str().unwrap();
    assert_eq!(h["authorization"], format!("Bearer {token}").as_str());
    let c = claims(token);
    assert_eq!(c["azp"], "gateway");
    assert_eq!(c["sub"], alice.as_str());

    // Methods.
    let r = b.client.delete(b.url("/thing")).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");

    // alice has `user`, is in no group: `any` of admin or /staff fails, `all` fails.
    let (status, _, body) = b.get("/admin/x");
    assert_eq!(status, 403);
    assert!(body.contains("Access denied"), "{body}");
    assert_eq!(b.get("/both").0, 403);
    // Put her in /staff/eng: a subgroup counts, both routes open within the interval.
    let r = api.post("/admin/realms/demo/groups", &json!({"name": "staff"}));
    let staff = r.location_id();
    let r = api.post(
        &format!("/admin/realms/demo/groups/{staff}/children"),
        &json!({"name": "eng"}),
    );
    let eng = r.location_id();
    let r = api.put(
        &format!("/admin/realms/demo/users/{alice}/groups/{eng}"),
        &json!({}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.get("/both").0 != 200 {
        assert!(Instant::now() < deadline, "group membership not seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, echo) = echo_json(&b, "/admin/x", &[]);
    assert_eq!(status, 200);
    assert_eq!(echo["headers"]["x-forwarded-groups"], "/staff/eng");

    // The route's own sign-out path.
    let (status, _, _) = b.get_same_origin("/logout");
    assert_eq!(status, 200);
    assert_eq!(b.get("/").0, 302);

    // Sign-out with a return path: the whole path and query, on this host only; the
    // cookie is cleared.
    login_through_gateway(&b, "/");
    let r = b
        .client
        .get(b.url("/_portcullis/sign_out?rd=/bye?a=1&b=2"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "/bye?a=1&b=2");
    let cleared = r.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str().unwrap().starts_with("portcullis=;") && c.to_str().unwrap().contains("Max-Age=0")
    });
    assert!(cleared, "{:?}", r.headers());
    login_through_gateway(&b, "/");
    let (status, location, _) = b.get_same_origin("/_portcullis/sign_out?rd=//evil.example/x");
    assert_eq!((status, location.as_deref()), (302, Some("/")));
}

#[test]
fn bearer_routes_accept_live_tokens_of_their_realm_only() {
    let routes = r#"
[[route]]
host = "api.test"
upstream = "http://{UP}"
auth = "bearer"
realm = "demo"
client = "gateway"
"#;
    let (server, api, secret, alice) = gateway_server(routes);
    let r = api.post("/admin/realms", &json!({"realm": "other", "enabled": true}));
    assert_eq!(r.status, 201);
    let addr: SocketAddr = server.http;
    let call = |auth: Option<&str>| {
        let mut headers = vec![("host", "api.test")];
        let value;
        if let Some(a) = auth {
            value = a.to_string();
            headers.push(("authorization", value.as_str()));
        }
        crate::proxy::raw(addr, "GET", "/v1/things", &headers)
    };
    let (status, _) = call(None);
    assert_eq!(status, 401, "no redirect on a bearer-only route");

    let tokens = api.alice_tokens("demo", &secret, "openid");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = call(Some(&format!("Bearer {access}")));
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-user"], alice.as_str());
    assert!(echo["headers"]["x-portcullis-jwt-assertion"].is_string());

    // Forgeries: garbage, alg none, a token of another realm, a refresh token.
    let (status, _) = call(Some("Bearer not-a-token"));
    assert_eq!(status, 401);
    let parts: Vec<&str> = access.split('.').collect();
    use base64::Engine;
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let (status, _) = call(Some(&format!("Bearer {none_header}.{}.", parts[1])));
    assert_eq!(status, 401);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(call(Some(&format!("Bearer {refresh}"))).0, 401);
    let master = api.token.clone().unwrap();
    assert_eq!(
        call(Some(&format!("Bearer {master}"))).0,
        401,
        "master realm token"
    );

    // Ending the session revokes the token at the gateway within the check interval.
    let r = api.post(
        &format!("/admin/realms/demo/users/{alice}/logout"),
        &json!({}),
    );
    assert_eq!(r.status, 204);
    let deadline = Instant::now() + Duration::from_secs(5);
    while call(Some(&format!("Bearer {access}"))).0 != 401 {
        assert!(Instant::now() < deadline, "revoked token still accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn over_tls_the_cookie_is_host_prefixed_and_secure() {
    let (server, api, _, alice) = gateway_server(SESSION_ROUTE);
    // Allow the https callback too.
    let clients = api.get("/admin/realms/demo/clients?clientId=gateway");
    let id = clients.body[0]["id"].as_str().unwrap().to_string();
    let mut client = clients.body[0].clone();
    client["redirectUris"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!(
            "https://app.test:{}/_portcullis/callback",
            server.https.port()
        )));
    let r = api.put(&format!("/admin/realms/demo/clients/{id}"), &client);
    assert_eq!(r.status, 204, "{}", r.text);

    let b = Browser::for_https_host_at("app.test", server.https);
    let (status, location, _) = b.get("/private");
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert_eq!(
        param(&location, "redirect_uri").unwrap(),
        format!(
            "https://app.test:{}/_portcullis/callback",
            server.https.port()
        )
    );
    let (_, _, html) = b.get(&location);
    let (_, callback, _) = b.login(&html, "alice", "Alice-pass-1");
    let r = b.client.get(b.url(&callback.unwrap())).send().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-portcullis="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(
        session.contains("; Secure") && session.contains("Path=/") && session.contains("HttpOnly")
    );
    let (status, echo) = echo_json(&b, "/private", &[]);
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["x-forwarded-user"], alice.as_str());
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    // The plain-HTTP cookie name is not accepted over TLS (and vice versa).
    let value = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-portcullis=");
    let plain = Browser::for_host(&server, "app.test");
    let r = plain
        .client
        .get(plain.url("/private"))
        .header("cookie", format!("portcullis={value}"))
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        302,
        "a TLS session cookie replayed over plain HTTP"
    );
}

#[test]
fn an_expired_provider_session_is_not_an_app_session() {
    let (server, api, _, _) = gateway_server(SESSION_ROUTE);
    let r = api.put("/admin/realms/demo", &json!({"ssoSessionMaxLifespan": 2}));
    assert_eq!(r.status, 204, "{}", r.text);
    let b = Browser::for_host(&server, "app.test");
    login_through_gateway(&b, "/private");
    assert_eq!(echo_json(&b, "/private", &[]).0, 200);
    // Past the realm's maximum session lifetime the cookie no longer passes.
    std::thread::sleep(Duration::from_millis(2600));
    let (status, location, _) = b.get("/private");
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("/protocol/openid-connect/auth"));
}
