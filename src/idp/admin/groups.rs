//! `/admin/realms/{realm}/groups/...`: the group tree, members, role mappings, lookup by path.

use serde_json::{json, Value};

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::{GroupRecord, Read, RealmRecord, StoreError, Write};

use super::repr::{group_repr, role_repr, user_repr, GroupInput};
use super::{deleted, no_content, ok, Cx, Permission};

/// Group reads shared by read snapshots and write transactions.
pub(super) trait GroupSource {
    fn group_by_id(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>, StoreError>;
    fn children_of(
        &self,
        realm: &str,
        parent: Option<&str>,
    ) -> Result<Vec<GroupRecord>, StoreError>;
}

impl GroupSource for Read {
    fn group_by_id(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.group(realm, id)
    }
    fn children_of(
        &self,
        realm: &str,
        parent: Option<&str>,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        self.group_children(realm, parent)
    }
}

impl GroupSource for Write {
    fn group_by_id(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.group(realm, id)
    }
    fn children_of(
        &self,
        realm: &str,
        parent: Option<&str>,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        self.group_children(realm, parent)
    }
}

/// `/parent/child` path of a group.
pub(super) fn group_path(
    src: &impl GroupSource,
    realm: &str,
    group: &GroupRecord,
) -> Result<String, StoreError> {
    let mut names = vec![group.name.clone()];
    let mut parent = group.parent_id.clone();
    let mut depth = 0;
    while let Some(id) = parent {
        depth += 1;
        if depth > 100 {
            break;
        }
        match src.group_by_id(realm, &id)? {
            Some(g) => {
                names.push(g.name.clone());
                parent = g.parent_id;
            }
            None => break,
        }
    }
    names.reverse();
    Ok(format!("/{}", names.join("/")))
}

/// A group by its `/a/b` path.
pub(super) fn find_by_path(
    src: &impl GroupSource,
    realm: &str,
    path: &str,
) -> Result<Option<GroupRecord>, StoreError> {
    let mut current: Option<GroupRecord> = None;
    for name in path.split('/').filter(|s| !s.is_empty()) {
        let parent = current.as_ref().map(|g| g.id.clone());
        match src
            .children_of(realm, parent.as_deref())?
            .into_iter()
            .find(|g| g.name == name)
        {
            Some(g) => current = Some(g),
            None => return Ok(None),
        }
    }
    Ok(current)
}

/// A group with its whole subtree, in Keycloak's representation.
fn tree(
    src: &impl GroupSource,
    realm: &str,
    group: &GroupRecord,
    path: &str,
) -> Result<Value, StoreError> {
    let children = src.children_of(realm, Some(&group.id))?;
    let mut repr = group_repr(group, path, children.len());
    let mut subs = Vec::new();
    for child in &children {
        subs.push(tree(src, realm, child, &format!("{path}/{}", child.name))?);
    }
    repr["subGroups"] = Value::Array(subs);
    Ok(repr)
}

fn conflict(parent: Option<&str>, name: &str) -> AdminError {
    match parent {
        None => AdminError::Conflict(format!("Top level group named '{name}' already exists.")),
        Some(_) => AdminError::Conflict(format!("Sibling group named '{name}' already exists.")),
    }
}

/// Create a group (and its `subGroups`) inside the caller's transaction.
pub(super) fn create_tree(
    w: &mut Write,
    realm: &RealmRecord,
    parent: Option<&str>,
    input: &GroupInput,
) -> Result<GroupRecord, AdminError> {
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::BadRequest("Group name is missing".into()))?;
    if name.contains('/') {
        return Err(AdminError::BadRequest(
            "Group name must not contain '/'".into(),
        ));
    }
    let group = GroupRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        name: name.to_string(),
        parent_id: parent.map(String::from),
        attributes: input
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_vec()))
            .collect(),
    };
    if w.group(&realm.id, &group.id)?.is_some() {
        return Err(AdminError::from(StoreError::Conflict(
            crate::store::Conflict::Id,
        )));
    }
    w.put_group(&realm.id, &group).map_err(|e| match e {
        StoreError::Conflict(_) => conflict(parent, name),
        other => AdminError::from(other),
    })?;
    let roles = super::roles::named_role_ids(
        w,
        &realm.id,
        input.realm_roles.as_deref(),
        input.client_roles.as_ref(),
    )?;
    for role_id in &roles {
        w.grant_group_role(&realm.id, &group.id, role_id)
            .map_err(AdminError::from)?;
    }
    for sub in input.sub_groups.iter().flatten() {
        create_tree(w, realm, Some(&group.id), sub)?;
    }
    Ok(group)
}

/// `GET /groups`: the tree.
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let search = Search::of(cx);
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx
        .query("max")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let read = cx.app.store.read()?;
    let mut list = Vec::new();
    for g in read.group_children(&realm.id, None)? {
        let repr = tree(&read, &realm.id, &g, &format!("/{}", g.name))?;
        if let Some(kept) = search.prune(repr) {
            list.push(kept);
        }
    }
    Ok(ok(&Value::Array(
        list.into_iter().skip(first).take(max).collect(),
    )))
}

/// `GET /groups/count[?search=&top=true]`: `{"count": n}`, every group (or the top-level
/// ones) whose name matches.
pub(super) fn count(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let search = Search::of(cx);
    let top_only = cx.flag("top") == Some(true);
    let read = cx.app.store.read()?;
    let mut count = 0;
    let mut pending = read.group_children(&realm.id, None)?;
    while let Some(g) = pending.pop() {
        if search.matches(&g.name) {
            count += 1;
        }
        if !top_only {
            pending.extend(read.group_children(&realm.id, Some(&g.id))?);
        }
    }
    Ok(ok(&json!({"count": count})))
}

/// Keycloak's group `search`: a name containing it (case-insensitive; equal with
/// `exact=true`), shown with the path down to it.
struct Search {
    wanted: Option<String>,
    exact: bool,
}

impl Search {
    fn of(cx: &Cx) -> Search {
        Search {
            wanted: cx.query("search").map(|s| s.to_lowercase()),
            exact: cx.flag("exact") == Some(true),
        }
    }

    fn matches(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        match &self.wanted {
            None => true,
            Some(w) if self.exact => &name == w,
            Some(w) => name.contains(w.as_str()),
        }
    }

    /// The group with only the subgroups that lead to a match; `None` when nothing in it
    /// matches. A matching group keeps its whole subtree.
    fn prune(&self, mut repr: Value) -> Option<Value> {
        if self.wanted.is_none() || self.matches(repr["name"].as_str().unwrap_or("")) {
            return Some(repr);
        }
        let subs = repr["subGroups"].as_array().cloned().unwrap_or_default();
        let kept: Vec<Value> = subs.into_iter().filter_map(|s| self.prune(s)).collect();
        if kept.is_empty() {
            return None;
        }
        repr["subGroups"] = Value::Array(kept);
        Some(repr)
    }
}

/// `POST /groups`: a top-level group.
pub(super) fn create(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let mut input: GroupInput = cx.json()?;
    input.id = None;
    let group = cx.app.store.write(|w| {
        let granted = super::grants::of_group(w, &realm, &input)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        create_tree(w, &realm, None, &input)
    })?;
    Ok(cx.created(&group.id))
}

fn load(cx: &Cx, realm: &RealmRecord) -> Result<GroupRecord, AdminError> {
    cx.app
        .store
        .read()?
        .group(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find group by id".into()))
}

/// `GET /groups/{id}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let group = load(cx, &realm)?;
    let read = cx.app.store.read()?;
    let path = group_path(&read, &realm.id, &group)?;
    Ok(ok(&tree(&read, &realm.id, &group, &path)?))
}

/// `PUT /groups/{id}`
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let input: GroupInput = cx.json()?;
    cx.app.store.write(|w| {
        let mut group = w
            .group(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find group by id".into()))?;
        if let Some(name) = input
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            group.name = name.to_string();
        }
        if let Some(attrs) = input.attributes.clone() {
            group.attributes = attrs.into_iter().map(|(k, v)| (k, v.into_vec())).collect();
        }
        let parent = group.parent_id.clone();
        let name = group.name.clone();
        w.put_group(&realm.id, &group).map_err(|e| match e {
            StoreError::Conflict(_) => conflict(parent.as_deref(), &name),
            other => AdminError::from(other),
        })
    })?;
    Ok(no_content())
}

/// `DELETE /groups/{id}`
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let existed = cx
        .app
        .store
        .write(|w| w.delete_group(&realm.id, &cx.path.id))
        .map_err(AdminError::from)?;
    deleted(existed, "Could not find group by id")
}

/// `GET /groups/{id}/children`
pub(super) fn children(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let group = load(cx, &realm)?;
    let read = cx.app.store.read()?;
    let path = group_path(&read, &realm.id, &group)?;
    let mut list = Vec::new();
    for child in read.group_children(&realm.id, Some(&group.id))? {
        list.push(tree(
            &read,
            &realm.id,
            &child,
            &format!("{path}/{}", child.name),
        )?);
    }
    Ok(ok(&Value::Array(list)))
}

/// `POST /groups/{id}/children`
pub(super) fn add_child(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let parent = load(cx, &realm)?;
    let mut input: GroupInput = cx.json()?;
    input.id = None;
    let group = cx.app.store.write(|w| {
        let granted = super::grants::of_group(w, &realm, &input)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        create_tree(w, &realm, Some(&parent.id), &input)
    })?;
    Ok(cx.created(&group.id))
}

/// `GET /groups/{id}/members`
pub(super) fn members(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let group = load(cx, &realm)?;
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    let brief = cx.flag("briefRepresentation") == Some(true);
    let read = cx.app.store.read()?;
    let mut users = Vec::new();
    for id in read.group_member_ids(&realm.id, &group.id)? {
        if let Some(u) = read.user(&realm.id, &id)? {
            users.push(u);
        }
    }
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(ok(&Value::Array(
        users
            .iter()
            .skip(first)
            .take(max)
            .map(|u| user_repr(u, brief))
            .collect(),
    )))
}

/// The group, and the id of the role container a mapping path names: the realm, or the
/// client of `/role-mappings/clients/{client}`.
fn mapping_target(
    cx: &Cx,
    permission: Permission,
    client: bool,
) -> Result<(RealmRecord, GroupRecord, String), AdminError> {
    let realm = cx.realm(permission)?;
    let group = load(cx, &realm)?;
    let container = if client {
        cx.app
            .store
            .read()?
            .client(&realm.id, &cx.path.client)?
            .ok_or_else(|| AdminError::NotFound("Client not found".into()))?
            .id
    } else {
        realm.id.clone()
    };
    Ok((realm, group, container))
}

/// `GET /groups/{id}/role-mappings/realm[/available|/composite]` (`client` false) and
/// `GET /groups/{id}/role-mappings/clients/{client}[/available|/composite]` (`client` true).
pub(super) fn mappings(cx: &Cx, client: bool, view: super::View) -> Result<Response, AdminError> {
    use super::View;
    let (realm, group, container) = mapping_target(cx, Permission::ViewUsers, client)?;
    let read = cx.app.store.read()?;
    let held: std::collections::HashSet<String> = match view {
        View::Direct => read
            .group_role_ids(&realm.id, &group.id)?
            .into_iter()
            .collect(),
        // The group's roles and its ancestors', through composites.
        View::Composite | View::Available => {
            let start = crate::idp::roles::group_conferred_role_ids(&read, &realm.id, &group.id)?;
            crate::idp::roles::expand(&read, &realm.id, start)?
                .into_iter()
                .map(|r| r.id)
                .collect()
        }
    };
    let list = super::role_refs::listed(&read, &realm.id, &container, &held, view)?;
    Ok(ok(&Value::Array(list.iter().map(role_repr).collect())))
}

/// `POST` (`grant`) and `DELETE` `/groups/{id}/role-mappings/realm` and
/// `/groups/{id}/role-mappings/clients/{client}` (`client` true), with a list of roles by
/// id or name. A grant is refused for roles the caller may not hand out.
pub(super) fn map_roles(cx: &Cx, client: bool, grant: bool) -> Result<Response, AdminError> {
    let (realm, group, container) = mapping_target(cx, Permission::ManageUsers, client)?;
    let refs: Vec<super::role_refs::RoleRef> = cx.json()?;
    cx.app.store.write(|w| {
        let mut found = Vec::new();
        for r in &refs {
            let role = r
                .find(&**w, &realm.id, &container)?
                .ok_or_else(|| AdminError::NotFound("Could not find role".into()))?;
            found.push(role.id);
        }
        if grant {
            cx.caller.may_grant(w, &realm, &found)?;
        }
        for role_id in &found {
            if grant {
                w.grant_group_role(&realm.id, &group.id, role_id)
                    .map_err(AdminError::from)?;
            } else {
                w.revoke_group_role(&realm.id, &group.id, role_id)?;
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /group-by-path/{path}`
pub(super) fn by_path(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let read = cx.app.store.read()?;
    let group = find_by_path(&read, &realm.id, &cx.path.path)?
        .ok_or_else(|| AdminError::NotFound("Group path does not exist".into()))?;
    let path = group_path(&read, &realm.id, &group)?;
    Ok(ok(&tree(&read, &realm.id, &group, &path)?))
}

/// `GET /default-groups`: the groups every new user joins.
pub(crate) fn default_groups(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let read = cx.app.store.read()?;
    let mut list = Vec::new();
    for id in &realm.default_group_ids {
        if let Some(g) = read.group(&realm.id, id)? {
            let path = group_path(&read, &realm.id, &g)?;
            list.push(json!({"id": g.id, "name": g.name, "path": path}));
        }
    }
    Ok(ok(&Value::Array(list)))
}

/// `PUT` (`add`) and `DELETE` `/default-groups/{group}`.
pub(crate) fn change_default_group(cx: &Cx, add: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let group_id = cx.path.id.clone();
    cx.app.store.write(|w| {
        let mut realm = w
            .realm(&realm.id)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        if add {
            if w.group(&realm.id, &group_id)?.is_none() {
                return Err(AdminError::NotFound("Could not find group by id".into()));
            }
            if !realm.default_group_ids.contains(&group_id) {
                realm.default_group_ids.push(group_id.clone());
            }
        } else {
            realm.default_group_ids.retain(|g| g != &group_id);
        }
        w.put_realm(&realm).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `GET /groups/{id}/role-mappings`: the group's direct realm and client mappings.
pub(super) fn role_mappings(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let group = load(cx, &realm)?;
    let read = cx.app.store.read()?;
    let ids = read.group_role_ids(&realm.id, &group.id)?;
    Ok(ok(&super::users::mappings_repr(&read, &realm.id, ids)?))
}
