//! Realm import and export in Keycloak's JSON format: used by `POST /admin/realms` with a
//! full representation, `partialImport`, `partial-export`, and the `import`/`export`
//! commands. Ids are kept, so an export imported into an empty store exports the same
//! again; credentials travel as Keycloak's `secretData`/`credentialData` (hashes, OTP
//! secrets), and the realm's signing keys travel as key-provider components so tokens
//! stay valid across a move.

mod export;

pub use export::{export_realm, export_users};

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::random_id;
use crate::idp::admin::error::AdminError;
use crate::idp::realm::{self, RealmError};
use crate::idp::{client_scopes, keys};
use crate::store::{RealmRecord, SigningKeyRecord, Write};

use super::repr::{CompositesInput, RealmInput, RoleInput, UserInput};
use super::{clients, groups, roles, users};

/// The component type of realm signing keys in exports.
pub(super) const KEY_PROVIDER: &str = "org.keycloak.keys.KeyProvider";

/// What to do with a resource that already exists (partialImport's `ifResourceExists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Fail,
    Skip,
    Overwrite,
    /// Declarative apply: change what differs in place (ids, sessions and mappings kept).
    Update,
}

impl IfExists {
    pub fn parse(s: &str) -> Option<IfExists> {
        match s {
            "FAIL" => Some(IfExists::Fail),
            "SKIP" => Some(IfExists::Skip),
            "OVERWRITE" => Some(IfExists::Overwrite),
            _ => None,
        }
    }
}

/// The parts of an export that the typed inputs do not cover.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Extras {
    components: BTreeMap<String, Vec<ComponentInput>>,
    #[serde(rename = "authenticationFlows")]
    authentication_flows: Option<Vec<FlowExport>>,
    #[serde(rename = "authenticatorConfig")]
    authenticator_config: Vec<ConfigExport>,
    #[serde(rename = "identityProviders")]
    identity_providers: Vec<Value>,
    #[serde(rename = "identityProviderMappers")]
    identity_provider_mappers: Vec<Value>,
}

/// An `authenticationFlows` entry of a realm file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FlowExport {
    id: Option<String>,
    alias: String,
    description: Option<String>,
    provider_id: Option<String>,
    top_level: Option<bool>,
    built_in: bool,
    authentication_executions: Vec<ExecutionExport>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ExecutionExport {
    authenticator: Option<String>,
    authenticator_flow: bool,
    flow_alias: Option<String>,
    requirement: Option<String>,
    priority: i64,
    authenticator_config: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigExport {
    id: Option<String>,
    alias: String,
    config: BTreeMap<String, Value>,
}

/// A realm file's flows and authenticator configs (replacing the built-in ones it names).
fn import_flows(w: &mut Write, realm: &RealmRecord, extras: &Extras) -> Result<(), AdminError> {
    let Some(list) = &extras.authentication_flows else {
        return Ok(());
    };
    let mut config_ids = BTreeMap::new();
    for c in &extras.authenticator_config {
        let record = crate::store::AuthenticatorConfigRecord {
            id: c
                .id
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(random_id),
            alias: c.alias.clone(),
            config: c
                .config
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
        };
        config_ids.insert(c.alias.clone(), record.id.clone());
        w.put_authenticator_config(&realm.id, &record)?;
    }
    let ids: BTreeMap<&str, String> = list
        .iter()
        .map(|f| {
            (
                f.alias.as_str(),
                f.id.clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(random_id),
            )
        })
        .collect();
    for f in list {
        if f.alias.trim().is_empty() {
            return Err(AdminError::BadRequest("A flow without an alias".into()));
        }
        let mut executions = Vec::new();
        for e in &f.authentication_executions {
            let flow_id = match (&e.flow_alias, e.authenticator_flow) {
                (Some(alias), true) => Some(ids.get(alias.as_str()).cloned().ok_or_else(|| {
                    AdminError::BadRequest(format!(
                        "Flow {}: sub-flow {alias} is not in the file",
                        f.alias
                    ))
                })?),
                _ => None,
            };
            executions.push(crate::store::ExecutionRecord {
                id: random_id(),
                authenticator: e.authenticator.clone(),
                flow_id,
                requirement: e
                    .requirement
                    .clone()
                    .unwrap_or_else(|| crate::idp::flows::DISABLED.into()),
                priority: e.priority,
                config_id: e
                    .authenticator_config
                    .as_ref()
                    .and_then(|a| config_ids.get(a).cloned()),
            });
        }
        executions.sort_by_key(|e| e.priority);
        w.put_auth_flow(
            &realm.id,
            &crate::store::AuthFlowRecord {
                id: ids[f.alias.as_str()].clone(),
                alias: f.alias.clone(),
                description: f.description.clone().unwrap_or_default(),
                provider_id: f
                    .provider_id
                    .clone()
                    .unwrap_or_else(|| crate::idp::flows::BASIC_FLOW.into()),
                top_level: f.top_level.unwrap_or(true),
                built_in: f.built_in,
                executions,
            },
        )?;
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ComponentInput {
    id: Option<String>,
    #[serde(rename = "providerId")]
    provider_id: String,
    config: BTreeMap<String, Vec<String>>,
}

fn realm_error(e: RealmError) -> AdminError {
    match e {
        RealmError::Exists => {
            AdminError::Conflict("Conflict detected. See logs for details".into())
        }
        RealmError::Store(s) => AdminError::from(s),
        other => AdminError::Internal(other.to_string()),
    }
}

/// Signing keys carried by an export (ours: `privateKey` = base64 PKCS#8 DER).
fn imported_keys(extras: &Extras, now: i64) -> Vec<SigningKeyRecord> {
    let mut out = Vec::new();
    for c in extras.components.get(KEY_PROVIDER).into_iter().flatten() {
        let get = |k: &str| c.config.get(k).and_then(|v| v.first()).cloned();
        let (Some(private), Some(algorithm)) = (get("privateKey"), get("algorithm")) else {
            continue;
        };
        if !matches!(algorithm.as_str(), "RS256" | "ES256") || STANDARD.decode(&private).is_err() {
            continue;
        }
        out.push(SigningKeyRecord {
            kid: get("kid")
                .or_else(|| c.id.clone())
                .unwrap_or_else(random_id),
            algorithm,
            private_key_pkcs8: private,
            status: if get("active").as_deref() == Some("false") {
                keys::PASSIVE.into()
            } else {
                keys::ACTIVE.into()
            },
            created_at: now,
            retire_at: None,
        });
    }
    out
}

/// Import a whole realm representation inside the caller's transaction.
pub fn import_realm(w: &mut Write, body: &Value, now: i64) -> Result<RealmRecord, AdminError> {
    let input: RealmInput = serde_json::from_value(body.clone())
        .map_err(|e| AdminError::BadRequest(format!("Invalid realm representation: {e}")))?;
    let extras: Extras = serde_json::from_value(body.clone()).unwrap_or_default();
    let name = input
        .realm
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::BadRequest("Realm name cannot be empty".into()))?;
    let mut record = RealmRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_default(),
        name,
        ..Default::default()
    };
    input.apply(&mut record).map_err(AdminError::BadRequest)?;
    let realm = realm::put_new_realm(w, record, now).map_err(realm_error)?;
    let imported = imported_keys(&extras, now);
    if imported.iter().any(|k| k.status == keys::ACTIVE) {
        for k in &imported {
            w.put_signing_key(&realm.id, k).map_err(AdminError::from)?;
        }
    } else {
        keys::create_realm_keys(w, &realm.id, now)
            .map_err(|e| AdminError::Internal(e.to_string()))?;
    }
    let seeded = import_client_scopes(w, &realm, &input)?;
    import_flows(w, &realm, &extras)?;
    // Identity providers before the users whose links name them.
    for idp in &extras.identity_providers {
        super::providers::import_idp(w, &realm, idp)?;
    }
    for m in &extras.identity_provider_mappers {
        super::providers::import_idp_mapper(w, &realm, m)?;
    }
    // User storage providers (with their mappers) before the users they federate.
    if let Some(components) = body.get("components") {
        super::providers::import_components(w, &realm, components, KEY_PROVIDER)?;
    }
    // As stored now (with its scope lists): the writes below start from it.
    let realm = w
        .realm(&realm.id)?
        .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
    let contents = RealmInput {
        client_scopes: None, // imported above
        ..input.clone()
    };
    import_contents(w, &realm, &contents, now, IfExists::Fail)?;
    // Keycloak's built-in roles and clients where the file lacks them, before the scope
    // mappings that may name them.
    realm::ensure_defaults(w, &realm).map_err(realm_error)?;
    import_scope_mappings(w, &realm, &input)?;
    let mut realm = set_default_groups(w, realm, input.default_groups.as_deref())?;
    if let Some(actions) = input.required_action_records() {
        realm.required_actions = Some(actions);
        w.put_realm(&realm).map_err(AdminError::from)?;
    }
    if seeded {
        client_scopes::map_offline_access(w, &realm.id)?;
    }
    let realm = w
        .realm(&realm.id)?
        .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
    super::flows::check_bindings(&**w, &realm)?;
    Ok(realm)
}

/// A realm file's client scopes, or (without any) Keycloak's built-in ones, and the realm's
/// default lists, before the clients that name them. Returns whether the built-in scopes
/// were created.
fn import_client_scopes(
    w: &mut Write,
    realm: &RealmRecord,
    input: &RealmInput,
) -> Result<bool, AdminError> {
    let seeded = match &input.client_scopes {
        None => {
            client_scopes::ensure_builtin(w, realm)?;
            true
        }
        Some(list) => {
            for s in list {
                let mut scope = crate::store::ClientScopeRecord {
                    id: s
                        .id
                        .clone()
                        .filter(|i| !i.is_empty())
                        .unwrap_or_else(random_id),
                    ..Default::default()
                };
                s.apply(&mut scope, true)
                    .and_then(|()| s.set_mappers(&mut scope))
                    .map_err(AdminError::BadRequest)?;
                if w.client_scope_by_name(&realm.id, &scope.name)?.is_some()
                    || w.client_scope(&realm.id, &scope.id)?.is_some()
                {
                    return Err(AdminError::Conflict(format!(
                        "Client Scope {} already exists",
                        scope.name
                    )));
                }
                w.put_client_scope(&realm.id, &scope)?;
            }
            false
        }
    };
    let mut stored = w
        .realm(&realm.id)?
        .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
    if let Some(names) = &input.default_default_client_scopes {
        stored.default_client_scope_ids =
            Some(client_scopes::ids_of_names(&**w, &realm.id, names)?);
    } else if !seeded {
        stored.default_client_scope_ids = Some(Vec::new());
    }
    if let Some(names) = &input.default_optional_client_scopes {
        stored.optional_client_scope_ids = client_scopes::ids_of_names(&**w, &realm.id, names)?;
    }
    w.put_realm(&stored)?;
    Ok(seeded)
}

/// A realm file's `scopeMappings` and `clientScopeMappings` onto its clients.
fn import_scope_mappings(
    w: &mut Write,
    realm: &RealmRecord,
    input: &RealmInput,
) -> Result<(), AdminError> {
    // (holder: a clientId or a client scope name, container, role)
    let mut wanted: Vec<(Holder, String, String)> = Vec::new();
    let holder = |m: &super::repr::ScopeMappingInput| match &m.client_scope {
        Some(scope) => Holder::Scope(scope.clone()),
        None => Holder::Client(m.client.clone().unwrap_or_default()),
    };
    for m in input.scope_mappings.iter().flatten() {
        for role in &m.roles {
            wanted.push((holder(m), realm.id.clone(), role.clone()));
        }
    }
    for (container, list) in input.client_scope_mappings.iter().flatten() {
        let container = w
            .client_by_client_id(&realm.id, container)?
            .ok_or_else(|| AdminError::BadRequest(format!("Client {container} not found")))?;
        for m in list {
            for role in &m.roles {
                wanted.push((holder(m), container.id.clone(), role.clone()));
            }
        }
    }
    for (holder, container, role_name) in wanted {
        let role = w
            .role_by_name(&realm.id, &container, &role_name)?
            .ok_or_else(|| AdminError::BadRequest(format!("Role {role_name} not found")))?;
        match holder {
            Holder::Client(client_id) => {
                let mut client =
                    w.client_by_client_id(&realm.id, &client_id)?
                        .ok_or_else(|| {
                            AdminError::BadRequest(format!("Client {client_id} not found"))
                        })?;
                if !client.scope_role_ids.contains(&role.id) {
                    client.scope_role_ids.push(role.id);
                    w.put_client(&realm.id, &client).map_err(AdminError::from)?;
                }
            }
            Holder::Scope(name) => {
                let mut scope = w.client_scope_by_name(&realm.id, &name)?.ok_or_else(|| {
                    AdminError::BadRequest(format!("Client scope {name} not found"))
                })?;
                if !scope.scope_role_ids.contains(&role.id) {
                    scope.scope_role_ids.push(role.id);
                    w.put_client_scope(&realm.id, &scope)?;
                }
            }
        }
    }
    Ok(())
}

/// One client scope of a representation into an existing realm, by name.
fn import_client_scope(
    w: &mut Write,
    realm: &RealmRecord,
    input: &super::repr::ClientScopeInput,
    policy: IfExists,
    counts: &mut ImportCounts,
) -> Result<(), AdminError> {
    let name = input.name.clone().unwrap_or_default();
    let existing = w.client_scope_by_name(&realm.id, &name)?;
    let (mut scope, creating) = match (existing, policy) {
        (Some(_), IfExists::Skip) => {
            counts.record("client scope", &name, Outcome::Skipped);
            return Ok(());
        }
        (Some(_), IfExists::Fail) => {
            return Err(AdminError::Conflict(format!(
                "Client Scope {name} already exists"
            )))
        }
        (Some(s), _) => (s, false),
        (None, _) => (
            crate::store::ClientScopeRecord {
                id: input
                    .id
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(random_id),
                ..Default::default()
            },
            true,
        ),
    };
    let before = scope.clone();
    input
        .apply(&mut scope, creating)
        .and_then(|()| input.set_mappers(&mut scope))
        .map_err(AdminError::BadRequest)?;
    let outcome = if creating {
        Outcome::Added
    } else if scope == before && policy == IfExists::Update {
        Outcome::Same
    } else {
        Outcome::Changed
    };
    if outcome != Outcome::Same {
        w.put_client_scope(&realm.id, &scope)?;
    }
    counts.record("client scope", &name, outcome);
    Ok(())
}

/// Who a realm file's scope mapping is for.
enum Holder {
    Client(String),
    Scope(String),
}

/// The realm's default groups from their paths (a representation's `defaultGroups`).
pub fn set_default_groups(
    w: &mut Write,
    mut realm: RealmRecord,
    paths: Option<&[String]>,
) -> Result<RealmRecord, AdminError> {
    let Some(paths) = paths else {
        return Ok(realm);
    };
    let mut ids = Vec::new();
    for path in paths {
        let group = groups::find_by_path(&*w, &realm.id, path)?
            .ok_or_else(|| AdminError::BadRequest(format!("Default group {path} not found")))?;
        if !ids.contains(&group.id) {
            ids.push(group.id);
        }
    }
    realm.default_group_ids = ids;
    w.put_realm(&realm).map_err(AdminError::from)?;
    Ok(realm)
}

/// Bring an existing group (and its subgroups) in line with `input`: attributes, realm
/// roles added, missing subgroups created.
fn update_group(
    w: &mut Write,
    realm: &RealmRecord,
    existing: &crate::store::GroupRecord,
    input: &super::repr::GroupInput,
) -> Result<Outcome, AdminError> {
    let mut changed = false;
    if let Some(attrs) = &input.attributes {
        let attrs: BTreeMap<String, Vec<String>> = attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_vec()))
            .collect();
        if attrs != existing.attributes {
            let mut g = existing.clone();
            g.attributes = attrs;
            w.put_group(&realm.id, &g).map_err(AdminError::from)?;
            changed = true;
        }
    }
    let held = w.group_role_ids(&realm.id, &existing.id)?;
    for name in input.realm_roles.iter().flatten() {
        let role = w
            .role_by_name(&realm.id, &realm.id, name)?
            .ok_or_else(|| AdminError::NotFound(format!("Role not found: {name}")))?;
        if !held.contains(&role.id) {
            w.grant_group_role(&realm.id, &existing.id, &role.id)
                .map_err(AdminError::from)?;
            changed = true;
        }
    }
    for sub in input.sub_groups.iter().flatten() {
        let sub_name = sub.name.clone().unwrap_or_default();
        let child = w
            .group_children(&realm.id, Some(&existing.id))?
            .into_iter()
            .find(|c| c.name == sub_name);
        match child {
            Some(c) => changed |= update_group(w, realm, &c, sub)? == Outcome::Changed,
            None => {
                groups::create_tree(w, realm, Some(&existing.id), sub)?;
                changed = true;
            }
        }
    }
    Ok(if changed {
        Outcome::Changed
    } else {
        Outcome::Same
    })
}

/// Roles, clients, groups and users of a representation into an existing realm.
/// Returns how many resources were added, skipped and overwritten.
pub fn import_contents(
    w: &mut Write,
    realm: &RealmRecord,
    input: &RealmInput,
    now: i64,
    policy: IfExists,
) -> Result<ImportCounts, AdminError> {
    let mut counts = ImportCounts::default();
    // Client scopes before the clients that name them.
    for s in input.client_scopes.iter().flatten() {
        import_client_scope(w, realm, s, policy, &mut counts)?;
    }
    // Realm roles first (composites later, once every role exists).
    if let Some(rs) = &input.roles {
        for role in &rs.realm {
            import_role(w, realm, &realm.id, false, role, policy, &mut counts)?;
        }
    }
    for client in input.clients.iter().flatten() {
        let existing = client
            .client_id
            .as_deref()
            .map(|id| w.client_by_client_id(&realm.id, id))
            .transpose()?
            .flatten();
        let name = client.client_id.clone().unwrap_or_default();
        match (existing, policy) {
            (None, _) => {
                clients::create_in(w, realm, client, now)?;
                counts.record("client", &name, Outcome::Added);
            }
            (Some(_), IfExists::Skip) => counts.record("client", &name, Outcome::Skipped),
            (Some(c), IfExists::Overwrite | IfExists::Update) => {
                let mut updated = c.clone();
                clients::apply_input(w, &realm.id, client, &mut updated, false)?;
                let same = updated == c;
                if !same {
                    w.put_client(&realm.id, &updated)
                        .map_err(AdminError::from)?;
                }
                let outcome = if same && policy == IfExists::Update {
                    Outcome::Same
                } else {
                    Outcome::Changed
                };
                counts.record("client", &name, outcome);
            }
            (Some(c), IfExists::Fail) => {
                return Err(AdminError::Conflict(format!(
                    "Client {} already exists",
                    c.client_id
                )));
            }
        }
    }
    if let Some(rs) = &input.roles {
        for (client_id, list) in &rs.client {
            let client = w
                .client_by_client_id(&realm.id, client_id)?
                .ok_or_else(|| {
                    AdminError::BadRequest(format!("Unknown client {client_id} in roles.client"))
                })?;
            for role in list {
                import_role(w, realm, &client.id, true, role, policy, &mut counts)?;
            }
        }
        let mut all: Vec<(String, &RoleInput)> =
            rs.realm.iter().map(|r| (realm.id.clone(), r)).collect();
        for (client_id, list) in &rs.client {
            if let Some(c) = w.client_by_client_id(&realm.id, client_id)? {
                all.extend(list.iter().map(|r| (c.id.clone(), r)));
            }
        }
        for (container, role) in all {
            if let (Some(name), Some(composites)) = (&role.name, &role.composites) {
                set_composites(w, realm, &container, name, composites)?;
            }
        }
    }
    for group in input.groups.iter().flatten() {
        let exists = group
            .name
            .as_deref()
            .map(|n| super::groups::find_by_path(&*w, &realm.id, n))
            .transpose()?
            .flatten();
        let name = group.name.clone().unwrap_or_default();
        match (exists, policy) {
            (None, _) => {
                groups::create_tree(w, realm, None, group)?;
                counts.record("group", &name, Outcome::Added);
            }
            (Some(_), IfExists::Skip) => counts.record("group", &name, Outcome::Skipped),
            (Some(g), IfExists::Overwrite) => {
                w.delete_group(&realm.id, &g.id)?;
                groups::create_tree(w, realm, None, group)?;
                counts.record("group", &name, Outcome::Changed);
            }
            (Some(g), IfExists::Update) => {
                let outcome = update_group(w, realm, &g, group)?;
                counts.record("group", &name, outcome);
            }
            (Some(_), IfExists::Fail) => {
                return Err(AdminError::Conflict(format!(
                    "Top level group named '{}' already exists.",
                    group.name.clone().unwrap_or_default()
                )));
            }
        }
    }
    for user in input.users.iter().flatten() {
        let existing = user
            .username
            .as_deref()
            .map(|u| w.user_by_username(&realm.id, u))
            .transpose()?
            .flatten();
        let name = user.username.clone().unwrap_or_default().to_lowercase();
        match (existing, policy) {
            (None, _) => {
                users::create_in(w, realm, user, now)?;
                counts.record("user", &name, Outcome::Added);
            }
            (Some(_), IfExists::Skip) => counts.record("user", &name, Outcome::Skipped),
            (Some(u), IfExists::Overwrite) => {
                w.delete_user(&realm.id, &u.id)?;
                users::create_in(w, realm, user, now)?;
                counts.record("user", &name, Outcome::Changed);
            }
            (Some(u), IfExists::Update) => {
                let changed = users::update_in(w, realm, &u, user, now)?;
                counts.record(
                    "user",
                    &name,
                    if changed {
                        Outcome::Changed
                    } else {
                        Outcome::Same
                    },
                );
            }
            (Some(_), IfExists::Fail) => {
                return Err(AdminError::Conflict(
                    "User exists with same username".into(),
                ))
            }
        }
    }
    Ok(counts)
}

/// Added / skipped / overwritten (or updated) / unchanged resources of an import, and a
/// line per change (`create user bob`, `update client web`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportCounts {
    pub added: usize,
    pub skipped: usize,
    pub overwritten: usize,
    pub unchanged: usize,
    pub changes: Vec<String>,
}

impl ImportCounts {
    fn record(&mut self, what: &str, name: &str, outcome: Outcome) {
        match outcome {
            Outcome::Added => {
                self.added += 1;
                self.changes.push(format!("create {what} {name}"));
            }
            Outcome::Changed => {
                self.overwritten += 1;
                self.changes.push(format!("update {what} {name}"));
            }
            Outcome::Same => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Added,
    Changed,
    Same,
    Skipped,
}

fn import_role(
    w: &mut Write,
    realm: &RealmRecord,
    container: &str,
    client_role: bool,
    role: &RoleInput,
    policy: IfExists,
    counts: &mut ImportCounts,
) -> Result<(), AdminError> {
    let name = role.name.clone().unwrap_or_default();
    match (w.role_by_name(&realm.id, container, &name)?, policy) {
        (None, _) => {
            roles::create_in(w, realm, container, client_role, role)?;
            counts.record("role", &name, Outcome::Added);
        }
        (Some(_), IfExists::Skip) => counts.record("role", &name, Outcome::Skipped),
        (Some(mut existing), IfExists::Overwrite | IfExists::Update) => {
            let same = existing.description == role.description;
            if !same {
                existing.description = role.description.clone();
                w.put_role(&realm.id, &existing).map_err(AdminError::from)?;
            }
            // OVERWRITE reports every existing resource as overwritten, as Keycloak does.
            let outcome = if same && policy == IfExists::Update {
                Outcome::Same
            } else {
                Outcome::Changed
            };
            counts.record("role", &name, outcome);
        }
        (Some(_), IfExists::Fail) => {
            return Err(AdminError::Conflict(format!(
                "Role with name {name} already exists"
            )))
        }
    }
    Ok(())
}

fn set_composites(
    w: &mut Write,
    realm: &RealmRecord,
    container: &str,
    name: &str,
    composites: &CompositesInput,
) -> Result<(), AdminError> {
    let Some(mut role) = w.role_by_name(&realm.id, container, name)? else {
        return Ok(());
    };
    for n in &composites.realm {
        let r = w.role_by_name(&realm.id, &realm.id, n)?.ok_or_else(|| {
            AdminError::BadRequest(format!("Composite role {n} of {name} does not exist"))
        })?;
        if !role.composites.contains(&r.id) {
            role.composites.push(r.id);
        }
    }
    for (client_id, names) in &composites.client {
        let client = w
            .client_by_client_id(&realm.id, client_id)?
            .ok_or_else(|| {
                AdminError::BadRequest(format!(
                    "Unknown client {client_id} in composites of {name}"
                ))
            })?;
        for n in names {
            let r = w.role_by_name(&realm.id, &client.id, n)?.ok_or_else(|| {
                AdminError::BadRequest(format!("Composite role {n} of {name} does not exist"))
            })?;
            if !role.composites.contains(&r.id) {
                role.composites.push(r.id);
            }
        }
    }
    w.put_role(&realm.id, &role).map_err(AdminError::from)
}

/// Import users (`{"users": [...]}` files of a directory export) into an existing realm.
pub fn import_users(
    w: &mut Write,
    realm: &RealmRecord,
    users: &[UserInput],
    now: i64,
    policy: IfExists,
) -> Result<ImportCounts, AdminError> {
    let input = RealmInput {
        users: Some(users.to_vec()),
        ..Default::default()
    };
    import_contents(w, realm, &input, now, policy)
}
