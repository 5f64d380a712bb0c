//! Keycloak's OIDC protocol mappers, of a client and of its applied client scopes: they
//! shape the claims (profile and e-mail, group membership, user attributes and properties,
//! hard-coded values, role lists, address) and the audiences of the access token, ID token
//! and userinfo as each mapper's config says. Claims the server owns (roles, allowed
//! origins, acr) are switched on by their mapper but always computed by the server.

use serde_json::{Map, Value};

use crate::store::UserRecord;

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
    "oidc-address-mapper",
    "oidc-acr-mapper",
    "oidc-sub-mapper",
    "oidc-usersessionmodel-note-mapper",
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

/// Session-note mappers naming a claim the server sets anyway (Keycloak's `basic` scope
/// and service-account mappers): accepted, and never written by the mapper.
const SERVER_NOTE_CLAIMS: &[&str] = &["auth_time", "client_id"];
const NOTE_MAPPER: &str = "oidc-usersessionmodel-note-mapper";

/// The top-level claim of a dotted path (`\.` is a literal dot).
fn top_claim(path: &str) -> String {
    path.replace("\\.", "\u{0}")
        .split('.')
        .next()
        .unwrap_or("")
        .replace('\u{0}', ".")
}

/// Whether a mapper of `kind` may name the claim at `path`.
fn may_write(kind: &str, path: &str) -> bool {
    let top = top_claim(path);
    let role_claim = matches!(top.as_str(), "realm_access" | "resource_access");
    !RESERVED_CLAIMS.contains(&top.as_str())
        || (role_claim && ROLE_MAPPERS.contains(&kind))
        || (kind == NOTE_MAPPER && SERVER_NOTE_CLAIMS.contains(&path))
}

/// Which token a claim is being built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Access,
    Id,
    UserInfo,
}

impl Target {
    /// Whether a mapper with `config` adds to this target, by Keycloak's rules: a mapper
    /// without `access.token.claim` adds to the access token, one without `id.token.claim`
    /// does not add to the ID token, and one without `userinfo.token.claim` adds to
    /// userinfo when it adds to the ID token.
    fn included(self, config: &Config<'_>) -> bool {
        let flag = |key: &str| config.get(key).map(|v| v == "true");
        match self {
            Target::Access => flag("access.token.claim").unwrap_or(true),
            Target::Id => flag("id.token.claim").unwrap_or(false),
            Target::UserInfo => flag("userinfo.token.claim")
                .unwrap_or_else(|| flag("id.token.claim").unwrap_or(false)),
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

/// The claims and audiences the mappers add for `target`, and which server-owned claims
/// they switch on.
#[derive(Debug, Default)]
pub struct Mapped {
    pub claims: Map<String, Value>,
    pub audiences: Vec<String>,
    /// `oidc-audience-resolve-mapper`: the clients whose roles the token carries are
    /// audiences.
    pub audience_resolve: bool,
    /// `oidc-allowed-origins-mapper`: the `allowed-origins` claim.
    pub allowed_origins: bool,
    /// `oidc-acr-mapper`: the `acr` claim.
    pub acr: bool,
}

/// A mapper's `config`, read in place (token issuance runs every mapper of every applied
/// scope: no copies). Values are strings (the admin API refuses others).
#[derive(Clone, Copy)]
struct Config<'a>(Option<&'a Map<String, Value>>);

impl<'a> Config<'a> {
    fn of(mapper: &'a Value) -> Config<'a> {
        Config(mapper.get("config").and_then(Value::as_object))
    }

    fn get(&self, key: &str) -> Option<&'a String> {
        match self.0?.get(key)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
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
    if !path.contains(['.', '\\']) {
        // Most claims (`email`, `preferred_username`, ...) are one name.
        if !path.is_empty() {
            claims.insert(path.to_string(), value);
        }
        return;
    }
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

/// The values of a user attribute; the profile's own fields (`username`, `email`,
/// `firstName`, `lastName`) are attributes too, as in Keycloak's user profile.
fn user_attribute(user: &UserRecord, attribute: &str) -> Vec<String> {
    match attribute {
        "username" | "email" | "firstName" | "lastName" => {
            user_property(user, attribute).into_iter().collect()
        }
        other => user.attributes.get(other).cloned().unwrap_or_default(),
    }
}

/// Keycloak's address claim (OIDC Core 5.1.1) from the user attributes the mapper names.
fn address_claim(user: &UserRecord, c: &Config<'_>) -> Value {
    let mut out = Map::new();
    for (field, claim) in [
        ("formatted", "formatted"),
        ("street", "street_address"),
        ("locality", "locality"),
        ("region", "region"),
        ("postal_code", "postal_code"),
        ("country", "country"),
    ] {
        let attribute = c
            .get(&format!("user.attribute.{field}"))
            .map(String::as_str)
            .unwrap_or(field);
        if let Some(v) = user.attributes.get(attribute).and_then(|v| v.first()) {
            out.insert(claim.to_string(), Value::String(v.clone()));
        }
    }
    Value::Object(out)
}

/// "First Last" (or whichever of the two the user has), Keycloak's `name` claim.
pub fn full_name(user: &UserRecord) -> Option<String> {
    match (&user.first_name, &user.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.clone()),
        (None, Some(l)) => Some(l.clone()),
        (None, None) => None,
    }
}

/// Apply protocol mappers (a client's own and its applied scopes') for `target`.
pub fn apply(mappers: &[&Value], subject: &Subject<'_>, target: Target) -> Mapped {
    let mut out = Mapped::default();
    for mapper in mappers.iter().copied() {
        let kind = mapper
            .get("protocolMapper")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let c = Config::of(mapper);
        if kind == "oidc-audience-mapper" {
            if target == Target::Access && target.included(&c) {
                for key in ["included.client.audience", "included.custom.audience"] {
                    if let Some(a) = c.get(key).filter(|a| !a.is_empty()) {
                        out.audiences.push(a.clone());
                    }
                }
            }
            continue;
        }
        if !target.included(&c) {
            continue;
        }
        match kind {
            "oidc-audience-resolve-mapper" => {
                out.audience_resolve |= target == Target::Access;
                continue;
            }
            "oidc-allowed-origins-mapper" => {
                out.allowed_origins |= target == Target::Access;
                continue;
            }
            "oidc-acr-mapper" => {
                out.acr = true;
                continue;
            }
            _ => {}
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
                let values = user_attribute(subject.user, attribute);
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
                if !roles.is_empty() {
                    set_claim(&mut out.claims, &name, Value::Array(roles));
                }
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
                    let list: Vec<Value> = roles
                        .iter()
                        .map(|r| Value::String(format!("{prefix}{r}")))
                        .collect();
                    if !list.is_empty() {
                        set_claim(&mut out.claims, &name, Value::Array(list));
                    }
                }
            }
            "oidc-full-name-mapper" => {
                if let Some(name) = full_name(subject.user) {
                    out.claims.insert("name".into(), Value::String(name));
                }
            }
            "oidc-address-mapper" => {
                out.claims
                    .insert("address".into(), address_claim(subject.user, &c));
            }
            // `sub` and the session notes the server sets (`auth_time`, `client_id`) are
            // always in the token.
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
        let list = [
            json!({"name": "g", "protocolMapper": "oidc-group-membership-mapper", "config": {"claim.name": "groups", "full.path": "false", "userinfo.token.claim": "true"}}),
            json!({"name": "a", "protocolMapper": "oidc-audience-mapper", "config": {"included.client.audience": "api"}}),
            json!({"name": "dept", "protocolMapper": "oidc-usermodel-attribute-mapper", "config": {"user.attribute": "dept", "claim.name": "org.dept", "id.token.claim": "false"}}),
            json!({"name": "n", "protocolMapper": "oidc-hardcoded-claim-mapper", "config": {"claim.name": "tier", "claim.value": "3", "jsonType.label": "long"}}),
        ];
        let client: Vec<&Value> = list.iter().collect();
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
        let userinfo = apply(&client, &subject, Target::UserInfo);
        assert_eq!(userinfo.claims["groups"], json!(["backend"]));
        assert!(
            userinfo.claims.get("tier").is_none(),
            "no flags: not in userinfo"
        );
        assert_eq!(access.claims["org"]["dept"], "R&D");
        assert_eq!(access.claims["tier"], 3);
        assert_eq!(access.audiences, vec!["api"]);
        let id = apply(&client, &subject, Target::Id);
        assert!(id.claims.get("org").is_none(), "id.token.claim=false");
        assert!(
            id.claims.get("tier").is_none(),
            "no id.token.claim: not in ID tokens"
        );
        assert!(id.audiences.is_empty());
    }

    /// The built-in scopes' mappers produce Keycloak's claims.
    #[test]
    fn builtin_scope_mappers_shape_the_profile_roles_and_address() {
        let scopes: Vec<_> = crate::idp::client_scopes::builtin()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let mappers: Vec<&Value> = scopes
            .iter()
            .flat_map(|s| s.protocol_mappers.iter())
            .collect();
        let mut user = UserRecord {
            username: "ann".into(),
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            email: Some("ann@example.com".into()),
            email_verified: true,
            ..Default::default()
        };
        user.attributes
            .insert("street".into(), vec!["1 Main St".into()]);
        user.attributes
            .insert("phoneNumber".into(), vec!["+1 555".into()]);
        let mut roles = EffectiveRoles::default();
        roles.realm.insert("staff".into());
        roles
            .clients
            .entry("api".into())
            .or_default()
            .insert("read".into());
        let subject = Subject {
            user: &user,
            roles: &roles,
            group_paths: &[],
        };
        let access = apply(&mappers, &subject, Target::Access);
        let c = &access.claims;
        assert_eq!(c["preferred_username"], "ann");
        assert_eq!(c["name"], "Ann Lee");
        assert_eq!(c["given_name"], "Ann");
        assert_eq!(c["family_name"], "Lee");
        assert_eq!(c["email"], "ann@example.com");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["realm_access"]["roles"], json!(["staff"]));
        assert_eq!(c["resource_access"]["api"]["roles"], json!(["read"]));
        assert_eq!(c["address"], json!({"street_address": "1 Main St"}));
        assert_eq!(c["phone_number"], "+1 555");
        assert_eq!(c["upn"], "ann");
        assert_eq!(c["groups"], json!(["staff"]));
        assert!(
            c.get("middle_name").is_none(),
            "absent attributes add nothing"
        );
        assert!(access.audience_resolve && access.allowed_origins && access.acr);
        let id = apply(&mappers, &subject, Target::Id);
        assert!(
            id.claims.get("realm_access").is_none(),
            "roles: access token only"
        );
        assert_eq!(id.claims["email"], "ann@example.com");
        assert!(!id.allowed_origins && !id.audience_resolve && id.acr);
        let userinfo = apply(&mappers, &subject, Target::UserInfo);
        assert_eq!(userinfo.claims["preferred_username"], "ann");
        assert!(userinfo.claims.get("resource_access").is_none());
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
        // The session-note mappers of Keycloak's `basic` scope and service accounts name
        // claims the server sets; accepted, never written by them.
        let note = json!({"name": "t", "protocolMapper": "oidc-usersessionmodel-note-mapper",
            "config": {"user.session.note": "AUTH_TIME", "claim.name": "auth_time"}});
        assert!(validate(&note).is_ok());
        let sub = json!({"name": "t", "protocolMapper": "oidc-usersessionmodel-note-mapper",
            "config": {"user.session.note": "x", "claim.name": "sub"}});
        assert!(validate(&sub).is_err());
        // A stored one (imported before this rule) is ignored when tokens are built.
        let list = [
            json!({"name": "x", "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "realm_access", "claim.value": "{\"roles\":[\"admin\"]}", "jsonType.label": "JSON"}}),
            note,
        ];
        let client: Vec<&Value> = list.iter().collect();
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
