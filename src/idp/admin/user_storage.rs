//! LDAP user storage in the admin API: `testLDAPConnection` (the console's "Test
//! connection" and "Test authentication"), `user-storage/{id}/sync` (a full import of the
//! directory's users; `triggerChangedUsersSync` does the same, every user being compared) and
//! `user-storage/{id}/name`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::ldap::{self, Provider, COMPONENT_KIND};

use super::{no_content, ok, Cx, Permission};

const MASK: &str = "**********";

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `POST /testLDAPConnection` with `{action, connectionUrl, bindDn, bindCredential,
/// startTls, connectionTimeout, authType, componentId}`: 204, or 400 saying what failed.
pub(super) async fn test_connection(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let body: Value = cx.json()?;
    let url = text(&body, "connectionUrl")
        .ok_or_else(|| AdminError::BadRequest("connectionUrl is required".into()))?;
    let urls: Vec<&str> = url.split_whitespace().collect();
    if urls.is_empty()
        || urls.len() > 4
        || urls
            .iter()
            .any(|u| !(u.starts_with("ldap://") || u.starts_with("ldaps://")))
    {
        return Err(AdminError::BadRequest(format!(
            "Invalid LDAP connection URL: {url}"
        )));
    }
    let start_tls = text(&body, "startTls") == Some("true") || body["startTls"] == true;
    let timeout = text(&body, "connectionTimeout")
        .and_then(|t| t.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.clamp(100, 30_000)))
        .unwrap_or(Duration::from_secs(5));
    let authenticate = text(&body, "action") == Some("testAuthentication");
    // The console sends the mask back for a stored credential: the stored one is used only
    // towards the stored server and DN (else the test would hand it to any server).
    let bind_dn = text(&body, "bindDn").map(str::to_string);
    let mut credential = text(&body, "bindCredential").map(str::to_string);
    if credential.as_deref() == Some(MASK) {
        let stored = text(&body, "componentId").and_then(|id| {
            cx.app
                .store
                .read()
                .ok()?
                .object(&realm.id, COMPONENT_KIND, id)
                .ok()
                .flatten()
        });
        let field = |c: &Value, k: &str| {
            c.pointer(&format!("/config/{k}/0"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        credential = stored
            .filter(|c| {
                field(c, "connectionUrl").as_deref() == Some(url) && field(c, "bindDn") == bind_dn
            })
            .and_then(|c| field(&c, "bindCredential"));
        if credential.is_none() {
            return Err(AdminError::BadRequest(
                "LDAP test error: the stored credential is only used with the stored connection URL and bind DN".into(),
            ));
        }
    }
    let bind = match (authenticate, &bind_dn, &credential) {
        (false, _, _) => None,
        (true, Some(dn), Some(pw)) => Some((dn.as_str(), pw.as_str())),
        (true, _, _) => {
            return Err(AdminError::BadRequest(
                "LDAP test error: bindDn and bindCredential are needed to test authentication"
                    .into(),
            ))
        }
    };
    match ldap::test(url, start_tls, bind, timeout).await {
        Ok(()) => Ok(no_content()),
        Err(e) => Err(AdminError::BadRequest(format!("LDAP test error: {e}"))),
    }
}

fn provider(cx: &Cx, realm_id: &str) -> Result<Provider, AdminError> {
    cx.app
        .store
        .read()?
        .object(realm_id, COMPONENT_KIND, &cx.path.id)?
        .as_ref()
        .and_then(Provider::from_component)
        .ok_or_else(|| AdminError::NotFound("Could not find component".into()))
}

/// `POST /user-storage/{id}/sync?action=triggerFullSync|triggerChangedUsersSync`
pub(super) async fn sync(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    match cx.query("action").as_deref() {
        Some("triggerFullSync") | Some("triggerChangedUsersSync") => {}
        other => {
            return Err(AdminError::BadRequest(format!(
                "Unknown action: {}",
                other.unwrap_or("")
            )))
        }
    }
    let provider = provider(cx, &realm.id)?;
    if !provider.enabled {
        return Err(AdminError::BadRequest(
            "User storage provider is disabled".into(),
        ));
    }
    let r = crate::idp::federation::sync(cx.app, &realm, &provider)
        .await
        .map_err(|e| AdminError::BadRequest(format!("LDAP sync failed: {e}")))?;
    Ok(ok(&json!({
        "ignored": false, "added": r.added, "updated": r.updated, "removed": 0, "failed": r.failed,
        "status": format!("{} imported users, {} updated users{}", r.added, r.updated,
            if r.failed > 0 { format!(", {} users failed sync!", r.failed) } else { String::new() }),
    })))
}

/// The ids of the users a provider imported.
fn imported(cx: &Cx, realm_id: &str, provider_id: &str) -> Result<Vec<String>, AdminError> {
    let read = cx.app.store.read()?;
    let mut ids = Vec::new();
    let mut first = 0;
    loop {
        let page = read.users_page(realm_id, first, 1000)?;
        if page.is_empty() {
            break;
        }
        first += page.len();
        ids.extend(
            page.into_iter()
                .filter(|u| u.federation_link.as_deref() == Some(provider_id))
                .map(|u| u.id),
        );
    }
    Ok(ids)
}

/// `POST /user-storage/{id}/remove-imported-users`: delete the provider's local copies
/// (the directory is untouched; they come back at their next login or sync).
pub(super) fn remove_imported(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let provider = provider(cx, &realm.id)?;
    for chunk in imported(cx, &realm.id, &provider.id)?.chunks(500) {
        cx.app.store.write(|w| {
            for id in chunk {
                w.delete_user(&realm.id, id)?;
            }
            Ok::<_, AdminError>(())
        })?;
    }
    Ok(no_content())
}

/// `POST /user-storage/{id}/unlink-users`: the provider's users become local ones (no
/// password until one is set; the directory no longer decides).
pub(super) fn unlink(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let provider = provider(cx, &realm.id)?;
    for chunk in imported(cx, &realm.id, &provider.id)?.chunks(500) {
        cx.app.store.write(|w| {
            for id in chunk {
                if let Some(mut user) = w.user(&realm.id, id)? {
                    user.federation_link = None;
                    user.attributes.remove(ldap::LDAP_ID);
                    user.attributes.remove(ldap::LDAP_ENTRY_DN);
                    w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
                }
            }
            Ok::<_, AdminError>(())
        })?;
    }
    Ok(no_content())
}

/// `GET /user-storage/{id}/name`
pub(super) fn name(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let provider = provider(cx, &realm.id)?;
    Ok(ok(&json!({"id": provider.id, "name": provider.name})))
}
