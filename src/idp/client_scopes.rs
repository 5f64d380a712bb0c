//! Client scopes: Keycloak's built-in scopes of every realm, the realm's default and
//! optional scopes that new clients get, and which scopes a request applies to a client's
//! tokens. A client's *default* scopes always apply; its *optional* scopes apply when the
//! request's `scope` names them. The applied scopes bring their protocol mappers (which
//! shape the claims) and their role scope mappings (which roles a client without
//! `fullScopeAllowed` may put in tokens).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::{json, Value};

use crate::crypto::random_id;
use crate::store::{ClientRecord, ClientScopeRecord, RealmRecord, StoreError, Txn, View, Write};

pub const OPENID_CONNECT: &str = "openid-connect";
/// The attribute that puts a scope's name in the `scope` claim (default true).
pub const INCLUDE_IN_TOKEN_SCOPE: &str = "include.in.token.scope";
/// The scope whose presence asks for an offline token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The scopes a request applies to a client's tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scopes {
    /// `openid` was asked for (an ID token is issued).
    pub openid: bool,
    /// `offline_access` is applied (an offline token is asked for).
    pub offline_access: bool,
    /// The client's default scopes, then the optional ones the request named.
    pub applied: Vec<Arc<ClientScopeRecord>>,
}

impl Scopes {
    /// The `scope` claim and token-response value: `openid` when asked for, then the
    /// applied scopes that are included in the token scope.
    pub fn to_claim(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        if self.openid {
            out.push("openid");
        }
        for s in &self.applied {
            if s.attributes
                .get(INCLUDE_IN_TOKEN_SCOPE)
                .is_none_or(|v| v != "false")
            {
                out.push(&s.name);
            }
        }
        out.join(" ")
    }

    /// The scopes as a `scope` parameter that [`resolve`] reads back to the same scopes
    /// (kept with codes and pending logins): `openid` and every applied scope's name.
    pub fn to_param(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        if self.openid {
            out.push("openid");
        }
        out.extend(self.applied.iter().map(|s| s.name.as_str()));
        out.join(" ")
    }

    /// The protocol mappers that shape the tokens: the client's own, then each applied
    /// scope's.
    pub fn mappers<'a>(&'a self, client: &'a ClientRecord) -> Vec<&'a Value> {
        client
            .protocol_mappers
            .iter()
            .chain(self.applied.iter().flat_map(|s| s.protocol_mappers.iter()))
            .collect()
    }

    /// Role ids the applied scopes add to the client's role scope.
    pub fn role_ids(&self) -> impl Iterator<Item = &String> {
        self.applied.iter().flat_map(|s| s.scope_role_ids.iter())
    }
}

/// A `scope` parameter that names a scope the client does not have.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("Invalid scopes: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The scopes `requested` (a space-separated `scope` parameter) applies to `client`. With
/// `strict`, a name that is neither `openid` nor one of the client's scopes is an error
/// (`invalid_scope`); without (a stored scope read back, where a scope may have been
/// removed since), it is skipped.
pub fn resolve<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    client: &ClientRecord,
    requested: Option<&str>,
    strict: bool,
) -> Result<Scopes, ScopeError> {
    let load = |ids: &[String]| -> Result<Vec<Arc<ClientScopeRecord>>, StoreError> {
        let mut out = Vec::new();
        let stored = read.client_scope_bytes(realm_id, ids)?;
        for (id, bytes) in ids.iter().zip(stored) {
            if let Some(s) = cached_scope(realm_id, id, bytes)? {
                if s.protocol == OPENID_CONNECT || s.protocol.is_empty() {
                    out.push(s);
                }
            }
        }
        Ok(out)
    };
    let mut scopes = Scopes {
        applied: load(&client.default_client_scopes)?,
        ..Default::default()
    };
    let optional = load(&client.optional_client_scopes)?;
    let requested = requested.unwrap_or("");
    for word in requested.split_ascii_whitespace() {
        if word == "openid" {
            scopes.openid = true;
        } else if scopes.applied.iter().any(|s| s.name == word) {
            continue;
        } else if let Some(s) = optional.iter().find(|s| s.name == word) {
            scopes.applied.push(s.clone());
        } else if strict {
            return Err(ScopeError::Invalid(requested.to_string()));
        }
    }
    scopes.offline_access = scopes.applied.iter().any(|s| s.name == OFFLINE_ACCESS);
    Ok(scopes)
}

/// Decoded client scopes by realm and id, with the stored bytes they were decoded from:
/// token issuance applies a client's scopes at every grant, and decoding their mappers
/// each time cost more than signing an ES256 token. A lookup still reads the stored bytes
/// (in the caller's snapshot) and decodes again when they changed, so it never serves a
/// stale scope.
struct Cached {
    bytes: Vec<u8>,
    record: Arc<ClientScopeRecord>,
}

/// At most this many scopes are kept (then the cache starts over).
const CACHE_LIMIT: usize = 4096;

fn cache() -> &'static RwLock<HashMap<String, Cached>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// A client scope from its stored bytes, decoded once per stored version.
fn cached_scope(
    realm_id: &str,
    id: &str,
    bytes: Option<Vec<u8>>,
) -> Result<Option<Arc<ClientScopeRecord>>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let key = format!("{realm_id}\u{0}{id}");
    if let Ok(map) = cache().read() {
        if let Some(hit) = map.get(&key).filter(|c| c.bytes == bytes) {
            return Ok(Some(hit.record.clone()));
        }
    }
    let record: ClientScopeRecord =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let record = Arc::new(record);
    if let Ok(mut map) = cache().write() {
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(
            key,
            Cached {
                bytes,
                record: record.clone(),
            },
        );
    }
    Ok(Some(record))
}

/// Whether any of the mappers needs the user's group paths.
pub fn needs_groups(mappers: &[&Value]) -> bool {
    mappers.iter().any(|m| {
        m.get("protocolMapper").and_then(|v| v.as_str()) == Some("oidc-group-membership-mapper")
    })
}

// ---- Keycloak's built-in scopes ----

fn mapper(name: &str, kind: &str, config: &[(&str, &str)]) -> Value {
    let config: BTreeMap<&str, &str> = config.iter().copied().collect();
    json!({
        "id": random_id(),
        "name": name,
        "protocol": OPENID_CONNECT,
        "protocolMapper": kind,
        "consentRequired": false,
        "config": config,
    })
}

const ALL_TOKENS: [(&str, &str); 4] = [
    ("introspection.token.claim", "true"),
    ("userinfo.token.claim", "true"),
    ("id.token.claim", "true"),
    ("access.token.claim", "true"),
];

/// A user-attribute mapper into every token (the profile, email and phone claims).
fn attribute(name: &str, attribute: &str, claim: &str, json_type: &str) -> Value {
    let mut config = vec![
        ("user.attribute", attribute),
        ("claim.name", claim),
        ("jsonType.label", json_type),
    ];
    config.extend(ALL_TOKENS);
    mapper(name, "oidc-usermodel-attribute-mapper", &config)
}

fn scope(
    name: &str,
    description: &str,
    attributes: &[(&str, &str)],
    protocol_mappers: Vec<Value>,
) -> ClientScopeRecord {
    ClientScopeRecord {
        id: random_id(),
        name: name.into(),
        description: Some(description.into()),
        protocol: OPENID_CONNECT.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        protocol_mappers,
        scope_role_ids: Vec::new(),
    }
}

/// Keycloak's built-in OpenID Connect scopes, each with whether it is a realm default
/// (`true`) or optional scope. (`organization` belongs to Keycloak's organizations, which
/// Portcullis does not have; the SAML scopes to SAML.)
pub fn builtin() -> Vec<(ClientScopeRecord, bool)> {
    let shown = |text: &str| -> Vec<(String, String)> {
        vec![
            (INCLUDE_IN_TOKEN_SCOPE.into(), "true".into()),
            ("display.on.consent.screen".into(), "true".into()),
            ("consent.screen.text".into(), text.into()),
        ]
    };
    let hidden: &[(&str, &str)] = &[
        (INCLUDE_IN_TOKEN_SCOPE, "false"),
        ("display.on.consent.screen", "false"),
    ];
    let with = |mut s: ClientScopeRecord, attrs: Vec<(String, String)>| {
        s.attributes = attrs.into_iter().collect();
        s
    };
    let profile = [
        ("family name", "lastName", "family_name", "String"),
        ("given name", "firstName", "given_name", "String"),
        ("middle name", "middleName", "middle_name", "String"),
        ("nickname", "nickname", "nickname", "String"),
        ("username", "username", "preferred_username", "String"),
        ("profile", "profile", "profile", "String"),
        ("picture", "picture", "picture", "String"),
        ("website", "website", "website", "String"),
        ("gender", "gender", "gender", "String"),
        ("birthdate", "birthdate", "birthdate", "String"),
        ("zoneinfo", "zoneinfo", "zoneinfo", "String"),
        ("locale", "locale", "locale", "String"),
        ("updated at", "updatedAt", "updated_at", "long"),
    ];
    let mut profile_mappers = vec![mapper("full name", "oidc-full-name-mapper", &ALL_TOKENS)];
    profile_mappers.extend(profile.iter().map(|(n, a, c, t)| attribute(n, a, c, t)));
    let mut email_verified = vec![
        ("user.attribute", "emailVerified"),
        ("claim.name", "email_verified"),
        ("jsonType.label", "boolean"),
    ];
    email_verified.extend(ALL_TOKENS);
    let mut address = vec![
        ("user.attribute.formatted", "formatted"),
        ("user.attribute.country", "country"),
        ("user.attribute.postal_code", "postal_code"),
        ("user.attribute.street", "street"),
        ("user.attribute.region", "region"),
        ("user.attribute.locality", "locality"),
    ];
    address.extend(ALL_TOKENS);
    let access_only: &[(&str, &str)] = &[
        ("introspection.token.claim", "true"),
        ("access.token.claim", "true"),
    ];
    let role_claims = |claim: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            ("user.attribute", "foo"),
            ("claim.name", claim),
            ("jsonType.label", "String"),
            ("multivalued", "true"),
            ("introspection.token.claim", "true"),
            ("access.token.claim", "true"),
        ]
    };
    let mut groups = role_claims("groups");
    groups.push(("id.token.claim", "true"));
    groups.push(("userinfo.token.claim", "true"));
    vec![
        (
            with(
                scope("profile", "OpenID Connect built-in scope: profile", &[], profile_mappers),
                shown("${profileScopeConsentText}"),
            ),
            true,
        ),
        (
            with(
                scope(
                    "email",
                    "OpenID Connect built-in scope: email",
                    &[],
                    vec![
                        attribute("email", "email", "email", "String"),
                        mapper(
                            "email verified",
                            "oidc-usermodel-property-mapper",
                            &email_verified,
                        ),
                    ],
                ),
                shown("${emailScopeConsentText}"),
            ),
            true,
        ),
        (
            with(
                scope(
                    "roles",
                    "OpenID Connect scope for add user roles to the access token",
                    &[],
                    vec![
                        mapper(
                            "realm roles",
                            "oidc-usermodel-realm-role-mapper",
                            &role_claims("realm_access.roles"),
                        ),
                        mapper(
                            "client roles",
                            "oidc-usermodel-client-role-mapper",
                            &role_claims("resource_access.${client_id}.roles"),
                        ),
                        mapper(
                            "audience resolve",
                            "oidc-audience-resolve-mapper",
                            access_only,
                        ),
                    ],
                ),
                vec![
                    (INCLUDE_IN_TOKEN_SCOPE.into(), "false".into()),
                    ("display.on.consent.screen".into(), "true".into()),
                    ("consent.screen.text".into(), "${rolesScopeConsentText}".into()),
                ],
            ),
            true,
        ),
        (
            scope(
                "web-origins",
                "OpenID Connect scope for add allowed web origins to the access token",
                hidden,
                vec![mapper(
                    "allowed web origins",
                    "oidc-allowed-origins-mapper",
                    access_only,
                )],
            ),
            true,
        ),
        (
            scope(
                "acr",
                "OpenID Connect scope for add acr (authentication context class reference) to the token",
                hidden,
                vec![mapper(
                    "acr loa level",
                    "oidc-acr-mapper",
                    &[
                        ("introspection.token.claim", "true"),
                        ("id.token.claim", "true"),
                        ("access.token.claim", "true"),
                    ],
                )],
            ),
            true,
        ),
        (
            scope(
                "basic",
                "OpenID Connect scope for add all basic claims to the token",
                hidden,
                vec![
                    mapper("sub", "oidc-sub-mapper", access_only),
                    mapper(
                        "auth_time",
                        "oidc-usersessionmodel-note-mapper",
                        &[
                            ("user.session.note", "AUTH_TIME"),
                            ("claim.name", "auth_time"),
                            ("jsonType.label", "long"),
                            ("introspection.token.claim", "true"),
                            ("id.token.claim", "true"),
                            ("access.token.claim", "true"),
                        ],
                    ),
                ],
            ),
            true,
        ),
        (
            with(
                scope(
                    "address",
                    "OpenID Connect built-in scope: address",
                    &[],
                    vec![mapper("address", "oidc-address-mapper", &address)],
                ),
                shown("${addressScopeConsentText}"),
            ),
            false,
        ),
        (
            with(
                scope(
                    "phone",
                    "OpenID Connect built-in scope: phone",
                    &[],
                    vec![
                        attribute("phone number", "phoneNumber", "phone_number", "String"),
                        attribute(
                            "phone number verified",
                            "phoneNumberVerified",
                            "phone_number_verified",
                            "boolean",
                        ),
                    ],
                ),
                shown("${phoneScopeConsentText}"),
            ),
            false,
        ),
        (
            with(
                scope(
                    OFFLINE_ACCESS,
                    "OpenID Connect built-in scope: offline_access",
                    &[],
                    vec![],
                ),
                vec![
                    ("display.on.consent.screen".into(), "true".into()),
                    (
                        "consent.screen.text".into(),
                        "${offlineAccessScopeConsentText}".into(),
                    ),
                ],
            ),
            false,
        ),
        (
            scope(
                "microprofile-jwt",
                "Microprofile - JWT built-in scope",
                &[
                    (INCLUDE_IN_TOKEN_SCOPE, "true"),
                    ("display.on.consent.screen", "false"),
                ],
                vec![
                    attribute("upn", "username", "upn", "String"),
                    mapper("groups", "oidc-usermodel-realm-role-mapper", &groups),
                ],
            ),
            false,
        ),
    ]
}

/// Create the built-in scopes a realm lacks (by name) and, when the realm has no default
/// scope lists yet, make them its defaults as Keycloak does. `offline_access` gets the
/// `offline_access` role as its scope mapping. Returns the realm as stored.
pub fn ensure_builtin(w: &mut Write, realm: &RealmRecord) -> Result<RealmRecord, StoreError> {
    let mut realm = w.realm(&realm.id)?.ok_or(StoreError::Missing("realm"))?;
    let mut defaults = Vec::new();
    let mut optional = Vec::new();
    for (mut record, is_default) in builtin() {
        let id = match w.client_scope_by_name(&realm.id, &record.name)? {
            Some(existing) => existing.id,
            None => {
                if record.name == OFFLINE_ACCESS {
                    if let Some(role) = w.role_by_name(&realm.id, &realm.id, OFFLINE_ACCESS)? {
                        record.scope_role_ids.push(role.id);
                    }
                }
                w.put_client_scope(&realm.id, &record)?;
                record.id
            }
        };
        if is_default {
            defaults.push(id);
        } else {
            optional.push(id);
        }
    }
    if realm.default_client_scope_ids.is_none() {
        realm.default_client_scope_ids = Some(defaults);
        realm.optional_client_scope_ids = optional;
        w.put_realm(&realm)?;
    }
    Ok(realm)
}

/// Give the built-in `offline_access` scope its role (a realm import creates the scopes
/// before the roles of the file exist).
pub fn map_offline_access(w: &mut Write, realm_id: &str) -> Result<(), StoreError> {
    let (Some(mut scope), Some(role)) = (
        w.client_scope_by_name(realm_id, OFFLINE_ACCESS)?,
        w.role_by_name(realm_id, realm_id, OFFLINE_ACCESS)?,
    ) else {
        return Ok(());
    };
    if !scope.scope_role_ids.contains(&role.id) {
        scope.scope_role_ids.push(role.id);
        w.put_client_scope(realm_id, &scope)?;
    }
    Ok(())
}

/// Give a new client the realm's default and optional scopes.
pub fn attach_realm_defaults(
    w: &Write,
    realm_id: &str,
    client: &mut ClientRecord,
) -> Result<(), StoreError> {
    if let Some(realm) = w.realm(realm_id)? {
        client.default_client_scopes = realm.default_client_scope_ids.clone().unwrap_or_default();
        client.optional_client_scopes = realm.optional_client_scope_ids.clone();
    }
    Ok(())
}

/// Scope ids of the names given (a representation's `defaultClientScopes`); names the realm
/// does not have are skipped, as Keycloak does.
pub fn ids_of_names<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    names: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for name in names {
        if let Some(s) = read.client_scope_by_name(realm_id, name)? {
            if !out.contains(&s.id) {
                out.push(s.id);
            }
        }
    }
    Ok(out)
}

/// Names of scope ids, in order (for representations).
pub fn names_of_ids<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(s) = read.client_scope(realm_id, id)? {
            out.push(s.name);
        }
    }
    Ok(out)
}

/// Bring realms stored before client scopes existed up to date: the built-in scopes, the
/// realm's default lists, and each client's scopes (their old lists held names; a client
/// without any gets the realm's defaults). Runs at every start; a no-op once done.
pub fn upgrade(w: &mut Write) -> Result<usize, StoreError> {
    let mut upgraded = 0;
    for realm in w.realms()? {
        if realm.default_client_scope_ids.is_some() {
            continue;
        }
        ensure_builtin(w, &realm)?;
        for mut client in w.clients(&realm.id)? {
            let default = ids_of_names(&**w, &realm.id, &client.default_client_scopes)?;
            let optional = ids_of_names(&**w, &realm.id, &client.optional_client_scopes)?;
            if default.is_empty() && optional.is_empty() {
                attach_realm_defaults(w, &realm.id, &mut client)?;
            } else {
                client.default_client_scopes = default;
                client.optional_client_scopes = optional;
            }
            w.put_client(&realm.id, &client)?;
        }
        upgraded += 1;
    }
    Ok(upgraded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[&str], include: bool) -> Vec<Arc<ClientScopeRecord>> {
        names
            .iter()
            .map(|n| {
                Arc::new(ClientScopeRecord {
                    id: format!("id-{n}"),
                    name: n.to_string(),
                    protocol: OPENID_CONNECT.into(),
                    attributes: [(INCLUDE_IN_TOKEN_SCOPE.to_string(), include.to_string())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                })
            })
            .collect()
    }

    #[test]
    fn claim_lists_openid_then_included_scopes() {
        let mut applied = named(&["profile", "email"], true);
        applied.extend(named(&["roles", "basic"], false));
        applied.extend(named(&["offline_access"], true));
        let scopes = Scopes {
            openid: true,
            offline_access: true,
            applied,
        };
        assert_eq!(scopes.to_claim(), "openid profile email offline_access");
    }

    #[test]
    fn builtin_scopes_are_keycloaks() {
        let all = builtin();
        let defaults: Vec<&str> = all
            .iter()
            .filter(|(_, d)| *d)
            .map(|(s, _)| s.name.as_str())
            .collect();
        assert_eq!(
            defaults,
            ["profile", "email", "roles", "web-origins", "acr", "basic"]
        );
        for (s, _) in &all {
            for m in &s.protocol_mappers {
                crate::idp::mappers::validate(m).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            }
        }
    }
}
