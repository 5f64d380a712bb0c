//! Micro-benchmarks of the hot paths (criterion): JWT signing and verification, the
//! gateway's session check (cache hit and miss), route matching and path normalisation,
//! IP allow-list lookup among 10,000 blocks, redirect-URI matching, argon2id verification
//! at the default parameters, and store reads and writes.
//!
//! `cargo bench --bench micro` (part of `make bench`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

use std::net::IpAddr;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};

use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::crypto::jwt::{generate_pkcs8, Algorithm, SigningKey};
use portcullis::crypto::password::{hash_password, verify_password, Argon2Params};
use portcullis::http::path::normalise;
use portcullis::idp::login::theme::Themes;
use portcullis::idp::realm;
use portcullis::idp::App;
use portcullis::metrics::Metrics;
use portcullis::proxy::access::{cookie_hash, Access, Incoming, Outcome};
use portcullis::proxy::cidr::CidrSet;
use portcullis::proxy::routes::RouteTable;
use portcullis::store::{ClientRecord, RealmRecord, SessionRecord, Store, UserRecord};

fn jwt(c: &mut Criterion) {
    let claims = serde_json::json!({
        "iss": "https://sso.example.com/realms/demo", "sub": "f3b1c2d4-0000-4000-8000-000000000001",
        "aud": "account", "azp": "app", "typ": "Bearer", "exp": 4_000_000_000i64, "iat": 1_700_000_000,
        "realm_access": {"roles": ["user", "offline_access"]}, "scope": "openid email profile"
    });
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        let key =
            SigningKey::from_pkcs8("k1", algorithm, &generate_pkcs8(algorithm).unwrap()).unwrap();
        let token = key.sign(&claims).unwrap();
        c.bench_function(&format!("jwt sign {}", algorithm.as_str()), |b| {
            b.iter(|| key.sign(black_box(&claims)).unwrap())
        });
        let verifier = key.verifying_key();
        c.bench_function(&format!("jwt verify {}", algorithm.as_str()), |b| {
            b.iter(|| {
                verifier
                    .verify::<serde_json::Value>(black_box(&token))
                    .unwrap()
            })
        });
    }
}

fn routing(c: &mut Criterion) {
    let mut toml = String::new();
    for i in 0..100 {
        toml.push_str(&format!(
            "[[route]]\nhost = \"app{i}.example.com\"\npath = \"/api/v{}\"\nupstream = \"http://127.0.0.1:9000\"\n",
            i % 7
        ));
    }
    toml.push_str("[[route]]\nhost = \"*.example.com\"\nupstream = \"http://127.0.0.1:9000\"\n");
    let config = Config::parse(&toml, std::path::Path::new("bench.toml")).unwrap();
    let table = RouteTable::new(&config.proxy);
    c.bench_function("route match (101 routes)", |b| {
        b.iter(|| {
            table.find(
                black_box("app57.example.com"),
                black_box("/api/v1/items/42"),
            )
        })
    });
    c.bench_function("path normalise (clean)", |b| {
        b.iter(|| normalise(black_box("/api/v1/items/42")).unwrap())
    });
    c.bench_function("path normalise (dots, escapes, slashes)", |b| {
        b.iter(|| normalise(black_box("/api//v1/./items/%7Euser/../42")).unwrap())
    });
}

fn cidrs(c: &mut Criterion) {
    // 10,000 blocks: /24s, /32s and /16s spread over the IPv4 space, plus IPv6 /48s.
    let mut nets: Vec<ipnet::IpNet> = Vec::new();
    for i in 0u32..9_000 {
        let a = (i.wrapping_mul(2_654_435_761)) & 0xffff_ff00;
        let len = [24, 32, 16][(i % 3) as usize];
        nets.push(
            format!("{}/{len}", std::net::Ipv4Addr::from(a))
                .parse::<ipnet::IpNet>()
                .unwrap()
                .trunc(),
        );
    }
    for i in 0u32..1_000 {
        nets.push(format!("2001:db8:{:x}::/48", i).parse().unwrap());
    }
    let set = CidrSet::new(&nets);
    let hit: IpAddr = match nets[4_321] {
        ipnet::IpNet::V4(n) => IpAddr::V4(n.network()),
        ipnet::IpNet::V6(n) => IpAddr::V6(n.network()),
    };
    let miss: IpAddr = "203.0.113.77".parse().unwrap();
    c.bench_function("ip allow-list, 10000 CIDRs, hit", |b| {
        b.iter(|| set.contains(black_box(hit)))
    });
    c.bench_function("ip allow-list, 10000 CIDRs, miss", |b| {
        b.iter(|| set.contains(black_box(miss)))
    });
    c.bench_function("ip allow-list, 10000 CIDRs, linear scan (before)", |b| {
        b.iter(|| nets.iter().any(|n| n.contains(&black_box(miss))))
    });
}

fn redirects(c: &mut Criterion) {
    let client = ClientRecord {
        client_id: "app".into(),
        redirect_uris: (0..10)
            .map(|i| format!("https://app{i}.example.com/callback"))
            .chain(["https://spa.example.com/*".to_string()])
            .collect(),
        ..Default::default()
    };
    c.bench_function("redirect-URI match (11 registered, wildcard)", |b| {
        b.iter(|| {
            portcullis::idp::oidc::redirect::verify_redirect_uri(
                &client,
                Some(black_box("https://spa.example.com/app/route?x=1")),
            )
        })
    });
}

fn argon2(c: &mut Criterion) {
    let params = Argon2Params::default();
    let hashed = hash_password("correct horse battery staple", &params).unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function(
        "verify at the default parameters (m=19 MiB, t=2, p=1)",
        |b| b.iter(|| verify_password(black_box("correct horse battery staple"), &hashed).unwrap()),
    );
    group.finish();
}

/// A store with realm `bench`, 10,000 users and a session of user 0 with a gateway cookie.
fn fixture() -> (tempfile::TempDir, Store, RealmRecord) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(|w| {
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
            Ok::<_, realm::RealmError>(())
        })
        .unwrap();
    let bench = store
        .read()
        .unwrap()
        .realm_by_name("bench")
        .unwrap()
        .unwrap();
    store
        .write(|w| {
            for i in 0..10_000 {
                realm::create_user(
                    w,
                    &bench,
                    &UserRecord {
                        id: format!("00000000-0000-4000-8000-{i:012}"),
                        username: format!("user{i:05}"),
                        email: Some(format!("user{i:05}@example.com")),
                        enabled: true,
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, portcullis::store::StoreError>(())
        })
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    store
        .write(|w| {
            w.put_session(
                &bench.id,
                &SessionRecord {
                    id: "bench-session".into(),
                    user_id: "00000000-0000-4000-8000-000000000000".into(),
                    created_at: now,
                    last_access: now,
                    auth_time: now,
                    gateway_cookies: vec![cookie_hash("bench-secret", false, "app.test")],
                    ..Default::default()
                },
            )
        })
        .unwrap();
    (dir, store, bench)
}

fn store_and_sessions(c: &mut Criterion) {
    let (_dir, store, bench) = fixture();
    c.bench_function("store read: user by username (10k users)", |b| {
        b.iter(|| {
            store
                .read()
                .unwrap()
                .user_by_username(&bench.id, black_box("user04321"))
                .unwrap()
        })
    });
    let mut n = 0u64;
    c.bench_function("store write: session insert", |b| {
        b.iter(|| {
            n += 1;
            let session = SessionRecord {
                id: format!("s-{n}"),
                user_id: "00000000-0000-4000-8000-000000000001".into(),
                ..Default::default()
            };
            store.write(|w| w.put_session(&bench.id, &session)).unwrap()
        })
    });

    let config = Config::parse(
        "[[route]]\nhost = \"app.test\"\nupstream = \"http://127.0.0.1:9000\"\nauth = \"session\"\nrealm = \"bench\"\nclient = \"gw\"\n",
        std::path::Path::new("bench.toml"),
    )
    .unwrap();
    let route = config.proxy.routes[0].clone();
    let app = App::new(
        Arc::new(config),
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        Arc::new(Themes::builtin()),
    );
    let access = Access::new(app);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        "theme=dark; portcullis=bench-session.bench-secret"
            .parse()
            .unwrap(),
    );
    let method = Method::GET;
    let incoming = Incoming {
        method: &method,
        headers: &headers,
        host: "app.test",
        authority: "app.test",
        path: "/dashboard",
        query: None,
        tls: false,
        client_ip: Some("192.0.2.1".parse().unwrap()),
    };
    let passes = |o: Outcome| matches!(o, Outcome::Pass(Some(_)));
    assert!(
        passes(access.check(&route, 0, &incoming)),
        "the session passes"
    );
    c.bench_function("session check, cache hit", |b| {
        b.iter(|| passes(access.check(black_box(&route), 0, black_box(&incoming))))
    });
    c.bench_function(
        "session check, cache miss (store read, roles, ES256 assertion)",
        |b| {
            b.iter(|| {
                access.clear();
                passes(access.check(black_box(&route), 0, black_box(&incoming)))
            })
        },
    );
}

criterion_group!(
    benches,
    jwt,
    routing,
    cidrs,
    redirects,
    store_and_sessions,
    argon2
);
criterion_main!(benches);
