//! Realm roles (`/roles`), client roles (`/clients/{id}/roles`), composites, the users in
//! a role and `/roles-by-id`.

use serde::Deserialize;
use serde_json::Value;

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::{RealmRecord, RoleRecord, StoreError, Write};

use super::repr::{role_repr, user_repr, RoleInput};
use super::{no_content, ok, Cx, Permission};

/// The ids of a representation's `realmRoles` and `clientRoles` (keyed by `clientId`); a
/// role or client that does not exist is a 404 naming it.
pub(super) fn named_role_ids(
    w: &Write,
    realm_id: &str,
    realm_roles: Option<&[String]>,
    client_roles: Option<&std::collections::BTreeMap<String, Vec<String>>>,
) -> Result<Vec<String>, AdminError> {
    let missing = |role: &str| AdminError::NotFound(format!("Role not found: {role}"));
    let mut ids = Vec::new();
    for role in realm_roles.into_iter().flatten() {
        let r = w
            .role_by_name(realm_id, realm_id, role)?
            .ok_or_else(|| missing(role))?;
        ids.push(r.id);
    }
    for (client_id, roles) in client_roles.into_iter().flatten() {
        let client = w
            .client_by_client_id(realm_id, client_id)?
            .ok_or_else(|| AdminError::NotFound(format!("Client not found: {client_id}")))?;
        for role in roles {
            let r = w
                .role_by_name(realm_id, &client.id, role)?
                .ok_or_else(|| missing(role))?;
            ids.push(r.id);
        }
    }
    Ok(ids)
}

/// Which roles a route is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Realm,
    /// The client whose uuid is the `{id}` of the path.
    Client,
}

fn conflict(name: &str) -> AdminError {
    AdminError::Conflict(format!("Role with name {name} already exists"))
}

/// Create a role inside the caller's transaction.
pub(super) fn create_in(
    w: &mut Write,
    realm: &RealmRecord,
    container_id: &str,
    client_role: bool,
    input: &RoleInput,
) -> Result<RoleRecord, AdminError> {
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::BadRequest("Role name is required".into()))?;
    let role = RoleRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        name: name.to_string(),
        description: input.description.clone(),
        container_id: container_id.to_string(),
        client_role,
        composites: vec![],
        attributes: input
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_vec()))
            .collect(),
    };
    if w.role(&realm.id, &role.id)?.is_some() {
        return Err(AdminError::from(StoreError::Conflict(
            crate::store::Conflict::Id,
        )));
    }
    w.put_role(&realm.id, &role).map_err(|e| match e {
        StoreError::Conflict(_) => conflict(name),
        other => AdminError::from(other),
    })?;
    Ok(role)
}

/// The realm and the container id of the route, checking `permission`.
fn target(
    cx: &Cx,
    container: Container,
    permission: Permission,
) -> Result<(RealmRecord, String), AdminError> {
    let client_permission = match permission {
        Permission::ManageRealm => Permission::ManageClients,
        _ => Permission::ViewClients,
    };
    match container {
        Container::Realm => Ok((cx.realm(permission)?, String::new())).map(|(r, _)| {
            let id = r.id.clone();
            (r, id)
        }),
        Container::Client => {
            let realm = cx.realm(client_permission)?;
            let client = cx
                .app
                .store
                .read()?
                .client(&realm.id, &cx.path.id)?
                .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
            Ok((realm, client.id))
        }
    }
}

/// `GET` the roles of a container (`/roles`, `/clients/{id}/roles`).
pub(super) fn list(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ViewRealm)?;
    let search = cx.query("search").map(|s| s.to_lowercase());
    let roles = cx.app.store.read()?.roles(&realm.id, &container_id)?;
    let list = roles
        .iter()
        .filter(|r| {
            search
                .as_ref()
                .is_none_or(|s| r.name.to_lowercase().contains(s))
        })
        // Keycloak's `first` and `max` (all when absent).
        .skip(cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0))
        .take(
            cx.query("max")
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX),
        )
        .map(role_repr)
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST` a role to a container.
pub(super) fn create(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ManageRealm)?;
    let mut input: RoleInput = cx.json()?;
    // The server names new roles (Keycloak ignores a given id).
    input.id = None;
    let role = cx.app.store.write(|w| {
        create_in(
            w,
            &realm,
            &container_id,
            container == Container::Client,
            &input,
        )
    })?;
    Ok(cx.created(&role.name))
}

fn by_name(cx: &Cx, realm: &RealmRecord, container_id: &str) -> Result<RoleRecord, AdminError> {
    cx.app
        .store
        .read()?
        .role_by_name(&realm.id, container_id, &cx.path.role)?
        .ok_or_else(|| AdminError::NotFound("Could not find role".into()))
}

fn apply_update(
    cx: &Cx,
    realm: &RealmRecord,
    mut role: RoleRecord,
) -> Result<Response, AdminError> {
    let input: RoleInput = cx.json()?;
    if let Some(name) = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        role.name = name.to_string();
    }
    if input.description.is_some() {
        role.description = input.description.clone();
    }
    if let Some(attrs) = input.attributes.clone() {
        role.attributes = attrs.into_iter().map(|(k, v)| (k, v.into_vec())).collect();
    }
    let name = role.name.clone();
    cx.app
        .store
        .write(|w| w.put_role(&realm.id, &role))
        .map_err(|e| match e {
            StoreError::Conflict(_) => conflict(&name),
            other => AdminError::from(other),
        })?;
    Ok(no_content())
}

/// `GET` one role by name.
pub(super) fn get(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ViewRealm)?;
    Ok(ok(&role_repr(&by_name(cx, &realm, &container_id)?)))
}

/// `PUT` one role by name.
pub(super) fn update(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ManageRealm)?;
    let role = by_name(cx, &realm, &container_id)?;
    apply_update(cx, &realm, role)
}

/// `DELETE` one role by name.
pub(super) fn delete(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ManageRealm)?;
    let role = by_name(cx, &realm, &container_id)?;
    cx.app
        .store
        .write(|w| w.delete_role(&realm.id, &role.id))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct RoleRef {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "containerId")]
    container_id: Option<String>,
}

/// The role of a composites path: `/roles/{role}/...` names a realm role, and
/// `/roles-by-id/{id}/...` any role.
fn composite_owner(cx: &Cx, realm: &RealmRecord) -> Result<RoleRecord, AdminError> {
    if cx.path.role.is_empty() {
        cx.app
            .store
            .read()?
            .role(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find role with id".into()))
    } else {
        by_name(cx, realm, &realm.id)
    }
}

/// Which composites a `GET` lists.
#[derive(Debug, Clone, Copy)]
pub(super) enum Composites {
    All,
    /// `.../composites/realm`
    Realm,
    /// `.../composites/clients/{client}` (the client's uuid)
    Client,
}

/// `GET /roles/{role}/composites[/realm|/clients/{client}]`, and the same under
/// `/roles-by-id/{id}`.
pub(super) fn composites(cx: &Cx, which: Composites) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let role = composite_owner(cx, &realm)?;
    let read = cx.app.store.read()?;
    let mut list = Vec::new();
    for id in &role.composites {
        if let Some(r) = read.role(&realm.id, id)? {
            let wanted = match which {
                Composites::All => true,
                Composites::Realm => !r.client_role,
                Composites::Client => r.client_role && r.container_id == cx.path.client,
            };
            if wanted {
                list.push(role_repr(&r));
            }
        }
    }
    Ok(ok(&Value::Array(list)))
}

/// `POST` (`add`) and `DELETE` `/roles/{role}/composites` with a list of roles by id or by
/// name (and `containerId` for a client role). Adding is refused for roles the caller may
/// not hand out: every holder of the role receives the composite.
pub(super) fn change_composites(cx: &Cx, add: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let role = composite_owner(cx, &realm)?;
    let refs: Vec<RoleRef> = cx.json()?;
    cx.app.store.write(|w| {
        let mut role = w
            .role(&realm.id, &role.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find role".into()))?;
        for r in &refs {
            let found = match (&r.id, &r.name) {
                (Some(id), _) => w.role(&realm.id, id)?,
                (None, Some(name)) => {
                    let container = r.container_id.clone().unwrap_or_else(|| realm.id.clone());
                    w.role_by_name(&realm.id, &container, name)?
                }
                _ => None,
            }
            .ok_or_else(|| AdminError::NotFound("Could not find composite role".into()))?;
            if add {
                // Every holder of the role receives the composite.
                cx.caller
                    .may_grant(w, &realm, std::slice::from_ref(&found.id))?;
                if !role.composites.contains(&found.id) {
                    role.composites.push(found.id);
                }
            } else {
                role.composites.retain(|c| c != &found.id);
            }
        }
        w.put_role(&realm.id, &role).map_err(AdminError::from)?;
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /roles/{role}/users` and `/clients/{id}/roles/{role}/users`: users holding the
/// role directly.
pub(super) fn users(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = match container {
        Container::Realm => {
            let realm = cx.realm(Permission::ViewUsers)?;
            let id = realm.id.clone();
            (realm, id)
        }
        Container::Client => {
            let (realm, id) = target(cx, container, Permission::ViewRealm)?;
            cx.caller.require(&realm.name, Permission::ViewUsers)?;
            (realm, id)
        }
    };
    let role = by_name(cx, &realm, &container_id)?;
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    let read = cx.app.store.read()?;
    let mut users = Vec::new();
    for id in read.role_user_ids(&realm.id, &role.id)? {
        if let Some(u) = read.user(&realm.id, &id)? {
            users.push(u);
        }
    }
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let list = users
        .iter()
        .skip(first)
        .take(max)
        .map(|u| user_repr(u, true))
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// The role of `/roles-by-id/{id}`, if the caller may act on its realm with `permission`.
fn role_by_id(cx: &Cx, permission: Permission) -> Result<(RealmRecord, RoleRecord), AdminError> {
    let realm = cx.realm(permission)?;
    let role = cx
        .app
        .store
        .read()?
        .role(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find role with id".into()))?;
    Ok((realm, role))
}

/// `GET /roles-by-id/{id}`
pub(super) fn get_by_id(cx: &Cx) -> Result<Response, AdminError> {
    let (_, role) = role_by_id(cx, Permission::ViewRealm)?;
    Ok(ok(&role_repr(&role)))
}

/// `PUT /roles-by-id/{id}`
pub(super) fn update_by_id(cx: &Cx) -> Result<Response, AdminError> {
    let (realm, role) = role_by_id(cx, Permission::ManageRealm)?;
    apply_update(cx, &realm, role)
}

/// `DELETE /roles-by-id/{id}`
pub(super) fn delete_by_id(cx: &Cx) -> Result<Response, AdminError> {
    let (realm, role) = role_by_id(cx, Permission::ManageRealm)?;
    cx.app
        .store
        .write(|w| w.delete_role(&realm.id, &role.id))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `GET /roles/{role}/groups` (and `/clients/{id}/roles/{role}/groups`): the groups granted
/// the role directly, by path, paged.
pub(super) fn groups(cx: &Cx, container: Container) -> Result<Response, AdminError> {
    let (realm, container_id) = target(cx, container, Permission::ViewUsers)?;
    let role = by_name(cx, &realm, &container_id)?;
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    let read = cx.app.store.read()?;
    let mut found = Vec::new();
    for id in read.role_group_ids(&realm.id, &role.id)? {
        if let Some(g) = read.group(&realm.id, &id)? {
            let path = super::groups::group_path(&read, &realm.id, &g)?;
            found.push((path, g));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let list = found
        .iter()
        .skip(first)
        .take(max)
        .map(|(path, g)| serde_json::json!({"id": g.id, "name": g.name, "path": path}))
        .collect();
    Ok(ok(&Value::Array(list)))
}
