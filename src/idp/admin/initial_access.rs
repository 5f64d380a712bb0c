//! `/admin/realms/{realm}/clients-initial-access` (the tokens that allow a dynamic client
//! registration) and `clients/{id}/registration-access-token`.

use serde::Deserialize;
use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::client_registration::{new_registration_token, InitialAccess, INITIAL_ACCESS};

use super::repr::client_repr;
use super::{deleted, ok, Cx, Permission};

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "ClientInitialAccessCreatePresentation")]
pub(super) struct Input {
    /// Seconds; 0: no expiry.
    expiration: i64,
    /// Registrations it allows.
    count: i64,
}

/// `GET /clients-initial-access`: the tokens (never the token itself).
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let now = cx.now_ms / 1000;
    let list: Vec<Value> = cx
        .app
        .store
        .read()?
        .objects(&realm.id, INITIAL_ACCESS)?
        .into_iter()
        .filter_map(|v| serde_json::from_value::<InitialAccess>(v).ok())
        .filter(|ia| !ia.expired(now))
        .map(|ia| ia.repr(None))
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST /clients-initial-access` with `{expiration, count}`: a new token, shown once.
pub(super) fn create(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let input: Input = if cx.request.body().is_empty() {
        Input::default()
    } else {
        cx.json()?
    };
    if input.expiration < 0 || input.count < 0 {
        return Err(AdminError::BadRequest(
            "expiration and count must not be negative".into(),
        ));
    }
    let count = if input.count == 0 { 1 } else { input.count };
    let (record, token) = InitialAccess::new(cx.now_ms / 1000, input.expiration, count);
    let value = serde_json::to_value(&record).map_err(|e| AdminError::Internal(e.to_string()))?;
    cx.app
        .store
        .write(|w| w.put_object(&realm.id, INITIAL_ACCESS, &record.id, &value))?;
    // 200, as Keycloak answers (python-keycloak expects exactly that).
    Ok(ok(&record.repr(Some(&token))))
}

/// `DELETE /clients-initial-access/{id}`
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let existed = cx
        .app
        .store
        .write(|w| w.delete_object(&realm.id, INITIAL_ACCESS, &cx.path.id))?;
    deleted(existed, "Could not find initial access token")
}

/// `POST /clients/{id}/registration-access-token`: a new registration access token for the
/// client (the old one stops working); answers with the client and the token.
pub(super) fn regenerate(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let (client, token) = cx.app.store.write(|w| {
        let client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        let token = new_registration_token(w, &realm.id, &client.id)?;
        Ok::<_, AdminError>((client, token))
    })?;
    let names = super::client_scopes::names(&cx.app.store.read()?, &realm.id)?;
    let mut body = client_repr(&client, &names);
    body["registrationAccessToken"] = token.into();
    Ok(ok(&body))
}
