//! Crash safety: the server killed outright (SIGKILL, no shutdown) at moments spread over
//! concurrent admin writes, logins and token refreshes, started again on the same directory, 10 rounds
//! (`PORTCULLIS_CRASH_ROUNDS` for more). Every write that was acknowledged is there, nothing
//! half-written is visible (each user was created with its password and a role in one
//! request: none lacks either), and the store opens cleanly every time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::api::Api;
use crate::harness::{temp_dir, Options, TestServer};

fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(Options {
        dir: Some(dir.to_path_buf()),
        ..Options::default()
    })
}

#[test]
fn acknowledged_writes_survive_kill_9_and_nothing_is_half_written() {
    let rounds: usize = std::env::var("PORTCULLIS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = temp_dir();
    let mut server = start(&dir);
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "crash", "enabled": true}))
            .status,
        201
    );
    assert_eq!(
        api.post("/admin/realms/crash/roles", &json!({"name": "worker"}))
            .status,
        201
    );
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..rounds {
        let api = Api::admin(&server);
        let token = api.token.clone().unwrap();
        let base = api.base.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for t in 0..3 {
            let (client, token, base) = (api.client.clone(), token.clone(), base.clone());
            let (stop, acked) = (stop.clone(), acked.clone());
            workers.push(std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("u{round}-{t}-{i}");
                    let r = client
                        .post(format!("{base}/admin/realms/crash/users"))
                        .bearer_auth(&token)
                        .json(&json!({"username": name, "enabled": true, "realmRoles": ["worker"],
                            "credentials": [{"type": "password", "value": "Crash-pass-1", "temporary": false}]}))
                        .timeout(Duration::from_secs(5))
                        .send();
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => acked.lock().unwrap().push(name),
                        Ok(r) if r.status().is_server_error() => {
                            panic!("a 5xx before the crash: {}", r.status())
                        }
                        Ok(_) => {}
                        Err(_) => break, // the server is gone
                    }
                    // A login and a refresh now and then: their session, brute-force and
                    // refresh-token writes interleave with the admin writes.
                    if i % 3 == 0 {
                        let token_url =
                            format!("{base}/realms/master/protocol/openid-connect/token");
                        let login = client
                            .post(&token_url)
                            .form(&[
                                ("grant_type", "password"),
                                ("client_id", "admin-cli"),
                                ("username", crate::harness::ADMIN.0),
                                ("password", crate::harness::ADMIN.1),
                            ])
                            .timeout(Duration::from_secs(5))
                            .send()
                            .ok()
                            .and_then(|r| r.json::<serde_json::Value>().ok());
                        if let Some(refresh) = login
                            .as_ref()
                            .and_then(|t| t["refresh_token"].as_str())
                        {
                            let _ = client
                                .post(&token_url)
                                .form(&[
                                    ("grant_type", "refresh_token"),
                                    ("client_id", "admin-cli"),
                                    ("refresh_token", refresh),
                                ])
                                .timeout(Duration::from_secs(5))
                                .send();
                        }
                    }
                }
            }));
        }
        // Moments spread over the writes: 60 ms to 420 ms into the round.
        std::thread::sleep(Duration::from_millis(60 + (round as u64 * 137) % 360));
        let dir = server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("a worker saw a 5xx");
        }
        acknowledged.extend(acked.lock().unwrap().drain(..));
        // The store opens cleanly, and holds what was acknowledged, whole.
        server = start(&dir);
        let api = Api::admin(&server);
        let count = api.get("/admin/realms/crash/users/count").body;
        let count = count.as_u64().unwrap() as usize;
        assert!(
            count >= acknowledged.len(),
            "round {round}: {count} users, {} acknowledged",
            acknowledged.len()
        );
        let users = api
            .get("/admin/realms/crash/users?max=100000&briefRepresentation=true")
            .body;
        let users = users.as_array().unwrap();
        let names: std::collections::HashSet<&str> = users
            .iter()
            .filter_map(|u| u["username"].as_str())
            .collect();
        for name in &acknowledged {
            assert!(
                names.contains(name.as_str()),
                "round {round}: acknowledged {name} is gone"
            );
        }
        for u in users {
            let id = u["id"].as_str().unwrap();
            let creds = api
                .get(&format!("/admin/realms/crash/users/{id}/credentials"))
                .body;
            assert!(
                creds
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["type"] == "password"),
                "round {round}: {} without its password",
                u["username"]
            );
            let roles = api
                .get(&format!(
                    "/admin/realms/crash/users/{id}/role-mappings/realm"
                ))
                .body;
            assert!(
                roles
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["name"] == "worker"),
                "round {round}: {} without its role",
                u["username"]
            );
        }
    }
    assert!(
        acknowledged.len() >= rounds,
        "the writers barely ran: {} acknowledged in {rounds} rounds",
        acknowledged.len()
    );
    eprintln!(
        "crash loop: {rounds} kills, {} writes acknowledged, 0 lost, 0 half-written",
        acknowledged.len()
    );
}
