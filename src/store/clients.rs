//! Clients and their unique `clientId`.

use super::records::{ClientRecord, UserRecord};
use super::tables::{CLIENTS, CLIENTS_BY_CLIENT_ID, USERS};
use super::view::{between, existing, Txn, View, Write, MAX};
use super::{Conflict, Result, StoreError};

impl<T: Txn> View<T> {
    pub fn client(&self, realm: &str, id: &str) -> Result<Option<ClientRecord>> {
        self.record(CLIENTS, (realm, id))
    }

    pub fn client_by_client_id(
        &self,
        realm: &str,
        client_id: &str,
    ) -> Result<Option<ClientRecord>> {
        match self.get(CLIENTS_BY_CLIENT_ID, (realm, client_id))? {
            Some(id) => self.client(realm, &id),
            None => Ok(None),
        }
    }

    /// Every client of a realm, ordered by clientId.
    pub fn clients(&self, realm: &str) -> Result<Vec<ClientRecord>> {
        let ids = self.values_in(CLIENTS_BY_CLIENT_ID, between((realm, ""), (realm, MAX)))?;
        existing(ids, |id| self.client(realm, id))
    }
}

impl Write {
    /// Insert or update a client; `clientId` is unique in the realm.
    pub fn put_client(&mut self, realm: &str, client: &ClientRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        let previous = self.client(realm, &client.id)?;
        if let Some(owner) = self.get(CLIENTS_BY_CLIENT_ID, (realm, client.client_id.as_str()))? {
            if owner != client.id {
                return Err(StoreError::Conflict(Conflict::ClientId));
            }
        }
        if let Some(prev) = previous {
            if prev.client_id != client.client_id {
                self.remove(CLIENTS_BY_CLIENT_ID, (realm, prev.client_id.as_str()))?;
            }
        }
        self.insert(
            CLIENTS_BY_CLIENT_ID,
            (realm, client.client_id.as_str()),
            client.id.as_str(),
        )?;
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
        let users: Vec<UserRecord> = self.records_in(USERS, between((realm, ""), (realm, MAX)))?;
        for user in users
            .iter()
            .filter(|u| u.service_account_client_id.as_deref() == Some(id))
        {
            self.delete_user(realm, &user.id)?;
        }
        self.remove(CLIENTS_BY_CLIENT_ID, (realm, client.client_id.as_str()))?;
        self.remove(CLIENTS, (realm, id))?;
        Ok(true)
    }
}
