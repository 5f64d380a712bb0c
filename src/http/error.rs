//! How errors become HTTP: the [`IntoResponse`] trait every error type of the server
//! implements (at its own boundary: `idp::oidc::error`, `idp::admin::error`), and the
//! errors of the generic HTTP layer itself. Internal details go to the log, never to the
//! client.

use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use super::{json_response, Response};

/// Errors of the generic HTTP layer (routing, methods, bodies, internal faults). Protocol
/// specific errors (OAuth, admin) get their own enums and map here too.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("method not allowed")]
    MethodNotAllowed(Vec<http::Method>),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    BadRequest(String),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

/// An error (or any value) that knows its HTTP answer.
pub trait IntoResponse {
    fn into_response(self) -> Response;
}

impl IntoResponse for ApiError {
    /// The HTTP response for this error.
    fn into_response(self) -> Response {
        let (status, code, description) = match &self {
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".to_string(),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "access denied".to_string(),
            ),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed for this resource".to_string(),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large".to_string(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "service unavailable".to_string(),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error while serving a request");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal server error".to_string(),
                )
            }
        };
        let mut response = json_response(
            status,
            &json!({"error": code, "error_description": description}),
        );
        if let ApiError::Unavailable = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if let ApiError::MethodNotAllowed(methods) = &self {
            let allow = methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        response
    }
}

/// Seconds a client is told to wait when the server is too busy (`Retry-After`).
pub const RETRY_AFTER_SECS: &str = "1";

/// Header values must not carry quotes or control characters.
pub fn header_safe(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let r = ApiError::Internal("disk on fire at /secret/path".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!std::str::from_utf8(r.body()).unwrap().contains("secret"));
    }

    #[test]
    fn bad_request_is_400_json() {
        let r = ApiError::BadRequest("missing field".into()).into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error_description"], "missing field");
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}
