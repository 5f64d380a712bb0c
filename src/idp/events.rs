//! Login and admin events: recorded when the realm enables them (`eventsEnabled`,
//! `enabledEventTypes`, `adminEventsEnabled`), kept for `eventsExpiration` seconds, queried
//! through the admin API, and optionally written to the log (`eventsListeners` containing
//! `jboss-logging`, Keycloak's default). Recording never fails a request: a store error is
//! logged and the request goes on.

use std::collections::BTreeMap;

use crate::crypto::random_id;
use crate::idp::App;
use crate::store::{EventRecord, RealmRecord};

/// The kind under which admin events are stored (login events use Keycloak's type names).
pub const ADMIN: &str = "ADMIN";

/// A login event about to be recorded.
#[derive(Debug, Default, Clone)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub error: Option<&'a str>,
    pub details: BTreeMap<String, String>,
}

/// An event id that sorts in recording order among events of the same millisecond (the
/// store orders events by time, then id).
fn event_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}-{}",
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
        random_id()
    )
}

fn log_listener(realm: &RealmRecord) -> bool {
    realm.events_listeners.iter().any(|l| l == "jboss-logging")
}

fn store(app: &App, realm: &RealmRecord, record: EventRecord) {
    if let Err(e) = app
        .store
        .write_volatile(|w| w.append_event(&realm.id, &record))
    {
        tracing::warn!(error = %e, realm = %realm.name, "could not record an event");
    }
}

/// Record a login event when the realm wants it.
pub fn record(app: &App, realm: &RealmRecord, event: Event<'_>) {
    let wanted = realm.events_enabled
        && (realm.enabled_event_types.is_empty()
            || realm.enabled_event_types.iter().any(|t| t == event.kind));
    if log_listener(realm) {
        // Keycloak's logging listener: errors at warn, the rest at debug (no per-request info).
        if event.error.is_some() {
            tracing::warn!(target: "portcullis::events", realm = %realm.name, r#type = event.kind,
                client = event.client_id, user = event.user_id, ip = event.ip_address, error = event.error, "event");
        } else {
            tracing::debug!(target: "portcullis::events", realm = %realm.name, r#type = event.kind,
                client = event.client_id, user = event.user_id, ip = event.ip_address, "event");
        }
    }
    if !wanted {
        return;
    }
    store(
        app,
        realm,
        EventRecord {
            id: event_id(),
            time: app.clock.now_millis(),
            kind: event.kind.to_string(),
            client_id: event.client_id.map(String::from),
            user_id: event.user_id.map(String::from),
            session_id: event.session_id.map(String::from),
            ip_address: event.ip_address.map(String::from),
            error: event.error.map(String::from),
            details: event.details,
        },
    );
}

/// What an admin event may keep of a request body: the JSON with every secret replaced by
/// `**********` (passwords, credential values and hashes, client secrets, bind
/// credentials, private keys, SMTP passwords, tokens), or nothing when it is not JSON.
pub fn redacted_body(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    redact(&mut value);
    Some(value.to_string())
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "value"
        || k == "token"
        || k.ends_with("token") && !k.contains("lifespan")
        || [
            "password",
            "secret",
            "credential",
            "privatekey",
            "private_key",
        ]
        .iter()
        .any(|s| k.contains(s))
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_null() {
                    *v = serde_json::Value::String("**********".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(list) => list.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Record an admin event (a change made through the admin API) when the realm wants it.
#[allow(clippy::too_many_arguments)]
pub fn record_admin(
    app: &App,
    realm: &RealmRecord,
    operation: &str,
    resource_type: &str,
    resource_path: &str,
    representation: Option<&str>,
    auth: (&str, &str, &str),
    ip_address: Option<&str>,
) {
    if !realm.admin_events_enabled {
        return;
    }
    let mut details = BTreeMap::new();
    details.insert("operationType".to_string(), operation.to_string());
    details.insert("resourceType".to_string(), resource_type.to_string());
    details.insert("resourcePath".to_string(), resource_path.to_string());
    details.insert("authRealmId".to_string(), auth.0.to_string());
    details.insert("authClientId".to_string(), auth.1.to_string());
    details.insert("authUserId".to_string(), auth.2.to_string());
    if realm.admin_events_details_enabled {
        if let Some(r) = representation {
            details.insert("representation".to_string(), r.to_string());
        }
    }
    store(
        app,
        realm,
        EventRecord {
            id: event_id(),
            time: app.clock.now_millis(),
            kind: ADMIN.to_string(),
            client_id: Some(auth.1.to_string()),
            user_id: Some(auth.2.to_string()),
            ip_address: ip_address.map(String::from),
            details,
            ..Default::default()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets in logs (CWE-532): every field that can carry one is masked, wherever it is.
    #[test]
    fn admin_event_bodies_lose_their_secrets() {
        let body = serde_json::json!({
            "username": "u",
            "credentials": [{"type": "password", "value": "pw1", "secretData": "h"}],
            "secret": "s1",
            "smtpServer": {"host": "mail.example", "password": "pw2"},
            "config": {"bindCredential": ["b1"], "clientSecret": "c1", "claim.value": "kept"},
            "attributes": {"accessTokenLifespan": "300"},
            "refresh_token": "t1",
        });
        let out = redacted_body(body.to_string().as_bytes()).unwrap();
        for secret in ["pw1", "\"h\"", "s1", "pw2", "b1", "c1", "t1"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        for kept in ["\"u\"", "kept", "300"] {
            assert!(out.contains(kept), "{kept} lost from {out}");
        }
        assert_eq!(redacted_body(b"not json"), None);
    }
}
