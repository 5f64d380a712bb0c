//! Operations endpoints: liveness, readiness and Prometheus metrics.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use crate::http::{json_response, ApiError, Response};
use crate::idp::App;

pub fn live() -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &json!({"status": "UP"})))
}

/// Ready once the store is open and the listeners accept connections.
pub fn ready(app: &App) -> Result<Response, ApiError> {
    // A store that met a disk failure takes no writes until restarted: not ready.
    if app.is_ready() && !app.store.needs_restart() {
        Ok(json_response(StatusCode::OK, &json!({"status": "UP"})))
    } else {
        Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "DOWN"}),
        ))
    }
}

pub fn metrics(app: &App) -> Result<Response, ApiError> {
    let sessions = app.store.read()?.session_count()?;
    let text = app.metrics.render(sessions);
    let mut response = Response::new(Bytes::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
