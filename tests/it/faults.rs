//! Faults under the proxy: upstreams that reset the connection, stall, or answer garbage
//! get a gateway error (502, or 504 at the route's timeout) without tying up the workers,
//! so the healthy route beside them keeps answering; and a SIGHUP that swaps routes and
//! replaces the certificate while clients hammer both listeners fails no request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{Options, TestServer};
use crate::proxy::{echo_upstream, raw, upstream_serving};

/// An upstream that reads the request head and then does `then` with the connection.
fn faulty_upstream(then: fn(TcpStream)) -> SocketAddr {
    upstream_serving(move |mut stream: TcpStream| {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        then(stream);
    })
}

fn reset(stream: TcpStream) {
    // Linger 0: the close is a RST, not a FIN.
    let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
    drop(stream);
}

fn stall(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(30));
    drop(stream);
}

fn garbage(mut stream: TcpStream) {
    let _ = stream.write_all(b"\x16\x03\x01 not http at all \xff\xfe\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
}

fn timed(addr: SocketAddr, target: &str) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _) = raw(addr, "GET", target, &[]);
    (status, started.elapsed())
}

#[test]
fn resetting_stalling_and_garbage_upstreams_are_gateway_errors_and_tie_up_nothing() {
    let ok = echo_upstream("ok");
    let reset = faulty_upstream(reset);
    let stall = faulty_upstream(stall);
    let garbage = faulty_upstream(garbage);
    let server = TestServer::start_with(Options {
        extra_config: format!(
            "[[route]]\npath = \"/reset\"\nupstream = \"http://{reset}\"\n\
             [[route]]\npath = \"/stall\"\nupstream = \"http://{stall}\"\ntimeout = \"1s\"\n\
             [[route]]\npath = \"/garbage\"\nupstream = \"http://{garbage}\"\n\
             [[route]]\nupstream = \"http://{ok}\"\n"
        ),
        ..Default::default()
    });
    let (status, took) = timed(server.http, "/reset");
    assert_eq!(status, 502);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (status, took) = timed(server.http, "/garbage");
    assert_eq!(status, 502);
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Forty stalled requests at once (20 per worker thread), and the healthy route still
    // answers while they wait: a stalled upstream holds a task, not a worker.
    let stalled: Vec<_> = (0..40)
        .map(|_| {
            let addr = server.http;
            std::thread::spawn(move || timed(addr, "/stall"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        let (status, took) = timed(server.http, "/healthy");
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(900), "{took:?}");
    }
    for t in stalled {
        let (status, took) = t.join().unwrap();
        assert_eq!(status, 504);
        // The route's 1 s timeout, not the upstream's 30 s.
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// A certificate for `localhost` with a distinct subject per generation, as PEM files.
fn write_cert(dir: &std::path::Path, generation: usize) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("generation {generation}"),
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    // Written beside and renamed into place, as an operator (or certbot) does.
    for (name, text) in [("cert.pem", cert.pem()), ("key.pem", key.serialize_pem())] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
    cert.der().to_vec()
}

#[test]
fn sighup_reload_and_certificate_replacement_under_load_fail_no_request() {
    let a = echo_upstream("a");
    let b = echo_upstream("b");
    let dir = crate::harness::temp_dir();
    let certs = dir.join("pem");
    std::fs::create_dir_all(&certs).unwrap();
    write_cert(&certs, 0);
    let tls = format!(
        "[[tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    let server = TestServer::start_with(Options {
        dir: Some(dir.clone()),
        extra_config: format!("{tls}[[route]]\nupstream = \"http://{a}\"\n"),
        ..Default::default()
    });
    let config = dir.join("portcullis.toml");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for t in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (http, https) = (server.http, server.https);
        load.push(std::thread::spawn(move || {
            // Over TLS a fresh connection (a full handshake) per request half the time.
            let pooled = reqwest::blocking::Client::builder()
                .danger_accept_invalid_certs(true)
                .resolve("localhost", https)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let fresh = reqwest::blocking::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .resolve("localhost", https)
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let client = if t % 2 == 0 { &fresh } else { &pooled };
                for url in [
                    format!("http://{http}/x"),
                    format!("https://localhost:{}/x", https.port()),
                ] {
                    match client.get(&url).send().and_then(|r| r.error_for_status()) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failed.lock().unwrap().push(format!("{url}: {e}")),
                    }
                }
            }
        }));
    }
    let mut last = Vec::new();
    for generation in 1..=6 {
        std::thread::sleep(Duration::from_millis(300));
        last = write_cert(&certs, generation);
        let text = std::fs::read_to_string(&config).unwrap();
        let (from, to) = if generation % 2 == 1 { (a, b) } else { (b, a) };
        std::fs::write(&config, text.replace(&from.to_string(), &to.to_string())).unwrap();
        server.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.log().matches("reloaded").count() < generation {
            assert!(Instant::now() < deadline, "{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    eprintln!(
        "reload under load: {ok} requests answered, {} failed, 6 reloads",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(ok > 200, "{ok}");
    // The last certificate is the one served now, and the last routes.
    assert_eq!(crate::foundation::served(server.https, "localhost"), last);
    assert_eq!(
        crate::proxy::echo(server.http, "/y", &[])["upstream"],
        "a",
        "six swaps end where they began"
    );
}
