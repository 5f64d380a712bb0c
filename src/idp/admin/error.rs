//! Errors of the admin REST API, with Keycloak's `{"errorMessage": ...}` body, and the one
//! conversion of store errors into them (conflicts 409, missing records 404, the rest 500).

use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use crate::http::error::{ApiError, IntoResponse, RETRY_AFTER_SECS};
use crate::http::{json_response, Response};
use crate::store::StoreError;

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
    /// 400 for values the user profile refuses, in Keycloak's body (`field`,
    /// `errorMessage` as a message key, `params`, and `errors` when there are several).
    #[error("{0}")]
    Profile(serde_json::Value),
    #[error("method not allowed")]
    MethodNotAllowed(Vec<http::Method>),
    /// A server we depend on (SMTP) failed; the message says how.
    #[error("{0}")]
    BadGateway(String),
    /// Too busy right now (503 with `Retry-After`).
    #[error("Server busy, try again later")]
    Busy,
    /// The store takes no writes now (the disk is full): 503 with `Retry-After`.
    #[error("The server cannot store changes right now, try again later")]
    StoreUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

/// A change a directory's user cannot have: a read-only field in the user profile's error
/// shape, the directory's own refusal as a 400 saying so.
impl From<crate::idp::federation::writes::Refusal> for AdminError {
    fn from(r: crate::idp::federation::writes::Refusal) -> Self {
        use crate::idp::federation::writes::Refusal;
        match r {
            Refusal::ReadOnly(f) if f == "password" => {
                AdminError::BadRequest("Can't reset password as account is read only".into())
            }
            Refusal::ReadOnly(f) => AdminError::Profile(serde_json::json!({
                "field": f, "errorMessage": "error-user-attribute-read-only", "params": [f]
            })),
            Refusal::Policy(m) => AdminError::BadRequest(m),
            Refusal::Exists => AdminError::Conflict("User exists with same username".into()),
            Refusal::Directory(m) => {
                AdminError::BadRequest(format!("Could not modify user in LDAP: {m}"))
            }
            Refusal::Store(m) => AdminError::Internal(m),
        }
    }
}

/// The one conversion: store errors that are the caller's fault become 409/404; the rest
/// are internal (500), so a bare `?` answers a conflict as a conflict.
impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        use crate::store::Conflict;
        match e {
            StoreError::Conflict(Conflict::Username) => {
                AdminError::Conflict("User exists with same username".into())
            }
            StoreError::Conflict(Conflict::Email) => {
                AdminError::Conflict("User exists with same email".into())
            }
            StoreError::Conflict(Conflict::ClientId) => {
                AdminError::Conflict("Client already exists".into())
            }
            StoreError::Conflict(Conflict::ClientScopeName) => {
                AdminError::Conflict("Client Scope already exists".into())
            }
            StoreError::Conflict(Conflict::RoleName) => {
                AdminError::Conflict("Role already exists".into())
            }
            StoreError::Conflict(Conflict::GroupName) => {
                AdminError::Conflict("Top level group named already exists.".into())
            }
            StoreError::Conflict(Conflict::RealmName) => {
                AdminError::Conflict("Conflict detected. See logs for details".into())
            }
            StoreError::Conflict(Conflict::FederatedIdentity) => {
                AdminError::Conflict("User is already linked with provider".into())
            }
            StoreError::Conflict(Conflict::Id) => {
                AdminError::Conflict("A resource with this id already exists".into())
            }
            StoreError::Missing(what) => AdminError::NotFound(format!("Could not find {what}")),
            StoreError::Unavailable(_) => AdminError::StoreUnavailable,
            other => AdminError::Internal(other.to_string()),
        }
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

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden | AdminError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Busy | AdminError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::BadRequest(_) | AdminError::Profile(_) => StatusCode::BAD_REQUEST,
            AdminError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
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
            AdminError::MethodNotAllowed(_) => json!({
                "error": "HTTP 405 Method Not Allowed",
                "errorMessage": "HTTP 405 Method Not Allowed"
            }),
            AdminError::Profile(body) => body.clone(),
            other => json!({"errorMessage": other.to_string()}),
        };
        let mut r = json_response(status, &body);
        if matches!(self, AdminError::Unauthorized) {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let AdminError::MethodNotAllowed(methods) = &self {
            if let Ok(v) = HeaderValue::from_str(&crate::http::router::method_list(methods)) {
                r.headers_mut().insert(header::ALLOW, v);
            }
        }
        if matches!(self, AdminError::Busy | AdminError::StoreUnavailable) {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_conflict_uses_error_message() {
        let r = AdminError::Conflict("User exists with same username".into()).into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["errorMessage"], "User exists with same username");
    }
}
