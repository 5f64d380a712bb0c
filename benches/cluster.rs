//! The store backends side by side: one node on redb, one node on PostgreSQL and three
//! nodes sharing that PostgreSQL, all on this machine at once, measured in interleaved
//! rounds (the machine is shared and noisy; read the figures as cost per request, not as
//! scaling: three nodes share the same two cores).
//!
//! `cargo bench --bench cluster` starts its own PostgreSQL (Debian's server, a temporary
//! data directory, default durability: `fsync` and `synchronous_commit` on), the release
//! server five times and an nginx upstream, then measures per case and configuration:
//! requests/s with 16 clients, p50 and p99 latency, and CPU per request of the nodes and
//! of PostgreSQL (utime + stime from `/proc`, over the run). Cases: client_credentials
//! grants, refresh_token grants (each client rotating its own session), the gateway's
//! session route with its session checked in the store on every request
//! (`session_check_interval = "0s"`; with the default 5 s one check serves a session's
//! requests for 5 s and the store is off the path), and one client's sequential password
//! login and refresh, whose medians give the latency the database adds to a login. `CLUSTER_ROUNDS` (default 3) and
//! `CLUSTER_SECS` (default 3) set the length.
//!
//! Under `cargo test` it runs each case for a few requests (every case must answer 200).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::procs::{self, Admin, Proc};

const CLIENTS: usize = 16;

/// A PostgreSQL server of the bench's own.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL (scripts/setup.sh installs it)")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::Builder::new()
            .prefix("portcullis-bench-pg")
            .tempdir()
            .unwrap();
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let port = procs::free_addr().port();
        let pg = Postgres {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = pg.dir.path().join("data");
        assert!(pg.run(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust"
        ]));
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nmax_connections = 200\n",
            pg.dir.path().display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        let log = pg.dir.path().join("pg.log");
        assert!(pg.run(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start"
        ]));
        pg
    }

    fn run(&self, args: &[&str]) -> bool {
        let program = self.bin.join(args[0]);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster and every backend.
    fn pids(&self) -> Vec<u32> {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let Some(master) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        else {
            return Vec::new();
        };
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if parent_of(pid) == Some(master) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.run(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
    }
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(String::from).collect())
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// utime + stime of `pids`, in microseconds.
fn cpu_micros(pids: &[u32]) -> u64 {
    // Linux reports utime and stime in USER_HZ, 100 per second on every architecture
    // Debian ships.
    let tick = 10_000;
    pids.iter()
        .filter_map(|&pid| {
            let f = stat_fields(pid)?;
            Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) * tick)
        })
        .sum()
}

/// One configuration: its nodes, and the host name every request names (as behind one
/// balancer).
struct Setup {
    name: &'static str,
    nodes: Vec<(Proc, SocketAddr)>,
    host: String,
    secret: String,
    cookie: String,
}

fn start(name: &'static str, store_keys: &str, n: usize, upstream: SocketAddr) -> Setup {
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..n {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-bench-node")
            .tempdir()
            .unwrap()
            .keep();
        let extra = format!(
            "[proxy]\nsession_check_interval = \"0s\"\n[[route]]\nhost = \"app.test\"\n\
             upstream = \"http://{upstream}\"\nauth = \"session\"\nrealm = \"bench\"\nclient = \"gateway\"\n"
        );
        let (proc, http, _) = procs::portcullis_store(&dir, 1, store_keys, &extra);
        nodes.push((proc, http));
        dirs.push(dir);
    }
    // The first node's address names the cluster (as a balancer's would): tokens' issuer
    // and the gateway cookie's host are the same on every node.
    let port = nodes[0].1.port();
    let host = format!("app.test:{port}");
    let admin = Admin::new(nodes[0].1);
    let secret = procs::setup_realm(
        &admin,
        &format!("http://app.test:{port}/_portcullis/callback"),
    );
    let cookie = procs::gateway_login(nodes[0].1, "app.test");
    Setup {
        name,
        nodes,
        host,
        secret,
        cookie,
    }
}

/// A keep-alive client whose requests name `host`.
fn client(host: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("host", host.parse().unwrap());
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Case {
    ClientCredentials,
    Refresh,
    Session,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::ClientCredentials => "client_credentials grant",
            Case::Refresh => "refresh_token grant (rotating)",
            Case::Session => "session route, checked in the store each time",
        }
    }
}

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    node_us: f64,
    db_us: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

fn refresh_token(c: &reqwest::blocking::Client, base: &str, secret: &str) -> String {
    let body = procs::alice_password_grant(
        c,
        &format!("{base}/realms/bench/protocol/openid-connect/token"),
        secret,
    )
    .unwrap();
    body["refresh_token"].as_str().unwrap().to_string()
}

fn measure(setup: &Setup, case: Case, pg: Option<&Postgres>, limit: Duration, max: usize) -> Run {
    let node_pids: Vec<u32> = setup.nodes.iter().map(|(p, _)| p.pid()).collect();
    let db_pids = pg.map(Postgres::pids).unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let host = setup.host.clone();
    // Sessions for the refresh case, made before the clock starts.
    let seeds: Vec<String> = match case {
        Case::Refresh => (0..CLIENTS)
            .map(|i| {
                let (_, addr) = &setup.nodes[i % setup.nodes.len()];
                refresh_token(
                    &client(&setup.host),
                    &format!("http://{addr}"),
                    &setup.secret,
                )
            })
            .collect(),
        _ => vec![String::new(); CLIENTS],
    };
    let cpu_before = (cpu_micros(&node_pids), cpu_micros(&db_pids));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let stop = stop.clone();
            let host = host.clone();
            let secret = setup.secret.clone();
            let cookie = setup.cookie.clone();
            let addrs: Vec<SocketAddr> = setup.nodes.iter().map(|(_, a)| *a).collect();
            let mut refresh = seeds[i].clone();
            std::thread::spawn(move || {
                let c = client(&host);
                let mut latencies = Vec::new();
                let mut k = i;
                while !stop.load(Ordering::Relaxed) && latencies.len() < max {
                    // Round robin over the nodes, as a balancer without stickiness.
                    let base = format!("http://{}", addrs[k % addrs.len()]);
                    k += 1;
                    let t = Instant::now();
                    let token_url = format!("{base}/realms/bench/protocol/openid-connect/token");
                    let status = match case {
                        Case::ClientCredentials => c
                            .post(&token_url)
                            .form(&[
                                ("grant_type", "client_credentials"),
                                ("client_id", "svc"),
                                ("client_secret", secret.as_str()),
                            ])
                            .send()
                            .map(|r| r.status().as_u16()),
                        Case::Refresh => c
                            .post(&token_url)
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("client_id", "svc"),
                                ("client_secret", secret.as_str()),
                                ("refresh_token", refresh.as_str()),
                            ])
                            .send()
                            .and_then(|r| {
                                let status = r.status().as_u16();
                                let body: serde_json::Value = r.json()?;
                                if let Some(t) = body["refresh_token"].as_str() {
                                    refresh = t.to_string();
                                }
                                Ok(status)
                            }),
                        Case::Session => c
                            .get(format!("{base}/"))
                            .header("cookie", &cookie)
                            .send()
                            .map(|r| r.status().as_u16()),
                    };
                    assert_eq!(status.ok(), Some(200), "{case:?} on {base}");
                    latencies.push(t.elapsed().as_micros() as u64);
                }
                latencies
            })
        })
        .collect();
    while started.elapsed() < limit && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let node_cpu = cpu_micros(&node_pids) - cpu_before.0;
    let db_cpu = cpu_micros(&db_pids).saturating_sub(cpu_before.1);
    all.sort_unstable();
    let n = all.len().max(1) as f64;
    Run {
        rate: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        node_us: node_cpu as f64 / n,
        db_us: db_cpu as f64 / n,
    }
}

/// One client, one request at a time: the medians of a password login and a refresh.
fn latencies(setup: &Setup, count: usize) -> (f64, f64) {
    let c = client(&setup.host);
    let base = format!("http://{}", setup.nodes[0].1);
    let token_url = format!("{base}/realms/bench/protocol/openid-connect/token");
    let mut logins = Vec::new();
    let mut refreshes = Vec::new();
    for _ in 0..count {
        let t = Instant::now();
        let refresh = refresh_token(&c, &base, &setup.secret);
        logins.push(t.elapsed().as_micros() as u64);
        let t = Instant::now();
        let r = c
            .post(&token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "svc"),
                ("client_secret", setup.secret.as_str()),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        refreshes.push(t.elapsed().as_micros() as u64);
    }
    logins.sort_unstable();
    refreshes.sort_unstable();
    (percentile(&logins, 0.5), percentile(&refreshes, 0.5))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let benchmarking = common::benchmarking();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (rounds, limit, max, sequential) = if benchmarking {
        (
            env("CLUSTER_ROUNDS", 3),
            Duration::from_secs(env("CLUSTER_SECS", 3)),
            usize::MAX,
            20,
        )
    } else {
        (1, Duration::from_secs(2), 3, 2)
    };
    let scratch = tempfile::tempdir().unwrap();
    let (_upstream, upstream) = procs::fast_upstream(scratch.path());
    let pg = Postgres::start();
    let url = pg.url();
    let setups = [
        start("1 node, redb", "", 1, upstream),
        start(
            "1 node, PostgreSQL",
            &format!("backend = \"postgres\"\nurl = \"{url}\"\n"),
            1,
            upstream,
        ),
    ];
    // Three nodes on a database of their own (the one-node run keeps its own data).
    create_database(&pg, "three");
    let three_url = format!("postgres://postgres@127.0.0.1:{}/three", pg.port);
    let three = start(
        "3 nodes, one PostgreSQL",
        &format!("backend = \"postgres\"\nurl = \"{three_url}\"\n"),
        3,
        upstream,
    );
    let setups: Vec<&Setup> = setups.iter().chain(std::iter::once(&three)).collect();
    let cases = [Case::ClientCredentials, Case::Refresh, Case::Session];
    type Samples = Vec<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)>;
    let mut samples: Samples = vec![Default::default(); setups.len() * cases.len()];
    let mut sequential_samples = vec![(Vec::new(), Vec::new()); setups.len()];
    for _ in 0..rounds {
        for (ci, case) in cases.iter().enumerate() {
            for (si, setup) in setups.iter().enumerate() {
                let db = (si > 0).then_some(&pg);
                let run = measure(setup, *case, db, limit, max);
                let s = &mut samples[ci * setups.len() + si];
                s.0.push(run.rate);
                s.1.push(run.p50_ms);
                s.2.push(run.p99_ms);
                s.3.push(run.node_us);
                s.4.push(run.db_us);
            }
        }
        for (si, setup) in setups.iter().enumerate() {
            let (login, refresh) = latencies(setup, sequential);
            sequential_samples[si].0.push(login);
            sequential_samples[si].1.push(refresh);
        }
    }
    println!(
        "\n{CLIENTS} clients, {rounds} interleaved rounds of {:?}; medians of the rounds\n",
        limit
    );
    println!("| case | configuration | requests/s | vs redb | p50 ms | p99 ms | node CPU µs/req | PostgreSQL CPU µs/req |");
    println!("|---|---|---|---|---|---|---|---|");
    for (ci, case) in cases.iter().enumerate() {
        let base = median(&mut samples[ci * setups.len()].0.clone());
        for (si, setup) in setups.iter().enumerate() {
            let s = &mut samples[ci * setups.len() + si];
            let rate = median(&mut s.0);
            println!(
                "| {} | {} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.0} | {:.0} |",
                case.label(),
                setup.name,
                rate,
                rate / base.max(1e-9),
                median(&mut s.1),
                median(&mut s.2),
                median(&mut s.3),
                median(&mut s.4),
            );
        }
    }
    println!(
        "\nOne client, sequential (medians): what the database adds to a login and a refresh\n"
    );
    println!("| configuration | password login ms | refresh ms |");
    println!("|---|---|---|");
    for (si, setup) in setups.iter().enumerate() {
        let (l, r) = &mut sequential_samples[si];
        println!("| {} | {:.2} | {:.2} |", setup.name, median(l), median(r));
    }
}

fn create_database(pg: &Postgres, name: &str) {
    let psql = pg.bin.join("psql");
    let ok = Command::new(psql)
        .args([&pg.url(), "-qc", &format!("CREATE DATABASE {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "CREATE DATABASE {name}");
}
