//! The user and credential representations.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{CredentialRecord, UserRecord};

use super::{empty_to_none, AttributeValue};

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "CredentialRepresentation")]
pub struct CredentialInput {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    pub temporary: Option<bool>,
    pub secret_data: Option<String>,
    pub credential_data: Option<String>,
    pub user_label: Option<String>,
    pub created_date: Option<i64>,
    pub priority: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "UserRepresentation")]
pub struct UserInput {
    pub id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: Option<bool>,
    pub email_verified: Option<bool>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    pub required_actions: Option<Vec<String>>,
    pub credentials: Option<Vec<CredentialInput>>,
    pub realm_roles: Option<Vec<String>>,
    pub client_roles: Option<BTreeMap<String, Vec<String>>>,
    pub groups: Option<Vec<String>>,
    pub service_account_client_id: Option<String>,
    pub created_timestamp: Option<i64>,
    /// Links to identity providers (`FederatedIdentityRepresentation`).
    pub federated_identities: Option<Vec<FederatedIdentityInput>>,
    /// The LDAP provider the user comes from: read from realm imports only (with it, the
    /// entry's `LDAP_ID` / `LDAP_ENTRY_DN` attributes).
    pub federation_link: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "FederatedIdentityRepresentation")]
pub struct FederatedIdentityInput {
    pub identity_provider: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
}

/// The required actions Keycloak knows.
pub const REQUIRED_ACTIONS: &[&str] = &[
    "CONFIGURE_TOTP",
    "UPDATE_PASSWORD",
    "UPDATE_PROFILE",
    "VERIFY_EMAIL",
    "TERMS_AND_CONDITIONS",
    "webauthn-register",
    "delete_account",
];

/// The attributes naming a federated user's directory entry.
pub const DIRECTORY_ATTRIBUTES: [&str; 2] =
    [crate::idp::ldap::LDAP_ID, crate::idp::ldap::LDAP_ENTRY_DN];

impl UserInput {
    /// Apply the fields present to `user` (the username only when `allow_username`).
    /// Forget what only the server decides on create (Keycloak ignores these in
    /// `POST /users`): the id, the creation time, a service-account link, a federation link.
    pub fn ignore_server_owned(&mut self) {
        self.id = None;
        self.created_timestamp = None;
        self.service_account_client_id = None;
        self.federation_link = None;
    }

    pub fn apply(&self, user: &mut UserRecord, allow_username: bool) -> Result<(), String> {
        if let Some(u) = &self.username {
            let u = u.trim().to_lowercase();
            if u.is_empty() {
                return Err("User name is missing".into());
            }
            if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err("error-invalid-username".into());
            }
            if allow_username || u == user.username {
                user.username = u;
            } else {
                return Err("error-user-attribute-read-only".into());
            }
        }
        if let Some(email) = empty_to_none(&self.email) {
            if let Some(e) = &email {
                if !e.contains('@') || e.len() > 254 || e.chars().any(char::is_whitespace) {
                    return Err("error-invalid-email".into());
                }
            }
            if email != user.email {
                user.email_verified = false;
            }
            user.email = email;
        }
        if let Some(v) = empty_to_none(&self.first_name) {
            user.first_name = v;
        }
        if let Some(v) = empty_to_none(&self.last_name) {
            user.last_name = v;
        }
        if let Some(v) = self.enabled {
            user.enabled = v;
        }
        if let Some(v) = self.email_verified {
            user.email_verified = v;
        }
        if let Some(attrs) = &self.attributes {
            // The attributes naming a user's directory entry are the server's: a write keeps
            // them as stored (every directory write goes to that entry); a realm import's
            // federated user brings its own (`create_with`).
            let kept: Vec<(String, Vec<String>)> = DIRECTORY_ATTRIBUTES
                .iter()
                .filter_map(|k| user.attributes.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            user.attributes = attrs
                .iter()
                .filter(|(k, _)| !DIRECTORY_ATTRIBUTES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone().into_vec()))
                .collect();
            user.attributes.extend(kept);
        }
        if let Some(actions) = &self.required_actions {
            for a in actions {
                if !REQUIRED_ACTIONS.contains(&a.as_str()) {
                    return Err(format!("Unknown required action: {a}"));
                }
            }
            let mut actions = actions.clone();
            actions.dedup();
            user.required_actions = actions;
        }
        Ok(())
    }
}

pub fn user_repr(user: &UserRecord, brief: bool) -> Value {
    let mut v = json!({
        "id": user.id,
        "username": user.username,
        "enabled": user.enabled,
        "emailVerified": user.email_verified,
        "createdTimestamp": user.created_timestamp,
        "totp": false,
    });
    if let Some(e) = &user.email {
        v["email"] = e.clone().into();
    }
    if let Some(f) = &user.first_name {
        v["firstName"] = f.clone().into();
    }
    if let Some(l) = &user.last_name {
        v["lastName"] = l.clone().into();
    }
    if let Some(f) = &user.federation_link {
        v["federationLink"] = f.clone().into();
    }
    if let Some(c) = &user.service_account_client_id {
        v["serviceAccountClientId"] = c.clone().into();
    }
    if !brief {
        v["attributes"] = json!(user.attributes);
        v["requiredActions"] = json!(user.required_actions);
        v["disableableCredentialTypes"] = json!([]);
        v["notBefore"] = user.not_before.into();
        v["access"] = json!({
            "manageGroupMembership": true, "view": true, "mapRoles": true,
            "impersonate": false, "manage": true
        });
    }
    v
}

pub fn credential_repr(c: &CredentialRecord) -> Value {
    json!({
        "id": c.id,
        "type": c.kind,
        "userLabel": c.user_label,
        "createdDate": c.created_date,
        "credentialData": c.credential_data,
        "priority": c.priority,
    })
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// What the admin API shows of a user, sent back, is that user (serialise∘parse is
        /// identity on the fields a representation carries).
        #[test]
        fn a_user_representation_reads_back_as_the_user(
            username in "[a-z][a-z0-9._-]{0,15}",
            email in proptest::option::of("[a-z]{1,8}@[a-z]{1,8}\\.test"),
            first in proptest::option::of("[A-Za-zé' -]{1,12}"),
            last in proptest::option::of("[A-Za-z-]{1,12}"),
            enabled in any::<bool>(),
            verified in any::<bool>(),
            attrs in proptest::collection::btree_map("[a-z]{1,8}", proptest::collection::vec("[ -~]{0,10}", 1..3), 0..4),
        ) {
            let input = UserInput {
                username: Some(username),
                email,
                first_name: first.filter(|f| !f.trim().is_empty()),
                last_name: last,
                enabled: Some(enabled),
                email_verified: Some(verified),
                attributes: Some(attrs.into_iter().map(|(k, v)| (k, AttributeValue::Many(v))).collect()),
                ..Default::default()
            };
            let mut user = UserRecord::default();
            if input.apply(&mut user, true).is_err() {
                return Ok(());
            }
            let shown = user_repr(&user, false);
            let back: UserInput = serde_json::from_value(shown.clone()).unwrap();
            let mut again = UserRecord { id: user.id.clone(), ..Default::default() };
            back.apply(&mut again, true).unwrap();
            prop_assert_eq!(&again.username, &user.username);
            prop_assert_eq!(&again.email, &user.email);
            prop_assert_eq!(&again.first_name, &user.first_name);
            prop_assert_eq!(&again.last_name, &user.last_name);
            prop_assert_eq!(again.enabled, user.enabled);
            prop_assert_eq!(again.email_verified, user.email_verified);
            prop_assert_eq!(&again.attributes, &user.attributes);
            prop_assert_eq!(user_repr(&again, false), shown);
        }
    }
}
