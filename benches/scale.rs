//! The admin API at scale: import of many users with pre-hashed passwords, store size per
//! user, and the latency of count, list pages and searches through the real admin handler
//! (`App::handle`, no socket).
//!
//! `cargo bench --bench scale` uses 100,000 users (`SCALE_USERS` to change it, e.g.
//! 1000000). Under `cargo test` it uses 2,000 as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::http::RequestInfo;
use portcullis::idp::login::theme::Themes;
use portcullis::idp::realm;
use portcullis::idp::App;
use portcullis::metrics::Metrics;
use portcullis::store::{CredentialRecord, RealmRecord, Store, UserRecord};

/// Send `request` through the real handler (no socket); the response and how long it took.
async fn send(app: &App, request: http::Request<Bytes>) -> (http::Response<Bytes>, Duration) {
    let started = Instant::now();
    let (endpoint, params) = app.route(request.uri().path()).unwrap();
    let response = app
        .handle(
            endpoint,
            &params,
            request,
            RequestInfo {
                peer: None,
                tls: true,
            },
        )
        .await;
    (response, started.elapsed())
}

/// An admin request with `token`: `GET` without a body, `POST` with a JSON one.
fn admin_request(token: &str, path: &str, json: Option<Vec<u8>>) -> http::Request<Bytes> {
    let builder = http::Request::builder()
        .uri(path)
        .header("host", "bench.test")
        .header("authorization", format!("Bearer {token}"));
    match json {
        None => builder.method("GET").body(Bytes::new()),
        Some(body) => builder
            .method("POST")
            .header("content-type", "application/json")
            .body(Bytes::from(body)),
    }
    .unwrap()
}

async fn get(app: &App, token: &str, path: &str) -> (u16, Duration) {
    let (response, took) = send(app, admin_request(token, path, None)).await;
    (response.status().as_u16(), took)
}

async fn post_json(app: &App, token: &str, path: &str, body: Vec<u8>) -> (u16, Duration) {
    let (response, took) = send(app, admin_request(token, path, Some(body))).await;
    (response.status().as_u16(), took)
}

/// The request path of the i-th sample of a case.
type PathFor = Box<dyn Fn(usize) -> String>;

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: usize = if benchmarking {
        std::env::var("SCALE_USERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    } else {
        2_000
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let params = portcullis::crypto::password::Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    };
    let admin_hash = portcullis::crypto::password::hash_password("admin-pass", &params).unwrap();
    let user_hash = portcullis::crypto::password::hash_password("user-pass", &params).unwrap();
    store
        .write(|w| {
            realm::create_realm(
                w,
                RealmRecord {
                    name: "master".into(),
                    ..Default::default()
                },
                0,
            )?;
            realm::create_realm(
                w,
                RealmRecord {
                    name: "big".into(),
                    ..Default::default()
                },
                0,
            )?;
            realm::create_realm(
                w,
                RealmRecord {
                    name: "imported".into(),
                    ..Default::default()
                },
                0,
            )?;
            Ok::<_, realm::RealmError>(())
        })
        .unwrap();
    portcullis::bootstrap::create_admin(&store, &SystemClock, "admin", "admin-pass", &params)
        .unwrap();
    let _ = admin_hash;
    let big = store.read().unwrap().realm_by_name("big").unwrap().unwrap();
    let before = std::fs::metadata(store.path()).unwrap().len();

    // Import: batches of 10,000 users, one transaction each, pre-hashed passwords.
    let started = Instant::now();
    for start in (0..n).step_by(10_000) {
        store
            .write(|w| {
                for i in start..(start + 10_000).min(n) {
                    let user = UserRecord {
                        id: format!("00000000-0000-4000-8000-{i:012}"),
                        username: format!("user{i:07}"),
                        email: Some(format!("user{i:07}@example.com")),
                        first_name: Some(format!("First{}", i % 1000)),
                        last_name: Some(format!("Last{}", i % 977)),
                        enabled: true,
                        created_timestamp: 1_700_000_000_000,
                        ..Default::default()
                    };
                    realm::create_user(w, &big, &user)?;
                    w.put_credential(
                        &big.id,
                        &user.id,
                        &CredentialRecord {
                            id: format!("c-{i}"),
                            kind: "password".into(),
                            secret_data: user_hash.secret_data.clone(),
                            credential_data: user_hash.credential_data.clone(),
                            ..Default::default()
                        },
                    )?;
                }
                Ok::<_, portcullis::store::StoreError>(())
            })
            .unwrap();
    }
    let import = started.elapsed();
    let after = std::fs::metadata(store.path()).unwrap().len();

    let config = Config::parse(
        "[server]\nhostnames = [\"bench.test\"]\n",
        std::path::Path::new("bench.toml"),
    )
    .unwrap();
    let app = App::new(
        Arc::new(config),
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        Arc::new(Themes::builtin()),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = rt.block_on(async {
        let body = "grant_type=password&client_id=admin-cli&username=admin&password=admin-pass";
        let request = http::Request::builder()
            .method("POST")
            .uri("/realms/master/protocol/openid-connect/token")
            .header("host", "bench.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .unwrap();
        let (r, _) = send(&app, request).await;
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    });
    let samples = if benchmarking { 20 } else { 3 };
    let mut rows = Vec::new();
    let cases: Vec<(&str, PathFor)> = vec![
        (
            "users/count",
            Box::new(|_| "/admin/realms/big/users/count".to_string()),
        ),
        (
            "list page, first=0 max=100",
            Box::new(|_| "/admin/realms/big/users?first=0&max=100".to_string()),
        ),
        (
            "list page, first=n/2 max=100",
            Box::new(move |_| format!("/admin/realms/big/users?first={}&max=100", n / 2)),
        ),
        (
            "exact username",
            Box::new(move |i| {
                format!(
                    "/admin/realms/big/users?username=user{:07}&exact=true",
                    (i * 7919) % n
                )
            }),
        ),
        (
            "search substring (one match)",
            Box::new(move |i| format!("/admin/realms/big/users?search=user{:07}", (i * 7919) % n)),
        ),
    ];
    for (name, path) in &cases {
        let mut times = Vec::new();
        for i in 0..samples {
            let (status, took) = rt.block_on(get(&app, &token, &path(i)));
            assert_eq!(status, 200, "{name}");
            times.push(took);
        }
        rows.push((name.to_string(), percentiles(times)));
    }
    // Import through the admin API: partialImport of users in Keycloak's representation,
    // with pre-hashed passwords, 10,000 per request.
    let import_n = if benchmarking { 100_000 } else { 1_000 };
    let mut api_import = Duration::ZERO;
    for start in (0..import_n).step_by(10_000) {
        let users: Vec<serde_json::Value> = (start..(start + 10_000).min(import_n))
            .map(|i| {
                serde_json::json!({
                    "username": format!("imported{i:07}"),
                    "email": format!("imported{i:07}@example.com"),
                    "enabled": true,
                    "credentials": [{
                        "type": "password",
                        "secretData": user_hash.secret_data,
                        "credentialData": user_hash.credential_data,
                    }]
                })
            })
            .collect();
        let body =
            serde_json::to_vec(&serde_json::json!({"ifResourceExists": "FAIL", "users": users}))
                .unwrap();
        let (status, took) = rt.block_on(post_json(
            &app,
            &token,
            "/admin/realms/imported/partialImport",
            body,
        ));
        assert_eq!(status, 200, "partialImport");
        api_import += took;
    }
    if !benchmarking {
        println!(
            "scale smoke test: {} users, {} cases, {import_n} imported through the admin API",
            n,
            rows.len()
        );
        return;
    }
    println!("\n| measure ({n} users) | value | target |");
    println!("|---|---|---|");
    println!(
        "| import with pre-hashed passwords (batches of 10,000) | {:.1} s ({:.0} users/s) | 100,000 in < 10 s |",
        import.as_secs_f64(),
        n as f64 / import.as_secs_f64()
    );
    println!(
        "| admin API partialImport of {import_n} users (pre-hashed, 10,000 per request) | {:.1} s ({:.0} users/s) | 100,000 in < 10 s |",
        api_import.as_secs_f64(),
        import_n as f64 / api_import.as_secs_f64()
    );
    println!(
        "| store size per user | {:.0} bytes | compact |",
        (after - before) as f64 / n as f64
    );
    for (name, (p50, p99)) in rows {
        println!("| {name}, p50 / p99 | {p50:.2} ms / {p99:.2} ms | < 20 ms p99 (count < 50 ms) |");
    }
}
