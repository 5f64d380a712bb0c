//! The seed guides' "via Docker CLI" steps: every `kcadm.sh` and `kc.sh` command of
//! `tests/seeds/keycloak-guides.txt`, taken from the guide text (not retyped) and run by bash
//! against the real server with `kcadm.sh` / `kc.sh` links to the binary, each checked for its
//! effect through the REST API; then kcadm's option matrix, its config file, token refresh,
//! its error texts and exit codes, and the same over TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::api::Api;
use crate::harness::{temp_dir, Options, TestServer, ADMIN, BINARY};

const SEED: &str = include_str!("../seeds/keycloak-guides.txt");

/// A directory of links named as Keycloak's scripts, and a HOME for kcadm's config file.
struct Cli {
    bin: PathBuf,
    home: PathBuf,
    work: PathBuf,
    config: PathBuf,
}

impl Cli {
    fn new(server: &TestServer) -> Cli {
        let root = temp_dir();
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["kcadm.sh", "kc.sh"] {
            std::os::unix::fs::symlink(BINARY, bin.join(name)).unwrap();
        }
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        Cli {
            bin,
            home,
            work,
            config: server.dir.join("portcullis.toml"),
        }
    }

    /// Run a shell line with the links first on PATH; returns (exit code, stdout, stderr).
    fn sh(&self, line: &str) -> (i32, String, String) {
        self.sh_env(line, &[])
    }

    fn sh_env(&self, line: &str, env: &[(&str, &str)]) -> (i32, String, String) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(line)
            .current_dir(&self.work)
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("PORTCULLIS_CONFIG", &self.config)
            .env_remove("KC_CLI_PASSWORD")
            .env_remove("PORTCULLIS_ADMIN")
            .env_remove("PORTCULLIS_ADMIN_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run bash");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run and require exit 0.
    fn ok(&self, line: &str) -> (String, String) {
        let (code, out, err) = self.sh(line);
        assert_eq!(code, 0, "{line}\nstdout: {out}\nstderr: {err}");
        (out, err)
    }

    fn kcadm_config(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.home.join(".keycloak/kcadm.config")).unwrap(),
        )
        .unwrap()
    }
}

/// The guide's `kcadm.sh` / `kc.sh` commands in order: continuation lines joined, the
/// `docker exec -it keycloak` prefix dropped, with their line numbers.
fn seed_commands() -> Vec<(usize, String)> {
    let lines: Vec<&str> = SEED.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let number = i + 1;
        let is_cli = line.starts_with("/opt/keycloak/bin/kcadm.sh")
            || line.starts_with("./kcadm.sh")
            || line.starts_with("/opt/keycloak/bin/kc.sh")
            || line.starts_with("kc.sh ")
            || line.starts_with("docker exec -it keycloak /opt/keycloak/bin/kc.sh");
        if !is_cli {
            i += 1;
            continue;
        }
        let mut command = String::new();
        loop {
            let part = lines[i].trim();
            match part.strip_suffix('\\') {
                Some(head) => {
                    command.push_str(head.trim_end());
                    command.push(' ');
                    i += 1;
                }
                None => {
                    command.push_str(part);
                    i += 1;
                    break;
                }
            }
        }
        let command = command
            .replace("docker exec -it keycloak ", "")
            .replace("/opt/keycloak/bin/kcadm.sh", "kcadm.sh")
            .replace("./kcadm.sh", "kcadm.sh")
            .replace("/opt/keycloak/bin/kc.sh", "kc.sh");
        out.push((number, command));
    }
    out
}

/// The seed's realm file (Creating a Realm via Docker CLI, step 1), as the guide shows it.
fn seed_realm_file() -> String {
    let start = SEED
        .find("Create a JSON realm file (e.g., myrealm.json):")
        .expect("the seed's realm file step");
    let rest = &SEED[start..];
    let open = rest.find('{').unwrap();
    let close = rest.find("\n}").unwrap();
    rest[open..=close + 1].to_string()
}

fn user_id(api: &Api, realm: &str, username: &str) -> Option<String> {
    let r = api.get(&format!(
        "/admin/realms/{realm}/users?username={username}&exact=true"
    ));
    r.body.as_array()?.first()?["id"]
        .as_str()
        .map(str::to_string)
}

fn client_id(api: &Api, realm: &str, client: &str) -> Option<String> {
    let r = api.get(&format!("/admin/realms/{realm}/clients?clientId={client}"));
    r.body.as_array()?.first()?["id"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn every_kcadm_and_kc_sh_command_of_the_seed_runs_as_written() {
    // Keycloak's variables name the first administrator (the seed's `docker run -e`).
    let server = TestServer::start_with(Options {
        env: vec![
            ("KEYCLOAK_ADMIN".into(), ADMIN.0.into()),
            ("KEYCLOAK_ADMIN_PASSWORD".into(), ADMIN.1.into()),
        ],
        ..Options::default()
    });
    let api = Api::admin(&server);
    let cli = Cli::new(&server);
    // The guide's container paths live under a directory of the test.
    let opt = cli.work.join("opt");
    std::fs::create_dir_all(opt.join("keycloak/data/import")).unwrap();
    std::fs::write(
        opt.join("keycloak/data/import/myrealm.json"),
        seed_realm_file(),
    )
    .unwrap();
    let server_url = format!("http://{}", server.http);
    let commands = seed_commands();
    assert!(commands.len() >= 25, "commands found: {commands:#?}");

    for (line, command) in &commands {
        // Placeholders, resolved when the command runs (ids of what earlier commands made).
        let mut c = command
            .replace("http://localhost:8080", &server_url)
            .replace("--password admin", &format!("--password {}", ADMIN.1))
            .replace("<your-password>", ADMIN.1)
            .replace("<realm-name>", "myrealm")
            .replace("<realm>", "myrealm")
            .replace("<username>", "jane")
            .replace("/opt/keycloak/", &format!("{}/keycloak/", opt.display()));
        if c.contains("<client-id>") {
            let id = client_id(&api, "myrealm", "my-cli-client").expect("my-cli-client made first");
            c = c.replace("<client-id>", &id);
        }
        if c.contains("<user-id>") {
            c = c.replace(
                "<user-id>",
                &user_id(&api, "myrealm", "jane").expect("jane"),
            );
        }
        if c.contains("<user_id>") {
            c = c.replace(
                "<user_id>",
                &user_id(&api, "myrealm", "jane.doe").expect("jane.doe"),
            );
        }
        // (The Google client's `"config.clientId=<GOOGLE_CLIENT_ID>"` is a quoted value.)
        assert!(
            !["<realm", "<user", "<client-id>", "<username>", "<your-"]
                .iter()
                .any(|p| c.contains(p)),
            "seed line {line}: placeholder left in {c}"
        );
        let (code, out, err) = cli.sh(&c);
        assert_eq!(
            code, 0,
            "seed line {line}: {c}\nstdout: {out}\nstderr: {err}"
        );
    }

    // Their effects, through the REST API.
    let realm = api.get("/admin/realms/myrealm");
    assert_eq!(realm.status, 200, "kc.sh import made the realm");
    assert_eq!(realm.body["enabled"], true);
    let jane = user_id(&api, "myrealm", "jane").expect("create users made jane");
    let jane = api.get(&format!("/admin/realms/myrealm/users/{jane}")).body;
    assert_eq!(jane["enabled"], true);
    assert_eq!(jane["requiredActions"], json!(["CONFIGURE_TOTP"]));
    let creds = api.get(&format!(
        "/admin/realms/myrealm/users/{}/credentials",
        jane["id"].as_str().unwrap()
    ));
    assert_eq!(
        creds.body[0]["type"], "password",
        "set-password: {}",
        creds.text
    );
    let client = client_id(&api, "myrealm", "my-cli-client").unwrap();
    let client = api
        .get(&format!("/admin/realms/myrealm/clients/{client}"))
        .body;
    assert_eq!(client["publicClient"], false);
    assert_eq!(client["redirectUris"], json!(["http://localhost:3000/*"]));
    assert_eq!(client["webOrigins"], json!(["http://localhost:3000"]));
    let auditor = api.get("/admin/realms/myrealm/roles/auditor").body;
    assert_eq!(auditor["description"], "Can view reports");
    let external = api.get(&format!(
        "/admin/realms/myrealm/clients/{}/roles/external-api",
        client["id"].as_str().unwrap()
    ));
    assert_eq!(external.body["description"], "Role for external apps");
    let github = api
        .get("/admin/realms/myrealm/identity-provider/instances/github")
        .body;
    assert_eq!(github["providerId"], "github");
    assert_eq!(github["config"]["clientId"], "GITHUB_CLIENT_ID");
    assert_eq!(github["config"]["clientSecret"], "**********");
    let google = api
        .get("/admin/realms/myrealm/identity-provider/instances/google")
        .body;
    assert_eq!(google["storeToken"], true);
    assert_eq!(google["config"]["defaultScope"], "email profile");
    assert_eq!(google["config"]["clientId"], "<GOOGLE_CLIENT_ID>");
    let doe = user_id(&api, "myrealm", "jane.doe").expect("jane.doe");
    let doe = api.get(&format!("/admin/realms/myrealm/users/{doe}")).body;
    assert_eq!(doe["email"], "jane.doe@example.com");
    assert_eq!(doe["emailVerified"], true);
    assert_eq!(
        doe["requiredActions"],
        json!(["UPDATE_PASSWORD"]),
        "the seed's ['...'] list"
    );
    let app = client_id(&api, "myrealm", "my-app").expect("my-app");
    let app = api
        .get(&format!("/admin/realms/myrealm/clients/{app}"))
        .body;
    assert_eq!(app["publicClient"], true);
    assert_eq!(app["redirectUris"], json!(["https://myapp.com/*"]));
    let ldap =
        api.get("/admin/realms/myrealm/components?type=org.keycloak.storage.UserStorageProvider");
    let ldap = &ldap.body.as_array().expect("components")[0];
    assert_eq!(ldap["name"], "ldap");
    assert_eq!(
        ldap["config"]["connectionUrl"],
        json!(["ldap://ldap.example.com"])
    );
    assert_eq!(ldap["config"]["bindCredential"], json!(["**********"]));
    // `get realms/<realm-name> > myrealm-export.json` wrote the realm as JSON.
    let exported: Value = serde_json::from_str(
        &std::fs::read_to_string(cli.work.join("myrealm-export.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(exported["realm"], "myrealm");
    // kc.sh export while the server runs: the server wrote the files.
    let with_users: Value = serde_json::from_str(
        &std::fs::read_to_string(opt.join("keycloak/data/export/myrealm-realm.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = with_users["users"]
        .as_array()
        .expect("--users all puts users in the realm file")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(
        names.contains(&"jane") && names.contains(&"jane.doe"),
        "{names:?}"
    );
    let realm_file: Value = serde_json::from_str(
        &std::fs::read_to_string(opt.join("keycloak/data/import/myrealm-realm.json")).unwrap(),
    )
    .unwrap();
    // (exported before the migration section made jane.doe)
    assert!(realm_file["users"]
        .as_array()
        .is_some_and(|u| u.iter().any(|u| u["username"] == "jane")));

    // The config file kcadm left: Keycloak's layout, private.
    let config = cli.kcadm_config();
    assert_eq!(config["serverUrl"], server_url);
    assert_eq!(config["realm"], "master");
    let entry = &config["endpoints"][&server_url]["master"];
    assert_eq!(entry["clientId"], "admin-cli");
    assert_eq!(entry["grantTypeForAuthentication"], "password");
    assert!(entry["token"].is_string() && entry["refreshToken"].is_string());
    assert!(entry["expiresAt"].as_i64().unwrap() > 1_700_000_000_000);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cli.home.join(".keycloak/kcadm.config")), 0o600);
    assert_eq!(mode(&cli.home.join(".keycloak")), 0o700);
    assert!(
        !std::fs::read_to_string(cli.home.join(".keycloak/kcadm.config"))
            .unwrap()
            .contains(ADMIN.1),
        "the password is not kept"
    );
}

#[test]
fn kcadm_options_output_formats_errors_and_refresh() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let cli = Cli::new(&server);
    let url = format!("http://{}", server.http);
    // A password on standard input when it is left out (no terminal here).
    let (_, err) = cli.ok(&format!(
        "echo '{}' | kcadm.sh config credentials --server {url} --realm master --user {}",
        ADMIN.1, ADMIN.0
    ));
    assert!(
        err.contains(&format!("Logging into {url} as user admin of realm master")),
        "{err}"
    );
    cli.ok("kcadm.sh create realms -s realm=opts -s enabled=true");

    // create: the message names the type, -i prints only the id, -o the object.
    let (out, err) = cli.ok("kcadm.sh create users -r opts -s username=ann -s enabled=true -s attributes.team='[\"red\"]'");
    assert!(out.is_empty());
    let ann = user_id(&api, "opts", "ann").unwrap();
    assert_eq!(err.trim(), format!("Created new user with id '{ann}'"));
    let (out, _) = cli.ok("kcadm.sh create groups -r opts -s name=staff -i");
    let staff = out.trim().to_string();
    assert_eq!(
        api.get(&format!("/admin/realms/opts/groups/{staff}")).body["name"],
        "staff"
    );
    let (out, _) = cli.ok("kcadm.sh create roles -r opts -s name=reader -o");
    let reader: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reader["name"], "reader");
    assert!(
        out.contains("\"name\" : \"reader\""),
        "Jackson's layout: {out}"
    );

    // -f FILE and -f - (a document from standard input), then -s over it.
    std::fs::write(
        cli.work.join("client.json"),
        r#"{"clientId": "from-file", "publicClient": true}"#,
    )
    .unwrap();
    cli.ok("kcadm.sh create clients -r opts -f client.json -s 'redirectUris=[\"http://a/*\"]'");
    let c = client_id(&api, "opts", "from-file").unwrap();
    let body = api.get(&format!("/admin/realms/opts/clients/{c}")).body;
    assert_eq!(body["publicClient"], true);
    assert_eq!(body["redirectUris"], json!(["http://a/*"]));
    cli.ok("echo '{\"clientId\": \"from-stdin\"}' | kcadm.sh create clients -r opts -f -");
    assert!(client_id(&api, "opts", "from-stdin").is_some());

    // get: --fields with nesting, csv, --noquotes, -q, --offset/--limit, -c.
    let (out, _) = cli.ok("kcadm.sh get users -r opts --fields 'username,attributes(team)'");
    let users: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        users,
        json!([{"username": "ann", "attributes": {"team": ["red"]}}])
    );
    cli.ok("kcadm.sh create users -r opts -s username=bob -s enabled=false");
    let (out, _) = cli.ok("kcadm.sh get users -r opts --fields username,enabled --format csv");
    assert_eq!(out, "\"ann\",true\n\"bob\",false\n");
    let (out, _) = cli
        .ok("kcadm.sh get users -r opts --fields username --format csv --noquotes -q username=bob");
    assert_eq!(out, "bob\n");
    let (out, _) = cli.ok(
        "kcadm.sh get users -r opts --fields username --format csv --noquotes --offset 1 --limit 1",
    );
    assert_eq!(out, "bob\n");
    let (out, _) = cli.ok(&format!("kcadm.sh get users/{ann} -r opts -c"));
    assert!(!out.trim_end().contains('\n'), "compact: {out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["username"],
        "ann"
    );

    // update: -s merges into the server's copy; -n replaces; -m merges a file.
    cli.ok(&format!(
        "kcadm.sh update users/{ann} -r opts -s firstName=Ann -s 'attributes.team+=blue'"
    ));
    let a = api.get(&format!("/admin/realms/opts/users/{ann}")).body;
    assert_eq!(a["firstName"], "Ann");
    assert_eq!(a["enabled"], true, "merged, not replaced");
    assert_eq!(a["attributes"]["team"], json!(["red", "blue"]));
    std::fs::write(
        cli.work.join("role.json"),
        r#"{"name": "reader", "description": "reads"}"#,
    )
    .unwrap();
    cli.ok("kcadm.sh update roles/reader -r opts -f role.json -m");
    assert_eq!(
        api.get("/admin/realms/opts/roles/reader").body["description"],
        "reads"
    );
    cli.ok(&format!(
        "kcadm.sh update users/{ann} -r opts -n -s username=ann -s enabled=false"
    ));
    assert_eq!(
        api.get(&format!("/admin/realms/opts/users/{ann}")).body["enabled"],
        false
    );

    // Roles: realm and client roles of a user, a group, a composite.
    cli.ok("kcadm.sh add-roles -r opts --uusername ann --rolename reader");
    cli.ok("kcadm.sh add-roles -r opts --uusername ann --cclientid realm-management --rolename view-users --rolename query-users");
    let (out, _) = cli.ok("kcadm.sh get-roles -r opts --uusername ann --cclientid realm-management --fields name --format csv --noquotes");
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["query-users", "view-users"]);
    let (out, _) = cli.ok("kcadm.sh get-roles -r opts --uusername ann --cclientid realm-management --available --fields name --format csv --noquotes");
    assert!(
        out.lines().any(|l| l == "manage-users") && !out.contains("view-users"),
        "{out}"
    );
    cli.ok("kcadm.sh remove-roles -r opts --uusername ann --cclientid realm-management --rolename query-users");
    let mapped = api.get(&format!(
        "/admin/realms/opts/users/{ann}/role-mappings/clients/{}",
        client_id(&api, "opts", "realm-management").unwrap()
    ));
    assert_eq!(mapped.body.as_array().unwrap().len(), 1, "{}", mapped.text);
    cli.ok("kcadm.sh add-roles -r opts --gname staff --rolename reader");
    // A group by path, its name holding a space.
    let (out, _) = cli.ok("kcadm.sh create groups -r opts -s 'name=night shift' -i");
    let night = out.trim().to_string();
    cli.ok("kcadm.sh add-roles -r opts --gpath '/night shift' --rolename reader");
    let mapped = api
        .get(&format!(
            "/admin/realms/opts/groups/{night}/role-mappings/realm"
        ))
        .body;
    assert!(
        mapped
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "reader"),
        "{mapped}"
    );
    let (code, _, err) = cli.sh("kcadm.sh add-roles -r opts --gpath /nowhere --rolename reader");
    assert_eq!(
        (code, err.trim()),
        (1, "Group not found for path: /nowhere")
    );
    let g = api
        .get(&format!(
            "/admin/realms/opts/groups/{staff}/role-mappings/realm"
        ))
        .body;
    assert!(g.as_array().unwrap().iter().any(|r| r["name"] == "reader"));
    cli.ok("kcadm.sh create roles -r opts -s name=lead");
    cli.ok("kcadm.sh add-roles -r opts --rname lead --rolename reader");
    let (out, _) =
        cli.ok("kcadm.sh get-roles -r opts --rname lead --fields name --format csv --noquotes");
    assert_eq!(out, "reader\n");
    let (out, _) = cli.ok("kcadm.sh get-roles -r opts --uusername ann --effective --fields name --format csv --noquotes");
    assert!(out.lines().any(|l| l == "reader"));

    // set-password by id, temporary.
    cli.ok(&format!(
        "kcadm.sh set-password -r opts --userid {ann} --new-password 'Tmp-pass-123' --temporary"
    ));
    let creds = api
        .get(&format!("/admin/realms/opts/users/{ann}/credentials"))
        .body;
    assert_eq!(creds[0]["type"], "password");
    assert!(
        api.get(&format!("/admin/realms/opts/users/{ann}")).body["requiredActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "UPDATE_PASSWORD")
    );

    // delete prints nothing.
    let (out, err) = cli.ok("kcadm.sh delete users/$(kcadm.sh get users -r opts -q username=bob --fields id --format csv --noquotes) -r opts");
    assert!(out.is_empty() && err.is_empty(), "{out} {err}");
    assert!(user_id(&api, "opts", "bob").is_none());

    // Errors: the server's message, exit 1; usage, exit 2.
    let (code, _, err) = cli.sh("kcadm.sh create users -r opts -s username=ann");
    assert_eq!((code, err.trim()), (1, "User exists with same username"));
    let (code, _, err) = cli.sh("kcadm.sh get users/nope -r opts");
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!("Resource not found for url: {url}/admin/realms/opts/users/nope")
    );
    let (code, _, err) = cli.sh("kcadm.sh set-password -r opts --username nobody --new-password x");
    assert_eq!(
        (code, err.trim()),
        (1, "User not found for username: nobody")
    );
    let (code, _, err) = cli.sh("kcadm.sh create users -r opts -s =x");
    assert_eq!(code, 2);
    assert!(
        err.starts_with("Invalid key=value parameter: [=x]"),
        "{err}"
    );
    let (code, _, err) = cli.sh("kcadm.sh set-password -r opts");
    assert_eq!(code, 2);
    assert!(err.contains("No user specified"), "{err}");
    let (code, _, err) = cli.sh("kcadm.sh add-roles -r opts --uusername ann --rolename nope");
    assert_eq!((code, err.trim()), (1, "Role not found for name: nope"));
    let (code, _, err) = cli.sh("kcadm.sh get users -r opts --fields 'a,,b'");
    assert_eq!(
        (code, err.trim()),
        (1, "Invalid fields specification at position 2: a,,b")
    );
    let (code, _, err) = cli.sh(&format!(
        "kcadm.sh config credentials --server {url} --realm master --user admin --password wrong"
    ));
    assert_eq!(code, 1);
    assert!(
        err.contains("Invalid user credentials [invalid_grant]"),
        "{err}"
    );
    let (code, _, _) = cli.sh("kcadm.sh");
    assert_eq!(code, 2, "no command: help, exit 2");
    let (code, out, _) = cli.sh("kcadm.sh help create");
    assert_eq!(code, 0);
    assert!(
        out.contains("kcadm.sh create") && out.contains("redirectUris"),
        "{out}"
    );

    // The failed login above left the stored session alone.
    let (out, _) = cli.ok("kcadm.sh config credentials --status");
    assert!(out.starts_with("Logged in (server: "), "{out}");

    // An expired access token is refreshed (and saved) before the request.
    let path = cli.home.join(".keycloak/kcadm.config");
    let mut config = cli.kcadm_config();
    let old = config["endpoints"][&url]["master"]["token"].clone();
    config["endpoints"][&url]["master"]["expiresAt"] = json!(1000);
    std::fs::write(&path, config.to_string()).unwrap();
    cli.ok("kcadm.sh get realms/opts --fields realm");
    let refreshed = cli.kcadm_config();
    assert_ne!(refreshed["endpoints"][&url]["master"]["token"], old);
    assert!(
        refreshed["endpoints"][&url]["master"]["expiresAt"]
            .as_i64()
            .unwrap()
            > 1_700_000_000_000
    );
    // An expired session says so.
    let mut config = refreshed.clone();
    config["endpoints"][&url]["master"]["expiresAt"] = json!(1000);
    config["endpoints"][&url]["master"]["refreshExpiresAt"] = json!(1000);
    std::fs::write(&path, config.to_string()).unwrap();
    let (code, _, err) = cli.sh("kcadm.sh get realms/opts");
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "Session has expired. Login again with 'kcadm.sh config credentials'"
        )
    );

    // One-shot credentials and --no-config leave the file alone; --token uses a given token.
    std::fs::remove_file(&path).unwrap();
    let (out, _) = cli.ok(&format!(
        "kcadm.sh get realms/opts --fields realm --no-config --server {url} --realm master --user admin --password {}",
        ADMIN.1
    ));
    assert!(out.contains("opts"));
    assert!(!path.exists(), "--no-config wrote nothing");
    let token = api.token.clone().unwrap();
    let (out, _) = cli.ok(&format!(
        "kcadm.sh get realms/opts --fields realm --server {url} --token {token}"
    ));
    assert!(out.contains("opts"));
    // With no session at all, the request goes without credentials and the server refuses it.
    let (code, _, err) = cli.sh(&format!(
        "kcadm.sh get realms/opts --server {url} --realm master"
    ));
    assert_eq!(code, 1);
    assert!(
        err.contains("401")
            || err.contains("HTTP 401")
            || err.contains("unauthorized")
            || err.contains("Unauthorized"),
        "{err}"
    );

    // A service account logs in with client credentials.
    let sa = api.post(
        "/admin/realms/master/clients",
        &json!({"clientId": "robot", "publicClient": false, "serviceAccountsEnabled": true, "secret": "robot-secret-1"}),
    );
    assert_eq!(sa.status, 201, "{}", sa.text);
    let (_, err) = cli.ok(&format!(
        "KC_CLI_CLIENT_SECRET=robot-secret-1 kcadm.sh config credentials --server {url} --realm master --client robot"
    ));
    assert!(
        err.contains("as service-account-robot of realm master"),
        "{err}"
    );
    assert_eq!(
        cli.kcadm_config()["endpoints"][&url]["master"]["grantTypeForAuthentication"],
        "client_credentials"
    );
}

#[test]
fn kcadm_over_tls_with_a_trust_store_and_kc_sh_start_and_import() {
    // kc.sh start-dev --import-realm with Keycloak's admin variables: the realm file of the
    // import directory is there at start, and so is the administrator.
    let dir = temp_dir();
    std::fs::create_dir_all(dir.join("data/import")).unwrap();
    std::fs::write(dir.join("data/import/myrealm.json"), seed_realm_file()).unwrap();
    // And Keycloak's legacy KEYCLOAK_IMPORT (the seed's Elestio section).
    let legacy = dir.join("legacy-realm.json");
    std::fs::write(&legacy, r#"{"realm": "legacy", "enabled": true}"#).unwrap();
    let link_dir = temp_dir();
    let kc = link_dir.join("kc.sh");
    std::os::unix::fs::symlink(BINARY, &kc).unwrap();
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        env: vec![
            ("KC_BOOTSTRAP_ADMIN_USERNAME".into(), ADMIN.0.into()),
            ("KC_BOOTSTRAP_ADMIN_PASSWORD".into(), ADMIN.1.into()),
            ("KEYCLOAK_IMPORT".into(), legacy.display().to_string()),
        ],
        command: Some((kc, vec!["start-dev".into(), "--import-realm".into()])),
        ..Options::default()
    });
    let api = Api::admin(&server);
    assert_eq!(
        api.get("/admin/realms/myrealm").status,
        200,
        "imported at start"
    );
    assert_eq!(
        api.get("/admin/realms/legacy").status,
        200,
        "KEYCLOAK_IMPORT"
    );

    let cli = Cli::new(&server);
    let url = format!("https://localhost:{}", server.https.port());
    let ca = server.dir.join("certs/localhost.pem");
    // Without a trust store the self-signed certificate is refused...
    let (code, _, err) = cli.sh(&format!(
        "kcadm.sh config credentials --server {url} --realm master --user admin --password {}",
        ADMIN.1
    ));
    assert_eq!(code, 1);
    assert!(err.contains("certificate"), "{err}");
    // ...with it (on the command line, then kept by `config truststore`) it is trusted.
    cli.ok(&format!(
        "kcadm.sh config credentials --server {url} --realm master --user admin --password {} --truststore {}",
        ADMIN.1,
        ca.display()
    ));
    cli.ok(&format!("kcadm.sh config truststore {}", ca.display()));
    cli.ok("kcadm.sh create users -r myrealm -s username=tls-user -s enabled=true");
    assert!(user_id(&api, "myrealm", "tls-user").is_some());
    let (out, _) = cli.ok("kcadm.sh get realms/myrealm --fields realm,enabled");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"realm": "myrealm", "enabled": true})
    );
    cli.ok("kcadm.sh config truststore --delete");
    assert!(cli.kcadm_config().get("truststore").is_none());

    // kc.sh import of a second file while the server runs goes through the server, and
    // the running server serves the new realm at once.
    std::fs::write(
        cli.work.join("second.json"),
        r#"{"realm": "second", "enabled": true}"#,
    )
    .unwrap();
    let (out, _) = cli.ok("kc.sh import --file second.json");
    assert!(out.contains("imported realm second"), "{out}");
    assert_eq!(
        api.get("/realms/second/.well-known/openid-configuration")
            .status,
        200
    );
    // Keycloak's single-file export.
    cli.ok("kc.sh export --file one.json --realm second");
    let one: Value =
        serde_json::from_str(&std::fs::read_to_string(cli.work.join("one.json")).unwrap()).unwrap();
    assert_eq!(one["realm"], "second");
    let (code, _, err) = cli.sh("kc.sh start --bogus");
    assert_eq!(code, 2);
    assert!(err.contains("--bogus"), "{err}");
    // Shell completion of the whole command line, kcadm included.
    let (out, _) = cli.ok(&format!("{BINARY} completions bash"));
    assert!(
        out.contains("_portcullis()") && out.contains("kcadm"),
        "{}",
        &out[..200.min(out.len())]
    );
    // `portcullis --help` shows the seed-style examples.
    let (out, _) = cli.ok(&format!("{BINARY} --help"));
    assert!(
        out.contains("kc.sh import --file") && out.contains("kcadm.sh create users"),
        "{out}"
    );
}
