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
fn setup() {
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
fn run(program: &Path, script: &str, env: &[(&str, String)]) -> Value {
    setup();
    let out = Command::new(program)
        .arg(root().join("tests/clients").join(script))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed\nstdout: {stdout}\nstderr: {stderr}");
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

fn node() -> PathBuf {
    PathBuf::from("node")
}

fn client_secret(api: &Api, realm: &str, client_id: &str) -> String {
    let c = api.get(&format!("/admin/realms/{realm}/clients?clientId={client_id}")).body;
    let uuid = c[0]["id"].as_str().unwrap().to_string();
    api.get(&format!("/admin/realms/{realm}/clients/{uuid}/client-secret")).body["value"]
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
    run(
        &python(),
        "python_keycloak_flow.py",
        &[
            ("SERVER_URL", format!("http://{}/", server.http)),
            ("REALM", "pk".into()),
            ("CLIENT_ID", "app".into()),
            ("CLIENT_SECRET", secret),
            ("USERNAME", "alice".into()),
            ("PASSWORD", "Alice-pass-1".into()),
        ],
    );
}

#[test]
fn python_keycloak_admin_creates_what_a_login_then_sees() {
    let server = TestServer::start();
    let _ = client_secret;
    run(
        &python(),
        "python_keycloak_admin.py",
        &[
            ("SERVER_URL", format!("http://{}/", server.http)),
            ("ADMIN_USERNAME", ADMIN.0.into()),
            ("ADMIN_PASSWORD", ADMIN.1.into()),
            ("PK_REALM", "pk-realm".into()),
        ],
    );
}
