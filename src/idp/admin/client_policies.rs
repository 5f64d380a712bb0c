//! `/admin/realms/{realm}/client-policies/{profiles,policies}` (`idp::client_policies`
//! applies them). No global profiles are offered: a policy names only profiles whose
//! executors this server runs.

use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::client_policies;

use super::{no_content, ok, Cx, Permission};

/// `GET /client-policies/profiles` (`include-global-profiles` adds an empty list).
pub(super) fn profiles(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let mut doc = client_policies::profiles(&cx.app.store.read()?, &realm.id)?;
    if cx.flag("include-global-profiles").unwrap_or(false) {
        if let Some(o) = doc.as_object_mut() {
            o.insert("globalProfiles".into(), Value::Array(vec![]));
        }
    }
    Ok(ok(&doc))
}

/// `PUT /client-policies/profiles`
pub(super) fn update_profiles(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let doc = cx.json_object()?;
    cx.app
        .store
        .write(|w| client_policies::put_profiles(w, &realm.id, &doc).map_err(refused))?;
    Ok(no_content())
}

/// `GET /client-policies/policies`
pub(super) fn policies(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let mut doc = client_policies::policies(&cx.app.store.read()?, &realm.id)?;
    if cx.flag("include-global-policies").unwrap_or(false) {
        if let Some(o) = doc.as_object_mut() {
            o.insert("globalPolicies".into(), Value::Array(vec![]));
        }
    }
    Ok(ok(&doc))
}

/// `PUT /client-policies/policies`
pub(super) fn update_policies(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let doc = cx.json_object()?;
    cx.app
        .store
        .write(|w| client_policies::put_policies(w, &realm.id, &doc).map_err(refused))?;
    Ok(no_content())
}

/// A refusal is 400; a store failure what it always is.
fn refused(e: client_policies::Refused) -> AdminError {
    match e {
        client_policies::Refused::Invalid(m) => AdminError::BadRequest(m),
        client_policies::Refused::Store(s) => s.into(),
    }
}
