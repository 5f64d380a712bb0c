//! `/clients/{id}/scope-mappings/...` and `/client-scopes/{id}/scope-mappings/...`: which
//! roles a client without `fullScopeAllowed` may put in its tokens (Keycloak's role scope;
//! `roles::in_client_scope` applies the client's and its applied scopes' mappings). Scope
//! mappings grant nothing: a token carries a role only if its user holds it.

use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::RoleRecord;

use super::holders::Holder;
use super::repr::role_repr;
use super::role_refs::RoleRef;
use super::{no_content, ok, Cx, View};

/// The container a mapping path names: the realm, or the client of
/// `/scope-mappings/clients/{client}` (`client_roles` true).
fn container(cx: &Cx, realm_id: &str, client_roles: bool) -> Result<String, AdminError> {
    if !client_roles {
        return Ok(realm_id.to_string());
    }
    Ok(cx
        .app
        .store
        .read()?
        .client(realm_id, &cx.path.client)?
        .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?
        .id)
}

/// `GET .../scope-mappings`: the direct mappings, realm and by client.
pub(super) fn all(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let (realm_id, held) = holder.of_path(cx, false)?;
    let read = cx.app.store.read()?;
    Ok(ok(&super::users::mappings_repr(
        &read,
        &realm_id,
        held.scope_roles().clone(),
    )?))
}

/// `GET .../scope-mappings/realm[/available|/composite]` and the same under
/// `.../scope-mappings/clients/{client}` (`client_roles` true).
pub(super) fn list(
    cx: &Cx,
    holder: Holder,
    client_roles: bool,
    view: View,
) -> Result<Response, AdminError> {
    let (realm_id, held) = holder.of_path(cx, false)?;
    let container = container(cx, &realm_id, client_roles)?;
    let read = cx.app.store.read()?;
    let held: std::collections::HashSet<String> = match view {
        View::Direct => held.scope_roles().iter().cloned().collect(),
        View::Available | View::Composite => {
            crate::idp::roles::expand(&read, &realm_id, held.scope_roles().clone())?
                .into_iter()
                .map(|r| r.id)
                .collect()
        }
    };
    let list = super::role_refs::listed(&read, &realm_id, &container, &held, view)?;
    Ok(ok(&Value::Array(list.iter().map(role_repr).collect())))
}

/// `POST` (`add`) and `DELETE` `.../scope-mappings/realm` and
/// `.../scope-mappings/clients/{client}`, with roles by id or name.
pub(super) fn change(
    cx: &Cx,
    holder: Holder,
    client_roles: bool,
    add: bool,
) -> Result<Response, AdminError> {
    let refs: Vec<RoleRef> = cx.json()?;
    holder.change(cx, |w, realm_id, held| {
        let container = container(cx, realm_id, client_roles)?;
        let mut found: Vec<RoleRecord> = Vec::new();
        for r in &refs {
            let role = r
                .find(&**w, realm_id, &container)?
                .ok_or_else(|| AdminError::NotFound("Could not find role".into()))?;
            found.push(role);
        }
        let ids = held.scope_roles_mut();
        for role in found {
            if add {
                if !ids.contains(&role.id) {
                    ids.push(role.id);
                }
            } else {
                ids.retain(|id| id != &role.id);
            }
        }
        Ok(())
    })?;
    Ok(no_content())
}
