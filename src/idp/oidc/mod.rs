//! The OpenID Connect provider endpoints under `/realms/{realm}/protocol/openid-connect/`,
//! plus discovery and the realm info document. Shared here: realm lookup, issuer, request
//! parameters, client authentication and CORS.

pub mod device;

pub mod discovery;
pub mod error;
pub mod par;
pub mod redirect;
pub mod registration;
pub mod token;
pub mod userinfo;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

use crate::crypto::constant_time_eq;
use crate::crypto::jwt;
use crate::http::path::encode_segment;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::error::OAuthError;
use crate::idp::App;
use crate::store::{ClientRecord, Read, RealmRecord};

pub const CLIENT_ASSERTION_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What every back-channel endpoint starts with: a POST from an authenticated client.
pub struct BackChannel {
    pub params: BTreeMap<String, String>,
    pub realm: RealmRecord,
    pub client: ClientRecord,
    pub keys: std::sync::Arc<crate::idp::keys::RealmKeys>,
    pub issuer: String,
    pub now_ms: i64,
}

/// Check the method, read the parameters, find the realm, authenticate the client and load
/// the realm's keys.
pub fn back_channel(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<BackChannel, OAuthError> {
    let params = parameters(request)?;
    let now_ms = app.clock.now_millis();
    let iss = issuer(app, request, info, realm_name);
    let read = app.store.read()?;
    let realm = realm(&read, realm_name)?;
    let client = authenticate_client(
        &app.store,
        &read,
        &realm,
        request,
        &params,
        &format!("{iss}/protocol/openid-connect/token"),
        now_ms / 1000,
    )?;
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, now_ms)
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    Ok(BackChannel {
        params,
        realm,
        client,
        keys,
        issuer: iss,
        now_ms,
    })
}

/// An enabled realm by name, or Keycloak's 404.
pub fn realm(read: &Read, name: &str) -> Result<RealmRecord, OAuthError> {
    match read.realm_by_name(name)? {
        Some(r) if r.enabled => Ok(r),
        _ => Err(OAuthError::RealmNotFound),
    }
}

/// `{base}/realms/{name}`: the configured public URL, else scheme and Host of the request.
pub fn issuer(app: &App, request: &Request, info: &RequestInfo, realm: &str) -> String {
    issuer_at(&base_url(app, request, info), realm)
}

/// The issuer of `realm` under the public base URL `base`: `{base}/realms/{realm}`.
pub fn issuer_at(base: &str, realm: &str) -> String {
    format!("{base}/realms/{}", encode_segment(realm))
}

/// The public base URL, without a trailing slash.
pub fn base_url(app: &App, request: &Request, info: &RequestInfo) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    crate::http::hosts::base_url(app.config.server.public_url.as_ref(), info.tls, host)
}

/// Codes (authorization, device) are stored by hash (hex SHA-256), so a leaked store does
/// not leak usable codes.
pub fn hash_code(code: &str) -> String {
    crate::crypto::sha256_hex(code)
}

/// Request parameters: the query for GET, the form body for POST. A parameter given twice
/// is an error (RFC 6749 §3.1).
pub fn parameters(request: &Request) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut out = BTreeMap::new();
    let mut add = |bytes: &[u8]| -> Result<(), OAuthError> {
        for (k, v) in form_urlencoded::parse(bytes) {
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "duplicated parameter: {k}"
                )));
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
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
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
    store: &crate::store::Store,
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
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b64| -> Result<(String, String), OAuthError> {
            let decoded = STANDARD
                .decode(b64.trim())
                .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
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

    let assertion = match (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) {
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
    match (client.client_authenticator_type.as_str(), assertion) {
        ("client-jwt", Some(assertion)) => {
            verify_client_assertion(
                store,
                &realm.id,
                client_key_verifier(&client),
                &client,
                assertion,
                token_endpoint,
                now_secs,
            )
            .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
            Ok(client)
        }
        ("client-jwt", None) => Err(invalid("Client authentication with signed JWT is required")),
        (_, Some(assertion)) => {
            // `client_secret_jwt`: keyed by the secret, or by the one before a rotation
            // while it still works.
            let secret = client.secret.clone().unwrap_or_default();
            let rotated = client
                .rotated_secret
                .clone()
                .filter(|(_, until)| *until > now_secs)
                .map(|(s, _)| s);
            let verify = move |token: &str| {
                std::iter::once(secret.as_str())
                    .chain(rotated.as_deref())
                    .filter(|s| !s.is_empty())
                    .find_map(|s| jwt::verify_hs256::<serde_json::Value>(token, s.as_bytes()).ok())
            };
            verify_client_assertion(
                store,
                &realm.id,
                Some(Box::new(verify)),
                &client,
                assertion,
                token_endpoint,
                now_secs,
            )
            .map_err(|_| invalid("Invalid client or Invalid client credentials"))?;
            Ok(client)
        }
        (_, None) => {
            let expected = client.secret.as_deref().unwrap_or("");
            // The secret before a rotation still works until it expires.
            let rotated = client
                .rotated_secret
                .as_ref()
                .filter(|(_, until)| *until > now_secs)
                .map(|(s, _)| s.as_str());
            let matches = |candidate: &str, given: &str| {
                !candidate.is_empty() && constant_time_eq(given.as_bytes(), candidate.as_bytes())
            };
            match secret {
                Some(s) if matches(expected, &s) || rotated.is_some_and(|r| matches(r, &s)) => {
                    Ok(client)
                }
                _ => Err(invalid("Invalid client or Invalid client credentials")),
            }
        }
    }
}

type AssertionVerifier = Box<dyn Fn(&str) -> Option<serde_json::Value>>;

/// For `private_key_jwt`: the client's registered public key, from Keycloak's attributes
/// `jwt.credential.certificate` (base64 DER certificate) or `jwks.string` (a JWKS).
fn client_key_verifier(client: &ClientRecord) -> Option<AssertionVerifier> {
    let mut keys = Vec::new();
    if let Some(cert) = client.attributes.get("jwt.credential.certificate") {
        use x509_parser::prelude::*;
        let der = STANDARD.decode(cert.trim()).ok()?;
        let (_, parsed) = X509Certificate::from_der(&der).ok()?;
        keys.push(jwt::VerifyingKey::from_spki_der("", parsed.public_key().raw).ok()?);
    }
    if let Some(jwks) = client.attributes.get("jwks.string") {
        let set: serde_json::Value = serde_json::from_str(jwks).ok()?;
        for jwk in set
            .get("keys")
            .and_then(|k| k.as_array())
            .into_iter()
            .flatten()
        {
            if let Ok(k) = jwt::VerifyingKey::from_jwk(jwk) {
                keys.push(k);
            }
        }
    }
    if keys.is_empty() {
        return None;
    }
    Some(Box::new(move |token: &str| {
        let kid = jwt::decode_header(token).ok()?.kid;
        keys.iter()
            .filter(|k| {
                kid.as_deref()
                    .is_none_or(|kid| k.kid.is_empty() || k.kid == kid)
            })
            .find_map(|k| k.verify::<serde_json::Value>(token).ok())
    }))
}

/// A client assertion (RFC 7523): signature by `verify`, issuer and subject the client,
/// audience the realm's token endpoint or issuer, not expired, and a `jti` not seen before
/// (replays within the assertion's lifetime are refused).
fn verify_client_assertion(
    store: &crate::store::Store,
    realm_id: &str,
    verify: Option<AssertionVerifier>,
    client: &ClientRecord,
    assertion: &str,
    token_endpoint: &str,
    now_secs: i64,
) -> Result<(), ()> {
    let claims = verify.ok_or(())?(assertion).ok_or(())?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if s("iss") != Some(&client.client_id) || s("sub") != Some(&client.client_id) {
        return Err(());
    }
    let issuer = token_endpoint.trim_end_matches("/protocol/openid-connect/token");
    let accepted = |a: &str| a == token_endpoint || a == issuer;
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => accepted(a),
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str().is_some_and(accepted)),
        _ => false,
    };
    let exp = claims.get("exp").and_then(|v| v.as_i64()).ok_or(())?;
    if !aud_ok || exp <= now_secs {
        return Err(());
    }
    let jti = s("jti").ok_or(())?;
    // Remembered (by every node) until the assertion expires: a replay is refused for as
    // long as the assertion itself would be accepted.
    let key = format!("assertion:{}:{jti}", client.id);
    match store.write(|w| w.use_once(realm_id, &key, exp)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(()),
        Err(e) => {
            tracing::warn!(error = %e, "a client assertion could not be recorded");
            Err(())
        }
    }
}

/// A JSON response that must not be cached (token responses).
pub fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = crate::http::json_response(status, body);
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Add CORS headers when the request's `Origin` is one of the client's web origins (or,
/// when no client is known, any origin of any client in the realm is not assumed: nothing).
pub fn with_cors(mut response: Response, request: &Request, allowed: &[String]) -> Response {
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return response;
    };
    if allowed.iter().any(|a| a == "*" || a == origin) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

/// Answer a CORS preflight for endpoints browsers call directly.
pub fn preflight(request: &Request, methods: &str) -> Response {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::OK;
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Ok(methods) = HeaderValue::from_str(methods) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Accept"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("3600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The bearer token of a request (`Authorization: Bearer ...`, any case of the scheme).
pub fn bearer_token(request: &Request) -> Option<&str> {
    crate::http::bearer_token(request.headers())
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn post(query: Option<&str>, body: &str) -> Request {
        let uri = match query {
            Some(q) => format!("/t?{q}"),
            None => "/t".to_string(),
        };
        http::Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(bytes::Bytes::from(body.to_string()))
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Distinct parameters, however their names and values are spelled, read back as
        /// they were encoded (query and form alike); any one given twice, in the query, the
        /// body or across both, is refused; any bytes are answered.
        #[test]
        fn parameters_read_back_and_duplicates_are_refused(
            pairs in proptest::collection::btree_map("[ -~]{1,10}", "[ -~\u{e9}\u{1f600}]{0,16}", 1..6),
            in_query in any::<bool>(),
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let request = if in_query { post(Some(&encoded), "") } else { post(None, &encoded) };
            let read = parameters(&request).unwrap();
            prop_assert_eq!(&read, &pairs);
            let (first_key, first_value) = pairs.iter().next().unwrap();
            let again = form_urlencoded::Serializer::new(String::new())
                .append_pair(first_key, first_value)
                .finish();
            prop_assert!(parameters(&post(Some(&encoded), &again)).is_err());
            let both = format!("{encoded}&{again}");
            prop_assert!(parameters(&post(None, &both)).is_err());
            let junk = http::Request::builder()
                .method(Method::POST)
                .uri("/t")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(bytes::Bytes::from(noise))
                .unwrap();
            let _ = parameters(&junk);
        }
    }
}
