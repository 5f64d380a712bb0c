//! Token endpoint throughput, side by side with the signing limit, in one run.
//!
//! `cargo bench --bench tokens` drives the real token endpoint handler (`App::handle`, the
//! same code the server runs; no socket, so the figures are the IdP's own cost) from as many
//! concurrent tasks as there are cores, for a fixed time per case, and prints a markdown
//! table: client_credentials grants/s with RS256 and ES256, refresh_token grants/s,
//! password logins/s (argon2id at OWASP parameters), and the raw signatures/s of the same
//! keys on all cores, so the ratio to the physical limit is measured, not assumed.
//!
//! Under `cargo test` it runs each case for a few requests only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;
use common::measure;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::crypto::jwt::Algorithm;
use portcullis::idp::App;
use portcullis::store::{ClientRecord, CredentialRecord, RealmRecord, Store, UserRecord};

fn setup(dir: &std::path::Path, algorithm: Algorithm) -> App {
    let store = Store::open(dir).unwrap();
    let hashed =
        portcullis::crypto::password::hash_password("bench-password", &Default::default()).unwrap();
    store
        .write(|w| {
            use portcullis::idp::realm;
            realm::create_realm(
                w,
                RealmRecord {
                    name: "master".into(),
                    ..Default::default()
                },
                0,
            )?;
            let r = realm::create_realm(
                w,
                RealmRecord {
                    name: "bench".into(),
                    default_signature_algorithm: algorithm.as_str().into(),
                    ..Default::default()
                },
                0,
            )?;
            let mut client = ClientRecord {
                id: "c".into(),
                client_id: "svc".into(),
                secret: Some("svc-secret".into()),
                enabled: true,
                service_accounts_enabled: true,
                direct_access_grants_enabled: true,
                full_scope_allowed: true,
                ..Default::default()
            };
            // The realm's default client scopes, as a client created through the admin API
            // has them: their mappers are part of every token's cost.
            portcullis::idp::client_scopes::attach_realm_defaults(w, &r.id, &mut client)
                .map_err(realm::RealmError::from)?;
            w.put_client(&r.id, &client)
                .map_err(realm::RealmError::from)?;
            for (id, name, sa) in [
                ("sa", "service-account-svc", Some("c".to_string())),
                ("u", "alice", None),
            ] {
                let user = UserRecord {
                    id: id.into(),
                    username: name.into(),
                    enabled: true,
                    service_account_client_id: sa,
                    ..Default::default()
                };
                realm::create_user(w, &r, &user).map_err(realm::RealmError::from)?;
            }
            w.put_credential(
                &r.id,
                "u",
                &CredentialRecord {
                    id: "p".into(),
                    kind: "password".into(),
                    secret_data: hashed.secret_data.clone(),
                    credential_data: hashed.credential_data.clone(),
                    ..Default::default()
                },
            )
            .map_err(realm::RealmError::from)?;
            Ok::<_, realm::RealmError>(())
        })
        .unwrap();
    common::app(store)
}

async fn token(app: &App, form: &[(&str, &str)]) -> serde_json::Value {
    let request = common::form_post("/realms/bench/protocol/openid-connect/token", form);
    let response = common::handle(app, request).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    serde_json::from_slice(response.body()).unwrap()
}

/// Raw signatures per second of one realm key on all cores.
fn signing_rate(app: &App, algorithm: Algorithm, limit: Duration, max_ops: u64) -> f64 {
    let read = app.store.read().unwrap();
    let realm = read.realm_by_name("bench").unwrap().unwrap();
    let keys = app.keys.realm_keys(&read, &realm.id, 0).unwrap();
    let key = keys.signer(algorithm).unwrap().clone();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            let key = key.clone();
            let done = done.clone();
            s.spawn(move || {
                let claims =
                    serde_json::json!({"sub": "x", "iat": 1, "exp": 2, "scope": "profile email"});
                while started.elapsed() < limit && done.load(Ordering::Relaxed) < max_ops {
                    key.sign(&claims).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let benchmarking = common::benchmarking();
    let (limit, max_ops) = if benchmarking {
        (Duration::from_secs(5), u64::MAX)
    } else {
        (Duration::from_secs(1), 20)
    };
    let (rt, cores) = common::runtime();
    let tasks = cores * 4;
    let mut rows = Vec::new();
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        let dir = tempfile::tempdir().unwrap();
        let app = setup(dir.path(), algorithm);
        let sign = signing_rate(&app, algorithm, limit, max_ops);
        let a = app.clone();
        let cc = measure(&rt, tasks, limit, max_ops, move |_| {
            let a = a.clone();
            async move {
                token(
                    &a,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", "svc"),
                        ("client_secret", "svc-secret"),
                    ],
                )
                .await;
            }
        });
        rows.push((
            format!("client_credentials, {}", algorithm.as_str()),
            cc,
            Some(sign),
        ));
        // Refresh: each task keeps its own session and rotates its refresh token.
        let a = app.clone();
        let seeds: Vec<String> = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..tasks {
                let body = token(
                    &a,
                    &[
                        ("grant_type", "password"),
                        ("client_id", "svc"),
                        ("client_secret", "svc-secret"),
                        ("username", "alice"),
                        ("password", "bench-password"),
                    ],
                )
                .await;
                v.push(body["refresh_token"].as_str().unwrap().to_string());
            }
            v
        });
        let current: Arc<Vec<std::sync::Mutex<String>>> =
            Arc::new(seeds.into_iter().map(std::sync::Mutex::new).collect());
        let a = app.clone();
        let rf = measure(&rt, tasks, limit, max_ops, move |i| {
            let a = a.clone();
            let current = current.clone();
            async move {
                let slot = &current[(i as usize) % current.len()];
                let presented = slot.lock().unwrap().clone();
                let body = token(
                    &a,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", "svc"),
                        ("client_secret", "svc-secret"),
                        ("refresh_token", &presented),
                    ],
                )
                .await;
                *slot.lock().unwrap() = body["refresh_token"].as_str().unwrap().to_string();
            }
        });
        rows.push((
            format!("refresh_token, {}", algorithm.as_str()),
            rf,
            Some(sign),
        ));
        if algorithm == Algorithm::ES256 {
            let a = app.clone();
            let logins = measure(
                &rt,
                tasks,
                limit,
                max_ops.min(if benchmarking { u64::MAX } else { 4 }),
                move |_| {
                    let a = a.clone();
                    async move {
                        token(
                            &a,
                            &[
                                ("grant_type", "password"),
                                ("client_id", "svc"),
                                ("client_secret", "svc-secret"),
                                ("username", "alice"),
                                ("password", "bench-password"),
                            ],
                        )
                        .await;
                    }
                },
            );
            rows.push((
                "password grant (argon2id m=19MiB t=2 p=1), ES256".into(),
                logins,
                None,
            ));
        }
    }
    if !benchmarking {
        println!("tokens smoke test: {} cases ran", rows.len());
        return;
    }
    println!("\n| case ({cores} cores, {tasks} concurrent requests) | per second | per core | raw signatures/s, same key, all cores | ratio to signing |");
    println!("|---|---|---|---|---|");
    for (name, rate, sign) in rows {
        let (sign_col, ratio) = match sign {
            Some(s) => (format!("{s:.0}"), format!("{:.0}%", rate / s * 100.0)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {name} | {rate:.0} | {:.0} | {sign_col} | {ratio} |",
            rate / cores as f64
        );
    }
}
