//! `POST /users/{id}/impersonation`: an administrator with the `impersonation` role signs
//! in as the user. The answer carries the user's new SSO session cookies (the console's
//! browser then opens the account page as that user) and Keycloak's
//! `{"sameRealm", "redirect"}`.
//!
//! Unlike Keycloak, a user who holds administrative roles the administrator lacks cannot be
//! impersonated: impersonation would hand the administrator that power.

use serde_json::json;

use crate::http::Response;
use crate::idp::admin::error::AdminError;

use super::{ok, Cx, Permission};

pub(super) fn impersonate(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::Impersonation)?;
    let read = cx.app.store.read()?;
    let user = read
        .user(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("User not found".into()))?;
    if !user.enabled {
        return Err(AdminError::BadRequest("User is disabled".into()));
    }
    if user.service_account_client_id.is_some() {
        return Err(AdminError::BadRequest(
            "Service accounts cannot be impersonated".into(),
        ));
    }
    let held = crate::idp::roles::effective_roles(&read, &realm.id, &user.id)?;
    let ids: Vec<String> = held.ids.iter().cloned().collect();
    cx.caller.may_grant(&read, &realm, &ids).map_err(|_| {
        AdminError::ForbiddenBecause(
            "You may not impersonate a user with administrative roles you do not hold".into(),
        )
    })?;
    drop(read);
    let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
    let mut response = ok(&json!({
        "sameRealm": cx.caller.realm == realm.name,
        "redirect": format!(
            "{base}/realms/{}/account",
            crate::http::path::encode_segment(&realm.name)
        ),
    }));
    let session = crate::idp::login::impersonation_session(
        cx.app,
        &realm,
        &user,
        &cx.caller.user_id,
        cx.info,
        &mut response,
    )?;
    let mut details = std::collections::BTreeMap::new();
    details.insert("impersonator_realm".to_string(), cx.caller.realm.clone());
    details.insert("impersonator_id".to_string(), cx.caller.user_id.clone());
    crate::idp::events::record(
        cx.app,
        &realm,
        crate::idp::events::Event {
            kind: "IMPERSONATE",
            client_id: Some(&cx.caller.client_id),
            user_id: Some(&user.id),
            session_id: Some(&session.id),
            ip_address: cx.info.peer.map(|p| p.ip().to_string()).as_deref(),
            error: None,
            details,
        },
    );
    Ok(response)
}
