//! Client scopes and their unique name. Deleting one takes it off every client and off the
//! realm's default lists, in the same transaction.

use super::records::{ClientRecord, ClientScopeRecord};
use super::tables::{CLIENTS, CLIENT_SCOPES, CLIENT_SCOPES_BY_NAME};
use super::view::{between, Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn client_scope(&self, realm: &str, id: &str) -> Result<Option<ClientScopeRecord>> {
        self.record(CLIENT_SCOPES, (realm, id))
    }

    pub fn client_scope_by_name(
        &self,
        realm: &str,
        name: &str,
    ) -> Result<Option<ClientScopeRecord>> {
        match self.get(CLIENT_SCOPES_BY_NAME, (realm, name))? {
            Some(id) => self.client_scope(realm, &id),
            None => Ok(None),
        }
    }

    /// The stored bytes of client scopes (all in one lookup), for a cache that decodes
    /// each version once.
    pub fn client_scope_bytes(&self, realm: &str, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.get_many(CLIENT_SCOPES, ids.iter().map(|id| (realm, id.as_str())))
    }

    /// Every client scope of a realm, ordered by name.
    pub fn client_scopes(&self, realm: &str) -> Result<Vec<ClientScopeRecord>> {
        let ids: Vec<String> =
            self.values_in(CLIENT_SCOPES_BY_NAME, between((realm, ""), (realm, MAX)))?;
        self.records_many(CLIENT_SCOPES, ids.iter().map(|id| (realm, id.as_str())))
    }
}

impl Write {
    /// Insert or update a client scope; its name is unique in the realm.
    pub fn put_client_scope(&mut self, realm: &str, scope: &ClientScopeRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        let previous = self.client_scope(realm, &scope.id)?;
        if let Some(owner) = self.get(CLIENT_SCOPES_BY_NAME, (realm, scope.name.as_str()))? {
            if owner != scope.id {
                return Err(StoreError::Conflict(Conflict::ClientScopeName));
            }
        }
        if let Some(prev) = previous {
            if prev.name != scope.name {
                self.remove(CLIENT_SCOPES_BY_NAME, (realm, prev.name.as_str()))?;
            }
        }
        self.insert(
            CLIENT_SCOPES_BY_NAME,
            (realm, scope.name.as_str()),
            scope.id.as_str(),
        )?;
        self.insert_record(CLIENT_SCOPES, (realm, scope.id.as_str()), scope)?;
        Ok(())
    }

    /// Delete a client scope and every reference to it (clients, realm defaults).
    pub fn delete_client_scope(&mut self, realm: &str, id: &str) -> Result<bool> {
        let Some(scope) = self.client_scope(realm, id)? else {
            return Ok(false);
        };
        let clients: Vec<ClientRecord> =
            self.records_in(CLIENTS, between((realm, ""), (realm, MAX)))?;
        for mut c in clients.into_iter().filter(|c| {
            c.default_client_scopes.iter().any(|s| s == id)
                || c.optional_client_scopes.iter().any(|s| s == id)
        }) {
            c.default_client_scopes.retain(|s| s != id);
            c.optional_client_scopes.retain(|s| s != id);
            self.insert_record(CLIENTS, (realm, c.id.as_str()), &c)?;
        }
        if let Some(mut r) = self.realm(realm)? {
            let before = (
                r.default_client_scope_ids.clone(),
                r.optional_client_scope_ids.clone(),
            );
            if let Some(list) = r.default_client_scope_ids.as_mut() {
                list.retain(|s| s != id);
            }
            r.optional_client_scope_ids.retain(|s| s != id);
            if before
                != (
                    r.default_client_scope_ids.clone(),
                    r.optional_client_scope_ids.clone(),
                )
            {
                self.put_realm(&r)?;
            }
        }
        self.remove(CLIENT_SCOPES_BY_NAME, (realm, scope.name.as_str()))?;
        self.remove(CLIENT_SCOPES, (realm, id))?;
        Ok(true)
    }
}
