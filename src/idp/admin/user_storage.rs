//! LDAP user storage in the admin API: `testLDAPConnection` (the console's "Test
//! connection" and "Test authentication"), `ldap-server-capabilities`,
//! `user-storage/{id}/sync` (full and changed-users syncs), a group or role mapper's sync,
//! `remove-imported-users`, `unlink-users` and `user-storage/{id}/name`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::federation::sync::imported;
use crate::idp::ldap::{self, Provider, COMPONENT_KIND};

use super::{no_content, ok, Cx, Permission};

const MASK: &str = "**********";

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A connection test's settings from the body `{action, connectionUrl, bindDn,
/// bindCredential, startTls, connectionTimeout, authType, componentId}`: the URL(s),
/// StartTLS, the bind (for `testAuthentication`, or for `capabilities` whenever a bind DN
/// is given) and the timeout.
type TestSettings = (String, bool, Option<(String, String)>, Duration);

fn test_settings(cx: &Cx, capabilities: bool) -> Result<TestSettings, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let body = cx.json_object()?;
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
    let bind_dn = text(&body, "bindDn").map(str::to_string);
    let authenticate = text(&body, "action") == Some("testAuthentication")
        || (capabilities && bind_dn.is_some() && text(&body, "authType") != Some("none"));
    // The console sends the mask back for a stored credential: the stored one is used only
    // towards the stored server and DN (else the test would hand it to any server).
    let mut credential = text(&body, "bindCredential").map(str::to_string);
    if authenticate && credential.as_deref() == Some(MASK) {
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
        // Also over the same protection: the stored StartTLS (no cleartext bind of a
        // credential stored for a TLS connection).
        let stored_tls = |c: &Value| field(c, "startTls").as_deref() == Some("true");
        credential = stored
            .filter(|c| {
                field(c, "connectionUrl").as_deref() == Some(url)
                    && field(c, "bindDn") == bind_dn
                    && stored_tls(c) == start_tls
            })
            .and_then(|c| field(&c, "bindCredential"));
        if credential.is_none() {
            return Err(AdminError::BadRequest(
                "LDAP test error: the stored credential is only used with the stored connection URL and bind DN".into(),
            ));
        }
    }
    let bind = match (authenticate, bind_dn, credential) {
        (false, _, _) => None,
        (true, Some(dn), Some(pw)) => Some((dn, pw)),
        (true, _, _) => {
            return Err(AdminError::BadRequest(
                "LDAP test error: bindDn and bindCredential are needed to test authentication"
                    .into(),
            ))
        }
    };
    Ok((url.to_string(), start_tls, bind, timeout))
}

/// `POST /testLDAPConnection`: 204, or 400 saying what failed.
pub(super) async fn test_connection(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let (url, start_tls, bind, timeout) = test_settings(cx, false)?;
    let bind_ref = bind.as_ref().map(|(d, p)| (d.as_str(), p.as_str()));
    match ldap::test(&url, start_tls, bind_ref, timeout).await {
        Ok(()) => Ok(no_content()),
        Err(e) => Err(AdminError::BadRequest(format!("LDAP test error: {e}"))),
    }
}

fn provider(cx: &Cx, realm_id: &str) -> Result<Provider, AdminError> {
    ldap::provider(&cx.app.store.read()?, realm_id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("Could not find component".into()))
}

/// `POST /user-storage/{id}/sync?action=triggerFullSync|triggerChangedUsersSync`:
/// Keycloak's `SynchronizationResult`.
pub(super) async fn sync(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let full = match cx.query("action").as_deref() {
        Some("triggerFullSync") => true,
        Some("triggerChangedUsersSync") => false,
        other => {
            return Err(AdminError::BadRequest(format!(
                "Unknown action: {}",
                other.unwrap_or("")
            )))
        }
    };
    let provider = provider(cx, &realm.id)?;
    if !provider.enabled {
        return Err(AdminError::BadRequest(
            "User storage provider is disabled".into(),
        ));
    }
    let r = crate::idp::federation::sync(cx.app, &realm, &provider, full)
        .await
        .map_err(|e| AdminError::BadRequest(format!("LDAP sync failed: {e}")))?;
    Ok(ok(&r.json()))
}

/// `POST /user-storage/{parent}/mappers/{id}/sync?direction=fedToKeycloak|keycloakToFed`:
/// a group or role mapper's groups (with their hierarchy) or roles created from the
/// directory. `keycloakToFed` (writing local groups to the directory) is refused: the
/// mappers read memberships only.
pub(super) async fn mapper_sync(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let provider = provider(cx, &realm.id)?;
    let mapper = provider
        .mappers
        .memberships
        .iter()
        .find(|m| m.id == cx.path.mapper)
        .cloned()
        .ok_or_else(|| AdminError::NotFound("Could not find a group or role mapper".into()))?;
    match cx.query("direction").as_deref() {
        Some("fedToKeycloak") | None => {}
        Some("keycloakToFed") => {
            return Err(AdminError::BadRequest(
                "keycloakToFed is not supported: the mapper reads memberships from LDAP".into(),
            ))
        }
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "Unknown direction: {other}"
            )))
        }
    }
    let _running = crate::idp::federation::sync::exclusive(format!(
        "{}/mappers/{}",
        provider.key(),
        mapper.id
    ))
    .ok_or_else(|| AdminError::Conflict("A sync of this mapper is running already".into()))?;
    let groups = provider
        .all_groups(&mapper)
        .await
        .map_err(|e| AdminError::BadRequest(format!("LDAP sync failed: {e}")))?;
    let paths = crate::idp::federation::memberships::group_paths(&mapper, &groups);
    let (added, known) = cx
        .app
        .store
        .write(|w| crate::idp::federation::memberships::import_all(w, &realm, &mapper, &paths))?;
    let r = crate::idp::federation::SyncResult {
        added,
        updated: known,
        ..Default::default()
    };
    Ok(ok(&r.json()))
}

/// `POST /ldap-server-capabilities` (the body of `testLDAPConnection`): the directory's
/// supported controls, extensions and features, `[{oid, type}]`.
pub(super) async fn capabilities(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let (url, start_tls, bind, timeout) = test_settings(cx, true)?;
    let bind_ref = bind.as_ref().map(|(d, p)| (d.as_str(), p.as_str()));
    let provider = ldap::for_test(&url, start_tls, bind_ref, timeout);
    let caps = provider
        .capabilities()
        .await
        .map_err(|e| AdminError::BadRequest(format!("LDAP test error: {e}")))?;
    let list: Vec<Value> = caps
        .into_iter()
        .map(|(oid, kind)| json!({"oid": oid, "type": kind}))
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// Run `each` on every user the provider of the path imported, 500 to a transaction.
fn each_imported(
    cx: &Cx,
    mut each: impl FnMut(
        &mut crate::store::Write,
        &crate::store::RealmRecord,
        &str,
    ) -> Result<(), AdminError>,
) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let provider = provider(cx, &realm.id)?;
    let ids: Vec<String> = imported(cx.app, &realm.id, &provider.id)?
        .into_iter()
        .map(|u| u.id)
        .collect();
    for chunk in ids.chunks(500) {
        cx.app.store.write(|w| {
            for id in chunk {
                each(w, &realm, id)?;
            }
            Ok::<_, AdminError>(())
        })?;
    }
    Ok(no_content())
}

/// `POST /user-storage/{id}/remove-imported-users`: delete the provider's local copies
/// (the directory is untouched; they come back at their next login or sync).
pub(super) fn remove_imported(cx: &Cx) -> Result<Response, AdminError> {
    each_imported(cx, |w, realm, id| {
        w.delete_user(&realm.id, id)?;
        Ok(())
    })
}

/// `POST /user-storage/{id}/unlink-users`: the provider's users become local ones (no
/// password until one is set; the directory no longer decides).
pub(super) fn unlink(cx: &Cx) -> Result<Response, AdminError> {
    each_imported(cx, |w, realm, id| {
        if let Some(mut user) = w.user(&realm.id, id)? {
            user.federation_link = None;
            user.attributes.remove(ldap::LDAP_ID);
            user.attributes.remove(ldap::LDAP_ENTRY_DN);
            w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
        }
        Ok(())
    })
}

/// `GET /user-storage/{id}/name`
pub(super) fn name(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let provider = provider(cx, &realm.id)?;
    Ok(ok(&json!({"id": provider.id, "name": provider.name})))
}
