//! Client policies (Keycloak's `client-policies`): profiles of executors, and policies that
//! apply profiles to the clients their conditions select. Stored as Keycloak's JSON and
//! checked when stored: only the executors and conditions below are accepted, since a
//! policy that names one the server would ignore promises a protection it does not give.
//!
//! Executors: `pkce-enforcer` (authorization requests need a S256 `code_challenge`),
//! `confidential-client` (no public client signs users in), `reject-ropc-grant` (no
//! password grant), `reject-implicit-grant` (only the code flow, which is all Portcullis
//! serves anyway), `full-scope-disabled` (`fullScopeAllowed` off, set when
//! `auto-configure`) and `secure-redirect-uris-enforcer` (https, exact URIs; loopback,
//! http and private-use schemes only where allowed). Conditions: `any-client`,
//! `client-access-type`, `client-roles`, `client-scopes`; a policy applies when all of its
//! conditions hold.

use serde_json::{json, Value};

use crate::store::{ClientRecord, StoreError, Txn, View, Write};

const KIND: &str = "client-policies";

pub const EXECUTORS: &[&str] = &[
    "pkce-enforcer",
    "confidential-client",
    "reject-ropc-grant",
    "reject-implicit-grant",
    "full-scope-disabled",
    "secure-redirect-uris-enforcer",
    "secret-rotation",
];

/// `secret-rotation`'s `rotated-expiration-period` (seconds) when it applies to a client:
/// how long a regenerated secret's predecessor keeps working (Keycloak's default: 2 days).
pub fn rotation_period(executors: &[(String, Value)]) -> Option<i64> {
    executors
        .iter()
        .find(|(k, _)| k == "secret-rotation")
        .map(|(_, c)| {
            c.get("rotated-expiration-period")
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
                .filter(|v| *v > 0)
                .unwrap_or(172_800)
        })
}
pub const CONDITIONS: &[&str] = &[
    "any-client",
    "client-access-type",
    "client-roles",
    "client-scopes",
];

/// Why profiles or policies were not stored: refused (400, the message says why), or the
/// store failed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<String> for Refused {
    fn from(m: String) -> Self {
        Refused::Invalid(m)
    }
}

impl From<&str> for Refused {
    fn from(m: &str) -> Self {
        Refused::Invalid(m.to_string())
    }
}

/// The realm's profiles (`{"profiles": [...]}`).
pub fn profiles<T: Txn>(read: &View<T>, realm_id: &str) -> Result<Value, StoreError> {
    Ok(read
        .object(realm_id, KIND, "profiles")?
        .unwrap_or_else(|| json!({"profiles": []})))
}

/// The realm's policies (`{"policies": [...]}`).
pub fn policies<T: Txn>(read: &View<T>, realm_id: &str) -> Result<Value, StoreError> {
    Ok(read
        .object(realm_id, KIND, "policies")?
        .unwrap_or_else(|| json!({"policies": []})))
}

fn list<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    doc.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
}

/// Check and store the profiles.
pub fn put_profiles(w: &mut Write, realm_id: &str, doc: &Value) -> Result<(), Refused> {
    let mut seen = Vec::new();
    for p in list(doc, "profiles") {
        let name = name_of(p).ok_or("Each profile needs a name")?;
        if seen.contains(&name) {
            return Err(Refused::Invalid(format!("Duplicated profile name: {name}")));
        }
        seen.push(name);
        for e in list(p, "executors") {
            let kind = e.get("executor").and_then(Value::as_str).unwrap_or("");
            if !EXECUTORS.contains(&kind) {
                return Err(Refused::Invalid(format!(
                    "Profile {name}: executor {kind} is not supported"
                )));
            }
        }
    }
    // A profile a policy names cannot go.
    let policies = policies(&**w, realm_id)?;
    for p in list(&policies, "policies") {
        for profile in list(p, "profiles").iter().filter_map(Value::as_str) {
            if !seen.contains(&profile) {
                return Err(Refused::Invalid(format!(
                    "Profile {profile} is used by policy {}",
                    name_of(p).unwrap_or("")
                )));
            }
        }
    }
    w.put_object(
        realm_id,
        KIND,
        "profiles",
        &json!({"profiles": list(doc, "profiles")}),
    )
    .map_err(Refused::from)
}

/// Check and store the policies.
pub fn put_policies(w: &mut Write, realm_id: &str, doc: &Value) -> Result<(), Refused> {
    let profiles = profiles(&**w, realm_id)?;
    let known: Vec<&str> = list(&profiles, "profiles")
        .iter()
        .filter_map(name_of)
        .collect();
    let mut seen = Vec::new();
    for p in list(doc, "policies") {
        let name = name_of(p).ok_or("Each policy needs a name")?;
        if seen.contains(&name) {
            return Err(Refused::Invalid(format!("Duplicated policy name: {name}")));
        }
        seen.push(name);
        for c in list(p, "conditions") {
            let kind = c.get("condition").and_then(Value::as_str).unwrap_or("");
            if !CONDITIONS.contains(&kind) {
                return Err(Refused::Invalid(format!(
                    "Policy {name}: condition {kind} is not supported"
                )));
            }
        }
        for profile in list(p, "profiles") {
            let profile = profile.as_str().unwrap_or("");
            if !known.contains(&profile) {
                return Err(Refused::Invalid(format!(
                    "Policy {name}: no profile {profile}"
                )));
            }
        }
    }
    w.put_object(
        realm_id,
        KIND,
        "policies",
        &json!({"policies": list(doc, "policies")}),
    )
    .map_err(Refused::from)
}

fn strings(config: &Value, key: &str) -> Vec<String> {
    match config.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn flag(config: &Value, key: &str) -> bool {
    match config.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether a condition holds for `client`.
fn holds<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    client: &ClientRecord,
    condition: &Value,
) -> Result<bool, StoreError> {
    let config = condition.get("configuration").cloned().unwrap_or(json!({}));
    let negative = flag(&config, "is_negative_logic");
    let yes = match condition
        .get("condition")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "any-client" => true,
        "client-access-type" => {
            let kind = if client.bearer_only {
                "bearer-only"
            } else if client.public_client {
                "public"
            } else {
                "confidential"
            };
            let types = strings(&config, "type");
            if types.is_empty() {
                kind == "confidential"
            } else {
                types.iter().any(|t| t == kind)
            }
        }
        "client-roles" => {
            let wanted = strings(&config, "roles");
            let held: Vec<String> = read
                .roles(realm_id, &client.id)?
                .into_iter()
                .map(|r| r.name)
                .collect();
            wanted.iter().any(|r| held.contains(r))
        }
        "client-scopes" => {
            let wanted = strings(&config, "scopes");
            let optional = strings(&config, "type")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("optional"));
            let ids = if optional {
                &client.optional_client_scopes
            } else {
                &client.default_client_scopes
            };
            let names = crate::idp::client_scopes::names_of_ids(read, realm_id, ids)?;
            wanted.iter().any(|s| names.contains(s))
        }
        _ => false,
    };
    Ok(yes != negative)
}

/// The executors (kind, configuration) the realm's enabled policies apply to `client`.
pub fn executors<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    client: &ClientRecord,
) -> Result<Vec<(String, Value)>, StoreError> {
    let policies = policies(read, realm_id)?;
    let list_of = list(&policies, "policies");
    if list_of.is_empty() {
        return Ok(Vec::new());
    }
    let profiles = profiles(read, realm_id)?;
    let mut out = Vec::new();
    for p in list_of {
        if p.get("enabled").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let conditions = list(p, "conditions");
        let mut all = !conditions.is_empty();
        for c in conditions {
            all &= holds(read, realm_id, client, c)?;
        }
        if !all {
            continue;
        }
        for name in list(p, "profiles").iter().filter_map(Value::as_str) {
            if let Some(profile) = list(&profiles, "profiles")
                .iter()
                .find(|x| name_of(x) == Some(name))
            {
                for e in list(profile, "executors") {
                    let kind = e
                        .get("executor")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    out.push((kind, e.get("configuration").cloned().unwrap_or(json!({}))));
                }
            }
        }
    }
    Ok(out)
}

/// Why a request or a client is refused by a policy: (OAuth error code, description).
pub type Refusal = (&'static str, String);

/// Check an authorization request of `client`.
pub fn check_authorization(
    executors: &[(String, Value)],
    client: &ClientRecord,
    redirect_uri: &str,
    code_challenge_method: Option<&str>,
    has_challenge: bool,
) -> Result<(), Refusal> {
    for (kind, config) in executors {
        match kind.as_str() {
            "pkce-enforcer" => {
                if !has_challenge {
                    return Err((
                        "invalid_request",
                        "Missing parameter: code_challenge_method".into(),
                    ));
                }
                if code_challenge_method != Some("S256") {
                    return Err((
                        "invalid_request",
                        "Invalid parameter: code challenge method is not configured one".into(),
                    ));
                }
            }
            "confidential-client" if client.public_client => {
                return Err(("invalid_client", "invalid client access type".into()));
            }
            "secure-redirect-uris-enforcer" => {
                check_redirect_uri(config, redirect_uri).map_err(|m| ("invalid_request", m))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check a password grant of `client`.
pub fn check_password_grant(executors: &[(String, Value)]) -> Result<(), Refusal> {
    if executors.iter().any(|(k, _)| k == "reject-ropc-grant") {
        return Err((
            "invalid_grant",
            "resource owner password credentials grant is prohibited.".into(),
        ));
    }
    Ok(())
}

/// Apply the executors that shape a client being saved (created, updated, registered):
/// `auto-configure` settings are set, violations refused with a message.
pub fn check_client(
    executors: &[(String, Value)],
    client: &mut ClientRecord,
) -> Result<(), String> {
    for (kind, config) in executors {
        match kind.as_str() {
            "full-scope-disabled" => {
                if flag(config, "auto-configure") {
                    client.full_scope_allowed = false;
                } else if client.full_scope_allowed {
                    return Err(
                        "Full scope allowed is not permitted by the realm's client policies".into(),
                    );
                }
            }
            "pkce-enforcer" if flag(config, "auto-configure") => {
                client
                    .attributes
                    .insert("pkce.code.challenge.method".into(), "S256".into());
            }
            "confidential-client" if client.public_client => {
                return Err(
                    "Public clients are not permitted by the realm's client policies".into(),
                );
            }
            "secure-redirect-uris-enforcer" => {
                for uri in &client.redirect_uris {
                    check_redirect_uri(config, uri)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Keycloak's secure redirect URI rules (the configuration's `allow-*` switches).
fn check_redirect_uri(config: &Value, uri: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("Invalid redirect URI {uri}: {why}"));
    if uri.contains('*') && !flag(config, "allow-wildcard-context-path") {
        return bad("wildcards are not allowed");
    }
    let Ok(parsed) = url::Url::parse(uri.trim_end_matches('*')) else {
        return bad("not an absolute URI");
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() && flag(config, "allow-ipv4-loopback-address")
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() && flag(config, "allow-ipv6-loopback-address")
        }
        _ => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback || flag(config, "allow-http-scheme") => Ok(()),
        "http" => bad("http is not allowed"),
        _ if flag(config, "allow-private-use-uri-scheme") => Ok(()),
        _ => bad("private-use schemes are not allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        let strict = json!({});
        assert!(check_redirect_uri(&strict, "https://app.example.com/cb").is_ok());
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/*",
            "com.example:/cb",
            "http://127.0.0.1/cb",
        ] {
            assert!(check_redirect_uri(&strict, bad).is_err(), "{bad}");
        }
        let relaxed =
            json!({"allow-ipv4-loopback-address": "true", "allow-private-use-uri-scheme": true});
        assert!(check_redirect_uri(&relaxed, "http://127.0.0.1:8000/cb").is_ok());
        assert!(check_redirect_uri(&relaxed, "com.example:/cb").is_ok());
        assert!(check_redirect_uri(&relaxed, "http://example.com/cb").is_err());
    }

    #[test]
    fn pkce_and_access_type() {
        let ex = vec![
            ("pkce-enforcer".to_string(), json!({})),
            ("confidential-client".to_string(), json!({})),
        ];
        let mut c = ClientRecord::default();
        assert!(check_authorization(&ex, &c, "https://x/cb", None, false).is_err());
        assert!(check_authorization(&ex, &c, "https://x/cb", Some("plain"), true).is_err());
        assert!(check_authorization(&ex, &c, "https://x/cb", Some("S256"), true).is_ok());
        c.public_client = true;
        assert_eq!(
            check_authorization(&ex, &c, "https://x/cb", Some("S256"), true)
                .unwrap_err()
                .0,
            "invalid_client"
        );
        let mut c = ClientRecord {
            full_scope_allowed: true,
            ..Default::default()
        };
        let fs = vec![(
            "full-scope-disabled".to_string(),
            json!({"auto-configure": "true"}),
        )];
        check_client(&fs, &mut c).unwrap();
        assert!(!c.full_scope_allowed);
    }
}
