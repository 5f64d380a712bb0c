//! Realm objects kept as Keycloak JSON by kind (identity providers, components, client
//! scopes, ...).

use super::tables::REALM_OBJECTS;
use super::view::{between, decode, Txn, View, Write, MAX};
use super::{Result, StoreError};

/// The kinds of typed records kept here (`flows.rs`).
pub(super) const AUTH_FLOW: &str = "authentication-flow";
/// A link from an identity at a provider to a local user, by `{alias}/{provider user id}`,
/// and the same link by `{local user id}/{alias}` (a user's links are one range).
const FEDERATED_IDENTITY: &str = "federated-identity";
const USER_FEDERATED_IDENTITY: &str = "user-federated-identity";
/// A provider's token response kept for a user (`storeToken`), by `{user}/{alias}`.
pub const BROKER_TOKEN: &str = "broker-token";
pub(super) const AUTHENTICATOR_CONFIG: &str = "authenticator-config";

impl<T: Txn> View<T> {
    /// A realm configuration object (identity provider, mapper, component) by kind and id.
    pub fn object(&self, realm: &str, kind: &str, id: &str) -> Result<Option<serde_json::Value>> {
        self.record(REALM_OBJECTS, (realm, kind, id))
    }

    /// Every object of a kind with its id, ordered by id.
    pub fn object_ids(&self, realm: &str, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        self.objects_with_prefix(realm, kind, "")
    }

    /// The objects of a kind whose ids start with `prefix`, with their ids.
    pub fn objects_with_prefix(
        &self,
        realm: &str,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let end = format!("{prefix}{MAX}");
        let mut out = Vec::new();
        let range = between((realm, kind, prefix), (realm, kind, end.as_str()));
        self.scan(REALM_OBJECTS, range, false, |(_, _, id), v| {
            out.push((id, decode(&v)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The local user linked to an identity at a provider (`alias`, the provider's user id).
    pub fn federated_user(
        &self,
        realm: &str,
        alias: &str,
        provider_user: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .object(
                realm,
                FEDERATED_IDENTITY,
                &format!("{alias}/{provider_user}"),
            )?
            .and_then(|v| {
                v.get("localUserId")
                    .and_then(|u| u.as_str())
                    .map(str::to_string)
            }))
    }

    /// A user's links to identity providers, in Keycloak's `FederatedIdentityRepresentation`
    /// (`identityProvider`, `userId`, `userName`), ordered by provider.
    pub fn federated_identities(&self, realm: &str, user: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .objects_with_prefix(realm, USER_FEDERATED_IDENTITY, &format!("{user}/"))?
            .into_iter()
            .map(|(_, v)| {
                serde_json::json!({
                    "identityProvider": v["identityProvider"],
                    "userId": v["userId"],
                    "userName": v["userName"],
                })
            })
            .collect())
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

    /// Link `user` to the identity `provider_user` (named `user_name` there) at `alias`.
    /// Fails with a conflict when that identity or this provider is already linked.
    pub fn link_federated_identity(
        &mut self,
        realm: &str,
        user: &str,
        alias: &str,
        provider_user: &str,
        user_name: &str,
    ) -> Result<()> {
        let by_identity = format!("{alias}/{provider_user}");
        let by_user = format!("{user}/{alias}");
        if self
            .object(realm, FEDERATED_IDENTITY, &by_identity)?
            .is_some()
            || self
                .object(realm, USER_FEDERATED_IDENTITY, &by_user)?
                .is_some()
        {
            return Err(StoreError::Conflict(super::Conflict::FederatedIdentity));
        }
        if self.user(realm, user)?.is_none() {
            return Err(StoreError::Missing("user"));
        }
        let value = serde_json::json!({
            "identityProvider": alias, "userId": provider_user, "userName": user_name,
            "localUserId": user,
        });
        self.put_object(realm, FEDERATED_IDENTITY, &by_identity, &value)?;
        self.put_object(realm, USER_FEDERATED_IDENTITY, &by_user, &value)
    }

    /// Remove a user's link to a provider; false when there was none.
    pub fn unlink_federated_identity(
        &mut self,
        realm: &str,
        user: &str,
        alias: &str,
    ) -> Result<bool> {
        let by_user = format!("{user}/{alias}");
        let Some(link) = self.object(realm, USER_FEDERATED_IDENTITY, &by_user)? else {
            return Ok(false);
        };
        let provider_user = link["userId"].as_str().unwrap_or_default();
        self.delete_object(
            realm,
            FEDERATED_IDENTITY,
            &format!("{alias}/{provider_user}"),
        )?;
        self.delete_object(realm, BROKER_TOKEN, &by_user)?;
        self.delete_object(realm, USER_FEDERATED_IDENTITY, &by_user)
    }

    /// Remove every link to a provider (it is being deleted); its users stay.
    pub fn unlink_provider(&mut self, realm: &str, alias: &str) -> Result<()> {
        for (_, link) in
            self.objects_with_prefix(realm, FEDERATED_IDENTITY, &format!("{alias}/"))?
        {
            if let Some(user) = link["localUserId"].as_str() {
                self.unlink_federated_identity(realm, user, alias)?;
            }
        }
        Ok(())
    }

    /// Remove every link of a user (the user is being deleted).
    pub(super) fn unlink_all_federated_identities(
        &mut self,
        realm: &str,
        user: &str,
    ) -> Result<()> {
        for (_, link) in
            self.objects_with_prefix(realm, USER_FEDERATED_IDENTITY, &format!("{user}/"))?
        {
            if let Some(alias) = link["identityProvider"].as_str() {
                self.unlink_federated_identity(realm, user, alias)?;
            }
        }
        Ok(())
    }

    pub fn delete_object(&mut self, realm: &str, kind: &str, id: &str) -> Result<bool> {
        self.remove(REALM_OBJECTS, (realm, kind, id))
    }
}
