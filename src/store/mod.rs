//! The embedded store (redb). This module is the only code that touches tables; the rest of
//! the program calls typed functions on [`Read`] and [`Write`]. A logical operation is one
//! write transaction ([`Store::write`]): if the closure fails, nothing it wrote is kept.
//! It knows nothing of HTTP, Keycloak's JSON or policy: uniqueness and referential
//! cleanup are enforced here because they must hold whatever calls it.

mod error;
pub mod records;
mod tables;
mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
};

pub use error::{Conflict, Result, StoreError};
pub use records::*;
use tables::*;
use view::{decode, existing, MAX};
pub use view::{Read, Txn, View, Write};

/// The schema this binary writes. Bump it with a migration in [`Store::open`].
pub const SCHEMA_VERSION: u32 = 1;

/// The store file inside the data directory.
pub const STORE_FILE: &str = "portcullis.redb";

/// A handle on the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
    /// Set by a volatile commit, cleared by [`Store::flush`].
    unflushed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The store's own page cache.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Store {
    /// Open (or create) the store in `data_dir`. Fails with [`StoreError::InUse`] when
    /// another process holds it: redb takes an exclusive file lock.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = data_dir.join(STORE_FILE);
        // redb's page cache defaults to 1 GiB; the file is in the OS page cache anyway, so a
        // small cache of our own keeps resident memory low without costing much speed.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::InUse(data_dir.to_path_buf())
                }
                other => StoreError::Open {
                    path: path.clone(),
                    reason: other.to_string(),
                },
            })?;
        let store = Store {
            db: Arc::new(db),
            path,
            unflushed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        store.init_schema()?;
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create every table and stamp the schema version; refuse a newer schema.
    fn init_schema(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta
                .get("schema_version")?
                .map(|v| v.value().parse::<u32>().unwrap_or(u32::MAX));
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        path: self.path.clone(),
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())?;
                }
            }
        }
        txn.open_table(REALMS)?;
        txn.open_table(REALM_NAMES)?;
        txn.open_table(USERS)?;
        txn.open_table(USERS_BY_NAME)?;
        txn.open_multimap_table(USERS_BY_EMAIL)?;
        txn.open_multimap_table(USERS_BY_FIRST_NAME)?;
        txn.open_multimap_table(USERS_BY_LAST_NAME)?;
        txn.open_table(USER_COUNTS)?;
        txn.open_table(CREDENTIALS)?;
        txn.open_table(CLIENTS)?;
        txn.open_table(CLIENTS_BY_CLIENT_ID)?;
        txn.open_table(ROLES)?;
        txn.open_table(ROLES_BY_NAME)?;
        txn.open_table(GROUPS)?;
        txn.open_multimap_table(GROUP_CHILDREN)?;
        txn.open_multimap_table(USER_ROLES)?;
        txn.open_multimap_table(ROLE_USERS)?;
        txn.open_multimap_table(GROUP_ROLES)?;
        txn.open_multimap_table(ROLE_GROUPS)?;
        txn.open_multimap_table(USER_GROUPS)?;
        txn.open_multimap_table(GROUP_MEMBERS)?;
        txn.open_table(SIGNING_KEYS)?;
        txn.open_table(SESSIONS)?;
        txn.open_multimap_table(USER_SESSIONS)?;
        txn.open_table(EVENTS)?;
        txn.open_table(AUTH_CODES)?;
        txn.open_table(LOGIN_FLOWS)?;
        txn.open_table(REVOKED_TOKENS)?;
        txn.open_table(DEVICE_CODES)?;
        txn.open_table(USER_CODES)?;
        txn.open_table(REALM_OBJECTS)?;
        txn.open_table(LOGIN_FAILURES)?;
        txn.commit()?;
        Ok(())
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Read> {
        Ok(View {
            txn: self.db.begin_read()?,
        })
    }

    /// Run `f` in one write transaction: committed if it returns `Ok`, rolled back (nothing
    /// kept) if it returns `Err`.
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.write_with(redb::Durability::Immediate, f)
    }

    /// Like [`Store::write`], just as atomic, but the commit reaches the disk at the next
    /// [`Store::flush`] (at most a second later: the server flushes in the background, and
    /// the last handle flushes when dropped). For hot, replaceable state such as
    /// refresh-token rotation, where a crash costs at most a new login.
    pub fn write_volatile<T, E>(
        &self,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let result = self.write_with(redb::Durability::None, f);
        if result.is_ok() {
            self.unflushed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        result
    }

    /// Make every volatile commit durable.
    pub fn flush(&self) -> Result<()> {
        if self
            .unflushed
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            let txn = self.db.begin_write()?;
            txn.commit()?;
        }
        Ok(())
    }

    fn write_with<T, E>(
        &self,
        durability: redb::Durability,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut txn = self.db.begin_write().map_err(StoreError::from)?;
        txn.set_durability(durability)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut write = Write { view: View { txn } };
        match f(&mut write) {
            Ok(value) => {
                write.view.txn.commit().map_err(StoreError::from)?;
                Ok(value)
            }
            Err(e) => {
                write.view.txn.abort().map_err(StoreError::from)?;
                Err(e)
            }
        }
    }
}

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

    pub fn user(&self, realm: &str, id: &str) -> Result<Option<UserRecord>> {
        self.record(USERS, (realm, id))
    }

    /// Look a user up by username (case-insensitive).
    pub fn user_by_username(&self, realm: &str, username: &str) -> Result<Option<UserRecord>> {
        let key = username.to_lowercase();
        match self.id_for(USERS_BY_NAME, (realm, key.as_str()))? {
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
        let ids: Vec<String> = {
            let t = self.txn.open_table(USERS_BY_NAME)?;
            let mut ids = Vec::new();
            for entry in t.range((realm, "")..=(realm, MAX))?.skip(first).take(max) {
                ids.push(entry?.1.value().to_string());
            }
            ids
        };
        existing(ids, |id| self.user(realm, id))
    }

    pub fn user_count(&self, realm: &str) -> Result<u64> {
        let t = self.txn.open_table(USER_COUNTS)?;
        let v = t.get(realm)?;
        Ok(v.map(|v| v.value()).unwrap_or(0))
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
        let mut ids = std::collections::BTreeSet::new();
        {
            let t = self.txn.open_table(USERS_BY_NAME)?;
            for entry in t
                .range((realm, prefix.as_str())..=(realm, upper.as_str()))?
                .take(limit)
            {
                ids.insert(entry?.1.value().to_string());
            }
        }
        for def in [USERS_BY_EMAIL, USERS_BY_FIRST_NAME, USERS_BY_LAST_NAME] {
            let t = self.txn.open_multimap_table(def)?;
            let mut n = 0;
            'outer: for entry in t.range((realm, prefix.as_str())..=(realm, upper.as_str()))? {
                for v in entry?.1 {
                    ids.insert(v?.value().to_string());
                    n += 1;
                    if n >= limit {
                        break 'outer;
                    }
                }
            }
        }
        let mut users = existing(ids, |id| self.user(realm, id))?;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    pub fn credentials(&self, realm: &str, user: &str) -> Result<Vec<CredentialRecord>> {
        self.records_in(CREDENTIALS, (realm, user, "")..=(realm, user, MAX))
    }

    pub fn client(&self, realm: &str, id: &str) -> Result<Option<ClientRecord>> {
        self.record(CLIENTS, (realm, id))
    }

    pub fn client_by_client_id(
        &self,
        realm: &str,
        client_id: &str,
    ) -> Result<Option<ClientRecord>> {
        match self.id_for(CLIENTS_BY_CLIENT_ID, (realm, client_id))? {
            Some(id) => self.client(realm, &id),
            None => Ok(None),
        }
    }

    /// Every client of a realm, ordered by clientId.
    pub fn clients(&self, realm: &str) -> Result<Vec<ClientRecord>> {
        let ids = self.ids_in(CLIENTS_BY_CLIENT_ID, (realm, "")..=(realm, MAX))?;
        existing(ids, |id| self.client(realm, id))
    }

    pub fn role(&self, realm: &str, id: &str) -> Result<Option<RoleRecord>> {
        self.record(ROLES, (realm, id))
    }

    /// A role by name within its container (the realm id, or a client uuid).
    pub fn role_by_name(
        &self,
        realm: &str,
        container: &str,
        name: &str,
    ) -> Result<Option<RoleRecord>> {
        match self.id_for(ROLES_BY_NAME, (realm, container, name))? {
            Some(id) => self.role(realm, &id),
            None => Ok(None),
        }
    }

    /// The roles of one container, ordered by name.
    pub fn roles(&self, realm: &str, container: &str) -> Result<Vec<RoleRecord>> {
        let ids = self.ids_in(
            ROLES_BY_NAME,
            (realm, container, "")..=(realm, container, MAX),
        )?;
        existing(ids, |id| self.role(realm, id))
    }

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

    /// Role ids granted directly to a user.
    pub fn user_role_ids(&self, realm: &str, user: &str) -> Result<Vec<String>> {
        self.multi_values(USER_ROLES, realm, user)
    }

    /// User ids holding a role directly.
    pub fn role_user_ids(&self, realm: &str, role: &str) -> Result<Vec<String>> {
        self.multi_values(ROLE_USERS, realm, role)
    }

    /// Role ids granted to a group.
    pub fn group_role_ids(&self, realm: &str, group: &str) -> Result<Vec<String>> {
        self.multi_values(GROUP_ROLES, realm, group)
    }

    /// Group ids a user is a direct member of.
    pub fn user_group_ids(&self, realm: &str, user: &str) -> Result<Vec<String>> {
        self.multi_values(USER_GROUPS, realm, user)
    }

    /// Direct members of a group.
    pub fn group_member_ids(&self, realm: &str, group: &str) -> Result<Vec<String>> {
        self.multi_values(GROUP_MEMBERS, realm, group)
    }

    pub fn signing_keys(&self, realm: &str) -> Result<Vec<SigningKeyRecord>> {
        self.records_in(SIGNING_KEYS, (realm, "")..=(realm, MAX))
    }

    pub fn session(&self, realm: &str, id: &str) -> Result<Option<SessionRecord>> {
        self.record(SESSIONS, (realm, id))
    }

    pub fn user_sessions(&self, realm: &str, user: &str) -> Result<Vec<SessionRecord>> {
        let ids = self.multi_values(USER_SESSIONS, realm, user)?;
        existing(ids, |id| self.session(realm, id))
    }

    /// Sessions in every realm (the `active sessions` gauge).
    pub fn session_count(&self) -> Result<u64> {
        Ok(self.txn.open_table(SESSIONS)?.len()?)
    }

    /// Events of a realm from `since` (ms, inclusive), newest first, at most `max`.
    pub fn events(&self, realm: &str, since: i64, max: usize) -> Result<Vec<EventRecord>> {
        let t = self.txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in t
            .range((realm, since, "")..=(realm, i64::MAX, MAX))?
            .rev()
            .take(max)
        {
            out.push(decode(entry?.1.value())?);
        }
        Ok(out)
    }

    pub fn auth_code(&self, realm: &str, code_hash: &str) -> Result<Option<AuthCodeRecord>> {
        self.record(AUTH_CODES, (realm, code_hash))
    }

    pub fn login_flow(&self, realm: &str, id: &str) -> Result<Option<LoginFlowRecord>> {
        self.record(LOGIN_FLOWS, (realm, id))
    }

    pub fn device_code(&self, realm: &str, code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        self.record(DEVICE_CODES, (realm, code_hash))
    }

    /// The device code hash a user code belongs to.
    pub fn device_code_for_user_code(
        &self,
        realm: &str,
        user_code: &str,
    ) -> Result<Option<String>> {
        self.id_for(USER_CODES, (realm, user_code))
    }

    /// A realm configuration object (identity provider, mapper, component) by kind and id.
    pub fn object(&self, realm: &str, kind: &str, id: &str) -> Result<Option<serde_json::Value>> {
        self.record(REALM_OBJECTS, (realm, kind, id))
    }

    /// Every object of a kind with its id, ordered by id.
    pub fn object_ids(&self, realm: &str, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let t = self.txn.open_table(REALM_OBJECTS)?;
        let mut out = Vec::new();
        for entry in t.range((realm, kind, "")..=(realm, kind, MAX))? {
            let (k, v) = entry?;
            out.push((k.value().2.to_string(), decode(v.value())?));
        }
        Ok(out)
    }

    /// Every object of a kind, ordered by id.
    pub fn objects(&self, realm: &str, kind: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .object_ids(realm, kind)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn login_failure(&self, realm: &str, user: &str) -> Result<Option<LoginFailureRecord>> {
        self.record(LOGIN_FAILURES, (realm, user))
    }

    /// Whether an access token (by `jti`) was revoked.
    pub fn is_revoked(&self, realm: &str, jti: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(REVOKED_TOKENS)?
            .get((realm, jti))?
            .is_some())
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
            ROLES,
            GROUPS,
            SIGNING_KEYS,
            SESSIONS
        );
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
        {
            let mut names = self.txn.open_table(USERS_BY_NAME)?;
            if let Some(owner) = names.get((realm, user.username.as_str()))? {
                if owner.value() != user.id {
                    return Err(StoreError::Conflict(Conflict::Username));
                }
            }
            if let Some(prev) = &previous {
                if prev.username != user.username {
                    names.remove((realm, prev.username.as_str()))?;
                }
            }
            names.insert((realm, user.username.as_str()), user.id.as_str())?;
        }
        {
            let mut emails = self.txn.open_multimap_table(USERS_BY_EMAIL)?;
            let new_email = user.email.as_deref().map(str::to_lowercase);
            if let Some(email) = &new_email {
                if !allow_duplicate_emails {
                    for owner in emails.get((realm, email.as_str()))? {
                        if owner?.value() != user.id {
                            return Err(StoreError::Conflict(Conflict::Email));
                        }
                    }
                }
            }
            if let Some(old) = previous.as_ref().and_then(|p| p.email.as_deref()) {
                emails.remove((realm, old.to_lowercase().as_str()), user.id.as_str())?;
            }
            if let Some(email) = &new_email {
                emails.insert((realm, email.as_str()), user.id.as_str())?;
            }
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
            let mut t = self.txn.open_multimap_table(def)?;
            if let Some(old) = old {
                t.remove((realm, old.to_lowercase().as_str()), user.id.as_str())?;
            }
            if let Some(new) = new {
                t.insert((realm, new.to_lowercase().as_str()), user.id.as_str())?;
            }
        }
        if previous.is_none() {
            self.add_to_user_count(realm, 1)?;
        }
        self.insert_record(USERS, (realm, user.id.as_str()), &user)?;
        Ok(())
    }

    fn add_to_user_count(&mut self, realm: &str, delta: i64) -> Result<()> {
        let mut t = self.txn.open_table(USER_COUNTS)?;
        let current = t.get(realm)?.map(|v| v.value()).unwrap_or(0);
        t.insert(realm, (current as i64 + delta).max(0) as u64)?;
        Ok(())
    }

    /// Delete a user with its credentials, role mappings, memberships and sessions.
    pub fn delete_user(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(user) = self.user(realm, id)? else {
            return Ok(false);
        };
        self.txn.open_table(USERS)?.remove((realm, id))?;
        self.txn
            .open_table(USERS_BY_NAME)?
            .remove((realm, user.username.as_str()))?;
        if let Some(email) = &user.email {
            self.txn
                .open_multimap_table(USERS_BY_EMAIL)?
                .remove((realm, email.to_lowercase().as_str()), id)?;
        }
        for (def, name) in [
            (USERS_BY_FIRST_NAME, &user.first_name),
            (USERS_BY_LAST_NAME, &user.last_name),
        ] {
            if let Some(name) = name {
                self.txn
                    .open_multimap_table(def)?
                    .remove((realm, name.to_lowercase().as_str()), id)?;
            }
        }
        self.add_to_user_count(realm, -1)?;
        self.txn.open_table(LOGIN_FAILURES)?.remove((realm, id))?;
        self.txn
            .open_table(CREDENTIALS)?
            .retain_in((realm, id, "")..=(realm, id, MAX), |_, _| false)?;
        for role in self.user_role_ids(realm, id)? {
            self.txn
                .open_multimap_table(ROLE_USERS)?
                .remove((realm, role.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(USER_ROLES)?
            .remove_all((realm, id))?;
        for group in self.user_group_ids(realm, id)? {
            self.txn
                .open_multimap_table(GROUP_MEMBERS)?
                .remove((realm, group.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(USER_GROUPS)?
            .remove_all((realm, id))?;
        for session in self.multi_values(USER_SESSIONS, realm, id)? {
            self.txn
                .open_table(SESSIONS)?
                .remove((realm, session.as_str()))?;
        }
        self.txn
            .open_multimap_table(USER_SESSIONS)?
            .remove_all((realm, id))?;
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
        Ok(self
            .txn
            .open_table(CREDENTIALS)?
            .remove((realm, user, id))?
            .is_some())
    }

    /// Insert or update a client; `clientId` is unique in the realm.
    pub fn put_client(&mut self, realm: &str, client: &ClientRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        let previous = self.client(realm, &client.id)?;
        let mut index = self.txn.open_table(CLIENTS_BY_CLIENT_ID)?;
        if let Some(owner) = index.get((realm, client.client_id.as_str()))? {
            if owner.value() != client.id {
                return Err(StoreError::Conflict(Conflict::ClientId));
            }
        }
        if let Some(prev) = previous {
            if prev.client_id != client.client_id {
                index.remove((realm, prev.client_id.as_str()))?;
            }
        }
        index.insert((realm, client.client_id.as_str()), client.id.as_str())?;
        self.insert_record(CLIENTS, (realm, client.id.as_str()), client)?;
        Ok(())
    }

    /// Delete a client, its roles (and every mapping of them) and its service-account user.
    pub fn delete_client(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(client) = self.client(realm, id)? else {
            return Ok(false);
        };
        for role in self.roles(realm, id)? {
            self.delete_role(realm, &role.id)?;
        }
        let service_accounts: Vec<String> = {
            let t = self.txn.open_table(USERS)?;
            let mut ids = Vec::new();
            for entry in t.range((realm, "")..=(realm, MAX))? {
                let (k, v) = entry?;
                let user: UserRecord = decode(v.value())?;
                if user.service_account_client_id.as_deref() == Some(id) {
                    ids.push(k.value().1.to_string());
                }
            }
            ids
        };
        for user in service_accounts {
            self.delete_user(realm, &user)?;
        }
        self.txn
            .open_table(CLIENTS_BY_CLIENT_ID)?
            .remove((realm, client.client_id.as_str()))?;
        self.txn.open_table(CLIENTS)?.remove((realm, id))?;
        Ok(true)
    }

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
        let mut index = self.txn.open_table(ROLES_BY_NAME)?;
        let container = role.container_id.as_str();
        if let Some(owner) = index.get((realm, container, role.name.as_str()))? {
            if owner.value() != role.id {
                return Err(StoreError::Conflict(Conflict::RoleName));
            }
        }
        if let Some(prev) = previous {
            if prev.name != role.name || prev.container_id != role.container_id {
                index.remove((realm, prev.container_id.as_str(), prev.name.as_str()))?;
            }
        }
        index.insert((realm, container, role.name.as_str()), role.id.as_str())?;
        self.insert_record(ROLES, (realm, role.id.as_str()), role)?;
        Ok(())
    }

    /// Delete a role, its mappings to users and groups, and its place in other composites.
    pub fn delete_role(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(role) = self.role(realm, id)? else {
            return Ok(false);
        };
        for user in self.role_user_ids(realm, id)? {
            self.txn
                .open_multimap_table(USER_ROLES)?
                .remove((realm, user.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(ROLE_USERS)?
            .remove_all((realm, id))?;
        for group in self.multi_values(ROLE_GROUPS, realm, id)? {
            self.txn
                .open_multimap_table(GROUP_ROLES)?
                .remove((realm, group.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(ROLE_GROUPS)?
            .remove_all((realm, id))?;
        // Remove it from composites that include it.
        let including: Vec<RoleRecord> = {
            let t = self.txn.open_table(ROLES)?;
            let mut out = Vec::new();
            for entry in t.range((realm, "")..=(realm, MAX))? {
                let r: RoleRecord = decode(entry?.1.value())?;
                if r.composites.iter().any(|c| c == id) {
                    out.push(r);
                }
            }
            out
        };
        for mut r in including {
            r.composites.retain(|c| c != id);
            self.insert_record(ROLES, (realm, r.id.as_str()), &r)?;
        }
        self.txn.open_table(ROLES_BY_NAME)?.remove((
            realm,
            role.container_id.as_str(),
            role.name.as_str(),
        ))?;
        self.txn.open_table(ROLES)?.remove((realm, id))?;
        Ok(true)
    }

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
        let mut children = self.txn.open_multimap_table(GROUP_CHILDREN)?;
        if let Some(prev) = previous {
            children.remove(
                (realm, prev.parent_id.as_deref().unwrap_or("")),
                group.id.as_str(),
            )?;
        }
        children.insert(
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
            self.txn
                .open_multimap_table(USER_GROUPS)?
                .remove((realm, user.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(GROUP_MEMBERS)?
            .remove_all((realm, id))?;
        for role in self.group_role_ids(realm, id)? {
            self.txn
                .open_multimap_table(ROLE_GROUPS)?
                .remove((realm, role.as_str()), id)?;
        }
        self.txn
            .open_multimap_table(GROUP_ROLES)?
            .remove_all((realm, id))?;
        self.txn
            .open_multimap_table(GROUP_CHILDREN)?
            .remove((realm, group.parent_id.as_deref().unwrap_or("")), id)?;
        self.txn.open_table(GROUPS)?.remove((realm, id))?;
        Ok(true)
    }

    /// Grant a role to a user directly (idempotent).
    pub fn grant_user_role(&mut self, realm: &str, user: &str, role: &str) -> Result<()> {
        self.require_user_and_role(realm, user, role)?;
        self.txn
            .open_multimap_table(USER_ROLES)?
            .insert((realm, user), role)?;
        self.txn
            .open_multimap_table(ROLE_USERS)?
            .insert((realm, role), user)?;
        Ok(())
    }

    pub fn revoke_user_role(&mut self, realm: &str, user: &str, role: &str) -> Result<bool> {
        let removed = self
            .txn
            .open_multimap_table(USER_ROLES)?
            .remove((realm, user), role)?;
        self.txn
            .open_multimap_table(ROLE_USERS)?
            .remove((realm, role), user)?;
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
        self.txn
            .open_multimap_table(GROUP_ROLES)?
            .insert((realm, group), role)?;
        self.txn
            .open_multimap_table(ROLE_GROUPS)?
            .insert((realm, role), group)?;
        Ok(())
    }

    pub fn revoke_group_role(&mut self, realm: &str, group: &str, role: &str) -> Result<bool> {
        let removed = self
            .txn
            .open_multimap_table(GROUP_ROLES)?
            .remove((realm, group), role)?;
        self.txn
            .open_multimap_table(ROLE_GROUPS)?
            .remove((realm, role), group)?;
        Ok(removed)
    }

    /// Make a user a member of a group (idempotent).
    pub fn add_member(&mut self, realm: &str, group: &str, user: &str) -> Result<()> {
        if self.group(realm, group)?.is_none() {
            return Err(StoreError::Missing("group"));
        }
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.txn
            .open_multimap_table(USER_GROUPS)?
            .insert((realm, user), group)?;
        self.txn
            .open_multimap_table(GROUP_MEMBERS)?
            .insert((realm, group), user)?;
        Ok(())
    }

    pub fn remove_member(&mut self, realm: &str, group: &str, user: &str) -> Result<bool> {
        let removed = self
            .txn
            .open_multimap_table(USER_GROUPS)?
            .remove((realm, user), group)?;
        self.txn
            .open_multimap_table(GROUP_MEMBERS)?
            .remove((realm, group), user)?;
        Ok(removed)
    }

    pub fn put_signing_key(&mut self, realm: &str, key: &SigningKeyRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        self.insert_record(SIGNING_KEYS, (realm, key.kid.as_str()), key)?;
        Ok(())
    }

    pub fn delete_signing_key(&mut self, realm: &str, kid: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(SIGNING_KEYS)?
            .remove((realm, kid))?
            .is_some())
    }

    /// Insert or update a session of an existing user.
    pub fn put_session(&mut self, realm: &str, session: &SessionRecord) -> Result<()> {
        if self.user(realm, &session.user_id)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        self.insert_record(SESSIONS, (realm, session.id.as_str()), session)?;
        self.txn
            .open_multimap_table(USER_SESSIONS)?
            .insert((realm, session.user_id.as_str()), session.id.as_str())?;
        Ok(())
    }

    pub fn delete_session(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(session) = self.session(realm, id)? else {
            return Ok(false);
        };
        self.txn.open_table(SESSIONS)?.remove((realm, id))?;
        self.txn
            .open_multimap_table(USER_SESSIONS)?
            .remove((realm, session.user_id.as_str()), id)?;
        Ok(true)
    }

    /// Delete the sessions of a realm for which `expired` says so; returns how many.
    pub fn purge_sessions(
        &mut self,
        realm: &str,
        expired: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize> {
        let mut gone = Vec::new();
        for entry in self
            .txn
            .open_table(SESSIONS)?
            .range((realm, "")..=(realm, MAX))?
        {
            let (k, v) = entry?;
            let session: SessionRecord = decode(v.value())?;
            if expired(&session) {
                gone.push(k.value().1.to_string());
            }
        }
        for id in &gone {
            self.delete_session(realm, id)?;
        }
        Ok(gone.len())
    }

    /// End every online (not offline) session of a realm; returns how many.
    pub fn delete_realm_sessions(&mut self, realm: &str) -> Result<usize> {
        self.purge_sessions(realm, |s| !s.offline)
    }

    pub fn append_event(&mut self, realm: &str, event: &EventRecord) -> Result<()> {
        self.insert_record(EVENTS, (realm, event.time, event.id.as_str()), event)?;
        Ok(())
    }

    /// Drop all login events (or, with `admin`, all admin events) of a realm.
    pub fn clear_events(&mut self, realm: &str, admin: bool) -> Result<usize> {
        let mut n = 0;
        self.txn.open_table(EVENTS)?.retain_in(
            (realm, i64::MIN, "")..=(realm, i64::MAX, MAX),
            |_, v| {
                let is_admin = serde_json::from_slice::<EventRecord>(v)
                    .map(|e| e.kind == "ADMIN")
                    .unwrap_or(false);
                let drop = is_admin == admin;
                n += usize::from(drop);
                !drop
            },
        )?;
        Ok(n)
    }

    /// Drop a realm's events older than `before` (ms); returns how many went.
    pub fn expire_events(&mut self, realm: &str, before: i64) -> Result<usize> {
        let mut n = 0;
        self.txn.open_table(EVENTS)?.retain_in(
            (realm, i64::MIN, "")..(realm, before, ""),
            |_, _| {
                n += 1;
                false
            },
        )?;
        Ok(n)
    }

    pub fn put_auth_code(
        &mut self,
        realm: &str,
        code_hash: &str,
        code: &AuthCodeRecord,
    ) -> Result<()> {
        self.insert_record(AUTH_CODES, (realm, code_hash), code)?;
        Ok(())
    }

    pub fn put_login_flow(&mut self, realm: &str, flow: &LoginFlowRecord) -> Result<()> {
        self.insert_record(LOGIN_FLOWS, (realm, flow.id.as_str()), flow)?;
        Ok(())
    }

    pub fn delete_login_flow(&mut self, realm: &str, id: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(LOGIN_FLOWS)?
            .remove((realm, id))?
            .is_some())
    }

    /// Store a device authorization (and its user code index).
    pub fn put_device_code(
        &mut self,
        realm: &str,
        code_hash: &str,
        record: &DeviceCodeRecord,
    ) -> Result<()> {
        self.insert_record(DEVICE_CODES, (realm, code_hash), record)?;
        self.txn
            .open_table(USER_CODES)?
            .insert((realm, record.user_code.as_str()), code_hash)?;
        Ok(())
    }

    /// Forget a device authorization.
    pub fn delete_device_code(&mut self, realm: &str, code_hash: &str) -> Result<()> {
        if let Some(record) = self.device_code(realm, code_hash)? {
            self.txn
                .open_table(USER_CODES)?
                .remove((realm, record.user_code.as_str()))?;
        }
        self.txn
            .open_table(DEVICE_CODES)?
            .remove((realm, code_hash))?;
        Ok(())
    }

    pub fn put_object(
        &mut self,
        realm: &str,
        kind: &str,
        id: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        self.insert_record(REALM_OBJECTS, (realm, kind, id), value)?;
        Ok(())
    }

    pub fn delete_object(&mut self, realm: &str, kind: &str, id: &str) -> Result<bool> {
        Ok(self
            .txn
            .open_table(REALM_OBJECTS)?
            .remove((realm, kind, id))?
            .is_some())
    }

    pub fn put_login_failure(
        &mut self,
        realm: &str,
        user: &str,
        record: &LoginFailureRecord,
    ) -> Result<()> {
        self.insert_record(LOGIN_FAILURES, (realm, user), record)?;
        Ok(())
    }

    /// Forget one user's failures (`Some`) or every user's of the realm (`None`).
    pub fn clear_login_failures(&mut self, realm: &str, user: Option<&str>) -> Result<()> {
        let mut t = self.txn.open_table(LOGIN_FAILURES)?;
        match user {
            Some(u) => {
                t.remove((realm, u))?;
            }
            None => t.retain_in((realm, "")..=(realm, MAX), |_, _| false)?,
        }
        Ok(())
    }

    /// Remember a revoked access token until `expires_at` (s).
    pub fn revoke_token(&mut self, realm: &str, jti: &str, expires_at: i64) -> Result<()> {
        self.txn
            .open_table(REVOKED_TOKENS)?
            .insert((realm, jti), expires_at)?;
        Ok(())
    }

    /// Drop expired codes, login flows and revocations (all realms). Returns how many went.
    pub fn purge_expired(&mut self, now_ms: i64) -> Result<usize> {
        let mut n = 0;
        self.txn.open_table(AUTH_CODES)?.retain(|_, v| {
            let keep = serde_json::from_slice::<AuthCodeRecord>(v)
                .map(|c| c.expires_at > now_ms)
                .unwrap_or(false);
            n += usize::from(!keep);
            keep
        })?;
        self.txn.open_table(LOGIN_FLOWS)?.retain(|_, v| {
            let keep = serde_json::from_slice::<LoginFlowRecord>(v)
                .map(|f| f.expires_at > now_ms)
                .unwrap_or(false);
            n += usize::from(!keep);
            keep
        })?;
        let mut expired_devices = Vec::new();
        for entry in self.txn.open_table(DEVICE_CODES)?.iter()? {
            let (k, v) = entry?;
            let keep = serde_json::from_slice::<DeviceCodeRecord>(v.value())
                .map(|d| d.expires_at > now_ms)
                .unwrap_or(false);
            if !keep {
                let (realm, hash) = k.value();
                expired_devices.push((realm.to_string(), hash.to_string()));
            }
        }
        for (realm, hash) in expired_devices {
            self.delete_device_code(&realm, &hash)?;
            n += 1;
        }
        let now_s = now_ms / 1000;
        self.txn.open_table(REVOKED_TOKENS)?.retain(|_, exp| {
            let keep = exp > now_s;
            n += usize::from(!keep);
            keep
        })?;
        Ok(n)
    }

    fn require_user_and_role(&self, realm: &str, user: &str, role: &str) -> Result<()> {
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        if self.role(realm, role)?.is_none() {
            return Err(StoreError::Missing("role"));
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The last handle makes volatile commits durable before the database closes.
        if Arc::strong_count(&self.db) == 1 {
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "could not flush the store at shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests;
