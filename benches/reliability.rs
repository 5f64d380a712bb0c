//! Reliability under load: `make bench-reliability` (`cargo bench --bench reliability`).
//!
//! 1. **Idle keep-alive connections**: `IDLE_CONNECTIONS` (10,000) clients each send one
//!    request through Portcullis' open route and then sit idle, and the same through nginx
//!    as a plain proxy, in the same run; resident memory before and after gives the cost
//!    per held connection, and a second request on every connection shows they were held.
//! 2. **Soak**: `SOAK_SECONDS` (600) of mixed traffic — password grants each followed by
//!    refreshes and a logout, requests through the session route (policy and identity headers) and the
//!    open route — from a few client threads, stopped by itself; resident memory is sampled
//!    every `SOAK_SAMPLE_SECONDS` (10) and every request must succeed. Memory is "flat"
//!    when the last third of the samples is no higher than the first third by more than
//!    10%.
//!
//! Under `cargo test` both run small (500 connections, 5 s) as a smoke test that asserts
//! every connection was held and no request failed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::procs::*;

/// One request on `stream` (keep-alive), its response read to the end; the status.
fn request(stream: &mut TcpStream, host: &str) -> u16 {
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return 0,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The resident memory of `pid` and its children (nginx's workers), in KiB.
fn rss_kib_tree(pid: u32) -> f64 {
    let mut pids = vec![pid];
    if let Ok(out) = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
    {
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok()),
        );
    }
    pids.iter().map(|p| rss_mb(*p) * 1024.0).sum()
}

/// Open `n` connections to `addr`, one request each, and hold them; (KiB per connection,
/// connections that answered a second request).
fn idle_connections(addr: SocketAddr, host: &str, pid: u32, n: usize) -> (f64, usize) {
    let before = rss_kib_tree(pid);
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(request(&mut s, host), 200, "first request");
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib_tree(pid);
    let mut answered = 0;
    for s in &mut held {
        if request(s, host) == 200 {
            answered += 1;
        }
    }
    ((after - before) / n as f64, answered)
}

/// Raise this process's open-file limit to its hard limit (connections are files).
fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let env_num = |name: &str, default: u64, smoke: u64| {
        if !benchmarking {
            return smoke;
        }
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let nofile = raise_nofile();
    let connections = (env_num("IDLE_CONNECTIONS", 10_000, 500) as usize)
        .min(nofile.saturating_sub(200) as usize);
    let soak_seconds = env_num("SOAK_SECONDS", 600, 5);
    let sample_every = env_num("SOAK_SAMPLE_SECONDS", 10, 1);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();

    let (_upstream, upstream) = fast_upstream(dir.path());
    let nginx_plain = free_addr();
    let proxy = nginx(
        dir.path(),
        "proxy",
        1,
        &format!(
            "upstream app {{ server {upstream}; keepalive 128; }}\n\
             server {{ listen {nginx_plain} backlog=4096;\n location / {{ proxy_pass http://app; proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\"; }} }}\n"
        ),
        nginx_plain,
    );
    let pc_dir = dir.path().join("portcullis");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let routes = format!(
        "[proxy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         [[route]]\nhost = \"open.test\"\nupstream = \"http://{upstream}\"\n\
         [[route]]\nhost = \"auth.test\"\nupstream = \"http://{upstream}\"\nauth = \"session\"\n\
         realm = \"bench\"\nclient = \"gateway\"\nrealm_roles = [\"user\"]\n"
    );
    // Every connection comes from 127.0.0.1: lift the per-address cap for this run.
    let (pc, http, _) = portcullis_with(&pc_dir, 1, "max_connections_per_ip = 0\n", &routes);
    let admin = Admin::new(http);
    let secret = setup_realm(
        &admin,
        &format!("http://auth.test:{}/_portcullis/callback", http.port()),
    );
    let cookie = gateway_login(http, "auth.test");

    // 1. Idle connections, side by side.
    let (pc_kib, pc_held) = idle_connections(http, "open.test", pc.pid(), connections);
    let (nginx_kib, nginx_held) =
        idle_connections(nginx_plain, "localhost", proxy.pid(), connections);

    // 2. Soak.
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let token_url = format!("http://{http}/realms/bench/protocol/openid-connect/token");
    let mut threads = Vec::new();
    for kind in ["login", "session", "open", "session"] {
        let (stop, requests, errors) = (stop.clone(), requests.clone(), errors.clone());
        let (token_url, secret, cookie) = (token_url.clone(), secret.clone(), cookie.clone());
        threads.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .resolve("auth.test", http)
                .resolve("open.test", http)
                .build()
                .unwrap();
            let fail = |what: String| errors.lock().unwrap().push(what);
            while !stop.load(Ordering::Relaxed) {
                match kind {
                    "login" => {
                        let r = alice_password_grant(&client, &token_url, &secret);
                        requests.fetch_add(1, Ordering::Relaxed);
                        let mut refresh = match r {
                            Ok(t) => t["refresh_token"].as_str().unwrap_or("").to_string(),
                            Err(e) => {
                                fail(format!("password grant: {e}"));
                                continue;
                            }
                        };
                        for _ in 0..10 {
                            let r = client
                                .post(&token_url)
                                .form(&[
                                    ("grant_type", "refresh_token"),
                                    ("client_id", "svc"),
                                    ("client_secret", secret.as_str()),
                                    ("refresh_token", refresh.as_str()),
                                ])
                                .send()
                                .and_then(|r| r.error_for_status())
                                .and_then(|r| r.json::<Value>());
                            requests.fetch_add(1, Ordering::Relaxed);
                            match r {
                                Ok(t) => refresh = t["refresh_token"].as_str().unwrap_or("").into(),
                                Err(e) => {
                                    fail(format!("refresh: {e}"));
                                    break;
                                }
                            }
                        }
                        // The session ends, as an app's sign-out does: the soak's steady
                        // state holds a bounded number of sessions.
                        let r = client
                            .post(token_url.replace("/token", "/logout"))
                            .form(&[
                                ("client_id", "svc"),
                                ("client_secret", secret.as_str()),
                                ("refresh_token", refresh.as_str()),
                            ])
                            .send()
                            .and_then(|r| r.error_for_status());
                        requests.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = r {
                            fail(format!("logout: {e}"));
                        }
                    }
                    route => {
                        let host = if route == "open" {
                            "open.test"
                        } else {
                            "auth.test"
                        };
                        let r = client
                            .get(format!("http://{host}:{}/", http.port()))
                            .header("cookie", &cookie)
                            .send()
                            .and_then(|r| r.error_for_status());
                        requests.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = r {
                            fail(format!("{route} route: {e}"));
                        }
                    }
                }
            }
        }));
    }
    let mut samples = Vec::new();
    let soak_started = Instant::now();
    while soak_started.elapsed() < Duration::from_secs(soak_seconds) {
        std::thread::sleep(Duration::from_secs(sample_every));
        samples.push(rss_mb(pc.pid()));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    let total = requests.load(Ordering::Relaxed);
    let third = (samples.len() / 3).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let first = mean(&samples[..third]);
    let last = mean(&samples[samples.len() - third..]);
    let peak = samples.iter().cloned().fold(0.0, f64::max);

    if !benchmarking {
        assert_eq!(pc_held, connections, "every idle connection held");
        assert_eq!(nginx_held, connections);
        assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);
        assert!(total > 0);
        println!("reliability smoke test passed in {:?}", started.elapsed());
        return;
    }
    println!("\n| idle keep-alive connections ({connections}) | memory per connection | held |");
    println!("|---|---|---|");
    println!("| Portcullis, open route | {pc_kib:.1} KiB | {pc_held} |");
    println!("| nginx, plain proxy | {nginx_kib:.1} KiB | {nginx_held} |");
    println!(
        "\n| soak ({soak_seconds} s, mixed) | value |\n|---|---|\n| requests | {total} |\n| errors | {} |\n\
         | resident memory, first third of the run (mean) | {first:.1} MB |\n\
         | resident memory, last third of the run (mean) | {last:.1} MB |\n| peak | {peak:.1} MB |\n\
         | flat (last ≤ first + 10%) | {} |",
        errors.len(),
        if last <= first * 1.1 { "yes" } else { "NO" }
    );
    println!(
        "\nresident memory every {sample_every} s (MB): {}",
        samples
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !errors.is_empty() {
        println!("\nfirst errors: {:?}", &errors[..errors.len().min(5)]);
    }
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}
