//! The stored records. These are our own shapes, not Keycloak's wire representations: the
//! admin API maps between the two. Every field added later must carry a serde default so
//! records written by an older version still load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// A realm and its settings (Keycloak's RealmRepresentation, minus the nested collections,
/// which live in their own tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RealmRecord {
    pub id: String,
    pub name: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub ssl_required: String,
    pub registration_allowed: bool,
    /// Self-registration takes the e-mail address as the username.
    pub registration_email_as_username: bool,
    pub reset_password_allowed: bool,
    pub remember_me: bool,
    pub verify_email: bool,
    pub login_with_email_allowed: bool,
    pub duplicate_emails_allowed: bool,
    pub access_token_lifespan: i64,
    pub sso_session_idle_timeout: i64,
    pub sso_session_max_lifespan: i64,
    pub offline_session_idle_timeout: i64,
    /// Keycloak's `revokeRefreshToken`: a refresh token may be used again (false, the
    /// default) or only `refresh_token_max_reuse` more times.
    pub revoke_refresh_token: bool,
    pub refresh_token_max_reuse: i64,
    /// Groups every new user joins (Keycloak's default groups), by id.
    pub default_group_ids: Vec<String>,
    /// The realm's required-action settings; `None`: Keycloak's defaults
    /// (`idp::required_actions::of`).
    pub required_actions: Option<Vec<RequiredActionRecord>>,
    pub access_code_lifespan: i64,
    pub action_token_generated_by_user_lifespan: i64,
    pub default_signature_algorithm: String,
    pub password_policy: Option<String>,
    pub login_theme: Option<String>,
    pub email_theme: Option<String>,
    /// Keycloak's `smtpServer` map (host, port, from, fromDisplayName, replyTo, auth, user,
    /// password, ssl, starttls), as strings.
    pub smtp_server: BTreeMap<String, String>,
    pub not_before: i64,
    pub events_enabled: bool,
    /// Seconds login events are kept; `None` forever.
    pub events_expiration: Option<i64>,
    pub events_listeners: Vec<String>,
    /// Empty: every type.
    pub enabled_event_types: Vec<String>,
    pub admin_events_enabled: bool,
    pub admin_events_details_enabled: bool,
    pub brute_force_protected: bool,
    pub permanent_lockout: bool,
    pub failure_factor: i64,
    pub wait_increment_seconds: i64,
    pub max_failure_wait_seconds: i64,
    pub minimum_quick_login_wait_seconds: i64,
    pub quick_login_check_milli_seconds: i64,
    pub max_delta_time_seconds: i64,
    pub otp_policy_type: String,
    pub otp_policy_algorithm: String,
    pub otp_policy_digits: i64,
    pub otp_policy_period: i64,
    pub otp_policy_look_ahead_window: i64,
    /// Ids of the client scopes every new client gets as default scopes (Keycloak's
    /// `defaultDefaultClientScopes`); `None` until the realm's built-in client scopes exist
    /// (a realm stored before client scopes did: `client_scopes::upgrade` seeds it).
    pub default_client_scope_ids: Option<Vec<String>>,
    /// The same for optional scopes (`defaultOptionalClientScopes`).
    pub optional_client_scope_ids: Vec<String>,
    /// The flows bound to the realm by binding (`browserFlow`, `directGrantFlow`, ...) →
    /// flow alias; a binding not here is Keycloak's default (`idp::flows::binding`).
    pub flow_bindings: BTreeMap<String, String>,
    /// Keycloak settings we keep verbatim until a feature reads them.
    pub attributes: BTreeMap<String, String>,
    pub created_at: i64,
}

impl Default for RealmRecord {
    fn default() -> Self {
        RealmRecord {
            id: String::new(),
            name: String::new(),
            display_name: None,
            enabled: true,
            ssl_required: "external".into(),
            registration_allowed: false,
            registration_email_as_username: false,
            reset_password_allowed: false,
            remember_me: false,
            verify_email: false,
            login_with_email_allowed: true,
            duplicate_emails_allowed: false,
            access_token_lifespan: 300,
            sso_session_idle_timeout: 1800,
            sso_session_max_lifespan: 36000,
            offline_session_idle_timeout: 2_592_000,
            revoke_refresh_token: false,
            refresh_token_max_reuse: 0,
            default_group_ids: Vec::new(),
            required_actions: None,
            access_code_lifespan: 60,
            action_token_generated_by_user_lifespan: 300,
            default_signature_algorithm: "RS256".into(),
            password_policy: None,
            login_theme: None,
            email_theme: None,
            smtp_server: BTreeMap::new(),
            not_before: 0,
            events_enabled: false,
            events_expiration: None,
            events_listeners: vec!["jboss-logging".into()],
            enabled_event_types: Vec::new(),
            admin_events_enabled: false,
            admin_events_details_enabled: false,
            brute_force_protected: false,
            permanent_lockout: false,
            failure_factor: 30,
            wait_increment_seconds: 60,
            max_failure_wait_seconds: 900,
            minimum_quick_login_wait_seconds: 60,
            quick_login_check_milli_seconds: 1000,
            max_delta_time_seconds: 43200,
            otp_policy_type: "totp".into(),
            otp_policy_algorithm: "HmacSHA1".into(),
            otp_policy_digits: 6,
            otp_policy_period: 30,
            otp_policy_look_ahead_window: 1,
            default_client_scope_ids: None,
            optional_client_scope_ids: Vec::new(),
            flow_bindings: BTreeMap::new(),
            attributes: BTreeMap::new(),
            created_at: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub id: String,
    /// Always lower-case.
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub created_timestamp: i64,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub required_actions: Vec<String>,
    pub federation_link: Option<String>,
    /// Set for the service-account user of a client (its uuid).
    pub service_account_client_id: Option<String>,
    pub not_before: i64,
}

/// A credential in Keycloak's own layout, so export and import are a copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CredentialRecord {
    pub id: String,
    /// `password` or `otp`.
    pub kind: String,
    pub user_label: Option<String>,
    pub created_date: i64,
    /// JSON text, e.g. `{"value": "<hash>", "salt": "", "additionalParameters": {}}`.
    pub secret_data: String,
    /// JSON text, e.g. `{"hashIterations": 3, "algorithm": "argon2", ...}`.
    pub credential_data: String,
    pub priority: i32,
    /// A temporary password must be changed at the next login.
    pub temporary: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientRecord {
    pub id: String,
    pub client_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub root_url: Option<String>,
    pub admin_url: Option<String>,
    pub base_url: Option<String>,
    pub redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub client_authenticator_type: String,
    pub secret: Option<String>,
    /// The secret before the last rotation (`secret-rotation` client policy) and until when
    /// (seconds) it still authenticates the client. Never shown but by
    /// `client-secret/rotated`.
    pub rotated_secret: Option<(String, i64)>,
    /// Application nodes registered for this client (host → when, seconds): Keycloak's
    /// `registeredNodes`, tested by `test-nodes-available`.
    pub registered_nodes: BTreeMap<String, i64>,
    pub bearer_only: bool,
    pub consent_required: bool,
    pub public_client: bool,
    #[serde(default = "yes")]
    pub standard_flow_enabled: bool,
    pub implicit_flow_enabled: bool,
    pub direct_access_grants_enabled: bool,
    pub service_accounts_enabled: bool,
    pub frontchannel_logout: bool,
    pub protocol: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub full_scope_allowed: bool,
    /// Roles (by id) whose holders' tokens may carry them when `full_scope_allowed` is off
    /// (Keycloak's client scope mappings).
    pub scope_role_ids: Vec<String>,
    /// Protocol mappers in Keycloak's representation, kept as JSON.
    pub protocol_mappers: Vec<serde_json::Value>,
    /// Ids of the client scopes always applied to the client's tokens.
    pub default_client_scopes: Vec<String>,
    /// Ids of the client scopes applied when a request's `scope` names them.
    pub optional_client_scopes: Vec<String>,
    /// Keycloak's `authenticationFlowBindingOverrides`: `browser` / `direct_grant` → the
    /// id of the flow this client's logins run instead of the realm's.
    pub flow_overrides: BTreeMap<String, String>,
}

/// A client scope (Keycloak's `ClientScopeRepresentation`): protocol mappers and role scope
/// mappings shared by the clients that use it. Its name is what `scope` parameters name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientScopeRecord {
    pub id: String,
    /// Unique in the realm.
    pub name: String,
    pub description: Option<String>,
    /// `openid-connect` (applied to tokens) or `saml` (kept, never applied).
    pub protocol: String,
    /// `include.in.token.scope`, `display.on.consent.screen`, `consent.screen.text`, ...
    pub attributes: BTreeMap<String, String>,
    /// Protocol mappers in Keycloak's representation, kept as JSON.
    pub protocol_mappers: Vec<serde_json::Value>,
    /// Roles (by id) the scope lets a client without `fullScopeAllowed` put in tokens.
    pub scope_role_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The realm id for a realm role, the client uuid for a client role.
    pub container_id: String,
    pub client_role: bool,
    /// Ids of the roles this composite role includes.
    pub composites: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A realm signing key. The private key is PKCS#8 DER, base64.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// `RS256` or `ES256`.
    pub algorithm: String,
    pub private_key_pkcs8: String,
    /// `ACTIVE` signs new tokens; `PASSIVE` only verifies until `retire_at`.
    pub status: String,
    pub created_at: i64,
    pub retire_at: Option<i64>,
}

/// An authentication flow (Keycloak's `AuthenticationFlowModel`) with its executions, in
/// priority order. A sub-flow is a flow of its own (`top_level` false) that an execution of
/// its parent names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthFlowRecord {
    pub id: String,
    /// Unique in the realm.
    pub alias: String,
    pub description: String,
    /// `basic-flow`, `form-flow` or `client-flow`.
    pub provider_id: String,
    pub top_level: bool,
    pub built_in: bool,
    pub executions: Vec<ExecutionRecord>,
}

/// One step of a flow: an authenticator, or a sub-flow (`flow_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionRecord {
    pub id: String,
    /// The provider id (`auth-otp-form`, ...); for a form sub-flow, its form provider.
    pub authenticator: Option<String>,
    /// The sub-flow this execution runs.
    pub flow_id: Option<String>,
    /// `REQUIRED`, `ALTERNATIVE`, `CONDITIONAL` or `DISABLED`.
    pub requirement: String,
    pub priority: i64,
    /// The id of its authenticator configuration.
    pub config_id: Option<String>,
}

/// The configuration of an execution (Keycloak's `AuthenticatorConfigModel`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticatorConfigRecord {
    pub id: String,
    pub alias: String,
    pub config: BTreeMap<String, String>,
}

/// One required action of a realm (Keycloak's `RequiredActionProviderRepresentation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequiredActionRecord {
    pub alias: String,
    pub name: String,
    pub enabled: bool,
    pub default_action: bool,
    pub priority: i64,
}

impl Default for RequiredActionRecord {
    fn default() -> Self {
        RequiredActionRecord {
            alias: String::new(),
            name: String::new(),
            enabled: true,
            default_action: false,
            priority: 0,
        }
    }
}

/// A login (SSO) session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_access: i64,
    pub auth_time: i64,
    pub remember_me: bool,
    pub ip_address: Option<String>,
    /// clientId → when the client was last given tokens in this session.
    pub clients: BTreeMap<String, i64>,
    /// clientId → the scopes that client's tokens were issued for, as a `scope` parameter
    /// (Keycloak's client session scope), which a refresh applies again.
    pub client_scopes: BTreeMap<String, String>,
    /// clientId → `jti` of the refresh token last issued to that client.
    pub refresh_tokens: BTreeMap<String, String>,
    /// clientId → the refresh token that client last presented and how often (Keycloak's
    /// `currentRefreshToken` and its use count), for `revokeRefreshToken`.
    pub refresh_uses: BTreeMap<String, (String, i64)>,
    pub offline: bool,
    /// The administrator who opened this session by impersonation (user id), if any.
    pub impersonator_id: Option<String>,
    /// SHA-256 (hex) of the secret half of the browser's SSO cookie; `None` for sessions
    /// without a browser (password grant).
    pub cookie_hash: Option<String>,
    /// SHA-256 (hex) of the secrets of the gateway's app-host cookies bound to this session
    /// (one per host the user signed in to through the proxy).
    pub gateway_cookies: Vec<String>,
    /// The identity provider the user signed in through (its alias), whose own session
    /// ends with this one when the provider has a `logoutUrl`.
    pub identity_provider: Option<String>,
    /// That provider's ID token, sent as `id_token_hint` when its session is ended.
    pub broker_id_token: Option<String>,
}

/// An authorization code, stored under the SHA-256 of the code (the code itself is never
/// stored). Single-use: `used` is set when redeemed and kept until expiry to detect replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthCodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub session_id: String,
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub expires_at: i64,
    pub used: bool,
}

/// A browser login in progress: the authorization request being served, bound to one
/// browser by a cookie whose hash is stored here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginFlowRecord {
    pub id: String,
    pub browser_hash: String,
    pub csrf_token: String,
    /// The authorization request parameters, as received (validated).
    pub params: BTreeMap<String, String>,
    /// Set once the password is verified while a required action is pending.
    pub user_id: Option<String>,
    pub remember_me: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A login or admin event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventRecord {
    pub id: String,
    pub time: i64,
    /// `LOGIN`, `LOGIN_ERROR`, ... or `ADMIN` for admin events.
    pub kind: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip_address: Option<String>,
    pub error: Option<String>,
    pub details: BTreeMap<String, String>,
}

/// A device authorization (RFC 8628), stored under the SHA-256 of the device code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceCodeRecord {
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    /// Seconds the client must wait between polls.
    pub interval: i64,
    pub last_poll: i64,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
}

/// Failed logins of a user (brute-force protection, Keycloak's `UserLoginFailureModel`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginFailureRecord {
    pub num_failures: u32,
    /// ms of the last failure.
    pub last_failure: i64,
    pub last_ip_failure: Option<String>,
    /// No login is accepted before this time (ms).
    pub failed_login_not_before: i64,
}
