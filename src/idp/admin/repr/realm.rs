//! The realm representation (`RealmRepresentation`): settings read by `PUT`, written by
//! `GET`, and the SMTP server map.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::RealmRecord;

use super::{ClientInput, GroupInput, RoleInput, UserInput};

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "RealmRepresentation")]
pub struct RealmInput {
    pub id: Option<String>,
    pub realm: Option<String>,
    pub display_name: Option<String>,
    pub enabled: Option<bool>,
    pub ssl_required: Option<String>,
    pub registration_allowed: Option<bool>,
    pub registration_email_as_username: Option<bool>,
    pub reset_password_allowed: Option<bool>,
    pub remember_me: Option<bool>,
    pub verify_email: Option<bool>,
    pub login_with_email_allowed: Option<bool>,
    pub duplicate_emails_allowed: Option<bool>,
    pub access_token_lifespan: Option<i64>,
    pub sso_session_idle_timeout: Option<i64>,
    pub sso_session_max_lifespan: Option<i64>,
    pub offline_session_idle_timeout: Option<i64>,
    pub revoke_refresh_token: Option<bool>,
    pub refresh_token_max_reuse: Option<i64>,
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
    /// The flow bindings (`browserFlow`, `directGrantFlow`, ...), by flow alias.
    pub browser_flow: Option<String>,
    pub registration_flow: Option<String>,
    pub direct_grant_flow: Option<String>,
    pub reset_credentials_flow: Option<String>,
    pub client_authentication_flow: Option<String>,
    pub docker_authentication_flow: Option<String>,
    pub first_broker_login_flow: Option<String>,
    pub users: Option<Vec<UserInput>>,
    pub clients: Option<Vec<ClientInput>>,
    pub roles: Option<RolesInput>,
    pub groups: Option<Vec<GroupInput>>,
    /// Paths of the groups new users join (`["/staff"]`), resolved after the groups.
    pub default_groups: Option<Vec<String>>,
    /// A realm file's required-action settings (import only; the admin API has its own
    /// endpoints).
    pub required_actions: Option<Vec<RequiredActionInput>>,
    /// Realm roles clients without full scope may put in tokens (`[{client, roles}]`).
    pub scope_mappings: Option<Vec<ScopeMappingInput>>,
    /// The same for client roles, by the roles' clientId.
    pub client_scope_mappings: Option<BTreeMap<String, Vec<ScopeMappingInput>>>,
    /// A realm file's client scopes (import only); without them the built-in ones are
    /// created.
    pub client_scopes: Option<Vec<super::ClientScopeInput>>,
    /// Names of the scopes new clients get (import only, as in Keycloak).
    pub default_default_client_scopes: Option<Vec<String>>,
    pub default_optional_client_scopes: Option<Vec<String>>,
}

/// One entry of a realm file's `scopeMappings` (or `clientScopeMappings`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "ScopeMappingRepresentation")]
pub struct ScopeMappingInput {
    pub client: Option<String>,
    /// A client scope's mapping instead of a client's.
    #[serde(rename = "clientScope")]
    pub client_scope: Option<String>,
    pub roles: Vec<String>,
}

/// One entry of a realm file's `requiredActions`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(rename = "RequiredActionProviderRepresentation")]
pub struct RequiredActionInput {
    pub alias: String,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub default_action: Option<bool>,
    pub priority: Option<i64>,
}

impl RealmInput {
    /// The file's required actions, as the realm keeps them: only those the login
    /// implements (a Keycloak export lists others too, e.g. TERMS_AND_CONDITIONS); `None`
    /// when the file has none.
    pub fn required_action_records(&self) -> Option<Vec<crate::store::RequiredActionRecord>> {
        let given = self.required_actions.as_ref()?;
        let implemented = crate::idp::required_actions::IMPLEMENTED;
        Some(
            given
                .iter()
                .filter_map(|r| {
                    let (alias, name, priority) =
                        implemented.iter().find(|(alias, _, _)| *alias == r.alias)?;
                    let enabled = r.enabled.unwrap_or(true);
                    Some(crate::store::RequiredActionRecord {
                        alias: alias.to_string(),
                        name: r.name.clone().unwrap_or_else(|| name.to_string()),
                        enabled,
                        default_action: enabled && r.default_action.unwrap_or(false),
                        priority: r.priority.unwrap_or(*priority),
                    })
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "RolesRepresentation")]
pub struct RolesInput {
    pub realm: Vec<RoleInput>,
    pub client: BTreeMap<String, Vec<RoleInput>>,
}

/// Keycloak's durations and counts are Java `int`s: 0 to 2147483647. Larger ones would
/// overflow once turned into milliseconds (and a wrapped brute-force window disables it).
fn positive(name: &str, v: Option<i64>) -> Result<(), String> {
    match v {
        Some(n) if n < 0 => Err(format!("{name} must not be negative")),
        Some(n) if n > i64::from(i32::MAX) => Err(format!("{name} must be at most {}", i32::MAX)),
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
            registration_email_as_username,
            reset_password_allowed,
            remember_me,
            verify_email,
            login_with_email_allowed,
            duplicate_emails_allowed,
            access_token_lifespan,
            sso_session_idle_timeout,
            sso_session_max_lifespan,
            offline_session_idle_timeout,
            revoke_refresh_token,
            refresh_token_max_reuse,
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
        for (binding, alias) in [
            ("browserFlow", &self.browser_flow),
            ("registrationFlow", &self.registration_flow),
            ("directGrantFlow", &self.direct_grant_flow),
            ("resetCredentialsFlow", &self.reset_credentials_flow),
            ("clientAuthenticationFlow", &self.client_authentication_flow),
            ("dockerAuthenticationFlow", &self.docker_authentication_flow),
            ("firstBrokerLoginFlow", &self.first_broker_login_flow),
        ] {
            // The flow must exist: the caller, which has the store, checks
            // (`admin::flows::check_bindings`).
            if let Some(alias) = alias.as_ref().filter(|a| !a.is_empty()) {
                realm
                    .flow_bindings
                    .insert(binding.to_string(), alias.clone());
            }
        }
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
            positive("eventsExpiration", Some(e.max(0)))?;
            realm.events_expiration = Some(e).filter(|e| *e > 0);
        }
        for (name, v) in [
            ("accessTokenLifespan", self.access_token_lifespan),
            ("ssoSessionIdleTimeout", self.sso_session_idle_timeout),
            ("ssoSessionMaxLifespan", self.sso_session_max_lifespan),
            (
                "offlineSessionIdleTimeout",
                self.offline_session_idle_timeout,
            ),
            ("accessCodeLifespan", self.access_code_lifespan),
            (
                "actionTokenGeneratedByUserLifespan",
                self.action_token_generated_by_user_lifespan,
            ),
            ("refreshTokenMaxReuse", self.refresh_token_max_reuse),
            ("failureFactor", self.failure_factor),
        ] {
            positive(name, v)?;
        }
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
    if out.get("password").map(String::as_str) == Some(crate::idp::admin::providers::SECRET_MASK) {
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
            crate::idp::admin::providers::SECRET_MASK.to_string()
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
        "registrationEmailAsUsername": realm.registration_email_as_username,
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
        "revokeRefreshToken": realm.revoke_refresh_token,
        "refreshTokenMaxReuse": realm.refresh_token_max_reuse,
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
        "browserFlow": crate::idp::flows::binding(realm, "browserFlow"),
        "registrationFlow": crate::idp::flows::binding(realm, "registrationFlow"),
        "directGrantFlow": crate::idp::flows::binding(realm, "directGrantFlow"),
        "resetCredentialsFlow": crate::idp::flows::binding(realm, "resetCredentialsFlow"),
        "clientAuthenticationFlow": crate::idp::flows::binding(realm, "clientAuthenticationFlow"),
        "dockerAuthenticationFlow": crate::idp::flows::binding(realm, "dockerAuthenticationFlow"),
        "firstBrokerLoginFlow": crate::idp::flows::binding(realm, "firstBrokerLoginFlow"),
    })
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// What the admin API shows of a realm's settings, sent back, is those settings.
        #[test]
        fn a_realm_representation_reads_back_as_the_realm(
            display in proptest::option::of("[ -~]{1,20}"),
            enabled in any::<bool>(),
            ssl in prop_oneof![Just("none"), Just("external"), Just("all")],
            flags in proptest::collection::vec(any::<bool>(), 6),
            lifespans in proptest::collection::vec(1i64..1_000_000, 4),
            failures in 1i64..100,
        ) {
            let body = serde_json::json!({
                "displayName": display, "enabled": enabled, "sslRequired": ssl,
                "registrationAllowed": flags[0], "resetPasswordAllowed": flags[1],
                "rememberMe": flags[2], "verifyEmail": flags[3],
                "loginWithEmailAllowed": flags[4], "bruteForceProtected": flags[5],
                "accessTokenLifespan": lifespans[0], "ssoSessionIdleTimeout": lifespans[1],
                "ssoSessionMaxLifespan": lifespans[2], "accessCodeLifespan": lifespans[3],
                "failureFactor": failures,
            });
            let input: RealmInput = serde_json::from_value(body).unwrap();
            let fresh = || RealmRecord { id: "r".into(), name: "demo".into(), ..Default::default() };
            let mut realm = fresh();
            input.apply(&mut realm).unwrap();
            let shown = realm_repr(&realm);
            let back: RealmInput = serde_json::from_value(shown.clone()).unwrap();
            let mut again = fresh();
            back.apply(&mut again).unwrap();
            prop_assert_eq!(realm_repr(&again), shown);
        }
    }
}
