//! The admin API swept by schemathesis (PyPI) over the server's own `/admin/openapi.json`:
//! every operation, valid and invalid inputs (bodies from the representation schemas, path
//! parameters, methods the path does not serve). No answer may be a 5xx or a dropped
//! connection; every 4xx carries Keycloak's `errorMessage` (`error` for a 401); what
//! answers a representation matches its schema. Path parameters point at real records of
//! a seeded realm, so the sweep gets past the 404s into the handlers.
//!
//! `PORTCULLIS_SWEEP_EXAMPLES` sets the cases per operation in the fuzzing phase (5 here;
//! the long run in the README uses 100).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::api::Api;
use crate::clients::setup;
use crate::harness::TestServer;

fn schemathesis() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/.venv/bin/schemathesis")
}

/// The ids of one record of each kind in realm `sweep`.
struct Seeded {
    ids: BTreeMap<&'static str, String>,
}

fn seed(api: &Api) -> Seeded {
    let (_, user) = api.setup_realm("sweep");
    let base = "/admin/realms/sweep";
    let mut ids = BTreeMap::new();
    ids.insert("user", user.clone());
    let clients = api.get(&format!("{base}/clients?clientId=app")).body;
    let client = clients[0]["id"].as_str().unwrap().to_string();
    ids.insert("client", client.clone());
    let created = |path: String, body: Value| -> String {
        let r = api.post(&path, &body);
        assert_eq!(r.status, 201, "{path}: {}", r.text);
        r.location_id()
    };
    ids.insert(
        "group",
        created(format!("{base}/groups"), json!({"name": "crew"})),
    );
    created(
        format!("{base}/clients/{client}/roles"),
        json!({"name": "crole"}),
    );
    let role = api.get(&format!("{base}/roles/user")).body;
    ids.insert("role", role["id"].as_str().unwrap().to_string());
    ids.insert(
        "scope",
        created(
            format!("{base}/client-scopes"),
            json!({"name": "extra", "protocol": "openid-connect"}),
        ),
    );
    let r = api.post(
        &format!("{base}/identity-provider/instances"),
        &json!({"alias": "upstream", "providerId": "oidc", "config": {
            "clientId": "x", "clientSecret": "y",
            "authorizationUrl": "https://idp.example.com/auth",
            "tokenUrl": "https://idp.example.com/token"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post(
        &format!("{base}/authentication/flows/browser/copy"),
        &json!({"newName": "sweep-browser"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let flows = api.get(&format!("{base}/authentication/flows")).body;
    let flow = flows
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["alias"] == "sweep-browser")
        .unwrap();
    ids.insert("flow", flow["id"].as_str().unwrap().to_string());
    let executions = api
        .get(&format!(
            "{base}/authentication/flows/sweep-browser/executions"
        ))
        .body;
    ids.insert(
        "execution",
        executions[0]["id"].as_str().unwrap().to_string(),
    );
    // A directory that is down: the federation paths answer from the handlers.
    let ldap = created(
        format!("{base}/components"),
        json!({"name": "directory", "providerId": "ldap",
               "providerType": "org.keycloak.storage.UserStorageProvider",
               "config": {"connectionUrl": ["ldap://127.0.0.1:1"],
                          "usersDn": ["ou=people,dc=example,dc=org"],
                          "connectionTimeout": ["500"]}}),
    );
    let mappers = api.get(&format!("{base}/components?parent={ldap}")).body;
    ids.insert("mapper", mappers[0]["id"].as_str().unwrap().to_string());
    ids.insert("component", ldap);
    let credentials = api.get(&format!("{base}/users/{user}/credentials")).body;
    ids.insert(
        "credential",
        credentials[0]["id"].as_str().unwrap().to_string(),
    );
    let r = api.post(
        &format!("{base}/localization/en"),
        &json!({"hello": "Hello"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    Seeded { ids }
}

/// The sweep's configuration: the realm, and for each family of paths the records its
/// parameters name.
fn config(seeded: &Seeded) -> String {
    let id = |k: &str| seeded.ids[k].clone();
    let families: Vec<(&str, Vec<(&str, String)>)> = vec![
        (r"/brute-force/users/\{id\}", vec![("id", id("user"))]),
        (
            r"/users/\{id\}",
            vec![
                ("id", id("user")),
                ("client", id("client")),
                ("group", id("group")),
                ("cred", id("credential")),
                ("after", id("credential")),
                ("provider", "upstream".into()),
            ],
        ),
        (
            r"/groups/\{id\}",
            vec![("id", id("group")), ("client", id("client"))],
        ),
        (
            r"/clients/\{id\}",
            vec![
                ("id", id("client")),
                ("client", id("client")),
                ("role", "crole".into()),
                ("scope", id("scope")),
                ("key", "jwt.credential".into()),
            ],
        ),
        (
            r"/roles/\{role\}",
            vec![("role", "user".into()), ("client", id("client"))],
        ),
        (
            r"/roles-by-id/\{id\}",
            vec![("id", id("role")), ("client", id("client"))],
        ),
        (
            r"/client-scopes/\{id\}",
            vec![("id", id("scope")), ("client", id("client"))],
        ),
        (
            r"/identity-provider/instances/\{id\}",
            vec![("id", "upstream".into())],
        ),
        (
            r"/identity-provider/providers/\{id\}",
            vec![("id", "oidc".into())],
        ),
        (r"/components/\{id\}", vec![("id", id("component"))]),
        (
            r"/user-storage/\{id\}",
            vec![("id", id("component")), ("mapper", id("mapper"))],
        ),
        (
            r"/authentication/flows/\{flow\}",
            vec![("flow", "sweep-browser".into())],
        ),
        (r"/authentication/flows/\{id\}", vec![("id", id("flow"))]),
        (
            r"/authentication/executions/\{id\}",
            vec![("id", id("execution"))],
        ),
        (
            r"/authentication/required-actions/\{id\}",
            vec![("id", "VERIFY_EMAIL".into())],
        ),
        (
            r"/localization/\{id\}",
            vec![("id", "en".into()), ("key", "hello".into())],
        ),
        (r"/default-groups/\{id\}", vec![("id", id("group"))]),
        (r"-client-scopes/\{scope\}", vec![("scope", id("scope"))]),
    ];
    let mut text = String::from("[parameters]\n\"path.realm\" = \"sweep\"\n");
    for (regex, params) in families {
        text.push_str(&format!(
            "\n[[operations]]\ninclude-path-regex = {}\n[operations.parameters]\n",
            toml_string(regex)
        ));
        for (name, value) in params {
            text.push_str(&format!("\"path.{name}\" = {}\n", toml_string(&value)));
        }
    }
    text
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn schemathesis_sweeps_every_admin_operation_without_a_5xx() {
    setup();
    let server = TestServer::start();
    let api = Api::admin(&server);
    // A token that outlives the sweep.
    let r = api.put(
        "/admin/realms/master",
        &json!({"accessTokenLifespan": 3600}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let api = Api::admin(&server);
    let seeded = seed(&api);

    // The document itself: OpenAPI 3.1, every operation of the table.
    let doc = api.get("/admin/openapi.json");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_eq!(doc.header("cache-control"), Some("public, max-age=3600"));
    let operations: usize = doc.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(operations > 250, "{operations}");
    // It is public, like the source it is generated from; the API is not.
    let anonymous = Api::new(&server);
    assert_eq!(anonymous.get("/admin/openapi.json").status, 200);
    assert_eq!(anonymous.get("/admin/realms/sweep/users").status, 401);

    let dir = server.dir.join("sweep");
    std::fs::create_dir_all(&dir).unwrap();
    // The token rides in the config file, not on a command line others can read.
    let token = api.token.clone().unwrap();
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            "headers = {{ Authorization = {} }}\n{}",
            toml_string(&format!("Bearer {token}")),
            config(&seeded)
        ),
    )
    .unwrap();
    let examples = std::env::var("PORTCULLIS_SWEEP_EXAMPLES").unwrap_or_else(|_| "5".into());
    // Two passes: everything but DELETE while the seeded records stand, then the DELETEs.
    // The realm the sweep stands in stays.
    let mut statuses: BTreeMap<u64, usize> = BTreeMap::new();
    let mut misshapen = Vec::new();
    let mut requests = 0;
    let mut summaries = String::new();
    for (pass, filter) in [
        ("rest", ["--exclude-method", "DELETE"]),
        ("delete", ["--include-method", "DELETE"]),
    ] {
        let har = dir.join(format!("sweep-{pass}.har"));
        let out = Command::new(schemathesis())
            .current_dir(&dir)
            .args(["--config-file", "schemathesis.toml", "run"])
            .arg(server.http_url("/admin/openapi.json"))
            .args(filter)
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
                "--exclude-operation-id",
                "delete_realm",
                "--phases",
                "coverage,fuzzing",
                "--max-examples",
                &examples,
                "--workers",
                "2",
                "--no-color",
                "--report",
                "har",
                "--report-har-path",
            ])
            .arg(&har)
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis ({pass}) found failures:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        summaries.push_str(stdout.split("SUMMARY").nth(1).unwrap_or(&stdout));
        // What the sweep sent and got, read from its own record of the exchanges.
        let record: Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
        let entries = record["log"]["entries"].as_array().unwrap();
        requests += entries.len();
        for e in entries {
            let status = e["response"]["status"].as_u64().unwrap();
            *statuses.entry(status).or_default() += 1;
            if (400..500).contains(&status) {
                let text = e["response"]["content"]["text"].as_str().unwrap_or("");
                let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                let key = if status == 401 {
                    "error"
                } else {
                    "errorMessage"
                };
                if !body[key].is_string() {
                    misshapen.push(format!(
                        "{} {} -> {status} {body}",
                        e["request"]["method"], e["request"]["url"]
                    ));
                }
            }
        }
    }
    let server_errors: usize = statuses
        .iter()
        .filter(|(s, _)| **s >= 500 || **s == 0)
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "sweep: {operations} operations, {requests} requests, statuses {statuses:?}\n{summaries}"
    );
    assert!(requests > 2_000, "{requests}");
    assert_eq!(server_errors, 0, "{statuses:?}");
    assert!(misshapen.is_empty(), "{misshapen:#?}");
    // Most answers come from inside the handlers, not from a missing record.
    let deep = requests - statuses.get(&404).copied().unwrap_or(0);
    assert!(deep * 2 > requests, "{statuses:?}");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("internal error"), "{log}");
}
