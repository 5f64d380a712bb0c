//! A user's role mappings (direct, composite and available views; grants and revocations)
//! and group membership.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::admin::groups::group_path;
use crate::idp::admin::repr::{group_repr, role_repr};
use crate::idp::admin::{no_content, ok, Cx, Permission, View};
use crate::idp::roles::{expand, group_conferred_role_ids, group_ids_with_ancestors};
use crate::store::{RealmRecord, RoleRecord};

use super::load_user;

/// Role ids a user holds in any way (direct, groups, composites).
fn effective_ids(
    read: &crate::store::Read,
    realm: &str,
    user: &str,
) -> Result<HashSet<String>, AdminError> {
    let mut start = read.user_role_ids(realm, user)?;
    for g in group_ids_with_ancestors(read, realm, user)? {
        start.extend(read.group_role_ids(realm, &g)?);
    }
    Ok(expand(read, realm, start)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

fn role_list(
    cx: &Cx,
    realm: &RealmRecord,
    container: &str,
    view: View,
) -> Result<Vec<RoleRecord>, AdminError> {
    let read = cx.app.store.read()?;
    let ids: HashSet<String> = match view {
        View::Direct => read
            .user_role_ids(&realm.id, &cx.path.id)?
            .into_iter()
            .collect(),
        View::Composite | View::Available => effective_ids(&read, &realm.id, &cx.path.id)?,
    };
    Ok(crate::idp::admin::role_refs::listed(
        &read, &realm.id, container, &ids, view,
    )?)
}

/// The roles named in a role-mapping body (`[{id?, name?}]`), resolved in `container`.
fn resolve_roles(
    cx: &Cx,
    realm: &RealmRecord,
    container: &str,
) -> Result<Vec<RoleRecord>, AdminError> {
    let refs: Vec<crate::idp::admin::role_refs::RoleRef> = cx.json()?;
    let read = cx.app.store.read()?;
    let mut out = Vec::new();
    for r in refs {
        let found = r.find(&read, &realm.id, container)?;
        out.push(
            found.ok_or_else(|| {
                AdminError::NotFound(format!("Could not find role: {}", r.label()))
            })?,
        );
    }
    Ok(out)
}

/// The role container a user's mapping path names: the realm, or the client of
/// `/role-mappings/clients/{client}` (`client` true).
fn mapping_container(cx: &Cx, realm: &RealmRecord, client: bool) -> Result<String, AdminError> {
    if !client {
        return Ok(realm.id.clone());
    }
    Ok(cx
        .app
        .store
        .read()?
        .client(&realm.id, &cx.path.client)?
        .ok_or_else(|| AdminError::NotFound("Client not found".into()))?
        .id)
}

/// `GET /users/{id}/role-mappings/realm[/available|/composite]` (`client` false) and
/// `GET /users/{id}/role-mappings/clients/{client}[/available|/composite]` (`client` true).
pub(crate) fn mapped_roles(cx: &Cx, client: bool, view: View) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let container = mapping_container(cx, &realm, client)?;
    load_user(cx, &realm)?;
    let roles = role_list(cx, &realm, &container, view)?;
    Ok(ok(&Value::Array(roles.iter().map(role_repr).collect())))
}

/// `POST` (`grant`) and `DELETE` `/users/{id}/role-mappings/realm` and
/// `/users/{id}/role-mappings/clients/{client}` (`client` true), with a list of roles by id
/// or name. A grant is refused for roles the caller may not hand out.
pub(crate) fn map_roles(cx: &Cx, client: bool, grant: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let container = mapping_container(cx, &realm, client)?;
    cx.caller.require(&realm.name, Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    let roles = resolve_roles(cx, &realm, &container)?;
    cx.app.store.write(|w| {
        if grant {
            let ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
            cx.caller.may_grant(w, &realm, &ids)?;
        }
        for role in &roles {
            if grant {
                w.grant_user_role(&realm.id, &cx.path.id, &role.id)
                    .map_err(AdminError::from)?;
            } else {
                w.revoke_user_role(&realm.id, &cx.path.id, &role.id)?;
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /users/{id}/role-mappings`: direct realm and client mappings.
pub(crate) fn role_mappings(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let read = cx.app.store.read()?;
    let ids = read.user_role_ids(&realm.id, &cx.path.id)?;
    Ok(ok(&mappings_repr(&read, &realm.id, ids)?))
}

/// Keycloak's `MappingsRepresentation` of direct role mappings: `realmMappings`, and
/// `clientMappings` by clientId (each absent when empty).
pub(crate) fn mappings_repr(
    read: &crate::store::Read,
    realm_id: &str,
    role_ids: Vec<String>,
) -> Result<Value, AdminError> {
    let realm_id = realm_id.to_string();
    let mut realm_mappings = Vec::new();
    let mut client_mappings: BTreeMap<String, Value> = BTreeMap::new();
    for id in role_ids {
        let Some(role) = read.role(&realm_id, &id)? else {
            continue;
        };
        if role.client_role {
            if let Some(client) = read.client(&realm_id, &role.container_id)? {
                let entry = client_mappings
                    .entry(client.client_id.clone())
                    .or_insert_with(
                        || json!({"id": client.id, "client": client.client_id, "mappings": []}),
                    );
                if let Some(list) = entry["mappings"].as_array_mut() {
                    list.push(role_repr(&role));
                }
            }
        } else {
            realm_mappings.push(role_repr(&role));
        }
    }
    let mut body = json!({});
    if !realm_mappings.is_empty() {
        body["realmMappings"] = Value::Array(realm_mappings);
    }
    if !client_mappings.is_empty() {
        body["clientMappings"] = json!(client_mappings);
    }
    Ok(body)
}

/// `GET /users/{id}/groups`
pub(crate) fn groups(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let read = cx.app.store.read()?;
    let mut out = Vec::new();
    for id in read.user_group_ids(&realm.id, &cx.path.id)? {
        if let Some(g) = read.group(&realm.id, &id)? {
            let path = group_path(&read, &realm.id, &g)?;
            out.push(group_repr(
                &g,
                &path,
                read.group_children(&realm.id, Some(&g.id))?.len(),
            ));
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(ok(&Value::Array(out)))
}

/// `GET /users/{id}/groups/count`: `{"count": n}`.
pub(crate) fn groups_count(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let count = cx
        .app
        .store
        .read()?
        .user_group_ids(&realm.id, &cx.path.id)?
        .len();
    Ok(ok(&json!({"count": count})))
}

/// `PUT /users/{id}/groups/{group}`
pub(crate) fn join_group(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    // Joining a group is being granted its roles (and its ancestors').
    cx.app.store.write(|w| {
        let granted = group_conferred_role_ids(w, &realm.id, &cx.path.group)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        w.add_member(&realm.id, &cx.path.group, &cx.path.id)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /users/{id}/groups/{group}`
pub(crate) fn leave_group(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app
        .store
        .write(|w| w.remove_member(&realm.id, &cx.path.group, &cx.path.id))
        .map_err(AdminError::from)?;
    Ok(no_content())
}
