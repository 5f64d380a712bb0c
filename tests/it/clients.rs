//! Real clients written by others, driving the real server: openid-client (npm) and
//! python-keycloak (PyPI). The scripts live in `tests/clients/`; `scripts/setup-clients.sh`
//! installs their libraries (once; it is a no-op when they are current).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::api::Api;
use crate::harness::{TestServer, ADMIN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Install the client libraries once per test run.
pub fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/setup-clients.sh"))
            .output()
            .expect("run setup-clients.sh");
        assert!(
            out.status.success(),
            "setup-clients.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Run a client script; it prints one JSON line and exits 0 when every step passed.
pub fn run(program: &Path, script: &str, env: &[(&str, String)]) -> Value {
    setup();
    let out = Command::new(program)
        .arg(root().join("tests/clients").join(script))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{script} printed no JSON\n{stdout}\n{stderr}"));
    assert_eq!(result["ok"], true, "{script}: {result}");
    result
}

fn python() -> PathBuf {
    root().join("tests/clients/.venv/bin/python")
}

pub(crate) fn node() -> PathBuf {
    PathBuf::from("node")
}

fn client_secret(api: &Api, realm: &str, client_id: &str) -> String {
    let c = api
        .get(&format!(
            "/admin/realms/{realm}/clients?clientId={client_id}"
        ))
        .body;
    let uuid = c[0]["id"].as_str().unwrap().to_string();
    api.get(&format!(
        "/admin/realms/{realm}/clients/{uuid}/client-secret"
    ))
    .body["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn openid_client_code_flow_refresh_introspection_logout() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("oc");
    let result = run(
        &node(),
        "openid_client_flow.mjs",
        &[
            ("ISSUER", format!("http://{}/realms/oc", server.http)),
            ("CLIENT_ID", "app".into()),
            ("CLIENT_SECRET", secret.clone()),
            ("REDIRECT_URI", "http://localhost:3000/callback".into()),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("SERVICE_CLIENT_ID", "app".into()),
            ("SERVICE_CLIENT_SECRET", secret),
        ],
    );
    assert!(result["steps"].as_object().unwrap().len() >= 7, "{result}");
}

#[test]
fn python_keycloak_openid_password_refresh_userinfo_decode() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("pk");
    // A user whose authenticator was imported in Keycloak's credential layout.
    let otp_secret = "py-otp-secret-0123456";
    let r = api.post(
        "/admin/realms/pk/users",
        &serde_json::json!({"username": "olga", "enabled": true, "credentials": [
            {"type": "password", "value": "Olga-pass-1"},
            {"type": "otp", "userLabel": "phone",
             "secretData": serde_json::json!({"value": otp_secret}).to_string(),
             "credentialData": serde_json::json!({"subType": "totp", "digits": 6, "counter": 0,
                 "period": 30, "algorithm": "HmacSHA1"}).to_string()}
        ]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let result = run(
        &python(),
        "python_keycloak_flow.py",
        &[
            ("SERVER_URL", format!("http://{}/", server.http)),
            ("REALM", "pk".into()),
            ("CLIENT_ID", "app".into()),
            ("CLIENT_SECRET", secret),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("OTP_USERNAME", "olga".into()),
            ("OTP_PASSWORD", "Olga-pass-1".into()),
            ("OTP_SECRET", otp_secret.into()),
        ],
    );
    assert_eq!(
        result["steps"]["password_grant_with_totp"]["replayed"], 401,
        "{result}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn keycloak_js_in_headless_chromium_logs_in_and_refreshes() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("js");
    let port = free_port();
    let r = api.post(
        "/admin/realms/js/clients",
        &serde_json::json!({"clientId": "spa", "publicClient": true, "redirectUris": [format!("http://localhost:{port}/*")], "webOrigins": ["+"]}),
    );
    assert_eq!(r.status, 201);
    // `localhost` on both sides: same site, so keycloak-js also runs its session iframe.
    let result = run(
        &node(),
        "keycloak_js_flow.mjs",
        &[
            (
                "SERVER_URL",
                format!("http://localhost:{}", server.http.port()),
            ),
            ("REALM", "js".into()),
            ("CLIENT_ID", "spa".into()),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("APP_PORT", port.to_string()),
        ],
    );
    assert!(
        result["steps"].to_string().contains("updateToken")
            || result["steps"].as_object().unwrap().len() >= 4,
        "{result}"
    );
}

/// A confidential client whose redirect URIs allow the sample app's port.
fn sample_client(api: &Api, realm: &str, client_id: &str, port: u16) -> String {
    let r = api.post(
        &format!("/admin/realms/{realm}/clients"),
        &serde_json::json!({"clientId": client_id, "publicClient": false, "redirectUris": [format!("http://localhost:{port}/*")], "webOrigins": ["+"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    client_secret(api, realm, client_id)
}

#[test]
fn seed_express_keycloak_connect_sample_reaches_its_protected_route() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("ex");
    let port = free_port();
    let secret = sample_client(&api, "ex", "express", port);
    run(
        &node(),
        "express_keycloak_connect.mjs",
        &[
            ("SERVER_URL", format!("http://{}", server.http)),
            ("REALM", "ex".into()),
            ("CLIENT_ID", "express".into()),
            ("CLIENT_SECRET", secret),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("APP_PORT", port.to_string()),
        ],
    );
}

#[test]
fn seed_flask_oidc_sample_reaches_its_protected_route() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("fl");
    let port = free_port();
    let secret = sample_client(&api, "fl", "flask", port);
    run(
        &python(),
        "flask_oidc_flow.py",
        &[
            ("SERVER_URL", format!("http://{}", server.http)),
            ("REALM", "fl".into()),
            ("CLIENT_ID", "flask".into()),
            ("CLIENT_SECRET", secret),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("APP_PORT", port.to_string()),
        ],
    );
}

#[test]
fn python_keycloak_admin_creates_what_a_login_then_sees() {
    let server = TestServer::start();
    let result = run(
        &python(),
        "python_keycloak_admin.py",
        &[
            ("SERVER_URL", format!("http://{}/", server.http)),
            ("ADMIN_USERNAME", ADMIN.0.into()),
            ("ADMIN_PASSWORD", ADMIN.1.into()),
            ("PK_REALM", "pk-realm".into()),
        ],
    );
    // Identity providers, their mappers and users' links through python-keycloak's calls.
    assert_eq!(
        result["steps"]["identity_providers"]["ok"], true,
        "{result}"
    );
    assert_eq!(
        result["steps"]["identity_providers"]["mappers"],
        serde_json::json!(["pk-role-mapper"])
    );
}

#[test]
fn npm_keycloak_admin_client_drives_the_admin_api() {
    let server = TestServer::start();
    let result = run(
        &node(),
        "keycloak_admin_client.mjs",
        &[
            ("SERVER_URL", format!("http://{}", server.http)),
            ("ADMIN_USERNAME", ADMIN.0.into()),
            ("ADMIN_PASSWORD", ADMIN.1.into()),
            ("REALM_NAME", "kac".into()),
        ],
    );
    // The library's own calls for the resources added for Keycloak parity ran too.
    for step in [
        "serverInfo.find",
        "whoAmI.find",
        "users.listSessions",
        "users.countGroups",
        "realms.addDefaultGroup",
        "realms.addLocalization",
        "authenticationManagement.updateRequiredAction",
        "clients.evaluateGenerateAccessToken",
        "clientScopes.create",
        "clientScopes.addProtocolMapper",
        "clientScopes.addRealmScopeMappings",
        "identityProviders",
        "clients.addOptionalClientScope",
        "scope_login",
        "clientScopes.delByName",
        "authenticationManagement.copyFlow",
        "authenticationManagement.updateExecution",
        "authenticationManagement.addExecutionToFlow",
        "realms.update.browserFlow",
    ] {
        assert!(
            result["steps"].get(step).is_some(),
            "{step} did not run: {result}"
        );
    }
}

#[test]
fn every_admin_curl_command_of_the_seed_guides_works() {
    let server = TestServer::start();
    let result = run(
        &PathBuf::from("bash"),
        "seed_admin_curl.sh",
        &[
            ("SERVER_URL", format!("http://{}", server.http)),
            ("ADMIN_USERNAME", ADMIN.0.into()),
            ("ADMIN_PASSWORD", ADMIN.1.into()),
        ],
    );
    assert_eq!(result["steps"].as_object().unwrap().len(), 20, "{result}");
}

/// Screenshots for review go here (kept out of git with the rest of `target/`).
pub fn screenshot_dir() -> PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

#[test]
fn chromium_signs_in_through_the_gateway_and_the_app_sees_the_user() {
    let (server, _api, _, _) = crate::gateway::gateway_server(crate::gateway::SESSION_ROUTE);
    let result = run(
        &node(),
        "gateway_chromium.mjs",
        &[
            (
                "APP_URL",
                format!("http://app.test:{}/private/page?x=1", server.http.port()),
            ),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("SCREENSHOT_DIR", screenshot_dir().display().to_string()),
        ],
    );
    assert_eq!(
        result["steps"]["identity_headers"]["user"], "alice",
        "{result}"
    );
}

#[test]
fn chromium_goes_through_the_account_pages_with_a_second_factor() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("acct");
    let r = api.put(
        "/admin/realms/acct",
        &serde_json::json!({"resetPasswordAllowed": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let result = run(
        &node(),
        "account_chromium.mjs",
        &[
            (
                "SERVER_URL",
                format!("http://127.0.0.1:{}", server.http.port()),
            ),
            ("REALM", "acct".into()),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
            ("SCREENSHOT_DIR", screenshot_dir().display().to_string()),
        ],
    );
    assert_eq!(
        result["screenshots"].as_array().unwrap().len(),
        10,
        "{result}"
    );
}
