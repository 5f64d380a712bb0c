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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Update {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
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
