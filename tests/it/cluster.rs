//! Several Portcullis processes sharing one PostgreSQL database, as a cluster behind a
//! load balancer without sticky sessions runs: a login crosses nodes, sessions, refreshes,
//! logouts, brute-force counts, key rotations and admin changes reach every node; a node
//! killed mid-write loses nothing it acknowledged; the database going away turns nodes
//! DOWN (503, never a login redirect or a 500) and they recover by themselves. And
//! backups: taken under write load, restored, migrated from redb into PostgreSQL.
//!
//! Needs the test PostgreSQL server (`scripts/with-postgres.sh`, which `make test` runs
//! the suite under).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Api;
use crate::browser::{find_form, Browser};
use crate::gateway::{login_through_gateway, SESSION_ROUTE};
use crate::harness::{run_to_end, temp_dir, test_ca, write_config, Options, TestServer};
use crate::proxy::echo_upstream;

fn shared_database() -> String {
    portcullis::store::postgres::testing::fresh_database().url
}

/// A node on the database `url`, with `extra` configuration (after `[store]`).
fn node(url: &str, extra: &str) -> TestServer {
    TestServer::start_with(Options {
        extra_config: format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 6\nquery_timeout = \"2s\"\n{extra}"
        ),
        ..Default::default()
    })
}

/// Nodes started one after another (the first creates the master realm and admin).
fn nodes(url: &str, extra: &str, n: usize) -> Vec<TestServer> {
    (0..n).map(|_| node(url, extra)).collect()
}

/// A child process stopped when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx in front of `nodes`, round robin, no stickiness.
fn balancer(nodes: &[&TestServer]) -> (Process, SocketAddr) {
    let dir = temp_dir();
    let d = dir.display();
    let port = free_port();
    let servers: String = nodes
        .iter()
        .map(|n| format!("    server {};\n", n.http))
        .collect();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream portcullis {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://portcullis;
      proxy_set_header Host $http_host;
      proxy_next_upstream off;
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("/usr/sbin/nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (installed by scripts/setup.sh)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = Process(child);
    wait_for_port(addr);
    (process, addr)
}

/// The path and query of a URL the server wrote (`http://app.test:PORT/x?y` → `/x?y`).
fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_else(|| "/".into()),
        None => url.to_string(),
    }
}

/// One browser whose requests the test sends to the node of its choice, each under the
/// balancer's host name (as a balancer without stickiness may send them). Its cookies
/// are kept for `127.0.0.1`, so every node gets them.
struct Hops {
    client: reqwest::blocking::Client,
    host: String,
}

impl Hops {
    fn new(host: &str) -> Hops {
        Hops {
            client: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            host: host.to_string(),
        }
    }

    fn send(
        &self,
        node: &TestServer,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> (u16, Option<String>, String) {
        let target = format!("http://{}{}", node.http, path_of(url));
        let request = match form {
            Some(fields) => self.client.post(target).form(fields),
            None => self.client.get(target),
        };
        let r = request
            .header("host", &self.host)
            .header("sec-fetch-site", "same-origin")
            .send()
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), location, r.text().unwrap())
    }

    fn get(&self, node: &TestServer, url: &str) -> (u16, Option<String>, String) {
        self.send(node, url, None)
    }
}

/// Realm `demo` (alice, client `app`) and the confidential client `gateway` allowed back
/// to `app.test:{port}`; returns (app's secret, alice's id).
fn demo_realm(api: &Api, port: u16) -> (String, String) {
    let (secret, alice) = api.setup_realm("demo");
    let r = api.post(
        "/admin/realms/demo/clients",
        &json!({"clientId": "gateway", "publicClient": false, "standardFlowEnabled": true,
                "redirectUris": [format!("http://app.test:{port}/_portcullis/callback")]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    (secret, alice)
}

/// An API client for `node` that names `host` in every request, as the nodes behind one
/// balancer are all asked under its name (tokens name their issuer by it).
fn api_at(node: &TestServer, host: &str) -> Api {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("host", host.parse().unwrap());
    let mut api = Api::new(node);
    api.client = reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    api
}

/// Like [`api_at`], with the token `api` signed in with (the same administrator on
/// another node, or on a restored copy of the store).
fn as_admin_at(node: &TestServer, host: &str, api: &Api) -> Api {
    let mut again = api_at(node, host);
    again.token = api.token.clone();
    again
}

/// Like [`api_at`], signed in as the master realm's administrator.
fn admin_at(node: &TestServer, host: &str) -> Api {
    let mut api = api_at(node, host);
    let r = api.token(
        "master",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", crate::harness::ADMIN.0),
            ("password", crate::harness::ADMIN.1),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    api.token = Some(r.body["access_token"].as_str().unwrap().to_string());
    api
}

fn password_grant(api: &Api, secret: &str) -> Value {
    let r = api.token(
        "demo",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
            ("scope", "openid"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn userinfo(api: &Api, token: &str) -> u16 {
    api.client
        .get(api.url("/realms/demo/protocol/openid-connect/userinfo"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn refresh(api: &Api, secret: &str, refresh_token: &str) -> crate::api::Reply {
    api.token(
        "demo",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ],
    )
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Wait until `check` holds, at most `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_login_crosses_nodes_and_a_logout_reaches_every_node() {
    let url = shared_database();
    let up = echo_upstream("app");
    let routes = format!(
        "[proxy]\nsession_check_interval = \"300ms\"\n{}",
        SESSION_ROUTE.replace("{UP}", &up.to_string())
    );
    let nodes = nodes(&url, &routes, 3);
    let (_lb, lb) = balancer(&nodes.iter().collect::<Vec<_>>());
    let host = format!("app.test:{}", lb.port());
    let api = admin_at(&nodes[0], &host);
    let (secret, alice) = demo_realm(&api, lb.port());

    // An admin change on node 1 is there on the others at once (with node 1's token).
    for n in &nodes[1..] {
        let other = as_admin_at(n, &host, &api);
        let found = other.get("/admin/realms/demo/users?username=alice&exact=true");
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(found.body[0]["id"], alice.as_str());
    }

    // A gateway login started on node 1, its login page on node 2, the password posted
    // to node 3, the callback on node 2; the app session then works on every node.
    let hops = Hops::new(&host);
    let (status, auth, _) = hops.get(&nodes[0], "/private");
    assert_eq!(status, 302);
    let (status, _, html) = hops.get(&nodes[1], &auth.unwrap());
    assert_eq!(status, 200, "{html}");
    let mut form = find_form(&html, "kc-form-login").expect("login form");
    form.set("username", "alice");
    form.set("password", "Alice-pass-1");
    let (status, callback, body) = hops.send(&nodes[2], &form.action, Some(&form.fields));
    assert_eq!(status, 302, "{body}");
    let (status, back, body) = hops.get(&nodes[1], &callback.unwrap());
    assert_eq!(
        status, 302,
        "callback on another node than the start: {body}"
    );
    let back = back.unwrap();
    for n in &nodes {
        let (status, _, body) = hops.get(n, &back);
        assert_eq!(status, 200, "the app session on {}: {body}", n.http);
        let seen: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            seen["headers"]["x-forwarded-preferred-username"], "alice",
            "{body}"
        );
    }

    // Through the balancer (each request to the next node), the whole login just works.
    let b = Browser::for_host_at("app.test", lb);
    let back = login_through_gateway(&b, "/private");
    for _ in 0..6 {
        assert_eq!(b.get(&back).0, 200);
    }

    // Tokens from node 1, refreshed on node 3, accepted on node 2.
    let tokens = password_grant(&api, &secret);
    let third = api_at(&nodes[2], &host);
    let refreshed = refresh(&third, &secret, tokens["refresh_token"].as_str().unwrap());
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let access = refreshed.body["access_token"].as_str().unwrap().to_string();
    let second = api_at(&nodes[1], &host);
    assert_eq!(userinfo(&second, &access), 200);

    // Keys rotated on node 1: node 2 signs with the new key at once, and node 3 accepts
    // both the new tokens and the old.
    let old_kid = kid_of(&access);
    let r = api.post("/admin/realms/demo/keys", &json!({"algorithm": "RS256"}));
    assert!(r.status < 300, "{}", r.text);
    let fresh = password_grant(&second, &secret);
    let new_access = fresh["access_token"].as_str().unwrap();
    assert_ne!(
        kid_of(new_access),
        old_kid,
        "node 2 signs with the rotated key"
    );
    assert_eq!(userinfo(&third, new_access), 200);
    assert_eq!(userinfo(&third, &access), 200, "old tokens stay valid");

    // Sign-out on node 1: nodes 2 and 3 refuse the cookie within the check interval.
    let (status, _, body) = hops.get(&nodes[0], "/_portcullis/sign_out");
    assert_eq!(status, 200, "{body}");
    for n in &nodes[1..] {
        eventually(
            Duration::from_secs(5),
            "a signed-out session refused",
            || hops.get(n, &back).0 == 302,
        );
    }
}

#[test]
fn brute_force_is_counted_across_nodes() {
    let url = shared_database();
    let nodes = nodes(&url, "", 3);
    let api = Api::admin(&nodes[0]);
    let (secret, alice) = api.setup_realm("demo");
    let r = api.put(
        "/admin/realms/demo",
        &json!({"bruteForceProtected": true, "failureFactor": 3, "waitIncrementSeconds": 600,
                "quickLoginCheckMilliSeconds": 1}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let grant = |n: &TestServer, password: &str| {
        Api::new(n)
            .token(
                "demo",
                &[
                    ("grant_type", "password"),
                    ("client_id", "app"),
                    ("client_secret", secret.as_str()),
                    ("username", "alice"),
                    ("password", password),
                ],
            )
            .status
    };
    // One wrong password on each node: three failures in all.
    for n in &nodes {
        assert_eq!(grant(n, "wrong"), 401);
        // Not a "quick" failure (Keycloak's quickLoginCheckMilliSeconds).
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in &nodes {
        assert_eq!(
            grant(n, "Alice-pass-1"),
            401,
            "locked on every node, even with the right password"
        );
    }
    let status = api.get(&format!(
        "/admin/realms/demo/attack-detection/brute-force/users/{alice}"
    ));
    assert_eq!(status.body["numFailures"], 3, "{}", status.text);
}

#[test]
fn a_node_killed_during_writes_loses_no_acknowledged_write() {
    let url = shared_database();
    let nodes = nodes(&url, "", 3);
    let host = "localhost:4000";
    let api = admin_at(&nodes[0], host);
    let (secret, _) = api.setup_realm("demo");
    let token = api.token.clone();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let logins = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let base = format!("http://{}", n.http);
        let (token, acknowledged, logins, stop, secret) = (
            token.clone(),
            acknowledged.clone(),
            logins.clone(),
            stop.clone(),
            secret.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("host", host.parse().unwrap());
            let client = reqwest::blocking::Client::builder()
                .default_headers(headers)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{i}-{k}");
                k += 1;
                let created = client
                    .post(format!("{base}/admin/realms/demo/users"))
                    .bearer_auth(token.as_deref().unwrap())
                    .json(&json!({"username": name, "enabled": true}))
                    .send();
                if let Ok(r) = created {
                    if r.status().as_u16() == 201 {
                        acknowledged.lock().unwrap().push(name);
                    }
                }
                let login = client
                    .post(format!("{base}/realms/demo/protocol/openid-connect/token"))
                    .form(&[
                        ("grant_type", "password"),
                        ("client_id", "app"),
                        ("client_secret", secret.as_str()),
                        ("username", "alice"),
                        ("password", "Alice-pass-1"),
                    ])
                    .send();
                if login.is_ok_and(|r| r.status().as_u16() == 200) {
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut nodes = nodes;
    let killed = nodes.remove(1);
    killed.kill();
    let logins_at_kill = logins.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        logins.load(Ordering::Relaxed) > logins_at_kill,
        "the other nodes kept serving logins"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 10,
        "writes happened: {}",
        acknowledged.len()
    );
    let survivor = as_admin_at(&nodes[1], host, &api);
    let count = survivor.get("/admin/realms/demo/users/count");
    assert_eq!(count.status, 200, "{}", count.text);
    let users = survivor.get("/admin/realms/demo/users?max=100000&briefRepresentation=true");
    let names: std::collections::HashSet<String> = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    for name in &acknowledged {
        assert!(names.contains(name), "acknowledged {name} was lost");
    }
    assert_eq!(count.body.as_u64().unwrap() as usize, names.len());
}

/// A PostgreSQL server of this test's own, which it stops and starts.
struct OwnPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        OwnPostgres::start_with(false)
    }

    /// A server that takes TLS connections only (a certificate for 127.0.0.1 signed by
    /// the CA in `ca.pem`); the Unix socket stays open for the test's own queries.
    fn start_tls() -> OwnPostgres {
        OwnPostgres::start_with(true)
    }

    fn start_with(tls: bool) -> OwnPostgres {
        let pg_ctl = PathBuf::from(
            std::env::var("PORTCULLIS_TEST_PG_CTL")
                .expect("PORTCULLIS_TEST_PG_CTL (scripts/with-postgres.sh)"),
        );
        let bin = pg_ctl.parent().unwrap().to_path_buf();
        let dir = temp_dir();
        let port = free_port();
        let db = OwnPostgres { dir, bin, port };
        if db.as_postgres() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&db.dir)
                .status()
                .unwrap();
        }
        let data = db.dir.join("pg");
        assert!(db
            .run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync"
                ]
            )
            .success());
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
            db.dir.display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        if tls {
            let (_, cert, key) = test_ca(&db.dir, &["127.0.0.1"]);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if db.as_postgres() {
                Command::new("chown")
                    .arg("postgres")
                    .args([&cert, &key])
                    .status()
                    .unwrap();
            }
            existing.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert.display(),
                key.display()
            ));
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
            )
            .unwrap();
        }
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        db.up();
        db
    }

    fn as_postgres(&self) -> bool {
        std::env::var("PORTCULLIS_TEST_PG_AS").is_ok_and(|u| u == "postgres")
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::ExitStatus {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    fn up(&self) {
        let data = self.dir.join("pg");
        let log = self.dir.join("pg.log");
        assert!(self
            .run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start"
                ]
            )
            .success());
    }

    fn down(&self) {
        let data = self.dir.join("pg");
        assert!(self
            .run(
                "pg_ctl",
                &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"]
            )
            .success());
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server over its Unix socket (libpq key-value form).
    fn socket_url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.display(),
            self.port
        )
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("pg");
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

fn status_of(node: &TestServer, path: &str, token: Option<&str>) -> u16 {
    let mut r = node.client().get(format!("http://{}{path}", node.http));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn the_database_going_away_turns_nodes_down_and_they_recover_alone() {
    let db = OwnPostgres::start();
    let up = echo_upstream("app");
    // Session checks are trusted for 30 s: a signed-in user keeps working meanwhile.
    let routes = format!(
        "[proxy]\nsession_check_interval = \"30s\"\n{}",
        SESSION_ROUTE.replace("{UP}", &up.to_string())
    );
    let nodes = nodes(&db.url(), &routes, 2);
    let (_lb, lb) = balancer(&[&nodes[0]]);
    let api = Api::admin(&nodes[0]);
    demo_realm(&api, lb.port());
    let b = Browser::for_host_at("app.test", lb);
    let back = login_through_gateway(&b, "/private");
    assert_eq!(b.get(&back).0, 200);
    for n in &nodes {
        assert_eq!(status_of(n, "/health/ready", None), 200);
    }

    db.down();
    let started = Instant::now();
    for n in &nodes {
        eventually(Duration::from_secs(10), "DOWN without the database", || {
            status_of(n, "/health/ready", None) == 503
        });
        assert_eq!(
            status_of(n, "/health/live", None),
            200,
            "alive all the same"
        );
    }
    let admin = status_of(&nodes[0], "/admin/realms/demo/users", api.token.as_deref());
    assert_eq!(admin, 503, "the admin API says unavailable, not 500");
    assert_eq!(
        b.get(&back).0,
        200,
        "a checked session keeps serving for its interval"
    );
    // A session this node has not checked yet cannot be checked: 503, not a login
    // redirect (which would send a signed-in user to a login page that cannot work).
    use reqwest::cookie::CookieStore;
    let cookies = b
        .jar
        .cookies(&b.base.parse().unwrap())
        .map(|c| c.to_str().unwrap().to_string())
        .unwrap_or_default();
    let unchecked = nodes[1]
        .client()
        .get(format!("http://{}{}", nodes[1].http, path_of(&back)))
        .header("host", format!("app.test:{}", lb.port()))
        .header("cookie", cookies)
        .send()
        .unwrap();
    assert_eq!(unchecked.status().as_u16(), 503);
    // A stranger is sent to the login, which says it is unavailable.
    let stranger = Browser::for_host_at("app.test", lb);
    let (status, login, _) = stranger.get("/private");
    assert_eq!(status, 302);
    assert_eq!(stranger.get(&login.unwrap()).0, 503);
    let metrics = nodes[0]
        .client()
        .get(format!("http://{}/metrics", nodes[0].http))
        .send()
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().unwrap();
    assert!(text.contains("portcullis_store_up 0"), "{text}");
    let away = Duration::from_secs(10).saturating_sub(started.elapsed());
    std::thread::sleep(away);

    db.up();
    for n in &nodes {
        eventually(
            Duration::from_secs(30),
            "UP once the database is back",
            || status_of(n, "/health/ready", None) == 200,
        );
    }
    let api = Api::admin(&nodes[1]);
    assert_eq!(api.get("/admin/realms/demo/users").status, 200);
    let again = Browser::for_host_at("app.test", lb);
    let back = login_through_gateway(&again, "/private");
    assert_eq!(again.get(&back).0, 200);
}

#[test]
fn a_node_reaches_postgres_over_verified_tls() {
    let db = OwnPostgres::start_tls();
    let ca = db.dir.join("ca.pem");
    let url = format!("{}?sslmode=require", db.url());
    // A certificate the node cannot trust is refused, however `sslmode` reads in libpq.
    let dir = temp_dir();
    let config = write_config(
        &dir,
        &format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nquery_timeout = \"2s\"\n"),
    );
    let (status, out, err) =
        run_to_end(&["serve", "--config", config.to_str().unwrap()], &dir, None);
    assert!(
        !status.success(),
        "started on an untrusted certificate: {out}{err}"
    );
    assert!(
        err.contains("certificate"),
        "the error names the cause: {err}"
    );

    // With the CA the node serves, over TLS (the server refuses anything else on TCP).
    let n = node(&url, &format!("ca_file = \"{}\"\n", ca.display()));
    assert_eq!(status_of(&n, "/health/ready", None), 200);
    let api = Api::admin(&n);
    assert_eq!(
        api.post(
            "/admin/realms",
            &json!({"realm": "over-tls", "enabled": true})
        )
        .status,
        201
    );
    assert_eq!(api.get("/admin/realms/over-tls").status, 200);
    let sessions = portcullis::store::postgres::testing::query(
        &db.socket_url(),
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL",
    );
    assert!(!sessions.is_empty(), "the node's connections are there");
    for session in &sessions {
        assert_eq!(
            session[0], "t",
            "every TCP connection is encrypted: {sessions:?}"
        );
        assert!(session[1].starts_with("TLSv1."), "{sessions:?}");
    }
}

#[test]
fn a_queued_mail_outlives_the_node_that_queued_it() {
    use crate::mail::{closed_port, mail_realm_on, request_reset, SmtpSink};
    let url = shared_database();
    let mut nodes = nodes(&url, "", 2);
    let port = closed_port();
    mail_realm_on(&nodes[0], port);
    request_reset(&nodes[0], "mail", "alice");
    // Node 1 tried at once, found no SMTP server and queued the retry; then it dies.
    std::thread::sleep(Duration::from_millis(300));
    nodes.remove(0).kill();
    let sink = SmtpSink::start_on(port);
    let mail = sink.mail(0);
    assert!(mail.contains("alice@example.com"), "{mail}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.count(), 1, "node 2 sent it, once");
    let queued =
        portcullis::store::postgres::testing::query(&url, "SELECT count(*) FROM kv_mail_queue");
    assert_eq!(queued, [["0"]], "and took it off the queue");
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("portcullis.toml");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--config", config.to_str().unwrap()]);
    let (status, out, err) = run_to_end(&full, dir, None);
    assert!(status.success(), "portcullis {args:?}: {out}{err}");
    out
}

/// A backup taken by `portcullis backup` while a writer adds users through the running
/// server (redb: through the control socket) is one snapshot: restored into a new data
/// directory, the server serves the first k users and no later one, alice's session
/// (refresh token) and the signing keys (her old access token) as they were.
#[test]
fn a_backup_under_write_load_restores_the_same_store() {
    let server = TestServer::start_with(Options {
        extra_config: "[store]\nbackend = \"redb\"\n".into(),
        ..Default::default()
    });
    // Both servers are asked under one name, as a restored server takes the old one's.
    let host = "localhost:4000";
    let api = admin_at(&server, host);
    let (secret, _) = api.setup_realm("demo");
    let tokens = password_grant(&api, &secret);
    let writer = {
        let writer = as_admin_at(&server, host, &api);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut k = 0;
            while !flag.load(Ordering::Relaxed) {
                let r = writer.post(
                    "/admin/realms/demo/users",
                    &json!({"username": format!("load-{k:05}"), "enabled": true}),
                );
                assert_eq!(r.status, 201, "{}", r.text);
                k += 1;
            }
            k
        });
        (stop, handle)
    };
    std::thread::sleep(Duration::from_millis(500));
    let backup_dir = temp_dir();
    let file = backup_dir.join("portcullis.backup");
    let out = cli(&server.dir, &["backup", "--to", file.to_str().unwrap()]);
    assert!(out.contains("entries"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    writer.0.store(true, Ordering::Relaxed);
    let written = writer.1.join().unwrap();

    // A new data directory (same certificates and configuration otherwise).
    let restored_dir = temp_dir();
    write_config(&restored_dir, "[store]\nbackend = \"redb\"\n");
    cli(
        &restored_dir,
        &["restore", "--from", file.to_str().unwrap()],
    );
    let restored = TestServer::start_with(Options {
        extra_config: "[store]\nbackend = \"redb\"\n".into(),
        dir: Some(restored_dir),
        ..Default::default()
    });
    let again = as_admin_at(&restored, host, &api);
    let users = again.get("/admin/realms/demo/users?search=load-&max=100000");
    assert_eq!(
        users.status, 200,
        "the admin's token (same keys) works: {}",
        users.text
    );
    let mut names: Vec<String> = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let k = names.len();
    assert!(
        k > 0 && k < written,
        "{k} of {written}: the backup ran while writing"
    );
    let expected: Vec<String> = (0..k).map(|i| format!("load-{i:05}")).collect();
    assert_eq!(
        names, expected,
        "one snapshot: the first k users, no later one"
    );
    assert_eq!(
        userinfo(&again, tokens["access_token"].as_str().unwrap()),
        200,
        "the same signing keys"
    );
    let refreshed = refresh(&again, &secret, tokens["refresh_token"].as_str().unwrap());
    assert_eq!(
        refreshed.status, 200,
        "the same session: {}",
        refreshed.text
    );
    // Into a store that has data, a restore is refused (the running server holds it).
    let (status, _, err) = run_to_end(
        &[
            "restore",
            "--from",
            file.to_str().unwrap(),
            "--config",
            restored.dir.join("portcullis.toml").to_str().unwrap(),
        ],
        &restored.dir,
        None,
    );
    assert!(!status.success(), "{err}");
}

/// `migrate-store` moves a redb data directory into PostgreSQL: the server started on
/// the database serves the same users, sessions and keys.
/// The JDBC URL a Keycloak administrator would give for the database at `url`.
fn jdbc_url(url: &url::Url) -> String {
    format!(
        "jdbc:postgresql://{}:{}{}",
        url.host_str().unwrap(),
        url.port().unwrap(),
        url.path()
    )
}

/// `kc.sh` in `dir`: a link to the binary, which answers as Keycloak's script.
fn kc_sh_in(dir: &Path) -> PathBuf {
    let kc = dir.join("kc.sh");
    std::os::unix::fs::symlink(crate::harness::BINARY, &kc).unwrap();
    kc
}

#[test]
fn keycloak_database_options_put_nodes_on_one_database() {
    let url = url::Url::parse(&shared_database()).unwrap();
    let jdbc = jdbc_url(&url);
    portcullis::store::postgres::testing::query(url.as_str(), "CREATE SCHEMA iam");
    // As a Keycloak administrator starts a node: kc.sh and its --db options...
    let kc = kc_sh_in(&temp_dir());
    let first = TestServer::start_with(Options {
        command: Some((
            kc,
            [
                "start",
                "--db",
                "postgres",
                "--db-url",
                &jdbc,
                "--db-username",
                url.username(),
                "--db-schema",
                "iam",
            ]
            .map(String::from)
            .to_vec(),
        )),
        ..Default::default()
    });
    // ...or with Keycloak's environment variables.
    let mut env = Options::default().env;
    env.extend(
        [
            ("KC_DB", "postgres"),
            ("KC_DB_URL_HOST", url.host_str().unwrap()),
            ("KC_DB_URL_PORT", &url.port().unwrap().to_string()),
            ("KC_DB_URL_DATABASE", url.path().trim_start_matches('/')),
            ("KC_DB_USERNAME", url.username()),
            ("KC_DB_SCHEMA", "iam"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let second = TestServer::start_with(Options {
        env,
        ..Default::default()
    });
    let host = "localhost:4000";
    let api = admin_at(&first, host);
    assert_eq!(
        api.post(
            "/admin/realms",
            &json!({"realm": "shared", "enabled": true})
        )
        .status,
        201
    );
    let other = as_admin_at(&second, host, &api);
    assert_eq!(
        other.get("/admin/realms/shared").status,
        200,
        "one database"
    );
    let placed = |schema: &str| {
        portcullis::store::postgres::testing::query(
            url.as_str(),
            &format!(
                "SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}' AND tablename LIKE 'kv\\_%'"
            ),
        )[0][0]
            .parse::<usize>()
            .unwrap()
    };
    assert!(placed("iam") > 0, "the tables are in --db-schema");
    assert_eq!(placed("public"), 0);

    // A database we cannot use is refused, naming the option, never silently ignored.
    let dir = temp_dir();
    let config = write_config(&dir, "");
    let (status, _, err) = run_to_end(
        &[
            "serve",
            "--db",
            "mysql",
            "--config",
            config.to_str().unwrap(),
        ],
        &dir,
        None,
    );
    assert!(!status.success());
    assert!(err.contains("--db") && err.contains("mysql"), "{err}");
}

/// `node`, on a copy of the store `api` was talking to, serves the same store: the admin's
/// token (the same signing keys), the user `alice` of realm `demo`, her access token and
/// her refresh token (the same session), all asked under the name `host`.
fn serves_the_same_store(
    api: &Api,
    node: &TestServer,
    host: &str,
    (alice, secret, tokens): (&str, &str, &Value),
) {
    let again = as_admin_at(node, host, api);
    let user = again.get(&format!("/admin/realms/demo/users/{alice}"));
    assert_eq!(user.status, 200, "the same keys sign: {}", user.text);
    assert_eq!(user.body["username"], "alice");
    assert_eq!(
        userinfo(&again, tokens["access_token"].as_str().unwrap()),
        200,
        "the same session"
    );
    let refreshed = refresh(&again, secret, tokens["refresh_token"].as_str().unwrap());
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

/// As a Keycloak administrator exports and imports against a running cluster: `kc.sh
/// export` / `import` on another machine, pointed at the cluster's database with the
/// `--db` options (no server, no data directory of the nodes), while the nodes serve.
#[test]
fn kc_sh_export_and_import_reach_a_serving_cluster_through_its_database() {
    let url = url::Url::parse(&shared_database()).unwrap();
    let serving = node(url.as_str(), "");
    let host = "localhost:4000";
    let api = admin_at(&serving, host);
    api.setup_realm("demo");
    let jdbc = jdbc_url(&url);
    let elsewhere = temp_dir();
    let kc = kc_sh_in(&elsewhere);
    let config = write_config(&elsewhere, "[store]\nbackend = \"redb\"\n");
    let kc_sh = |args: &[&str]| {
        let out = Command::new(&kc)
            .args(args)
            .args([
                "--db",
                "postgres",
                "--db-url",
                &jdbc,
                "--db-username",
                url.username(),
            ])
            .args(["--config", config.to_str().unwrap()])
            .current_dir(&elsewhere)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kc.sh {args:?}: {text}");
    };
    let out = elsewhere.join("export");
    kc_sh(&[
        "export",
        "--dir",
        out.to_str().unwrap(),
        "--realm",
        "demo",
        "--users",
        "realm_file",
    ]);
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("demo-realm.json")).unwrap())
            .unwrap();
    assert_eq!(exported["realm"], "demo");
    let users = exported["users"]
        .as_array()
        .expect("users in the realm file");
    assert!(users.iter().any(|u| u["username"] == "alice"), "{users:?}");

    let file = elsewhere.join("imported-realm.json");
    std::fs::write(
        &file,
        r#"{"realm": "imported", "enabled": true, "users": [{"username": "bob", "enabled": true}]}"#,
    )
    .unwrap();
    kc_sh(&["import", "--file", file.to_str().unwrap()]);
    let seen = as_admin_at(&serving, host, &api);
    let bob = seen.get("/admin/realms/imported/users?username=bob&exact=true");
    assert_eq!(
        bob.status, 200,
        "the serving node sees the import: {}",
        bob.text
    );
    assert_eq!(bob.body.as_array().map(Vec::len), Some(1), "{}", bob.text);
    assert!(
        !elsewhere.join("data").exists(),
        "nothing was written to a local store"
    );
}

/// A client program of the test PostgreSQL server (`pg_dump`, `pg_restore`).
fn pg_program(name: &str) -> PathBuf {
    let pg_ctl = std::env::var("PORTCULLIS_TEST_PG_CTL")
        .expect("PORTCULLIS_TEST_PG_CTL (scripts/with-postgres.sh)");
    Path::new(&pg_ctl).with_file_name(name)
}

#[test]
fn a_pg_dump_taken_while_serving_restores_the_same_store() {
    let url = shared_database();
    let first = node(&url, "");
    let host = "localhost:4000";
    let api = admin_at(&first, host);
    let (secret, alice) = api.setup_realm("demo");
    let tokens = password_grant(&api, &secret);
    // As the README says: a custom-format dump of the live database, restored into an
    // empty one.
    let dump = temp_dir().join("portcullis.dump");
    let status = Command::new(pg_program("pg_dump"))
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(format!("--dbname={url}"))
        .status()
        .unwrap();
    assert!(status.success(), "pg_dump");
    let restored = portcullis::store::postgres::testing::fresh_database().url;
    let status = Command::new(pg_program("pg_restore"))
        .args(["--no-owner", "--exit-on-error"])
        .arg(format!("--dbname={restored}"))
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success(), "pg_restore");
    drop(first);

    let second = node(&restored, "");
    serves_the_same_store(&api, &second, host, (&alice, &secret, &tokens));
    let migrations = portcullis::store::postgres::testing::query(
        &restored,
        "SELECT max(version) FROM portcullis_migrations",
    );
    assert_ne!(migrations, [[""]], "the schema's versions came along");
}

#[test]
fn a_redb_store_migrates_into_postgres() {
    let server = TestServer::start_with(Options {
        extra_config: "[store]\nbackend = \"redb\"\n".into(),
        ..Default::default()
    });
    let host = "localhost:4000";
    let api = admin_at(&server, host);
    let (secret, alice) = api.setup_realm("demo");
    let tokens = password_grant(&api, &secret);
    let dir = server.stop();
    let url = shared_database();
    let data = dir.join("data");
    let (status, out, err) = run_to_end(
        &[
            "migrate-store",
            "--from",
            &format!("redb:{}", data.display()),
            "--to",
            &format!("postgres:{url}"),
        ],
        &dir,
        None,
    );
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("copied"), "{out}");
    assert!(
        !out.contains("postgres://"),
        "the URL (and its password) is not printed: {out}"
    );
    let pg = node(&url, "");
    serves_the_same_store(&api, &pg, host, (&alice, &secret, &tokens));
    // Only into an empty database.
    let (status, _, err) = run_to_end(
        &[
            "migrate-store",
            "--from",
            &format!("redb:{}", data.display()),
            "--to",
            &format!("postgres:{url}"),
        ],
        &dir,
        None,
    );
    assert!(!status.success());
    assert!(err.contains("not empty"), "{err}");
}
