//! `/clients/{id}/scope-mappings/...`: which roles a client without `fullScopeAllowed` may
//! put in its tokens (Keycloak's client role scope; `roles::in_client_scope` applies it).
//! Scope mappings grant nothing: a token carries a role only if its user holds it.

use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::{ClientRecord, RealmRecord, RoleRecord};

use super::repr::role_repr;
use super::role_refs::RoleRef;
use super::{no_content, ok, Cx, Permission, View};

/// The realm, the client of the path, and the container a mapping path names: the realm,
/// or the client of `/scope-mappings/clients/{client}` (`client_roles` true).
fn target(
    cx: &Cx,
    permission: Permission,
    client_roles: bool,
) -> Result<(RealmRecord, ClientRecord, String), AdminError> {
    let realm = cx.realm(permission)?;
    let read = cx.app.store.read()?;
    let client = read
        .client(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
    let container = if client_roles {
        read.client(&realm.id, &cx.path.client)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?
            .id
    } else {
        realm.id.clone()
    };
    Ok((realm, client, container))
}

/// `GET /clients/{id}/scope-mappings`: the direct mappings, realm and by client.
pub(super) fn all(cx: &Cx) -> Result<Response, AdminError> {
    let (realm, client, _) = target(cx, Permission::ViewClients, false)?;
    let read = cx.app.store.read()?;
    Ok(ok(&super::users::mappings_repr(
        &read,
        &realm.id,
        client.scope_role_ids,
    )?))
}

/// `GET .../scope-mappings/realm[/available|/composite]` and the same under
/// `.../scope-mappings/clients/{client}` (`client_roles` true).
pub(super) fn list(cx: &Cx, client_roles: bool, view: View) -> Result<Response, AdminError> {
    let (realm, client, container) = target(cx, Permission::ViewClients, client_roles)?;
    let read = cx.app.store.read()?;
    let held: std::collections::HashSet<String> = match view {
        View::Direct => client.scope_role_ids.iter().cloned().collect(),
        View::Available | View::Composite => {
            crate::idp::roles::expand(&read, &realm.id, client.scope_role_ids.clone())?
                .into_iter()
                .map(|r| r.id)
                .collect()
        }
    };
    let list = super::role_refs::listed(&read, &realm.id, &container, &held, view)?;
    Ok(ok(&Value::Array(list.iter().map(role_repr).collect())))
}

/// `POST` (`add`) and `DELETE` `.../scope-mappings/realm` and
/// `.../scope-mappings/clients/{client}`, with roles by id or name.
pub(super) fn change(cx: &Cx, client_roles: bool, add: bool) -> Result<Response, AdminError> {
    let (realm, client, container) = target(cx, Permission::ManageClients, client_roles)?;
    let refs: Vec<RoleRef> = cx.json()?;
    cx.app.store.write(|w| {
        let mut found: Vec<RoleRecord> = Vec::new();
        for r in &refs {
            let role = r
                .find(&**w, &realm.id, &container)?
                .ok_or_else(|| AdminError::NotFound("Could not find role".into()))?;
            found.push(role);
        }
        let mut client = w
            .client(&realm.id, &client.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        for role in found {
            if add {
                if !client.scope_role_ids.contains(&role.id) {
                    client.scope_role_ids.push(role.id);
                }
            } else {
                client.scope_role_ids.retain(|id| id != &role.id);
            }
        }
        w.put_client(&realm.id, &client).map_err(AdminError::from)
    })?;
    Ok(no_content())
}
