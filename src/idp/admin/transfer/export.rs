//! Export in Keycloak's realm file format: the realm with its clients, roles, groups and
//! keys, and users in pages (credentials with their hashes, role mappings, group paths).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::idp::admin::groups::group_path;
use crate::idp::admin::repr::{client_repr, client_scope_repr, realm_repr, role_repr, user_repr};
use crate::idp::keys;
use crate::store::{Read, RealmRecord, RoleRecord, StoreError};

use super::KEY_PROVIDER;

/// Role names by id, and clientId by client uuid, for writing role references.
struct Names {
    roles: HashMap<String, RoleRecord>,
    clients: HashMap<String, String>,
}

impl Names {
    fn load(read: &Read, realm: &RealmRecord) -> Result<Names, StoreError> {
        let mut roles = HashMap::new();
        let mut clients = HashMap::new();
        for r in read.roles(&realm.id, &realm.id)? {
            roles.insert(r.id.clone(), r);
        }
        for c in read.clients(&realm.id)? {
            for r in read.roles(&realm.id, &c.id)? {
                roles.insert(r.id.clone(), r);
            }
            clients.insert(c.id.clone(), c.client_id.clone());
        }
        Ok(Names { roles, clients })
    }

    /// `(realm role names, {clientId: client role names})` of some role ids, sorted.
    fn split(&self, ids: &[String]) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
        let mut realm_roles = Vec::new();
        let mut client_roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in ids {
            if let Some(r) = self.roles.get(id) {
                if r.client_role {
                    if let Some(cid) = self.clients.get(&r.container_id) {
                        client_roles
                            .entry(cid.clone())
                            .or_default()
                            .push(r.name.clone());
                    }
                } else {
                    realm_roles.push(r.name.clone());
                }
            }
        }
        realm_roles.sort();
        for v in client_roles.values_mut() {
            v.sort();
        }
        (realm_roles, client_roles)
    }

    fn role_export(&self, r: &RoleRecord) -> Value {
        let mut v = role_repr(r);
        if !r.composites.is_empty() {
            let (realm_roles, client_roles) = self.split(&r.composites);
            let mut c = json!({});
            if !realm_roles.is_empty() {
                c["realm"] = json!(realm_roles);
            }
            if !client_roles.is_empty() {
                c["client"] = json!(client_roles);
            }
            v["composites"] = c;
        }
        v
    }
}

fn group_export(
    read: &Read,
    realm: &RealmRecord,
    names: &Names,
    g: &crate::store::GroupRecord,
) -> Result<Value, StoreError> {
    let path = group_path(read, &realm.id, g)?;
    let children = read.group_children(&realm.id, Some(&g.id))?;
    let (realm_roles, client_roles) = names.split(&read.group_role_ids(&realm.id, &g.id)?);
    let mut subs = Vec::new();
    for c in &children {
        subs.push(group_export(read, realm, names, c)?);
    }
    Ok(json!({
        "id": g.id, "name": g.name, "path": path, "attributes": g.attributes,
        "realmRoles": realm_roles, "clientRoles": client_roles, "subGroups": subs,
    }))
}

/// The realm without users (users are exported in pages with [`export_users`]).
pub fn export_realm(read: &Read, realm: &RealmRecord) -> Result<Value, StoreError> {
    let names = Names::load(read, realm)?;
    let mut v = realm_repr(realm);
    // A file export carries secrets (as it carries keys and password hashes).
    v["smtpServer"] = serde_json::to_value(&realm.smtp_server).unwrap_or_default();
    let realm_roles: Vec<Value> = read
        .roles(&realm.id, &realm.id)?
        .iter()
        .map(|r| names.role_export(r))
        .collect();
    let mut client_roles = serde_json::Map::new();
    let clients = read.clients(&realm.id)?;
    for c in &clients {
        let list: Vec<Value> = read
            .roles(&realm.id, &c.id)?
            .iter()
            .map(|r| names.role_export(r))
            .collect();
        client_roles.insert(c.client_id.clone(), Value::Array(list));
    }
    v["roles"] = json!({"realm": realm_roles, "client": client_roles});
    let default_role = crate::idp::realm::default_role_name(&realm.name);
    if let Some(r) = read.role_by_name(&realm.id, &realm.id, &default_role)? {
        v["defaultRole"] = names.role_export(&r);
    }
    let mut groups = Vec::new();
    for g in read.group_children(&realm.id, None)? {
        groups.push(group_export(read, realm, &names, &g)?);
    }
    v["groups"] = Value::Array(groups);
    let mut defaults = Vec::new();
    for id in &realm.default_group_ids {
        if let Some(g) = read.group(&realm.id, id)? {
            defaults.push(group_path(read, &realm.id, &g)?);
        }
    }
    v["defaultGroups"] = json!(defaults);
    // Keycloak's layout: realm roles in `scopeMappings`, client roles in
    // `clientScopeMappings` under the roles' clientId.
    let mut scope_mappings = Vec::new();
    let mut client_scope_mappings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for c in &clients {
        let (realm_roles, client_roles) = names.split(&c.scope_role_ids);
        if !realm_roles.is_empty() {
            scope_mappings.push(json!({"client": c.client_id, "roles": realm_roles}));
        }
        for (container, roles) in client_roles {
            client_scope_mappings
                .entry(container)
                .or_default()
                .push(json!({"client": c.client_id, "roles": roles}));
        }
    }
    let scopes = read.client_scopes(&realm.id)?;
    for s in &scopes {
        let (realm_roles, client_roles) = names.split(&s.scope_role_ids);
        if !realm_roles.is_empty() {
            scope_mappings.push(json!({"clientScope": s.name, "roles": realm_roles}));
        }
        for (container, roles) in client_roles {
            client_scope_mappings
                .entry(container)
                .or_default()
                .push(json!({"clientScope": s.name, "roles": roles}));
        }
    }
    v["clientScopes"] = Value::Array(scopes.iter().map(client_scope_repr).collect());
    let scope_names: BTreeMap<String, String> = scopes
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let listed = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| scope_names.get(id).cloned())
            .collect()
    };
    v["defaultDefaultClientScopes"] = json!(listed(
        realm
            .default_client_scope_ids
            .as_deref()
            .unwrap_or_default()
    ));
    v["defaultOptionalClientScopes"] = json!(listed(&realm.optional_client_scope_ids));
    v["scopeMappings"] = Value::Array(scope_mappings);
    let flows = read.auth_flows(&realm.id)?;
    let configs = read.authenticator_configs(&realm.id)?;
    let flows_by_id: HashMap<String, crate::store::AuthFlowRecord> =
        flows.iter().map(|f| (f.id.clone(), f.clone())).collect();
    let configs_by_id: HashMap<String, crate::store::AuthenticatorConfigRecord> =
        configs.iter().map(|c| (c.id.clone(), c.clone())).collect();
    v["authenticationFlows"] = Value::Array(
        flows
            .iter()
            .map(|f| crate::idp::admin::flows::flow_repr(f, &flows_by_id, &configs_by_id))
            .collect(),
    );
    v["authenticatorConfig"] = Value::Array(
        configs
            .iter()
            .map(|c| json!({"id": c.id, "alias": c.alias, "config": c.config}))
            .collect(),
    );
    v["clientScopeMappings"] = json!(client_scope_mappings);
    let actions: Vec<Value> = crate::idp::required_actions::of(realm)
        .iter()
        .map(crate::idp::admin::required_actions::repr)
        .collect();
    v["requiredActions"] = Value::Array(actions);
    v["clients"] = Value::Array(
        clients
            .iter()
            .map(|c| client_repr(c, &scope_names))
            .collect(),
    );
    let key_components: Vec<Value> = read
        .signing_keys(&realm.id)?
        .iter()
        .map(|k| {
            json!({
                "id": k.kid,
                "name": format!("{}-generated", k.algorithm.to_lowercase()),
                "providerId": if k.algorithm == "RS256" { "rsa-generated" } else { "ecdsa-generated" },
                "subComponents": {},
                "config": {
                    "privateKey": [k.private_key_pkcs8], "kid": [k.kid], "algorithm": [k.algorithm],
                    "active": [(k.status == keys::ACTIVE).to_string()], "priority": ["100"],
                },
            })
        })
        .collect();
    let mut components = serde_json::Map::new();
    components.insert(KEY_PROVIDER.into(), Value::Array(key_components));
    // The other components (an LDAP provider with its mappers, ...) as Keycloak nests them:
    // by provider type, each with its sub-components by type.
    let stored = read.objects(&realm.id, crate::idp::ldap::COMPONENT_KIND)?;
    for c in stored.iter().filter(|c| c["parentId"] == realm.id.as_str()) {
        let kind = c["providerType"].as_str().unwrap_or_default().to_string();
        let entry = components
            .entry(kind)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(component_export(c, &stored));
        }
    }
    v["components"] = Value::Object(components);
    v["identityProviders"] = Value::Array(read.objects(&realm.id, crate::idp::broker::IDP_KIND)?);
    v["identityProviderMappers"] =
        Value::Array(read.objects(&realm.id, crate::idp::broker::mappers::MAPPER_KIND)?);
    Ok(v)
}

/// A stored component in export form: without `providerType` and `parentId` (its place
/// says them), with its sub-components.
fn component_export(c: &Value, all: &[Value]) -> Value {
    let mut out = c.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("providerType");
        o.remove("parentId");
    }
    let mut subs = serde_json::Map::new();
    for s in all.iter().filter(|s| s["parentId"] == c["id"]) {
        let kind = s["providerType"].as_str().unwrap_or_default().to_string();
        if let Value::Array(list) = subs.entry(kind).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(component_export(s, all));
        }
    }
    out["subComponents"] = Value::Object(subs);
    out
}

/// One page of users in export form (credentials, role mappings, groups).
pub fn export_users(
    read: &Read,
    realm: &RealmRecord,
    first: usize,
    max: usize,
) -> Result<Vec<Value>, StoreError> {
    let names = Names::load(read, realm)?;
    let mut out = Vec::new();
    for u in read.users_page(&realm.id, first, max)? {
        let mut v = user_repr(&u, false);
        if let Some(cid) = &u.service_account_client_id {
            v["serviceAccountClientId"] =
                names.clients.get(cid).cloned().unwrap_or_default().into();
        }
        let creds: Vec<Value> = read
            .credentials(&realm.id, &u.id)?
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "type": c.kind, "userLabel": c.user_label, "createdDate": c.created_date,
                    "secretData": c.secret_data, "credentialData": c.credential_data, "priority": c.priority,
                    "temporary": c.temporary,
                })
            })
            .collect();
        v["credentials"] = Value::Array(creds);
        let (realm_roles, client_roles) = names.split(&read.user_role_ids(&realm.id, &u.id)?);
        v["realmRoles"] = json!(realm_roles);
        v["clientRoles"] = json!(client_roles);
        let mut paths = Vec::new();
        for gid in read.user_group_ids(&realm.id, &u.id)? {
            if let Some(g) = read.group(&realm.id, &gid)? {
                paths.push(group_path(read, &realm.id, &g)?);
            }
        }
        paths.sort();
        v["groups"] = json!(paths);
        let links = read.federated_identities(&realm.id, &u.id)?;
        if !links.is_empty() {
            v["federatedIdentities"] = Value::Array(links);
        }
        out.push(v);
    }
    Ok(out)
}
