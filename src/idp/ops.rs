//! Operations endpoints: liveness, readiness and Prometheus metrics.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use crate::http::{json_response, ApiError, Response};
use crate::idp::App;

pub fn live() -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &json!({"status": "UP"})))
}

/// Ready once the store is open and the listeners accept connections, and while the
/// store can serve: a redb file that met a disk failure takes no writes until restarted;
/// a PostgreSQL database must answer (checked at each call, so the node turns UP again by
/// itself when the database returns).
pub fn ready(app: &App) -> Result<Response, ApiError> {
    if app.is_ready() && app.store.healthy() {
        Ok(json_response(StatusCode::OK, &json!({"status": "UP"})))
    } else {
        Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "DOWN"}),
        ))
    }
}

pub fn metrics(app: &App) -> Result<Response, ApiError> {
    // Metrics matter most while the database is away: they are served without it.
    let sessions = app
        .store
        .read()
        .and_then(|r| r.session_count())
        .unwrap_or(0);
    let mut text = app.metrics.render(sessions);
    if let Some(pg) = app.store.postgres() {
        store_metrics(&mut text, pg);
    }
    let mut response = Response::new(Bytes::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The PostgreSQL pool and query figures.
fn store_metrics(text: &mut String, pg: &crate::store::postgres::Pg) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let (open, idle, max) = pg.pool_status();
    let stats = pg.stats();
    let lines = [
        (
            "portcullis_store_pool_connections",
            "gauge",
            "Database connections open",
            open as f64,
        ),
        (
            "portcullis_store_pool_idle",
            "gauge",
            "Database connections idle in the pool",
            idle as f64,
        ),
        (
            "portcullis_store_pool_max",
            "gauge",
            "Database connections at most",
            max as f64,
        ),
        (
            "portcullis_store_queries_total",
            "counter",
            "Database calls made",
            stats.queries.load(Relaxed) as f64,
        ),
        (
            "portcullis_store_query_seconds_total",
            "counter",
            "Time spent waiting for the database",
            stats.query_micros.load(Relaxed) as f64 / 1e6,
        ),
        (
            "portcullis_store_failures_total",
            "counter",
            "Database calls that found it unreachable",
            stats.failures.load(Relaxed) as f64,
        ),
        (
            "portcullis_store_up",
            "gauge",
            "Whether the database answered the last call",
            f64::from(u8::from(pg.reachable())),
        ),
        (
            "portcullis_store_listening",
            "gauge",
            "Whether this node hears other nodes' writes",
            f64::from(u8::from(pg.listening())),
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}
