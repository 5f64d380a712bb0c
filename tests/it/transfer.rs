//! Realm import and export: the CLI round trip, Keycloak-format files with legacy password
//! hashes, `serve --import-realm`, partialImport / partial-export, and key rotation.

use std::path::Path;

use serde_json::{json, Value};

use crate::api::{claims, Api};
use crate::harness::{run_to_end, temp_dir, write_config, Options, TestServer};

/// Sort every array (by its elements' JSON text) so two exports compare modulo ordering.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut c: Vec<Value> = items.iter().map(canonical).collect();
            c.sort_by_key(|x| x.to_string());
            Value::Array(c)
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn export_then_import_into_an_empty_store_round_trips() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("t");
    let parent = api
        .post(
            "/admin/realms/t/groups",
            &json!({"name": "eng", "attributes": {"floor": ["3"]}}),
        )
        .location_id();
    api.post(
        &format!("/admin/realms/t/groups/{parent}/children"),
        &json!({"name": "backend"}),
    );
    api.post(
        &format!("/admin/realms/t/groups/{parent}/role-mappings/realm"),
        &json!([{"name": "user"}]),
    );
    api.post("/admin/realms/t/roles", &json!({"name": "super"}));
    api.post(
        "/admin/realms/t/roles/super/composites",
        &json!([{"name": "user"}]),
    );
    let backend = api.get("/admin/realms/t/group-by-path/eng/backend").body["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.put(
        &format!("/admin/realms/t/users/{alice}/groups/{backend}"),
        &json!({}),
    );
    for i in 0..3 {
        api.post("/admin/realms/t/users", &json!({"username": format!("bob{i}"), "enabled": true, "credentials": [{"type": "password", "value": format!("Bob-pass-{i}")}]}));
    }
    // An identity provider with a mapper, and a user linked to it, travel too.
    let r = api.post(
        "/admin/realms/t/identity-provider/instances",
        &json!({"alias": "github", "providerId": "github",
                "config": {"clientId": "gh", "clientSecret": "gh-secret-1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post(
        "/admin/realms/t/identity-provider/instances/github/mappers",
        &json!({"name": "team", "identityProviderMapper": "hardcoded-attribute-idp-mapper",
                "config": {"attribute": "team", "attribute.value": "octo"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post(
        &format!("/admin/realms/t/users/{alice}/federated-identity/github"),
        &json!({"userId": "583231", "userName": "octocat"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    // The admin API's partial export never shows the provider's secret.
    let partial = api.post("/admin/realms/t/partial-export", &json!({}));
    assert_eq!(
        partial.body["identityProviders"][0]["config"]["clientSecret"],
        "**********"
    );
    let before = api.alice_tokens("t", &secret, "openid");
    let dir = server.stop();

    let out = dir.join("export");
    let (status, stdout, stderr) = run_to_end(
        &[
            "export",
            "--config",
            "portcullis.toml",
            "--dir",
            out.to_str().unwrap(),
            "--realm",
            "t",
            "--users",
            "different_files",
            "--users-per-file",
            "2",
        ],
        &dir,
        None,
    );
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("t-realm.json"), "{stdout}");
    let realm_file = read(&out.join("t-realm.json"));
    assert_eq!(realm_file["realm"], "t");
    assert!(realm_file.get("users").is_none());
    let users0 = read(&out.join("t-users-0.json"));
    assert_eq!(users0["users"].as_array().unwrap().len(), 2);
    assert!(
        out.join("t-users-2.json").exists(),
        "5 users (alice, 3 bobs, the service account) in files of 2"
    );

    // Into a fresh server: import the directory, export again, compare.
    let fresh = temp_dir();
    write_config(&fresh, "");
    let (status, stdout, stderr) = run_to_end(
        &[
            "import",
            "--config",
            "portcullis.toml",
            "--dir",
            out.to_str().unwrap(),
        ],
        &fresh,
        None,
    );
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("imported realm t"), "{stdout}");
    let again = fresh.join("export");
    let (status, _, stderr) = run_to_end(
        &[
            "export",
            "--config",
            "portcullis.toml",
            "--dir",
            again.to_str().unwrap(),
            "--realm",
            "t",
            "--users",
            "same_file",
        ],
        &fresh,
        None,
    );
    assert!(status.success(), "{stderr}");
    let mut first = read(&out.join("t-realm.json"));
    let mut second = read(&again.join("t-realm.json"));
    // Users were split differently on purpose; compare them separately.
    let mut users_first: Vec<Value> = Vec::new();
    for i in 0..3 {
        users_first.extend(
            read(&out.join(format!("t-users-{i}.json")))["users"]
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    let users_second = read(&again.join("t-users-0.json"))["users"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        canonical(&Value::Array(users_first)),
        canonical(&Value::Array(users_second.clone()))
    );
    assert_eq!(first["identityProviders"][0]["alias"], "github");
    assert_eq!(
        first["identityProviders"][0]["config"]["clientSecret"],
        "gh-secret-1"
    );
    assert_eq!(first["identityProviderMappers"][0]["name"], "team");
    let linked = users_second
        .iter()
        .find(|u| u["federatedIdentities"].is_array())
        .expect("alice's link travels");
    assert_eq!(
        linked["federatedIdentities"],
        json!([{"identityProvider": "github", "userId": "583231", "userName": "octocat"}])
    );
    for v in [&mut first, &mut second] {
        v.as_object_mut().unwrap().remove("users");
    }
    assert_eq!(
        canonical(&first),
        canonical(&second),
        "the realm exports identically after a round trip"
    );

    // Tokens issued before the move still verify (the keys moved with the realm), and
    // passwords still work.
    let server = TestServer::start_with(Options {
        dir: Some(fresh),
        env: vec![],
        ..Default::default()
    });
    let r = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/realms/t/protocol/openid-connect/certs",
            server.http
        ))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let kid = crate::api::header(before["access_token"].as_str().unwrap())["kid"].clone();
    assert!(r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == kid));
    let api = Api::new(&server);
    let r = api.token(
        "t",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", &secret),
            ("username", "bob1"),
            ("password", "Bob-pass-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn keycloak_files_with_legacy_hashes_import_and_rehash_at_login() {
    use aws_lc_rs::pbkdf2;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let dir = temp_dir();
    let import = dir.join("data/import");
    std::fs::create_dir_all(&import).unwrap();
    let salt = b"keycloak-salt-16";
    let mut hash = [0u8; 64];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(27500).unwrap(),
        salt,
        b"Legacy-pass-1",
        &mut hash,
    );
    let bcrypt_hash = bcrypt::hash("Auth0-pass-1", 4).unwrap();
    let realm = json!({
        "realm": "legacy", "enabled": true,
        "clients": [{"clientId": "cli", "publicClient": true, "directAccessGrantsEnabled": true}],
        "users": [
            {"username": "kc-user", "enabled": true, "credentials": [{
                "type": "password",
                "secretData": json!({"value": STANDARD.encode(hash), "salt": STANDARD.encode(salt), "additionalParameters": {}}).to_string(),
                "credentialData": json!({"hashIterations": 27500, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}).to_string()
            }]},
            {"username": "auth0-user", "enabled": true, "credentials": [{
                "type": "password",
                "secretData": json!({"value": bcrypt_hash}).to_string(),
                "credentialData": json!({"algorithm": "bcrypt"}).to_string()
            }]}
        ]
    });
    std::fs::write(import.join("legacy-realm.json"), realm.to_string()).unwrap();
    // `serve --import-realm` imports it at start.
    let config = write_config(&dir, "");
    let mut child = std::process::Command::new(crate::harness::BINARY)
        .args(["serve", "--import-realm", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .env("PORTCULLIS_ADMIN", "admin")
        .env("PORTCULLIS_ADMIN_PASSWORD", "admin-password-1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    // Kill the server however this test ends.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep reading the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("portcullis ready http=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let http = rx.recv_timeout(std::time::Duration::from_secs(30)).ok();
    let base = format!("http://{}", http.expect("server ready"));
    let client = reqwest::blocking::Client::new();
    let login = |user: &str, password: &str| {
        client
            .post(format!(
                "{base}/realms/legacy/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", user),
                ("password", password),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(login("kc-user", "Legacy-pass-1"), 200);
    assert_eq!(login("kc-user", "wrong"), 401);
    assert_eq!(login("auth0-user", "Auth0-pass-1"), 200);
    // After the first login the hash is argon2; the password still works.
    let token: Value = client
        .post(format!(
            "{base}/realms/master/protocol/openid-connect/token"
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "admin"),
            ("password", "admin-password-1"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let admin_token = token["access_token"].as_str().unwrap();
    let users: Value = client
        .get(format!(
            "{base}/admin/realms/legacy/users?username=kc-user&exact=true"
        ))
        .bearer_auth(admin_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = users[0]["id"].as_str().unwrap();
    let creds: Value = client
        .get(format!("{base}/admin/realms/legacy/users/{id}/credentials"))
        .bearer_auth(admin_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let data: Value = serde_json::from_str(creds[0]["credentialData"].as_str().unwrap()).unwrap();
    assert_eq!(data["algorithm"], "argon2");
    assert_eq!(login("kc-user", "Legacy-pass-1"), 200);
}

#[test]
fn partial_import_policies_and_partial_export() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("t");
    let body = |policy: &str| {
        json!({
            "ifResourceExists": policy,
            "users": [{"username": "alice", "firstName": "Changed"}, {"username": "carol", "enabled": true}],
            "roles": {"realm": [{"name": "user", "description": "overwritten"}, {"name": "auditor"}]}
        })
    };
    let r = api.post("/admin/realms/t/partialImport", &body("FAIL"));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        api.get("/admin/realms/t/users?username=carol&exact=true")
            .body,
        json!([]),
        "FAIL imports nothing"
    );
    let r = api.post("/admin/realms/t/partialImport", &body("SKIP"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["added"].as_u64(), r.body["skipped"].as_u64()),
        (Some(2), Some(2))
    );
    let r = api.post("/admin/realms/t/partialImport", &body("OVERWRITE"));
    assert_eq!(r.body["overwritten"], 4);
    assert_eq!(
        api.get("/admin/realms/t/users?username=alice&exact=true")
            .body[0]["firstName"],
        "Changed"
    );
    assert_eq!(
        api.get("/admin/realms/t/roles/user").body["description"],
        "overwritten"
    );
    assert_eq!(
        api.post(
            "/admin/realms/t/partialImport",
            &json!({"ifResourceExists": "MAYBE"})
        )
        .status,
        400
    );

    let r = api.post(
        "/admin/realms/t/partial-export?exportClients=true&exportGroupsAndRoles=true",
        &json!({}),
    );
    assert_eq!(r.status, 200);
    let app = r.body["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "app")
        .unwrap()
        .clone();
    assert_eq!(app["secret"], "**********");
    assert!(r.body.get("users").is_none());
    assert!(
        r.text.find("privateKey").is_none(),
        "no private keys through the API"
    );
}

#[test]
fn key_rotation_keeps_old_tokens_valid() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("t");
    let old = api.alice_tokens("t", &secret, "openid");
    let old_kid = crate::api::header(old["access_token"].as_str().unwrap())["kid"].clone();
    let keys = api.get("/admin/realms/t/keys").body;
    assert_eq!(keys["active"]["RS256"], old_kid);
    let r = api.post("/admin/realms/t/keys", &json!({"algorithm": "RS256"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let new = api.alice_tokens("t", &secret, "openid");
    let new_kid = crate::api::header(new["access_token"].as_str().unwrap())["kid"].clone();
    assert_ne!(old_kid, new_kid);
    let jwks = api.get("/realms/t/protocol/openid-connect/certs").body;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        3,
        "old RSA key kept, passive"
    );
    let userinfo = |t: &str| {
        api.client
            .get(api.url("/realms/t/protocol/openid-connect/userinfo"))
            .bearer_auth(t)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(userinfo(old["access_token"].as_str().unwrap()), 200);
    assert_eq!(userinfo(new["access_token"].as_str().unwrap()), 200);
    assert_eq!(
        claims(new["access_token"].as_str().unwrap())["preferred_username"],
        "alice"
    );
}

#[test]
fn declarative_realms_apply_idempotently_with_a_dry_run() {
    let dir = temp_dir();
    write_config(&dir, "");
    let realms = dir.join("realms");
    std::fs::create_dir_all(&realms).unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/realms.example/shop.toml"),
    )
    .unwrap();
    std::fs::write(realms.join("shop.toml"), &example).unwrap();
    let apply = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["apply", "--config", "portcullis.toml", "--dir", "realms"];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(crate::harness::BINARY)
            .args(&args)
            .current_dir(&dir)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let env = [
        ("ORDERS_API_SECRET", "orders-secret-1"),
        ("ALICE_PASSWORD", "Alice-shop-1"),
    ];
    // A missing secret is named.
    let (status, _, stderr) = apply(&[], &[("ALICE_PASSWORD", "x")]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("ORDERS_API_SECRET is not set"), "{stderr}");
    // Dry run: the plan, and nothing written.
    let (status, stdout, stderr) = apply(&["--dry-run"], &env);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("would: create realm shop"), "{stdout}");
    let (_, stdout, _) = apply(&["--dry-run"], &env);
    assert!(
        stdout.contains("would: create realm shop"),
        "the dry run changed nothing: {stdout}"
    );
    // Apply, then apply again: nothing to change.
    let (status, stdout, stderr) = apply(&[], &env);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("did: create realm shop"), "{stdout}");
    let (_, stdout, _) = apply(&[], &env);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    // Change a client and a user; the plan names exactly those.
    let changed = example
        .replace("https://shop.example.com/*", "https://shop.example.org/*")
        .replace("alice@shop.example.com", "alice@shop.example.org");
    std::fs::write(realms.join("shop.toml"), changed).unwrap();
    let (_, stdout, _) = apply(&["--dry-run"], &env);
    assert!(
        stdout.contains("would: update client storefront in realm shop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would: update user alice in realm shop"),
        "{stdout}"
    );
    assert!(!stdout.contains("orders-api"), "{stdout}");
    let (status, _, _) = apply(&[], &env);
    assert!(status.success());
    // A broken file is named with its line.
    std::fs::write(realms.join("broken.toml"), "realm = \"x\"\nenabled = tru\n").unwrap();
    let (status, _, stderr) = apply(&[], &env);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("broken.toml: line 2"), "{stderr}");
    std::fs::remove_file(realms.join("broken.toml")).unwrap();

    // The server applies the directory at start; the applied realm works.
    let config = format!("[realms]\ndir = \"{}\"\n", realms.display());
    let mut env_vec: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env_vec.push(("PORTCULLIS_ADMIN".into(), "admin".into()));
    env_vec.push((
        "PORTCULLIS_ADMIN_PASSWORD".into(),
        "admin-password-1".into(),
    ));
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        env: env_vec,
        extra_config: config,
        command: None,
    });
    let api = Api::new(&server);
    let r = api.token(
        "shop",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "orders-api"),
            ("client_secret", "orders-secret-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
}
