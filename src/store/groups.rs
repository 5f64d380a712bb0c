//! Groups (a tree by parent) and their members.

use super::records::GroupRecord;
use super::tables::{GROUPS, GROUP_CHILDREN, GROUP_MEMBERS, GROUP_ROLES, ROLE_GROUPS, USER_GROUPS};
use super::view::{existing, Txn, View, Write};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn group(&self, realm: &str, id: &str) -> Result<Option<GroupRecord>> {
        self.record(GROUPS, (realm, id))
    }

    /// Direct children of a group (`None`: the top-level groups), ordered by name.
    pub fn group_children(&self, realm: &str, parent: Option<&str>) -> Result<Vec<GroupRecord>> {
        let ids = self.multi_values(GROUP_CHILDREN, realm, parent.unwrap_or(""))?;
        let mut out = existing(ids, |id| self.group(realm, id))?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Group ids a user is a direct member of.
    pub fn user_group_ids(&self, realm: &str, user: &str) -> Result<Vec<String>> {
        self.multi_values(USER_GROUPS, realm, user)
    }

    /// Direct members of a group.
    pub fn group_member_ids(&self, realm: &str, group: &str) -> Result<Vec<String>> {
        self.multi_values(GROUP_MEMBERS, realm, group)
    }
}

impl Write {
    /// Insert or update a group; the name is unique among its siblings.
    pub fn put_group(&mut self, realm: &str, group: &GroupRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        if let Some(parent) = &group.parent_id {
            if self.group(realm, parent)?.is_none() {
                return Err(StoreError::Missing("parent group"));
            }
        }
        let siblings = self.group_children(realm, group.parent_id.as_deref())?;
        if siblings
            .iter()
            .any(|s| s.name == group.name && s.id != group.id)
        {
            return Err(StoreError::Conflict(Conflict::GroupName));
        }
        let previous = self.group(realm, &group.id)?;
        if let Some(prev) = previous {
            self.multi_remove(
                GROUP_CHILDREN,
                (realm, prev.parent_id.as_deref().unwrap_or("")),
                group.id.as_str(),
            )?;
        }
        self.multi_insert(
            GROUP_CHILDREN,
            (realm, group.parent_id.as_deref().unwrap_or("")),
            group.id.as_str(),
        )?;
        self.insert_record(GROUPS, (realm, group.id.as_str()), group)?;
        Ok(())
    }

    /// Delete a group, its subgroups, their memberships and role mappings.
    pub fn delete_group(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(group) = self.group(realm, id)? else {
            return Ok(false);
        };
        for child in self.group_children(realm, Some(id))? {
            self.delete_group(realm, &child.id)?;
        }
        for user in self.group_member_ids(realm, id)? {
            self.multi_remove(USER_GROUPS, (realm, user.as_str()), id)?;
        }
        self.multi_remove_all(GROUP_MEMBERS, (realm, id))?;
        for role in self.group_role_ids(realm, id)? {
            self.multi_remove(ROLE_GROUPS, (realm, role.as_str()), id)?;
        }
        self.multi_remove_all(GROUP_ROLES, (realm, id))?;
        self.multi_remove(
            GROUP_CHILDREN,
            (realm, group.parent_id.as_deref().unwrap_or("")),
            id,
        )?;
        self.remove(GROUPS, (realm, id))?;
        Ok(true)
    }

    /// Make a user a member of a group (idempotent).
    pub fn add_member(&mut self, realm: &str, group: &str, user: &str) -> Result<()> {
        if self.group(realm, group)?.is_none() {
            return Err(StoreError::Missing("group"));
        }
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.multi_insert(USER_GROUPS, (realm, user), group)?;
        self.multi_insert(GROUP_MEMBERS, (realm, group), user)
    }

    pub fn remove_member(&mut self, realm: &str, group: &str, user: &str) -> Result<bool> {
        let removed = self.multi_remove(USER_GROUPS, (realm, user), group)?;
        self.multi_remove(GROUP_MEMBERS, (realm, group), user)?;
        Ok(removed)
    }
}
