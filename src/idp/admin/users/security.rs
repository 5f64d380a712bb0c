//! A user's credentials, sessions and brute-force state.

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::admin::repr::credential_repr;
use crate::idp::admin::{deleted, no_content, ok, Cx, Permission};
use crate::store::CredentialRecord;

use super::load_user;

/// `GET /users/{id}/credentials`
pub(crate) fn credentials(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let creds = ordered(&cx.app.store.read()?, &realm.id, &cx.path.id)?;
    Ok(ok(&Value::Array(
        creds.iter().map(credential_repr).collect(),
    )))
}

/// `GET /users/{id}/configured-user-storage-credential-types`: the credential types the
/// user's storage provider keeps (an LDAP user's password is the directory's, unless its
/// UNSYNCED provider let it set a local one); none for a local user.
pub(crate) fn storage_credential_types(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    let read = cx.app.store.read()?;
    let provider = crate::idp::federation::provider_of(&read, &realm, &user)?;
    let local_password = read
        .credentials(&realm.id, &user.id)?
        .iter()
        .any(|c| c.kind == "password");
    let types: Vec<&str> = match provider {
        Some(_) if !local_password => vec!["password"],
        _ => Vec::new(),
    };
    Ok(ok(&json!(types)))
}

/// A user's credentials in Keycloak's order (priority, then age), without the remembered
/// old passwords (passwordHistory), which are not credentials of the user.
fn ordered(
    read: &crate::store::View<impl crate::store::Txn>,
    realm: &str,
    user: &str,
) -> Result<Vec<CredentialRecord>, AdminError> {
    let mut creds: Vec<CredentialRecord> = read
        .credentials(realm, user)?
        .into_iter()
        .filter(|c| c.kind != crate::idp::password_policy::HISTORY_KIND)
        .collect();
    creds.sort_by_key(|c| (c.priority, c.created_date));
    Ok(creds)
}

/// `PUT /users/{id}/credentials/{cred}/userLabel` with the label as `text/plain`.
pub(crate) fn set_label(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    let label = std::str::from_utf8(cx.request.body())
        .map_err(|_| AdminError::BadRequest("The label must be UTF-8 text".into()))?
        .trim()
        .to_string();
    if label.chars().count() > 255 {
        return Err(AdminError::BadRequest(
            "The label must be at most 255 characters".into(),
        ));
    }
    cx.app.store.write(|w| {
        let mut cred = ordered(w, &realm.id, &cx.path.id)?
            .into_iter()
            .find(|c| c.id == cx.path.cred)
            .ok_or_else(|| AdminError::NotFound("Credential not found".into()))?;
        cred.user_label = Some(label).filter(|l| !l.is_empty());
        w.put_credential(&realm.id, &cx.path.id, &cred)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `POST /users/{id}/credentials/{cred}/moveToFirst` (`after` None) and
/// `.../moveAfter/{previous}`: reorder the user's credentials (priorities 10, 20, ...).
pub(crate) fn move_credential(cx: &Cx, after: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app.store.write(|w| {
        let mut creds = ordered(w, &realm.id, &cx.path.id)?;
        let missing = || AdminError::NotFound("Credential not found".into());
        let at = creds
            .iter()
            .position(|c| c.id == cx.path.cred)
            .ok_or_else(missing)?;
        let moved = creds.remove(at);
        let to = if after {
            1 + creds
                .iter()
                .position(|c| c.id == cx.path.after)
                .ok_or_else(missing)?
        } else {
            0
        };
        creds.insert(to, moved);
        for (i, c) in creds.iter_mut().enumerate() {
            let priority = 10 * (i32::try_from(i).unwrap_or(i32::MAX / 10 - 1) + 1);
            if c.priority != priority {
                c.priority = priority;
                w.put_credential(&realm.id, &cx.path.id, c)
                    .map_err(AdminError::from)?;
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `DELETE /users/{id}/credentials/{cred}`
pub(crate) fn credential(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let existed = cx
        .app
        .store
        .write(|w| {
            // Remembered old passwords are not credentials of the user (they are not
            // listed): deleting one by id would wipe the password history.
            let is_history = w.credentials(&realm.id, &cx.path.id)?.iter().any(|c| {
                c.id == cx.path.cred && c.kind == crate::idp::password_policy::HISTORY_KIND
            });
            if is_history {
                return Ok(false);
            }
            w.delete_credential(&realm.id, &cx.path.id, &cx.path.cred)
        })
        .map_err(AdminError::from)?;
    deleted(existed, "Credential not found")
}

/// `GET /users/{id}/sessions`
pub(crate) fn sessions(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    let online: Vec<_> = cx
        .app
        .store
        .read()?
        .user_sessions(&realm.id, &user.id)?
        .into_iter()
        .filter(|s| !s.offline)
        .collect();
    let out = crate::idp::admin::sessions::session_reprs(cx, &realm, &online)?;
    Ok(ok(&Value::Array(out)))
}

/// `POST /users/{id}/logout`: end every session of the user.
pub(crate) fn logout(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app.store.write(|w| {
        // Offline sessions are consents, not logins: they survive a logout (as in Keycloak).
        for s in w
            .user_sessions(&realm.id, &cx.path.id)?
            .into_iter()
            .filter(|s| !s.offline)
        {
            crate::idp::sessions::end_in(w, &realm.id, &s.id)?;
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /attack-detection/brute-force/users/{id}`: the user's failures and lock.
pub(crate) fn brute_force_status(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let read = cx.app.store.read()?;
    let failure = read
        .login_failure(&realm.id, &cx.path.id)?
        .unwrap_or_default();
    let locked = crate::idp::brute_force::is_locked(&read, &realm, &cx.path.id, None, cx.now_ms)?;
    Ok(ok(&json!({
        "numFailures": failure.num_failures,
        "disabled": locked,
        "lastIPFailure": failure.last_ip_failure.unwrap_or_else(|| "n/a".into()),
        "lastFailure": failure.last_failure,
    })))
}

/// `DELETE /attack-detection/brute-force/users/{id}` (`one`), and
/// `DELETE /attack-detection/brute-force/users` (every user of the realm).
pub(crate) fn clear_brute_force(cx: &Cx, one: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let user = one.then_some(cx.path.id.as_str());
    cx.app
        .store
        .write(|w| w.clear_login_failures(&realm.id, user))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `PUT /users/{id}/remove-totp`: remove the user's authenticators (OTP credentials).
pub(crate) fn remove_totp(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app.store.write(|w| {
        for c in w.credentials(&realm.id, &cx.path.id)? {
            if c.kind == "otp" {
                w.delete_credential(&realm.id, &cx.path.id, &c.id)?;
            }
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    Ok(no_content())
}

/// `GET /users/{id}/unmanagedAttributes`: attributes outside a declarative user profile;
/// without one, all of the user's attributes.
pub(crate) fn unmanaged_attributes(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    Ok(ok(&json!(user.attributes)))
}

/// `GET /users/{id}/federated-identity`: the user's links to identity providers.
pub(crate) fn federated_identities(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let links = cx
        .app
        .store
        .read()?
        .federated_identities(&realm.id, &cx.path.id)?;
    Ok(ok(&Value::Array(links)))
}

/// `POST /users/{id}/federated-identity/{provider}` with `{"userId", "userName"}`: link the
/// user to that identity at the provider.
pub(crate) fn link_identity(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    let body = cx.json_object()?;
    let alias = cx.path.provider.clone();
    let provider_user = body
        .get("userId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdminError::BadRequest("userId is required".into()))?
        .to_string();
    let user_name = body
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or(&provider_user)
        .to_string();
    cx.app.store.write(|w| {
        if w.object(&realm.id, crate::idp::broker::IDP_KIND, &alias)?
            .is_none()
        {
            return Err(AdminError::BadRequest(format!(
                "Identity Provider {alias} does not exist"
            )));
        }
        w.link_federated_identity(&realm.id, &cx.path.id, &alias, &provider_user, &user_name)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /users/{id}/federated-identity/{provider}`
pub(crate) fn unlink_identity(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    let removed = cx
        .app
        .store
        .write(|w| w.unlink_federated_identity(&realm.id, &cx.path.id, &cx.path.provider))?;
    deleted(removed, "Federated identity not found")
}
