//! The client scope representation (`ClientScopeRepresentation`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::idp::client_scopes::OPENID_CONNECT;
use crate::store::ClientScopeRecord;

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "ClientScopeRepresentation")]
pub struct ClientScopeInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub protocol: Option<String>,
    pub attributes: Option<BTreeMap<String, Value>>,
    #[serde(deserialize_with = "super::objects")]
    #[schemars(with = "Option<Vec<serde_json::Map<String, Value>>>")]
    pub protocol_mappers: Option<Vec<Value>>,
}

/// Keycloak's rule for scope names: printable ASCII without space, `"` or `\`, since a
/// name is a word of a `scope` parameter.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

impl ClientScopeInput {
    /// Apply the scope's own fields to `s` (a new record on create); its mappers are
    /// [`ClientScopeInput::set_mappers`].
    pub fn apply(&self, s: &mut ClientScopeRecord, creating: bool) -> Result<(), String> {
        match &self.name {
            Some(name) if valid_name(name) => s.name = name.clone(),
            Some(name) => return Err(format!("Unexpected name \"{name}\" for ClientScope")),
            None if creating => return Err("Unexpected name \"null\" for ClientScope".into()),
            None => {}
        }
        match self.protocol.as_deref() {
            Some(p @ (OPENID_CONNECT | "saml")) => s.protocol = p.to_string(),
            Some(_) => return Err("Unexpected protocol".into()),
            None if creating => s.protocol = OPENID_CONNECT.into(),
            None => {}
        }
        if let Some(d) = &self.description {
            s.description = Some(d.clone()).filter(|d| !d.is_empty());
        }
        if let Some(attrs) = &self.attributes {
            s.attributes = attrs
                .iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        Value::String(t) => t.clone(),
                        Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((k.clone(), text))
                })
                .collect();
        }
        Ok(())
    }
}

impl ClientScopeInput {
    /// Replace `s`'s mappers with the representation's (when it has `protocolMappers`),
    /// checked, with unique names; a mapper without an id keeps the id of the one of the
    /// same name it replaces, or gets a new one.
    pub fn set_mappers(&self, s: &mut ClientScopeRecord) -> Result<(), String> {
        let Some(list) = &self.protocol_mappers else {
            return Ok(());
        };
        let mut mappers: Vec<Value> = Vec::new();
        for m in list {
            let mut m = m.clone();
            if s.protocol == OPENID_CONNECT {
                crate::idp::mappers::validate(&m)?;
            }
            let name = m.get("name").and_then(|v| v.as_str()).unwrap_or("");
            if mappers.iter().any(|o| o["name"] == name) {
                return Err(format!("Protocol mapper exists with same name: {name}"));
            }
            if m.get("id")
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                let previous = s
                    .protocol_mappers
                    .iter()
                    .find(|o| o["name"] == name)
                    .and_then(|o| o.get("id").cloned());
                m["id"] = previous.unwrap_or_else(|| crate::crypto::random_id().into());
            }
            m["protocol"] = s.protocol.clone().into();
            mappers.push(m);
        }
        s.protocol_mappers = mappers;
        Ok(())
    }
}

pub fn client_scope_repr(s: &ClientScopeRecord) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "protocol": s.protocol,
        "attributes": s.attributes,
    });
    if let Some(d) = &s.description {
        v["description"] = d.clone().into();
    }
    if !s.protocol_mappers.is_empty() {
        v["protocolMappers"] = s.protocol_mappers.clone().into();
    }
    v
}

/// The short form the default-scope lists answer with.
pub fn client_scope_ref(s: &ClientScopeRecord) -> Value {
    json!({"id": s.id, "name": s.name, "protocol": s.protocol})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_scope_words() {
        for good in ["profile", "read:all", "api.v1/x", "a'b"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "two words", "q\"uote", "back\\slash", "tab\t", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// What the admin API shows of a client scope, sent back, is that scope.
        #[test]
        fn a_client_scope_representation_reads_back_as_the_scope(
            name in "[a-z][a-z0-9:._/-]{0,15}",
            description in proptest::option::of("[ -~]{0,20}"),
            protocol in prop_oneof![Just("openid-connect"), Just("saml")],
            attributes in proptest::collection::btree_map("[a-z.]{1,12}", "[ -~]{0,10}", 0..4),
        ) {
            let input = ClientScopeInput {
                name: Some(name),
                description,
                protocol: Some(protocol.to_string()),
                attributes: Some(attributes.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
                ..Default::default()
            };
            let mut scope = ClientScopeRecord { id: "s".into(), ..Default::default() };
            input.apply(&mut scope, true).unwrap();
            let shown = client_scope_repr(&scope);
            let back: ClientScopeInput = serde_json::from_value(shown.clone()).unwrap();
            let mut again = ClientScopeRecord { id: "s".into(), ..Default::default() };
            back.apply(&mut again, true).unwrap();
            back.set_mappers(&mut again).unwrap();
            prop_assert_eq!(client_scope_repr(&again), shown);
        }
    }
}
