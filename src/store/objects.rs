//! Realm objects kept as Keycloak JSON by kind (identity providers, components, client
//! scopes, ...).

use redb::ReadableTable;

use super::tables::REALM_OBJECTS;
use super::view::{decode, Txn, View, Write, MAX};
use super::{Result, StoreError};

/// The kinds of typed records kept here (`flows.rs`).
pub(super) const AUTH_FLOW: &str = "authentication-flow";
pub(super) const AUTHENTICATOR_CONFIG: &str = "authenticator-config";

impl<T: Txn> View<T> {
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
}

impl Write {
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
}
