//! Keycloak's OIDC protocol mappers of a client: extra claims (group membership, user
//! attributes and properties, hard-coded values, role lists) and extra audiences, added to
//! the access token, ID token and userinfo as each mapper's config says.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::store::{ClientRecord, UserRecord};

use super::roles::EffectiveRoles;

/// The mapper types we apply (anything else is refused by the admin API).
pub const SUPPORTED: &[&str] = &[
    "oidc-group-membership-mapper",
    "oidc-audience-mapper",
    "oidc-usermodel-attribute-mapper",
    "oidc-usermodel-property-mapper",
    "oidc-hardcoded-claim-mapper",
    "oidc-usermodel-realm-role-mapper",
    "oidc-usermodel-client-role-mapper",
    "oidc-full-name-mapper",
    "oidc-audience-resolve-mapper",
    "oidc-allowed-origins-mapper",
];

/// Claims the provider owns: who issued the token, for whom, until when, in which session
/// and with which roles and scopes. Resource servers (and our own proxy) trust them, so no
/// mapper may write them; role claims come only from the user's role mappings.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "nbf",
    "jti",
    "typ",
    "auth_time",
    "nonce",
    "session_state",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "acr",
    "amr",
    "cnf",
    "scope",
    "client_id",
    "allowed-origins",
    "realm_access",
    "resource_access",
];

/// The role mappers, which alone may write the role claims (with the user's real roles).
const ROLE_MAPPERS: &[&str] = &[
    "oidc-usermodel-realm-role-mapper",
    "oidc-usermodel-client-role-mapper",
];

/// Whether a mapper of `kind` may write the claim at `path` (dotted, `\.` a literal dot).
fn may_write(kind: &str, path: &str) -> bool {
    let top = path
        .replace("\\.", "\u{0}")
        .split('.')
        .next()
        .unwrap_or("")
        .replace('\u{0}', ".");
    let role_claim = matches!(top.as_str(), "realm_access" | "resource_access");
    !RESERVED_CLAIMS.contains(&top.as_str()) || (role_claim && ROLE_MAPPERS.contains(&kind))
}

/// Which token a claim is being built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Access,
    Id,
    UserInfo,
}

impl Target {
    fn config_key(self) -> &'static str {
        match self {
            Target::Access => "access.token.claim",
            Target::Id => "id.token.claim",
            Target::UserInfo => "userinfo.token.claim",
        }
    }
}

/// What mappers may read about the user.
pub struct Subject<'a> {
    pub user: &'a UserRecord,
    pub roles: &'a EffectiveRoles,
    /// Full paths (`/a/b`) of the user's groups.
    pub group_paths: &'a [String],
}

/// The claims and audiences the client's mappers add for `target`.
#[derive(Debug, Default)]
pub struct Mapped {
    pub claims: Map<String, Value>,
    pub audiences: Vec<String>,
}

fn config(mapper: &Value) -> BTreeMap<String, String> {
    mapper
        .get("config")
        .and_then(|c| c.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Convert a string to the mapper's `jsonType.label`.
fn typed(value: &str, json_type: Option<&str>) -> Value {
    match json_type.map(str::to_ascii_lowercase).as_deref() {
        Some("long") | Some("int") => value.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
        Some("boolean") => Value::Bool(value.eq_ignore_ascii_case("true")),
        Some("json") => serde_json::from_str(value).unwrap_or(Value::Null),
        _ => Value::String(value.to_string()),
    }
}

/// Put `value` at a dotted claim path (`a.b.c` nests objects; `\.` is a literal dot).
pub fn set_claim(claims: &mut Map<String, Value>, path: &str, value: Value) {
    let parts: Vec<String> = path
        .replace("\\.", "\u{0}")
        .split('.')
        .map(|p| p.replace('\u{0}', "."))
        .filter(|p| !p.is_empty())
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = claims;
    for p in parents {
        let entry = current
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

fn user_property(user: &UserRecord, property: &str) -> Option<String> {
    match property {
        "username" => Some(user.username.clone()),
        "email" => user.email.clone(),
        "firstName" => user.first_name.clone(),
        "lastName" => user.last_name.clone(),
        "emailVerified" => Some(user.email_verified.to_string()),
        "id" => Some(user.id.clone()),
        _ => None,
    }
}

/// Apply `client`'s protocol mappers for `target`.
pub fn apply(client: &ClientRecord, subject: &Subject<'_>, target: Target) -> Mapped {
    let mut out = Mapped::default();
    for mapper in &client.protocol_mappers {
        let kind = mapper
            .get("protocolMapper")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let c = config(mapper);
        let enabled = |key: &str| c.get(key).map(|v| v == "true").unwrap_or(true);
        if kind == "oidc-audience-mapper" {
            if target == Target::Access && enabled("access.token.claim") {
                for key in ["included.client.audience", "included.custom.audience"] {
                    if let Some(a) = c.get(key).filter(|a| !a.is_empty()) {
                        out.audiences.push(a.clone());
                    }
                }
            }
            continue;
        }
        if !enabled(target.config_key()) {
            continue;
        }
        let claim = c.get("claim.name").cloned().unwrap_or_default();
        if !claim.is_empty() && !may_write(kind, &claim) {
            // Refused by the admin API; a stored one (from an old import) is ignored.
            continue;
        }
        let json_type = c.get("jsonType.label").map(String::as_str);
        let multivalued = c.get("multivalued").is_some_and(|v| v == "true");
        match kind {
            "oidc-group-membership-mapper" => {
                let full_path = c.get("full.path").map(|v| v == "true").unwrap_or(true);
                let groups: Vec<Value> = subject
                    .group_paths
                    .iter()
                    .map(|p| {
                        if full_path {
                            p.clone()
                        } else {
                            p.rsplit('/').next().unwrap_or(p).to_string()
                        }
                    })
                    .map(Value::String)
                    .collect();
                set_claim(
                    &mut out.claims,
                    if claim.is_empty() { "groups" } else { &claim },
                    Value::Array(groups),
                );
            }
            "oidc-usermodel-attribute-mapper" => {
                let Some(attribute) = c.get("user.attribute") else {
                    continue;
                };
                let values = subject
                    .user
                    .attributes
                    .get(attribute)
                    .cloned()
                    .unwrap_or_default();
                if values.is_empty() || claim.is_empty() {
                    continue;
                }
                let value = if multivalued {
                    Value::Array(values.iter().map(|v| typed(v, json_type)).collect())
                } else {
                    typed(&values[0], json_type)
                };
                set_claim(&mut out.claims, &claim, value);
            }
            "oidc-usermodel-property-mapper" => {
                if let Some(v) = c
                    .get("user.attribute")
                    .and_then(|p| user_property(subject.user, p))
                {
                    if !claim.is_empty() {
                        set_claim(&mut out.claims, &claim, typed(&v, json_type));
                    }
                }
            }
            "oidc-hardcoded-claim-mapper" => {
                if let Some(v) = c.get("claim.value") {
                    if !claim.is_empty() {
                        set_claim(&mut out.claims, &claim, typed(v, json_type));
                    }
                }
            }
            "oidc-usermodel-realm-role-mapper" => {
                let name = if claim.is_empty() {
                    "realm_access.roles".to_string()
                } else {
                    claim.clone()
                };
                if name == "realm_access.roles" && target == Target::Access {
                    continue; // the built-in claim already carries them
                }
                let prefix = c
                    .get("usermodel.realmRoleMapping.rolePrefix")
                    .cloned()
                    .unwrap_or_default();
                let roles: Vec<Value> = subject
                    .roles
                    .realm
                    .iter()
                    .map(|r| Value::String(format!("{prefix}{r}")))
                    .collect();
                set_claim(&mut out.claims, &name, Value::Array(roles));
            }
            "oidc-usermodel-client-role-mapper" => {
                let only = c
                    .get("usermodel.clientRoleMapping.clientId")
                    .filter(|v| !v.is_empty());
                let prefix = c
                    .get("usermodel.clientRoleMapping.rolePrefix")
                    .cloned()
                    .unwrap_or_default();
                for (client_id, roles) in &subject.roles.clients {
                    if only.is_some_and(|o| o != client_id) {
                        continue;
                    }
                    let name = if claim.is_empty() {
                        "resource_access.${client_id}.roles".to_string()
                    } else {
                        claim.clone()
                    }
                    .replace("${client_id}", client_id);
                    if name.starts_with("resource_access.") && target == Target::Access {
                        continue;
                    }
                    let list: Vec<Value> = roles
                        .iter()
                        .map(|r| Value::String(format!("{prefix}{r}")))
                        .collect();
                    set_claim(&mut out.claims, &name, Value::Array(list));
                }
            }
            _ => {}
        }
    }
    out
}

/// Refuse a mapper that would write a reserved claim (any representation that carries
/// mappers: a client, an import).
pub fn check_claim(mapper: &Value) -> Result<(), String> {
    let kind = mapper
        .get("protocolMapper")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    match mapper
        .pointer("/config/claim.name")
        .and_then(|v| v.as_str())
    {
        Some(claim) if !claim.is_empty() && !may_write(kind, claim) => Err(format!(
            "Claim {claim} is reserved: it is set by the server and cannot be mapped"
        )),
        _ => Ok(()),
    }
}

/// Check a mapper representation from the admin API.
pub fn validate(mapper: &Value) -> Result<(), String> {
    let name = mapper.get("name").and_then(|v| v.as_str()).unwrap_or("");
    if name.trim().is_empty() {
        return Err("Protocol mapper name is required".into());
    }
    if mapper
        .get("protocol")
        .and_then(|v| v.as_str())
        .is_some_and(|p| p != "openid-connect")
    {
        return Err("Only openid-connect protocol mappers are supported".into());
    }
    let kind = mapper
        .get("protocolMapper")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if !SUPPORTED.contains(&kind) {
        return Err(format!("Unsupported protocol mapper type: {kind}"));
    }
    if let Some(config) = mapper.get("config") {
        let Some(obj) = config.as_object() else {
            return Err("config must be an object of strings".into());
        };
        if obj.values().any(|v| !v.is_string()) {
            return Err("config values must be strings".into());
        }
    }
    check_claim(mapper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mappers_add_claims_and_audiences() {
        let client = ClientRecord {
            protocol_mappers: vec![
                json!({"name": "g", "protocolMapper": "oidc-group-membership-mapper", "config": {"claim.name": "groups", "full.path": "false", "userinfo.token.claim": "true"}}),
                json!({"name": "a", "protocolMapper": "oidc-audience-mapper", "config": {"included.client.audience": "api"}}),
                json!({"name": "dept", "protocolMapper": "oidc-usermodel-attribute-mapper", "config": {"user.attribute": "dept", "claim.name": "org.dept", "id.token.claim": "false"}}),
                json!({"name": "n", "protocolMapper": "oidc-hardcoded-claim-mapper", "config": {"claim.name": "tier", "claim.value": "3", "jsonType.label": "long"}}),
            ],
            ..Default::default()
        };
        let mut user = UserRecord::default();
        user.attributes.insert("dept".into(), vec!["R&D".into()]);
        let roles = EffectiveRoles::default();
        let paths = vec!["/eng/backend".to_string()];
        let subject = Subject {
            user: &user,
            roles: &roles,
            group_paths: &paths,
        };
        let access = apply(&client, &subject, Target::Access);
        assert_eq!(access.claims["groups"], json!(["backend"]));
        assert_eq!(access.claims["org"]["dept"], "R&D");
        assert_eq!(access.claims["tier"], 3);
        assert_eq!(access.audiences, vec!["api"]);
        let id = apply(&client, &subject, Target::Id);
        assert!(id.claims.get("org").is_none(), "id.token.claim=false");
        assert!(id.audiences.is_empty());
    }

    #[test]
    fn validation() {
        assert!(validate(
            &json!({"name": "x", "protocolMapper": "oidc-audience-mapper", "config": {}})
        )
        .is_ok());
        assert!(validate(&json!({"name": "", "protocolMapper": "oidc-audience-mapper"})).is_err());
        assert!(validate(&json!({"name": "x", "protocolMapper": "script-mapper"})).is_err());
        assert!(validate(
            &json!({"name": "x", "protocolMapper": "oidc-audience-mapper", "config": {"a": 1}})
        )
        .is_err());
    }

    /// Privilege escalation through claim shaping: a mapper must not write the claims
    /// that carry roles or identity (the hard-coded `realm_access` admin attack).
    #[test]
    fn reserved_claims_cannot_be_mapped() {
        for claim in [
            "realm_access",
            "realm_access.roles",
            "resource_access.x.roles",
            "sub",
            "iss",
            "azp",
            "scope",
            "sid",
        ] {
            let m = json!({"name": "x", "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {"claim.name": claim, "claim.value": "{\"roles\":[\"admin\"]}", "jsonType.label": "JSON"}});
            assert!(validate(&m).is_err(), "{claim}");
        }
        let role_mapper = json!({"name": "r", "protocolMapper": "oidc-usermodel-realm-role-mapper",
            "config": {"claim.name": "realm_access.roles"}});
        assert!(validate(&role_mapper).is_ok());
        // `a\.b` is one claim named "a.b": not the reserved top-level `a`.
        let dotted = json!({"name": "d", "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "realm_access\\.x", "claim.value": "1"}});
        assert!(validate(&dotted).is_ok());
        // A stored one (imported before this rule) is ignored when tokens are built.
        let client = ClientRecord {
            protocol_mappers: vec![
                json!({"name": "x", "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {"claim.name": "realm_access", "claim.value": "{\"roles\":[\"admin\"]}", "jsonType.label": "JSON"}}),
            ],
            ..Default::default()
        };
        let user = UserRecord::default();
        let roles = EffectiveRoles::default();
        let subject = Subject {
            user: &user,
            roles: &roles,
            group_paths: &[],
        };
        assert!(apply(&client, &subject, Target::Access).claims.is_empty());
    }
}
