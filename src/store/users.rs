//! Users and their credentials, with the indexes the admin search uses (username, e-mail,
//! first and last name) and the per-realm count.

use std::ops::Bound;

use super::records::{CredentialRecord, UserRecord};
use super::tables::{
    CREDENTIALS, GROUP_MEMBERS, LOGIN_FAILURES, ROLE_USERS, SESSIONS, USERS, USERS_BY_EMAIL,
    USERS_BY_FIRST_NAME, USERS_BY_LAST_NAME, USERS_BY_NAME, USER_COUNTS, USER_GROUPS, USER_ROLES,
    USER_SESSIONS,
};
use super::view::{between, existing, Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn user(&self, realm: &str, id: &str) -> Result<Option<UserRecord>> {
        self.record(USERS, (realm, id))
    }

    /// Look a user up by username (case-insensitive).
    pub fn user_by_username(&self, realm: &str, username: &str) -> Result<Option<UserRecord>> {
        let key = username.to_lowercase();
        match self.get(USERS_BY_NAME, (realm, key.as_str()))? {
            Some(id) => self.user(realm, &id),
            None => Ok(None),
        }
    }

    /// Users with this e-mail (case-insensitive); more than one only when the realm
    /// allows duplicate e-mails.
    pub fn users_by_email(&self, realm: &str, email: &str) -> Result<Vec<UserRecord>> {
        let ids = self.multi_values(USERS_BY_EMAIL, realm, &email.to_lowercase())?;
        existing(ids, |id| self.user(realm, id))
    }

    /// A page of users ordered by username.
    pub fn users_page(&self, realm: &str, first: usize, max: usize) -> Result<Vec<UserRecord>> {
        let ids = self.entries(
            USERS_BY_NAME,
            between((realm, ""), (realm, MAX)),
            first,
            max,
        )?;
        existing(ids.into_iter().map(|(_, id)| id), |id| self.user(realm, id))
    }

    /// Up to `max` users ordered by username, after `after` (a page by key: the cost does
    /// not grow with how far into the list it is).
    pub fn users_after(&self, realm: &str, after: &str, max: usize) -> Result<Vec<UserRecord>> {
        let range = (
            Bound::Excluded((realm, after)),
            Bound::Included((realm, MAX)),
        );
        let ids = self.entries(USERS_BY_NAME, range, 0, max)?;
        existing(ids.into_iter().map(|(_, id)| id), |id| self.user(realm, id))
    }

    pub fn user_count(&self, realm: &str) -> Result<u64> {
        Ok(self.get(USER_COUNTS, realm)?.unwrap_or(0))
    }

    /// Ids of users whose username, e-mail, first or last name starts with `prefix`
    /// (case-insensitive), at most `limit` of them, ordered by username.
    pub fn users_with_prefix(
        &self,
        realm: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<UserRecord>> {
        let prefix = prefix.to_lowercase();
        let upper = format!("{prefix}{MAX}");
        let range = between((realm, prefix.as_str()), (realm, upper.as_str()));
        let mut ids = std::collections::BTreeSet::new();
        for (_, id) in self.entries(USERS_BY_NAME, range, 0, limit)? {
            ids.insert(id);
        }
        for def in [USERS_BY_EMAIL, USERS_BY_FIRST_NAME, USERS_BY_LAST_NAME] {
            let mut n = 0;
            self.multi_scan(def, range, |_, id| {
                ids.insert(id);
                n += 1;
                Ok(n < limit)
            })?;
        }
        let mut users = existing(ids, |id| self.user(realm, id))?;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    pub fn credentials(&self, realm: &str, user: &str) -> Result<Vec<CredentialRecord>> {
        self.records_in(CREDENTIALS, between((realm, user, ""), (realm, user, MAX)))
    }
}

impl Write {
    /// Insert or update a user. The username (lower-cased) is unique in the realm; so is
    /// the e-mail unless `allow_duplicate_emails`.
    pub fn put_user(
        &mut self,
        realm: &str,
        user: &UserRecord,
        allow_duplicate_emails: bool,
    ) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        let mut user = user.clone();
        user.username = user.username.to_lowercase();
        let previous = self.user(realm, &user.id)?;
        if let Some(owner) = self.get(USERS_BY_NAME, (realm, user.username.as_str()))? {
            if owner != user.id {
                return Err(StoreError::Conflict(Conflict::Username));
            }
        }
        if let Some(prev) = &previous {
            if prev.username != user.username {
                self.remove(USERS_BY_NAME, (realm, prev.username.as_str()))?;
            }
        }
        self.insert(
            USERS_BY_NAME,
            (realm, user.username.as_str()),
            user.id.as_str(),
        )?;
        let new_email = user.email.as_deref().map(str::to_lowercase);
        if let Some(email) = &new_email {
            if !allow_duplicate_emails
                && self
                    .multi_get(USERS_BY_EMAIL, (realm, email.as_str()))?
                    .iter()
                    .any(|owner| owner != &user.id)
            {
                return Err(StoreError::Conflict(Conflict::Email));
            }
        }
        if let Some(old) = previous.as_ref().and_then(|p| p.email.as_deref()) {
            self.multi_remove(
                USERS_BY_EMAIL,
                (realm, old.to_lowercase().as_str()),
                user.id.as_str(),
            )?;
        }
        if let Some(email) = &new_email {
            self.multi_insert(USERS_BY_EMAIL, (realm, email.as_str()), user.id.as_str())?;
        }
        for (def, old, new) in [
            (
                USERS_BY_FIRST_NAME,
                previous.as_ref().and_then(|p| p.first_name.clone()),
                user.first_name.clone(),
            ),
            (
                USERS_BY_LAST_NAME,
                previous.as_ref().and_then(|p| p.last_name.clone()),
                user.last_name.clone(),
            ),
        ] {
            if let Some(old) = old {
                self.multi_remove(def, (realm, old.to_lowercase().as_str()), user.id.as_str())?;
            }
            if let Some(new) = new {
                self.multi_insert(def, (realm, new.to_lowercase().as_str()), user.id.as_str())?;
            }
        }
        if previous.is_none() {
            self.add_to_user_count(realm, 1)?;
        }
        self.insert_record(USERS, (realm, user.id.as_str()), &user)?;
        Ok(())
    }

    pub(super) fn add_to_user_count(&mut self, realm: &str, delta: i64) -> Result<()> {
        let current = self.get(USER_COUNTS, realm)?.unwrap_or(0);
        self.insert(USER_COUNTS, realm, (current as i64 + delta).max(0) as u64)
    }

    /// Delete a user with its credentials, role mappings, memberships and sessions.
    pub fn delete_user(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(user) = self.user(realm, id)? else {
            return Ok(false);
        };
        self.remove(USERS, (realm, id))?;
        self.remove(USERS_BY_NAME, (realm, user.username.as_str()))?;
        if let Some(email) = &user.email {
            self.multi_remove(USERS_BY_EMAIL, (realm, email.to_lowercase().as_str()), id)?;
        }
        for (def, name) in [
            (USERS_BY_FIRST_NAME, &user.first_name),
            (USERS_BY_LAST_NAME, &user.last_name),
        ] {
            if let Some(name) = name {
                self.multi_remove(def, (realm, name.to_lowercase().as_str()), id)?;
            }
        }
        self.add_to_user_count(realm, -1)?;
        self.remove(LOGIN_FAILURES, (realm, id))?;
        self.remove_range(CREDENTIALS, between((realm, id, ""), (realm, id, MAX)))?;
        for role in self.user_role_ids(realm, id)? {
            self.multi_remove(ROLE_USERS, (realm, role.as_str()), id)?;
        }
        self.multi_remove_all(USER_ROLES, (realm, id))?;
        for group in self.user_group_ids(realm, id)? {
            self.multi_remove(GROUP_MEMBERS, (realm, group.as_str()), id)?;
        }
        self.multi_remove_all(USER_GROUPS, (realm, id))?;
        for session in self.multi_values(USER_SESSIONS, realm, id)? {
            self.remove(SESSIONS, (realm, session.as_str()))?;
        }
        self.multi_remove_all(USER_SESSIONS, (realm, id))?;
        self.unlink_all_federated_identities(realm, id)?;
        Ok(true)
    }

    pub fn put_credential(
        &mut self,
        realm: &str,
        user: &str,
        credential: &CredentialRecord,
    ) -> Result<()> {
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.insert_record(
            CREDENTIALS,
            (realm, user, credential.id.as_str()),
            credential,
        )?;
        Ok(())
    }

    pub fn delete_credential(&mut self, realm: &str, user: &str, id: &str) -> Result<bool> {
        self.remove(CREDENTIALS, (realm, user, id))
    }
}
