//! Roles (realm and client) and the role mappings of users and groups, kept in both
//! directions.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kv::{Bytes, Table, S};
use super::records::{ClientRecord, ClientScopeRecord, RoleRecord};
use super::tables::{
    CLIENTS, CLIENT_SCOPES, GROUP_ROLES, ROLES, ROLES_BY_NAME, ROLE_GROUPS, ROLE_USERS, USER_ROLES,
};
use super::view::{between, Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn role(&self, realm: &str, id: &str) -> Result<Option<RoleRecord>> {
        self.record(ROLES, (realm, id))
    }

    /// The roles of `ids` that exist, in that order (one lookup for all).
    pub fn roles_by_id(&self, realm: &str, ids: &[String]) -> Result<Vec<RoleRecord>> {
        self.records_many(ROLES, ids.iter().map(|id| (realm, id.as_str())))
    }

    /// A role by name within its container (the realm id, or a client uuid).
    pub fn role_by_name(
        &self,
        realm: &str,
        container: &str,
        name: &str,
    ) -> Result<Option<RoleRecord>> {
        match self.get(ROLES_BY_NAME, (realm, container, name))? {
            Some(id) => self.role(realm, &id),
            None => Ok(None),
        }
    }

    /// The roles of one container, ordered by name.
    pub fn roles(&self, realm: &str, container: &str) -> Result<Vec<RoleRecord>> {
        let ids = self.values_in(
            ROLES_BY_NAME,
            between((realm, container, ""), (realm, container, MAX)),
        )?;
        self.roles_by_id(realm, &ids)
    }

    /// Role ids granted directly to a user.
    pub fn user_role_ids(&self, realm: &str, user: &str) -> Result<Vec<String>> {
        self.multi_values(USER_ROLES, realm, user)
    }

    /// User ids holding a role directly.
    pub fn role_user_ids(&self, realm: &str, role: &str) -> Result<Vec<String>> {
        self.multi_values(ROLE_USERS, realm, role)
    }

    /// Ids of the groups granted a role directly.
    pub fn role_group_ids(&self, realm: &str, role: &str) -> Result<Vec<String>> {
        self.multi_values(ROLE_GROUPS, realm, role)
    }

    /// Role ids granted to a group.
    pub fn group_role_ids(&self, realm: &str, group: &str) -> Result<Vec<String>> {
        self.multi_values(GROUP_ROLES, realm, group)
    }
}

impl Write {
    /// Insert or update a role; the name is unique within its container. Composites must
    /// name existing roles of the realm.
    pub fn put_role(&mut self, realm: &str, role: &RoleRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        for composite in &role.composites {
            if composite != &role.id && self.role(realm, composite)?.is_none() {
                return Err(StoreError::Missing("composite role"));
            }
        }
        let previous = self.role(realm, &role.id)?;
        let container = role.container_id.as_str();
        if let Some(owner) = self.get(ROLES_BY_NAME, (realm, container, role.name.as_str()))? {
            if owner != role.id {
                return Err(StoreError::Conflict(Conflict::RoleName));
            }
        }
        if let Some(prev) = previous {
            if prev.name != role.name || prev.container_id != role.container_id {
                self.remove(
                    ROLES_BY_NAME,
                    (realm, prev.container_id.as_str(), prev.name.as_str()),
                )?;
            }
        }
        self.insert(
            ROLES_BY_NAME,
            (realm, container, role.name.as_str()),
            role.id.as_str(),
        )?;
        self.insert_record(ROLES, (realm, role.id.as_str()), role)?;
        Ok(())
    }

    /// Delete a role, its mappings to users and groups, and its place in other composites.
    pub fn delete_role(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(role) = self.role(realm, id)? else {
            return Ok(false);
        };
        for user in self.role_user_ids(realm, id)? {
            self.multi_remove(USER_ROLES, (realm, user.as_str()), id)?;
        }
        self.multi_remove_all(ROLE_USERS, (realm, id))?;
        for group in self.multi_values(ROLE_GROUPS, realm, id)? {
            self.multi_remove(GROUP_ROLES, (realm, group.as_str()), id)?;
        }
        self.multi_remove_all(ROLE_GROUPS, (realm, id))?;
        // Remove it from composites that include it.
        let roles: Vec<RoleRecord> = self.records_in(ROLES, between((realm, ""), (realm, MAX)))?;
        for mut r in roles
            .into_iter()
            .filter(|r| r.composites.iter().any(|c| c == id))
        {
            r.composites.retain(|c| c != id);
            self.insert_record(ROLES, (realm, r.id.as_str()), &r)?;
        }
        // And from the role scope of clients and client scopes.
        self.retain_scope_roles::<ClientRecord>(CLIENTS, realm, id)?;
        self.retain_scope_roles::<ClientScopeRecord>(CLIENT_SCOPES, realm, id)?;
        self.remove(
            ROLES_BY_NAME,
            (realm, role.container_id.as_str(), role.name.as_str()),
        )?;
        self.remove(ROLES, (realm, id))?;
        Ok(true)
    }

    /// Grant a role to a user directly (idempotent).
    pub fn grant_user_role(&mut self, realm: &str, user: &str, role: &str) -> Result<()> {
        self.require_user_and_role(realm, user, role)?;
        self.multi_insert(USER_ROLES, (realm, user), role)?;
        self.multi_insert(ROLE_USERS, (realm, role), user)
    }

    pub fn revoke_user_role(&mut self, realm: &str, user: &str, role: &str) -> Result<bool> {
        let removed = self.multi_remove(USER_ROLES, (realm, user), role)?;
        self.multi_remove(ROLE_USERS, (realm, role), user)?;
        Ok(removed)
    }

    /// Grant a role to a group (idempotent).
    pub fn grant_group_role(&mut self, realm: &str, group: &str, role: &str) -> Result<()> {
        if self.group(realm, group)?.is_none() {
            return Err(StoreError::Missing("group"));
        }
        if self.role(realm, role)?.is_none() {
            return Err(StoreError::Missing("role"));
        }
        self.multi_insert(GROUP_ROLES, (realm, group), role)?;
        self.multi_insert(ROLE_GROUPS, (realm, role), group)
    }

    pub fn revoke_group_role(&mut self, realm: &str, group: &str, role: &str) -> Result<bool> {
        let removed = self.multi_remove(GROUP_ROLES, (realm, group), role)?;
        self.multi_remove(ROLE_GROUPS, (realm, role), group)?;
        Ok(removed)
    }

    /// Drop a deleted role from the role scope of every record in `table`.
    fn retain_scope_roles<R: ScopeRoles>(
        &mut self,
        table: Table<(S, S), Bytes>,
        realm: &str,
        role: &str,
    ) -> Result<()> {
        let records: Vec<R> = self.records_in(table, between((realm, ""), (realm, MAX)))?;
        for mut r in records
            .into_iter()
            .filter(|r| r.scope_roles().iter().any(|id| id == role))
        {
            r.scope_roles_mut().retain(|id| id != role);
            let id = r.id().to_string();
            self.insert_record(table, (realm, id.as_str()), &r)?;
        }
        Ok(())
    }

    pub(super) fn require_user_and_role(&self, realm: &str, user: &str, role: &str) -> Result<()> {
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        if self.role(realm, role)?.is_none() {
            return Err(StoreError::Missing("role"));
        }
        Ok(())
    }
}

/// Records with a role scope (Keycloak's scope mappings).
trait ScopeRoles: Serialize + DeserializeOwned {
    fn id(&self) -> &str;
    fn scope_roles(&self) -> &[String];
    fn scope_roles_mut(&mut self) -> &mut Vec<String>;
}

macro_rules! scope_roles {
    ($($t:ty),*) => {$(
        impl ScopeRoles for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn scope_roles(&self) -> &[String] {
                &self.scope_role_ids
            }
            fn scope_roles_mut(&mut self) -> &mut Vec<String> {
                &mut self.scope_role_ids
            }
        }
    )*};
}
scope_roles!(ClientRecord, ClientScopeRecord);
