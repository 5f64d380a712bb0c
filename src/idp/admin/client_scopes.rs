//! `/admin/realms/{realm}/client-scopes/...`, the realm's default scope lists
//! (`default-default-client-scopes`, `default-optional-client-scopes`) and each client's
//! (`clients/{id}/default-client-scopes`, `optional-client-scopes`). Protocol mappers and
//! scope mappings of a scope are in `protocol_mappers.rs` and `scope_mappings.rs`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::client_scopes::{resolve, ScopeError, Scopes};
use crate::store::{ClientRecord, ClientScopeRecord, Read, RealmRecord, Txn, View};

use super::repr::{client_scope_ref, client_scope_repr, ClientScopeInput};
use super::{deleted, no_content, ok, Cx, Permission};

/// The realm's client scope names by id (for client representations).
pub(super) fn names<T: Txn>(
    read: &View<T>,
    realm_id: &str,
) -> Result<BTreeMap<String, String>, AdminError> {
    Ok(read
        .client_scopes(realm_id)?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

/// The scopes a `scope` value applies to `client`, leniently (the evaluate endpoints).
pub(super) fn resolved(
    read: &Read,
    realm: &RealmRecord,
    client: &ClientRecord,
    requested: &str,
) -> Result<Scopes, AdminError> {
    resolve(read, &realm.id, client, Some(requested), false).map_err(|e| match e {
        ScopeError::Store(s) => s.into(),
        other => AdminError::BadRequest(other.to_string()),
    })
}

fn missing() -> AdminError {
    AdminError::NotFound("Could not find client scope".into())
}

/// `GET /client-scopes`
pub(super) fn list(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryClients)?;
    if !cx.caller.can(&realm.name, Permission::ViewClients) {
        return Ok(ok(&Value::Array(vec![])));
    }
    let list = cx.app.store.read()?.client_scopes(&realm.id)?;
    Ok(ok(&Value::Array(
        list.iter().map(client_scope_repr).collect(),
    )))
}

/// `POST /client-scopes`
pub(super) fn create(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let input: ClientScopeInput = cx.json()?;
    let mut scope = ClientScopeRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        ..Default::default()
    };
    input
        .apply(&mut scope, true)
        .and_then(|()| input.set_mappers(&mut scope))
        .map_err(AdminError::BadRequest)?;
    let exists = || AdminError::Conflict(format!("Client Scope {} already exists", scope.name));
    cx.app.store.write(|w| {
        if w.client_scope(&realm.id, &scope.id)?.is_some()
            || w.client_scope_by_name(&realm.id, &scope.name)?.is_some()
        {
            return Err(exists());
        }
        w.put_client_scope(&realm.id, &scope)
            .map_err(AdminError::from)
    })?;
    Ok(cx.created(&scope.id))
}

fn load(cx: &Cx, realm: &RealmRecord) -> Result<ClientScopeRecord, AdminError> {
    cx.app
        .store
        .read()?
        .client_scope(&realm.id, &cx.path.id)?
        .ok_or_else(missing)
}

/// `GET /client-scopes/{id}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    Ok(ok(&client_scope_repr(&load(cx, &realm)?)))
}

/// `PUT /client-scopes/{id}`
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let input: ClientScopeInput = cx.json()?;
    cx.app.store.write(|w| {
        let mut scope = w
            .client_scope(&realm.id, &cx.path.id)?
            .ok_or_else(missing)?;
        input
            .apply(&mut scope, false)
            .map_err(AdminError::BadRequest)?;
        w.put_client_scope(&realm.id, &scope).map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("Client Scope {} already exists", scope.name))
            }
            other => other.into(),
        })
    })?;
    Ok(no_content())
}

/// `DELETE /client-scopes/{id}`: also off every client and the realm's lists.
pub(super) fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    let existed = cx.app.store.write(|w| {
        if w.client_scope(&realm.id, &cx.path.id)?.is_none() {
            return Ok(false);
        }
        if w.client_scopes(&realm.id)?.len() <= 1 {
            return Err(AdminError::ForbiddenBecause(
                "You are not allowed to delete all the client scopes.".into(),
            ));
        }
        w.delete_client_scope(&realm.id, &cx.path.id)
            .map_err(AdminError::from)
    })?;
    deleted(existed, "Could not find client scope")
}

/// Which of the two lists a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Default,
    Optional,
}

/// The scopes of ids, in order, in the short form.
fn refs<T: Txn>(read: &View<T>, realm_id: &str, ids: &[String]) -> Result<Value, AdminError> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(s) = read.client_scope(realm_id, id)? {
            out.push(client_scope_ref(&s));
        }
    }
    Ok(Value::Array(out))
}

/// Add `id` to `lists[kind]` (taking it off the other list) or remove it.
fn place(default: &mut Vec<String>, optional: &mut Vec<String>, id: &str, kind: Kind, add: bool) {
    default.retain(|s| s != id);
    optional.retain(|s| s != id);
    if add {
        match kind {
            Kind::Default => default.push(id.to_string()),
            Kind::Optional => optional.push(id.to_string()),
        }
    }
}

/// `GET /default-default-client-scopes` and `/default-optional-client-scopes`.
pub(super) fn realm_list(cx: &Cx, kind: Kind) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let ids = match kind {
        Kind::Default => realm.default_client_scope_ids.clone().unwrap_or_default(),
        Kind::Optional => realm.optional_client_scope_ids.clone(),
    };
    Ok(ok(&refs(&cx.app.store.read()?, &realm.id, &ids)?))
}

/// `PUT` (`add`) and `DELETE` `/default-{default,optional}-client-scopes/{scope}`.
pub(super) fn realm_change(cx: &Cx, kind: Kind, add: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    cx.app.store.write(|w| {
        let scope = w
            .client_scope(&realm.id, &cx.path.scope)?
            .ok_or_else(|| AdminError::NotFound("Client scope not found".into()))?;
        let mut realm = w
            .realm(&realm.id)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        let mut default = realm.default_client_scope_ids.take().unwrap_or_default();
        place(
            &mut default,
            &mut realm.optional_client_scope_ids,
            &scope.id,
            kind,
            add,
        );
        realm.default_client_scope_ids = Some(default);
        w.put_realm(&realm).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `GET /clients/{id}/default-client-scopes` and `/optional-client-scopes`.
pub(super) fn client_list(cx: &Cx, kind: Kind) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewClients)?;
    let read = cx.app.store.read()?;
    let client = read
        .client(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
    let ids = match kind {
        Kind::Default => &client.default_client_scopes,
        Kind::Optional => &client.optional_client_scopes,
    };
    Ok(ok(&refs(&read, &realm.id, ids)?))
}

/// `PUT` (`add`) and `DELETE` `/clients/{id}/{default,optional}-client-scopes/{scope}`. A
/// scope of another protocol than the client's is skipped, as Keycloak does.
pub(super) fn client_change(cx: &Cx, kind: Kind, add: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageClients)?;
    cx.app.store.write(|w| {
        let scope = w
            .client_scope(&realm.id, &cx.path.scope)?
            .ok_or_else(|| AdminError::NotFound("Client scope not found".into()))?;
        let mut client = w
            .client(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("Could not find client".into()))?;
        if add && scope.protocol != client.protocol && !client.protocol.is_empty() {
            return Ok(());
        }
        place(
            &mut client.default_client_scopes,
            &mut client.optional_client_scopes,
            &scope.id,
            kind,
            add,
        );
        w.put_client(&realm.id, &client).map_err(AdminError::from)
    })?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_in_one_list_at_most() {
        let (mut d, mut o) = (vec!["a".to_string()], vec!["b".to_string()]);
        place(&mut d, &mut o, "a", Kind::Optional, true);
        assert_eq!(
            (d.clone(), o.clone()),
            (vec![], vec!["b".into(), "a".into()])
        );
        place(&mut d, &mut o, "a", Kind::Default, true);
        place(&mut d, &mut o, "a", Kind::Default, true);
        assert_eq!((d.clone(), o.clone()), (vec!["a".into()], vec!["b".into()]));
        place(&mut d, &mut o, "b", Kind::Optional, false);
        assert_eq!((d, o), (vec!["a".into()], vec![]));
    }
}
