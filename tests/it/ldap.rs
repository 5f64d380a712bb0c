//! LDAP federation against a real directory: Debian's `slapd` started on a free loopback port
//! with a temporary database, seeded with `ldapadd`. The provider is created with only the
//! seed's four form fields (the vendor's defaults fill the rest); the connection test; logins
//! that bind against the directory and import the user; a full sync; a password changed in
//! the directory; and the attacks: filter injection, an empty password (an anonymous bind),
//! a stopped directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Api;
use crate::harness::{temp_dir, TestServer};

const SUFFIX: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PW: &str = "ldap-admin-secret";

/// A running slapd, stopped when dropped.
struct Slapd {
    child: Option<Child>,
    url: String,
    dir: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Slapd {
    fn start() -> Slapd {
        let dir = temp_dir();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {dir}/slapd.pid\n\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PW}\ndirectory {dir}/db\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .args(["-h", &format!("{url}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd (Debian's slapd package; scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let slapd = Slapd {
            child: Some(child),
            url,
            dir,
        };
        slapd.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n"
        ));
        slapd
    }

    fn ldap(&self, tool: &str, args: &[&str], input: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn add(&self, ldif: &str) {
        self.ldap("ldapadd", &[], ldif);
    }

    fn person(&self, uid: &str, given: &str, sn: &str, password: &str) {
        self.add(&format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {sn}\n\
             givenName: {given}\nsn: {sn}\nmail: {uid}@example.org\nuserPassword: {password}\n"
        ));
    }

    fn set_password(&self, uid: &str, password: &str) {
        self.ldap(
            "ldapmodify",
            &[],
            &format!(
                "dn: uid={uid},ou=people,{SUFFIX}\nchangetype: modify\nreplace: userPassword\nuserPassword: {password}\n"
            ),
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn login(api: &Api, realm: &str, username: &str, password: &str) -> crate::api::Reply {
    api.token(
        realm,
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", username),
            ("password", password),
        ],
    )
}

fn user(api: &Api, realm: &str, username: &str) -> Option<Value> {
    let r = api.get(&format!(
        "/admin/realms/{realm}/users?username={username}&exact=true"
    ));
    r.body.as_array()?.first().cloned()
}

#[test]
fn ldap_users_sign_in_by_bind_are_imported_and_synced() {
    let mut slapd = Slapd::start();
    slapd.person("lena", "Lena", "Ldap", "Lena-ldap-pass-1");
    let server = TestServer::start();
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "corp", "enabled": true}))
            .status,
        201
    );

    // The connection test, as the console's buttons send it.
    let test = |body: Value| {
        api.post("/admin/realms/corp/testLDAPConnection", &body)
            .status
    };
    assert_eq!(
        test(json!({"action": "testConnection", "connectionUrl": slapd.url})),
        204
    );
    assert_eq!(
        test(
            json!({"action": "testAuthentication", "connectionUrl": slapd.url,
                    "bindDn": ADMIN_DN, "bindCredential": ADMIN_PW})
        ),
        204
    );
    assert_eq!(
        test(
            json!({"action": "testAuthentication", "connectionUrl": slapd.url,
                    "bindDn": ADMIN_DN, "bindCredential": "wrong"})
        ),
        400
    );
    assert_eq!(
        test(
            json!({"action": "testAuthentication", "connectionUrl": slapd.url,
                    "bindDn": ADMIN_DN, "bindCredential": ""})
        ),
        400,
        "an empty credential is an anonymous bind, not a test of it"
    );
    assert_eq!(
        test(json!({"action": "testConnection", "connectionUrl": "http://x"})),
        400
    );

    // The seed's provider: only its four fields, as plain strings.
    let r = api.post(
        "/admin/realms/corp/components",
        &json!({"name": "ldap", "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider",
                "config": {"connectionUrl": slapd.url, "bindDn": ADMIN_DN, "bindCredential": ADMIN_PW,
                           "usersDn": format!("ou=people,{SUFFIX}")}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    assert_eq!(
        api.get(&format!("/admin/realms/corp/user-storage/{id}/name"))
            .body["name"],
        "ldap"
    );

    // A first login binds as the user and imports it.
    let r = login(&api, "corp", "lena", "Lena-ldap-pass-1");
    assert_eq!(r.status, 200, "{}", r.text);
    let lena = user(&api, "corp", "lena").expect("imported");
    assert_eq!(lena["federationLink"], id);
    assert_eq!(lena["email"], "lena@example.org");
    assert_eq!(lena["firstName"], "Lena");
    assert_eq!(
        lena["attributes"]["LDAP_ENTRY_DN"],
        json!([format!("uid=lena,ou=people,{SUFFIX}")])
    );
    assert!(lena["attributes"]["LDAP_ID"][0]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    // Wrong and empty passwords, and filter tricks, do not sign in.
    assert_eq!(login(&api, "corp", "lena", "wrong").status, 401);
    let empty = login(&api, "corp", "lena", "");
    assert!(
        matches!(empty.status, 400 | 401),
        "no anonymous bind: {}",
        empty.text
    );
    for trick in ["*", "lena)(uid=*", "*)(objectClass=*", "le*"] {
        assert_eq!(
            login(&api, "corp", trick, "Lena-ldap-pass-1").status,
            401,
            "{trick}"
        );
    }
    assert_eq!(
        api.get("/admin/realms/corp/users/count").body,
        1,
        "nothing else imported"
    );

    // The provider came with Keycloak's default mappers; they name the attributes read.
    let mappers = api
        .get(&format!(
            "/admin/realms/corp/components?parent={id}&type=org.keycloak.storage.ldap.mappers.LDAPStorageMapper"
        ))
        .body;
    let mut names: Vec<&str> = mappers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "creation date",
            "email",
            "first name",
            "last name",
            "modify date",
            "username"
        ]
    );
    let mut first_name = mappers
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "first name")
        .unwrap()
        .clone();
    assert_eq!(first_name["config"]["ldap.attribute"], json!(["givenName"]));
    first_name["config"]["ldap.attribute"] = json!(["cn"]);
    let mid = first_name["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.put(&format!("/admin/realms/corp/components/{mid}"), &first_name)
            .status,
        204
    );
    assert_eq!(login(&api, "corp", "lena", "Lena-ldap-pass-1").status, 200);
    assert_eq!(
        user(&api, "corp", "lena").unwrap()["firstName"],
        "Lena Ldap",
        "read from cn now"
    );

    // The directory is asked at every login: a password changed there works at once.
    slapd.set_password("lena", "Lena-ldap-pass-2");
    assert_eq!(login(&api, "corp", "lena", "Lena-ldap-pass-1").status, 401);
    assert_eq!(login(&api, "corp", "lena", "Lena-ldap-pass-2").status, 200);
    // Its password is the directory's: the admin API refuses to set a local one.
    let r = api.put(
        &format!(
            "/admin/realms/corp/users/{}/reset-password",
            lena["id"].as_str().unwrap()
        ),
        &json!({"type": "password", "value": "Local-pass-1", "temporary": false}),
    );
    assert_eq!(r.status, 400, "{}", r.text);

    // The stored bind credential (the console sends the mask back) is only used towards the
    // stored server and DN: pointed elsewhere, the test refuses rather than hand it over.
    let masked = |url: &str| {
        api.post(
            "/admin/realms/corp/testLDAPConnection",
            &json!({"action": "testAuthentication", "connectionUrl": url, "bindDn": ADMIN_DN,
                    "bindCredential": "**********", "componentId": id}),
        )
        .status
    };
    assert_eq!(masked(&slapd.url), 204);
    assert_eq!(masked("ldap://127.0.0.1:1"), 400);
    // An administrator's filter must be one filter; half a filter is refused when saved.
    let r = api.post(
        "/admin/realms/corp/components",
        &json!({"name": "bad", "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider",
                "config": {"connectionUrl": slapd.url, "usersDn": format!("ou=people,{SUFFIX}"),
                           "customUserSearchFilter": "(a=1))(|(b=2)"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);

    // A username handed to someone else after its owner left the directory is not the
    // imported account: its LDAP_ID differs, the login is refused.
    slapd.person("ria", "Ria", "First", "Ria-ldap-pass-1");
    assert_eq!(login(&api, "corp", "ria", "Ria-ldap-pass-1").status, 200);
    slapd.ldap("ldapdelete", &[], &format!("uid=ria,ou=people,{SUFFIX}\n"));
    slapd.person("ria", "Ria", "Second", "Ria-ldap-pass-2");
    assert_eq!(
        login(&api, "corp", "ria", "Ria-ldap-pass-2").status,
        401,
        "not the first ria's account"
    );

    // Brute-force protection counts a directory user's attempts before it is imported.
    let r = api.put(
        "/admin/realms/corp",
        &json!({"bruteForceProtected": true, "failureFactor": 2, "permanentLockout": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    slapd.person("guess", "Gus", "Guess", "Guess-ldap-pass-1");
    for _ in 0..2 {
        assert_eq!(login(&api, "corp", "guess", "wrong").status, 401);
    }
    assert_eq!(
        login(&api, "corp", "guess", "Guess-ldap-pass-1").status,
        401,
        "locked"
    );
    let r = api.put("/admin/realms/corp", &json!({"bruteForceProtected": false}));
    assert_eq!(r.status, 204);

    // A full sync imports who has not signed in yet.
    slapd.person("max", "Max", "Muster", "Max-ldap-pass-1");
    let r = api.post(
        &format!("/admin/realms/corp/user-storage/{id}/sync?action=triggerFullSync"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // max and guess are new; the second ria is not the imported one and is left alone,
    // and the first ria, gone from the directory, is removed.
    assert_eq!(r.body["added"], 2, "{}", r.text);
    assert_eq!(r.body["failed"], 1, "{}", r.text);
    assert_eq!(r.body["removed"], 1, "{}", r.text);
    let max = user(&api, "corp", "max").expect("synced");
    assert_eq!(max["lastName"], "Muster");
    assert_eq!(max["federationLink"], id);
    let again = api.post(
        &format!("/admin/realms/corp/user-storage/{id}/sync?action=triggerChangedUsersSync"),
        &json!({}),
    );
    // The changed-users sync reads what changed since: the second ria, whose name is free
    // now.
    assert_eq!(again.body["added"], 1, "{}", again.text);
    assert_eq!(user(&api, "corp", "ria").unwrap()["lastName"], "Second");
    assert_eq!(
        api.post(
            &format!("/admin/realms/corp/user-storage/{id}/sync?action=nope"),
            &json!({})
        )
        .status,
        400
    );
    // Removed, the imported users come back from the directory at their next login.
    assert_eq!(
        api.post(
            &format!("/admin/realms/corp/user-storage/{id}/remove-imported-users"),
            &json!({})
        )
        .status,
        204
    );
    assert!(user(&api, "corp", "lena").is_none() && user(&api, "corp", "max").is_none());
    assert_eq!(login(&api, "corp", "lena", "Lena-ldap-pass-2").status, 200);
    assert!(user(&api, "corp", "lena").is_some(), "imported again");
    // Unlinked, they are local users: the directory no longer decides.
    assert_eq!(
        api.post(
            &format!("/admin/realms/corp/user-storage/{id}/unlink-users"),
            &json!({})
        )
        .status,
        204
    );
    let lena = user(&api, "corp", "lena").unwrap();
    assert!(lena.get("federationLink").is_none(), "{lena}");
    let r = api.put(
        &format!(
            "/admin/realms/corp/users/{}/reset-password",
            lena["id"].as_str().unwrap()
        ),
        &json!({"type": "password", "value": "Lena-local-pass-1", "temporary": false}),
    );
    assert_eq!(r.status, 204, "a local user now: {}", r.text);
    assert_eq!(login(&api, "corp", "lena", "Lena-local-pass-1").status, 200);
    assert_eq!(login(&api, "corp", "lena", "Lena-ldap-pass-2").status, 401);
    // A sync leaves the local lena alone and brings the removed ones back (max, the second
    // ria, guess).
    let r = api.post(
        &format!("/admin/realms/corp/user-storage/{id}/sync?action=triggerFullSync"),
        &json!({}),
    );
    assert_eq!(
        (r.body["added"].clone(), r.body["failed"].clone()),
        (json!(3), json!(1)),
        "{}",
        r.text
    );
    // A local user of the same realm still signs in with its own password.
    let r = api.post(
        "/admin/realms/corp/users",
        &json!({"username": "local", "enabled": true,
                "credentials": [{"type": "password", "value": "Local-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(login(&api, "corp", "local", "Local-pass-1").status, 200);

    // A stopped directory: its users cannot sign in (no 500), quickly.
    slapd.stop();
    let started = Instant::now();
    let r = login(&api, "corp", "max", "Max-ldap-pass-1");
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(login(&api, "corp", "local", "Local-pass-1").status, 200);
    let r = api.post(
        &format!("/admin/realms/corp/user-storage/{id}/sync?action=triggerFullSync"),
        &json!({}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Deleting the provider deletes its mappers.
    assert_eq!(
        api.delete(&format!("/admin/realms/corp/components/{id}"))
            .status,
        204
    );
    assert_eq!(
        api.get(&format!("/admin/realms/corp/components?parent={id}"))
            .body,
        json!([])
    );
}
