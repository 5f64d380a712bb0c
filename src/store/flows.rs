//! Authentication flows and authenticator configurations, kept in the realm-objects table
//! under their own kinds.

use super::objects::{AUTHENTICATOR_CONFIG, AUTH_FLOW};
use super::records::{AuthFlowRecord, AuthenticatorConfigRecord};
use super::view::{Txn, View, Write};
use super::{Result, StoreError};

fn typed<R: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<R> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn json<R: serde::Serialize>(r: &R) -> Result<serde_json::Value> {
    serde_json::to_value(r).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl<T: Txn> View<T> {
    /// Every flow of a realm (top-level and sub-flows), ordered by id.
    pub fn auth_flows(&self, realm: &str) -> Result<Vec<AuthFlowRecord>> {
        self.objects(realm, AUTH_FLOW)?
            .into_iter()
            .map(typed)
            .collect()
    }

    pub fn auth_flow(&self, realm: &str, id: &str) -> Result<Option<AuthFlowRecord>> {
        self.object(realm, AUTH_FLOW, id)?.map(typed).transpose()
    }

    pub fn authenticator_configs(&self, realm: &str) -> Result<Vec<AuthenticatorConfigRecord>> {
        self.objects(realm, AUTHENTICATOR_CONFIG)?
            .into_iter()
            .map(typed)
            .collect()
    }

    pub fn authenticator_config(
        &self,
        realm: &str,
        id: &str,
    ) -> Result<Option<AuthenticatorConfigRecord>> {
        self.object(realm, AUTHENTICATOR_CONFIG, id)?
            .map(typed)
            .transpose()
    }
}

impl Write {
    pub fn put_auth_flow(&mut self, realm: &str, flow: &AuthFlowRecord) -> Result<()> {
        let value = json(flow)?;
        self.put_object(realm, AUTH_FLOW, &flow.id, &value)
    }

    pub fn delete_auth_flow(&mut self, realm: &str, id: &str) -> Result<bool> {
        self.delete_object(realm, AUTH_FLOW, id)
    }

    pub fn put_authenticator_config(
        &mut self,
        realm: &str,
        config: &AuthenticatorConfigRecord,
    ) -> Result<()> {
        let value = json(config)?;
        self.put_object(realm, AUTHENTICATOR_CONFIG, &config.id, &value)
    }

    pub fn delete_authenticator_config(&mut self, realm: &str, id: &str) -> Result<bool> {
        self.delete_object(realm, AUTHENTICATOR_CONFIG, id)
    }
}
