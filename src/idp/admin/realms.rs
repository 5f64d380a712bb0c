//! `/admin/realms` and `/admin/realms/{realm}`.

use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::realm::{self, MASTER};
use crate::store::RealmRecord;

use super::repr::{realm_repr, RealmInput};
use super::{no_content, ok, Cx, Permission};

/// A realm name Keycloak would accept in a URL path segment.
fn valid_realm_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '%' | '?' | '#'))
}

/// `GET /admin/realms`: the realms the caller administers.
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    // The realms the caller administers in any way; their settings only with
    // view-realm (Keycloak's realm name list).
    let realms = cx.app.store.read()?.realms()?;
    let list: Vec<Value> = realms
        .iter()
        .filter(|r| cx.caller.administers(&r.name))
        .map(|r| {
            if cx.flag("briefRepresentation") == Some(true)
                || !cx.caller.can(&r.name, Permission::ViewRealm)
            {
                serde_json::json!({"id": r.id, "realm": r.name})
            } else {
                realm_repr(r)
            }
        })
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST /admin/realms`: create a realm.
pub(super) async fn create(cx: &Cx<'_>) -> Result<Response, AdminError> {
    if !cx.caller.can_create_realm() {
        return Err(AdminError::Forbidden);
    }
    let body = cx.json_object()?;
    // A full representation may carry users with plain passwords: hash them on the pool.
    let body = cx
        .app
        .hashes
        .run(move || super::users::prehash_realm_body(body))
        .await
        .map_err(|_| AdminError::Busy)??;
    let name = body
        .get("realm")
        .and_then(|v| v.as_str())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::BadRequest("Realm name cannot be empty".into()))?;
    if !valid_realm_name(&name) {
        return Err(AdminError::BadRequest(format!(
            "Invalid realm name: {name}"
        )));
    }
    let caller = cx.caller.clone();
    let now = cx.now_ms;
    let created = cx.app.store.write(|w| {
        let created = super::transfer::import_realm(w, &body, now)?;
        // A creator who is not a super-admin gets the new realm's management roles.
        if !caller.is_super_admin() {
            let master = w
                .realm_by_name(MASTER)?
                .ok_or_else(|| AdminError::Internal("no master realm".into()))?;
            if let Some(c) = w.client_by_client_id(&master.id, &format!("{name}-realm"))? {
                for role in w.roles(&master.id, &c.id)? {
                    w.grant_user_role(&master.id, &caller.user_id, &role.id)
                        .map_err(AdminError::from)?;
                }
            }
        }
        Ok::<_, AdminError>(created)
    })?;
    let mut r = cx.created(&created.name);
    // Keycloak's Location for a realm is /admin/realms/{name}.
    let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
    if let Ok(v) = http::HeaderValue::from_str(&format!("{base}/admin/realms/{}", created.name)) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /admin/realms/{realm}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    // With view-realm the whole representation; with any other management role
    // only the name (as Keycloak answers); without one, 403.
    let realm = cx.realm_unchecked()?;
    if cx.caller.can(&realm.name, Permission::ViewRealm) {
        Ok(ok(&realm_repr(&realm)))
    } else if cx.caller.administers(&realm.name) {
        Ok(ok(
            &serde_json::json!({"id": realm.id, "realm": realm.name}),
        ))
    } else {
        Err(AdminError::Forbidden)
    }
}

/// `PUT /admin/realms/{realm}`
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let input: RealmInput = cx.json()?;
    if let Some(name) = input.realm.as_ref().map(|n| n.trim()) {
        if name != realm.name {
            if realm.name == MASTER {
                return Err(AdminError::BadRequest("Can't rename master realm".into()));
            }
            if !valid_realm_name(name) {
                return Err(AdminError::BadRequest(format!(
                    "Invalid realm name: {name}"
                )));
            }
        }
    }
    cx.app.store.write(|w| {
        // Applied to the realm as this transaction reads it: a change made meanwhile by
        // another request (default groups, scope lists, bindings) is kept.
        let mut updated = w
            .realm(&realm.id)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        input.apply(&mut updated).map_err(AdminError::BadRequest)?;
        if let Some(name) = input.realm.as_ref().map(|n| n.trim()) {
            updated.name = name.to_string();
        }
        super::flows::check_bindings(&**w, &updated)?;
        w.put_realm(&updated).map_err(AdminError::from)?;
        if updated.name != realm.name {
            // Keep the master management client's name in step.
            if let Some(master) = w.realm_by_name(MASTER)? {
                if let Some(mut c) =
                    w.client_by_client_id(&master.id, &format!("{}-realm", realm.name))?
                {
                    c.client_id = format!("{}-realm", updated.name);
                    w.put_client(&master.id, &c).map_err(AdminError::from)?;
                }
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `DELETE /admin/realms/{realm}`
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    if realm.name == MASTER {
        return Err(AdminError::BadRequest("Can't delete master realm".into()));
    }
    cx.app
        .store
        .write(|w| realm::delete_realm(w, &realm))
        .map_err(AdminError::from)?;
    cx.app.keys.invalidate(&realm.id);
    Ok(no_content())
}

/// `POST /admin/realms/{realm}/logout-all`: end every session of the realm.
pub(super) fn logout_all(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    cx.app
        .store
        .write(|w| w.delete_realm_sessions(&realm.id))
        .map_err(AdminError::from)?;
    Ok(ok(&serde_json::json!({"realm": realm.name})))
}

impl Cx<'_> {
    /// The target realm without a permission check (callers check their own rule).
    pub(crate) fn realm_unchecked(&self) -> Result<RealmRecord, AdminError> {
        self.app
            .store
            .read()?
            .realm_by_name(&self.path.realm)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))
    }
}

/// `POST /admin/realms/{realm}/partialImport`: users, clients, roles and groups from a
/// realm representation, with `ifResourceExists` FAIL (default), SKIP or OVERWRITE. All or
/// nothing: on failure nothing is imported.
pub(super) async fn partial_import(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let body = cx.json_object()?;
    let policy = match body.get("ifResourceExists").and_then(|v| v.as_str()) {
        None => super::transfer::IfExists::Fail,
        Some(p) => super::transfer::IfExists::parse(p).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "Invalid ifResourceExists: {p} (FAIL, SKIP or OVERWRITE)"
            ))
        })?,
    };
    let mut input: RealmInput = serde_json::from_value(body)
        .map_err(|e| AdminError::BadRequest(format!("Invalid representation: {e}")))?;
    input.realm = None;
    // Plain passwords are hashed on the bounded pool before the transaction, not on this
    // worker inside it.
    if let Some(users) = input.users.take() {
        input.users = Some(
            cx.app
                .hashes
                .run(move || super::users::prehash_credentials(users))
                .await
                .map_err(|_| AdminError::Busy)??,
        );
    }
    let now = cx.now_ms;
    let counts = cx.app.store.write(|w| {
        let counts = super::transfer::import_contents(w, &realm, &input, now, policy)?;
        // All or nothing: an import that would grant power the caller lacks is undone.
        let granted = super::grants::of_realm(w, &realm, &input)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        Ok::<_, AdminError>(counts)
    })?;
    Ok(ok(&serde_json::json!({
        "overwritten": counts.overwritten, "added": counts.added, "skipped": counts.skipped, "results": [],
    })))
}

/// `bindCredential` masked in a component list and its sub-components, as Keycloak's
/// partial export does.
fn mask_credentials(list: &mut serde_json::Value) {
    for c in list.as_array_mut().into_iter().flatten() {
        if let Some(cred) = c.pointer_mut("/config/bindCredential") {
            *cred = serde_json::json!(["**********"]);
        }
        if let Some(subs) = c.get_mut("subComponents").and_then(|s| s.as_object_mut()) {
            for l in subs.values_mut() {
                mask_credentials(l);
            }
        }
    }
}

/// `POST /admin/realms/{realm}/partial-export`: the realm with (optionally) clients, groups
/// and roles, never users; client secrets are masked as Keycloak does.
pub(super) fn partial_export(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let mut v = super::transfer::export_realm(&cx.app.store.read()?, &realm)?;
    if cx.flag("exportClients") != Some(true) {
        v["clients"] = serde_json::json!([]);
    } else if let Some(list) = v["clients"].as_array_mut() {
        for c in list {
            if c.get("secret").is_some_and(|s| !s.is_null()) {
                c["secret"] = "**********".into();
            }
        }
    }
    if cx.flag("exportGroupsAndRoles") != Some(true) {
        v["groups"] = serde_json::json!([]);
        v["roles"] = serde_json::json!({"realm": [], "client": {}});
    }
    // Private keys, identity providers' client secrets, bind credentials and the SMTP
    // password never leave through the API.
    if let Some(components) = v["components"].as_object_mut() {
        components.remove(super::transfer::KEY_PROVIDER);
        for list in components.values_mut() {
            mask_credentials(list);
        }
    }
    if let Some(list) = v["identityProviders"].as_array_mut() {
        for idp in list {
            if let Some(secret) = idp.pointer_mut("/config/clientSecret") {
                *secret = "**********".into();
            }
        }
    }
    v["smtpServer"] = super::repr::smtp_repr(&realm);
    Ok(ok(&v))
}

/// `GET /admin/realms/{realm}/keys`: the realm's keys in Keycloak's KeysMetadataRepresentation
/// (public parts only).
pub(super) fn keys(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let read = cx.app.store.read()?;
    let parsed = cx
        .app
        .keys
        .realm_keys(&read, &realm.id, cx.now_ms)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let mut active = serde_json::Map::new();
    let mut list = Vec::new();
    for k in read.signing_keys(&realm.id)? {
        let status = k.status.clone();
        if status == crate::idp::keys::ACTIVE {
            active.insert(k.algorithm.clone(), k.kid.clone().into());
        }
        let public = parsed.verifier(&k.kid).map(|v| v.spki_base64());
        list.push(serde_json::json!({
            "providerId": if k.algorithm == "RS256" { "rsa-generated" } else { "ecdsa-generated" },
            "providerPriority": 100, "kid": k.kid, "status": status,
            "type": if k.algorithm == "RS256" { "RSA" } else { "EC" },
            "algorithm": k.algorithm, "publicKey": public, "use": "SIG",
            "validTo": k.retire_at, "certificate": parsed.certificate(&k.kid),
        }));
    }
    Ok(ok(&serde_json::json!({"active": active, "keys": list})))
}

/// `POST /admin/realms/{realm}/keys` with `{"algorithm": "RS256"|"ES256"}` rotates that key
/// (ours: Keycloak rotates by adding a key provider); old tokens stay verifiable.
pub(super) fn rotate_keys(cx: &Cx) -> Result<Response, AdminError> {
    use crate::crypto::jwt::Algorithm;
    let realm = cx.realm(Permission::ManageRealm)?;
    let body = cx.json_object()?;
    let algorithm = body
        .get("algorithm")
        .and_then(|v| v.as_str())
        .and_then(Algorithm::parse)
        .ok_or_else(|| AdminError::BadRequest("algorithm must be RS256 or ES256".into()))?;
    // Old tokens stay verifiable until the longest-lived of them expires.
    let keep = realm
        .access_token_lifespan
        .max(realm.sso_session_max_lifespan)
        .max(realm.offline_session_idle_timeout)
        * 1000;
    let now = cx.now_ms;
    let kid = cx
        .app
        .store
        .write(|w| crate::idp::keys::rotate(w, &realm.id, algorithm, now, now + keep))
        .map_err(|e| match e {
            crate::idp::keys::KeyError::Store(s) => AdminError::from(s),
            other => AdminError::Internal(other.to_string()),
        })?;
    cx.app.keys.invalidate(&realm.id);
    Ok(ok(&serde_json::json!({"kid": kid})))
}

fn query_millis(cx: &Cx, name: &str) -> Option<i64> {
    // `dateFrom`/`dateTo` are dates (`2026-11-28`) or epoch milliseconds.
    let v = cx.query(name)?;
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    let date = humantime::parse_rfc3339_weak(&format!("{v} 00:00:00")).ok()?;
    date.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

/// `GET /events` (login events; `admin`: `GET /admin-events`), with Keycloak's filters
/// and paging.
pub(super) fn list_events(cx: &Cx, admin: bool) -> Result<Response, AdminError> {
    use crate::idp::events::ADMIN;
    let realm = cx.realm(Permission::ViewEvents)?;
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    let from = query_millis(cx, "dateFrom").unwrap_or(0);
    // `dateTo` is inclusive of the whole day.
    let to = query_millis(cx, "dateTo")
        .map(|t| t.saturating_add(86_399_999))
        .unwrap_or(i64::MAX);
    let types: Vec<String> = cx
        .request
        .uri()
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "type" || k == "operationTypes")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let client = cx.query(if admin { "authClient" } else { "client" });
    let user = cx.query(if admin { "authUser" } else { "user" });
    let ip = cx.query(if admin { "authIpAddress" } else { "ipAddress" });
    let resource_types = cx.query("resourceTypes");
    let resource_path = cx.query("resourcePath");
    let all = cx.app.store.read()?.events(&realm.id, from, usize::MAX)?;
    let list: Vec<Value> = all
        .into_iter()
        .filter(|e| e.time <= to && (e.kind == ADMIN) == admin)
        .filter(|e| {
            let kind = if admin { e.details.get("operationType").cloned().unwrap_or_default() } else { e.kind.clone() };
            types.is_empty() || types.contains(&kind)
        })
        .filter(|e| client.as_ref().is_none_or(|c| e.client_id.as_ref() == Some(c)))
        .filter(|e| user.as_ref().is_none_or(|u| e.user_id.as_ref() == Some(u)))
        .filter(|e| ip.as_ref().is_none_or(|i| e.ip_address.as_ref() == Some(i)))
        .filter(|e| resource_types.as_ref().is_none_or(|r| e.details.get("resourceType") == Some(r)))
        .filter(|e| {
            resource_path.as_ref().is_none_or(|p| {
                let path = e.details.get("resourcePath").cloned().unwrap_or_default();
                match p.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => &path == p,
                }
            })
        })
        .skip(first)
        .take(max)
        .map(|e| {
            if admin {
                let d = |k: &str| e.details.get(k).cloned();
                serde_json::json!({
                    "time": e.time, "realmId": realm.id,
                    "authDetails": {"realmId": d("authRealmId"), "clientId": d("authClientId"), "userId": d("authUserId"), "ipAddress": e.ip_address},
                    "operationType": d("operationType"), "resourceType": d("resourceType"),
                    "resourcePath": d("resourcePath"), "representation": d("representation"), "error": e.error,
                })
            } else {
                serde_json::json!({
                    "time": e.time, "type": e.kind, "realmId": realm.id, "clientId": e.client_id,
                    "userId": e.user_id, "sessionId": e.session_id, "ipAddress": e.ip_address,
                    "error": e.error, "details": e.details,
                })
            }
        })
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `DELETE /events` (`admin`: `DELETE /admin-events`).
pub(super) fn clear_events(cx: &Cx, admin: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageEvents)?;
    cx.app
        .store
        .write(|w| w.clear_events(&realm.id, admin))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `GET /events/config`
pub(super) fn events_config(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewEvents)?;
    Ok(ok(&serde_json::json!({
        "eventsEnabled": realm.events_enabled, "eventsExpiration": realm.events_expiration,
        "eventsListeners": realm.events_listeners, "enabledEventTypes": realm.enabled_event_types,
        "adminEventsEnabled": realm.admin_events_enabled, "adminEventsDetailsEnabled": realm.admin_events_details_enabled,
    })))
}

/// `PUT /events/config`
pub(super) fn update_events_config(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageEvents)?;
    let input: RealmInput = cx.json()?;
    if let Some(listeners) = &input.events_listeners {
        if let Some(bad) = listeners.iter().find(|l| l.as_str() != "jboss-logging") {
            return Err(AdminError::BadRequest(format!(
                "Unknown event listener: {bad}"
            )));
        }
    }
    let mut updated = realm.clone();
    // Only the event settings of the body are applied here.
    let events_only = RealmInput {
        events_enabled: input.events_enabled,
        events_expiration: input.events_expiration,
        events_listeners: input.events_listeners.clone(),
        enabled_event_types: input.enabled_event_types.clone(),
        admin_events_enabled: input.admin_events_enabled,
        admin_events_details_enabled: input.admin_events_details_enabled,
        ..Default::default()
    };
    events_only
        .apply(&mut updated)
        .map_err(AdminError::BadRequest)?;
    cx.app
        .store
        .write(|w| w.put_realm(&updated))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `POST /clear-realm-cache`, `/clear-user-cache`, `/clear-keys-cache`: nothing to clear
/// but the parsed signing keys (the store is read through on every request); `keys` drops
/// those of the realm.
pub(crate) fn clear_cache(cx: &Cx, keys: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    if keys {
        cx.app.keys.invalidate(&realm.id);
    }
    Ok(no_content())
}

/// `POST /push-revocation` (and `/clients/{id}/push-revocation`): Keycloak pushes the
/// not-before time to clients with an admin URL. No client here has one (back-channel
/// admin URLs are not supported), so nothing is sent and nothing fails: tokens issued
/// before `notBefore` are refused by this server itself.
pub(super) fn push_revocation(cx: &Cx, client: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    if client
        && cx
            .app
            .store
            .read()?
            .client(&realm.id, &cx.path.id)?
            .is_none()
    {
        return Err(AdminError::NotFound("Could not find client".into()));
    }
    Ok(ok(
        &serde_json::json!({"successRequests": [], "failedRequests": []}),
    ))
}
