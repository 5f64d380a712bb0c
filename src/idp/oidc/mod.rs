//! The OpenID Connect provider endpoints under `/realms/{realm}/protocol/openid-connect/`,
//! plus discovery and the realm info document. Shared here: realm lookup, issuer, request
//! parameters, client authentication and CORS.

pub mod discovery;
pub mod redirect;
pub mod token;
pub mod userinfo;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

use crate::crypto::constant_time_eq;
use crate::crypto::jwt;
use crate::http::error::OAuthError;
use crate::http::{App, Request, RequestInfo, Response};
use crate::store::{ClientRecord, Read, RealmRecord};

pub const CLIENT_ASSERTION_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An enabled realm by name, or Keycloak's 404.
pub fn realm(read: &Read, name: &str) -> Result<RealmRecord, OAuthError> {
    match read.realm_by_name(name)? {
        Some(r) if r.enabled => Ok(r),
        _ => Err(OAuthError::RealmNotFound),
    }
}

/// `{base}/realms/{name}`: the configured public URL, else scheme and Host of the request.
pub fn issuer(app: &App, request: &Request, info: &RequestInfo, realm: &str) -> String {
    format!("{}/realms/{}", base_url(app, request, info), encode_segment(realm))
}

/// The public base URL, without a trailing slash.
pub fn base_url(app: &App, request: &Request, info: &RequestInfo) -> String {
    if let Some(url) = &app.config.server.public_url {
        return url.as_str().trim_end_matches('/').to_string();
    }
    let scheme = if info.tls { "https" } else { "http" };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| valid_host(h))
        .map(String::from)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

/// A Host header we are willing to echo into URLs: a name or address and optional port.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Percent-encode one path segment.
pub fn encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Request parameters: the query for GET, the form body for POST. A parameter given twice
/// is an error (RFC 6749 §3.1).
pub fn parameters(request: &Request) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut out = BTreeMap::new();
    let mut add = |bytes: &[u8]| -> Result<(), OAuthError> {
        for (k, v) in form_urlencoded::parse(bytes) {
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::InvalidRequest(format!("duplicated parameter: {k}")));
            }
        }
        Ok(())
    };
    if let Some(q) = request.uri().query() {
        add(q.as_bytes())?;
    }
    if request.method() == Method::POST && !request.body().is_empty() {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded".into(),
            ));
        }
        add(request.body())?;
    }
    Ok(out)
}

/// Authenticate the client of a back-channel request: `client_secret_basic`,
/// `client_secret_post`, `client_secret_jwt`, or a public client by id alone.
pub fn authenticate_client(
    read: &Read,
    realm: &RealmRecord,
    request: &Request,
    params: &BTreeMap<String, String>,
    token_endpoint: &str,
    now_secs: i64,
) -> Result<ClientRecord, OAuthError> {
    let invalid = |d: &str| OAuthError::InvalidClient {
        realm: realm.name.clone(),
        description: d.to_string(),
    };
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .map(|b64| -> Result<(String, String), OAuthError> {
            let decoded = STANDARD
                .decode(b64.trim())
                .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
            let text = String::from_utf8(decoded).map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(|| invalid("Invalid client or Invalid client credentials"))?;
            let decode = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((decode(id), decode(secret)))
        })
        .transpose()?;

    let assertion = match (params.get("client_assertion_type"), params.get("client_assertion")) {
        (Some(t), Some(a)) if t == CLIENT_ASSERTION_JWT => Some(a.as_str()),
        (Some(_), Some(_)) => return Err(invalid("Invalid client assertion type")),
        _ => None,
    };
    let assertion_subject = match assertion {
        Some(a) => Some(
            jwt::decode_unverified::<serde_json::Value>(a)
                .ok()
                .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from))
                .ok_or_else(|| invalid("Invalid client assertion"))?,
        ),
        None => None,
    };

    let (client_id, secret) = match (&basic, params.get("client_id")) {
        (Some((id, secret)), form_id) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(invalid("Invalid client or Invalid client credentials"));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id)) => (id.clone(), params.get("client_secret").cloned()),
        (None, None) => match &assertion_subject {
            Some(sub) => (sub.clone(), None),
            None => return Err(invalid("Parameter client_id not present")),
        },
    };
    let client = read
        .client_by_client_id(&realm.id, &client_id)?
        .filter(|c| c.enabled)
        .ok_or_else(|| invalid("Invalid client or Invalid client credentials"))?;
    if client.bearer_only {
        return Err(invalid("Bearer-only not allowed"));
    }
    if client.public_client {
        return Ok(client);
    }
    let expected = client.secret.as_deref().unwrap_or("");
    if let Some(assertion) = assertion {
        verify_client_assertion(&client, assertion, token_endpoint, now_secs)
            .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
        return Ok(client);
    }
    match secret {
        Some(s) if !expected.is_empty() && constant_time_eq(s.as_bytes(), expected.as_bytes()) => Ok(client),
        _ => Err(invalid("Invalid client or Invalid client credentials")),
    }
}

/// `client_secret_jwt`: an HS256 assertion signed with the client secret, issued and
/// subject the client, audience the realm's token endpoint or issuer, not expired.
fn verify_client_assertion(client: &ClientRecord, assertion: &str, token_endpoint: &str, now_secs: i64) -> Result<(), ()> {
    let secret = client.secret.as_deref().filter(|s| !s.is_empty()).ok_or(())?;
    let claims: serde_json::Value = jwt::verify_hs256(assertion, secret.as_bytes()).map_err(|_| ())?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if s("iss") != Some(&client.client_id) || s("sub") != Some(&client.client_id) {
        return Err(());
    }
    let issuer = token_endpoint.trim_end_matches("/protocol/openid-connect/token");
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == token_endpoint || a == issuer,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str().is_some_and(|a| a == token_endpoint || a == issuer)),
        _ => false,
    };
    let exp_ok = claims.get("exp").and_then(|v| v.as_i64()).is_some_and(|e| e > now_secs);
    if aud_ok && exp_ok {
        Ok(())
    } else {
        Err(())
    }
}

/// A JSON response that must not be cached (token responses).
pub fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = crate::http::json_response(status, body);
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Add CORS headers when the request's `Origin` is one of the client's web origins (or,
/// when no client is known, any origin of any client in the realm is not assumed: nothing).
pub fn with_cors(mut response: Response, request: &Request, allowed: &[String]) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return response;
    };
    if allowed.iter().any(|a| a == "*" || a == origin) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

/// Answer a CORS preflight for endpoints browsers call directly.
pub fn preflight(request: &Request, methods: &'static str) -> Response {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::OK;
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Accept"),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The bearer token of a request (`Authorization: Bearer ...`).
pub fn bearer_token(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
