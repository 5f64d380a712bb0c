//! Realms: the record and its unique name; deleting one removes everything in it.

use redb::{ReadableMultimapTable, ReadableTable};

use super::records::RealmRecord;
use super::tables::{
    AUTH_CODES, CLIENTS, CLIENTS_BY_CLIENT_ID, CLIENT_SCOPES, CLIENT_SCOPES_BY_NAME, CREDENTIALS,
    DEVICE_CODES, EVENTS, GROUPS, GROUP_CHILDREN, GROUP_MEMBERS, GROUP_ROLES, LOGIN_FAILURES,
    LOGIN_FLOWS, REALMS, REALM_NAMES, REALM_OBJECTS, REVOKED_TOKENS, ROLES, ROLES_BY_NAME,
    ROLE_GROUPS, ROLE_USERS, SESSIONS, SIGNING_KEYS, USERS, USERS_BY_EMAIL, USERS_BY_FIRST_NAME,
    USERS_BY_LAST_NAME, USERS_BY_NAME, USER_CODES, USER_COUNTS, USER_GROUPS, USER_ROLES,
    USER_SESSIONS,
};
use super::view::{Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn realm(&self, id: &str) -> Result<Option<RealmRecord>> {
        self.record(REALMS, id)
    }

    pub fn realm_by_name(&self, name: &str) -> Result<Option<RealmRecord>> {
        match self.id_for(REALM_NAMES, name)? {
            Some(id) => self.realm(&id),
            None => Ok(None),
        }
    }

    /// Every realm, ordered by name.
    pub fn realms(&self) -> Result<Vec<RealmRecord>> {
        let names = self.txn.open_table(REALM_NAMES)?;
        let mut out = Vec::new();
        for entry in names.iter()? {
            let (_, id) = entry?;
            if let Some(r) = self.realm(id.value())? {
                out.push(r);
            }
        }
        Ok(out)
    }
}

impl Write {
    /// Insert or update a realm; its name is unique.
    pub fn put_realm(&mut self, realm: &RealmRecord) -> Result<()> {
        let previous = self.realm(&realm.id)?;
        let mut names = self.txn.open_table(REALM_NAMES)?;
        if let Some(owner) = names.get(realm.name.as_str())? {
            if owner.value() != realm.id {
                return Err(StoreError::Conflict(Conflict::RealmName));
            }
        }
        if let Some(prev) = previous {
            if prev.name != realm.name {
                names.remove(prev.name.as_str())?;
            }
        }
        names.insert(realm.name.as_str(), realm.id.as_str())?;
        self.insert_record(REALMS, realm.id.as_str(), realm)?;
        Ok(())
    }

    /// Delete a realm and everything in it.
    pub fn delete_realm(&mut self, id: &str) -> Result<bool> {
        let Some(realm) = self.realm(id)? else {
            return Ok(false);
        };
        self.txn
            .open_table(REALM_NAMES)?
            .remove(realm.name.as_str())?;
        self.txn.open_table(REALMS)?.remove(id)?;
        macro_rules! clear2 {
            ($($def:expr),*) => {$(
                self.txn.open_table($def)?.retain_in((id, "")..=(id, MAX), |_, _| false)?;
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
            LOGIN_FAILURES
        );
        self.txn
            .open_table(REVOKED_TOKENS)?
            .retain_in((id, "")..=(id, MAX), |_, _| false)?;
        self.txn
            .open_table(REALM_OBJECTS)?
            .retain_in((id, "", "")..=(id, MAX, MAX), |_, _| false)?;
        self.txn
            .open_table(CREDENTIALS)?
            .retain_in((id, "", "")..=(id, MAX, MAX), |_, _| false)?;
        self.txn
            .open_table(ROLES_BY_NAME)?
            .retain_in((id, "", "")..=(id, MAX, MAX), |_, _| false)?;
        self.txn
            .open_table(EVENTS)?
            .retain_in((id, i64::MIN, "")..=(id, i64::MAX, MAX), |_, _| false)?;
        self.txn.open_table(USER_COUNTS)?.remove(id)?;
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
            let mut t = self.txn.open_multimap_table(def)?;
            let mut keys = Vec::new();
            for entry in t.range((id, "")..=(id, MAX))? {
                keys.push(entry?.0.value().1.to_string());
            }
            for key in keys {
                t.remove_all((id, key.as_str()))?;
            }
        }
        Ok(true)
    }
}
