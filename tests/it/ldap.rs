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
use crate::harness::{temp_dir, test_ca, TestServer};

pub(crate) const SUFFIX: &str = "dc=example,dc=org";
pub(crate) const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub(crate) const ADMIN_PW: &str = "ldap-admin-secret";

/// A running slapd, stopped when dropped.
pub(crate) struct Slapd {
    child: Option<Child>,
    pub(crate) url: String,
    dir: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Slapd {
    pub(crate) fn start() -> Slapd {
        Slapd::start_with_tls(None).0
    }

    /// A slapd that also speaks TLS (StartTLS on its `ldap://` port, and an `ldaps://`
    /// port) with a certificate for `localhost` from a test CA: the slapd, the `ldaps://`
    /// URL and the CA's PEM file.
    fn start_tls() -> (Slapd, String, PathBuf) {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = test_ca(&dir, &["localhost"]);
        let (slapd, ldaps) = Slapd::start_with_tls(Some((cert, key)));
        let _ = std::fs::copy(&ca, slapd.dir.join("ca.pem"));
        (slapd, ldaps.unwrap(), ca)
    }

    fn start_with_tls(tls: Option<(PathBuf, PathBuf)>) -> (Slapd, Option<String>) {
        let dir = temp_dir();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let port = free_port();
        let tls_conf = tls
            .as_ref()
            .map(|(cert, key)| {
                format!(
                    "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    cert.display(),
                    key.display()
                )
            })
            .unwrap_or_default();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {dir}/slapd.pid\n{tls_conf}\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PW}\ndirectory {dir}/db\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_port = tls.as_ref().map(|_| free_port());
        let mut listen = format!("{url}/");
        if let Some(p) = ldaps_port {
            listen.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .args(["-h", &listen, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd (Debian's slapd package; scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(p) = ldaps_port {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "slapd did not start its ldaps port"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
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
        (slapd, ldaps_port.map(|p| format!("ldaps://localhost:{p}")))
    }

    /// `ldapsearch` as the directory's admin: the LDIF it prints.
    fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PW,
                "-b",
                base,
                filter,
            ])
            .args(attrs)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `dn` binds with `password` (`ldapwhoami`).
    fn binds(&self, dn: &str, password: &str) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.url, "-D", dn, "-w", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
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

    pub(crate) fn person(&self, uid: &str, given: &str, sn: &str, password: &str) {
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
    // The realm's export carries the provider and its mappers (the credential masked);
    // imported as another realm with the credential, its users sign in there.
    let export = api.post("/admin/realms/corp/partial-export", &json!({}));
    assert_eq!(export.status, 200, "{}", export.text);
    let mut realm_file = export.body.clone();
    let providers = realm_file["components"]["org.keycloak.storage.UserStorageProvider"]
        .as_array_mut()
        .expect("the LDAP provider exported");
    assert_eq!(
        providers[0]["config"]["bindCredential"],
        json!(["**********"])
    );
    let mappers = providers[0]["subComponents"]
        ["org.keycloak.storage.ldap.mappers.LDAPStorageMapper"]
        .as_array()
        .expect("its mappers")
        .len();
    assert_eq!(mappers, 6);
    providers[0]["config"]["bindCredential"] = json!([ADMIN_PW]);
    realm_file["realm"] = json!("corp-copy");
    realm_file["id"] = json!("corp-copy");
    let r = api.post("/admin/realms", &realm_file);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        login(&api, "corp-copy", "lena", "Lena-ldap-pass-1").status,
        200
    );
    assert_eq!(
        api.get("/admin/realms/corp-copy/components?type=org.keycloak.storage.ldap.mappers.LDAPStorageMapper")
            .body
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // Its password lives in the directory (what the console's credentials tab shows).
    assert_eq!(
        api.get(&format!(
            "/admin/realms/corp/users/{}/configured-user-storage-credential-types",
            lena["id"].as_str().unwrap()
        ))
        .body,
        json!(["password"])
    );

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
    let r = api.post(
        "/admin/realms/corp/testLDAPConnection",
        &json!({"action": "testAuthentication", "connectionUrl": slapd.url, "bindDn": ADMIN_DN,
                "bindCredential": "**********", "componentId": id, "startTls": "true"}),
    );
    assert_eq!(
        r.status, 400,
        "not under other TLS settings than stored: {}",
        r.text
    );
    // Nor does a provider pointed elsewhere keep the stored credential by the mask.
    let mut moved = api.get(&format!("/admin/realms/corp/components/{id}")).body;
    assert_eq!(moved["config"]["bindCredential"], json!(["**********"]));
    moved["config"]["connectionUrl"] = json!(["ldap://attacker.example:389"]);
    let r = api.put(&format!("/admin/realms/corp/components/{id}"), &moved);
    assert_eq!(r.status, 400, "{}", r.text);
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
    // The changed-users sync reads what changed since the last sync: the second ria, changed
    // after it (a second later: the directory's timestamps are in seconds), whose name is
    // free now.
    std::thread::sleep(Duration::from_millis(1100));
    slapd.ldap(
        "ldapmodify",
        &[],
        &format!(
            "dn: uid=ria,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: ria2@example.org\n"
        ),
    );
    let again = api.post(
        &format!("/admin/realms/corp/user-storage/{id}/sync?action=triggerChangedUsersSync"),
        &json!({}),
    );
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

const MAPPER: &str = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper";

fn people(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

/// Set `config.{key}` of component `id` (read, changed, written back with the masked
/// credential, as the console does).
fn set_config(api: &Api, realm: &str, id: &str, key: &str, value: &str) {
    let path = format!("/admin/realms/{realm}/components/{id}");
    let mut c = api.get(&path).body;
    c["config"][key] = json!([value]);
    let r = api.put(&path, &c);
    assert_eq!(r.status, 204, "{}", r.text);
}

#[test]
fn ldap_edit_modes_memberships_and_syncs() {
    let slapd = Slapd::start();
    slapd.person("wanda", "Wanda", "Writer", "Wanda-ldap-pass-1");
    slapd.person("rita", "Rita", "Reader", "Rita-ldap-pass-1");
    slapd.add(&format!(
        "dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: cn=ops,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: ops\nmember: cn=staff,ou=groups,{SUFFIX}\n\n\
         dn: cn=staff,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: staff\nmember: {}\nmember: {}\n\n\
         dn: ou=roles,{SUFFIX}\nobjectClass: organizationalUnit\nou: roles\n\n\
         dn: cn=auditor,ou=roles,{SUFFIX}\nobjectClass: groupOfNames\ncn: auditor\nmember: {}\n",
        people("wanda"),
        people("rita"),
        people("wanda")
    ));
    let server = TestServer::start();
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "edit", "enabled": true}))
            .status,
        201
    );
    let r = api.post(
        "/admin/realms/edit/components",
        &json!({"name": "corp-ldap", "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider",
                "config": {"connectionUrl": [slapd.url], "bindDn": [ADMIN_DN], "bindCredential": [ADMIN_PW],
                           "usersDn": [format!("ou=people,{SUFFIX}")], "editMode": ["WRITABLE"],
                           "syncRegistrations": ["true"], "usePasswordModifyExtendedOp": ["true"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    let mapper = |name: &str, provider: &str, config: Value| {
        let r = api.post(
            "/admin/realms/edit/components",
            &json!({"name": name, "providerId": provider, "providerType": MAPPER, "parentId": id,
                    "config": config}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.location_id()
    };
    let groups_mapper = mapper(
        "groups",
        "group-ldap-mapper",
        json!({"groups.dn": [format!("ou=groups,{SUFFIX}")], "mode": ["READ_ONLY"],
               "preserve.group.inheritance": ["true"]}),
    );
    mapper(
        "roles",
        "role-ldap-mapper",
        json!({"roles.dn": [format!("ou=roles,{SUFFIX}")], "use.realm.roles.mapping": ["true"]}),
    );

    // A login imports wanda with her groups (the directory's hierarchy kept) and roles,
    // and the role is in her token.
    let r = login(&api, "edit", "wanda", "Wanda-ldap-pass-1");
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = crate::api::claims(r.body["access_token"].as_str().unwrap());
    assert!(
        claims["realm_access"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("auditor")),
        "{claims}"
    );
    let wanda = user(&api, "edit", "wanda").unwrap();
    let wid = wanda["id"].as_str().unwrap().to_string();
    let groups = |uid: &str| -> Vec<String> {
        api.get(&format!("/admin/realms/edit/users/{uid}/groups"))
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(groups(&wid), ["/ops/staff"]);

    // WRITABLE: a profile change is written to the directory.
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}"),
        &json!({"firstName": "Wendy", "email": "wendy@example.org"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let entry = slapd.search(&people("wanda"), "(objectClass=*)", &["givenName", "mail"]);
    assert!(
        entry.contains("givenName: Wendy") && entry.contains("mail: wendy@example.org"),
        "{entry}"
    );
    // The password goes through the password modify extended operation: slapd hashes it.
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}/reset-password"),
        &json!({"type": "password", "value": "Wanda-new-pass-2", "temporary": false}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(slapd.binds(&people("wanda"), "Wanda-new-pass-2"));
    assert!(!slapd.binds(&people("wanda"), "Wanda-ldap-pass-1"));
    let stored = slapd.search(&people("wanda"), "(objectClass=*)", &["userPassword"]);
    assert!(
        stored.contains("userPassword:: e1NTSEF9"),
        "hashed by the directory ({{SSHA}}): {stored}"
    );
    assert_eq!(login(&api, "edit", "wanda", "Wanda-new-pass-2").status, 200);
    assert!(
        api.get(&format!("/admin/realms/edit/users/{wid}/credentials"))
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "password"),
        "no local copy of a directory password"
    );

    // A directory user's name is taken, though rita was never imported: a new local (or
    // directory) user of that name would shadow hers.
    let r = api.post(
        "/admin/realms/edit/users",
        &json!({"username": "rita", "enabled": true}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    // The attributes naming the entry are the server's: an administrator cannot point
    // wanda's account at rita's entry (and then set rita's password through it).
    let mut attrs = user(&api, "edit", "wanda").unwrap()["attributes"].clone();
    attrs["LDAP_ENTRY_DN"] = json!([people("rita")]);
    attrs["LDAP_ID"] = json!(["x"]);
    attrs["team"] = json!(["blue"]);
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}"),
        &json!({ "attributes": attrs }),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let attrs = user(&api, "edit", "wanda").unwrap()["attributes"].clone();
    assert_eq!(attrs["LDAP_ENTRY_DN"], json!([people("wanda")]), "{attrs}");
    assert_eq!(attrs["team"], json!(["blue"]));
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}/reset-password"),
        &json!({"type": "password", "value": "Wanda-new-pass-2", "temporary": false}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        slapd.binds(&people("rita"), "Rita-ldap-pass-1"),
        "rita's password untouched"
    );

    // A user created by the administrator goes to the directory (syncRegistrations), with
    // its password; deleted here, it is deleted there.
    let r = api.post(
        "/admin/realms/edit/users",
        &json!({"username": "newbie", "enabled": true, "firstName": "New", "lastName": "Bie",
                "email": "newbie@example.org",
                "credentials": [{"type": "password", "value": "Newbie-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let nid = r.location_id();
    let entry = slapd.search(&people("newbie"), "(objectClass=*)", &["sn", "cn", "mail"]);
    assert!(
        entry.contains("sn: Bie") && entry.contains("mail: newbie@example.org"),
        "{entry}"
    );
    assert!(slapd.binds(&people("newbie"), "Newbie-pass-1"));
    assert_eq!(user(&api, "edit", "newbie").unwrap()["federationLink"], id);
    assert_eq!(login(&api, "edit", "newbie", "Newbie-pass-1").status, 200);
    assert_eq!(
        api.delete(&format!("/admin/realms/edit/users/{nid}"))
            .status,
        204
    );
    assert_eq!(
        slapd.search(&people("newbie"), "(objectClass=*)", &["dn"]),
        ""
    );

    // The group mapper follows the directory: wanda taken out of staff there is out here
    // at her next login.
    slapd.ldap(
        "ldapmodify",
        &[],
        &format!(
            "dn: cn=staff,ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: {}\n",
            people("wanda")
        ),
    );
    assert_eq!(login(&api, "edit", "wanda", "Wanda-new-pass-2").status, 200);
    assert!(groups(&wid).is_empty(), "{:?}", groups(&wid));
    // The mapper's sync brings the directory's groups over (dev is new).
    slapd.add(&format!(
        "dn: cn=dev,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: dev\nmember: {}\n\n\
         dn: cn=a/b,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: a/b\nmember: {}\n",
        people("rita"),
        people("rita")
    ));
    let r = api.post(
        &format!(
            "/admin/realms/edit/user-storage/{id}/mappers/{groups_mapper}/sync?direction=fedToKeycloak"
        ),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["added"].clone(), r.body["updated"].clone()),
        (json!(1), json!(2)),
        "{}",
        r.text
    );
    let top: Vec<String> = api
        .get("/admin/realms/edit/groups")
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        top.contains(&"dev".into()) && top.contains(&"ops".into()),
        "{top:?}"
    );

    // READ_ONLY: what the directory owns is refused, the rest is not.
    set_config(&api, "edit", &id, "editMode", "READ_ONLY");
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}"),
        &json!({"firstName": "Changed"}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["errorMessage"], "error-user-attribute-read-only",
        "{}",
        r.text
    );
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}/reset-password"),
        &json!({"type": "password", "value": "Whatever-pass-9", "temporary": false}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["errorMessage"],
        "Can't reset password as account is read only"
    );
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}"),
        &json!({"requiredActions": ["VERIFY_EMAIL"]}),
    );
    assert_eq!(r.status, 204, "not the directory's: {}", r.text);
    assert!(
        slapd
            .search(&people("wanda"), "(objectClass=*)", &["givenName"])
            .contains("givenName: Wendy"),
        "READ_ONLY writes nothing"
    );

    // UNSYNCED: changes stay here; a local password then signs in, the directory's not.
    set_config(&api, "edit", &id, "editMode", "UNSYNCED");
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}"),
        &json!({"firstName": "Local", "requiredActions": []}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(slapd
        .search(&people("wanda"), "(objectClass=*)", &["givenName"])
        .contains("givenName: Wendy"));
    assert_eq!(login(&api, "edit", "wanda", "Wanda-new-pass-2").status, 200);
    assert_eq!(user(&api, "edit", "wanda").unwrap()["firstName"], "Local");
    let r = api.put(
        &format!("/admin/realms/edit/users/{wid}/reset-password"),
        &json!({"type": "password", "value": "Wanda-local-pass-3", "temporary": false}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        login(&api, "edit", "wanda", "Wanda-local-pass-3").status,
        200
    );
    assert_eq!(login(&api, "edit", "wanda", "Wanda-new-pass-2").status, 401);
    assert!(
        slapd.binds(&people("wanda"), "Wanda-new-pass-2"),
        "the directory untouched"
    );
    // Gone from the directory, she no longer signs in, local password or not.
    slapd.ldap("ldapdelete", &[], &format!("{}\n", people("wanda")));
    assert_eq!(
        login(&api, "edit", "wanda", "Wanda-local-pass-3").status,
        401
    );

    // Syncs (READ_ONLY again): a full one imports rita; a changed-users one picks up what
    // changed in the directory since; a full one removes who is gone from it.
    set_config(&api, "edit", &id, "editMode", "READ_ONLY");
    let sync = |action: &str| {
        let r = api.post(
            &format!("/admin/realms/edit/user-storage/{id}/sync?action={action}"),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    let full = sync("triggerFullSync");
    assert_eq!(
        (full["added"].clone(), full["removed"].clone()),
        (json!(1), json!(1)),
        "rita added, wanda removed: {full}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    slapd.ldap(
        "ldapmodify",
        &[],
        &format!(
            "dn: {}\nchangetype: modify\nreplace: mail\nmail: rita.reader@example.org\n",
            people("rita")
        ),
    );
    let changed = sync("triggerChangedUsersSync");
    assert_eq!(
        (changed["added"].clone(), changed["updated"].clone()),
        (json!(0), json!(1)),
        "{changed}"
    );
    assert_eq!(
        user(&api, "edit", "rita").unwrap()["email"],
        "rita.reader@example.org"
    );
    slapd.ldap("ldapdelete", &[], &format!("{}\n", people("rita")));
    assert_eq!(
        login(&api, "edit", "rita", "Rita-ldap-pass-1").status,
        401,
        "gone: no login"
    );
    // (A search that finds nobody at all removes nobody: someone stays.)
    slapd.person("stay", "Stay", "Here", "Stay-ldap-pass-1");
    let full = sync("triggerFullSync");
    assert_eq!(
        (full["added"].clone(), full["removed"].clone()),
        (json!(1), json!(1)),
        "{full}"
    );
    assert!(user(&api, "edit", "rita").is_none());
    let metrics = reqwest::blocking::get(server.http_url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("portcullis_ldap_sync_users_total{outcome=\"removed\"} 2"),
        "{metrics}"
    );

    // Periodic: a changed-users sync every second finds a new entry by itself (the
    // housekeeping loop looks every ten seconds).
    set_config(&api, "edit", &id, "changedSyncPeriod", "1");
    slapd.person("pat", "Pat", "Periodic", "Pat-ldap-pass-1");
    let deadline = Instant::now() + Duration::from_secs(40);
    while user(&api, "edit", "pat").is_none() {
        assert!(
            Instant::now() < deadline,
            "the periodic sync did not import pat"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // An entry the sync cannot read as a user (no uid) removes nobody: pat, deleted in the
    // same read, stays until a clean one.
    slapd.add(&format!(
        "dn: cn=nouid,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: nouid\nsn: Nouid\n"
    ));
    slapd.ldap("ldapdelete", &[], &format!("{}\n", people("pat")));
    let full = sync("triggerFullSync");
    assert_eq!(full["removed"], 0, "{full}");
    assert!(user(&api, "edit", "pat").is_some());
    slapd.ldap("ldapdelete", &[], &format!("cn=nouid,ou=people,{SUFFIX}\n"));
    let full = sync("triggerFullSync");
    assert_eq!(full["removed"], 1, "{full}");

    // The directory's capabilities (with the stored credential) and the mapper types.
    let r = api.post(
        "/admin/realms/edit/ldap-server-capabilities",
        &json!({"connectionUrl": slapd.url, "bindDn": ADMIN_DN, "bindCredential": "**********",
                "componentId": id}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body
            .as_array()
            .unwrap()
            .contains(&json!({"oid": "1.3.6.1.4.1.4203.1.11.1", "type": "EXTENSION"})),
        "the password modify extended operation: {}",
        r.text
    );
    let types = api
        .get(&format!(
            "/admin/realms/edit/components/{id}/sub-component-types?type={MAPPER}"
        ))
        .body;
    assert!(
        types
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "group-ldap-mapper"),
        "{types}"
    );
}

#[test]
fn ldap_over_tls_verifies_the_directory_certificate() {
    let (slapd, ldaps, ca) = Slapd::start_tls();
    slapd.person("tess", "Tess", "Tls", "Tess-ldap-pass-1");
    let mut options = crate::harness::Options::default();
    // The directory's CA, the way a deployment adds one (the system trust store's file).
    options
        .env
        .push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    let server = TestServer::start_with(options);
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "tls", "enabled": true}))
            .status,
        201
    );
    let starttls = slapd.url.replace("127.0.0.1", "localhost");
    let test = |url: &str, start_tls: bool| {
        api.post(
            "/admin/realms/tls/testLDAPConnection",
            &json!({"action": "testAuthentication", "connectionUrl": url, "startTls": start_tls.to_string(),
                    "bindDn": ADMIN_DN, "bindCredential": ADMIN_PW}),
        )
    };
    assert_eq!(
        test(&ldaps, false).status,
        204,
        "{}",
        test(&ldaps, false).text
    );
    assert_eq!(test(&starttls, true).status, 204);
    // The certificate names localhost: by address it does not verify.
    let by_address = ldaps.replace("localhost", "127.0.0.1");
    let r = test(&by_address, false);
    assert_eq!(r.status, 400, "{}", r.text);
    for (name, url, start_tls) in [("ldaps", &ldaps, false), ("starttls", &starttls, true)] {
        let r = api.post(
            "/admin/realms/tls/components",
            &json!({"name": name, "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider",
                    "config": {"connectionUrl": [url], "startTls": [start_tls.to_string()],
                               "bindDn": [ADMIN_DN], "bindCredential": [ADMIN_PW],
                               "usersDn": [format!("ou=people,{SUFFIX}")], "priority": [if start_tls { "1" } else { "0" }]}}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let pid = r.location_id();
        let r = login(&api, "tls", "tess", "Tess-ldap-pass-1");
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(user(&api, "tls", "tess").unwrap()["federationLink"], pid);
        // Next round: the other provider imports her again.
        let tess = user(&api, "tls", "tess").unwrap();
        assert_eq!(
            api.delete(&format!(
                "/admin/realms/tls/users/{}",
                tess["id"].as_str().unwrap()
            ))
            .status,
            204
        );
        assert_eq!(
            api.delete(&format!("/admin/realms/tls/components/{pid}"))
                .status,
            204
        );
    }
}

#[test]
fn ldap_self_registration_goes_to_a_writable_directory() {
    let slapd = Slapd::start();
    slapd.person("taken", "Tak", "En", "Taken-ldap-pass-1");
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("selfreg");
    let r = api.put(
        "/admin/realms/selfreg",
        &json!({"registrationAllowed": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.post(
        "/admin/realms/selfreg/components",
        &json!({"name": "ldap", "providerId": "ldap", "providerType": "org.keycloak.storage.UserStorageProvider",
                "config": {"connectionUrl": [slapd.url], "bindDn": [ADMIN_DN], "bindCredential": [ADMIN_PW],
                           "usersDn": [format!("ou=people,{SUFFIX}")], "editMode": ["WRITABLE"],
                           "syncRegistrations": ["true"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    let register = |username: &str, password: &str| {
        let b = crate::browser::Browser::new(&server);
        let (_, _, html) = b.get(&b.auth_url("selfreg", "app", &[]));
        let link = crate::account::registration_link(&html).expect("a registration link");
        let (_, _, page) = b.get(&link);
        let mut form = crate::browser::find_form(&page, "kc-register-form").unwrap();
        form.set("username", username);
        form.set("email", &format!("{username}@example.org"));
        form.set("firstName", "Self");
        form.set("lastName", "Registered");
        form.set("password", password);
        form.set("password-confirm", password);
        b.submit(&form)
    };
    // A name the directory has is taken, though nobody of that name signed in yet.
    let (status, _, page) = register("taken", "Some-pass-123");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Username already exists"), "{page}");
    assert!(user(&api, "selfreg", "taken").is_none());
    // A new user goes to the directory, password and all; the local copy is linked.
    let (status, location, page) = register("fresh", "Fresh-pass-123");
    assert_eq!(status, 302, "{page}");
    assert!(location.unwrap().contains("code="));
    let entry = slapd.search(&people("fresh"), "(objectClass=*)", &["mail", "sn"]);
    assert!(
        entry.contains("mail: fresh@example.org") && entry.contains("sn: Registered"),
        "{entry}"
    );
    assert!(slapd.binds(&people("fresh"), "Fresh-pass-123"));
    let fresh = user(&api, "selfreg", "fresh").unwrap();
    assert_eq!(fresh["federationLink"], id);
    let creds = api
        .get(&format!(
            "/admin/realms/selfreg/users/{}/credentials",
            fresh["id"].as_str().unwrap()
        ))
        .body;
    assert_eq!(creds, json!([]), "no local password");
    assert_eq!(
        login(&api, "selfreg", "fresh", "Fresh-pass-123").status,
        200
    );
}
