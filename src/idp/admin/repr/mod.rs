//! Keycloak's JSON representations: what the admin API reads (`*Input`, every field
//! optional so a PUT changes only what it names) and writes (`*_repr` functions). Unknown
//! fields are accepted and ignored, as Keycloak does. One file per resource: `realm`,
//! `user` (and credentials), `client`, `client_scope`; roles and groups, being small, are here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

mod client;
mod client_scope;
mod realm;
mod user;

pub use client::{client_repr, validate_redirect_pattern, ClientInput};
pub use client_scope::{client_scope_ref, client_scope_repr, ClientScopeInput};
pub use realm::{realm_repr, smtp_map, smtp_repr, RealmInput, RolesInput, ScopeMappingInput};
pub use user::{
    credential_repr, user_repr, CredentialInput, FederatedIdentityInput, UserInput,
    DIRECTORY_ATTRIBUTES, REQUIRED_ACTIONS,
};

use crate::store::{GroupRecord, RoleRecord};

/// A list of JSON objects (protocol mappers): anything else in it is a 400 when the body is
/// read, not a panic later when a field is set on it.
pub(crate) fn objects<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Value>>, D::Error> {
    let list: Option<Vec<serde_json::Map<String, Value>>> = Option::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().map(Value::Object).collect()))
}

/// Attributes arrive as `{"k": ["v"]}` or, from older clients, `{"k": "v"}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "AttributeValue")]
pub enum AttributeValue {
    Many(Vec<String>),
    One(String),
}

impl AttributeValue {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            AttributeValue::Many(v) => v,
            AttributeValue::One(s) => vec![s],
        }
    }
}

pub(super) fn empty_to_none(s: &Option<String>) -> Option<Option<String>> {
    s.as_ref()
        .map(|v| Some(v.trim().to_string()).filter(|v| !v.is_empty()))
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "RoleRepresentation")]
pub struct RoleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub composite: Option<bool>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    /// In realm exports: the roles this composite includes, by name.
    pub composites: Option<CompositesInput>,
}

/// `{"realm": [names], "client": {clientId: [names]}}`
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "RoleComposites")]
pub struct CompositesInput {
    pub realm: Vec<String>,
    pub client: BTreeMap<String, Vec<String>>,
}

pub fn role_repr(r: &RoleRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "composite": !r.composites.is_empty(),
        "clientRole": r.client_role,
        "containerId": r.container_id,
        "attributes": r.attributes,
    })
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "GroupRepresentation")]
pub struct GroupInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    pub sub_groups: Option<Vec<GroupInput>>,
    pub realm_roles: Option<Vec<String>>,
    pub client_roles: Option<BTreeMap<String, Vec<String>>>,
}

pub fn group_repr(g: &GroupRecord, path: &str, sub_group_count: usize) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "path": path,
        "parentId": g.parent_id,
        "subGroupCount": sub_group_count,
        "subGroups": [],
        "attributes": g.attributes,
        "realmRoles": [],
        "clientRoles": {},
        "access": {"view": true, "viewMembers": true, "manageMembers": true, "manage": true, "manageMembership": true},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserRecord;

    #[test]
    fn redirect_patterns() {
        assert!(validate_redirect_pattern("https://app.example.com/cb").is_ok());
        assert!(validate_redirect_pattern("https://app.example.com/*").is_ok());
        assert!(validate_redirect_pattern("http://localhost:3000/*").is_ok());
        assert!(validate_redirect_pattern("/relative/*").is_ok());
        assert!(validate_redirect_pattern("https://*.example.com/cb").is_err());
        assert!(validate_redirect_pattern("not a uri").is_err());
        assert!(validate_redirect_pattern("https://a.example.com/#frag").is_err());
    }

    #[test]
    fn user_input_lowercases_and_validates() {
        let mut u = UserRecord::default();
        let input: UserInput =
            serde_json::from_str(r#"{"username":"Jane","email":"j@x.org","unknownField":1}"#)
                .unwrap();
        input.apply(&mut u, true).unwrap();
        assert_eq!(u.username, "jane");
        let bad: UserInput = serde_json::from_str(r#"{"username":"  "}"#).unwrap();
        assert!(bad.apply(&mut u, true).is_err());
        let bad: UserInput = serde_json::from_str(r#"{"requiredActions":["NOPE"]}"#).unwrap();
        assert!(bad.apply(&mut u, true).is_err());
        assert!(serde_json::from_str::<UserInput>(r#"{"enabled":"yes"}"#).is_err());
    }
}
