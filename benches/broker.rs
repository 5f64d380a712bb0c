//! Brokered login round trip, side by side with a local-password login, in one run.
//!
//! `cargo bench --bench broker` drives the real login handlers (`App::handle`, the code the
//! server runs; no socket on our side) through a whole browser login from as many concurrent
//! tasks as cores: the authorization request, then either
//! - the provider's button, the redirect to the provider, and the callback (state check,
//!   code exchange and profile read over loopback HTTP from a GitHub-style provider played by
//!   this process, the link look-up, the code for the client), or
//! - the login form posted with a password (argon2id at OWASP parameters, on the hash pool).
//!
//! It prints logins/s of each and the provider's own share (its two HTTP answers timed
//! alone from the same client). Under `cargo test` it runs a few logins of each kind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;
use common::measure;

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use portcullis::idp::App;
use portcullis::store::{ClientRecord, RealmRecord, Store};

const REDIRECT: &str = "http://localhost/cb";

/// A GitHub-style provider on loopback: the token endpoint and `/user`, keep-alive.
async fn provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer = if line.starts_with("POST /login/oauth/access_token") {
                        r#"{"access_token":"gho_bench","token_type":"bearer","scope":"user:email"}"#
                    } else {
                        r#"{"id":42,"login":"octo","name":"Mona Lisa","email":"mona@example.com"}"#
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

fn setup(dir: &std::path::Path, provider: &str) -> App {
    let store = Store::open(dir).unwrap();
    let hashed =
        portcullis::crypto::password::hash_password("bench-password", &Default::default()).unwrap();
    store
        .write(|w| {
            use portcullis::idp::realm;
            for name in ["master", "bench"] {
                realm::create_realm(
                    w,
                    RealmRecord {
                        name: name.into(),
                        ..Default::default()
                    },
                    0,
                )?;
            }
            let r = w.realm_by_name("bench")?.unwrap();
            let client = ClientRecord {
                id: "c".into(),
                client_id: "web".into(),
                secret: Some("web-secret".into()),
                enabled: true,
                standard_flow_enabled: true,
                redirect_uris: vec![REDIRECT.into()],
                full_scope_allowed: true,
                ..Default::default()
            };
            common::client_and_alice(w, &r, client, &hashed)?;
            w.put_object(
                &r.id,
                portcullis::idp::broker::IDP_KIND,
                "github",
                &serde_json::json!({"alias": "github", "providerId": "github", "enabled": true,
                    "config": {"clientId": "gh", "clientSecret": "gh-secret",
                               "baseUrl": provider, "apiUrl": provider}}),
            )
            .map_err(realm::RealmError::from)?;
            Ok::<_, realm::RealmError>(())
        })
        .unwrap();
    common::app(store)
}

/// One request to the IdP: (status, Location, Set-Cookie values, body).
async fn call(
    app: &App,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> (u16, Option<String>, Vec<String>, String) {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "bench.test");
    if let Some(c) = cookie {
        builder = builder.header("cookie", c);
    }
    let body = match form {
        Some(f) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f)
                .finish()
        }
        None => String::new(),
    };
    let request = builder.body(Bytes::from(body)).unwrap();
    let response = common::handle(app, request).await;
    let header = |name: &str| {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let location = header("location").into_iter().next();
    let cookies = header("set-cookie");
    (
        response.status().as_u16(),
        location,
        cookies,
        String::from_utf8_lossy(response.body()).into_owned(),
    )
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let i = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    &text[i..i + text[i..].find(end).unwrap()]
}

/// The authorization request of a fresh browser: its flow cookie and the login page.
async fn authorize(app: &App) -> (String, String) {
    let uri = format!(
        "/realms/bench/protocol/openid-connect/auth?client_id=web&response_type=code&scope=openid&redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let (status, _, cookies, html) = call(app, "GET", &uri, None, None).await;
    assert_eq!(status, 200, "{html}");
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("AUTH_SESSION_ID="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (cookie, html)
}

async fn brokered_login(app: &App) {
    let (cookie, html) = authorize(app).await;
    let button = unescape(between(&html, "id=\"social-github\" href=\"", "\""));
    let (status, location, _, _) = call(app, "GET", &button, Some(&cookie), None).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    let state = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let callback = format!("/realms/bench/broker/github/endpoint?code=gh-code&state={state}");
    let (status, location, _, body) = call(app, "GET", &callback, Some(&cookie), None).await;
    assert_eq!(status, 302, "{body}");
    assert!(location.unwrap().starts_with(REDIRECT));
}

async fn password_login(app: &App) {
    let (cookie, html) = authorize(app).await;
    let action = unescape(between(
        &html,
        "id=\"kc-form-login\" class=\"form\" method=\"post\" action=\"",
        "\"",
    ));
    let csrf = between(&html, "name=\"csrf_token\" value=\"", "\"").to_string();
    let form = [
        ("username", "alice"),
        ("password", "bench-password"),
        ("csrf_token", csrf.as_str()),
    ];
    let (status, location, _, body) = call(app, "POST", &action, Some(&cookie), Some(&form)).await;
    assert_eq!(status, 302, "{body}");
    assert!(location.unwrap().starts_with(REDIRECT));
}

fn main() {
    let benchmarking = common::benchmarking();
    let (limit, max_ops) = if benchmarking {
        (Duration::from_secs(5), u64::MAX)
    } else {
        (Duration::from_secs(1), 4)
    };
    let (rt, cores) = common::runtime();
    let base = rt.block_on(provider());
    let dir = tempfile::tempdir().unwrap();
    let app = setup(dir.path(), &base);
    // The first brokered login creates and links the user; the measured ones find the link.
    rt.block_on(brokered_login(&app));
    let tasks = cores * 4;
    let a = app.clone();
    let brokered = measure(&rt, tasks, limit, max_ops, move |_| {
        let a = a.clone();
        async move { brokered_login(&a).await }
    });
    let a = app.clone();
    let password = measure(&rt, tasks, limit, max_ops, move |_| {
        let a = a.clone();
        async move { password_login(&a).await }
    });
    // The provider's share: its two answers, from a pooled client like the broker's.
    let client = reqwest::Client::new();
    let provider_only = measure(&rt, tasks, limit, max_ops, move |_| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}/login/oauth/access_token"))
                .body("code=x")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            client
                .get(format!("{base}/user"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
    });
    if !benchmarking {
        println!("broker smoke test: brokered and password logins ran");
        return;
    }
    println!("| login, whole browser round trip ({cores} cores, {tasks} tasks) | logins/s | µs per login per core |");
    println!("|---|---|---|");
    for (name, rate) in [
        (
            "brokered (GitHub-style provider on loopback, linked user)",
            brokered,
        ),
        ("local password (argon2id m=19MiB t=2 p=1)", password),
        ("the provider's two HTTP answers alone", provider_only),
    ] {
        println!(
            "| {name} | {rate:.0} | {:.0} |",
            cores as f64 * 1e6 / rate.max(1e-9)
        );
    }
    println!(
        "\nbrokered / password: {:.2}x the logins per second",
        brokered / password.max(1e-9)
    );
}
