//! Start-up time and idle memory of the real binary.
//!
//! `cargo bench --bench startup` (or `make bench-startup`) starts the server repeatedly on
//! fresh loopback ports and reports, as a markdown table:
//! - first start on an empty data dir (creates the store, master realm, dev certificate);
//! - later starts on the same data dir: process spawn → `/health/ready` answering 200;
//! - resident memory (VmRSS) one second after ready, idle.
//!
//! Targets (issue: foundation): later starts under 100 ms, idle RSS under 20 MB.
//!
//! Under `cargo test` (no `--bench` argument) it runs one start as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(50)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
}

fn start(dir: &Path) -> (Child, Duration) {
    let http = free_port();
    let https = free_port();
    let started = Instant::now();
    let child = Command::new(BINARY)
        .args([
            "serve",
            "--config",
            "portcullis.toml",
            "--http",
            &http.to_string(),
            "--https",
            &https.to_string(),
        ])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("PORTCULLIS_ADMIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn portcullis");
    let deadline = started + Duration::from_secs(30);
    while !ready(http) {
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_micros(500));
    }
    (child, started.elapsed())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[server]\nthreads = 2\nshutdown_grace = \"0s\"\n[log]\nlevel = \"warn\"\n",
    )
    .unwrap();

    let (child, first) = start(dir.path());
    stop(child);
    if !benchmarking {
        println!("startup smoke test: first start ready in {first:?}");
        return;
    }

    let mut later = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..20 {
        let (child, took) = start(dir.path());
        later.push(took);
        std::thread::sleep(Duration::from_secs(1));
        rss.push(rss_kib(child.id()));
        stop(child);
    }
    later.sort();
    rss.sort();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("\n| measure (threads = 2, {cores} cores) | value | target |");
    println!("|---|---|---|");
    println!(
        "| first start to ready (empty data dir) | {:.1} ms | - |",
        first.as_secs_f64() * 1e3
    );
    let p50 = percentile(&later, 0.5);
    let p95 = percentile(&later, 0.95);
    println!(
        "| later start to ready, p50 / p95 (n=20) | {:.1} ms / {:.1} ms | < 100 ms {} |",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        if p95 < Duration::from_millis(100) {
            "(met)"
        } else {
            "(MISSED)"
        }
    );
    let median_rss = rss[rss.len() / 2];
    println!(
        "| idle resident memory (VmRSS, median) | {:.1} MB | < 20 MB {} |",
        median_rss as f64 / 1024.0,
        if median_rss < 20 * 1024 {
            "(met)"
        } else {
            "(MISSED)"
        }
    );
}
