//! Keycloak's JSON representations: what the admin API reads (`*Input`, every field
//! optional so a PUT changes only what it names) and writes (`*_repr` functions). Unknown
//! fields are accepted and ignored, as Keycloak does.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{
    ClientRecord, CredentialRecord, GroupRecord, RealmRecord, RoleRecord, UserRecord,
};

/// Attributes arrive as `{"k": ["v"]}` or, from older clients, `{"k": "v"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Many(Vec<String>),
    One(String),
}

impl AttributeValue {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            AttributeValue::Many(v) => v,
            AttributeValue::One(s) => vec![s],
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RealmInput {
    pub id: Option<String>,
    pub realm: Option<String>,
    pub display_name: Option<String>,
    pub enabled: Option<bool>,
    pub ssl_required: Option<String>,
    pub registration_allowed: Option<bool>,
    pub reset_password_allowed: Option<bool>,
    pub remember_me: Option<bool>,
    pub verify_email: Option<bool>,
    pub login_with_email_allowed: Option<bool>,
    pub duplicate_emails_allowed: Option<bool>,
    pub access_token_lifespan: Option<i64>,
    pub sso_session_idle_timeout: Option<i64>,
    pub sso_session_max_lifespan: Option<i64>,
    pub offline_session_idle_timeout: Option<i64>,
    pub access_code_lifespan: Option<i64>,
    pub action_token_generated_by_user_lifespan: Option<i64>,
    pub default_signature_algorithm: Option<String>,
    pub password_policy: Option<String>,
    pub login_theme: Option<String>,
    pub email_theme: Option<String>,
    pub smtp_server: Option<BTreeMap<String, Value>>,
    /// Free-form realm attributes (strings); `otpRequired: "true"` makes every user
    /// configure and use an authenticator.
    pub attributes: Option<BTreeMap<String, Value>>,
    pub not_before: Option<i64>,
    pub events_enabled: Option<bool>,
    pub events_expiration: Option<i64>,
    pub events_listeners: Option<Vec<String>>,
    pub enabled_event_types: Option<Vec<String>>,
    pub admin_events_enabled: Option<bool>,
    pub admin_events_details_enabled: Option<bool>,
    pub brute_force_protected: Option<bool>,
    pub permanent_lockout: Option<bool>,
    pub failure_factor: Option<i64>,
    pub wait_increment_seconds: Option<i64>,
    pub max_failure_wait_seconds: Option<i64>,
    pub minimum_quick_login_wait_seconds: Option<i64>,
    pub quick_login_check_milli_seconds: Option<i64>,
    pub max_delta_time_seconds: Option<i64>,
    pub otp_policy_type: Option<String>,
    pub otp_policy_algorithm: Option<String>,
    pub otp_policy_digits: Option<i64>,
    pub otp_policy_period: Option<i64>,
    pub otp_policy_look_ahead_window: Option<i64>,
    pub users: Option<Vec<UserInput>>,
    pub clients: Option<Vec<ClientInput>>,
    pub roles: Option<RolesInput>,
    pub groups: Option<Vec<GroupInput>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RolesInput {
    pub realm: Vec<RoleInput>,
    pub client: BTreeMap<String, Vec<RoleInput>>,
}

fn positive(name: &str, v: Option<i64>) -> Result<(), String> {
    match v {
        Some(n) if n < 0 => Err(format!("{name} must not be negative")),
        _ => Ok(()),
    }
}

impl RealmInput {
    /// Apply the fields present to `realm`; errors name the offending field.
    pub fn apply(&self, realm: &mut RealmRecord) -> Result<(), String> {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    realm.$field = v.clone();
                }
            )*};
        }
        set!(
            enabled,
            ssl_required,
            registration_allowed,
            reset_password_allowed,
            remember_me,
            verify_email,
            login_with_email_allowed,
            duplicate_emails_allowed,
            access_token_lifespan,
            sso_session_idle_timeout,
            sso_session_max_lifespan,
            offline_session_idle_timeout,
            access_code_lifespan,
            action_token_generated_by_user_lifespan,
            not_before,
            events_enabled,
            events_listeners,
            enabled_event_types,
            admin_events_enabled,
            admin_events_details_enabled,
            brute_force_protected,
            permanent_lockout,
            failure_factor,
            wait_increment_seconds,
            max_failure_wait_seconds,
            minimum_quick_login_wait_seconds,
            quick_login_check_milli_seconds,
            max_delta_time_seconds,
            otp_policy_look_ahead_window
        );
        if let Some(t) = &self.otp_policy_type {
            if t != "totp" {
                return Err(format!("otpPolicyType {t} is not supported (totp)"));
            }
            realm.otp_policy_type = t.clone();
        }
        if let Some(a) = &self.otp_policy_algorithm {
            if !matches!(a.as_str(), "HmacSHA1" | "HmacSHA256" | "HmacSHA512") {
                return Err(format!("otpPolicyAlgorithm {a} is not supported"));
            }
            realm.otp_policy_algorithm = a.clone();
        }
        if let Some(d) = self.otp_policy_digits {
            if d != 6 && d != 8 {
                return Err("otpPolicyDigits must be 6 or 8".into());
            }
            realm.otp_policy_digits = d;
        }
        if let Some(p) = self.otp_policy_period {
            if !(10..=300).contains(&p) {
                return Err("otpPolicyPeriod must be between 10 and 300 seconds".into());
            }
            realm.otp_policy_period = p;
        }
        if self.failure_factor.is_some_and(|f| f < 1) {
            return Err("failureFactor must be at least 1".into());
        }
        for (name, v) in [
            ("waitIncrementSeconds", self.wait_increment_seconds),
            ("maxFailureWaitSeconds", self.max_failure_wait_seconds),
            (
                "minimumQuickLoginWaitSeconds",
                self.minimum_quick_login_wait_seconds,
            ),
            (
                "quickLoginCheckMilliSeconds",
                self.quick_login_check_milli_seconds,
            ),
            ("maxDeltaTimeSeconds", self.max_delta_time_seconds),
        ] {
            positive(name, v)?;
        }
        if let Some(e) = self.events_expiration {
            realm.events_expiration = Some(e).filter(|e| *e > 0);
        }
        positive("accessTokenLifespan", self.access_token_lifespan)?;
        positive("ssoSessionIdleTimeout", self.sso_session_idle_timeout)?;
        positive("ssoSessionMaxLifespan", self.sso_session_max_lifespan)?;
        positive("accessCodeLifespan", self.access_code_lifespan)?;
        if let Some(v) = &self.display_name {
            realm.display_name = Some(v.clone());
        }
        if let Some(alg) = &self.default_signature_algorithm {
            if !matches!(alg.as_str(), "RS256" | "ES256") {
                return Err(format!(
                    "defaultSignatureAlgorithm {alg} is not supported (RS256, ES256)"
                ));
            }
            realm.default_signature_algorithm = alg.clone();
        }
        if let Some(p) = &self.password_policy {
            crate::idp::password_policy::Policy::parse(Some(p))?;
            realm.password_policy = Some(p.clone()).filter(|p| !p.trim().is_empty());
        }
        if let Some(t) = &self.login_theme {
            realm.login_theme = Some(t.clone()).filter(|t| !t.is_empty());
        }
        if let Some(t) = &self.email_theme {
            realm.email_theme = Some(t.clone()).filter(|t| !t.is_empty());
        }
        if let Some(map) = &self.smtp_server {
            realm.smtp_server = smtp_map(map, &realm.smtp_server)?;
        }
        if let Some(attrs) = &self.attributes {
            for (k, v) in attrs {
                match v {
                    Value::Null => {
                        realm.attributes.remove(k);
                    }
                    Value::String(s) => {
                        realm.attributes.insert(k.clone(), s.clone());
                    }
                    Value::Bool(_) | Value::Number(_) => {
                        realm.attributes.insert(k.clone(), v.to_string());
                    }
                    _ => return Err(format!("attributes.{k}: must be a string")),
                }
            }
        }
        Ok(())
    }
}

/// Keycloak's `smtpServer` as given (values may be strings, booleans or numbers), checked;
/// a masked password keeps the stored one.
pub fn smtp_map(
    input: &BTreeMap<String, Value>,
    current: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in input {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            _ => return Err(format!("smtpServer.{k}: must be a string")),
        };
        out.insert(k.clone(), text);
    }
    if out.get("password").map(String::as_str) == Some(super::providers::SECRET_MASK) {
        match current.get("password") {
            Some(p) => out.insert("password".into(), p.clone()),
            None => out.remove("password"),
        };
    }
    crate::idp::email::SmtpSettings::from_map(&out)?;
    Ok(out)
}

/// The SMTP settings with the password masked.
pub fn smtp_repr(realm: &RealmRecord) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in &realm.smtp_server {
        let v = if k == "password" && !v.is_empty() {
            super::providers::SECRET_MASK.to_string()
        } else {
            v.clone()
        };
        map.insert(k.clone(), Value::String(v));
    }
    Value::Object(map)
}

pub fn realm_repr(realm: &RealmRecord) -> Value {
    json!({
        "id": realm.id,
        "realm": realm.name,
        "displayName": realm.display_name,
        "enabled": realm.enabled,
        "sslRequired": realm.ssl_required,
        "registrationAllowed": realm.registration_allowed,
        "resetPasswordAllowed": realm.reset_password_allowed,
        "rememberMe": realm.remember_me,
        "verifyEmail": realm.verify_email,
        "loginWithEmailAllowed": realm.login_with_email_allowed,
        "duplicateEmailsAllowed": realm.duplicate_emails_allowed,
        "bruteForceProtected": realm.brute_force_protected,
        "permanentLockout": realm.permanent_lockout,
        "failureFactor": realm.failure_factor,
        "waitIncrementSeconds": realm.wait_increment_seconds,
        "maxFailureWaitSeconds": realm.max_failure_wait_seconds,
        "minimumQuickLoginWaitSeconds": realm.minimum_quick_login_wait_seconds,
        "quickLoginCheckMilliSeconds": realm.quick_login_check_milli_seconds,
        "maxDeltaTimeSeconds": realm.max_delta_time_seconds,
        "otpPolicyType": realm.otp_policy_type,
        "otpPolicyAlgorithm": realm.otp_policy_algorithm,
        "otpPolicyDigits": realm.otp_policy_digits,
        "otpPolicyPeriod": realm.otp_policy_period,
        "otpPolicyLookAheadWindow": realm.otp_policy_look_ahead_window,
        "accessTokenLifespan": realm.access_token_lifespan,
        "ssoSessionIdleTimeout": realm.sso_session_idle_timeout,
        "ssoSessionMaxLifespan": realm.sso_session_max_lifespan,
        "offlineSessionIdleTimeout": realm.offline_session_idle_timeout,
        "accessCodeLifespan": realm.access_code_lifespan,
        "actionTokenGeneratedByUserLifespan": realm.action_token_generated_by_user_lifespan,
        "defaultSignatureAlgorithm": realm.default_signature_algorithm,
        "passwordPolicy": realm.password_policy,
        "loginTheme": realm.login_theme,
        "emailTheme": realm.email_theme,
        "smtpServer": smtp_repr(realm),
        "notBefore": realm.not_before,
        "eventsEnabled": realm.events_enabled,
        "eventsExpiration": realm.events_expiration,
        "eventsListeners": realm.events_listeners,
        "enabledEventTypes": realm.enabled_event_types,
        "adminEventsEnabled": realm.admin_events_enabled,
        "adminEventsDetailsEnabled": realm.admin_events_details_enabled,
        "attributes": realm.attributes,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CredentialInput {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    pub temporary: Option<bool>,
    pub secret_data: Option<String>,
    pub credential_data: Option<String>,
    pub user_label: Option<String>,
    pub created_date: Option<i64>,
    pub priority: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserInput {
    pub id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: Option<bool>,
    pub email_verified: Option<bool>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    pub required_actions: Option<Vec<String>>,
    pub credentials: Option<Vec<CredentialInput>>,
    pub realm_roles: Option<Vec<String>>,
    pub client_roles: Option<BTreeMap<String, Vec<String>>>,
    pub groups: Option<Vec<String>>,
    pub service_account_client_id: Option<String>,
    pub created_timestamp: Option<i64>,
}

/// The required actions Keycloak knows.
pub const REQUIRED_ACTIONS: &[&str] = &[
    "CONFIGURE_TOTP",
    "UPDATE_PASSWORD",
    "UPDATE_PROFILE",
    "VERIFY_EMAIL",
    "TERMS_AND_CONDITIONS",
    "webauthn-register",
    "delete_account",
];

fn empty_to_none(s: &Option<String>) -> Option<Option<String>> {
    s.as_ref()
        .map(|v| Some(v.trim().to_string()).filter(|v| !v.is_empty()))
}

impl UserInput {
    /// Apply the fields present to `user` (the username only when `allow_username`).
    /// Forget what only the server decides on create (Keycloak ignores these in
    /// `POST /users`): the id, the creation time, a service-account link. Federation links
    /// and origins are not read at all.
    pub fn ignore_server_owned(&mut self) {
        self.id = None;
        self.created_timestamp = None;
        self.service_account_client_id = None;
    }

    pub fn apply(&self, user: &mut UserRecord, allow_username: bool) -> Result<(), String> {
        if let Some(u) = &self.username {
            let u = u.trim().to_lowercase();
            if u.is_empty() {
                return Err("User name is missing".into());
            }
            if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err("error-invalid-username".into());
            }
            if allow_username || u == user.username {
                user.username = u;
            } else {
                return Err("error-user-attribute-read-only".into());
            }
        }
        if let Some(email) = empty_to_none(&self.email) {
            if let Some(e) = &email {
                if !e.contains('@') || e.len() > 254 || e.chars().any(char::is_whitespace) {
                    return Err("error-invalid-email".into());
                }
            }
            if email != user.email {
                user.email_verified = false;
            }
            user.email = email;
        }
        if let Some(v) = empty_to_none(&self.first_name) {
            user.first_name = v;
        }
        if let Some(v) = empty_to_none(&self.last_name) {
            user.last_name = v;
        }
        if let Some(v) = self.enabled {
            user.enabled = v;
        }
        if let Some(v) = self.email_verified {
            user.email_verified = v;
        }
        if let Some(attrs) = &self.attributes {
            user.attributes = attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_vec()))
                .collect();
        }
        if let Some(actions) = &self.required_actions {
            for a in actions {
                if !REQUIRED_ACTIONS.contains(&a.as_str()) {
                    return Err(format!("Unknown required action: {a}"));
                }
            }
            let mut actions = actions.clone();
            actions.dedup();
            user.required_actions = actions;
        }
        Ok(())
    }
}

pub fn user_repr(user: &UserRecord, brief: bool) -> Value {
    let mut v = json!({
        "id": user.id,
        "username": user.username,
        "enabled": user.enabled,
        "emailVerified": user.email_verified,
        "createdTimestamp": user.created_timestamp,
        "totp": false,
    });
    if let Some(e) = &user.email {
        v["email"] = e.clone().into();
    }
    if let Some(f) = &user.first_name {
        v["firstName"] = f.clone().into();
    }
    if let Some(l) = &user.last_name {
        v["lastName"] = l.clone().into();
    }
    if let Some(f) = &user.federation_link {
        v["federationLink"] = f.clone().into();
    }
    if let Some(c) = &user.service_account_client_id {
        v["serviceAccountClientId"] = c.clone().into();
    }
    if !brief {
        v["attributes"] = json!(user.attributes);
        v["requiredActions"] = json!(user.required_actions);
        v["disableableCredentialTypes"] = json!([]);
        v["notBefore"] = user.not_before.into();
        v["access"] = json!({
            "manageGroupMembership": true, "view": true, "mapRoles": true,
            "impersonate": false, "manage": true
        });
    }
    v
}

pub fn credential_repr(c: &CredentialRecord) -> Value {
    json!({
        "id": c.id,
        "type": c.kind,
        "userLabel": c.user_label,
        "createdDate": c.created_date,
        "credentialData": c.credential_data,
        "priority": c.priority,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientInput {
    pub id: Option<String>,
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub root_url: Option<String>,
    pub admin_url: Option<String>,
    pub base_url: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub client_authenticator_type: Option<String>,
    pub secret: Option<String>,
    pub bearer_only: Option<bool>,
    pub consent_required: Option<bool>,
    pub public_client: Option<bool>,
    pub standard_flow_enabled: Option<bool>,
    pub implicit_flow_enabled: Option<bool>,
    pub direct_access_grants_enabled: Option<bool>,
    pub service_accounts_enabled: Option<bool>,
    pub frontchannel_logout: Option<bool>,
    pub protocol: Option<String>,
    pub attributes: Option<BTreeMap<String, Value>>,
    pub full_scope_allowed: Option<bool>,
    pub protocol_mappers: Option<Vec<Value>>,
    pub default_client_scopes: Option<Vec<String>>,
    pub optional_client_scopes: Option<Vec<String>>,
}

impl ClientInput {
    pub fn apply(&self, c: &mut ClientRecord) -> Result<(), String> {
        if let Some(id) = &self.client_id {
            let id = id.trim();
            if id.is_empty() {
                return Err("clientId is required".into());
            }
            c.client_id = id.to_string();
        }
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    c.$field = v.clone();
                }
            )*};
        }
        for mapper in self.protocol_mappers.iter().flatten() {
            crate::idp::mappers::check_claim(mapper)?;
        }
        set!(
            enabled,
            bearer_only,
            consent_required,
            public_client,
            standard_flow_enabled,
            implicit_flow_enabled,
            direct_access_grants_enabled,
            service_accounts_enabled,
            frontchannel_logout,
            full_scope_allowed,
            protocol_mappers,
            default_client_scopes,
            optional_client_scopes
        );
        for (field, value) in [
            (&mut c.name, &self.name),
            (&mut c.description, &self.description),
            (&mut c.root_url, &self.root_url),
            (&mut c.admin_url, &self.admin_url),
            (&mut c.base_url, &self.base_url),
        ] {
            if let Some(v) = empty_to_none(value) {
                *field = v;
            }
        }
        if let Some(uris) = &self.redirect_uris {
            for u in uris {
                validate_redirect_pattern(u)?;
            }
            c.redirect_uris = uris.clone();
        }
        if let Some(o) = &self.web_origins {
            c.web_origins = o.clone();
        }
        if let Some(t) = &self.client_authenticator_type {
            c.client_authenticator_type = t.clone();
        }
        if let Some(p) = &self.protocol {
            if p != "openid-connect" {
                return Err(format!("protocol {p} is not supported"));
            }
            c.protocol = p.clone();
        }
        if let Some(s) = &self.secret {
            c.secret = Some(s.clone()).filter(|s| !s.is_empty());
        }
        if let Some(attrs) = &self.attributes {
            for (k, v) in attrs {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                c.attributes.insert(k.clone(), text);
            }
        }
        Ok(())
    }
}

/// A registered redirect URI: absolute (or `*`, `+`, `/relative`), `*` only at the end.
pub fn validate_redirect_pattern(uri: &str) -> Result<(), String> {
    let body = uri.strip_suffix('*').unwrap_or(uri);
    if body.contains('*') {
        return Err(format!("A redirect URI may use '*' only at its end: {uri}"));
    }
    if uri == "*" || uri == "+" || uri.starts_with('/') {
        return Ok(());
    }
    match url::Url::parse(body) {
        Ok(u) if u.fragment().is_none() => Ok(()),
        Ok(_) => Err(format!("A redirect URI must not contain a fragment: {uri}")),
        Err(_) => Err(format!("Invalid redirect URI: {uri}")),
    }
}

pub fn client_repr(c: &ClientRecord) -> Value {
    let mut v = json!({
        "id": c.id,
        "clientId": c.client_id,
        "name": c.name,
        "description": c.description,
        "rootUrl": c.root_url,
        "adminUrl": c.admin_url,
        "baseUrl": c.base_url,
        "surrogateAuthRequired": false,
        "enabled": c.enabled,
        "alwaysDisplayInConsole": false,
        "clientAuthenticatorType": c.client_authenticator_type,
        "redirectUris": c.redirect_uris,
        "webOrigins": c.web_origins,
        "notBefore": 0,
        "bearerOnly": c.bearer_only,
        "consentRequired": c.consent_required,
        "standardFlowEnabled": c.standard_flow_enabled,
        "implicitFlowEnabled": c.implicit_flow_enabled,
        "directAccessGrantsEnabled": c.direct_access_grants_enabled,
        "serviceAccountsEnabled": c.service_accounts_enabled,
        "publicClient": c.public_client,
        "frontchannelLogout": c.frontchannel_logout,
        "protocol": c.protocol,
        "attributes": c.attributes,
        "fullScopeAllowed": c.full_scope_allowed,
        "protocolMappers": c.protocol_mappers,
        "defaultClientScopes": c.default_client_scopes,
        "optionalClientScopes": c.optional_client_scopes,
        "access": {"view": true, "configure": true, "manage": true},
    });
    if !c.public_client && !c.bearer_only {
        v["secret"] = c.secret.clone().into();
    }
    v
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub composite: Option<bool>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    /// In realm exports: the roles this composite includes, by name.
    pub composites: Option<CompositesInput>,
}

/// `{"realm": [names], "client": {clientId: [names]}}`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CompositesInput {
    pub realm: Vec<String>,
    pub client: BTreeMap<String, Vec<String>>,
}

pub fn role_repr(r: &RoleRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "composite": !r.composites.is_empty(),
        "clientRole": r.client_role,
        "containerId": r.container_id,
        "attributes": r.attributes,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    pub sub_groups: Option<Vec<GroupInput>>,
    pub realm_roles: Option<Vec<String>>,
    pub client_roles: Option<BTreeMap<String, Vec<String>>>,
}

pub fn group_repr(g: &GroupRecord, path: &str, sub_group_count: usize) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "path": path,
        "parentId": g.parent_id,
        "subGroupCount": sub_group_count,
        "subGroups": [],
        "attributes": g.attributes,
        "realmRoles": [],
        "clientRoles": {},
        "access": {"view": true, "viewMembers": true, "manageMembers": true, "manage": true, "manageMembership": true},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_patterns() {
        assert!(validate_redirect_pattern("https://app.example.com/cb").is_ok());
        assert!(validate_redirect_pattern("https://app.example.com/*").is_ok());
        assert!(validate_redirect_pattern("http://localhost:3000/*").is_ok());
        assert!(validate_redirect_pattern("/relative/*").is_ok());
        assert!(validate_redirect_pattern("https://*.example.com/cb").is_err());
        assert!(validate_redirect_pattern("not a uri").is_err());
        assert!(validate_redirect_pattern("https://a.example.com/#frag").is_err());
    }

    #[test]
    fn user_input_lowercases_and_validates() {
        let mut u = UserRecord::default();
        let input: UserInput =
            serde_json::from_str(r#"{"username":"Jane","email":"j@x.org","unknownField":1}"#)
                .unwrap();
        input.apply(&mut u, true).unwrap();
        assert_eq!(u.username, "jane");
        let bad: UserInput = serde_json::from_str(r#"{"username":"  "}"#).unwrap();
        assert!(bad.apply(&mut u, true).is_err());
        let bad: UserInput = serde_json::from_str(r#"{"requiredActions":["NOPE"]}"#).unwrap();
        assert!(bad.apply(&mut u, true).is_err());
        assert!(serde_json::from_str::<UserInput>(r#"{"enabled":"yes"}"#).is_err());
    }
}
