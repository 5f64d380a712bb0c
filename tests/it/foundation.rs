//! The foundation: listeners, TLS by SNI, health and metrics, configuration errors, the
//! store's lifetime across restarts and processes, bootstrap, and signals.

use std::net::TcpListener;
use std::time::Duration;

use crate::harness::{run_to_end, temp_dir, write_config, Options, TestServer, ADMIN};

fn json(response: reqwest::blocking::Response) -> serde_json::Value {
    response.json().expect("json body")
}

#[test]
fn health_and_metrics_over_http_and_https() {
    let server = TestServer::start();
    let client = server.client();
    for url in [
        server.http_url("/health/ready"),
        server.https_url("/health/ready"),
    ] {
        let r = client.get(&url).send().unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(json(r), serde_json::json!({"status": "UP"}));
    }
    let r = client.get(server.https_url("/health/live")).send().unwrap();
    assert_eq!(json(r)["status"], "UP");

    let r = client.head(server.http_url("/health/live")).send().unwrap();
    assert_eq!(r.status(), 200);

    let r = client.get(server.http_url("/no/such/path")).send().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json(r)["error"], "not_found");

    let r = client.post(server.http_url("/health/live")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");

    let big = vec![b'x'; 2 << 20];
    let r = client
        .post(server.http_url("/health/live"))
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(json(r)["error"], "payload_too_large");

    let text = client
        .get(server.http_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("portcullis_http_requests_total{route=\"health\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "portcullis_http_request_duration_seconds_bucket{route=\"health\",le=\"+Inf\"}"
        ),
        "{text}"
    );
    assert!(text.contains("portcullis_active_sessions 0"), "{text}");
    // No request was logged one by one at info level.
    assert!(!server.log().contains("/health/ready"), "{}", server.log());
}

#[test]
fn first_start_generates_a_dev_certificate_and_says_so() {
    let server = TestServer::start();
    assert!(server.dir.join("certs/localhost.pem").is_file());
    assert!(
        server
            .log()
            .contains("generated a self-signed development certificate"),
        "{}",
        server.log()
    );
    // The client in the harness verifies the chain against that certificate for "localhost".
    let r = server
        .client()
        .get(server.https_url("/health/live"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn write_cert(dir: &std::path::Path, stem: &str, names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
    cert.der().to_vec()
}

pub fn served(addr: std::net::SocketAddr, name: &str) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let chain = rt
        .block_on(portcullis::tls::handshake(addr, name))
        .expect("handshake");
    chain[0].as_ref().to_vec()
}

#[test]
fn sni_selects_the_certificate_and_unknown_names_get_the_default() {
    let dir = temp_dir();
    let certs = dir.join("certs");
    let localhost = write_cert(&certs, "localhost", &["localhost"]);
    let app = write_cert(&certs, "app", &["app.test"]);
    let wildcard = write_cert(&certs, "wild", &["*.apps.test"]);
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        ..Default::default()
    });
    assert_eq!(served(server.https, "app.test"), app);
    assert_eq!(served(server.https, "APP.test"), app);
    assert_eq!(served(server.https, "one.apps.test"), wildcard);
    assert_eq!(served(server.https, "unknown.test"), localhost);
    assert_eq!(served(server.https, "localhost"), localhost);
    assert!(!server.log().contains("generated a self-signed"));
}

#[test]
fn explicit_certificates_with_a_chosen_default() {
    let dir = temp_dir();
    let elsewhere = dir.join("keys");
    let a = write_cert(&elsewhere, "a", &["a.test"]);
    let b = write_cert(&elsewhere, "b", &["b.test"]);
    let extra = format!(
        "[[tls.certificate]]\ncert = \"{0}/a.pem\"\nkey = \"{0}/a-key.pem\"\n\
         [[tls.certificate]]\ncert = \"{0}/b.pem\"\nkey = \"{0}/b-key.pem\"\nnames = [\"b.test\", \"also-b.test\"]\ndefault = true\n",
        elsewhere.display()
    );
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        extra_config: extra,
        ..Default::default()
    });
    assert_eq!(served(server.https, "a.test"), a);
    assert_eq!(served(server.https, "also-b.test"), b);
    assert_eq!(served(server.https, "nobody.test"), b);
}

#[test]
fn data_written_before_a_restart_is_there_after_it() {
    let server = TestServer::start();
    assert!(server.log().contains("created the first administrator"));
    let dir = server.stop();
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        env: vec![],
        ..Default::default()
    });
    // The admin from the first start exists: no "no administrator" warning, nothing created.
    let log = server.log();
    assert!(!log.contains("has no administrator"), "{log}");
    assert!(!log.contains("created the master realm"), "{log}");
    let dir = server.stop();
    let (status, _, stderr) = run_to_end(
        &[
            "bootstrap-admin",
            "--config",
            "portcullis.toml",
            "--username",
            ADMIN.0,
        ],
        &dir,
        Some("another-password\n"),
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("a user named \"admin\" already exists"),
        "{stderr}"
    );
}

#[test]
fn without_admin_credentials_it_starts_and_explains_how_to_bootstrap() {
    let server = TestServer::start_with(Options {
        env: vec![],
        ..Default::default()
    });
    assert!(
        server
            .log()
            .contains("portcullis bootstrap-admin --username"),
        "{}",
        server.log()
    );
    let dir = server.stop();
    let (status, stdout, stderr) = run_to_end(
        &[
            "bootstrap-admin",
            "--config",
            "portcullis.toml",
            "--username",
            "Root",
        ],
        &dir,
        Some("s3cret-pass\n"),
    );
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("created administrator \"root\""),
        "{stdout}"
    );
    let server = TestServer::start_with(Options {
        dir: Some(dir),
        env: vec![],
        ..Default::default()
    });
    assert!(
        !server.log().contains("has no administrator"),
        "{}",
        server.log()
    );
}

#[test]
fn a_bad_config_names_the_key_and_line_and_exits_2() {
    let dir = temp_dir();
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        "# comment\n[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"localhost\"\n",
    )
    .unwrap();
    for command in ["serve", "check-config"] {
        let (status, _, stderr) = run_to_end(&[command, "--config", "bad.toml"], &dir, None);
        assert_eq!(status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(
            stderr.trim(),
            "error: bad.toml:4: server.https: invalid listen address \"localhost\" (expected host:port, e.g. 0.0.0.0:8080)"
        );
    }
    std::fs::write(
        &config,
        "[server]\nhttp = \"127.0.0.1:0\"\n[tls]\ncert_dir = \"x\"\n",
    )
    .unwrap();
    let (status, _, stderr) = run_to_end(&["check-config", "--config", "bad.toml"], &dir, None);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with(
            "error: bad.toml:4: tls.cert_dir: unknown field `cert_dir`, expected `certs_dir`"
        ),
        "{stderr}"
    );

    std::fs::write(
        &config,
        "[[tls.certificate]]\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n",
    )
    .unwrap();
    let (status, _, stderr) = run_to_end(&["check-config", "--config", "bad.toml"], &dir, None);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("bad.toml:2: tls.certificate[0].cert: cannot read \"missing.pem\""),
        "{stderr}"
    );

    let (status, _, stderr) = run_to_end(&["serve", "--config", "nope.toml"], &dir, None);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("nope.toml: cannot read the configuration file"),
        "{stderr}"
    );

    let (status, stdout, _) = run_to_end(
        &[
            "check-config",
            "--config",
            &write_config(&dir, "").display().to_string(),
        ],
        &dir,
        None,
    );
    assert!(status.success());
    assert!(stdout.contains("configuration is valid"));
    // Nothing was written by the failed attempts.
    assert!(!dir.join("data").exists());
}

#[test]
fn the_default_config_file_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (status, stdout, stderr) = run_to_end(
        &["check-config", "--config", "config/portcullis.toml"],
        std::path::Path::new(root),
        None,
    );
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("configuration is valid"));
}

#[test]
fn an_occupied_port_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = temp_dir();
    write_config(&dir, "");
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--config",
            "portcullis.toml",
            "--http",
            &addr.to_string(),
        ],
        &dir,
        None,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: cannot listen on {addr} (server.http): address already in use"
        )),
        "{stderr}"
    );
}

#[test]
fn two_servers_cannot_open_the_same_data_dir() {
    if portcullis::store::testing::on_postgres() {
        // On PostgreSQL sharing the store is the point (see `cluster.rs`); the redb run
        // of the suite checks the lock.
        return;
    }
    let first = TestServer::start();
    let second = TestServer::try_start(Options {
        dir: Some(first.dir.clone()),
        ..Default::default()
    });
    let log = second.err().expect("the second server must not start");
    assert!(
        log.contains("is in use by another portcullis process"),
        "{log}"
    );
    // The first server is unharmed, and its data opens cleanly after it stops.
    let r = first
        .client()
        .get(first.http_url("/health/ready"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let dir = first.stop();
    let again = TestServer::start_with(Options {
        dir: Some(dir),
        env: vec![],
        ..Default::default()
    });
    assert!(!again.log().contains("has no administrator"));
}

#[test]
fn sigterm_stops_gracefully_within_seconds_and_sigint_at_once() {
    let mut server = TestServer::start();
    let (status, took) = server.signal_and_wait("TERM");
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        server.log().contains("SIGTERM received"),
        "{}",
        server.log()
    );

    let mut server = TestServer::start();
    let (_, took) = server.signal_and_wait("INT");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn command_line_overrides_the_file() {
    let dir = temp_dir();
    write_config(&dir, "");
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--config",
            "portcullis.toml",
            "--https",
            "nonsense",
        ],
        &dir,
        None,
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("--https: invalid listen address \"nonsense\""),
        "{stderr}"
    );
}
