//! Admin calls that send mail: `execute-actions-email`, `send-verify-email` and
//! `testSMTPConnection`. They send at once (with a time limit) so the administrator learns
//! the outcome: 204, or 502 with the SMTP server's answer.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::email;
use crate::idp::login::email_actions::{self, ActionToken, VERIFY_EMAIL};
use crate::store::RealmRecord;

use super::auth::Permission;
use super::{no_content, Cx};

/// Actions an administrator may ask for by mail: those the login can carry out (asking for
/// another would leave the user unable to log in).
const KNOWN_ACTIONS: &[&str] = &["UPDATE_PASSWORD", "CONFIGURE_TOTP", "VERIFY_EMAIL"];
/// Keycloak's `actionTokenGeneratedByAdminLifespan` default: 12 hours.
const ADMIN_LINK_LIFESPAN_SECS: i64 = 12 * 3600;
/// The longest `lifespan` accepted: 30 days.
const MAX_LINK_LIFESPAN_SECS: i64 = 30 * 24 * 3600;

/// `PUT /users/{id}/execute-actions-email?lifespan=&client_id=&redirect_uri=` with the
/// actions as a JSON array.
pub(super) async fn execute_actions_email(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let actions: Vec<String> = cx.json()?;
    if actions.is_empty() || actions.iter().any(|a| !KNOWN_ACTIONS.contains(&a.as_str())) {
        return Err(AdminError::BadRequest(
            "Provided invalid required actions".into(),
        ));
    }
    send_link(
        cx,
        &realm,
        actions,
        "execute-actions",
        "execute-actions",
        "executeActionsSubject",
    )
    .await
}

/// `PUT /users/{id}/send-verify-email?client_id=&redirect_uri=`
pub(super) async fn send_verify_email(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    send_link(
        cx,
        &realm,
        vec![VERIFY_EMAIL.into()],
        "verify-email",
        "email-verification",
        "emailVerificationSubject",
    )
    .await
}

async fn send_link(
    cx: &Cx<'_>,
    realm: &RealmRecord,
    actions: Vec<String>,
    kind: &str,
    template: &str,
    subject_key: &str,
) -> Result<Response, AdminError> {
    let user = super::users::load_user(cx, realm)?;
    if !user.enabled {
        return Err(AdminError::BadRequest("User is disabled".into()));
    }
    let Some(address) = user.email.clone().filter(|e| !e.is_empty()) else {
        return Err(AdminError::BadRequest("User email missing".into()));
    };
    let redirect_uri = match (cx.query("client_id"), cx.query("redirect_uri")) {
        (None, Some(_)) => return Err(AdminError::BadRequest("Client id missing".into())),
        (Some(client_id), redirect) => {
            let client = cx
                .app
                .store
                .read()?
                .client_by_client_id(&realm.id, &client_id)?
                .filter(|c| c.enabled)
                .ok_or_else(|| {
                    AdminError::BadRequest(format!("Client doesn't exist: {client_id}"))
                })?;
            match redirect {
                None => None,
                Some(r) => Some(
                    crate::idp::oidc::redirect::verify_redirect_uri(&client, Some(&r))
                        .ok_or_else(|| AdminError::BadRequest("Invalid redirect uri.".into()))?,
                ),
            }
        }
        (None, None) => None,
    };
    let lifespan = match cx.query("lifespan") {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LINK_LIFESPAN_SECS).contains(l))
            .ok_or_else(|| {
                AdminError::BadRequest(format!(
                    "lifespan: a number of seconds from 1 to {MAX_LINK_LIFESPAN_SECS}"
                ))
            })?,
        None => ADMIN_LINK_LIFESPAN_SECS,
    };
    let settings = email_actions::smtp(realm).map_err(AdminError::BadRequest)?;
    let token = ActionToken {
        kind: kind.into(),
        user_id: user.id.clone(),
        actions,
        email: address,
        expires_at: cx.now_ms + lifespan * 1000,
        params: BTreeMap::new(),
        redirect_uri,
        browser_hash: None,
    };
    let base = crate::idp::oidc::base_url(cx.app, cx.request, cx.info);
    let mail = email_actions::prepare(cx.app, realm, &user, &base, &token, template, subject_key)
        .map_err(AdminError::Internal)?;
    email::send(&settings, &mail)
        .await
        .map_err(|e| AdminError::BadGateway(format!("Failed to send {kind} email: {e}")))?;
    Ok(no_content())
}

/// `POST /admin/realms/{realm}/testSMTPConnection` with SMTP settings (Keycloak's
/// `smtpServer` map; a masked password means the stored one): a test mail to the calling
/// administrator's own address.
pub(super) async fn test_smtp_connection(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let input: BTreeMap<String, Value> = cx.json()?;
    let map = super::repr::smtp_map(&input, &realm.smtp_server).map_err(AdminError::BadRequest)?;
    let settings = email::SmtpSettings::from_map(&map)
        .map_err(AdminError::BadRequest)?
        .ok_or_else(|| AdminError::BadRequest("smtpServer.host: required".into()))?;
    let caller = cx
        .app
        .store
        .read()?
        .user(&cx.caller.realm_id, &cx.caller.user_id)?
        .ok_or(AdminError::Forbidden)?;
    if caller.email.as_deref().is_none_or(str::is_empty) {
        return Err(AdminError::BadRequest(
            "Logged in user does not have an e-mail.".into(),
        ));
    }
    let mail = email::render(
        cx.app,
        &realm,
        &caller,
        "email-test",
        "emailTestSubject",
        BTreeMap::new(),
    )
    .map_err(AdminError::Internal)?;
    email::send(&settings, &mail)
        .await
        .map_err(|e| AdminError::BadGateway(format!("Failed to send email: {e}")))?;
    Ok(no_content())
}
