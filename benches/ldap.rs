//! LDAP-backed logins side by side with local-password logins, and a full sync, in one run.
//!
//! `cargo bench --bench ldap` starts Debian's `slapd` on a free loopback port with a
//! temporary database (`scripts/setup.sh` installs it), seeds it with 10,000 people, and
//! drives the real token endpoint (`App::handle`, the code the server runs; no socket on our
//! side) with password grants:
//! - an LDAP user (imported at its first login; each measured login searches the directory,
//!   binds as the user and refreshes the local copy), and
//! - a local user (argon2id at OWASP parameters, on the hash pool),
//!
//! one login at a time (latency: median and 95th percentile) and from as many tasks as
//! cores × 4 (logins/s). Then it times a full sync of the directory into an empty realm
//! (every user added) and a second one (every user compared, none changed). Under
//! `cargo test` it runs a few logins of each kind and syncs 200 people.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;
use common::measure;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::idp::App;
use portcullis::store::{ClientRecord, RealmRecord, Store};

const SUFFIX: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PW: &str = "bench-admin";

struct Slapd {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slapd(people: usize) -> Slapd {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\n\
         moduleload back_mdb\npidfile {dir}/slapd.pid\nsizelimit unlimited\n\
         database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\n\
         rootpw {ADMIN_PW}\ndirectory {dir}/db\nindex uid eq\nindex objectClass eq\n",
        dir = dir.path().display()
    );
    std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
    let url = format!("ldap://127.0.0.1:{port}");
    let child = Command::new("/usr/sbin/slapd")
        .arg("-f")
        .arg(dir.path().join("slapd.conf"))
        .args(["-h", &format!("{url}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slapd (scripts/setup.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "slapd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
    );
    for i in 0..people {
        ldif.push_str(&format!(
            "dn: uid=user{i},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: user{i}\n\
             cn: User {i}\ngivenName: User\nsn: Number{i}\nmail: user{i}@example.org\n\
             userPassword: ldap-password-{i}\n\n"
        ));
    }
    let mut add = Command::new("ldapadd")
        .args(["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PW])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
    Slapd {
        child,
        url,
        _dir: dir,
    }
}

fn setup(dir: &std::path::Path, ldap_url: &str) -> App {
    let store = Store::open(dir).unwrap();
    let hashed =
        portcullis::crypto::password::hash_password("local-password", &Default::default()).unwrap();
    store
        .write(|w| {
            use portcullis::idp::realm;
            for name in ["master", "bench", "synced"] {
                realm::create_realm(
                    w,
                    RealmRecord {
                        name: name.into(),
                        ..Default::default()
                    },
                    0,
                )?;
            }
            for name in ["bench", "synced"] {
                let r = w.realm_by_name(name)?.unwrap();
                let provider = serde_json::json!({"id": format!("ldap-{name}"), "name": "ldap",
                    "providerId": "ldap", "providerType": portcullis::idp::ldap::STORAGE_PROVIDER,
                    "parentId": r.id, "config": {"connectionUrl": [ldap_url], "bindDn": [ADMIN_DN],
                    "bindCredential": [ADMIN_PW], "usersDn": [format!("ou=people,{SUFFIX}")],
                    "usernameLDAPAttribute": ["uid"], "rdnLDAPAttribute": ["uid"],
                    "uuidLDAPAttribute": ["entryUUID"],
                    "userObjectClasses": ["inetOrgPerson, organizationalPerson"]}});
                w.put_object(
                    &r.id,
                    portcullis::idp::ldap::COMPONENT_KIND,
                    &format!("ldap-{name}"),
                    &provider,
                )
                .map_err(realm::RealmError::from)?;
                for (i, mut m) in portcullis::idp::ldap::default_mappers(&provider)
                    .into_iter()
                    .enumerate()
                {
                    let id = format!("m{i}-{name}");
                    m["id"] = id.clone().into();
                    w.put_object(&r.id, portcullis::idp::ldap::COMPONENT_KIND, &id, &m)
                        .map_err(realm::RealmError::from)?;
                }
            }
            let r = w.realm_by_name("bench")?.unwrap();
            let client = ClientRecord {
                id: "c".into(),
                client_id: "app".into(),
                secret: Some("app-secret".into()),
                enabled: true,
                direct_access_grants_enabled: true,
                full_scope_allowed: true,
                ..Default::default()
            };
            common::client_and_alice(w, &r, client, &hashed)?;
            Ok::<_, realm::RealmError>(())
        })
        .unwrap();
    common::app(store)
}

/// One password grant; panics unless it succeeds.
async fn login(app: &App, username: &str, password: &str) {
    let request = common::form_post(
        "/realms/bench/protocol/openid-connect/token",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", "app-secret"),
            ("username", username),
            ("password", password),
        ],
    );
    let response = common::handle(app, request).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
}

/// One login after another for `limit` (at most `max` of them): (median, p95) in ms.
fn latency<F, Fut>(rt: &tokio::runtime::Runtime, limit: Duration, max: usize, op: F) -> (f64, f64)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < limit && times.len() < max {
        let t = Instant::now();
        rt.block_on(op(i));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        i += 1;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.95))
}

fn main() {
    let benchmarking = common::benchmarking();
    let (people, limit, max_ops) = if benchmarking {
        (10_000, Duration::from_secs(5), u64::MAX)
    } else {
        (200, Duration::from_secs(1), 4)
    };
    let (rt, cores) = common::runtime();
    let directory = slapd(people);
    let dir = tempfile::tempdir().unwrap();
    let app = setup(dir.path(), &directory.url);
    let people_u = people as u64;
    // The first login of each LDAP user imports it; the measured ones refresh it.
    for i in 0..people_u.min(64) {
        rt.block_on(login(
            &app,
            &format!("user{i}"),
            &format!("ldap-password-{i}"),
        ));
    }
    let known = people_u.min(64);
    let a = app.clone();
    let ldap_one = move |i: u64| {
        let app = a.clone();
        async move {
            let n = i % known;
            login(&app, &format!("user{n}"), &format!("ldap-password-{n}")).await
        }
    };
    let a = app.clone();
    let local_one = move |_: u64| {
        let app = a.clone();
        async move { login(&app, "alice", "local-password").await }
    };
    let max = max_ops.min(10_000) as usize;
    let ldap_latency = latency(&rt, limit, max, ldap_one.clone());
    let local_latency = latency(&rt, limit, max, local_one.clone());
    let tasks = cores * 4;
    let ldap_rate = measure(&rt, tasks, limit, max_ops, ldap_one);
    let local_rate = measure(&rt, tasks, limit, max_ops, local_one);

    // A full sync into a realm that has nobody yet, then one more (all compared, none new).
    let realm = app
        .store
        .read()
        .unwrap()
        .realm_by_name("synced")
        .unwrap()
        .unwrap();
    let provider =
        portcullis::idp::ldap::provider(&app.store.read().unwrap(), &realm.id, "ldap-synced")
            .unwrap()
            .unwrap();
    let started = Instant::now();
    let first = rt
        .block_on(portcullis::idp::federation::sync(
            &app, &realm, &provider, true,
        ))
        .unwrap();
    let first_time = started.elapsed();
    assert_eq!(first.added, people, "{first:?}");
    let started = Instant::now();
    let second = rt
        .block_on(portcullis::idp::federation::sync(
            &app, &realm, &provider, true,
        ))
        .unwrap();
    let second_time = started.elapsed();
    assert_eq!((second.added, second.failed), (0, 0), "{second:?}");
    if !benchmarking {
        println!("ldap smoke test: LDAP and local logins and {people}-entry syncs ran");
        return;
    }
    println!("| password grant ({cores} cores) | median ms (one at a time) | p95 ms | logins/s ({tasks} tasks) |");
    println!("|---|---|---|---|");
    for (name, (median, p95), rate) in [
        (
            "LDAP user (search + bind on slapd, local copy refreshed)",
            ldap_latency,
            ldap_rate,
        ),
        (
            "local user (argon2id m=19MiB t=2 p=1)",
            local_latency,
            local_rate,
        ),
    ] {
        println!("| {name} | {median:.2} | {p95:.2} | {rate:.0} |");
    }
    println!(
        "\nLDAP / local: {:.2}x the median latency, {:.2}x the logins per second",
        ldap_latency.0 / local_latency.0.max(1e-9),
        ldap_rate / local_rate.max(1e-9)
    );
    println!(
        "\nfull sync of {people} entries: {:.2} s into an empty realm ({} added), {:.2} s again ({} updated)",
        first_time.as_secs_f64(),
        first.added,
        second_time.as_secs_f64(),
        second.updated
    );
}
