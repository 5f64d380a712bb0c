//! `/admin/realms` and `/admin/realms/{realm}`.

use http::Method;
use serde_json::Value;

use crate::http::error::AdminError;
use crate::http::Response;
use crate::idp::realm::{self, RealmError, MASTER};
use crate::store::{RealmRecord, StoreError};

use super::repr::{realm_repr, RealmInput};
use super::{method_not_allowed, no_content, ok, store_error, users, Cx, Permission};

fn realm_error(e: RealmError) -> AdminError {
    match e {
        RealmError::Exists => {
            AdminError::Conflict("Conflict detected. See logs for details".into())
        }
        RealmError::Store(s) => store_error(s),
        other => AdminError::Internal(other.to_string()),
    }
}

/// A realm name Keycloak would accept in a URL path segment.
fn valid_realm_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '%' | '?' | '#'))
}

/// `GET /admin/realms` (the realms the caller may view), `POST /admin/realms` (create).
pub fn collection(cx: &Cx) -> Result<Response, AdminError> {
    match *cx.method() {
        Method::GET => {
            let realms = cx.app.store.read()?.realms()?;
            let list: Vec<Value> = realms
                .iter()
                .filter(|r| {
                    cx.caller.can(&r.name, Permission::ViewRealm) || cx.caller.realm == r.name
                })
                .map(|r| {
                    if cx.flag("briefRepresentation") == Some(true) {
                        serde_json::json!({"id": r.id, "realm": r.name})
                    } else {
                        realm_repr(r)
                    }
                })
                .collect();
            Ok(ok(&Value::Array(list)))
        }
        Method::POST => {
            if !cx.caller.can_create_realm() {
                return Err(AdminError::Forbidden);
            }
            let input: RealmInput = cx.json()?;
            let name = input
                .realm
                .clone()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| AdminError::BadRequest("Realm name cannot be empty".into()))?;
            if !valid_realm_name(&name) {
                return Err(AdminError::BadRequest(format!(
                    "Invalid realm name: {name}"
                )));
            }
            let mut record = RealmRecord {
                id: input
                    .id
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_default(),
                name: name.clone(),
                ..Default::default()
            };
            input.apply(&mut record).map_err(AdminError::BadRequest)?;
            let caller = cx.caller.clone();
            let now = cx.now_ms;
            let created = cx.app.store.write(|w| {
                let created = realm::create_realm(w, record, now).map_err(realm_error)?;
                import_contents(w, &created, &input, now)?;
                // A creator who is not a super-admin gets the new realm's management roles.
                if !caller.is_super_admin() {
                    let master = w
                        .realm_by_name(MASTER)?
                        .ok_or_else(|| AdminError::Internal("no master realm".into()))?;
                    if let Some(c) = w.client_by_client_id(&master.id, &format!("{name}-realm"))? {
                        for role in w.roles(&master.id, &c.id)? {
                            w.grant_user_role(&master.id, &caller.claims.sub, &role.id)
                                .map_err(store_error)?;
                        }
                    }
                }
                Ok::<_, AdminError>(created)
            })?;
            let mut r = cx.created(&created.name);
            // Keycloak's Location for a realm is /admin/realms/{name}.
            let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
            if let Ok(v) =
                http::HeaderValue::from_str(&format!("{base}/admin/realms/{}", created.name))
            {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            Ok(r)
        }
        _ => Err(method_not_allowed(&[Method::GET, Method::POST])),
    }
}

/// Users, roles and groups given inline in a realm representation.
fn import_contents(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    input: &RealmInput,
    now: i64,
) -> Result<(), AdminError> {
    if let Some(roles) = &input.roles {
        for role in &roles.realm {
            super::roles::create_in(w, realm, &realm.id, false, role).map_err(|e| match e {
                AdminError::Conflict(_) => AdminError::Conflict(format!(
                    "Role with name {} already exists",
                    role.name.clone().unwrap_or_default()
                )),
                other => other,
            })?;
        }
    }
    if let Some(clients) = &input.clients {
        for client in clients {
            super::clients::create_in(w, realm, client, now)?;
        }
        if let Some(roles) = &input.roles {
            for (client_id, list) in &roles.client {
                let client = w
                    .client_by_client_id(&realm.id, client_id)?
                    .ok_or_else(|| {
                        AdminError::BadRequest(format!(
                            "Unknown client {client_id} in roles.client"
                        ))
                    })?;
                for role in list {
                    super::roles::create_in(w, realm, &client.id, true, role)?;
                }
            }
        }
    }
    if let Some(groups) = &input.groups {
        for group in groups {
            super::groups::create_tree(w, realm, None, group)?;
        }
    }
    if let Some(list) = &input.users {
        for user in list {
            users::create_in(w, realm, user, now)?;
        }
    }
    Ok(())
}

/// `GET | PUT | DELETE /admin/realms/{realm}`
pub fn one(cx: &Cx) -> Result<Response, AdminError> {
    match *cx.method() {
        Method::GET => {
            let realm = cx.realm(Permission::ViewRealm).or_else(|e| {
                // Any authenticated user of a realm may read its own realm's basic info.
                match e {
                    AdminError::Forbidden if cx.caller.realm == cx.path.realm => {
                        cx.realm_unchecked()
                    }
                    other => Err(other),
                }
            })?;
            Ok(ok(&realm_repr(&realm)))
        }
        Method::PUT => {
            let realm = cx.realm(Permission::ManageRealm)?;
            let input: RealmInput = cx.json()?;
            let mut updated = realm.clone();
            input.apply(&mut updated).map_err(AdminError::BadRequest)?;
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
                    updated.name = name.to_string();
                }
            }
            cx.app.store.write(|w| {
                w.put_realm(&updated).map_err(store_error)?;
                if updated.name != realm.name {
                    // Keep the master management client's name in step.
                    if let Some(master) = w.realm_by_name(MASTER)? {
                        if let Some(mut c) =
                            w.client_by_client_id(&master.id, &format!("{}-realm", realm.name))?
                        {
                            c.client_id = format!("{}-realm", updated.name);
                            w.put_client(&master.id, &c).map_err(store_error)?;
                        }
                    }
                }
                Ok::<_, AdminError>(())
            })?;
            Ok(no_content())
        }
        Method::DELETE => {
            let realm = cx.realm(Permission::ManageRealm)?;
            if realm.name == MASTER {
                return Err(AdminError::BadRequest("Can't delete master realm".into()));
            }
            cx.app
                .store
                .write(|w| realm::delete_realm(w, &realm))
                .map_err(|e: StoreError| store_error(e))?;
            cx.app.keys.invalidate(&realm.id);
            Ok(no_content())
        }
        _ => Err(method_not_allowed(&[
            Method::GET,
            Method::PUT,
            Method::DELETE,
        ])),
    }
}

/// `POST /admin/realms/{realm}/logout-all`: end every session of the realm.
pub fn logout_all(cx: &Cx) -> Result<Response, AdminError> {
    if cx.method() != Method::POST {
        return Err(method_not_allowed(&[Method::POST]));
    }
    let realm = cx.realm(Permission::ManageUsers)?;
    cx.app
        .store
        .write(|w| w.delete_realm_sessions(&realm.id))
        .map_err(store_error)?;
    Ok(ok(&serde_json::json!({"realm": realm.name})))
}

impl Cx<'_> {
    /// The target realm without a permission check (callers check their own rule).
    pub fn realm_unchecked(&self) -> Result<RealmRecord, AdminError> {
        self.app
            .store
            .read()?
            .realm_by_name(&self.path.realm)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))
    }
}
