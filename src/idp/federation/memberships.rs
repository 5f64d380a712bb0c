//! Groups and roles from the directory (`group-ldap-mapper`, `role-ldap-mapper`, the
//! hard-coded role and group mappers): what the directory says a user belongs to, read
//! before the store write, then applied in it. Directory groups become local groups under
//! the mapper's `groups.path` (their hierarchy kept with `preserve.group.inheritance`),
//! directory roles become realm or client roles; both are created at need. In `READ_ONLY`
//! mode memberships follow the directory (one the directory no longer lists is removed,
//! if the directory still has that group); in `IMPORT` mode they are only added.

use crate::idp::ldap::{Entry, LdapError, MembershipMapper, Mode, Provider, Target};
use crate::store::{GroupRecord, RealmRecord, RoleRecord, StoreError, Write};

/// What the directory says of one user, per membership mapper.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// (mapper index, group paths or role names, each as a path of names).
    adds: Vec<(usize, Vec<Vec<String>>)>,
    /// Local groups or roles to leave: the directory has them, the user is not in them.
    removes: Vec<Removal>,
}

#[derive(Debug, Clone)]
enum Removal {
    Group(String),
    Role(String),
}

/// Read `entry`'s memberships for every membership mapper of `provider`; for a user known
/// locally (`user_id`), also what to remove. A mapper whose directory read fails is left
/// out (the user keeps what it had) and logged.
pub async fn plan(
    app: &crate::idp::App,
    realm: &RealmRecord,
    provider: &Provider,
    entry: &Entry,
    user_id: Option<&str>,
) -> Plan {
    let mut plan = Plan::default();
    for (i, m) in provider.mappers.memberships.iter().enumerate() {
        match provider.memberships(m, entry).await {
            Ok(paths) => {
                if m.mode == Mode::ReadOnly {
                    if let Some(user) = user_id {
                        match removals(app, realm, provider, m, user, &paths).await {
                            Ok(r) => plan.removes.extend(r),
                            Err(e) => warn(realm, provider, m, &e),
                        }
                    }
                }
                plan.adds.push((i, paths));
            }
            Err(e) => warn(realm, provider, m, &e),
        }
    }
    plan
}

fn warn(realm: &RealmRecord, provider: &Provider, m: &MembershipMapper, e: &LdapError) {
    tracing::warn!(realm = %realm.name, provider = %provider.name, mapper = %m.name, error = %e, "cannot read memberships from LDAP");
}

/// The user's local memberships of `m`'s kind that the directory no longer lists but still
/// has (a local group of the same name that the directory never had is not the mapper's).
async fn removals(
    app: &crate::idp::App,
    realm: &RealmRecord,
    provider: &Provider,
    m: &MembershipMapper,
    user_id: &str,
    paths: &[Vec<String>],
) -> Result<Vec<Removal>, LdapError> {
    let candidates: Vec<(Removal, String)> = {
        let read = app
            .store
            .read()
            .map_err(|e| LdapError::Search(e.to_string()))?;
        match &m.target {
            Target::Groups { path, .. } => {
                let Some(base) = local(resolve(&read, &realm.id, path))? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for id in local(read.user_group_ids(&realm.id, user_id))? {
                    let Some(names) = local(relative_path(&read, &realm.id, &id, base.as_deref()))?
                    else {
                        continue;
                    };
                    let wanted = if matches!(
                        m.target,
                        Target::Groups {
                            preserve_inheritance: true,
                            ..
                        }
                    ) {
                        paths.contains(&names)
                    } else {
                        paths.iter().any(|p| p.last() == names.last())
                    };
                    if !wanted {
                        if let Some(leaf) = names.last() {
                            out.push((Removal::Group(id), leaf.clone()));
                        }
                    }
                }
                out
            }
            Target::Roles { client_id } => {
                let Some(container) = local(role_container(&read, realm, client_id.as_deref()))?
                else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for id in local(read.user_role_ids(&realm.id, user_id))? {
                    if let Some(role) = local(read.role(&realm.id, &id))? {
                        if role.container_id == container
                            && !paths.iter().any(|p| p.last() == Some(&role.name))
                        {
                            out.push((Removal::Role(id), role.name));
                        }
                    }
                }
                out
            }
        }
    };
    let mut out = Vec::new();
    for (removal, name) in candidates {
        if provider.group_exists(m, &name).await? {
            out.push(removal);
        }
    }
    Ok(out)
}

/// A store error while planning (the plan is then left out, as a directory error is).
fn local<T>(r: Result<T, StoreError>) -> Result<T, LdapError> {
    r.map_err(|e| LdapError::Search(e.to_string()))
}

/// Apply `plan` and the hard-coded mappers to `user_id`, inside the caller's transaction.
pub fn apply(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    user_id: &str,
    plan: &Plan,
) -> Result<(), StoreError> {
    for removal in &plan.removes {
        match removal {
            Removal::Group(g) => {
                w.remove_member(&realm.id, g, user_id)?;
            }
            Removal::Role(r) => {
                w.revoke_user_role(&realm.id, user_id, r)?;
            }
        }
    }
    for (i, paths) in &plan.adds {
        let Some(m) = provider.mappers.memberships.get(*i) else {
            continue;
        };
        match &m.target {
            Target::Groups {
                path,
                preserve_inheritance,
            } => {
                let base = ensure_path(w, &realm.id, path)?;
                let groups = w.user_group_ids(&realm.id, user_id)?;
                for p in paths {
                    let names: &[String] = if *preserve_inheritance {
                        p
                    } else {
                        &p[p.len().saturating_sub(1)..]
                    };
                    let id = ensure_under(w, &realm.id, base.clone(), names)?;
                    if let Some(id) = id {
                        if !groups.contains(&id) {
                            w.add_member(&realm.id, &id, user_id)?;
                        }
                    }
                }
            }
            Target::Roles { client_id } => {
                let Some(container) = role_container(&**w, realm, client_id.as_deref())? else {
                    continue;
                };
                let held = w.user_role_ids(&realm.id, user_id)?;
                for name in paths.iter().filter_map(|p| p.last()) {
                    let role = match w.role_by_name(&realm.id, &container, name)? {
                        Some(r) => r,
                        None => {
                            let r = RoleRecord {
                                id: crate::crypto::random_id(),
                                name: name.clone(),
                                container_id: container.clone(),
                                client_role: container != realm.id,
                                ..Default::default()
                            };
                            w.put_role(&realm.id, &r)?;
                            r
                        }
                    };
                    if !held.contains(&role.id) {
                        w.grant_user_role(&realm.id, user_id, &role.id)?;
                    }
                }
            }
        }
    }
    for role in &provider.mappers.hardcoded_roles {
        if let Some(id) = hardcoded_role(&**w, realm, role)? {
            if !w.user_role_ids(&realm.id, user_id)?.contains(&id) {
                w.grant_user_role(&realm.id, user_id, &id)?;
            }
        }
    }
    for path in &provider.mappers.hardcoded_groups {
        if let Some(Some(id)) = resolve(&**w, &realm.id, path)? {
            if !w.user_group_ids(&realm.id, user_id)?.contains(&id) {
                w.add_member(&realm.id, &id, user_id)?;
            }
        }
    }
    Ok(())
}

/// The local paths of `m`'s directory groups (each from its top-most ancestor with
/// `preserve.group.inheritance`, else the name alone): computed once, outside any
/// transaction. A group's parent is the first group listing its DN as a member; at most 16
/// levels, never round a cycle.
pub fn group_paths(
    m: &MembershipMapper,
    groups: &[(String, String, Vec<String>)],
) -> Vec<Vec<String>> {
    use std::collections::HashMap;
    let inherit = matches!(
        m.target,
        Target::Groups {
            preserve_inheritance: true,
            ..
        }
    );
    let by_dn: HashMap<String, &str> = groups
        .iter()
        .map(|(dn, name, _)| (dn.to_ascii_lowercase(), name.as_str()))
        .collect();
    let mut parent: HashMap<String, String> = HashMap::new();
    if inherit {
        for (dn, _, members) in groups {
            for member in members {
                let member = member.to_ascii_lowercase();
                if by_dn.contains_key(&member) {
                    parent
                        .entry(member)
                        .or_insert_with(|| dn.to_ascii_lowercase());
                }
            }
        }
    }
    let mut out: Vec<Vec<String>> = groups
        .iter()
        .map(|(dn, _, _)| {
            let mut at = dn.to_ascii_lowercase();
            let mut names = Vec::new();
            let mut seen = std::collections::HashSet::new();
            while let Some(name) = by_dn.get(&at) {
                if !seen.insert(at.clone()) || names.len() > 16 {
                    break;
                }
                names.insert(0, name.to_string());
                match parent.get(&at) {
                    Some(p) => at = p.clone(),
                    None => break,
                }
            }
            names
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Create `m`'s groups (`paths` from [`group_paths`]) or roles from the directory's list
/// (`mappers/{id}/sync?direction=fedToKeycloak`): (added, already there).
pub fn import_all(
    w: &mut Write,
    realm: &RealmRecord,
    m: &MembershipMapper,
    paths: &[Vec<String>],
) -> Result<(usize, usize), StoreError> {
    let (mut added, mut known) = (0, 0);
    match &m.target {
        Target::Groups { path, .. } => {
            let base = ensure_path(w, &realm.id, path)?;
            for names in paths {
                if resolve_under(&**w, &realm.id, base.as_deref(), names)?.is_some() {
                    known += 1;
                } else {
                    ensure_under(w, &realm.id, base.clone(), names)?;
                    added += 1;
                }
            }
        }
        Target::Roles { client_id } => {
            let Some(container) = role_container(&**w, realm, client_id.as_deref())? else {
                return Ok((0, 0));
            };
            for name in paths.iter().filter_map(|p| p.last()) {
                if w.role_by_name(&realm.id, &container, name)?.is_some() {
                    known += 1;
                } else {
                    w.put_role(
                        &realm.id,
                        &RoleRecord {
                            id: crate::crypto::random_id(),
                            name: name.clone(),
                            container_id: container.clone(),
                            client_role: container != realm.id,
                            ..Default::default()
                        },
                    )?;
                    added += 1;
                }
            }
        }
    }
    Ok((added, known))
}

/// The container of `m`'s roles: the realm, or the client `client_id` (`None` if missing).
fn role_container<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    client_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    match client_id {
        None => Ok(Some(realm.id.clone())),
        Some(c) => Ok(read.client_by_client_id(&realm.id, c)?.map(|c| c.id)),
    }
}

/// A hard-coded mapper's role: `name` (realm role) or `clientId.name`.
fn hardcoded_role<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    role: &str,
) -> Result<Option<String>, StoreError> {
    if let Some(r) = read.role_by_name(&realm.id, &realm.id, role)? {
        return Ok(Some(r.id));
    }
    for (i, _) in role.match_indices('.') {
        if let Some(client) = read.client_by_client_id(&realm.id, &role[..i])? {
            if let Some(r) = read.role_by_name(&realm.id, &client.id, &role[i + 1..])? {
                return Ok(Some(r.id));
            }
        }
    }
    Ok(None)
}

/// The group at `path` (`Some(None)`: the top, `/`; `None`: no such group).
fn resolve<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &str,
    path: &str,
) -> Result<Option<Option<String>>, StoreError> {
    let names: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(Some(None));
    }
    Ok(resolve_under(read, realm, None, &names)?.map(Some))
}

fn resolve_under<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &str,
    base: Option<&str>,
    names: &[String],
) -> Result<Option<String>, StoreError> {
    let mut at = base.map(str::to_string);
    for name in names {
        match read
            .group_children(realm, at.as_deref())?
            .into_iter()
            .find(|g| &g.name == name)
        {
            Some(g) => at = Some(g.id),
            None => return Ok(None),
        }
    }
    Ok(at)
}

/// The names of the group `id` below `base` (`None` when it is not below it).
fn relative_path<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &str,
    id: &str,
    base: Option<&str>,
) -> Result<Option<Vec<String>>, StoreError> {
    let mut names = Vec::new();
    let mut at = read.group(realm, id)?;
    while let Some(g) = at {
        names.insert(0, g.name.clone());
        if g.parent_id.as_deref() == base {
            return Ok(Some(names));
        }
        at = match &g.parent_id {
            Some(p) if names.len() < 64 => read.group(realm, p)?,
            _ => None,
        };
    }
    Ok(None)
}

/// The group at `path`, created (with its ancestors) if missing.
fn ensure_path(w: &mut Write, realm: &str, path: &str) -> Result<Option<String>, StoreError> {
    let names: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    ensure_under(w, realm, None, &names)
}

fn ensure_under(
    w: &mut Write,
    realm: &str,
    base: Option<String>,
    names: &[String],
) -> Result<Option<String>, StoreError> {
    let mut at = base;
    for name in names {
        let existing = w
            .group_children(realm, at.as_deref())?
            .into_iter()
            .find(|g| &g.name == name);
        at = Some(match existing {
            Some(g) => g.id,
            None => {
                let g = GroupRecord {
                    id: crate::crypto::random_id(),
                    name: name.clone(),
                    parent_id: at.clone(),
                    attributes: Default::default(),
                };
                w.put_group(realm, &g)?;
                g.id
            }
        });
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_follow_member_links_and_stop_at_cycles() {
        let g = |dn: &str, name: &str, members: &[&str]| {
            (
                dn.to_string(),
                name.to_string(),
                members.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )
        };
        let groups = [
            g("cn=all,ou=g", "all", &["CN=staff,ou=g"]),
            g("cn=staff,ou=g", "staff", &["cn=ops,ou=g", "uid=a,ou=p"]),
            g("cn=ops,ou=g", "ops", &[]),
            g("cn=x,ou=g", "x", &["cn=y,ou=g"]),
            g("cn=y,ou=g", "y", &["cn=x,ou=g"]),
        ];
        let mapper = |preserve: bool| MembershipMapper {
            id: "m".into(),
            name: "m".into(),
            target: Target::Groups {
                path: "/".into(),
                preserve_inheritance: preserve,
            },
            dn: "ou=g".into(),
            name_attribute: "cn".into(),
            object_classes: vec!["groupOfNames".into()],
            filter: None,
            member_attribute: "member".into(),
            member_by_dn: true,
            member_user_attribute: "uid".into(),
            mode: Mode::ReadOnly,
            member_of: None,
        };
        let paths = group_paths(&mapper(true), &groups);
        assert!(
            paths.contains(&vec!["all".into(), "staff".into(), "ops".into()]),
            "{paths:?}"
        );
        assert!(paths.contains(&vec!["all".into()]));
        // A cycle ends the walk instead of looping.
        assert!(paths.iter().all(|p| p.len() <= 3), "{paths:?}");
        let flat = group_paths(&mapper(false), &groups);
        assert_eq!(flat.len(), 5);
        assert!(flat.iter().all(|p| p.len() == 1));
    }
}
