//! Discovery (`.well-known/openid-configuration`), the JWKS (`certs`) and the realm info
//! document (`GET /realms/{realm}`, which python-keycloak reads the public key from).

use http::StatusCode;
use serde_json::json;

use crate::crypto::jwt::Algorithm;
use crate::http::{json_response, Request, RequestInfo, Response};
use crate::idp::oidc::error::OAuthError;
use crate::idp::App;

use super::{issuer, realm};

pub async fn discovery(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let read = app.store.read()?;
    realm(&read, realm_name)?;
    let iss = issuer(app, request, info, realm_name);
    let oidc = format!("{iss}/protocol/openid-connect");
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{oidc}/auth"),
        "token_endpoint": format!("{oidc}/token"),
        "introspection_endpoint": format!("{oidc}/token/introspect"),
        "userinfo_endpoint": format!("{oidc}/userinfo"),
        "end_session_endpoint": format!("{oidc}/logout"),
        "frontchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "jwks_uri": format!("{oidc}/certs"),
        "check_session_iframe": format!("{oidc}/login-status-iframe.html"),
        "grant_types_supported": [
            "authorization_code", "refresh_token", "password", "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "acr_values_supported": ["0", "1"],
        "response_types_supported": ["code", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["RS256", "ES256", "none"],
        "request_object_signing_alg_values_supported": ["none"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "registration_endpoint": format!("{iss}/clients-registrations/openid-connect"),
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "client_secret_post", "client_secret_jwt"
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "ES256"],
        "introspection_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "client_secret_post", "client_secret_jwt"
        ],
        "revocation_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "client_secret_post", "client_secret_jwt"
        ],
        "claims_supported": [
            "aud", "sub", "iss", "auth_time", "name", "given_name", "family_name",
            "preferred_username", "email", "email_verified", "acr", "azp", "sid", "nonce"
        ],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": true,
        "scopes_supported": [
            "openid", "profile", "email", "roles", "web-origins", "offline_access", "acr", "basic",
            "address", "phone", "microprofile-jwt"
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "code_challenge_methods_supported": ["plain", "S256"],
        "tls_client_certificate_bound_access_tokens": false,
        "revocation_endpoint": format!("{oidc}/revoke"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "device_authorization_endpoint": format!("{oidc}/auth/device"),
        "pushed_authorization_request_endpoint": format!("{oidc}/ext/par/request"),
        "require_pushed_authorization_requests": false,
        "authorization_response_iss_parameter_supported": true,
    });
    Ok(with_any_origin(
        json_response(StatusCode::OK, &body),
        request,
    ))
}

/// The JWKS: every active and passive key of the realm.
pub async fn certs(app: &App, request: &Request, realm_name: &str) -> Result<Response, OAuthError> {
    let read = app.store.read()?;
    let realm = realm(&read, realm_name)?;
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, app.clock.now_millis())
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    let mut r = json_response(StatusCode::OK, &keys.jwks);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/jwk-set+json"),
    );
    Ok(with_any_origin(r, request))
}

/// `GET /realms/{realm}`: Keycloak's realm info, with the RS256 public key.
pub async fn realm_info(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let read = app.store.read()?;
    let realm = realm(&read, realm_name)?;
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, app.clock.now_millis())
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    let algorithm =
        Algorithm::parse(&realm.default_signature_algorithm).unwrap_or(Algorithm::RS256);
    let public_key = keys
        .signer(algorithm)
        .map(|k| k.verifying_key().spki_base64())
        .unwrap_or_default();
    let iss = issuer(app, request, info, realm_name);
    let body = json!({
        "realm": realm.name,
        "public_key": public_key,
        "token-service": format!("{iss}/protocol/openid-connect"),
        "account-service": format!("{iss}/account"),
        "tokens-not-before": realm.not_before,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Discovery and keys are public documents: any origin may read them.
fn with_any_origin(mut response: Response, request: &Request) -> Response {
    if request.headers().contains_key(http::header::ORIGIN) {
        response.headers_mut().insert(
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            http::HeaderValue::from_static("*"),
        );
    }
    response
}
