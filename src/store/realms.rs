//! Realms: the record and its unique name; deleting one removes everything in it.

use std::ops::Bound;

use super::records::RealmRecord;
use super::tables::{
    AUTH_CODES, CLIENTS, CLIENTS_BY_CLIENT_ID, CLIENT_SCOPES, CLIENT_SCOPES_BY_NAME, CREDENTIALS,
    DEVICE_CODES, EVENTS, GROUPS, GROUP_CHILDREN, GROUP_MEMBERS, GROUP_ROLES, LOGIN_FAILURES,
    LOGIN_FLOWS, REALMS, REALM_NAMES, REALM_OBJECTS, REVOKED_TOKENS, ROLES, ROLES_BY_NAME,
    ROLE_GROUPS, ROLE_USERS, SESSIONS, SIGNING_KEYS, USED_ONCE, USERS, USERS_BY_EMAIL,
    USERS_BY_FIRST_NAME, USERS_BY_LAST_NAME, USERS_BY_NAME, USER_CODES, USER_COUNTS, USER_GROUPS,
    USER_ROLES, USER_SESSIONS,
};
use super::view::{between, existing, Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn realm(&self, id: &str) -> Result<Option<RealmRecord>> {
        self.record(REALMS, id)
    }

    pub fn realm_by_name(&self, name: &str) -> Result<Option<RealmRecord>> {
        match self.get(REALM_NAMES, name)? {
            Some(id) => self.realm(&id),
            None => Ok(None),
        }
    }

    /// Every realm, ordered by name.
    pub fn realms(&self) -> Result<Vec<RealmRecord>> {
        let ids = self.values_in(REALM_NAMES, (Bound::Unbounded, Bound::Unbounded))?;
        existing(ids, |id| self.realm(id))
    }
}

impl Write {
    /// Insert or update a realm; its name is unique.
    pub fn put_realm(&mut self, realm: &RealmRecord) -> Result<()> {
        let previous = self.realm(&realm.id)?;
        if let Some(owner) = self.get(REALM_NAMES, realm.name.as_str())? {
            if owner != realm.id {
                return Err(StoreError::Conflict(Conflict::RealmName));
            }
        }
        if let Some(prev) = previous {
            if prev.name != realm.name {
                self.remove(REALM_NAMES, prev.name.as_str())?;
            }
        }
        self.insert(REALM_NAMES, realm.name.as_str(), realm.id.as_str())?;
        self.insert_record(REALMS, realm.id.as_str(), realm)?;
        Ok(())
    }

    /// Delete a realm and everything in it.
    pub fn delete_realm(&mut self, id: &str) -> Result<bool> {
        let Some(realm) = self.realm(id)? else {
            return Ok(false);
        };
        self.remove(REALM_NAMES, realm.name.as_str())?;
        self.remove(REALMS, id)?;
        macro_rules! clear2 {
            ($($def:expr),*) => {$(
                self.remove_range($def, between((id, ""), (id, MAX)))?;
            )*};
        }
        clear2!(
            USERS,
            USERS_BY_NAME,
            CLIENTS,
            CLIENTS_BY_CLIENT_ID,
            CLIENT_SCOPES,
            CLIENT_SCOPES_BY_NAME,
            ROLES,
            GROUPS,
            SIGNING_KEYS,
            SESSIONS,
            AUTH_CODES,
            LOGIN_FLOWS,
            DEVICE_CODES,
            USER_CODES,
            LOGIN_FAILURES,
            USED_ONCE
        );
        clear2!(REVOKED_TOKENS);
        self.remove_range(REALM_OBJECTS, between((id, "", ""), (id, MAX, MAX)))?;
        self.remove_range(CREDENTIALS, between((id, "", ""), (id, MAX, MAX)))?;
        self.remove_range(ROLES_BY_NAME, between((id, "", ""), (id, MAX, MAX)))?;
        self.remove_range(EVENTS, between((id, i64::MIN, ""), (id, i64::MAX, MAX)))?;
        self.remove(USER_COUNTS, id)?;
        // A new revision, not none: a node may hold this realm's keys under the old one.
        self.bump_key_revision(id)?;
        for def in [
            USERS_BY_EMAIL,
            USERS_BY_FIRST_NAME,
            USERS_BY_LAST_NAME,
            GROUP_CHILDREN,
            USER_ROLES,
            ROLE_USERS,
            GROUP_ROLES,
            ROLE_GROUPS,
            USER_GROUPS,
            GROUP_MEMBERS,
            USER_SESSIONS,
        ] {
            self.multi_remove_range(def, between((id, ""), (id, MAX)))?;
        }
        Ok(true)
    }
}
