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
    // Remembered old passwords (passwordHistory) are not credentials of the user.
    let creds: Vec<CredentialRecord> = cx
        .app
        .store
        .read()?
        .credentials(&realm.id, &cx.path.id)?
        .into_iter()
        .filter(|c| c.kind != crate::idp::password_policy::HISTORY_KIND)
        .collect();
    Ok(ok(&Value::Array(
        creds.iter().map(credential_repr).collect(),
    )))
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
    let list = cx.app.store.read()?.user_sessions(&realm.id, &user.id)?;
    let out: Vec<Value> = list
        .iter()
        .filter(|s| !s.offline)
        .map(|s| crate::idp::admin::sessions::session_repr(cx, &realm, s))
        .collect();
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
