//! `/admin/realms/{realm}/authentication/required-actions` and the (un)registering of
//! required actions, in Keycloak's shapes; the login follows these settings
//! (`idp::required_actions`).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::required_actions::{self, RequiredAction, IMPLEMENTED};
use crate::store::RealmRecord;

use super::{no_content, ok, Cx, Permission};

/// Keycloak's `RequiredActionProviderRepresentation` (also in realm exports).
pub(super) fn repr(r: &RequiredAction) -> Value {
    json!({
        "alias": r.alias, "name": r.name, "providerId": r.alias, "enabled": r.enabled,
        "defaultAction": r.default_action, "priority": r.priority, "config": {},
    })
}

fn missing() -> AdminError {
    AdminError::NotFound("Failed to find required action".into())
}

/// Change the realm's list in one transaction.
fn change(
    cx: &Cx,
    realm: &RealmRecord,
    f: impl FnOnce(&mut Vec<RequiredAction>) -> Result<(), AdminError>,
) -> Result<(), AdminError> {
    cx.app.store.write(|w| {
        let mut realm = w
            .realm(&realm.id)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        let mut list = required_actions::of(&realm);
        f(&mut list)?;
        realm.required_actions = Some(list);
        w.put_realm(&realm).map_err(AdminError::from)
    })
}

/// `GET /authentication/required-actions`
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let list: Vec<Value> = required_actions::of(&realm).iter().map(repr).collect();
    Ok(ok(&Value::Array(list)))
}

/// `GET /authentication/required-actions/{alias}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let action = required_actions::of(&realm)
        .into_iter()
        .find(|r| r.alias == cx.path.id)
        .ok_or_else(missing)?;
    Ok(ok(&repr(&action)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "RequiredActionProviderUpdate")]
pub(super) struct Update {
    enabled: Option<bool>,
    default_action: Option<bool>,
    priority: Option<i64>,
}

/// `PUT /authentication/required-actions/{alias}`: `enabled`, `defaultAction`, `priority`.
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let input: Update = cx.json()?;
    change(cx, &realm, |list| {
        let action = list
            .iter_mut()
            .find(|r| r.alias == cx.path.id)
            .ok_or_else(missing)?;
        if let Some(e) = input.enabled {
            action.enabled = e;
        }
        if let Some(d) = input.default_action {
            action.default_action = d;
        }
        if let Some(p) = input.priority {
            action.priority = p;
        }
        // Keycloak: a disabled action cannot be a default one.
        action.default_action &= action.enabled;
        Ok(())
    })?;
    Ok(no_content())
}

/// `DELETE /authentication/required-actions/{alias}`: unregister (logins stop asking).
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    change(cx, &realm, |list| {
        let before = list.len();
        list.retain(|r| r.alias != cx.path.id);
        if list.len() == before {
            return Err(missing());
        }
        Ok(())
    })?;
    Ok(no_content())
}

/// `POST .../{alias}/raise-priority` (`up`) and `.../lower-priority`: swap with the
/// neighbour, as Keycloak does.
pub(super) fn move_priority(cx: &Cx, up: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    change(cx, &realm, |list| {
        let at = list
            .iter()
            .position(|r| r.alias == cx.path.id)
            .ok_or_else(missing)?;
        let other = if up { at.checked_sub(1) } else { Some(at + 1) };
        if let Some(other) = other.filter(|o| *o < list.len()) {
            let (a, b) = (list[at].priority, list[other].priority);
            // Equal priorities would not reorder: make them differ first.
            let (a, b) = if a == b {
                (a, a + if up { -1 } else { 1 })
            } else {
                (a, b)
            };
            list[at].priority = b;
            list[other].priority = a;
        }
        Ok(())
    })?;
    Ok(no_content())
}

/// `GET /authentication/unregistered-required-actions`: what could be registered.
pub(super) fn unregistered(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let registered = required_actions::of(&realm);
    let list: Vec<Value> = IMPLEMENTED
        .iter()
        .filter(|(alias, _, _)| !registered.iter().any(|r| r.alias == *alias))
        .map(|(alias, name, _)| json!({"providerId": alias, "name": name}))
        .collect();
    Ok(ok(&Value::Array(list)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "RequiredActionProviderSimpleRepresentation")]
pub(super) struct Register {
    provider_id: String,
    name: Option<String>,
}

/// `POST /authentication/register-required-action` with `{providerId, name}`.
pub(super) fn register(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let input: Register = cx.json()?;
    let (alias, name, priority) = IMPLEMENTED
        .iter()
        .find(|(alias, _, _)| *alias == input.provider_id)
        .ok_or_else(|| {
            AdminError::BadRequest(format!("No required action provider {}", input.provider_id))
        })?;
    change(cx, &realm, |list| {
        if list.iter().any(|r| r.alias == *alias) {
            return Err(AdminError::Conflict(format!(
                "Required action {alias} is already registered"
            )));
        }
        list.push(RequiredAction {
            alias: alias.to_string(),
            name: input.name.clone().unwrap_or_else(|| name.to_string()),
            enabled: true,
            default_action: false,
            priority: *priority,
        });
        Ok(())
    })?;
    Ok(no_content())
}

/// The stored kind of required-action configurations (by alias).
const CONFIG_KIND: &str = "required-action-config";

/// The actions Keycloak makes configurable, and their one option: `max_auth_age`, the
/// seconds since the last authentication after which the action asks for a new one.
/// Portcullis always asks (a fresh login before setting up OTP, the current password for a
/// new one), which is the strictest value; the setting is kept and shown for tools and the
/// console, and values are checked.
const CONFIGURABLE: &[&str] = &[
    "UPDATE_PASSWORD",
    "CONFIGURE_TOTP",
    "UPDATE_EMAIL",
    "webauthn-register",
];

fn configurable(cx: &Cx, realm: &RealmRecord) -> Result<String, AdminError> {
    let action = required_actions::of(realm)
        .into_iter()
        .find(|r| r.alias == cx.path.id)
        .ok_or_else(missing)?;
    if !CONFIGURABLE.contains(&action.alias.as_str()) {
        return Err(AdminError::BadRequest(format!(
            "Required action {} is not configurable",
            action.alias
        )));
    }
    Ok(action.alias)
}

/// `GET /authentication/required-actions/{alias}/config-description`
pub(super) fn config_description(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    configurable(cx, &realm)?;
    Ok(ok(&json!({"properties": [{
        "name": "max_auth_age", "label": "Maximum Age of Authentication",
        "helpText": "Configures the duration in seconds this action can be used after the last authentication before the user is required to re-authenticate. This parameter is used just in the context of AIA when the kc_action parameter is available in the request, which is for instance when user himself updates his password in the account console.",
        "type": "String", "defaultValue": "300", "secret": false, "required": false, "readOnly": false,
    }]})))
}

/// `GET /authentication/required-actions/{alias}/config`
pub(super) fn config(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let alias = configurable(cx, &realm)?;
    let stored = cx
        .app
        .store
        .read()?
        .object(&realm.id, CONFIG_KIND, &alias)?;
    Ok(ok(&json!({"config": stored.unwrap_or_else(|| json!({}))})))
}

/// `PUT /authentication/required-actions/{alias}/config` with `{"config": {...}}`.
pub(super) fn update_config(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let alias = configurable(cx, &realm)?;
    let body = cx.json_object()?;
    let config = body
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| AdminError::BadRequest("config is required".into()))?;
    let mut clean = serde_json::Map::new();
    for (k, v) in config {
        if k != "max_auth_age" {
            return Err(AdminError::BadRequest(format!(
                "Unknown configuration option: {k}"
            )));
        }
        let text = v
            .as_str()
            .map(str::to_string)
            .or_else(|| v.as_i64().map(|n| n.to_string()));
        match text.as_deref().map(str::parse::<i64>) {
            Some(Ok(n)) if n >= 0 => {
                clean.insert(k.clone(), Value::String(n.to_string()));
            }
            _ => {
                return Err(AdminError::BadRequest(
                    "max_auth_age must be a number of seconds, 0 or more".into(),
                ))
            }
        }
    }
    cx.app
        .store
        .write(|w| w.put_object(&realm.id, CONFIG_KIND, &alias, &Value::Object(clean)))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `DELETE /authentication/required-actions/{alias}/config`
pub(super) fn delete_config(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let alias = configurable(cx, &realm)?;
    cx.app
        .store
        .write(|w| w.delete_object(&realm.id, CONFIG_KIND, &alias))
        .map_err(AdminError::from)?;
    Ok(no_content())
}
