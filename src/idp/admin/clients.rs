//! `/admin/realms/{realm}/clients/...`: clients, their secrets and service accounts.

use serde_json::{json, Value};

use crate::crypto::{random_id, random_token};
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::{client_scopes, realm};
use crate::store::{ClientRecord, RealmRecord, UserRecord, Write};

use super::repr::{client_repr, user_repr, ClientInput};
use super::{deleted, no_content, ok, Cx, Permission};

/// A new client secret (Keycloak uses 32 random characters).
fn new_secret() -> String {
    random_token(24)
}

/// Apply a client representation: its fields, and its `defaultClientScopes` /
/// `optionalClientScopes` by name (names the realm lacks are skipped, as Keycloak does). A
/// new client that names neither gets the realm's default scopes.
pub(super) fn apply_input(
    w: &Write,
    realm_id: &str,
    input: &ClientInput,
    client: &mut ClientRecord,
    creating: bool,
) -> Result<(), AdminError> {
    input.apply(client).map_err(AdminError::BadRequest)?;
    if let Some(overrides) = &input.authentication_flow_binding_overrides {
        set_flow_overrides(w, realm_id, client, overrides)?;
    }
    let (default, optional) = (&input.default_client_scopes, &input.optional_client_scopes);
    if creating && default.is_none() && optional.is_none() {
        client_scopes::attach_realm_defaults(w, realm_id, client)?;
        return check_policies(w, realm_id, client);
    }
    if let Some(names) = default {
        client.default_client_scopes = client_scopes::ids_of_names(&**w, realm_id, names)?;
    } else if creating {
        client.default_client_scopes.clear();
    }
    if let Some(names) = optional {
        client.optional_client_scopes = client_scopes::ids_of_names(&**w, realm_id, names)?;
        client
            .optional_client_scopes
            .retain(|id| !client.default_client_scopes.contains(id));
    } else if creating {
        client.optional_client_scopes.clear();
    }
    check_policies(w, realm_id, client)
}

/// A client's flow overrides: `browser` and `direct_grant`, each a top-level flow of the
/// realm (an empty value removes the override) that the login can run.
fn set_flow_overrides(
    w: &Write,
    realm_id: &str,
    client: &mut ClientRecord,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Result<(), AdminError> {
    use crate::idp::flows::{OVERRIDE_BROWSER, OVERRIDE_DIRECT_GRANT};
    let flows = w.auth_flows(realm_id)?;
    let mut set = std::collections::BTreeMap::new();
    for (binding, id) in overrides {
        if binding != OVERRIDE_BROWSER && binding != OVERRIDE_DIRECT_GRANT {
            return Err(AdminError::BadRequest(format!(
                "authenticationFlowBindingOverrides: unknown binding {binding}"
            )));
        }
        if id.is_empty() {
            continue;
        }
        if !flows.iter().any(|f| &f.id == id && f.top_level) {
            return Err(AdminError::BadRequest(format!(
                "authenticationFlowBindingOverrides.{binding}: no top-level flow with id {id}"
            )));
        }
        set.insert(binding.clone(), id.clone());
    }
    client.flow_overrides = set;
    let realm = w
        .realm(realm_id)?
        .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
    for (name, plan) in [
        (
            "browser",
            crate::idp::flows::browser_plan(&**w, &realm, Some(client))?,
        ),
        (
            "direct grant",
            crate::idp::flows::direct_grant_plan(&**w, &realm, Some(client))?,
        ),
    ] {
        if let Some(step) = plan.unsupported {
            return Err(AdminError::BadRequest(format!(
                "The client's {name} flow would require {step}, which Portcullis cannot perform"
            )));
        }
    }
    Ok(())
}

/// The realm's client policies on a client being saved (`auto-configure` settings applied,
/// violations refused).
fn check_policies(w: &Write, realm_id: &str, client: &mut ClientRecord) -> Result<(), AdminError> {
    let executors = crate::idp::client_policies::executors(&**w, realm_id, client)?;
    crate::idp::client_policies::check_client(&executors, client).map_err(AdminError::BadRequest)
}

/// Create a client from its representation inside the caller's transaction.
pub(super) fn create_in(
    w: &mut Write,
    realm: &RealmRecord,
    input: &ClientInput,
    now: i64,
) -> Result<ClientRecord, AdminError> {
    if input
        .client_id
        .as_deref()
        .is_none_or(|c| c.trim().is_empty())
    {
        return Err(AdminError::BadRequest("clientId is required".into()));
    }
    let mut client = ClientRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        enabled: true,
        client_authenticator_type: "client-secret".into(),
        protocol: "openid-connect".into(),
        standard_flow_enabled: true,
        direct_access_grants_enabled: false,
        full_scope_allowed: true,
        frontchannel_logout: true,
        ..Default::default()
    };
    apply_input(w, &realm.id, input, &mut client, true)?;
    if w.client_by_client_id(&realm.id, &client.client_id)?
        .is_some()
    {
        return Err(AdminError::Conflict(format!(
            "Client {} already exists",
            client.client_id
        )));
    }
    if !client.public_client && !client.bearer_only && client.secret.is_none() {
        client.secret = Some(new_secret());
    }
    if w.client(&realm.id, &client.id)?.is_some() {
        return Err(AdminError::from(crate::store::StoreError::Conflict(
            crate::store::Conflict::Id,
        )));
    }
    w.put_client(&realm.id, &client).map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => {
            AdminError::Conflict(format!("Client {} already exists", client.client_id))
        }
        other => AdminError::from(other),
    })?;
    realm::ensure_service_account(w, realm, &client, now)?;
    Ok(client)
}

/// `GET /clients` (optionally `?clientId=`, `search`, `first`, `max`).
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryClients)?;
    let wanted = cx.query("clientId");
    let search = cx.flag("search") == Some(true);
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx
        .query("max")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let view = cx.caller.can(&realm.name, Permission::ViewClients);
    let read = cx.app.store.read()?;
    let names = super::client_scopes::names(&read, &realm.id)?;
    let list: Vec<Value> = read
        .clients(&realm.id)?
        .iter()
        .filter(|c| match &wanted {
            None => true,
            Some(w) if search => c.client_id.to_lowercase().contains(&w.to_lowercase()),
            Some(w) => &c.client_id == w,
        })
        .skip(first)
        .take(max)
        .map(|c| {
            if view {
                client_repr(c, &names)
            } else {
                json!({"id": c.id, "clientId": c.client_id})
            }
        })
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST /clients`
pub(super) fn create(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let input: ClientInput = cx.json()?;
    let now = cx.now_ms;
    let client = cx.app.store.write(|w| create_in(w, &realm, &input, now))?;
    Ok(cx.created(&client.id))
}

fn load(cx: &Cx, realm: &RealmRecord) -> Result<ClientRecord, AdminError> {
    cx.app
        .store
        .read()?
        .client(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find client".into()))
}

/// `GET /clients/{id}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = load(cx, &realm)?;
    let names = super::client_scopes::names(&cx.app.store.read()?, &realm.id)?;
    Ok(ok(&client_repr(&client, &names)))
}

/// `PUT /clients/{id}`
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let input: ClientInput = cx.json()?;
    let now = cx.now_ms;
    cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        apply_input(w, &realm.id, &input, &mut client, false)?;
        if !client.public_client && !client.bearer_only && client.secret.is_none() {
            client.secret = Some(new_secret());
        }
        w.put_client(&realm.id, &client).map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("Client {} already exists", client.client_id))
            }
            other => AdminError::from(other),
        })?;
        realm::ensure_service_account(w, &realm, &client, now).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /clients/{id}`
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let existed = cx
        .app
        .store
        .write(|w| {
            crate::idp::client_registration::forget(w, &realm.id, &cx.path.id)?;
            w.delete_client(&realm.id, &cx.path.id)
        })
        .map_err(AdminError::from)?;
    deleted(existed, "Could not find client")
}

fn secret_repr(c: &ClientRecord) -> Value {
    json!({"type": "secret", "value": c.secret})
}

/// `GET /clients/{id}/client-secret`
pub(super) fn secret(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    Ok(ok(&secret_repr(&load(cx, &realm)?)))
}

/// `POST /clients/{id}/client-secret`: a new secret.
pub(super) fn regenerate_secret(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let client = cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        if client.public_client || client.bearer_only {
            return Err(AdminError::BadRequest(
                "Client has no secret (public or bearer-only)".into(),
            ));
        }
        // With the `secret-rotation` policy the old secret keeps working for a while.
        let executors = crate::idp::client_policies::executors(&**w, &realm.id, &client)?;
        let now = cx.now_ms / 1000;
        client.rotated_secret = match (
            crate::idp::client_policies::rotation_period(&executors),
            client.secret.clone(),
        ) {
            (Some(period), Some(old)) => {
                client.attributes.insert(
                    "client.secret.rotated.creation.time".into(),
                    now.to_string(),
                );
                client.attributes.insert(
                    "client.secret.rotated.expiration.time".into(),
                    (now + period).to_string(),
                );
                Some((old, now + period))
            }
            _ => None,
        };
        client
            .attributes
            .insert("client.secret.creation.time".into(), now.to_string());
        client.secret = Some(new_secret());
        w.put_client(&realm.id, &client).map_err(AdminError::from)?;
        Ok(client)
    })?;
    Ok(ok(&secret_repr(&client)))
}

/// `POST /clients/{id}/nodes` with `{"node": host}`: register an application node.
pub(super) fn register_node(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let body = cx.json_object()?;
    let node = body
        .get("node")
        .and_then(Value::as_str)
        .map(str::trim)
        // `host` or `host:port` only: the node goes into the client's admin URL.
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 255
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .ok_or_else(|| AdminError::BadRequest("Node not found in params".into()))?
        .to_string();
    let now = cx.now_ms / 1000;
    cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        if client.registered_nodes.len() >= 256 && !client.registered_nodes.contains_key(&node) {
            return Err(AdminError::BadRequest("Too many registered nodes".into()));
        }
        client.registered_nodes.insert(node.clone(), now);
        w.put_client(&realm.id, &client).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /clients/{id}/nodes/{node}`
pub(super) fn unregister_node(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let node = cx.path.key.clone();
    cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        if client.registered_nodes.remove(&node).is_none() {
            return Err(AdminError::NotFound(
                "Client does not have node ".to_string() + &node,
            ));
        }
        w.put_client(&realm.id, &client).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `GET /clients/{id}/test-nodes-available`: Keycloak's `GlobalRequestResult` — each
/// registered node's `{adminUrl}/k_test_available` (the host put in for
/// `${application.session.host}`), asked with a POST within 3 s.
pub(super) async fn test_nodes(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let client = load(cx, &realm)?;
    let (mut success, mut failed) = (Vec::new(), Vec::new());
    let Some(admin_url) = client.admin_url.clone().filter(|u| !u.is_empty()) else {
        return Ok(ok(&json!({"successRequests": [], "failedRequests": []})));
    };
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    });
    // At most 32 nodes, 10 s in all: a node not asked in time counts as failed.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    for node in client.registered_nodes.keys().take(32) {
        let base = admin_url.replace("${application.session.host}", node);
        let url = format!("{}/k_test_available", base.trim_end_matches('/'));
        let ask = async {
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => http
                    .post(u)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
                _ => false,
            }
        };
        let answered = tokio::time::timeout_at(deadline, ask)
            .await
            .unwrap_or(false);
        if answered {
            success.push(url);
        } else {
            failed.push(url);
        }
    }
    Ok(ok(
        &json!({"successRequests": success, "failedRequests": failed}),
    ))
}

/// `GET /clients/{id}/client-secret/rotated`: the secret before the last rotation, while it
/// still works.
pub(super) fn rotated_secret(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = load(cx, &realm)?;
    match client.rotated_secret {
        Some((secret, until)) if until > cx.now_ms / 1000 => {
            Ok(ok(&json!({"type": "secret", "value": secret})))
        }
        _ => Err(AdminError::NotFound(
            "Client does not have a rotated secret".into(),
        )),
    }
}

/// `DELETE /clients/{id}/client-secret/rotated`: the rotated secret stops working now.
pub(super) fn invalidate_rotated_secret(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        client.rotated_secret = None;
        client
            .attributes
            .remove("client.secret.rotated.creation.time");
        client
            .attributes
            .remove("client.secret.rotated.expiration.time");
        w.put_client(&realm.id, &client).map_err(AdminError::from)?;
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /clients/{id}/service-account-user`
pub(super) fn service_account(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = load(cx, &realm)?;
    let username = format!("service-account-{}", client.client_id.to_lowercase());
    let user = cx
        .app
        .store
        .read()?
        .user_by_username(&realm.id, &username)?
        .filter(|u| u.service_account_client_id.as_deref() == Some(client.id.as_str()))
        .ok_or_else(|| {
            AdminError::BadRequest("Service account not enabled for the client".into())
        })?;
    Ok(ok(&user_repr(&user, false)))
}

/// `GET /clients/{id}/installation/providers/keycloak-oidc-keycloak-json`: the client's
/// adapter configuration (`keycloak.json`), as the console's "Download adapter config"
/// gives it to keycloak-connect and the other Keycloak adapters. Other providers: 404.
pub(super) fn installation(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    if cx.path.key != "keycloak-oidc-keycloak-json" {
        return Err(AdminError::NotFound("Unknown installation format".into()));
    }
    let client = load(cx, &realm)?;
    let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
    let mut config = json!({
        "realm": realm.name,
        "auth-server-url": format!("{base}/"),
        "ssl-required": realm.ssl_required,
        "resource": client.client_id,
        "confidential-port": 0,
    });
    if client.public_client {
        config["public-client"] = true.into();
    } else if client.bearer_only {
        config["bearer-only"] = true.into();
    } else if let Some(secret) = &client.secret {
        config["credentials"] = json!({"secret": secret});
    }
    Ok(ok(&config))
}

/// The realm, client and user of an `evaluate-scopes` request (`?userId=`): the caller
/// needs view-clients and view-users, as the examples show a user's data.
fn example_subject(cx: &Cx) -> Result<(RealmRecord, ClientRecord, UserRecord), AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    cx.caller.require(&realm.name, Permission::ViewUsers)?;
    let client = load(cx, &realm)?;
    let user_id = cx
        .query("userId")
        .ok_or_else(|| AdminError::BadRequest("No userId provided".into()))?;
    let user = cx
        .app
        .store
        .read()?
        .user(&realm.id, &user_id)?
        .ok_or_else(|| AdminError::NotFound("No user found".into()))?;
    Ok((realm, client, user))
}

/// `GET /clients/{id}/evaluate-scopes/generate-example-access-token?userId=&scope=` (and
/// `generate-example-id-token`, `id_token` true): the claims the client's token for that
/// user would carry now, issued by the token endpoint's own code (with the client's role
/// scope and mappers) and shown unsigned, as the console's "Evaluate" tab does.
pub(super) fn example_token(cx: &Cx, id_token: bool) -> Result<Response, AdminError> {
    let (realm, client, user) = example_subject(cx)?;
    let read = cx.app.store.read()?;
    let requested = format!("openid {}", cx.query("scope").unwrap_or_default());
    let scopes = super::client_scopes::resolved(&read, &realm, &client, &requested)?;
    let (roles, group_paths) =
        crate::idp::oidc::token::token_roles(&read, &realm.id, &client, &scopes, &user.id)?;
    let keys = cx
        .app
        .keys
        .realm_keys(&read, &realm.id, cx.now_ms)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    drop(read);
    let issuer = crate::idp::oidc::issuer(cx.app, cx.request, cx.info, &realm.name);
    let issued = crate::idp::tokens::issue(
        &keys,
        &crate::idp::tokens::IssueContext {
            issuer: &issuer,
            realm: &realm,
            client: &client,
            user: &user,
            roles: &roles,
            scopes: &scopes,
            session: None,
            nonce: None,
            now_secs: cx.now_ms / 1000,
            refresh: false,
            group_paths: &group_paths,
            client_address: None,
        },
    )
    .map_err(|e| AdminError::Internal(e.to_string()))?;
    let token = if id_token {
        issued.id_token.unwrap_or_default()
    } else {
        issued.access_token
    };
    let claims: Value = crate::crypto::jwt::decode_unverified(&token)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    Ok(ok(&claims))
}

/// `GET /clients/{id}/evaluate-scopes/generate-example-userinfo?userId=`: what the
/// userinfo endpoint would answer that user through this client.
pub(super) fn example_userinfo(cx: &Cx) -> Result<Response, AdminError> {
    let (realm, client, user) = example_subject(cx)?;
    let read = cx.app.store.read()?;
    let requested = format!("openid {}", cx.query("scope").unwrap_or_default());
    let body = crate::idp::oidc::userinfo::userinfo_claims(
        &read,
        &realm,
        &user,
        Some(&client),
        &requested,
    )?;
    Ok(ok(&body))
}

/// `GET /clients/{id}/evaluate-scopes/protocol-mappers?scope=`: the mappers a token for
/// that scope would run, and where each comes from (the client or a client scope).
pub(super) fn evaluate_mappers(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = load(cx, &realm)?;
    let read = cx.app.store.read()?;
    let requested = format!("openid {}", cx.query("scope").unwrap_or_default());
    let scopes = super::client_scopes::resolved(&read, &realm, &client, &requested)?;
    let entry = |m: &Value, id: &str, name: &str, kind: &str| {
        json!({
            "mapperId": m.get("id"), "mapperName": m.get("name"),
            "protocolMapper": m.get("protocolMapper"),
            "containerId": id, "containerName": name, "containerType": kind,
        })
    };
    let mut list: Vec<Value> = client
        .protocol_mappers
        .iter()
        .map(|m| entry(m, &client.id, &client.client_id, "client"))
        .collect();
    for s in &scopes.applied {
        list.extend(
            s.protocol_mappers
                .iter()
                .map(|m| entry(m, &s.id, &s.name, "client-scope")),
        );
    }
    Ok(ok(&Value::Array(list)))
}

/// `GET /clients/{id}/evaluate-scopes/scope-mappings/{container}/granted` and
/// `.../not-granted?scope=`: the roles of a container (the realm, by name or id, or a
/// client) that the client's tokens may carry for that scope, or may not.
pub(super) fn evaluate_role_scope(cx: &Cx) -> Result<Response, AdminError> {
    let granted = match cx.path.key.as_str() {
        "granted" => true,
        "not-granted" => false,
        _ => return Err(AdminError::NotFound("Not Found".into())),
    };
    let realm = cx.realm(Permission::ViewClients)?;
    let client = load(cx, &realm)?;
    let read = cx.app.store.read()?;
    let container = if cx.path.client == realm.name || cx.path.client == realm.id {
        realm.id.clone()
    } else {
        read.client(&realm.id, &cx.path.client)?
            .ok_or_else(|| AdminError::NotFound("Role container not found".into()))?
            .id
    };
    let requested = format!("openid {}", cx.query("scope").unwrap_or_default());
    let scopes = super::client_scopes::resolved(&read, &realm, &client, &requested)?;
    let all = read.roles(&realm.id, &container)?;
    let allowed: std::collections::HashSet<String> = if client.full_scope_allowed {
        all.iter().map(|r| r.id.clone()).collect()
    } else {
        let mut ids = client.scope_role_ids.clone();
        ids.extend(scopes.role_ids().cloned());
        let mut set: std::collections::HashSet<String> =
            crate::idp::roles::expand(&read, &realm.id, ids)?
                .into_iter()
                .map(|r| r.id)
                .collect();
        if container == client.id {
            set.extend(all.iter().map(|r| r.id.clone()));
        }
        set
    };
    let list: Vec<Value> = all
        .iter()
        .filter(|r| allowed.contains(&r.id) == granted)
        .map(super::repr::role_repr)
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// The client attribute prefixes that hold a key certificate (`jwt.credential` for
/// `private_key_jwt`, the SAML ones Keycloak also lists).
const CERTIFICATE_ATTRIBUTES: &[&str] = &["jwt.credential", "saml.signing", "saml.encryption"];

fn certificate_attribute(cx: &Cx) -> Result<String, AdminError> {
    let attr = cx.path.key.as_str();
    if CERTIFICATE_ATTRIBUTES.contains(&attr) {
        Ok(attr.to_string())
    } else {
        Err(AdminError::NotFound("Unknown certificate attribute".into()))
    }
}

/// `GET /clients/{id}/certificates/{attr}`: the certificate a client's key attribute holds.
pub(super) fn certificate(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let attr = certificate_attribute(cx)?;
    let client = load(cx, &realm)?;
    let mut body = json!({});
    if let Some(c) = client.attributes.get(&format!("{attr}.certificate")) {
        body["certificate"] = c.clone().into();
    }
    if let Some(k) = client.attributes.get(&format!("{attr}.kid")) {
        body["kid"] = k.clone().into();
    }
    Ok(ok(&body))
}

/// `POST /clients/{id}/certificates/{attr}/generate`: a new RSA key pair with a
/// self-signed certificate; the certificate is stored (the client then signs its
/// `private_key_jwt` assertions with the key), the private key is returned once and never
/// kept.
pub(super) fn generate_certificate(cx: &Cx) -> Result<Response, AdminError> {
    use base64::Engine;
    let realm = cx.realm(Permission::ManageClients)?;
    let attr = certificate_attribute(cx)?;
    let pkcs8 = crate::crypto::jwt::generate_pkcs8(crate::crypto::jwt::Algorithm::RS256)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let kid = random_id();
    let client = load(cx, &realm)?;
    let der = crate::idp::keys::certificate(&pkcs8, &kid, &client.client_id, cx.now_ms)
        .ok_or_else(|| AdminError::Internal("could not sign a certificate".into()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (certificate, private_key) = (b64.encode(&der), b64.encode(&pkcs8));
    cx.app.store.write(|w| {
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        client
            .attributes
            .insert(format!("{attr}.certificate"), certificate.clone());
        client.attributes.insert(format!("{attr}.kid"), kid.clone());
        w.put_client(&realm.id, &client).map_err(AdminError::from)
    })?;
    Ok(ok(
        &json!({"certificate": certificate, "privateKey": private_key, "kid": kid}),
    ))
}
