//! Sessions as the admin API shows them: a client's user and offline sessions and their
//! count, the realm's per-client statistics, ending one session by id, a user's consents
//! (the clients holding offline tokens) and its offline sessions of one client.

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::{ClientRecord, Read, RealmRecord, SessionRecord};

use super::{deleted, no_content, ok, Cx, Permission};

/// Keycloak's `UserSessionRepresentation`: `clients` maps each client's uuid to its
/// clientId.
pub(super) fn session_repr(
    read: &Read,
    realm: &RealmRecord,
    s: &SessionRecord,
) -> Result<Value, AdminError> {
    let username = read
        .user(&realm.id, &s.user_id)?
        .map(|u| u.username)
        .unwrap_or_default();
    let mut clients = serde_json::Map::new();
    for client_id in s.clients.keys() {
        if let Some(c) = read.client_by_client_id(&realm.id, client_id)? {
            clients.insert(c.id, Value::from(client_id.as_str()));
        }
    }
    Ok(json!({
        "id": s.id, "username": username, "userId": s.user_id, "ipAddress": s.ip_address,
        "start": s.created_at, "lastAccess": s.last_access, "rememberMe": s.remember_me,
        "clients": clients, "transientUser": false,
    }))
}

/// Representations of `sessions`, read in one snapshot.
pub(super) fn session_reprs(
    cx: &Cx,
    realm: &RealmRecord,
    sessions: &[SessionRecord],
) -> Result<Vec<Value>, AdminError> {
    let read = cx.app.store.read()?;
    sessions
        .iter()
        .map(|s| session_repr(&read, realm, s))
        .collect()
}

fn client_of_path(cx: &Cx, realm: &RealmRecord) -> Result<ClientRecord, AdminError> {
    cx.app
        .store
        .read()?
        .client(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find client".into()))
}

/// The sessions of the realm in which `client` holds tokens, online or `offline`.
fn client_sessions(
    cx: &Cx,
    realm: &RealmRecord,
    client: &ClientRecord,
    offline: bool,
) -> Result<Vec<SessionRecord>, AdminError> {
    Ok(cx
        .app
        .store
        .read()?
        .realm_sessions(&realm.id)?
        .into_iter()
        .filter(|s| s.offline == offline && s.clients.contains_key(&client.client_id))
        .filter(|s| crate::idp::sessions::is_valid(realm, s, cx.now_ms))
        .collect())
}

fn page(cx: &Cx, list: Vec<Value>) -> Response {
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    ok(&Value::Array(
        list.into_iter().skip(first).take(max).collect(),
    ))
}

/// `GET /clients/{id}/user-sessions` (`offline` false) and `.../offline-sessions`.
pub(super) fn of_client(cx: &Cx, offline: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = client_of_path(cx, &realm)?;
    let sessions = client_sessions(cx, &realm, &client, offline)?;
    Ok(page(cx, session_reprs(cx, &realm, &sessions)?))
}

/// `GET /clients/{id}/session-count` (`offline` false) and `.../offline-session-count`.
pub(super) fn count_of_client(cx: &Cx, offline: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let client = client_of_path(cx, &realm)?;
    let count = client_sessions(cx, &realm, &client, offline)?.len();
    Ok(ok(&json!({"count": count})))
}

/// `GET /client-session-stats`: for each client with sessions, how many (as strings, as
/// Keycloak writes them).
pub(super) fn stats(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let read = cx.app.store.read()?;
    let mut counts: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for s in read.realm_sessions(&realm.id)? {
        if !crate::idp::sessions::is_valid(&realm, &s, cx.now_ms) {
            continue;
        }
        for client_id in s.clients.keys() {
            let entry = counts.entry(client_id.clone()).or_default();
            if s.offline {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    let mut list = Vec::new();
    for (client_id, (active, offline)) in counts {
        if let Some(c) = read.client_by_client_id(&realm.id, &client_id)? {
            list.push(json!({
                "id": c.id, "clientId": c.client_id,
                "active": active.to_string(), "offline": offline.to_string(),
            }));
        }
    }
    Ok(ok(&Value::Array(list)))
}

/// `DELETE /sessions/{id}`: end one session (online or offline).
pub(super) fn end_one(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let ended = cx
        .app
        .store
        .write(|w| crate::idp::sessions::end_in(w, &realm.id, &cx.path.id).map(|s| s.is_some()))?;
    deleted(ended, "Session not found")
}

/// `GET /users/{id}/consents`: the clients the user gave offline access (no consent
/// screens here: the offline tokens are the grants).
pub(super) fn consents(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = super::users::load_user(cx, &realm)?;
    let mut grants: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for s in cx.app.store.read()?.user_sessions(&realm.id, &user.id)? {
        if !s.offline {
            continue;
        }
        for (client_id, at) in &s.clients {
            let e = grants
                .entry(client_id.clone())
                .or_insert((s.created_at, *at));
            e.0 = e.0.min(s.created_at);
            e.1 = e.1.max(*at);
        }
    }
    let list: Vec<Value> = grants
        .into_iter()
        .map(|(client_id, (created, updated))| {
            json!({
                "clientId": client_id, "grantedClientScopes": [], "createdDate": created,
                "lastUpdatedDate": updated, "additionalGrants": [{"client": client_id, "key": "Offline Token"}],
            })
        })
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `DELETE /users/{id}/consents/{client}`: revoke the user's offline tokens of the client
/// (`client` is its clientId).
pub(super) fn revoke_consent(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let user = super::users::load_user(cx, &realm)?;
    let client_id = cx.path.client.clone();
    let revoked = cx.app.store.write(|w| {
        let mut revoked = false;
        for mut s in w.user_sessions(&realm.id, &user.id)? {
            if s.offline && s.clients.contains_key(&client_id) {
                revoked = true;
                crate::idp::sessions::end_client(&mut s, &client_id);
                if s.clients.is_empty() {
                    crate::idp::sessions::end_in(w, &realm.id, &s.id)?;
                } else {
                    w.put_session(&realm.id, &s)?;
                }
            }
        }
        Ok::<_, AdminError>(revoked)
    })?;
    if revoked {
        Ok(no_content())
    } else {
        Err(AdminError::NotFound(format!(
            "Consent nor offline token not found for client {client_id}"
        )))
    }
}

/// `GET /users/{id}/offline-sessions/{client}` (`client` is the client's uuid).
pub(super) fn offline_of_user(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = super::users::load_user(cx, &realm)?;
    let client = cx
        .app
        .store
        .read()?
        .client(&realm.id, &cx.path.client)?
        .ok_or_else(|| AdminError::NotFound("Client not found".into()))?;
    let sessions: Vec<SessionRecord> = cx
        .app
        .store
        .read()?
        .user_sessions(&realm.id, &user.id)?
        .into_iter()
        .filter(|s| s.offline && s.clients.contains_key(&client.client_id))
        .collect();
    Ok(ok(&Value::Array(session_reprs(cx, &realm, &sessions)?)))
}
