//! Pushed authorization requests (RFC 9126): a client posts its authorization parameters
//! over the back channel (authenticated) and gets a short-lived `request_uri` to send the
//! browser to `/auth` with, so the parameters never travel through the browser.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::json;

use crate::crypto::random_token;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::error::OAuthError;
use crate::idp::App;
use crate::store::LoginFlowRecord;

use super::{authenticate_client, issuer, no_store_json, parameters, realm};

pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
const LIFETIME_SECS: i64 = 60;
/// Stored among login flows under this id prefix (they expire the same way).
const FLOW_PREFIX: &str = "par-";

/// `POST .../ext/par/request`
pub async fn push(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Result<Response, OAuthError> {
    let params = parameters(request)?;
    if params.contains_key("request_uri") {
        return Err(OAuthError::InvalidRequest(
            "request_uri is not allowed in a pushed request".into(),
        ));
    }
    let now = app.clock.now_millis();
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
        now / 1000,
    )?;
    drop(read);
    let mut stored: BTreeMap<String, String> = params
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "client_secret" | "client_assertion" | "client_assertion_type"
            )
        })
        .collect();
    stored.insert("client_id".into(), client.client_id.clone());
    let id = format!("{FLOW_PREFIX}{}", random_token(24));
    let flow = LoginFlowRecord {
        id: id.clone(),
        params: stored,
        created_at: now,
        expires_at: now + LIFETIME_SECS * 1000,
        ..Default::default()
    };
    app.store.write(|w| w.put_login_flow(&realm.id, &flow))?;
    let mut r = no_store_json(
        StatusCode::CREATED,
        &json!({"request_uri": format!("{REQUEST_URI_PREFIX}{}", &id[FLOW_PREFIX.len()..]), "expires_in": LIFETIME_SECS}),
    );
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// The pushed parameters a `request_uri` names, for `client_id`; single use.
pub fn take(
    app: &App,
    realm_id: &str,
    request_uri: &str,
    client_id: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let token = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    let id = format!("{FLOW_PREFIX}{token}");
    let now = app.clock.now_millis();
    // Consumed only by the client it was pushed for: another client_id naming it (a
    // guessed or leaked request_uri) must not use it up for the rightful one.
    app.store
        .write(|w| {
            let Some(flow) = w.login_flow(realm_id, &id)? else {
                return Ok(None);
            };
            let owner = flow.params.get("client_id").map(String::as_str);
            if client_id.is_some_and(|c| owner != Some(c)) {
                return Ok(None);
            }
            w.delete_login_flow(realm_id, &id)?;
            Ok::<_, crate::store::StoreError>((flow.expires_at > now).then_some(flow.params))
        })
        .ok()?
}
