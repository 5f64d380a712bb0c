//! Forward-auth with the real proxies users put in front: Debian's nginx (`auth_request`)
//! and Caddy (`forward_auth`) ask Portcullis about every request, send browsers through its
//! login and pass its identity headers to an upstream app.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::Browser;
use crate::gateway::{echo_json, gateway_server_with, login_through_gateway};
use crate::harness::temp_dir;
use crate::proxy::{echo_upstream, raw};

/// A child process killed (by its id) when the test ends.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(addr: SocketAddr, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "proxy exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "proxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nginx(port: u16, portcullis: SocketAddr, upstream: SocketAddr) -> Proxy {
    let dir = temp_dir();
    let d = dir.display();
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
  server {{
    listen 127.0.0.1:{port};
    location = /_auth {{
      internal;
      proxy_pass http://{portcullis}/_portcullis/forward-auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    location /_portcullis/ {{
      proxy_pass http://{portcullis};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
    location /realms/ {{
      proxy_pass http://{portcullis};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
    location / {{
      auth_request /_auth;
      auth_request_set $user $upstream_http_x_forwarded_user;
      auth_request_set $username $upstream_http_x_forwarded_preferred_username;
      auth_request_set $assertion $upstream_http_x_portcullis_jwt_assertion;
      proxy_set_header X-Forwarded-User $user;
      proxy_set_header X-Forwarded-Preferred-Username $username;
      proxy_set_header X-Portcullis-Jwt-Assertion $assertion;
      error_page 401 = @login;
      proxy_pass http://{upstream};
    }}
    location @login {{
      return 302 /_portcullis/start?rd=$request_uri;
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new("/usr/sbin/nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (installed by scripts/setup.sh)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(addr, &mut child, &dir.join("error.log"));
    Proxy { child, addr }
}

fn caddy(port: u16, portcullis: SocketAddr, upstream: SocketAddr) -> Proxy {
    let dir = temp_dir();
    let conf = format!(
        r#"{{
  admin off
  auto_https off
}}
http://app.test:{port} {{
  bind 127.0.0.1
  handle /_portcullis/* {{
    reverse_proxy {portcullis}
  }}
  handle /realms/* {{
    reverse_proxy {portcullis}
  }}
  handle {{
    forward_auth {portcullis} {{
      uri /_portcullis/forward-auth
      copy_headers X-Forwarded-User X-Forwarded-Preferred-Username X-Portcullis-Jwt-Assertion
    }}
    reverse_proxy {upstream}
  }}
}}
"#
    );
    std::fs::write(dir.join("Caddyfile"), conf).unwrap();
    let log = dir.join("caddy.log");
    let mut child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy (installed by scripts/setup.sh)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(addr, &mut child, &log);
    Proxy { child, addr }
}

/// The forward-auth route: no upstream of its own, the policy of the app behind the proxy.
const ROUTES: &str = r#"
[[route]]
host = "app.test"
auth = "session_or_bearer"
realm = "demo"
client = "gateway"
public_paths = ["/public"]

[[route]]
host = "app.test"
path = "/admin"
auth = "session"
realm = "demo"
client = "gateway"
realm_roles = ["admin"]
"#;

fn check_proxy_in_front(front: &Proxy, alice: &str) {
    let spoofed = [("X-Forwarded-User", "mallory")];
    let b = Browser::for_host_at("app.test", front.addr);
    // Anonymous: through the login and back to the exact URL.
    let back = login_through_gateway(&b, "/private/page?x=1");
    assert_eq!(back, "/private/page?x=1");
    let (status, echo) = echo_json(&b, &back, &spoofed);
    assert_eq!(status, 200, "{echo}");
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-user"], alice, "{h}");
    assert_eq!(h["x-forwarded-preferred-username"], "alice");
    assert!(h["x-portcullis-jwt-assertion"].as_str().unwrap().len() > 100);
    assert_eq!(echo["target"], "/private/page?x=1");
    // Policy: /admin needs the admin role.
    let (status, _, _) = b.get("/admin/x");
    assert_eq!(status, 403);
    // Public paths pass anonymously.
    let anonymous = Browser::for_host_at("app.test", front.addr);
    let (status, echo) = echo_json(&anonymous, "/public/x", &spoofed);
    assert_eq!(status, 200);
    let user = echo["headers"].get("x-forwarded-user");
    assert!(
        user.is_none_or(|u| u == ""),
        "a spoofed identity reached the app: {echo}"
    );
    // Path tricks are judged after normalisation.
    let (status, location, _) = anonymous.get("/public/%2e%2e/private");
    assert_eq!(
        status, 302,
        "an encoded dot segment must not reach /private anonymously"
    );
    let location = location.unwrap();
    assert!(
        location.contains("/_portcullis/start")
            || location.contains("/protocol/openid-connect/auth"),
        "to the login: {location}"
    );
}

#[test]
fn nginx_auth_request_in_front_of_an_app() {
    let nginx_port = free_port();
    let (server, _api, _, alice) = gateway_server_with(
        "trusted_proxies = [\"127.0.0.1/32\"]",
        ROUTES,
        &[format!("http://app.test:{nginx_port}/_portcullis/callback")],
    );
    let app = echo_upstream("behind-nginx");
    let front = nginx(nginx_port, server.http, app);
    check_proxy_in_front(&front, &alice);
    // nginx's error_page turns every 401 of the auth call into the login redirect.
    let (status, _) = raw(
        front.addr,
        "GET",
        "/private",
        &[("host", "app.test"), ("accept", "application/json")],
    );
    assert_eq!(status, 302, "nginx turns every 401 into the login redirect");
}

#[test]
fn caddy_forward_auth_in_front_of_an_app() {
    let caddy_port = free_port();
    let (server, api, secret, alice) = gateway_server_with(
        "trusted_proxies = [\"127.0.0.1/32\"]",
        ROUTES,
        &[format!("http://app.test:{caddy_port}/_portcullis/callback")],
    );
    let app = echo_upstream("behind-caddy");
    let front = caddy(caddy_port, server.http, app);
    check_proxy_in_front(&front, &alice);
    // A bearer token passes too (session_or_bearer); API clients without one get 401.
    let tokens = api.alice_tokens("demo", &secret, "openid");
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (status, body) = raw(
        front.addr,
        "GET",
        "/api/x",
        &[
            ("host", &format!("app.test:{caddy_port}")),
            ("authorization", &bearer),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-user"], alice.as_str());
    let (status, _) = raw(
        front.addr,
        "GET",
        "/api/x",
        &[
            ("host", &format!("app.test:{caddy_port}")),
            ("accept", "application/json"),
        ],
    );
    assert_eq!(status, 401);
}

#[test]
fn forward_auth_answers_only_trusted_proxies() {
    let (server, _api, _, _) = gateway_server_with("", ROUTES, &[]);
    // No trusted proxies configured: the headers describing the original request could be
    // anyone's, so the endpoint refuses.
    let (status, body) = raw(
        server.http,
        "GET",
        "/_portcullis/forward-auth",
        &[("x-original-url", "http://app.test/public/x")],
    );
    assert_eq!(status, 403, "{body}");
}
