//! The side-by-side load harness: `make bench-load` (`cargo bench --bench load`).
//!
//! Starts, on loopback only, a fast upstream (Debian's nginx answering `200 ok`), nginx as a
//! plain reverse proxy in front of it, and Portcullis (release build) with an open route, a
//! route with session auth + policy + identity headers, and nginx `auth_request` calling
//! Portcullis' forward-auth; drives each with `wrk` for a bounded time, one after the other
//! in the same run, and prints one markdown table. Then: the token endpoint
//! (client_credentials, introspection) over HTTP, TLS handshakes per second (new and
//! resumed) and resident memory with 100,000 sessions.
//!
//! Every process it starts is killed by its id when the harness ends (or panics). Each
//! case runs `LOAD_SECONDS` (default 8) after a 1 s warm-up; the whole run stays well under
//! 10 minutes. Under `cargo test` it runs every case for 1 s as a smoke test that checks
//! each case answered without errors.
//!
//! Environment: `LOAD_SECONDS`, `LOAD_CONNECTIONS` (default 64), `PROXY_WORKERS` (default 1:
//! nginx workers = Portcullis threads), `LOAD_SESSIONS` (default 100000), `PORTCULLIS_BIN`
//! (another build of the server, e.g. an older commit's, to compare against this one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::procs::*;
use common::wrk::{parse_wrk, Run};

/// `wrk` against `url` with `headers` (and an optional Lua script).
fn wrk(
    url: &str,
    headers: &[String],
    seconds: u64,
    connections: usize,
    script: Option<&Path>,
) -> Run {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        "1",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url);
    let out = cmd.output().expect("wrk (scripts/setup.sh installs it)");
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// `wrk` with `threads` threads of one connection each (sequential per connection).
fn wrk_threads(url: &str, seconds: u64, threads: usize, script: &Path) -> Run {
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &threads.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk");
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Warm up for a second, then measure.
fn measure(
    url: &str,
    headers: &[String],
    seconds: u64,
    connections: usize,
    script: Option<&Path>,
) -> Run {
    wrk(url, headers, 1, connections, script);
    wrk(url, headers, seconds, connections, script)
}

/// npm's oidc-provider (tests/clients/oidc_provider_server.mjs) issuing JWT access tokens
/// with `alg`; returns the process and its token endpoint.
fn oidc_provider(alg: &str) -> (Proc, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Installs oidc-provider from tests/clients/package-lock.json (a no-op when current).
    let setup = Command::new("bash")
        .arg(root.join("scripts/setup-clients.sh"))
        .stdout(Stdio::null())
        .status()
        .expect("scripts/setup-clients.sh");
    assert!(setup.success(), "scripts/setup-clients.sh failed");
    let addr = free_addr();
    let script = root.join("tests/clients/oidc_provider_server.mjs");
    let child = Command::new("node")
        .arg(script)
        .env("PORT", addr.port().to_string())
        .env("ALG", alg)
        .env("CLIENT_SECRET", "bench-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (scripts/setup.sh) and oidc-provider (scripts/setup-clients.sh)");
    let mut proc = Proc {
        child,
        name: "oidc-provider",
    };
    wait_port(addr, &mut proc);
    (proc, format!("http://{addr}/token"))
}

/// A wrk script that POSTs `body` as a form.
fn form_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.body = \"{body}\"\n"
        ),
    )
    .unwrap();
    path
}

fn row(case: &str, run: &Run, baseline: Option<&Run>) -> String {
    let ratio = baseline
        .map(|b| format!("{:.2}x", run.rps / b.rps))
        .unwrap_or_else(|| "-".into());
    format!(
        "| {case} | {:.0} | {:.2} | {:.2} | {ratio} | {} |",
        run.rps, run.p50_ms, run.p99_ms, run.errors
    )
}

/// TLS handshakes per second from `tasks` concurrent clients for `seconds`: new sessions
/// every time, or resumed from the client's session cache; with the share of handshakes
/// that really were resumptions.
fn handshakes(addr: SocketAddr, seconds: u64, resumed: bool) -> (f64, f64) {
    use rustls::pki_types::ServerName;
    let tasks = 4;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let counts: Vec<_> = (0..tasks)
        .map(|_| {
            std::thread::spawn(move || {
                let mut config = portcullis::tls::probe_client_config().unwrap();
                if !resumed {
                    config.resumption = rustls::client::Resumption::disabled();
                }
                let config = Arc::new(config);
                let mut n = 0u64;
                let mut resumptions = 0u64;
                while Instant::now() < deadline {
                    let Ok(mut tcp) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let name = ServerName::try_from("localhost").unwrap();
                    let mut conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
                    let ok = conn.complete_io(&mut tcp).is_ok();
                    if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        resumptions += 1;
                    }
                    // Read the session ticket (TLS 1.3 sends it after the handshake).
                    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                    let _ = tls.write_all(b"GET /health/live HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
                    let mut reader = BufReader::new(tls);
                    let mut line = String::new();
                    let _ = reader.read_line(&mut line);
                    if ok && line.starts_with("HTTP/1.1 200") {
                        n += 1;
                    }
                }
                (n, resumptions)
            })
        })
        .collect();
    let (total, resumptions) = counts
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, b), (n, r)| (a + n, b + r));
    (
        total as f64 / seconds as f64,
        resumptions as f64 / (total.max(1)) as f64,
    )
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let env_num = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = if benchmarking {
        env_num("LOAD_SECONDS", 8)
    } else {
        1
    };
    let connections = env_num("LOAD_CONNECTIONS", 64) as usize;
    let workers = env_num("PROXY_WORKERS", 1) as usize;
    let sessions = if benchmarking {
        env_num("LOAD_SESSIONS", 100_000) as usize
    } else {
        1_000
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();

    let (_upstream, upstream) = fast_upstream(dir.path());

    // Portcullis: an open route and a session route with a policy, which nginx's
    // auth_request also asks through forward-auth (the app cookie is bound to its host).
    let pc_dir = dir.path().join("portcullis");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let routes = format!(
        "[proxy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         [[route]]\nhost = \"open.test\"\nupstream = \"http://{upstream}\"\n\
         [[route]]\nhost = \"auth.test\"\nupstream = \"http://{upstream}\"\nauth = \"session\"\n\
         realm = \"bench\"\nclient = \"gateway\"\nrealm_roles = [\"user\"]\n"
    );
    let (pc, http, https, first_start) = portcullis_timed(&pc_dir, workers, &routes);
    std::thread::sleep(Duration::from_millis(500));
    let fresh_rss = rss_mb(pc.pid());
    let admin = Admin::new(http);
    let secret = setup_realm(
        &admin,
        &format!("http://auth.test:{}/_portcullis/callback", http.port()),
    );
    let cookie = gateway_login(http, "auth.test");

    // nginx as a plain proxy, and nginx auth_request to Portcullis' forward-auth.
    let nginx_plain = free_addr();
    let nginx_fa = free_addr();
    let _nginx = nginx(
        dir.path(),
        "proxy",
        workers,
        &nginx_proxy_blocks(
            nginx_plain,
            upstream,
            &format!(
            "upstream pc {{ server {http}; keepalive 128; }}\n\
             server {{ listen {nginx_fa} backlog=4096;\n\
             location = /_auth {{ internal; proxy_pass http://pc/_portcullis/forward-auth; proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\";\n\
             proxy_set_header X-Original-URL http://auth.test$request_uri; }}\n\
             location / {{ auth_request /_auth; auth_request_set $user $upstream_http_x_forwarded_user;\n\
             proxy_set_header X-Forwarded-User $user; proxy_pass http://app; proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\"; }} }}\n"
            ),
        ),
        nginx_plain,
    );

    let direct = measure(
        &format!("http://{upstream}/"),
        &[],
        seconds,
        connections,
        None,
    );
    let via_nginx = measure(
        &format!("http://{nginx_plain}/"),
        &[],
        seconds,
        connections,
        None,
    );
    let open = measure(
        &format!("http://{http}/"),
        &["Host: open.test".into()],
        seconds,
        connections,
        None,
    );
    let session_headers = vec!["Host: auth.test".to_string(), format!("Cookie: {cookie}")];
    let session = measure(
        &format!("http://{http}/"),
        &session_headers,
        seconds,
        connections,
        None,
    );
    let forward_auth = measure(
        &format!("http://{nginx_fa}/"),
        &[format!("Cookie: {cookie}")],
        seconds,
        connections,
        None,
    );
    // The auth check's added latency, unloaded: one connection, open vs session route.
    let open_1 = measure(
        &format!("http://{http}/"),
        &["Host: open.test".into()],
        seconds,
        1,
        None,
    );
    let session_1 = measure(
        &format!("http://{http}/"),
        &session_headers,
        seconds,
        1,
        None,
    );

    // Token endpoint: client_credentials with ES256 and RS256, and introspection; the same
    // grants against oidc-provider (one node process) in the same run.
    let token_url = format!("http://{http}/realms/bench/protocol/openid-connect/token");
    let cc_es = form_script(
        dir.path(),
        "cc-es.lua",
        &format!("grant_type=client_credentials&client_id=svc&client_secret={secret}"),
    );
    let cc_rs = form_script(
        dir.path(),
        "cc-rs.lua",
        "grant_type=client_credentials&client_id=svc-rs&client_secret=bench-secret",
    );
    let cc = measure(&token_url, &[], seconds, 16, Some(&cc_es));
    let cc_rsa = measure(&token_url, &[], seconds, 16, Some(&cc_rs));
    let token: Value = reqwest::blocking::Client::new()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let introspect_script = form_script(
        dir.path(),
        "introspect.lua",
        &format!("client_id=svc&client_secret={secret}&token={access}"),
    );
    let introspect = measure(
        &format!("{token_url}/introspect"),
        &[],
        seconds,
        16,
        Some(&introspect_script),
    );
    // Refresh-token grants: each wrk connection carries its own rotating refresh token
    // (reuse detection would end the session if two requests sent the same one).
    let refresh_threads = 2;
    let initial: Vec<String> = (0..refresh_threads)
        .map(|_| {
            let t = alice_password_grant(&reqwest::blocking::Client::new(), &token_url, &secret)
                .unwrap();
            t["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_string()
        })
        .collect();
    let refresh_script = dir.path().join("refresh.lua");
    std::fs::write(
        &refresh_script,
        format!(
            "local initial = {{ {} }}\nlocal n = 0\n\
             function setup(thread) n = n + 1; thread:set(\"rt\", initial[n]) end\n\
             function request() return wrk.format(\"POST\", nil, {{[\"Content-Type\"] = \"application/x-www-form-urlencoded\"}}, \
             \"grant_type=refresh_token&client_id=svc&client_secret={secret}&refresh_token=\" .. rt) end\n\
             function response(status, headers, body) local t = body:match('\"refresh_token\":\"([^\"]+)\"'); if t then rt = t end end\n",
            initial
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    // No warm-up run: it would rotate the tokens away from the ones in the script.
    let refresh = wrk_threads(&token_url, seconds, refresh_threads, &refresh_script);
    // Password logins: argon2id at the realm's parameters for every request.
    let password_script = form_script(
        dir.path(),
        "password.lua",
        &format!(
            "grant_type=password&client_id=svc&client_secret={secret}&username=alice&password=Alice-pass-1"
        ),
    );
    let logins = wrk(&token_url, &[], seconds, 8, Some(&password_script));
    let op_cc = form_script(
        dir.path(),
        "op-cc.lua",
        "grant_type=client_credentials&client_id=svc&client_secret=bench-secret",
    );
    let (op_es_proc, op_es_url) = oidc_provider("ES256");
    let op_es = measure(&op_es_url, &[], seconds, 16, Some(&op_cc));
    drop(op_es_proc);
    let (op_rs_proc, op_rs_url) = oidc_provider("RS256");
    let op_rs = measure(&op_rs_url, &[], seconds, 16, Some(&op_cc));
    drop(op_rs_proc);

    // TLS handshakes.
    let (new_tls, _) = handshakes(https, seconds, false);
    let (resumed_tls, resumed_share) = handshakes(https, seconds, true);
    let idle_rss = rss_mb(pc.pid());

    // Memory with many sessions: sessions created through the gateway's own path would
    // need a login each (argon2); instead, the same cookie's session is cloned in the
    // store while the server is stopped, then every cookie is checked once through the
    // session route so the server has seen all of them.
    pc.stop();
    let cookies = clone_sessions(&pc_dir.join("data"), &cookie, sessions);
    let (pc, http, _, restart) = portcullis_timed(&pc_dir, workers, &routes);
    let before = rss_mb(pc.pid());
    let checked = check_all(http, &cookies);
    let after = rss_mb(pc.pid());

    let all = [
        &refresh,
        &logins,
        &direct,
        &via_nginx,
        &open,
        &session,
        &forward_auth,
        &cc,
        &cc_rsa,
        &introspect,
        &op_es,
        &op_rs,
    ];
    if !benchmarking {
        for run in all {
            assert_eq!(run.errors, 0, "{run:?}");
        }
        assert!(new_tls > 0.0 && resumed_tls > 0.0);
        assert_eq!(checked, cookies.len(), "every cloned session passes");
        println!("load harness smoke test passed in {:?}", started.elapsed());
        return;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "\nLoad harness: {cores} cores, {workers} proxy worker(s) each, wrk 1 thread, {connections} connections, {seconds} s per case.\n"
    );
    println!("| case | requests/s | p50 ms | p99 ms | vs nginx | errors |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row(
            "upstream served directly (nginx `return 200`)",
            &direct,
            None
        )
    );
    println!(
        "{}",
        row("nginx proxy, no auth", &via_nginx, Some(&via_nginx))
    );
    println!(
        "{}",
        row(
            "Portcullis proxy, `auth = \"none\"`",
            &open,
            Some(&via_nginx)
        )
    );
    println!(
        "{}",
        row(
            "Portcullis proxy, session + policy + identity headers",
            &session,
            Some(&via_nginx)
        )
    );
    println!(
        "{}",
        row(
            "nginx `auth_request` → Portcullis forward-auth",
            &forward_auth,
            Some(&via_nginx)
        )
    );
    println!(
        "\nAuth check added latency, one connection: p50 {:.3} ms, p99 {:.3} ms (open route p99 {:.3} ms, session route p99 {:.3} ms) — target < 0.200 ms\n",
        session_1.p50_ms - open_1.p50_ms,
        session_1.p99_ms - open_1.p99_ms,
        open_1.p99_ms,
        session_1.p99_ms
    );
    println!(
        "| token endpoint (HTTP, wrk 16 connections) | per second | p50 ms | p99 ms | vs oidc-provider | errors |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, run, other) in [
        ("Portcullis client_credentials, ES256", &cc, Some(&op_es)),
        ("oidc-provider client_credentials, ES256 JWT", &op_es, None),
        (
            "Portcullis client_credentials, RS256",
            &cc_rsa,
            Some(&op_rs),
        ),
        ("oidc-provider client_credentials, RS256 JWT", &op_rs, None),
        ("Portcullis introspection", &introspect, None),
        (
            "Portcullis refresh_token, ES256, 2 connections",
            &refresh,
            None,
        ),
        (
            "Portcullis password grant (argon2id m=19 MiB t=2)",
            &logins,
            None,
        ),
    ] {
        let ratio = other
            .map(|o| format!("{:.1}x", run.rps / o.rps))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {ratio} | {} |",
            run.rps, run.p50_ms, run.p99_ms, run.errors
        );
    }
    println!("\n| TLS (4 client threads) | handshakes/s |\n|---|---|");
    println!("| new (full) handshakes | {new_tls:.0} |");
    println!(
        "| with resumption offered | {resumed_tls:.0} ({:.0}% resumed) |",
        resumed_share * 100.0
    );
    println!("\n| start-up and memory | value | target |\n|---|---|---|");
    println!(
        "| first start to ready (empty store: master realm keys, dev certificate) | {:.0} ms | - |",
        first_start.as_secs_f64() * 1e3
    );
    println!(
        "| restart to ready with {} sessions in the store | {:.0} ms | < 100 ms |",
        cookies.len(),
        restart.as_secs_f64() * 1e3
    );
    println!(
        "| resident memory 0.5 s after the first start (realm set-up not yet done) | {fresh_rss:.1} MB | < 20 MB idle |"
    );
    println!("| resident memory after the load above | {idle_rss:.1} MB | - |");
    println!(
        "| resident memory restarted with {} sessions in the store | {before:.1} MB | - |",
        cookies.len()
    );
    println!(
        "| after checking all {checked} sessions through the session route | {after:.1} MB ({:+.1} MB) | < 50 MB more |",
        after - before
    );
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// Copy the session behind `cookie` `n` times in the stopped server's store, each with its
/// own cookie secret; returns their cookies.
fn clone_sessions(data_dir: &Path, cookie: &str, n: usize) -> Vec<String> {
    let store = portcullis::store::Store::open(data_dir).expect("store");
    let value = cookie.trim_start_matches("portcullis=");
    let (sid, _) = value.split_once('.').unwrap();
    let read = store.read().unwrap();
    let realm = read.realm_by_name("bench").unwrap().unwrap();
    let template = read.session(&realm.id, sid).unwrap().unwrap();
    drop(read);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut cookies = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        store
            .write(|w| {
                for i in chunk {
                    let secret = format!("bench-secret-{i}");
                    let hash = portcullis::proxy::access::cookie_hash(&secret, false, "auth.test");
                    let mut s = template.clone();
                    s.id = format!("bench-session-{i}");
                    s.last_access = now;
                    s.created_at = now;
                    s.gateway_cookies = vec![hash];
                    w.put_session(&realm.id, &s)?;
                    cookies.push(format!("portcullis={}.{secret}", s.id));
                }
                Ok::<_, portcullis::store::StoreError>(())
            })
            .unwrap();
    }
    store.flush().unwrap();
    cookies
}

/// One request per cookie through the session route (4 threads, keep-alive); returns how
/// many passed.
fn check_all(http: SocketAddr, cookies: &[String]) -> usize {
    let chunks: Vec<Vec<String>> = cookies
        .chunks(cookies.len().div_ceil(4).max(1))
        .map(|c| c.to_vec())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                chunk
                    .iter()
                    .filter(|c| {
                        client
                            .get(format!("http://{http}/"))
                            .header("host", "auth.test")
                            .header("cookie", c.as_str())
                            .send()
                            .map(|r| r.status().as_u16() == 200)
                            .unwrap_or(false)
                    })
                    .count()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}
