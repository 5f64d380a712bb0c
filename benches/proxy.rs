//! The proxy's cost beside nginx's, pingora's and hyper's: part of `make bench-load`
//! (`cargo bench --bench proxy`).
//!
//! On loopback: a fast upstream (Debian's nginx answering `200 ok`), and in front of it
//! nginx as a plain reverse proxy, a minimal pingora proxy (this crate's pingora, no logic:
//! `upstream_peer` only), a minimal hyper 1.x proxy (hyper-util's pooled client) and
//! Portcullis (release build) with an open route, a bearer-token route and a session route
//! with a policy and identity headers. The two minimal proxies are this bench binary run
//! again in a role (`PROXY_BENCH_ROLE`), so they are built with the same compiler, profile
//! and allocator (mimalloc) as the server.
//!
//! Each case is driven by `wrk -t1 -c64` for `LOAD_SECONDS` (default 4) after a 1 s
//! warm-up, the cases one after another, `LOAD_ROUNDS` (default 5) rounds; every figure is
//! the median over the rounds: requests/s, CPU time per request (the proxy process's utime
//! and stime over the run, with its worker processes for nginx, divided by the requests), p50
//! and p99 latency. Ratios are to nginx in the same run. `PROXY_WORKERS` (default 1) sets
//! nginx's workers, pingora's and Portcullis' threads and hyper's runtime threads alike.
//! Under `cargo test` it runs one round of 1 s per case as a smoke test: every case must
//! answer 200 without errors. `PROXY_BEFORE_BIN=<another build of the server>` adds its three
//! Portcullis cases to the same rounds (a before/after in one run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;
use common::procs::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The role variable: `pingora` or `hyper`, with `PROXY_BENCH_LISTEN`,
/// `PROXY_BENCH_UPSTREAM` and `PROXY_WORKERS`.
const ROLE: &str = "PROXY_BENCH_ROLE";

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let addr = |name: &str| -> SocketAddr { std::env::var(name).unwrap().parse().unwrap() };
        let listen = addr("PROXY_BENCH_LISTEN");
        let upstream = addr("PROXY_BENCH_UPSTREAM");
        let threads = env_num("PROXY_WORKERS", 1) as usize;
        match role.as_str() {
            "pingora" => minimal_pingora::run(listen, upstream, threads),
            "hyper" => minimal_hyper::run(listen, upstream, threads),
            other => panic!("unknown {ROLE} {other}"),
        }
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let seconds = if benchmarking {
        env_num("LOAD_SECONDS", 4)
    } else {
        1
    };
    let rounds = if benchmarking {
        env_num("LOAD_ROUNDS", 5) as usize
    } else {
        1
    };
    let connections = env_num("LOAD_CONNECTIONS", 64) as usize;
    let workers = env_num("PROXY_WORKERS", 1) as usize;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, upstream) = fast_upstream(dir.path());

    let nginx_addr = free_addr();
    let nginx = nginx(
        dir.path(),
        "proxy",
        workers,
        &nginx_proxy_blocks(nginx_addr, upstream, ""),
        nginx_addr,
    );
    let (pingora, pingora_addr) = role_proxy("pingora", upstream, workers);
    let (hyper, hyper_addr) = role_proxy("hyper", upstream, workers);

    let ticks = clock_ticks();
    let mut cases: Vec<Case> = vec![
        Case::new(
            "nginx proxy, no auth".into(),
            nginx_addr,
            nginx.pid(),
            vec![],
        ),
        Case::new(
            "minimal pingora proxy (no logic)".into(),
            pingora_addr,
            pingora.pid(),
            vec![],
        ),
        Case::new(
            "minimal hyper 1.x proxy".into(),
            hyper_addr,
            hyper.pid(),
            vec![],
        ),
    ];
    let this = PathBuf::from(env!("CARGO_BIN_EXE_portcullis"));
    let (_pc, now) = portcullis_cases(&this, &dir.path().join("pc"), upstream, workers, "");
    cases.extend(now);
    // `PROXY_BEFORE_BIN`: another build (an older commit's) beside this one, same run.
    let before = std::env::var_os("PROXY_BEFORE_BIN").map(|bin| {
        let (proc, before) = portcullis_cases(
            Path::new(&bin),
            &dir.path().join("before"),
            upstream,
            workers,
            " (before)",
        );
        cases.extend(before);
        proc
    });
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (case, samples) in cases.iter().zip(results.iter_mut()) {
            samples.push(case.run(seconds, connections, ticks));
        }
    }
    for (case, samples) in cases.iter().zip(&results) {
        for s in samples {
            assert!(
                s.requests > 0 && s.errors == 0,
                "{}: {} requests, {} errors",
                case.name,
                s.requests,
                s.errors
            );
        }
    }
    if !benchmarking {
        println!("proxy bench smoke test passed in {:?}", started.elapsed());
        return;
    }
    let medians: Vec<Sample> = results.iter().map(|s| Sample::median(s)).collect();
    let nginx = medians[0].clone();
    println!(
        "\nProxy cost: {} cores, {workers} worker(s) each, wrk -t1 -c{connections}, {rounds} interleaved rounds of {seconds} s, medians.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("| case | requests/s | vs nginx | CPU µs per request | vs nginx | p50 ms | p99 ms | p99 − nginx's |");
    println!("|---|---|---|---|---|---|---|---|");
    for (case, m) in cases.iter().zip(&medians) {
        println!(
            "| {} | {:.0} | {:.2}x | {:.1} | {:+.1} | {:.2} | {:.2} | {:+.2} ms |",
            case.name,
            m.rps,
            m.rps / nginx.rps,
            m.cpu_us,
            m.cpu_us - nginx.cpu_us,
            m.p50_ms,
            m.p99_ms,
            m.p99_ms - nginx.p99_ms
        );
    }
    let open = &medians[3];
    for (i, what) in [(4, "bearer"), (5, "session")] {
        println!(
            "\n{what} route over the open route: {:+.1} µs CPU per request ({:.2}x the open route's rate)",
            medians[i].cpu_us - open.cpu_us,
            medians[i].rps / open.rps
        );
    }
    println!(
        "open route over the minimal pingora proxy: {:+.1} µs CPU per request ({:+.1}%)",
        open.cpu_us - medians[1].cpu_us,
        (open.cpu_us / medians[1].cpu_us - 1.0) * 100.0
    );
    if before.is_some() {
        for (now, then) in [(3, 6), (4, 7), (5, 8)] {
            println!(
                "{}: {:+.1} µs CPU per request against the build before, {:.2}x its rate",
                cases[now].name,
                medians[now].cpu_us - medians[then].cpu_us,
                medians[now].rps / medians[then].rps
            );
        }
    }
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// Portcullis from `binary`: an open route, a bearer route and a session route (policy and
/// identity headers), with the realm, a token and a session cookie to send; the cases
/// named with `suffix`.
fn portcullis_cases(
    binary: &Path,
    dir: &Path,
    upstream: SocketAddr,
    workers: usize,
    suffix: &str,
) -> (Proc, Vec<Case>) {
    std::fs::create_dir_all(dir).unwrap();
    let routes = format!(
        "[[route]]\nhost = \"open.test\"\nupstream = \"http://{upstream}\"\n\
         [[route]]\nhost = \"bearer.test\"\nupstream = \"http://{upstream}\"\nauth = \"bearer\"\n\
         realm = \"bench\"\nclient = \"gateway\"\nrealm_roles = [\"user\"]\n\
         [[route]]\nhost = \"auth.test\"\nupstream = \"http://{upstream}\"\nauth = \"session\"\n\
         realm = \"bench\"\nclient = \"gateway\"\nrealm_roles = [\"user\"]\n"
    );
    let (pc, http, _) = portcullis_from(binary, dir, workers, "", &routes);
    let admin = Admin::new(http);
    let secret = setup_realm(
        &admin,
        &format!("http://auth.test:{}/_portcullis/callback", http.port()),
    );
    // Access tokens that outlive the run.
    let r = admin
        .client
        .put(format!("{}/admin/realms/bench", admin.base))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({"accessTokenLifespan": 7200}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "realm update: {}", r.status());
    let token_url = format!("http://{http}/realms/bench/protocol/openid-connect/token");
    let bearer = alice_password_grant(&reqwest::blocking::Client::new(), &token_url, &secret)
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = gateway_login(http, "auth.test");
    let pid = pc.pid();
    let cases = vec![
        Case::new(
            format!("Portcullis, open route{suffix}"),
            http,
            pid,
            vec!["Host: open.test".into()],
        ),
        Case::new(
            format!("Portcullis, bearer route + policy + identity headers{suffix}"),
            http,
            pid,
            vec![
                "Host: bearer.test".into(),
                format!("Authorization: Bearer {bearer}"),
            ],
        ),
        Case::new(
            format!("Portcullis, session route + policy + identity headers{suffix}"),
            http,
            pid,
            vec!["Host: auth.test".into(), format!("Cookie: {cookie}")],
        ),
    ];
    (pc, cases)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One proxy under load: where to send, which process to charge, which headers.
struct Case {
    name: String,
    addr: SocketAddr,
    pid: u32,
    headers: Vec<String>,
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct Sample {
    rps: f64,
    cpu_us: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

impl Sample {
    /// The median of each figure on its own.
    fn median(samples: &[Sample]) -> Sample {
        let m = |f: fn(&Sample) -> f64| {
            let mut v: Vec<f64> = samples.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Sample {
            rps: m(|s| s.rps),
            cpu_us: m(|s| s.cpu_us),
            p50_ms: m(|s| s.p50_ms),
            p99_ms: m(|s| s.p99_ms),
            requests: samples.iter().map(|s| s.requests).sum(),
            errors: samples.iter().map(|s| s.errors).sum(),
        }
    }
}

impl Case {
    fn new(name: String, addr: SocketAddr, pid: u32, headers: Vec<String>) -> Case {
        Case {
            name,
            addr,
            pid,
            headers,
        }
    }

    /// A warm-up second, then `seconds` measured.
    fn run(&self, seconds: u64, connections: usize, ticks_per_s: f64) -> Sample {
        self.wrk(1, connections);
        let before = cpu_ticks(self.pid);
        let out = self.wrk(seconds, connections);
        let after = cpu_ticks(self.pid);
        let run = common::wrk::parse_wrk(&out);
        Sample {
            rps: run.rps,
            cpu_us: (after - before) as f64 / ticks_per_s * 1e6 / run.requests.max(1) as f64,
            p50_ms: run.p50_ms,
            p99_ms: run.p99_ms,
            requests: run.requests,
            errors: run.errors,
        }
    }

    fn wrk(&self, seconds: u64, connections: usize) -> String {
        let mut cmd = Command::new("wrk");
        cmd.args(["-t", "1", "-c", &connections.to_string()]).args([
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "--timeout",
            "5s",
        ]);
        for h in &self.headers {
            cmd.args(["-H", h]);
        }
        let out = cmd
            .arg(format!("http://{}/", self.addr))
            .output()
            .expect("wrk (scripts/setup.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// utime + stime of `pid` and of its child processes (nginx's workers), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses and may hold spaces.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let own_pid: u32 = head
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if own_pid == pid || ppid == pid {
            let field =
                |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
            total += field(11) + field(12);
        }
    }
    total
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// This binary again, as the minimal `role` proxy in front of `upstream`.
fn role_proxy(role: &'static str, upstream: SocketAddr, workers: usize) -> (Proc, SocketAddr) {
    let listen = free_addr();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env("PROXY_BENCH_LISTEN", listen.to_string())
        .env("PROXY_BENCH_UPSTREAM", upstream.to_string())
        .env("PROXY_WORKERS", workers.to_string())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc { child, name: role };
    wait_port(listen, &mut proc);
    (proc, listen)
}

mod minimal_pingora {
    //! pingora with nothing of ours: every request to one upstream peer.
    use std::net::SocketAddr;

    use async_trait::async_trait;
    use pingora::server::configuration::ServerConf;
    use pingora::server::Server;
    use pingora_core::upstreams::peer::HttpPeer;
    use pingora_proxy::{ProxyHttp, Session};

    struct Minimal {
        upstream: SocketAddr,
    }

    #[async_trait]
    impl ProxyHttp for Minimal {
        type CTX = ();
        fn new_ctx(&self) {}

        async fn upstream_peer(
            &self,
            _session: &mut Session,
            _ctx: &mut (),
        ) -> pingora_core::Result<Box<HttpPeer>> {
            Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
        }
    }

    pub fn run(listen: SocketAddr, upstream: SocketAddr, threads: usize) {
        let dir = std::env::temp_dir();
        let conf = ServerConf {
            threads,
            pid_file: dir
                .join(format!("bench-pingora-{}.pid", listen.port()))
                .display()
                .to_string(),
            upgrade_sock: dir
                .join(format!("bench-pingora-{}.sock", listen.port()))
                .display()
                .to_string(),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        let mut service =
            pingora_proxy::http_proxy_service(&server.configuration, Minimal { upstream });
        service.add_tcp(&listen.to_string());
        server.add_service(service);
        server.run_forever();
    }
}

mod minimal_hyper {
    //! hyper 1.x with nothing else: each connection served by `http1::Builder`, every
    //! request sent on through hyper-util's pooled client.
    use std::net::SocketAddr;

    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Request, Uri};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    pub fn run(listen: SocketAddr, upstream: SocketAddr, threads: usize) {
        let rt = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
        }
        .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
            let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1024)
                .build_http();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let client = client.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |mut req: Request<Incoming>| {
                        let client = client.clone();
                        async move {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/");
                            let uri: Uri = format!("http://{upstream}{path}").parse().unwrap();
                            *req.uri_mut() = uri;
                            client.request(req).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
    }
}
