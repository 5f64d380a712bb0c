//! Effective roles: what a user holds directly, through its groups (and their ancestors),
//! expanded through composite roles. This is what tokens carry and what admin permission
//! checks ask.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::store::{ClientRecord, GroupRecord, Read, RoleRecord, StoreError, Write};

/// The reads role resolution needs, from a read snapshot or inside a write transaction (so
/// that a write can check the grants it is about to commit).
pub trait RoleGraph {
    fn role(&self, realm: &str, id: &str) -> Result<Option<RoleRecord>, StoreError>;
    /// The roles of `ids` that exist, in that order (one lookup for all).
    fn roles_by_id(&self, realm: &str, ids: &[String]) -> Result<Vec<RoleRecord>, StoreError>;
    fn client(&self, realm: &str, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    fn group(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>, StoreError>;
    fn user_role_ids(&self, realm: &str, user: &str) -> Result<Vec<String>, StoreError>;
    fn user_group_ids(&self, realm: &str, user: &str) -> Result<Vec<String>, StoreError>;
    fn group_role_ids(&self, realm: &str, group: &str) -> Result<Vec<String>, StoreError>;
}

/// `$t` answers through `$view`'s inherent readers: for [`Write`], the view it derefs to
/// (naming `Write` itself here would pick this trait's method and recurse).
macro_rules! role_graph {
    ($t:ty, $view:ty) => {
        impl RoleGraph for $t {
            fn role(&self, realm: &str, id: &str) -> Result<Option<RoleRecord>, StoreError> {
                <$view>::role(self, realm, id)
            }
            fn roles_by_id(
                &self,
                realm: &str,
                ids: &[String],
            ) -> Result<Vec<RoleRecord>, StoreError> {
                <$view>::roles_by_id(self, realm, ids)
            }
            fn client(&self, realm: &str, id: &str) -> Result<Option<ClientRecord>, StoreError> {
                <$view>::client(self, realm, id)
            }
            fn group(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>, StoreError> {
                <$view>::group(self, realm, id)
            }
            fn user_role_ids(&self, realm: &str, user: &str) -> Result<Vec<String>, StoreError> {
                <$view>::user_role_ids(self, realm, user)
            }
            fn user_group_ids(&self, realm: &str, user: &str) -> Result<Vec<String>, StoreError> {
                <$view>::user_group_ids(self, realm, user)
            }
            fn group_role_ids(&self, realm: &str, group: &str) -> Result<Vec<String>, StoreError> {
                <$view>::group_role_ids(self, realm, group)
            }
        }
    };
}
role_graph!(Read, Read);
role_graph!(Write, <Write as std::ops::Deref>::Target);

/// A user's effective roles, split the way tokens carry them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EffectiveRoles {
    /// Realm role names.
    pub realm: BTreeSet<String>,
    /// clientId → client role names.
    pub clients: BTreeMap<String, BTreeSet<String>>,
    /// Every role id (for permission checks by id).
    pub ids: HashSet<String>,
}

/// Effective roles of administrators, computed once per store generation: an
/// administrator of many realms holds thousands of roles (master's `admin` includes every
/// `{realm}-realm` client's), which every admin call would otherwise expand again. Any
/// committed write changes the generation, so a role taken away stops working at once.
pub struct RoleCache {
    cache: moka::sync::Cache<(String, String), (u64, std::sync::Arc<EffectiveRoles>)>,
}

impl Default for RoleCache {
    fn default() -> Self {
        RoleCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(300))
                .build(),
        }
    }
}

impl RoleCache {
    /// The user's effective roles: cached when computed at `generation` (read before the
    /// read transaction `compute` uses), else computed.
    pub fn effective(
        &self,
        generation: u64,
        realm: &str,
        user: &str,
        compute: impl FnOnce() -> Result<EffectiveRoles, StoreError>,
    ) -> Result<std::sync::Arc<EffectiveRoles>, StoreError> {
        let key = (realm.to_string(), user.to_string());
        if let Some((at, roles)) = self.cache.get(&key) {
            if at == generation {
                return Ok(roles);
            }
        }
        let roles = std::sync::Arc::new(compute()?);
        self.cache.insert(key, (generation, roles.clone()));
        Ok(roles)
    }
}

impl EffectiveRoles {
    pub fn has_client_role(&self, client_id: &str, role: &str) -> bool {
        self.clients
            .get(client_id)
            .is_some_and(|r| r.contains(role))
    }
}

/// Ids of the groups a user belongs to, with every ancestor group.
pub fn group_ids_with_ancestors(
    read: &impl RoleGraph,
    realm: &str,
    user: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for group in read.user_group_ids(realm, user)? {
        let mut current = Some(group);
        while let Some(id) = current {
            if !seen.insert(id.clone()) {
                break;
            }
            current = read.group(realm, &id)?.and_then(|g| g.parent_id);
            out.push(id);
        }
    }
    Ok(out)
}

/// Role ids a member of `group` receives: the group's own and its ancestors' (before
/// composites are expanded).
pub fn group_conferred_role_ids(
    read: &impl RoleGraph,
    realm: &str,
    group: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut current = Some(group.to_string());
    while let Some(id) = current {
        if !seen.insert(id.clone()) {
            break;
        }
        out.extend(read.group_role_ids(realm, &id)?);
        current = read.group(realm, &id)?.and_then(|g| g.parent_id);
    }
    Ok(out)
}

/// Full paths (`/parent/child`) of the groups a user is a direct member of, sorted.
pub fn group_paths(read: &Read, realm: &str, user: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for id in read.user_group_ids(realm, user)? {
        let mut names = Vec::new();
        let mut current = Some(id);
        while let Some(gid) = current {
            if names.len() > 100 {
                break;
            }
            match read.group(realm, &gid)? {
                Some(g) => {
                    names.push(g.name);
                    current = g.parent_id;
                }
                None => break,
            }
        }
        names.reverse();
        out.push(format!("/{}", names.join("/")));
    }
    out.sort();
    Ok(out)
}

/// Expand role ids through composites (cycle-safe).
pub fn expand(
    read: &impl RoleGraph,
    realm: &str,
    start: Vec<String>,
) -> Result<Vec<RoleRecord>, StoreError> {
    // Level by level: one lookup for each level of composites.
    let mut seen = HashSet::new();
    let mut level = start;
    let mut out = Vec::new();
    while !level.is_empty() {
        let ids: Vec<String> = level
            .drain(..)
            .filter(|id| seen.insert(id.clone()))
            .collect();
        for role in read.roles_by_id(realm, &ids)? {
            level.extend(
                role.composites
                    .iter()
                    .filter(|c| !seen.contains(*c))
                    .cloned(),
            );
            out.push(role);
        }
    }
    Ok(out)
}

/// A user's effective roles.
pub fn effective_roles(
    read: &impl RoleGraph,
    realm: &str,
    user: &str,
) -> Result<EffectiveRoles, StoreError> {
    let mut start = read.user_role_ids(realm, user)?;
    for group in group_ids_with_ancestors(read, realm, user)? {
        start.extend(read.group_role_ids(realm, &group)?);
    }
    collect(read, realm, expand(read, realm, start)?)
}

/// Of `roles`, those a client may put in its tokens: all with `fullScopeAllowed`, else the
/// ones the scope mappings of the client and of its applied client scopes reach (through
/// composites) and its own client roles (Keycloak's role scope). What a user may do is
/// always decided from all the user's roles.
pub fn in_client_scope(
    read: &impl RoleGraph,
    realm: &str,
    client: &ClientRecord,
    scopes: &crate::idp::client_scopes::Scopes,
    roles: EffectiveRoles,
) -> Result<EffectiveRoles, StoreError> {
    if client.full_scope_allowed {
        return Ok(roles);
    }
    let mut mapped = client.scope_role_ids.clone();
    mapped.extend(scopes.role_ids().cloned());
    let allowed: HashSet<String> = expand(read, realm, mapped)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let ids: Vec<String> = roles.ids.iter().cloned().collect();
    let kept = read
        .roles_by_id(realm, &ids)?
        .into_iter()
        .filter(|role| {
            allowed.contains(&role.id) || (role.client_role && role.container_id == client.id)
        })
        .collect();
    collect(read, realm, kept)
}

/// Roles by name (realm, and client roles by clientId) and by id.
fn collect(
    read: &impl RoleGraph,
    realm: &str,
    roles: Vec<RoleRecord>,
) -> Result<EffectiveRoles, StoreError> {
    let mut result = EffectiveRoles::default();
    let mut client_names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for role in roles {
        result.ids.insert(role.id.clone());
        if role.client_role {
            let client_id = match client_names.get(&role.container_id) {
                Some(name) => name.clone(),
                None => {
                    let name = read.client(realm, &role.container_id)?.map(|c| c.client_id);
                    client_names.insert(role.container_id.clone(), name.clone());
                    name
                }
            };
            if let Some(client_id) = client_id {
                result
                    .clients
                    .entry(client_id)
                    .or_default()
                    .insert(role.name);
            }
        } else {
            result.realm.insert(role.name);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClientRecord, GroupRecord, RealmRecord, UserRecord};

    #[test]
    fn direct_group_inherited_and_composite_roles() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        store
            .write(|w| {
                w.put_realm(&RealmRecord {
                    id: "r".into(),
                    name: "r".into(),
                    ..Default::default()
                })?;
                w.put_client(
                    "r",
                    &ClientRecord {
                        id: "c".into(),
                        client_id: "app".into(),
                        ..Default::default()
                    },
                )?;
                let role =
                    |id: &str, container: &str, client: bool, composites: Vec<String>| RoleRecord {
                        id: id.into(),
                        name: id.into(),
                        container_id: container.into(),
                        client_role: client,
                        composites,
                        ..Default::default()
                    };
                w.put_role("r", &role("reader", "c", true, vec![]))?;
                w.put_role("r", &role("editor", "r", false, vec!["reader".into()]))?;
                w.put_role("r", &role("staff", "r", false, vec![]))?;
                w.put_role("r", &role("direct", "r", false, vec![]))?;
                // A cycle must not loop forever.
                w.put_role("r", &role("loop", "r", false, vec!["loop".into()]))?;
                w.put_user(
                    "r",
                    &UserRecord {
                        id: "u".into(),
                        username: "u".into(),
                        ..Default::default()
                    },
                    false,
                )?;
                w.put_group(
                    "r",
                    &GroupRecord {
                        id: "parent".into(),
                        name: "parent".into(),
                        ..Default::default()
                    },
                )?;
                w.put_group(
                    "r",
                    &GroupRecord {
                        id: "child".into(),
                        name: "child".into(),
                        parent_id: Some("parent".into()),
                        ..Default::default()
                    },
                )?;
                w.grant_group_role("r", "parent", "staff")?;
                w.grant_group_role("r", "child", "editor")?;
                w.add_member("r", "child", "u")?;
                w.grant_user_role("r", "u", "direct")?;
                w.grant_user_role("r", "u", "loop")
            })
            .unwrap();
        let roles = effective_roles(&store.read().unwrap(), "r", "u").unwrap();
        let realm: Vec<&str> = roles.realm.iter().map(String::as_str).collect();
        assert_eq!(realm, vec!["direct", "editor", "loop", "staff"]);
        assert!(roles.has_client_role("app", "reader"));
    }
}
