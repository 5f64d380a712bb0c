//! The one place where errors become HTTP statuses and JSON bodies. Internal details go to
//! the log, never to the client.

use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use super::{json_response, Response};
use crate::store::StoreError;

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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    /// The HTTP response for this error.
    pub fn into_response(self) -> Response {
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

/// OAuth 2.0 / OpenID Connect errors (RFC 6749 §5.2 codes); `Display` is the wire code.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request")]
    InvalidRequest(String),
    /// 401 with `WWW-Authenticate: Basic`.
    #[error("invalid_client")]
    InvalidClient { realm: String, description: String },
    #[error("invalid_grant")]
    InvalidGrant(String),
    /// Wrong user credentials on the password grant: Keycloak answers 401 `invalid_grant`.
    #[error("invalid_grant")]
    InvalidCredentials,
    #[error("unauthorized_client")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope")]
    InvalidScope(String),
    /// 401 with `WWW-Authenticate: Bearer ... error="invalid_token"` (userinfo).
    #[error("invalid_token")]
    InvalidToken { realm: String, description: String },
    #[error("authorization_pending")]
    AuthorizationPending,
    #[error("slow_down")]
    SlowDown,
    #[error("expired_token")]
    ExpiredToken,
    #[error("access_denied")]
    AccessDenied(String),
    /// Unknown or disabled realm (Keycloak: 404 `Realm does not exist`).
    #[error("realm")]
    RealmNotFound,
    /// Too busy to check a password now: 503 with `Retry-After`.
    #[error("temporarily_unavailable")]
    Busy,
    #[error("server_error")]
    Internal(String),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Internal(e.to_string())
    }
}

impl OAuthError {
    pub fn into_response(self) -> Response {
        let code = self.to_string();
        let (status, description) = match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::InvalidScope(d) => (StatusCode::BAD_REQUEST, d),
            OAuthError::UnauthorizedClient(d) | OAuthError::AccessDenied(d) => {
                (StatusCode::BAD_REQUEST, d)
            }
            OAuthError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, "Invalid user credentials".into())
            }
            OAuthError::UnsupportedGrantType => {
                (StatusCode::BAD_REQUEST, "Unsupported grant_type".into())
            }
            OAuthError::AuthorizationPending => (
                StatusCode::BAD_REQUEST,
                "The authorization request is still pending".into(),
            ),
            OAuthError::SlowDown => (StatusCode::BAD_REQUEST, "Slow down".into()),
            OAuthError::ExpiredToken => (
                StatusCode::BAD_REQUEST,
                "The device code has expired".into(),
            ),
            OAuthError::RealmNotFound => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "Realm does not exist"}),
                );
            }
            OAuthError::InvalidClient { realm, description } => {
                let mut r = json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"error": code, "error_description": description}),
                );
                if let Ok(v) =
                    HeaderValue::from_str(&format!("Basic realm=\"{}\"", header_safe(&realm)))
                {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return r;
            }
            OAuthError::InvalidToken { realm, description } => {
                let mut r = json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"error": code, "error_description": description}),
                );
                let value = format!(
                    "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                    header_safe(&realm),
                    header_safe(&description)
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return r;
            }
            OAuthError::Busy => {
                let mut r = json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": code, "error_description": "Server busy, try again later"}),
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
                return r;
            }
            OAuthError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in an OAuth endpoint");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error".into(),
                )
            }
        };
        let mut r = json_response(
            status,
            &json!({"error": code, "error_description": description}),
        );
        r.headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        r
    }
}

/// Admin REST API errors, with Keycloak's `{"errorMessage": ...}` body.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No or invalid bearer token.
    #[error("HTTP 401 Unauthorized")]
    Unauthorized,
    #[error("HTTP 403 Forbidden")]
    Forbidden,
    /// 403 with a reason the administrator can act on.
    #[error("{0}")]
    ForbiddenBecause(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("method not allowed")]
    MethodNotAllowed(Vec<http::Method>),
    /// A server we depend on (SMTP) failed; the message says how.
    #[error("{0}")]
    BadGateway(String),
    /// Too busy right now (503 with `Retry-After`).
    #[error("Server busy, try again later")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => AdminError::NotFound("Not Found".into()),
            ApiError::Forbidden => AdminError::Forbidden,
            ApiError::MethodNotAllowed(m) => AdminError::MethodNotAllowed(m),
            ApiError::PayloadTooLarge | ApiError::BadRequest(_) => {
                AdminError::BadRequest(e.to_string())
            }
            ApiError::Unavailable => AdminError::Busy,
            ApiError::Internal(_) => AdminError::Internal(e.to_string()),
        }
    }
}

impl AdminError {
    pub fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden | AdminError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AdminError::MethodNotAllowed(m) => {
                return ApiError::MethodNotAllowed(m.clone()).into_response()
            }
            AdminError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in the admin API");
                return json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"errorMessage": "Internal server error"}),
                );
            }
        };
        let body = match &self {
            AdminError::Unauthorized => json!({"error": "HTTP 401 Unauthorized"}),
            AdminError::Forbidden => {
                json!({"error": "HTTP 403 Forbidden", "errorMessage": "HTTP 403 Forbidden"})
            }
            other => json!({"errorMessage": other.to_string()}),
        };
        let mut r = json_response(status, &body);
        if matches!(self, AdminError::Unauthorized) {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, AdminError::Busy) {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        r
    }
}

/// Seconds a client is told to wait when the server is too busy (`Retry-After`).
pub const RETRY_AFTER_SECS: &str = "1";

/// Header values must not carry quotes or control characters.
fn header_safe(s: &str) -> String {
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
    fn invalid_client_has_basic_challenge() {
        let r = OAuthError::InvalidClient {
            realm: "test".into(),
            description: "Invalid client or Invalid client credentials".into(),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"test\"");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "invalid_client");
    }

    #[test]
    fn admin_conflict_uses_error_message() {
        let r = AdminError::Conflict("User exists with same username".into()).into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["errorMessage"], "User exists with same username");
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
