//! `/admin/realms/{realm}/authentication/...`: authentication flows, their executions and
//! authenticator configurations, and the provider lists, in Keycloak's shapes. What the
//! bound flows mean for a login is `idp::flows`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::flows::{
    self, provider, ALTERNATIVE, BASIC_FLOW, CLIENT_FLOW, CONDITIONAL, DISABLED, FORM_FLOW,
    PROVIDERS, REQUIRED,
};
use crate::store::{
    AuthFlowRecord, AuthenticatorConfigRecord, ExecutionRecord, RealmRecord, Txn, View, Write,
};

use super::{no_content, ok, Cx, Permission};

// ---- representations ----

/// `AuthenticationFlowRepresentation`, executions in the export form.
pub(crate) fn flow_repr(
    flow: &AuthFlowRecord,
    by_id: &HashMap<String, AuthFlowRecord>,
    configs: &HashMap<String, AuthenticatorConfigRecord>,
) -> Value {
    let executions: Vec<Value> = flow
        .executions
        .iter()
        .map(|e| {
            let sub = e.flow_id.as_ref().and_then(|id| by_id.get(id));
            let mut v = json!({
                "requirement": e.requirement,
                "priority": e.priority,
                "authenticatorFlow": sub.is_some(),
                "autheticatorFlow": sub.is_some(),
                "userSetupAllowed": false,
            });
            if let Some(a) = &e.authenticator {
                v["authenticator"] = a.clone().into();
            }
            if let Some(s) = sub {
                v["flowAlias"] = s.alias.clone().into();
            }
            if let Some(c) = e.config_id.as_ref().and_then(|id| configs.get(id)) {
                v["authenticatorConfig"] = c.alias.clone().into();
            }
            v
        })
        .collect();
    json!({
        "id": flow.id,
        "alias": flow.alias,
        "description": flow.description,
        "providerId": flow.provider_id,
        "topLevel": flow.top_level,
        "builtIn": flow.built_in,
        "authenticationExecutions": executions,
    })
}

fn config_repr(c: &AuthenticatorConfigRecord) -> Value {
    json!({"id": c.id, "alias": c.alias, "config": c.config})
}

/// The realm's flows and configs, by id.
struct Loaded {
    flows: HashMap<String, AuthFlowRecord>,
    configs: HashMap<String, AuthenticatorConfigRecord>,
}

impl Loaded {
    fn of<T: Txn>(read: &View<T>, realm_id: &str) -> Result<Loaded, AdminError> {
        Ok(Loaded {
            flows: read
                .auth_flows(realm_id)?
                .into_iter()
                .map(|f| (f.id.clone(), f))
                .collect(),
            configs: read
                .authenticator_configs(realm_id)?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect(),
        })
    }

    fn by_alias(&self, alias: &str) -> Option<&AuthFlowRecord> {
        self.flows.values().find(|f| f.alias == alias)
    }

    /// The flow holding execution `id`, and its index there.
    fn execution(&self, id: &str) -> Option<(&AuthFlowRecord, usize)> {
        self.flows
            .values()
            .find_map(|f| f.executions.iter().position(|e| e.id == id).map(|i| (f, i)))
    }

    fn repr(&self, flow: &AuthFlowRecord) -> Value {
        flow_repr(flow, &self.flows, &self.configs)
    }
}

/// Every flow of `flow`'s tree (itself first), by id.
fn tree(loaded: &Loaded, flow: &AuthFlowRecord) -> Vec<AuthFlowRecord> {
    let mut out = Vec::new();
    let mut stack = vec![flow.id.clone()];
    while let Some(id) = stack.pop() {
        if out.iter().any(|f: &AuthFlowRecord| f.id == id) || out.len() > 256 {
            continue;
        }
        if let Some(f) = loaded.flows.get(&id) {
            stack.extend(f.executions.iter().filter_map(|e| e.flow_id.clone()));
            out.push(f.clone());
        }
    }
    out
}

fn view(cx: &Cx) -> Result<(RealmRecord, Loaded), AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let loaded = Loaded::of(&cx.app.store.read()?, &realm.id)?;
    Ok((realm, loaded))
}

/// Change the realm's flows in one transaction; afterwards the bound browser and direct
/// grant flows must still be ones the login can run.
fn change<R>(
    cx: &Cx,
    f: impl FnOnce(&mut Write, &RealmRecord, &Loaded) -> Result<R, AdminError>,
) -> Result<R, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    cx.app.store.write(|w| {
        let realm = w
            .realm(&realm.id)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        let loaded = Loaded::of(&**w, &realm.id)?;
        let out = f(w, &realm, &loaded)?;
        check_bound(&**w, &realm)?;
        Ok(out)
    })
}

/// Refuse a state in which a bound login flow requires a step the login cannot perform.
pub(super) fn check_bound<T: Txn>(read: &View<T>, realm: &RealmRecord) -> Result<(), AdminError> {
    for (name, plan) in [
        ("browser", flows::browser_plan(read, realm, None)?),
        ("direct grant", flows::direct_grant_plan(read, realm, None)?),
    ] {
        if let Some(step) = plan.unsupported {
            return Err(AdminError::BadRequest(format!(
                "The realm's {name} flow would require {step}, which Portcullis cannot perform: it may only be ALTERNATIVE or DISABLED there"
            )));
        }
    }
    // The flows clients run instead (their overrides), likewise.
    for client in read.clients(&realm.id)? {
        if client.flow_overrides.is_empty() {
            continue;
        }
        for plan in [
            flows::browser_plan(read, realm, Some(&client))?,
            flows::direct_grant_plan(read, realm, Some(&client))?,
        ] {
            if let Some(step) = plan.unsupported {
                return Err(AdminError::BadRequest(format!(
                    "Client {}'s flow would require {step}, which Portcullis cannot perform: it may only be ALTERNATIVE or DISABLED there",
                    client.client_id
                )));
            }
        }
    }
    Ok(())
}

/// Every binding of `realm` must name a top-level flow of the realm, and the bound login
/// flows must be ones the login can run.
pub(crate) fn check_bindings<T: Txn>(
    read: &View<T>,
    realm: &RealmRecord,
) -> Result<(), AdminError> {
    let list = read.auth_flows(&realm.id)?;
    if list.is_empty() {
        return Ok(()); // a realm being created: its built-in flows come next
    }
    for (binding, alias) in &realm.flow_bindings {
        if !list.iter().any(|f| f.top_level && &f.alias == alias) {
            return Err(AdminError::BadRequest(format!(
                "{binding}: no top-level flow named {alias}"
            )));
        }
    }
    check_bound(read, realm)
}

fn flow_missing() -> AdminError {
    AdminError::NotFound("Flow not found".into())
}

fn illegal_execution() -> AdminError {
    AdminError::NotFound("Illegal execution".into())
}

/// Keycloak's reserved characters for aliases (`ReservedCharValidator`).
fn check_alias(alias: &str) -> Result<(), AdminError> {
    if alias.contains(['<', '>', '&', '"', '\'', '\\', '/']) {
        return Err(AdminError::BadRequest(format!(
            "Character '{}' not allowed.",
            alias
                .chars()
                .find(|c| "<>&\"'\\/".contains(*c))
                .unwrap_or('?')
        )));
    }
    Ok(())
}

// ---- flows ----

/// `GET /authentication/flows`: the top-level flows.
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let (_, loaded) = view(cx)?;
    let mut top: Vec<&AuthFlowRecord> = loaded.flows.values().filter(|f| f.top_level).collect();
    top.sort_by(|a, b| a.alias.cmp(&b.alias));
    Ok(ok(&Value::Array(
        top.into_iter().map(|f| loaded.repr(f)).collect(),
    )))
}

/// `GET /authentication/flows/{id}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let (_, loaded) = view(cx)?;
    let flow = loaded
        .flows
        .get(&cx.path.id)
        .ok_or_else(|| AdminError::NotFound("Could not find flow with id".into()))?;
    Ok(ok(&loaded.repr(flow)))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "AuthenticationFlowRepresentation")]
pub(super) struct FlowInput {
    alias: Option<String>,
    description: Option<String>,
    provider_id: Option<String>,
    top_level: Option<bool>,
}

/// `POST /authentication/flows`: a new (empty) flow.
pub(super) fn create(cx: &Cx) -> Result<Response, AdminError> {
    let input: FlowInput = cx.json()?;
    let alias = input.alias.clone().unwrap_or_default();
    if alias.is_empty() {
        return Err(AdminError::Conflict(
            "Failed to create flow with empty alias name".into(),
        ));
    }
    check_alias(&alias)?;
    let provider_id = input.provider_id.unwrap_or_else(|| BASIC_FLOW.into());
    if ![BASIC_FLOW, FORM_FLOW, CLIENT_FLOW].contains(&provider_id.as_str()) {
        return Err(AdminError::BadRequest(format!(
            "Unknown flow type: {provider_id}"
        )));
    }
    let flow = AuthFlowRecord {
        id: random_id(),
        alias: alias.clone(),
        description: input.description.unwrap_or_default(),
        provider_id,
        top_level: input.top_level.unwrap_or(true),
        built_in: false,
        executions: Vec::new(),
    };
    change(cx, |w, realm, loaded| {
        if loaded.by_alias(&alias).is_some() {
            return Err(AdminError::Conflict(format!("Flow {alias} already exists")));
        }
        w.put_auth_flow(&realm.id, &flow).map_err(AdminError::from)
    })?;
    Ok(cx.created(&flow.id))
}

/// `PUT /authentication/flows/{id}`: alias and description; 202 with the flow.
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let input: FlowInput = cx.json()?;
    let alias = input.alias.clone().unwrap_or_default();
    if alias.is_empty() {
        return Err(AdminError::Conflict(
            "Failed to update flow with empty alias name".into(),
        ));
    }
    check_alias(&alias)?;
    let body = change(cx, |w, realm, loaded| {
        let mut flow = loaded
            .flows
            .get(&cx.path.id)
            .cloned()
            .ok_or_else(|| AdminError::NotFound("Could not find flow with id".into()))?;
        if alias != flow.alias {
            if loaded.by_alias(&alias).is_some() {
                return Err(AdminError::Conflict(
                    "Flow alias name already exists".into(),
                ));
            }
            rebind(w, realm, &flow.alias, &alias)?;
            flow.alias = alias.clone();
        }
        if let Some(d) = &input.description {
            flow.description = d.clone();
        }
        w.put_auth_flow(&realm.id, &flow)?;
        let mut after = Loaded::of(&**w, &realm.id)?;
        after.flows.insert(flow.id.clone(), flow.clone());
        Ok(after.repr(&flow))
    })?;
    let mut r = ok(&body);
    *r.status_mut() = http::StatusCode::ACCEPTED;
    Ok(r)
}

/// A renamed flow stays bound where it was (bindings name flows by alias).
fn rebind(w: &mut Write, realm: &RealmRecord, from: &str, to: &str) -> Result<(), AdminError> {
    let mut r = realm.clone();
    let mut changed = false;
    for (binding, _) in flows::BINDINGS {
        if flows::binding(realm, binding) == from {
            r.flow_bindings.insert(binding.to_string(), to.to_string());
            changed = true;
        }
    }
    if changed {
        w.put_realm(&r)?;
    }
    Ok(())
}

/// Delete `flow` with its sub-flows and their configs.
fn delete_tree(
    w: &mut Write,
    realm_id: &str,
    loaded: &Loaded,
    flow: &AuthFlowRecord,
) -> Result<(), AdminError> {
    for f in tree(loaded, flow) {
        for e in &f.executions {
            if let Some(c) = &e.config_id {
                w.delete_authenticator_config(realm_id, c)?;
            }
        }
        w.delete_auth_flow(realm_id, &f.id)?;
    }
    Ok(())
}

/// `DELETE /authentication/flows/{id}`: not a built-in flow, not a bound one.
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    change(cx, |w, realm, loaded| {
        let flow = loaded.flows.get(&cx.path.id).ok_or_else(flow_missing)?;
        if flow.built_in {
            return Err(AdminError::BadRequest("Can't delete built in flow".into()));
        }
        for (binding, _) in flows::BINDINGS {
            if flow.top_level && flows::binding(realm, binding) == flow.alias {
                return Err(AdminError::BadRequest(format!(
                    "Cannot delete flow {}: it is the realm's {binding}",
                    flow.alias
                )));
            }
        }
        if let Some(c) = w
            .clients(&realm.id)?
            .into_iter()
            .find(|c| c.flow_overrides.values().any(|id| id == &flow.id))
        {
            return Err(AdminError::BadRequest(format!(
                "Cannot delete flow {}: client {} uses it",
                flow.alias, c.client_id
            )));
        }
        if let Some(parent) = loaded.flows.values().find(|f| {
            f.executions
                .iter()
                .any(|e| e.flow_id.as_deref() == Some(&flow.id))
        }) {
            return Err(AdminError::BadRequest(format!(
                "Cannot delete flow {}: it is a step of {}",
                flow.alias, parent.alias
            )));
        }
        delete_tree(w, &realm.id, loaded, flow)
    })?;
    Ok(no_content())
}

/// `POST /authentication/flows/{flowAlias}/copy` with `{"newName": ...}`.
pub(super) fn copy(cx: &Cx) -> Result<Response, AdminError> {
    let data: BTreeMap<String, Value> = cx.json()?;
    let new_name = data
        .get("newName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::BadRequest("newName is required".into()))?
        .to_string();
    check_alias(&new_name)?;
    let id = change(cx, |w, realm, loaded| {
        if loaded.by_alias(&new_name).is_some() {
            return Err(AdminError::Conflict(
                "New flow alias name already exists".into(),
            ));
        }
        let flow = loaded.by_alias(&cx.path.flow).ok_or_else(flow_missing)?;
        copy_flow(w, &realm.id, loaded, flow, &new_name, &new_name)
    })?;
    let mut r = cx.created(&id);
    r.headers_mut().remove(http::header::LOCATION);
    Ok(r)
}

/// A deep copy of `flow` as `alias` (sub-flows as "`prefix` `alias`", configs likewise).
fn copy_flow(
    w: &mut Write,
    realm_id: &str,
    loaded: &Loaded,
    flow: &AuthFlowRecord,
    alias: &str,
    prefix: &str,
) -> Result<String, AdminError> {
    let mut copy = AuthFlowRecord {
        id: random_id(),
        alias: alias.to_string(),
        built_in: false,
        executions: Vec::new(),
        ..flow.clone()
    };
    for e in &flow.executions {
        let mut e = ExecutionRecord {
            id: random_id(),
            ..e.clone()
        };
        if let Some(sub) = e.flow_id.as_ref().and_then(|id| loaded.flows.get(id)) {
            let sub_alias = format!("{prefix} {}", sub.alias);
            if loaded.by_alias(&sub_alias).is_some() {
                return Err(AdminError::Conflict(format!(
                    "Flow {sub_alias} already exists"
                )));
            }
            e.flow_id = Some(copy_flow(w, realm_id, loaded, sub, &sub_alias, prefix)?);
        }
        if let Some(c) = e.config_id.as_ref().and_then(|id| loaded.configs.get(id)) {
            let c = AuthenticatorConfigRecord {
                id: random_id(),
                alias: format!("{prefix} {}", c.alias),
                config: c.config.clone(),
            };
            w.put_authenticator_config(realm_id, &c)?;
            e.config_id = Some(c.id);
        }
        copy.executions.push(e);
    }
    w.put_auth_flow(realm_id, &copy)?;
    Ok(copy.id)
}

// ---- executions ----

/// The requirements an execution may have.
fn choices(e: &ExecutionRecord, loaded: &Loaded) -> Vec<&'static str> {
    if let Some(sub) = e.flow_id.as_ref().and_then(|id| loaded.flows.get(id)) {
        return match sub.provider_id.as_str() {
            FORM_FLOW => vec![REQUIRED, DISABLED],
            CLIENT_FLOW => vec![ALTERNATIVE, REQUIRED, DISABLED],
            _ => vec![REQUIRED, ALTERNATIVE, DISABLED, CONDITIONAL],
        };
    }
    e.authenticator
        .as_deref()
        .and_then(provider)
        .map(|p| p.requirements.to_vec())
        .unwrap_or_else(|| vec![REQUIRED, ALTERNATIVE, DISABLED])
}

/// `AuthenticationExecutionInfoRepresentation`s of `flow`'s tree, depth first.
fn infos(loaded: &Loaded, flow: &AuthFlowRecord, level: usize, out: &mut Vec<Value>) {
    if level > 16 {
        return;
    }
    for (index, e) in flow.executions.iter().enumerate() {
        let mut v = json!({
            "id": e.id,
            "requirement": e.requirement,
            "requirementChoices": choices(e, loaded),
            "level": level,
            "index": index,
            "priority": e.priority,
        });
        if let Some(sub) = e.flow_id.as_ref().and_then(|id| loaded.flows.get(id)) {
            v["displayName"] = sub.alias.clone().into();
            v["description"] = sub.description.clone().into();
            v["configurable"] = false.into();
            v["authenticationFlow"] = true.into();
            v["flowId"] = sub.id.clone().into();
            if sub.provider_id == FORM_FLOW {
                if let Some(a) = &e.authenticator {
                    v["providerId"] = a.clone().into();
                }
            }
            out.push(v);
            infos(loaded, sub, level + 1, out);
            continue;
        }
        let id = e.authenticator.clone().unwrap_or_default();
        let known = provider(&id);
        v["displayName"] = known.map(|p| p.display_name).unwrap_or(&id).into();
        v["description"] = known.map(|p| p.description).unwrap_or("").into();
        v["configurable"] = known.is_some_and(|p| p.configurable).into();
        v["providerId"] = id.into();
        if let Some(c) = e.config_id.as_ref() {
            v["authenticationConfig"] = c.clone().into();
            if let Some(config) = loaded.configs.get(c) {
                v["alias"] = config.alias.clone().into();
            }
        }
        out.push(v);
    }
}

/// `GET /authentication/flows/{flowAlias}/executions`
pub(super) fn executions(cx: &Cx) -> Result<Response, AdminError> {
    let (_, loaded) = view(cx)?;
    let flow = loaded.by_alias(&cx.path.flow).ok_or_else(flow_missing)?;
    let mut out = Vec::new();
    infos(&loaded, flow, 0, &mut out);
    Ok(ok(&Value::Array(out)))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "AuthenticationExecutionInfoRepresentation")]
pub(super) struct ExecutionInfoInput {
    id: Option<String>,
    requirement: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    priority: Option<i64>,
}

/// `PUT /authentication/flows/{flowAlias}/executions`: an execution's requirement (the
/// seed's "set OTP Form to REQUIRED"), a sub-flow's name and description, or its priority.
pub(super) fn update_execution(cx: &Cx) -> Result<Response, AdminError> {
    let input: ExecutionInfoInput = cx.json()?;
    let id = input.id.clone().ok_or_else(illegal_execution)?;
    let flow = change(cx, |w, realm, loaded| {
        let flow = loaded
            .by_alias(&cx.path.flow)
            .ok_or_else(|| AdminError::NotFound("flow not found".into()))?;
        // Keycloak answers with the flow model of the path.
        let model = json!({
            "id": flow.id, "alias": flow.alias, "description": flow.description,
            "providerId": flow.provider_id, "topLevel": flow.top_level, "builtIn": flow.built_in,
        });
        let (parent, i) = loaded.execution(&id).ok_or_else(illegal_execution)?;
        let mut parent = parent.clone();
        let e = &mut parent.executions[i];
        if let Some(req) = &input.requirement {
            if !choices(e, loaded).contains(&req.as_str()) {
                return Err(AdminError::BadRequest(format!(
                    "Requirement {req} is not one of {}",
                    choices(e, loaded).join(", ")
                )));
            }
            e.requirement = req.clone();
        }
        if let Some(p) = input.priority {
            if p != e.priority && parent.built_in {
                return Err(AdminError::BadRequest(
                    "It is illegal to modify execution in a built in flow".into(),
                ));
            }
            e.priority = p;
        }
        if let Some(sub_id) = e.flow_id.clone() {
            if let Some(mut sub) = loaded.flows.get(&sub_id).cloned() {
                let mut changed = false;
                if let Some(name) = input.display_name.as_ref().filter(|n| **n != sub.alias) {
                    check_alias(name)?;
                    if loaded.by_alias(name).is_some() {
                        return Err(AdminError::Conflict(
                            "Flow alias name already exists".into(),
                        ));
                    }
                    sub.alias = name.clone();
                    changed = true;
                }
                if let Some(d) = input
                    .description
                    .as_ref()
                    .filter(|d| **d != sub.description)
                {
                    sub.description = d.clone();
                    changed = true;
                }
                if changed {
                    w.put_auth_flow(&realm.id, &sub)?;
                }
            }
        }
        parent.executions.sort_by_key(|e| e.priority);
        w.put_auth_flow(&realm.id, &parent)?;
        Ok(model)
    })?;
    let mut r = ok(&flow);
    *r.status_mut() = http::StatusCode::ACCEPTED;
    Ok(r)
}

/// The next priority in a flow (Keycloak: the last one's plus one).
fn next_priority(flow: &AuthFlowRecord) -> i64 {
    flow.executions.last().map(|e| e.priority + 1).unwrap_or(0)
}

/// A new execution of `provider_id` in `parent` (not a built-in flow), with the provider's
/// only requirement or else DISABLED.
fn new_execution(
    parent: &AuthFlowRecord,
    provider_id: &str,
) -> Result<ExecutionRecord, AdminError> {
    if parent.built_in {
        return Err(AdminError::BadRequest(
            "It is illegal to add execution to a built in flow".into(),
        ));
    }
    let p = provider(provider_id)
        .filter(|p| p.flow == parent.provider_id)
        .ok_or_else(|| {
            AdminError::BadRequest(format!(
                "No authentication provider found for id: {provider_id}"
            ))
        })?;
    Ok(ExecutionRecord {
        id: random_id(),
        authenticator: Some(p.id.into()),
        flow_id: None,
        requirement: if p.requirements.len() == 1 {
            p.requirements[0].into()
        } else {
            DISABLED.into()
        },
        priority: next_priority(parent),
        config_id: None,
    })
}

/// `POST /authentication/flows/{flowAlias}/executions/execution` with `{"provider": ...}`.
pub(super) fn add_execution(cx: &Cx) -> Result<Response, AdminError> {
    let data: BTreeMap<String, Value> = cx.json()?;
    let provider_id = data
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let id = change(cx, |w, realm, loaded| {
        let mut parent = loaded
            .by_alias(&cx.path.flow)
            .cloned()
            .ok_or_else(|| AdminError::BadRequest("Parent flow doesn't exist".into()))?;
        let e = new_execution(&parent, &provider_id)?;
        let id = e.id.clone();
        parent.executions.push(e);
        w.put_auth_flow(&realm.id, &parent)?;
        Ok(id)
    })?;
    Ok(created_at(cx, &format!("authentication/executions/{id}")))
}

/// `201` with a `Location` under the realm's admin path.
fn created_at(cx: &Cx, rest: &str) -> Response {
    let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
    let mut r = no_content();
    *r.status_mut() = http::StatusCode::CREATED;
    let realm = form_urlencoded::byte_serialize(cx.path.realm.as_bytes()).collect::<String>();
    if let Ok(v) = http::HeaderValue::from_str(&format!("{base}/admin/realms/{realm}/{rest}")) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "AuthenticationExecutionRepresentation")]
pub(super) struct ExecutionInput {
    parent_flow: Option<String>,
    authenticator: Option<String>,
    requirement: Option<String>,
    priority: Option<i64>,
    provider: Option<String>,
}

/// `POST /authentication/executions` (parent by id) and
/// `POST /authentication/flows/{flowAlias}/executions` (parent by alias).
pub(super) fn add_execution_model(cx: &Cx) -> Result<Response, AdminError> {
    let input: ExecutionInput = cx.json()?;
    let id = change(cx, |w, realm, loaded| {
        let parent = if cx.path.flow.is_empty() {
            let id = input.parent_flow.as_deref().ok_or_else(|| {
                AdminError::BadRequest("parent flow not set on new execution".into())
            })?;
            loaded.flows.get(id)
        } else {
            loaded.by_alias(&cx.path.flow)
        };
        let mut parent = parent
            .cloned()
            .ok_or_else(|| AdminError::BadRequest("execution parent flow does not exist".into()))?;
        let provider_id = input
            .authenticator
            .clone()
            .or(input.provider.clone())
            .unwrap_or_default();
        let mut e = new_execution(&parent, &provider_id)?;
        if let Some(req) = &input.requirement {
            if !choices(&e, loaded).contains(&req.as_str()) {
                return Err(AdminError::BadRequest(format!("Invalid requirement {req}")));
            }
            e.requirement = req.clone();
        }
        if let Some(p) = input.priority {
            e.priority = p;
        }
        let id = e.id.clone();
        parent.executions.push(e);
        parent.executions.sort_by_key(|e| e.priority);
        w.put_auth_flow(&realm.id, &parent)?;
        Ok(id)
    })?;
    Ok(created_at(cx, &format!("authentication/executions/{id}")))
}

/// `POST /authentication/flows/{flowAlias}/executions/flow`: a new sub-flow.
pub(super) fn add_subflow(cx: &Cx) -> Result<Response, AdminError> {
    let data: BTreeMap<String, Value> = cx.json()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (alias, kind, form_provider) = (text("alias"), text("type"), text("provider"));
    if alias.trim().is_empty() {
        return Err(AdminError::BadRequest("alias is required".into()));
    }
    check_alias(&alias)?;
    let kind = if kind.is_empty() {
        BASIC_FLOW.to_string()
    } else {
        kind
    };
    if kind != BASIC_FLOW && kind != FORM_FLOW {
        return Err(AdminError::BadRequest(format!("Unknown flow type: {kind}")));
    }
    let id = change(cx, |w, realm, loaded| {
        let mut parent = loaded
            .by_alias(&cx.path.flow)
            .cloned()
            .ok_or_else(|| AdminError::BadRequest("Parent flow doesn't exist".into()))?;
        if parent.built_in {
            return Err(AdminError::BadRequest(
                "It is illegal to add sub-flow to a built in flow".into(),
            ));
        }
        if loaded.by_alias(&alias).is_some() {
            return Err(AdminError::Conflict(
                "New flow alias name already exists".into(),
            ));
        }
        let sub = AuthFlowRecord {
            id: random_id(),
            alias: alias.clone(),
            description: text("description"),
            provider_id: kind.clone(),
            top_level: false,
            built_in: false,
            executions: Vec::new(),
        };
        parent.executions.push(ExecutionRecord {
            id: random_id(),
            authenticator: (kind == FORM_FLOW && !form_provider.is_empty())
                .then(|| form_provider.clone()),
            flow_id: Some(sub.id.clone()),
            requirement: DISABLED.into(),
            priority: next_priority(&parent),
            config_id: None,
        });
        w.put_auth_flow(&realm.id, &sub)?;
        w.put_auth_flow(&realm.id, &parent)?;
        Ok(sub.id)
    })?;
    Ok(created_at(cx, &format!("authentication/flows/{id}")))
}

/// `GET /authentication/executions/{id}`: the execution model.
pub(super) fn get_execution(cx: &Cx) -> Result<Response, AdminError> {
    let (_, loaded) = view(cx)?;
    let (parent, i) = loaded
        .execution(&cx.path.id)
        .ok_or_else(illegal_execution)?;
    let e = &parent.executions[i];
    let mut v = json!({
        "id": e.id,
        "authenticator": e.authenticator,
        "authenticatorFlow": e.flow_id.is_some(),
        "requirement": e.requirement,
        "priority": e.priority,
        "parentFlow": parent.id,
    });
    if let Some(f) = &e.flow_id {
        v["flowId"] = f.clone().into();
    }
    if let Some(c) = &e.config_id {
        v["authenticatorConfig"] = c.clone().into();
    }
    Ok(ok(&v))
}

/// `DELETE /authentication/executions/{id}`, with its sub-flow.
pub(super) fn delete_execution(cx: &Cx) -> Result<Response, AdminError> {
    change(cx, |w, realm, loaded| {
        let (parent, i) = loaded
            .execution(&cx.path.id)
            .ok_or_else(illegal_execution)?;
        if parent.built_in {
            return Err(AdminError::BadRequest(
                "It is illegal to remove execution from a built in flow".into(),
            ));
        }
        let mut parent = parent.clone();
        let e = parent.executions.remove(i);
        if let Some(sub) = e.flow_id.as_ref().and_then(|id| loaded.flows.get(id)) {
            delete_tree(w, &realm.id, loaded, sub)?;
        }
        if let Some(c) = &e.config_id {
            w.delete_authenticator_config(&realm.id, c)?;
        }
        w.put_auth_flow(&realm.id, &parent)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `POST /authentication/executions/{id}/raise-priority` (`up`) and `lower-priority`.
pub(super) fn move_execution(cx: &Cx, up: bool) -> Result<Response, AdminError> {
    change(cx, |w, realm, loaded| {
        let (parent, i) = loaded
            .execution(&cx.path.id)
            .ok_or_else(illegal_execution)?;
        if parent.built_in {
            return Err(AdminError::BadRequest(
                "It is illegal to modify execution in a built in flow".into(),
            ));
        }
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        let Some(j) = j.filter(|j| *j < parent.executions.len()) else {
            return Ok(());
        };
        let mut parent = parent.clone();
        let (a, b) = (parent.executions[i].priority, parent.executions[j].priority);
        parent.executions[i].priority = b;
        parent.executions[j].priority = a;
        parent.executions.swap(i, j);
        w.put_auth_flow(&realm.id, &parent)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

// ---- configs ----

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "AuthenticatorConfigRepresentation")]
pub(super) struct ConfigInput {
    alias: Option<String>,
    config: BTreeMap<String, Value>,
}

fn config_map(input: &ConfigInput) -> BTreeMap<String, String> {
    input
        .config
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Null => None,
            other => Some((k.clone(), other.to_string())),
        })
        .collect()
}

/// `POST /authentication/executions/{id}/config`: a configuration for the execution.
pub(super) fn create_config(cx: &Cx) -> Result<Response, AdminError> {
    let input: ConfigInput = cx.json()?;
    let alias = input
        .alias
        .clone()
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| AdminError::BadRequest("Alias missing".into()))?;
    check_alias(&alias)?;
    let id = change(cx, |w, realm, loaded| {
        let (parent, i) = loaded
            .execution(&cx.path.id)
            .ok_or_else(illegal_execution)?;
        let mut parent = parent.clone();
        let config = AuthenticatorConfigRecord {
            id: random_id(),
            alias: alias.clone(),
            config: config_map(&input),
        };
        if let Some(old) = parent.executions[i].config_id.replace(config.id.clone()) {
            w.delete_authenticator_config(&realm.id, &old)?;
        }
        w.put_authenticator_config(&realm.id, &config)?;
        w.put_auth_flow(&realm.id, &parent)?;
        Ok(config.id)
    })?;
    Ok(created_at(cx, &format!("authentication/config/{id}")))
}

/// `GET /authentication/config/{id}` (also `.../executions/{id}/config/{config}`).
pub(super) fn get_config(cx: &Cx) -> Result<Response, AdminError> {
    let (_, loaded) = view(cx)?;
    let id = if cx.path.key.is_empty() {
        &cx.path.id
    } else {
        &cx.path.key
    };
    let c = loaded
        .configs
        .get(id)
        .ok_or_else(|| AdminError::NotFound("Could not find authenticator config".into()))?;
    Ok(ok(&config_repr(c)))
}

/// `PUT /authentication/config/{id}`
pub(super) fn update_config(cx: &Cx) -> Result<Response, AdminError> {
    let input: ConfigInput = cx.json()?;
    change(cx, |w, realm, loaded| {
        let mut c =
            loaded.configs.get(&cx.path.id).cloned().ok_or_else(|| {
                AdminError::NotFound("Could not find authenticator config".into())
            })?;
        if let Some(a) = input.alias.as_ref().filter(|a| !a.trim().is_empty()) {
            check_alias(a)?;
            c.alias = a.clone();
        }
        c.config = config_map(&input);
        w.put_authenticator_config(&realm.id, &c)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /authentication/config/{id}`: also off the execution that has it.
pub(super) fn delete_config(cx: &Cx) -> Result<Response, AdminError> {
    change(cx, |w, realm, loaded| {
        if !loaded.configs.contains_key(&cx.path.id) {
            return Err(AdminError::NotFound(
                "Could not find authenticator config".into(),
            ));
        }
        for f in loaded.flows.values() {
            if f.executions
                .iter()
                .any(|e| e.config_id.as_deref() == Some(&cx.path.id))
            {
                let mut f = f.clone();
                for e in &mut f.executions {
                    if e.config_id.as_deref() == Some(&cx.path.id) {
                        e.config_id = None;
                    }
                }
                w.put_auth_flow(&realm.id, &f)?;
            }
        }
        w.delete_authenticator_config(&realm.id, &cx.path.id)?;
        Ok(())
    })?;
    Ok(no_content())
}

/// The settings of the configurable providers (`config-description/{providerId}`).
fn properties(provider_id: &str) -> Option<Vec<Value>> {
    let prop = |name: &str, label: &str, help: &str, kind: &str, default: Value| {
        json!({"name": name, "label": label, "helpText": help, "type": kind,
               "defaultValue": default, "options": [], "secret": false, "readOnly": false})
    };
    Some(match provider_id {
        "conditional-user-role" => vec![
            prop("condUserRole", "User role", "Role the user should have to execute this flow. Click 'Select Role' button to browse roles, or just type it in the textbox. To specify an application role the syntax is appname.approle, i.e. myapp.myrole", "Role", Value::Null),
            prop("negate", "Negate output", "Apply a NOT to the check result. When this is true, then the condition will evaluate to true just if user does NOT have the specified role. When this is false, the condition will evaluate to true just if user has the specified role", "boolean", false.into()),
        ],
        "identity-provider-redirector" => vec![prop(
            "defaultProvider",
            "Default Identity Provider",
            "To automatically redirect to an identity provider set to the alias of the identity provider",
            "String",
            Value::Null,
        )],
        "deny-access-authenticator" => vec![prop(
            "denyErrorMessage",
            "Error message",
            "Error message which will be shown to the user.",
            "String",
            Value::Null,
        )],
        "reset-otp" => vec![prop(
            "action_on_otp_reset",
            "Action on OTP reset",
            "Specify which OTP credentials are removed when the user resets them.",
            "List",
            "Remove one".into(),
        )],
        "idp-review-profile" => vec![prop(
            "update.profile.on.first.login",
            "Update profile on first login",
            "Define conditions under which a user has to review and update his profile after first-time login.",
            "List",
            "missing".into(),
        )],
        "idp-create-user-if-unique" => vec![prop(
            "require.password.update.after.registration",
            "Require Password Update After Registration",
            "If this option is true and new user is successfully imported from Identity Provider to Keycloak (there is no duplicated email or username detected in Keycloak DB), then this user is required to update his password",
            "boolean",
            false.into(),
        )],
        "registration-recaptcha-action" => vec![
            prop("site.key", "reCAPTCHA Site Key", "The site key.", "String", Value::Null),
            prop("secret", "reCAPTCHA Secret", "The secret key.", "String", Value::Null),
        ],
        _ => return None,
    })
}

/// `GET /authentication/config-description/{providerId}`
pub(super) fn config_description(cx: &Cx) -> Result<Response, AdminError> {
    cx.realm(Permission::ViewRealm)?;
    let id = cx.path.key.as_str();
    let (Some(p), Some(properties)) = (provider(id), properties(id)) else {
        return Err(AdminError::NotFound(
            "Could not find configuration description".into(),
        ));
    };
    Ok(ok(&json!({
        "name": p.display_name, "providerId": p.id, "helpText": p.description,
        "properties": properties,
    })))
}

/// `GET /authentication/{authenticator,client-authenticator,form-action,form}-providers`.
pub(super) fn providers(cx: &Cx, flow: &str) -> Result<Response, AdminError> {
    cx.realm(Permission::ViewRealm)?;
    let list: Vec<Value> = if flow == "form" {
        vec![
            json!({"id": "registration-page-form", "displayName": "Registration Page",
            "description": "This is the controller for the registration page"}),
        ]
    } else {
        PROVIDERS
            .iter()
            .filter(|p| p.flow == flow && p.id != "registration-page-form")
            .map(|p| json!({"id": p.id, "displayName": p.display_name, "description": p.description}))
            .collect()
    };
    Ok(ok(&Value::Array(list)))
}
