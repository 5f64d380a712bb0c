//! The device authorization grant (RFC 8628): `auth/device` hands a device a device code
//! and a user code; the user enters the user code at `/realms/{realm}/device` and logs in;
//! the device polls the token endpoint until the grant is approved. Clients must have
//! Keycloak's `oauth2.device.authorization.grant.enabled` attribute set to `true`.

use http::StatusCode;
use rand::Rng;
use serde_json::json;

use crate::crypto::random_token;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::error::OAuthError;
use crate::idp::App;
use crate::store::{ClientRecord, DeviceCodeRecord};

use super::hash_code;
use super::no_store_json;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ENABLED_ATTRIBUTE: &str = "oauth2.device.authorization.grant.enabled";
/// Consonants only: no words, no look-alike vowels and digits.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const LIFETIME_SECS: i64 = 600;
const INTERVAL_SECS: i64 = 5;

pub fn enabled_for(client: &ClientRecord) -> bool {
    client
        .attributes
        .get(ENABLED_ATTRIBUTE)
        .is_some_and(|v| v == "true")
}

/// `XXXXXXXX` from what a user typed (`xxxx-xxxx`, spaces, lower case).
pub fn normalise_user_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

/// `POST .../auth/device`
pub async fn device_authorization(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let super::BackChannel {
        params,
        realm,
        client,
        now_ms: now,
        issuer: iss,
        ..
    } = super::back_channel(app, request, info, realm_name)?;
    if !enabled_for(&client) {
        return Err(OAuthError::UnauthorizedClient(
            "Client is not allowed to initiate OAuth 2.0 Device Authorization Grant. The flow is disabled for the client.".into(),
        ));
    }
    let scopes = crate::idp::client_scopes::resolve(
        &app.store.read()?,
        &realm.id,
        &client,
        params.get("scope").map(String::as_str),
        true,
    )?;
    let device_code = random_token(32);
    let user_code = new_user_code();
    let record = DeviceCodeRecord {
        user_code: user_code.clone(),
        client_id: client.client_id.clone(),
        scope: scopes.to_param(),
        expires_at: now + LIFETIME_SECS * 1000,
        interval: INTERVAL_SECS,
        last_poll: 0,
        status: "pending".into(),
        session_id: None,
        user_id: None,
    };
    app.store
        .write(|w| w.put_device_code(&realm.id, &hash_code(&device_code), &record))?;
    let shown = format!("{}-{}", &user_code[..4], &user_code[4..]);
    let verification = format!("{iss}/device");
    Ok(no_store_json(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification,
            "verification_uri_complete": format!("{verification}?user_code={shown}"),
            "expires_in": LIFETIME_SECS,
            "interval": INTERVAL_SECS,
        }),
    ))
}
