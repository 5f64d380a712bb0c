//! OAuth 2.0 / OpenID Connect errors at the protocol's boundary (RFC 6749 §5.2 codes) and
//! their HTTP answers.

use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use crate::http::error::{header_safe, IntoResponse, RETRY_AFTER_SECS};
use crate::http::{json_response, Response};
use crate::store::StoreError;

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
    /// Client registration (RFC 7591): `invalid_client_metadata`, `invalid_redirect_uri`
    /// (400), `invalid_token` (401), `insufficient_scope` (403).
    #[error("{error}")]
    Registration { error: String, description: String },
    /// No such resource (404).
    #[error("not_found")]
    NotFound,
    #[error("server_error")]
    Internal(String),
}

impl From<crate::idp::client_scopes::ScopeError> for OAuthError {
    fn from(e: crate::idp::client_scopes::ScopeError) -> Self {
        match e {
            crate::idp::client_scopes::ScopeError::Store(s) => s.into(),
            invalid => OAuthError::InvalidScope(invalid.to_string()),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            // The disk is full: 503 `temporarily_unavailable`, as for a busy server.
            StoreError::Unavailable(_) => OAuthError::Busy,
            other => OAuthError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
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
            OAuthError::Registration { error, description } => {
                let status = match error.as_str() {
                    "invalid_token" => StatusCode::UNAUTHORIZED,
                    "insufficient_scope" => StatusCode::FORBIDDEN,
                    _ => StatusCode::BAD_REQUEST,
                };
                return json_response(
                    status,
                    &json!({"error": error, "error_description": description}),
                );
            }
            OAuthError::NotFound => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "HTTP 404 Not Found"}),
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
