//! Identity-provider mappers: what a brokered login does to the local user beyond the
//! profile — Keycloak's `hardcoded-role-idp-mapper`, `oidc-role-idp-mapper` (a claim's value
//! grants a role), `oidc-user-attribute-idp-mapper` (a claim into a user attribute),
//! `oidc-username-idp-mapper` (the new user's name from a template) and
//! `hardcoded-attribute-idp-mapper`. Each runs at the first login and, when its sync mode (or
//! the provider's, for `INHERIT`) is `FORCE`, at every later one; a claim-to-role mapper in
//! `FORCE` also takes the role away when the claim no longer matches.

use serde_json::{json, Map, Value};

use crate::store::{RealmRecord, Result, StoreError, Txn, UserRecord, View, Write};

use super::{Identity, Provider, SyncMode};

/// The stored kind of the mappers (`admin/providers.rs`).
pub const MAPPER_KIND: &str = "identity-provider-mapper";

/// Mapper types this server applies, with the properties of each (for `mapper-types`).
pub fn types() -> Value {
    let sync = json!({"name": "syncMode", "label": "Sync mode override", "type": "List",
        "defaultValue": "INHERIT", "options": ["INHERIT", "IMPORT", "LEGACY", "FORCE"]});
    let prop = |name: &str, label: &str, kind: &str, help: &str| json!({"name": name, "label": label, "type": kind, "helpText": help});
    let mut out = Map::new();
    for (id, name, category, help, props) in [
        (
            "hardcoded-role-idp-mapper",
            "Hardcoded Role",
            "Role Importer",
            "When user is imported from provider, hardcode a role mapping for it.",
            vec![prop("role", "Role", "Role", "Role to grant to user.")],
        ),
        (
            "oidc-role-idp-mapper",
            "Claim to Role",
            "Role Importer",
            "If a claim exists, grant the user the specified realm or client role.",
            vec![
                prop("claim", "Claim", "String", "Name of claim to search for in token."),
                prop("claim.value", "Claim Value", "String", "Value the claim must have."),
                prop("role", "Role", "Role", "Role to grant to user if claim is present."),
            ],
        ),
        (
            "oidc-user-attribute-idp-mapper",
            "Attribute Importer",
            "Attribute Importer",
            "Import declared claim if it exists in ID, access token or the profile into the specified user property or attribute.",
            vec![
                prop("claim", "Claim", "String", "Name of claim to search for in token."),
                prop("user.attribute", "User Attribute Name", "String", "User attribute name to store claim."),
            ],
        ),
        (
            "oidc-username-idp-mapper",
            "Username Template Importer",
            "Preprocessor",
            "Format the username to import.",
            vec![
                prop("template", "Template", "String", "Template to use to format the username: ${ALIAS}, ${CLAIM.<NAME>}, with | lowercase, | uppercase or | localpart."),
                prop("target", "Target", "List", "LOCAL (the username)."),
            ],
        ),
        (
            "hardcoded-attribute-idp-mapper",
            "Hardcoded Attribute",
            "Attribute Importer",
            "When user is imported from provider, hardcode a value to a specific user attribute.",
            vec![
                prop("attribute", "User Attribute", "String", "Name of user attribute you want to hardcode."),
                prop("attribute.value", "User Attribute Value", "String", "Value you want to hardcode."),
            ],
        ),
    ] {
        let mut properties = props;
        properties.push(sync.clone());
        out.insert(
            id.into(),
            json!({"id": id, "name": name, "category": category, "helpText": help,
                   "properties": properties}),
        );
    }
    Value::Object(out)
}

/// Whether `kind` is a mapper type this server knows.
pub fn known(kind: &str) -> bool {
    types().get(kind).is_some()
}

fn config<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
    m.get("config")
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A provider's mappers.
pub fn of<T: Txn>(read: &View<T>, realm_id: &str, alias: &str) -> Result<Vec<Value>> {
    Ok(read
        .objects(realm_id, MAPPER_KIND)?
        .into_iter()
        .filter(|m| m["identityProviderAlias"] == alias)
        .collect())
}

/// A claim by name; `a.b` reaches into objects (`\.` is a literal dot).
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    let mut node = claims;
    let mut part = String::new();
    let mut chars = name.chars().peekable();
    let mut parts = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                part.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    for p in parts {
        node = node.get(&p)?;
    }
    Some(node)
}

fn claim_values(claims: &Value, name: &str) -> Vec<String> {
    match claim(claims, name) {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![text_of(v)],
    }
}

fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The new user's name from an `oidc-username-idp-mapper`, if the provider has one.
pub fn username(mappers: &[Value], identity: &Identity, alias: &str) -> Option<String> {
    let template = mappers
        .iter()
        .find(|m| m["identityProviderMapper"] == "oidc-username-idp-mapper")
        .and_then(|m| config(m, "template"))?;
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let expr = &rest[start + 2..start + end];
        let mut parts = expr.split('|').map(str::trim);
        let name = parts.next().unwrap_or("");
        let mut value = match name {
            "ALIAS" => alias.to_string(),
            n => match n.strip_prefix("CLAIM.") {
                Some(c) => claim_values(&identity.claims, c)
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
                None => String::new(),
            },
        };
        for transform in parts {
            value = match transform {
                "lowercase" => value.to_lowercase(),
                "uppercase" => value.to_uppercase(),
                "localpart" => value.split('@').next().unwrap_or("").to_string(),
                _ => value,
            };
        }
        out.push_str(&value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let out = out.trim().to_lowercase();
    (!out.is_empty()).then_some(out)
}

/// A role named as Keycloak's mappers name them: `name` (a realm role) or
/// `clientId.name` (a client's).
pub fn find_role(w: &Write, realm: &RealmRecord, text: &str) -> Result<Option<String>> {
    if let Some(role) = w.role_by_name(&realm.id, &realm.id, text)? {
        return Ok(Some(role.id));
    }
    for (i, _) in text.match_indices('.') {
        let (client_id, name) = (&text[..i], &text[i + 1..]);
        if let Some(client) = w.client_by_client_id(&realm.id, client_id)? {
            if let Some(role) = w.role_by_name(&realm.id, &client.id, name)? {
                return Ok(Some(role.id));
            }
        }
    }
    Ok(None)
}

/// Whether a mapper (its own sync mode, or the provider's for `INHERIT`) runs at every login.
fn forced(m: &Value, provider: &Provider) -> bool {
    match config(m, "syncMode").unwrap_or("INHERIT") {
        "FORCE" => true,
        "INHERIT" => provider.sync_mode == SyncMode::Force,
        _ => false,
    }
}

/// Whether any of the mappers runs at every login.
pub fn any_forced(mappers: &[Value], provider: &Provider) -> bool {
    mappers.iter().any(|m| forced(m, provider))
}

/// Run the provider's mappers on `user` (already stored), at its first login or a later one.
pub fn apply(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    mappers: &[Value],
    identity: &Identity,
    user: &mut UserRecord,
    first_login: bool,
) -> Result<()> {
    let mut changed = false;
    for m in mappers {
        if !first_login && !forced(m, provider) {
            continue;
        }
        let kind = m["identityProviderMapper"].as_str().unwrap_or("");
        match kind {
            "hardcoded-role-idp-mapper" => {
                if let Some(role) = config(m, "role")
                    .map(|r| find_role(w, realm, r))
                    .transpose()?
                    .flatten()
                {
                    w.grant_user_role(&realm.id, &user.id, &role)?;
                }
            }
            "oidc-role-idp-mapper" => {
                let Some(role) = config(m, "role")
                    .map(|r| find_role(w, realm, r))
                    .transpose()?
                    .flatten()
                else {
                    continue;
                };
                let matches = config(m, "claim").is_some_and(|c| {
                    let values = claim_values(&identity.claims, c);
                    match config(m, "claim.value") {
                        Some(wanted) => values.iter().any(|v| v == wanted),
                        None => !values.is_empty(),
                    }
                });
                if matches {
                    w.grant_user_role(&realm.id, &user.id, &role)?;
                } else if !first_login {
                    w.revoke_user_role(&realm.id, &user.id, &role)?;
                }
            }
            "oidc-user-attribute-idp-mapper" => {
                let (Some(c), Some(attribute)) = (config(m, "claim"), config(m, "user.attribute"))
                else {
                    continue;
                };
                let values = claim_values(&identity.claims, c);
                changed |= set_attribute(user, attribute, values);
            }
            "hardcoded-attribute-idp-mapper" => {
                let (Some(attribute), Some(value)) =
                    (config(m, "attribute"), config(m, "attribute.value"))
                else {
                    continue;
                };
                changed |= set_attribute(user, attribute, vec![value.to_string()]);
            }
            _ => {}
        }
    }
    if changed {
        w.put_user(&realm.id, user, realm.duplicate_emails_allowed)?;
    }
    Ok(())
}

/// A user property (`email`, `firstName`, `lastName`) or attribute; whether it changed.
fn set_attribute(user: &mut UserRecord, attribute: &str, values: Vec<String>) -> bool {
    let first = values.first().cloned();
    if attribute == "email" {
        // An address from a claim is not a verified one.
        let email = values.first().map(|e| e.to_lowercase());
        if email.is_none() || user.email == email {
            return false;
        }
        user.email = email;
        user.email_verified = false;
        return true;
    }
    let slot = match attribute {
        "firstName" => &mut user.first_name,
        "lastName" => &mut user.last_name,
        _ => {
            if values.is_empty() {
                return user.attributes.remove(attribute).is_some();
            }
            return user
                .attributes
                .insert(attribute.to_string(), values.clone())
                != Some(values);
        }
    };
    if first.is_none() || *slot == first {
        return false;
    }
    *slot = first;
    true
}

/// Refuse a mapper the caller may not create: a role that does not exist (`Err` names it).
pub fn check(
    w: &Write,
    realm: &RealmRecord,
    m: &Value,
) -> std::result::Result<Option<String>, String> {
    let kind = m["identityProviderMapper"].as_str().unwrap_or("");
    if !known(kind) {
        return Err(format!("Unsupported identity provider mapper type: {kind}"));
    }
    match kind {
        "hardcoded-role-idp-mapper" | "oidc-role-idp-mapper" => {
            let role = config(m, "role").ok_or("config.role is required")?;
            match find_role(w, realm, role) {
                Ok(Some(id)) => Ok(Some(id)),
                Ok(None) => Err(format!("Role not found: {role}")),
                Err(StoreError::Missing(_)) => Err(format!("Role not found: {role}")),
                Err(e) => Err(e.to_string()),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(claims: Value) -> Identity {
        Identity {
            id: "1".into(),
            claims,
            ..Identity::default()
        }
    }

    #[test]
    fn username_templates_and_claim_paths() {
        let m = vec![json!({"identityProviderMapper": "oidc-username-idp-mapper",
            "config": {"template": "${ALIAS}.${CLAIM.email | localpart}"}})];
        let i = identity(
            json!({"email": "Jane.Doe@Example.com", "realm_access": {"roles": ["a", "b"]}}),
        );
        assert_eq!(username(&m, &i, "corp").as_deref(), Some("corp.jane.doe"));
        assert_eq!(claim_values(&i.claims, "realm_access.roles"), ["a", "b"]);
        assert!(claim_values(&i.claims, "nope").is_empty());
        let dotted = identity(json!({"a.b": 1}));
        assert_eq!(claim_values(&dotted.claims, "a\\.b"), ["1"]);
        assert!(username(&[], &i, "corp").is_none());
        assert!(
            types().get("oidc-role-idp-mapper").is_some() && known("hardcoded-role-idp-mapper")
        );
        assert!(!known("script-mapper"));
    }

    #[test]
    fn attributes_set_and_clear() {
        let mut u = UserRecord::default();
        assert!(set_attribute(&mut u, "department", vec!["eng".into()]));
        assert!(!set_attribute(&mut u, "department", vec!["eng".into()]));
        assert!(set_attribute(&mut u, "firstName", vec!["Ann".into()]));
        assert_eq!(u.first_name.as_deref(), Some("Ann"));
        assert!(set_attribute(&mut u, "department", vec![]));
        assert!(u.attributes.is_empty());
    }
}
