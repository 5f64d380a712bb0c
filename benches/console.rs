//! The admin console at scale: server time (through the real handler, `App::handle`, no
//! socket) and bytes per page with many users and realms: the users list, a user search,
//! the realm selector's search, the clients list, events, a user's details.
//!
//! `cargo bench --bench console` uses 100,000 users and 500 realms (`CONSOLE_USERS`,
//! `CONSOLE_REALMS`; `make bench-console` runs 1,000,000 users). Under `cargo test` it is a
//! smoke test with 2,000 users and 20 realms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header;

use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::http::RequestInfo;
use portcullis::idp::login::theme::Themes;
use portcullis::idp::realm;
use portcullis::idp::App;
use portcullis::metrics::Metrics;
use portcullis::store::{RealmRecord, Store, UserRecord};

/// A browser with a cookie jar, through `App::handle`.
struct Browser {
    app: App,
    cookies: Vec<(String, String)>,
}

impl Browser {
    async fn send(
        &mut self,
        method: &str,
        uri: &str,
        form: Option<String>,
    ) -> (http::Response<Bytes>, Duration) {
        let path = uri.split('?').next().unwrap();
        let (endpoint, params) = self.app.route(path).unwrap();
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "bench.test")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(form.unwrap_or_default()))
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let started = Instant::now();
        let response = self
            .app
            .handle(
                endpoint,
                &params,
                request,
                RequestInfo {
                    peer: Some(peer),
                    tls: true,
                },
            )
            .await;
        let took = started.elapsed();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        (response, took)
    }

    async fn open(&mut self, uri: &str) -> http::Response<Bytes> {
        let mut uri = uri.to_string();
        loop {
            let (response, _) = self.send("GET", &uri, None).await;
            match response.headers().get(header::LOCATION) {
                Some(next) if response.status().is_redirection() => {
                    uri = local(next.to_str().unwrap());
                }
                _ => return response,
            }
        }
    }
}

fn local(url: &str) -> String {
    url.strip_prefix("https://bench.test")
        .unwrap_or(url)
        .to_string()
}

fn attr(page: &str, prefix: &str) -> String {
    let start = page.find(prefix).unwrap() + prefix.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)]),
    )
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let number = |name: &str, bench: usize, smoke: usize| {
        if benchmarking {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(bench)
        } else {
            smoke
        }
    };
    let users = number("CONSOLE_USERS", 100_000, 2_000);
    let realms = number("CONSOLE_REALMS", 500, 20);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let params = portcullis::crypto::password::Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    };
    let seeding = Instant::now();
    portcullis::bootstrap::ensure_master_realm(&store, &SystemClock).unwrap();
    portcullis::bootstrap::create_admin(&store, &SystemClock, "admin", "admin-pass", &params)
        .unwrap();
    for start in (0..realms).step_by(50) {
        store
            .write(|w| {
                for i in start..(start + 50).min(realms) {
                    let name = if i == 0 {
                        "big".to_string()
                    } else {
                        format!("tenant{i:04}")
                    };
                    realm::create_realm(
                        w,
                        RealmRecord {
                            name,
                            ..Default::default()
                        },
                        0,
                    )?;
                }
                Ok::<_, realm::RealmError>(())
            })
            .unwrap();
    }
    let big = store.read().unwrap().realm_by_name("big").unwrap().unwrap();
    for start in (0..users).step_by(10_000) {
        store
            .write(|w| {
                for i in start..(start + 10_000).min(users) {
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
                }
                Ok::<_, portcullis::store::StoreError>(())
            })
            .unwrap();
    }
    let seeded = seeding.elapsed();
    let config = Config::parse(
        "[server]\nhostnames = [\"bench.test\"]\n",
        std::path::Path::new("bench.toml"),
    )
    .unwrap();
    let app = App::new(
        Arc::new(config),
        store,
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        Arc::new(Themes::builtin()),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut browser = Browser {
        app,
        cookies: Vec::new(),
    };
    rt.block_on(async {
        // Sign in through the login page, as a person does.
        let page = String::from_utf8(browser.open("/admin/master/console/").await.body().to_vec())
            .unwrap();
        let action = local(&attr(&page, "action=\""));
        let mut form = form_urlencoded::Serializer::new(String::new());
        for chunk in page.split("<input type=\"hidden\"").skip(1) {
            form.append_pair(&attr(chunk, "name=\""), &attr(chunk, "value=\""));
        }
        let form = form
            .append_pair("username", "admin")
            .append_pair("password", "admin-pass")
            .finish();
        let (r, _) = browser.send("POST", &action, Some(form)).await;
        let next = local(r.headers()[header::LOCATION].to_str().unwrap());
        let home = browser.open(&next).await;
        assert!(home.status().is_success(), "signed in");
    });
    let base = "/admin/master/console/big";
    let cases: Vec<(&str, String)> = vec![
        ("users list, first page", format!("{base}/users")),
        (
            "users list, a page in the middle (by key, as the console pages)",
            format!("{base}/users?after=user{:07}&max=10", users / 2),
        ),
        (
            "users list, a page in the middle (by index, first=)",
            format!("{base}/users?first={}&max=10", users / 2),
        ),
        (
            "user search (one match)",
            format!("{base}/users?search=user{:07}", users / 3),
        ),
        (
            "user search (prefix, many)",
            format!("{base}/users?search=user00"),
        ),
        (
            "user details",
            format!(
                "{base}/users/00000000-0000-4000-8000-{:012}/settings",
                users / 4
            ),
        ),
        (
            "realm selector search",
            format!("{base}/realms?search=tenant04"),
        ),
        ("realm home", format!("{base}/")),
        ("clients list", format!("{base}/clients")),
        ("events", format!("{base}/events")),
        ("realm settings", format!("{base}/realm-settings")),
    ];
    let samples = if benchmarking { 30 } else { 3 };
    let mut rows = Vec::new();
    for (name, uri) in &cases {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..samples {
            let (response, took) = rt.block_on(browser.send("GET", uri, None));
            assert_eq!(
                response.status(),
                200,
                "{name}: {}",
                String::from_utf8_lossy(response.body())
            );
            bytes = response.body().len();
            times.push(took);
        }
        let (p50, p95) = percentiles(times);
        rows.push((name.to_string(), p50, p95, bytes));
    }
    if !benchmarking {
        println!(
            "console smoke test: {users} users, {realms} realms, {} pages",
            rows.len()
        );
        return;
    }
    println!(
        "\nAdmin console pages: {users} users in one realm, {realms} realms (seeded in {:.1} s)",
        seeded.as_secs_f64()
    );
    println!("\n| page | server time p50 | p95 | HTML bytes | target |");
    println!("|---|---|---|---|---|");
    for (name, p50, p95, bytes) in rows {
        println!(
            "| {name} | {p50:.2} ms | {p95:.2} ms | {:.1} KB | < 50 ms, < 100 KB |",
            bytes as f64 / 1024.0
        );
    }
    println!(
        "\nCSS {} bytes, JavaScript {} bytes (fetched once, cached an hour).",
        include_str!("../themes/default/admin/resources/console.css").len(),
        include_str!("../themes/default/admin/resources/console.js").len()
    );
}
