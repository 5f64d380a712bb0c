//! Processes the load benches start and drive: nginx, the release server, an admin client,
//! the realm they share, a gateway login, resident memory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN: (&str, &str) = ("admin", "bench-admin-password-1");

/// A process we started; stopped by its id on drop: SIGTERM (nginx's master then stops its
/// workers), SIGKILL if it is still there after 5 s.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait (the store is closed cleanly).
    pub fn stop(self) {
        drop(self);
    }
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn wait_port(addr: SocketAddr, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(s)) = proc.child.try_wait() {
            panic!("{} exited: {s}", proc.name);
        }
        assert!(Instant::now() < deadline, "{} did not start", proc.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx (scripts/setup.sh installs it)")
}

/// nginx with `server_blocks` inside `http {}`.
pub fn nginx(
    dir: &Path,
    name: &'static str,
    workers: usize,
    server_blocks: &str,
    port: SocketAddr,
) -> Proc {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let dd = d.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes {workers};\npid {dd}/nginx.pid;\n\
         error_log {dd}/error.log warn;\nevents {{ worker_connections 16384; }}\n\
         http {{\n access_log off;\n keepalive_requests 100000;\n client_body_temp_path {dd}/body;\n\
         proxy_temp_path {dd}/proxy;\n fastcgi_temp_path {dd}/fcgi;\n uwsgi_temp_path {dd}/uwsgi;\n\
         scgi_temp_path {dd}/scgi;\n{server_blocks}\n}}\n"
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-p")
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut proc = Proc { child, name };
    wait_port(port, &mut proc);
    proc
}

/// An nginx `server` block proxying `listen` to the `upstream app` block it also defines
/// (kept-alive upstream connections, as a production proxy has them), plus `more` inside
/// `http {}`.
pub fn nginx_proxy_blocks(listen: SocketAddr, upstream: SocketAddr, more: &str) -> String {
    format!(
        "upstream app {{ server {upstream}; keepalive 128; }}\n{more}\
         server {{ listen {listen} backlog=4096;\n location / {{ proxy_pass http://app; proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\"; }} }}\n"
    )
}

/// The fast upstream every proxy case forwards to: nginx (one worker) answering `200 ok`
/// from memory.
pub fn fast_upstream(dir: &Path) -> (Proc, SocketAddr) {
    let upstream = free_addr();
    let proc = nginx(
        dir,
        "upstream",
        1,
        &format!(
            "server {{ listen {upstream} backlog=4096; location / {{ return 200 \"ok\\n\"; }} }}"
        ),
        upstream,
    );
    (proc, upstream)
}

/// The release binary, with `extra` config; returns the process and its http address.
pub fn portcullis(dir: &Path, threads: usize, extra: &str) -> (Proc, SocketAddr, SocketAddr) {
    portcullis_with(dir, threads, "", extra)
}

/// [`portcullis`] with `server_keys` added to its `[server]` table.
pub fn portcullis_with(
    dir: &Path,
    threads: usize,
    server_keys: &str,
    extra: &str,
) -> (Proc, SocketAddr, SocketAddr) {
    let binary = std::env::var_os("PORTCULLIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")));
    portcullis_from(&binary, dir, threads, server_keys, extra)
}

/// [`portcullis_with`] running `binary` (another build of the server).
pub fn portcullis_from(
    binary: &Path,
    dir: &Path,
    threads: usize,
    server_keys: &str,
    extra: &str,
) -> (Proc, SocketAddr, SocketAddr) {
    portcullis_configured(binary, dir, threads, server_keys, "", extra)
}

/// [`portcullis`] with `store_keys` added to its `[store]` table (another backend).
pub fn portcullis_store(
    dir: &Path,
    threads: usize,
    store_keys: &str,
    extra: &str,
) -> (Proc, SocketAddr, SocketAddr) {
    let binary = std::env::var_os("PORTCULLIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")));
    portcullis_configured(&binary, dir, threads, "", store_keys, extra)
}

fn portcullis_configured(
    binary: &Path,
    dir: &Path,
    threads: usize,
    server_keys: &str,
    store_keys: &str,
    extra: &str,
) -> (Proc, SocketAddr, SocketAddr) {
    let http = free_addr();
    let https = free_addr();
    let conf = format!(
        "[server]\nhttp = \"{http}\"\nhttps = \"{https}\"\nthreads = {threads}\nshutdown_grace = \"0s\"\n{server_keys}\
         [store]\ndata_dir = \"{d}/data\"\n{store_keys}[tls]\ncerts_dir = \"{d}/certs\"\n[log]\nlevel = \"warn\"\n{extra}",
        d = dir.display()
    );
    std::fs::write(dir.join("portcullis.toml"), conf).unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(dir.join("portcullis.toml"))
        .env("PORTCULLIS_ADMIN", ADMIN.0)
        .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN.1)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start portcullis");
    let mut proc = Proc {
        child,
        name: "portcullis",
    };
    wait_port(http, &mut proc);
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("http://{http}/health/ready"))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "portcullis not ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    (proc, http, https)
}

/// `portcullis`, timed from the spawn to `/health/ready` = 200.
pub fn portcullis_timed(
    dir: &Path,
    threads: usize,
    extra: &str,
) -> (Proc, SocketAddr, SocketAddr, Duration) {
    let started = Instant::now();
    let (proc, http, https) = portcullis(dir, threads, extra);
    (proc, http, https, started.elapsed())
}

pub struct Admin {
    pub base: String,
    pub client: reqwest::blocking::Client,
    pub token: String,
}

impl Admin {
    pub fn new(http: SocketAddr) -> Admin {
        let client = reqwest::blocking::Client::new();
        let base = format!("http://{http}");
        let r: Value = client
            .post(format!(
                "{base}/realms/master/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN.0),
                ("password", ADMIN.1),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        Admin {
            base,
            client,
            token: r["access_token"].as_str().expect("admin token").to_string(),
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::blocking::Response {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r
    }

    pub fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

/// Realm `bench` with user alice (realm role `user`), a confidential client `svc` with a
/// service account, and the gateway's client. Returns svc's secret.
pub fn setup_realm(admin: &Admin, callback: &str) -> String {
    admin.post("/admin/realms", &json!({"realm": "bench", "enabled": true}));
    admin.post("/admin/realms/bench/roles", &json!({"name": "user"}));
    let r = admin.post(
        "/admin/realms/bench/users",
        &json!({"username": "alice", "enabled": true, "email": "alice@example.com",
                "credentials": [{"type": "password", "value": "Alice-pass-1", "temporary": false}]}),
    );
    let alice = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    admin.post(
        &format!("/admin/realms/bench/users/{alice}/role-mappings/realm"),
        &json!([{"name": "user"}]),
    );
    admin.post(
        "/admin/realms/bench/clients",
        &json!({"clientId": "gateway", "publicClient": false, "redirectUris": [callback]}),
    );
    admin.post(
        "/admin/realms/bench/clients",
        &json!({"clientId": "svc", "publicClient": false, "serviceAccountsEnabled": true,
                "directAccessGrantsEnabled": true, "attributes": {"access.token.signed.response.alg": "ES256"}}),
    );
    admin.post(
        "/admin/realms/bench/clients",
        &json!({"clientId": "svc-rs", "publicClient": false, "serviceAccountsEnabled": true,
                "secret": "bench-secret", "attributes": {"access.token.signed.response.alg": "RS256"}}),
    );
    let clients = admin.get("/admin/realms/bench/clients?clientId=svc");
    let id = clients[0]["id"].as_str().unwrap();
    admin.get(&format!("/admin/realms/bench/clients/{id}/client-secret"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A password grant for alice on the realm's `svc` client (as [`setup_realm`] made them):
/// the token response.
pub fn alice_password_grant(
    client: &reqwest::blocking::Client,
    token_url: &str,
    secret: &str,
) -> reqwest::Result<Value> {
    client
        .post(token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "svc"),
            ("client_secret", secret),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ])
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json::<Value>())
}

/// Log alice in through the gateway on `host`; returns the `Cookie` header value.
pub fn gateway_login(http: SocketAddr, host: &str) -> String {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::blocking::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, http)
        .build()
        .unwrap();
    let base = format!("http://{host}:{}", http.port());
    let r = client.get(format!("{base}/")).send().unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let html = client.get(&login).send().unwrap().text().unwrap();
    let form_at = html.find("id=\"kc-form-login\"").expect("login form");
    let form = &html[html[..form_at].rfind("<form").unwrap()..];
    let action = unescape(&attr(form, "action"));
    let action = if action.starts_with('/') {
        format!("{base}{action}")
    } else {
        action
    };
    let mut fields = vec![
        ("username".to_string(), "alice".to_string()),
        ("password".to_string(), "Alice-pass-1".to_string()),
    ];
    let form = &form[..form.find("</form>").unwrap()];
    for input in form.split("<input").skip(1) {
        if input.contains("type=\"hidden\"") {
            fields.push((attr(input, "name"), unescape(&attr(input, "value"))));
        }
    }
    let r = client.post(&action).form(&fields).send().unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    let r = client.get(&callback).send().unwrap();
    assert_eq!(r.status().as_u16(), 302, "gateway callback");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("portcullis="))
        .expect("session cookie");
    cookie.split(';').next().unwrap().to_string()
}

pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn attr(tag: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = tag.find(&key).map(|i| i + key.len()).unwrap_or(0);
    let end = tag[start..].find('"').map(|e| e + start).unwrap_or(start);
    tag[start..end].to_string()
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
