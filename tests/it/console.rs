//! The admin console end to end: headless Chromium follows the seed's console steps by
//! their labels against the real binary, a real `slapd` and the brokering tests' fake
//! GitHub, and every effect is checked through the REST API, a token or a real login; then
//! the attacks over HTTP (CSRF, another realm's administrator, a forged sign-in).

use serde_json::{json, Value};

use crate::api::Api;
use crate::clients::{node, run, screenshot_dir};
use crate::harness::{TestServer, ADMIN};
use crate::ldap::{Slapd, ADMIN_DN, ADMIN_PW, SUFFIX};

#[test]
fn chromium_walks_the_seed_console_steps() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let slapd = Slapd::start();
    slapd.person("lena", "Lena", "Lind", "lena-ldap-pw");
    let (github, _github) = crate::broker::fake_github();
    let result = run(
        &node(),
        "console_chromium.mjs",
        &[
            (
                "SERVER_URL",
                format!("http://127.0.0.1:{}", server.http.port()),
            ),
            ("ADMIN", ADMIN.0.into()),
            ("ADMIN_PASSWORD", ADMIN.1.into()),
            ("GITHUB_URL", github),
            ("LDAP_URL", slapd.url.clone()),
            ("LDAP_BIND_DN", ADMIN_DN.into()),
            ("LDAP_BIND_PASSWORD", ADMIN_PW.into()),
            ("LDAP_USERS_DN", format!("ou=people,{SUFFIX}")),
            ("LDAP_USER", "lena".into()),
            ("SCREENSHOT_DIR", screenshot_dir().display().to_string()),
        ],
    );
    // What the console did, read back through the REST API.
    let realm = api.get("/admin/realms/shop").body;
    assert_eq!(
        realm["displayName"],
        "<img src=x onerror=\"window.__xss=1\">Shop & Co"
    );
    assert_eq!(realm["resetPasswordAllowed"], true);
    assert_eq!(realm["otpPolicyDigits"], 8);
    let users = api
        .get("/admin/realms/shop/users?username=alice&exact=true")
        .body;
    let alice = &users[0];
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["attributes"]["department"], json!(["<b>sales</b>"]));
    assert_eq!(alice["requiredActions"], json!(["CONFIGURE_TOTP"]));
    let id = alice["id"].as_str().unwrap();
    let roles = api
        .get(&format!(
            "/admin/realms/shop/users/{id}/role-mappings/realm"
        ))
        .body;
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "editor"),
        "{roles}"
    );
    let clients = api.get("/admin/realms/shop/clients?clientId=backend").body;
    assert_eq!(clients[0]["publicClient"], false);
    let cid = clients[0]["id"].as_str().unwrap();
    let secret = api
        .get(&format!("/admin/realms/shop/clients/{cid}/client-secret"))
        .body;
    assert_eq!(secret["value"], result["secret"]);
    let github = api
        .get("/admin/realms/shop/identity-provider/instances/github")
        .body;
    assert_eq!(github["config"]["clientId"], "gh-client");
    let idp_mappers = api
        .get("/admin/realms/shop/identity-provider/instances/github/mappers")
        .body;
    assert_eq!(
        idp_mappers[0]["identityProviderMapper"],
        "hardcoded-role-idp-mapper"
    );
    assert_eq!(idp_mappers[0]["config"]["role"], "editor");
    assert_eq!(realm["browserFlow"], "my browser");
    let executions = api
        .get("/admin/realms/shop/authentication/flows/my%20browser/executions")
        .body;
    assert!(
        executions
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["displayName"] == "OTP Form" && e["requirement"] == "REQUIRED"),
        "{executions}"
    );
    let mappers = api
        .get(&format!(
            "/admin/realms/shop/clients/{cid}/protocol-mappers/models"
        ))
        .body;
    assert!(
        mappers
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "department" && m["config"]["user.attribute"] == "department"),
        "{mappers}"
    );
    let texts = api.get("/admin/realms/shop/localization/en").body;
    assert_eq!(texts["loginTitle"], "Sign in to the shop");
    let groups = api.get("/admin/realms/shop/groups?search=interns").body;
    assert_eq!(
        groups[0]["subGroups"][0]["path"], "/staff/interns",
        "{groups}"
    );
    let lena = api
        .get("/admin/realms/shop/users?username=lena&exact=true")
        .body;
    assert!(lena[0]["federationLink"].is_string(), "{lena}");
    // Every change is an admin event of the console's administrator.
    let events = api.get("/admin/realms/shop/admin-events?max=500").body;
    assert!(events.as_array().unwrap().len() >= 8, "{events}");
    let shots = result["screenshots"].as_array().unwrap().len();
    assert!(shots >= 70, "{shots} screenshots");
    assert_eq!(result["violations"], json!([]), "{result}");
}

/// A signed-in console session driven over plain HTTP (no JavaScript, as a script or a
/// text browser would): cookies kept, redirects followed.
struct ConsoleBrowser {
    client: reqwest::blocking::Client,
    base: String,
}

impl ConsoleBrowser {
    fn sign_in(server: &TestServer, realm: &str, username: &str, password: &str) -> ConsoleBrowser {
        let client = reqwest::blocking::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{}", server.http.port());
        let page = client
            .get(format!("{base}/admin/{realm}/console/"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let action = html_attr(&page, "action=\"").unwrap();
        let mut form: Vec<(String, String)> = hidden_fields(&page);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        let url = if action.starts_with("http") {
            action
        } else {
            format!("{base}{action}")
        };
        let r = client.post(url).form(&form).send().unwrap();
        assert!(
            r.url()
                .path()
                .starts_with(&format!("/admin/{realm}/console/")),
            "signed in: {}",
            r.url()
        );
        ConsoleBrowser { client, base }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn html_attr(page: &str, prefix: &str) -> Option<String> {
    let start = page.find(prefix)? + prefix.len();
    let end = page[start..].find('"')? + start;
    Some(html_unescape(&page[start..end]))
}

fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\"")
        .skip(1)
        .filter_map(|chunk| {
            let name = html_attr(chunk, "name=\"")?;
            let value = html_attr(chunk, "value=\"")?;
            Some((name, value))
        })
        .collect()
}

/// The CSRF token of a console page.
fn csrf(page: &str) -> String {
    hidden_fields(page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("a csrf field")
}

#[test]
fn console_forms_need_the_sessions_csrf_token_and_the_callers_roles() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "shop", "enabled": true}))
            .status,
        201
    );
    let admin = ConsoleBrowser::sign_in(&server, "master", ADMIN.0, ADMIN.1);
    let (status, page) = admin.get("/admin/master/console/shop/roles/add-role");
    assert_eq!(status, 200, "{page}");
    let token = csrf(&page);

    // Without the token, with another one, or sent from another site: refused, nothing made.
    for form in [
        vec![("name", "forged")],
        vec![("name", "forged"), ("csrf", "0000")],
    ] {
        let (status, body) = admin.post("/admin/master/console/shop/roles/add-role", &form);
        assert_eq!(status, 403, "{body}");
    }
    let r = admin
        .client
        .post(format!(
            "{}/admin/master/console/shop/roles/add-role",
            admin.base
        ))
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "forged"), ("csrf", token.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(api.get("/admin/realms/shop/roles/forged").status, 404);
    // Another session's token does not work in this one.
    let other = ConsoleBrowser::sign_in(&server, "master", ADMIN.0, ADMIN.1);
    let (status, _) = other.post(
        "/admin/master/console/shop/roles/add-role",
        &[("name", "forged"), ("csrf", &token)],
    );
    assert_eq!(status, 403);
    // With it: made, and a bad value is shown beside its field.
    let (status, page) = admin.post(
        "/admin/master/console/shop/roles/add-role",
        &[("name", "real"), ("csrf", &token)],
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(api.get("/admin/realms/shop/roles/real").status, 200);
    let (status, page) = admin.post(
        "/admin/master/console/shop/roles/add-role",
        &[("name", "real"), ("csrf", &token)],
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("class=\"error\" id=\"f-name-error\""),
        "{page}"
    );
    let (status, page) = admin.post(
        "/admin/master/console/shop/realm-settings/tokens",
        &[("accessTokenLifespan", "soon"), ("csrf", &token)],
    );
    assert_eq!(status, 400);
    assert!(page.contains("Must be a number"), "{page}");

    // An administrator of shop only (realm-management roles in shop) signs in to shop's
    // console, manages shop's users, and reaches neither master nor its settings.
    let shop_admin = api
        .post(
            "/admin/realms/shop/users",
            &json!({"username": "ops", "enabled": true,
                     "credentials": [{"type": "password", "value": "Ops-pass-1", "temporary": false}]}),
        )
        .location_id();
    let management = api
        .get("/admin/realms/shop/clients?clientId=realm-management")
        .body;
    let mid = management[0]["id"].as_str().unwrap();
    let manage_users = api
        .get(&format!(
            "/admin/realms/shop/clients/{mid}/roles/manage-users"
        ))
        .body;
    assert_eq!(
        api.post(
            &format!("/admin/realms/shop/users/{shop_admin}/role-mappings/clients/{mid}"),
            &json!([manage_users]),
        )
        .status,
        204
    );
    let ops = ConsoleBrowser::sign_in(&server, "shop", "ops", "Ops-pass-1");
    assert_eq!(ops.get("/admin/shop/console/shop/users").0, 200);
    let (status, page) = ops.get("/admin/shop/console/master/users");
    assert_eq!(status, 403, "{page}");
    let token = csrf(&ops.get("/admin/shop/console/shop/users/add-user").1);
    // Saving a user's details keeps required actions the form could not offer (ops may
    // not read the realm's required actions).
    let carol = api
        .post(
            "/admin/realms/shop/users",
            &json!({"username": "carol", "enabled": true, "requiredActions": ["UPDATE_PASSWORD"]}),
        )
        .location_id();
    let (status, page) = ops.post(
        &format!("/admin/shop/console/shop/users/{carol}/settings"),
        &[
            ("username", "carol"),
            ("email", "carol@example.com"),
            ("enabled", "on"),
            ("csrf", &token),
        ],
    );
    assert_eq!(status, 200, "{page}");
    let saved = api.get(&format!("/admin/realms/shop/users/{carol}")).body;
    assert_eq!(saved["email"], "carol@example.com");
    assert_eq!(saved["requiredActions"], json!(["UPDATE_PASSWORD"]));
    // It may read the realm's settings (as the REST API lets it), not change them.
    let (status, _) = ops.post(
        "/admin/shop/console/shop/realm-settings/login",
        &[("registrationAllowed", "on"), ("csrf", &token)],
    );
    assert_eq!(status, 403);
    assert_eq!(
        api.get("/admin/realms/shop").body["registrationAllowed"],
        false
    );
    let (status, _) = ops.post(
        "/admin/shop/console/master/roles/add-role",
        &[("name", "x"), ("csrf", &token)],
    );
    assert_eq!(status, 403);
    assert_eq!(api.get("/admin/realms/master/roles/x").status, 404);
    // The master console's session cookie is not shop's.
    assert_ne!(admin.get("/admin/shop/console/shop/users").0, 403);
}

#[test]
fn the_console_sign_in_cannot_be_forged_or_redirected() {
    let server = TestServer::start();
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{}", server.http.port());
    // A callback the browser did not start (login CSRF, another tab's): its code is not
    // used; a sign-in of this browser's own starts instead.
    let r = client
        .get(format!("{base}/admin/master/console/?code=abc&state=xyz"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/protocol/openid-connect/auth?"));
    // Started, then answered with another state: refused.
    let r = client
        .get(format!("{base}/admin/master/console/master/users?x=1"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
    assert!(location.contains(&format!(
        "redirect_uri={}",
        url_encode(&format!("{base}/admin/master/console/"))
    )));
    let r = client
        .get(format!("{base}/admin/master/console/?code=abc&state=wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let again = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        again.contains("/protocol/openid-connect/auth?") && again != location,
        "{again}"
    );
    // The login page's error is not echoed (no text of a link's choosing on our origin).
    let r = client
        .get(format!(
            "{base}/admin/master/console/?error=x&error_description=Call+555-0100"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(!r.text().unwrap().contains("555-0100"));
    // Sign-out without a console session hands over to the realm's logout.
    let r = client
        .post(format!("{base}/admin/master/console/logout"))
        .form(&[("csrf", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let logout = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        logout.contains(
            "/realms/master/protocol/openid-connect/logout?client_id=security-admin-console"
        ),
        "{logout}"
    );
    // The realm's logout accepts the console's return URI (no SSO session here: it returns
    // at once; with one it asks to confirm).
    let r = client.get(&logout).send().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{base}/admin/master/console/")
    );
    // The console client returns only to the console.
    let r = client
        .get(format!(
            "{base}/realms/master/protocol/openid-connect/auth?client_id=security-admin-console&response_type=code&redirect_uri={}",
            url_encode("https://evil.example/admin/master/console/")
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(text.contains("redirect_uri"), "{text}");
    // `/admin/` leads to master's console; a realm that does not exist has none.
    let r = client.get(format!("{base}/admin/")).send().unwrap();
    assert_eq!(r.headers()["location"], "/admin/master/console/");
    let r = client
        .get(format!("{base}/admin/nope/console/"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let _ = Value::Null;
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
