//! What the in-process benchmarks share: the app over a store, a request through the real
//! handler, a form POST, and the concurrent measuring loop; `procs`: the processes the load
//! benches start. (Each bench uses some of them.)
#![allow(dead_code)]

pub mod procs;
pub mod wrk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run `op(i)` from `tasks` concurrent tasks until `limit` passes or `max_ops` are done
/// (`i` counts the calls, each task taking every `tasks`-th); ops/s.
pub fn measure<F, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    limit: Duration,
    max_ops: u64,
    op: F,
) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let op = op.clone();
            let done = done.clone();
            handles.push(tokio::spawn(async move {
                let mut i = t as u64;
                while started.elapsed() < limit && done.load(Ordering::Relaxed) < max_ops {
                    op(i).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += tasks as u64;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The app the server would run over `store`, for `bench.test`.
pub fn app(store: portcullis::store::Store) -> portcullis::idp::App {
    let config = portcullis::config::Config::parse(
        "[server]\nhostnames = [\"bench.test\"]\n",
        std::path::Path::new("bench.toml"),
    )
    .unwrap();
    portcullis::idp::App::new(
        Arc::new(config),
        store,
        Arc::new(portcullis::clock::SystemClock),
        Arc::new(portcullis::metrics::Metrics::new()),
        Arc::new(portcullis::idp::login::theme::Themes::builtin()),
    )
}

/// Send `request` through the real handler, as the server does (no socket).
pub async fn handle(
    app: &portcullis::idp::App,
    request: http::Request<bytes::Bytes>,
) -> http::Response<bytes::Bytes> {
    let (endpoint, params) = app.route(request.uri().path()).unwrap();
    app.handle(
        endpoint,
        &params,
        request,
        portcullis::http::RequestInfo {
            peer: None,
            tls: true,
        },
    )
    .await
}

/// A form POST to `path` of `bench.test`.
pub fn form_post(path: &str, form: &[(&str, &str)]) -> http::Request<bytes::Bytes> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "bench.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from(body))
        .unwrap()
}

/// Store `client` in `realm` with the realm's default client scopes (as a client created
/// through the admin API has them), and the user alice (id `u`) with `password` hashed.
pub fn client_and_alice(
    w: &mut portcullis::store::Write,
    realm: &portcullis::store::RealmRecord,
    mut client: portcullis::store::ClientRecord,
    password: &portcullis::crypto::password::HashedPassword,
) -> Result<(), portcullis::idp::realm::RealmError> {
    use portcullis::idp::realm::{self, RealmError};
    portcullis::idp::client_scopes::attach_realm_defaults(w, &realm.id, &mut client)
        .map_err(RealmError::from)?;
    w.put_client(&realm.id, &client).map_err(RealmError::from)?;
    let user = portcullis::store::UserRecord {
        id: "u".into(),
        username: "alice".into(),
        enabled: true,
        ..Default::default()
    };
    realm::create_user(w, realm, &user).map_err(RealmError::from)?;
    w.put_credential(
        &realm.id,
        "u",
        &portcullis::store::CredentialRecord {
            id: "p".into(),
            kind: "password".into(),
            secret_data: password.secret_data.clone(),
            credential_data: password.credential_data.clone(),
            ..Default::default()
        },
    )
    .map_err(RealmError::from)
}

/// Whether this is `cargo bench` (`--bench`) rather than the smoke run of `cargo test`.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A multi-threaded runtime with one worker per core, and the number of cores.
pub fn runtime() -> (tokio::runtime::Runtime, usize) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    (rt, cores)
}
