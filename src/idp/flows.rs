//! Authentication flows: Keycloak's built-in flows of every realm, the authenticators
//! Portcullis knows, the realm's flow bindings, and what the bound flows ask of a login.
//!
//! The login pages and the password grant are fixed code paths (username and password,
//! then a one-time code, then required actions); the bound flow decides which of their
//! steps run. [`browser_plan`] and [`direct_grant_plan`] read it: whether the SSO cookie is
//! honoured, and when a one-time code is asked for ([`OtpRule`]) — never (the OTP step
//! disabled), always (`OTP Form` REQUIRED: users without an authenticator configure one),
//! or under the conditions of a CONDITIONAL sub-flow (`Condition - user configured`,
//! `Condition - user role`). A REQUIRED authenticator Portcullis cannot run (WebAuthn,
//! Kerberos, ...) makes the login fail closed rather than skip it.

use std::collections::BTreeMap;

use crate::crypto::random_id;
use crate::store::{
    AuthFlowRecord, AuthenticatorConfigRecord, ClientRecord, ExecutionRecord, RealmRecord,
    StoreError, Txn, View, Write,
};

use super::roles::EffectiveRoles;

pub const REQUIRED: &str = "REQUIRED";
pub const ALTERNATIVE: &str = "ALTERNATIVE";
pub const CONDITIONAL: &str = "CONDITIONAL";
pub const DISABLED: &str = "DISABLED";

pub const BASIC_FLOW: &str = "basic-flow";
pub const FORM_FLOW: &str = "form-flow";
pub const CLIENT_FLOW: &str = "client-flow";

/// The realm's flow bindings and Keycloak's default flow for each.
pub const BINDINGS: &[(&str, &str)] = &[
    ("browserFlow", "browser"),
    ("registrationFlow", "registration"),
    ("directGrantFlow", "direct grant"),
    ("resetCredentialsFlow", "reset credentials"),
    ("clientAuthenticationFlow", "clients"),
    ("dockerAuthenticationFlow", "docker auth"),
    ("firstBrokerLoginFlow", "first broker login"),
];

/// The alias of the flow bound as `binding` (`browserFlow`, ...).
pub fn binding<'a>(realm: &'a RealmRecord, binding: &str) -> &'a str {
    realm
        .flow_bindings
        .get(binding)
        .map(String::as_str)
        .or_else(|| {
            BINDINGS
                .iter()
                .find(|(b, _)| *b == binding)
                .map(|(_, d)| *d)
        })
        .unwrap_or("")
}

/// What the flow engine knows of an authenticator.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    /// Which flow type it goes in: `basic-flow`, `form-flow` (form actions) or
    /// `client-flow`.
    pub flow: &'static str,
    pub requirements: &'static [&'static str],
    pub configurable: bool,
    /// Whether the login can perform it when it is REQUIRED; one that cannot (and is
    /// REQUIRED on the path of a login) fails the login.
    pub performed: bool,
    /// A condition of a CONDITIONAL sub-flow.
    pub condition: bool,
}

const RAD: &[&str] = &[REQUIRED, ALTERNATIVE, DISABLED];
const RD: &[&str] = &[REQUIRED, DISABLED];
const R: &[&str] = &[REQUIRED];
const ARD: &[&str] = &[ALTERNATIVE, REQUIRED, DISABLED];

const fn p(
    id: &'static str,
    display_name: &'static str,
    description: &'static str,
    flow: &'static str,
    requirements: &'static [&'static str],
    configurable: bool,
    performed: bool,
) -> Provider {
    Provider {
        id,
        display_name,
        description,
        flow,
        requirements,
        configurable,
        performed,
        condition: false,
    }
}

const fn condition(
    id: &'static str,
    display_name: &'static str,
    description: &'static str,
    configurable: bool,
) -> Provider {
    Provider {
        id,
        display_name,
        description,
        flow: BASIC_FLOW,
        requirements: RD,
        configurable,
        performed: true,
        condition: true,
    }
}

/// The authenticators, form actions and client authenticators of Keycloak's built-in
/// flows, and the conditions the flow engine evaluates.
pub const PROVIDERS: &[Provider] = &[
    p("auth-cookie", "Cookie", "Validates the SSO cookie set by the auth server.", BASIC_FLOW, RAD, false, true),
    p("auth-spnego", "Kerberos", "Initiates the SPNEGO protocol. Most often used with Kerberos.", BASIC_FLOW, ARD, false, false),
    p("identity-provider-redirector", "Identity Provider Redirector", "Redirects to default Identity Provider or Identity Provider specified with kc_idp_hint query parameter", BASIC_FLOW, RAD, true, false),
    p("auth-username-password-form", "Username Password Form", "Validates a username and password from login form.", BASIC_FLOW, R, false, true),
    p("auth-otp-form", "OTP Form", "Validates a OTP on a separate OTP form.", BASIC_FLOW, RAD, false, true),
    p("webauthn-authenticator", "WebAuthn Authenticator", "Authenticator for WebAuthn. Usually used for WebAuthn two-factor authentication", BASIC_FLOW, RAD, false, false),
    p("auth-recovery-authn-code-form", "Recovery Authentication Code Form", "Validates a Recovery Authentication Code", BASIC_FLOW, RAD, false, false),
    p("deny-access-authenticator", "Deny access", "Access will be always denied.", BASIC_FLOW, RD, true, true),
    p("allow-access-authenticator", "Allow access", "Authenticator will always successfully authenticate. Useful for example in the conditional flows to be used after satisfying the previous conditions", BASIC_FLOW, RAD, false, true),
    condition("conditional-user-configured", "Condition - user configured", "Executes the current flow only if authenticators are configured", false),
    condition("conditional-user-role", "Condition - user role", "Flow is executed only if user has the given role.", true),
    p("direct-grant-validate-username", "Username Validation", "Validates the username supplied as a 'username' form parameter in direct grant request", BASIC_FLOW, R, false, true),
    p("direct-grant-validate-password", "Password", "Validates the password supplied as a 'password' form parameter in direct grant request", BASIC_FLOW, RD, false, true),
    p("direct-grant-validate-otp", "OTP", "Validates the one time password supplied as a 'totp' form parameter in direct grant request", BASIC_FLOW, RAD, false, true),
    p("reset-credentials-choose-user", "Choose User", "Choose a user to reset credentials for", BASIC_FLOW, R, false, true),
    p("reset-credential-email", "Send Reset Email", "Send email to user and wait for response.", BASIC_FLOW, R, false, true),
    p("reset-password", "Reset Password", "Sets the Update Password required action if execution is REQUIRED. Will also set it if execution is OPTIONAL and the password is currently configured for it.", BASIC_FLOW, RD, false, true),
    p("reset-otp", "Reset OTP", "Removes existing OTP configurations (if chosen) and sets the 'Configure OTP' required action.", BASIC_FLOW, RD, true, true),
    p("registration-page-form", "Registration Page", "This is the controller for the registration page", BASIC_FLOW, RD, false, true),
    p("registration-user-creation", "Registration User Profile Creation", "This action must always be first! Validates the username and user profile of the user in validation phase.  In success phase, this will create the user in the database including his user profile.", FORM_FLOW, RD, false, true),
    p("registration-password-action", "Password Validation", "Validates that password matches password confirmation field.  It also will store password in user's credential store.", FORM_FLOW, RD, false, true),
    p("registration-recaptcha-action", "reCAPTCHA", "Adds Google reCAPTCHA to the form.", FORM_FLOW, RD, true, false),
    p("registration-terms-and-conditions", "Terms and conditions", "Asks the user to accept terms and conditions before submitting its registration form.", FORM_FLOW, RD, false, false),
    p("client-secret", "Client Id and Secret", "Validates client based on 'client_id' and 'client_secret' sent either in request parameters or in 'Authorization: Basic' header", CLIENT_FLOW, ARD, false, true),
    p("client-jwt", "Signed Jwt", "Validates client based on signed JWT issued by client and signed with the Client private key", CLIENT_FLOW, ARD, false, true),
    p("client-secret-jwt", "Signed Jwt with Client Secret", "Validates client based on signed JWT issued by client and signed with the Client Secret", CLIENT_FLOW, ARD, false, true),
    p("client-x509", "X509 Certificate", "Validates client based on a X509 Certificate", CLIENT_FLOW, ARD, false, false),
    p("idp-review-profile", "Review Profile", "User reviews and updates profile data retrieved from Identity Provider in the displayed form", BASIC_FLOW, RD, true, false),
    p("idp-create-user-if-unique", "Create User If Unique", "Detect if there is existing Keycloak account with same email like identity provider. If no, create new user", BASIC_FLOW, RAD, true, false),
    p("idp-confirm-link", "Confirm link existing account", "Show the form where user confirms if he wants to link identity provider with existing account or rather edit user profile data retrieved from identity provider to avoid conflict", BASIC_FLOW, RAD, false, false),
    p("idp-email-verification", "Verify existing account by Email", "Email verification of existing Keycloak user, that wants to link his user account with identity provider", BASIC_FLOW, RAD, false, false),
    p("idp-username-password-form", "Username Password Form for identity provider reauthentication", "Validates a password from login form. Username may be already known from identity provider authentication", BASIC_FLOW, R, false, false),
    p("docker-http-basic-authenticator", "Docker Authenticator", "Uses HTTP Basic authentication to validate docker users, returning a docker error token on auth failure", BASIC_FLOW, R, false, false),
];

pub fn provider(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

// ---- Keycloak's built-in flows ----

/// A flow under construction: its record, and the sub-flows and configs it made.
struct Builder {
    flows: Vec<AuthFlowRecord>,
    configs: Vec<AuthenticatorConfigRecord>,
}

/// What a built-in execution is.
enum Step {
    Auth(&'static str, &'static str),
    /// An authenticator with a configuration (alias, settings).
    Configured(
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    ),
    Flow(&'static str, &'static str, &'static str, Vec<Step>),
}

impl Builder {
    /// Add a flow of `steps` and return its id.
    fn flow(
        &mut self,
        alias: &str,
        description: &str,
        provider_id: &str,
        top_level: bool,
        steps: Vec<Step>,
    ) -> String {
        let id = random_id();
        let mut executions = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let priority = (i as i64 + 1) * 10;
            let mut e = ExecutionRecord {
                id: random_id(),
                priority,
                ..Default::default()
            };
            match step {
                Step::Auth(authenticator, requirement) => {
                    e.authenticator = Some(authenticator.into());
                    e.requirement = requirement.into();
                }
                Step::Configured(authenticator, requirement, alias, config) => {
                    let c = AuthenticatorConfigRecord {
                        id: random_id(),
                        alias: alias.into(),
                        config: config
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    };
                    e.config_id = Some(c.id.clone());
                    self.configs.push(c);
                    e.authenticator = Some(authenticator.into());
                    e.requirement = requirement.into();
                }
                Step::Flow(sub_alias, description, requirement, sub_steps) => {
                    let form = sub_alias == "registration form";
                    let sub = self.flow(
                        sub_alias,
                        description,
                        if form { FORM_FLOW } else { BASIC_FLOW },
                        false,
                        sub_steps,
                    );
                    if form {
                        e.authenticator = Some("registration-page-form".into());
                    }
                    e.flow_id = Some(sub);
                    e.requirement = requirement.into();
                }
            }
            executions.push(e);
        }
        self.flows.push(AuthFlowRecord {
            id: id.clone(),
            alias: alias.into(),
            description: description.into(),
            provider_id: provider_id.into(),
            top_level,
            built_in: true,
            executions,
        });
        id
    }
}

/// Keycloak's built-in flows (26.0), top-level flows and sub-flows, with their configs.
pub fn builtin() -> (Vec<AuthFlowRecord>, Vec<AuthenticatorConfigRecord>) {
    use Step::{Auth, Configured, Flow};
    let mut b = Builder {
        flows: Vec::new(),
        configs: Vec::new(),
    };
    b.flow(
        "browser",
        "Browser based authentication",
        BASIC_FLOW,
        true,
        vec![
            Auth("auth-cookie", ALTERNATIVE),
            Auth("auth-spnego", DISABLED),
            Auth("identity-provider-redirector", ALTERNATIVE),
            Flow(
                "forms",
                "Username, password, otp and other auth forms.",
                ALTERNATIVE,
                vec![
                    Auth("auth-username-password-form", REQUIRED),
                    Flow(
                        "Browser - Conditional OTP",
                        "Flow to determine if the OTP is required for the authentication",
                        CONDITIONAL,
                        vec![
                            Auth("conditional-user-configured", REQUIRED),
                            Auth("auth-otp-form", REQUIRED),
                        ],
                    ),
                ],
            ),
        ],
    );
    b.flow(
        "direct grant",
        "OpenID Connect Resource Owner Grant",
        BASIC_FLOW,
        true,
        vec![
            Auth("direct-grant-validate-username", REQUIRED),
            Auth("direct-grant-validate-password", REQUIRED),
            Flow(
                "Direct Grant - Conditional OTP",
                "Flow to determine if the OTP is required for the authentication",
                CONDITIONAL,
                vec![
                    Auth("conditional-user-configured", REQUIRED),
                    Auth("direct-grant-validate-otp", REQUIRED),
                ],
            ),
        ],
    );
    b.flow(
        "registration",
        "Registration flow",
        BASIC_FLOW,
        true,
        vec![Flow(
            "registration form",
            "Registration form",
            REQUIRED,
            vec![
                Auth("registration-user-creation", REQUIRED),
                Auth("registration-password-action", REQUIRED),
                Auth("registration-recaptcha-action", DISABLED),
                Auth("registration-terms-and-conditions", DISABLED),
            ],
        )],
    );
    b.flow(
        "reset credentials",
        "Reset credentials for a user if they forgot their password or something",
        BASIC_FLOW,
        true,
        vec![
            Auth("reset-credentials-choose-user", REQUIRED),
            Auth("reset-credential-email", REQUIRED),
            Auth("reset-password", REQUIRED),
            Flow(
                "Reset - Conditional OTP",
                "Flow to determine if the OTP should be reset or not. Set to REQUIRED to force.",
                CONDITIONAL,
                vec![
                    Auth("conditional-user-configured", REQUIRED),
                    Auth("reset-otp", REQUIRED),
                ],
            ),
        ],
    );
    b.flow(
        "clients",
        "Base authentication for clients",
        CLIENT_FLOW,
        true,
        vec![
            Auth("client-secret", ALTERNATIVE),
            Auth("client-jwt", ALTERNATIVE),
            Auth("client-secret-jwt", ALTERNATIVE),
            Auth("client-x509", ALTERNATIVE),
        ],
    );
    b.flow(
        "first broker login",
        "Actions taken after first broker login with identity provider account, which is not yet linked to any Keycloak account",
        BASIC_FLOW,
        true,
        vec![
            Configured(
                "idp-review-profile",
                REQUIRED,
                "review profile config",
                &[("update.profile.on.first.login", "missing")],
            ),
            Flow(
                "User creation or linking",
                "Flow for the existing/non-existing user alternatives",
                REQUIRED,
                vec![
                    Configured(
                        "idp-create-user-if-unique",
                        ALTERNATIVE,
                        "create unique user config",
                        &[("require.password.update.after.registration", "false")],
                    ),
                    Flow(
                        "Handle Existing Account",
                        "Handle what to do if there is existing account with same email/username like authenticated identity provider",
                        ALTERNATIVE,
                        vec![
                            Auth("idp-confirm-link", REQUIRED),
                            Flow(
                                "Account verification options",
                                "Method with which to verity the existing account",
                                REQUIRED,
                                vec![
                                    Auth("idp-email-verification", ALTERNATIVE),
                                    Flow(
                                        "Verify Existing Account by Re-authentication",
                                        "Reauthentication of existing account",
                                        ALTERNATIVE,
                                        vec![
                                            Auth("idp-username-password-form", REQUIRED),
                                            Flow(
                                                "First broker login - Conditional OTP",
                                                "Flow to determine if the OTP is required for the authentication",
                                                CONDITIONAL,
                                                vec![
                                                    Auth("conditional-user-configured", REQUIRED),
                                                    Auth("auth-otp-form", REQUIRED),
                                                ],
                                            ),
                                        ],
                                    ),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    );
    b.flow(
        "docker auth",
        "Used by Docker clients to authenticate against the IDP",
        BASIC_FLOW,
        true,
        vec![Auth("docker-http-basic-authenticator", REQUIRED)],
    );
    (b.flows, b.configs)
}

/// Create the built-in flows a realm lacks (by top-level alias).
pub fn ensure_builtin(w: &mut Write, realm_id: &str) -> Result<(), StoreError> {
    let existing: Vec<String> = w
        .auth_flows(realm_id)?
        .into_iter()
        .map(|f| f.alias)
        .collect();
    let (flows, configs) = builtin();
    // The built-in flows, each with its sub-flows and configs, as one family by top flow.
    let mut keep_ids = std::collections::HashSet::new();
    for top in flows.iter().filter(|f| f.top_level) {
        if existing.contains(&top.alias) {
            continue;
        }
        let mut stack = vec![top.id.clone()];
        while let Some(id) = stack.pop() {
            keep_ids.insert(id.clone());
            if let Some(f) = flows.iter().find(|f| f.id == id) {
                stack.extend(f.executions.iter().filter_map(|e| e.flow_id.clone()));
            }
        }
    }
    for f in flows.iter().filter(|f| keep_ids.contains(&f.id)) {
        w.put_auth_flow(realm_id, f)?;
        for e in &f.executions {
            if let Some(c) = configs.iter().find(|c| Some(&c.id) == e.config_id.as_ref()) {
                w.put_authenticator_config(realm_id, c)?;
            }
        }
    }
    Ok(())
}

/// Bring realms stored before flows existed up to date (at start; a no-op once done).
pub fn upgrade(w: &mut Write) -> Result<usize, StoreError> {
    let mut n = 0;
    for realm in w.realms()? {
        if w.auth_flows(&realm.id)?.is_empty() {
            ensure_builtin(w, &realm.id)?;
            n += 1;
        }
    }
    Ok(n)
}

/// A realm's flows by alias.
pub fn by_alias<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    alias: &str,
) -> Result<Option<AuthFlowRecord>, StoreError> {
    Ok(read
        .auth_flows(realm_id)?
        .into_iter()
        .find(|f| f.alias == alias))
}

// ---- What a bound flow asks of a login ----

/// A condition of a CONDITIONAL sub-flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `conditional-user-configured`: the user has the credential the sub-flow checks
    /// (for the OTP sub-flows: an authenticator).
    UserConfigured,
    /// `conditional-user-role`: the user holds `role` (`client.role` for a client role),
    /// or does not (`negate`).
    UserRole { role: String, negate: bool },
}

/// When the one-time code is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpRule {
    Never,
    Always,
    /// When every condition holds.
    When(Vec<Condition>),
}

/// What the OTP step does for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpStep {
    Skip,
    Ask,
    /// Asked for, but the user has no authenticator: configure one first.
    Configure,
}

impl OtpRule {
    pub fn step(&self, has_otp: bool, roles: &EffectiveRoles) -> OtpStep {
        let needed = match self {
            OtpRule::Never => false,
            OtpRule::Always => true,
            OtpRule::When(conditions) => conditions.iter().all(|c| match c {
                Condition::UserConfigured => has_otp,
                Condition::UserRole { role, negate } => {
                    let held = match role.split_once('.') {
                        Some((client, name)) if !roles.realm.contains(role) => {
                            roles.has_client_role(client, name)
                        }
                        _ => roles.realm.contains(role),
                    };
                    held != *negate
                }
            }),
        };
        match (needed, has_otp) {
            (false, _) => OtpStep::Skip,
            (true, true) => OtpStep::Ask,
            (true, false) => OtpStep::Configure,
        }
    }
}

/// What the realm's bound browser or direct-grant flow asks of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The SSO cookie signs the user in (`auth-cookie` not disabled).
    pub cookie: bool,
    pub otp: OtpRule,
    /// A REQUIRED step the login cannot perform (display name): the login is refused.
    pub unsupported: Option<String>,
}

/// The flows of a realm, by id, and its configs, for evaluation.
struct Flows {
    by_id: BTreeMap<String, AuthFlowRecord>,
    configs: BTreeMap<String, AuthenticatorConfigRecord>,
}

fn active(e: &ExecutionRecord) -> bool {
    e.requirement != DISABLED
}

impl Flows {
    /// The OTP rule of the sub-tree `flow`, for the authenticator `otp`; `None` when it
    /// holds no active one.
    fn otp_rule(&self, flow: &AuthFlowRecord, otp: &str, depth: usize) -> Option<OtpRule> {
        if depth > 16 {
            return None;
        }
        // Keycloak: where a flow has REQUIRED or CONDITIONAL steps, its ALTERNATIVE ones
        // are ignored.
        let has_required = flow.executions.iter().any(|e| {
            matches!(e.requirement.as_str(), REQUIRED | CONDITIONAL)
                && !e
                    .authenticator
                    .as_deref()
                    .and_then(provider)
                    .is_some_and(|p| p.condition)
        });
        for e in flow.executions.iter().filter(|e| active(e)) {
            if has_required && e.requirement == ALTERNATIVE {
                continue;
            }
            if let Some(sub) = e.flow_id.as_ref().and_then(|id| self.by_id.get(id)) {
                let Some(inner) = self.otp_rule(sub, otp, depth + 1) else {
                    continue;
                };
                if e.requirement != CONDITIONAL {
                    return Some(inner);
                }
                let mut conditions = self.conditions(sub);
                return Some(match inner {
                    OtpRule::Never => OtpRule::Never,
                    OtpRule::Always => OtpRule::When(conditions),
                    OtpRule::When(more) => {
                        conditions.extend(more);
                        OtpRule::When(conditions)
                    }
                });
            }
            if e.authenticator.as_deref() == Some(otp) {
                return Some(if e.requirement == REQUIRED {
                    OtpRule::Always
                } else {
                    // An alternative among others: the user's authenticator when there is one.
                    OtpRule::When(vec![Condition::UserConfigured])
                });
            }
        }
        None
    }

    /// The conditions of a CONDITIONAL sub-flow.
    fn conditions(&self, flow: &AuthFlowRecord) -> Vec<Condition> {
        let mut out = Vec::new();
        for e in flow.executions.iter().filter(|e| active(e)) {
            match e.authenticator.as_deref() {
                Some("conditional-user-configured") => out.push(Condition::UserConfigured),
                Some("conditional-user-role") => {
                    let config = e
                        .config_id
                        .as_ref()
                        .and_then(|id| self.configs.get(id))
                        .map(|c| c.config.clone())
                        .unwrap_or_default();
                    out.push(Condition::UserRole {
                        role: config.get("condUserRole").cloned().unwrap_or_default(),
                        negate: config.get("negate").is_some_and(|v| v == "true"),
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// The first REQUIRED step on the login's path that the login cannot perform.
    fn unsupported(&self, flow: &AuthFlowRecord, depth: usize) -> Option<String> {
        if depth > 16 {
            return None;
        }
        for e in flow.executions.iter().filter(|e| active(e)) {
            if let Some(sub) = e.flow_id.as_ref().and_then(|id| self.by_id.get(id)) {
                // Into every active sub-flow (a conditional one too: fail closed).
                if let Some(u) = self.unsupported(sub, depth + 1) {
                    return Some(u);
                }
                continue;
            }
            if e.requirement != REQUIRED {
                continue;
            }
            let id = e.authenticator.as_deref().unwrap_or("");
            match provider(id) {
                Some(p) if p.performed => {}
                Some(p) => return Some(p.display_name.to_string()),
                None => return Some(id.to_string()),
            }
        }
        None
    }
}

fn plan_of<T: Txn>(
    read: &View<T>,
    realm: &RealmRecord,
    binding_name: &str,
    override_id: Option<&str>,
    otp_authenticator: &str,
) -> Result<Plan, StoreError> {
    let flows = Flows {
        by_id: read
            .auth_flows(&realm.id)?
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect(),
        configs: read
            .authenticator_configs(&realm.id)?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect(),
    };
    let alias = binding(realm, binding_name);
    // A client's override (by flow id) wins over the realm's binding.
    let overridden = override_id.and_then(|id| flows.by_id.get(id));
    let Some(top) = overridden.or_else(|| flows.by_id.values().find(|f| f.alias == alias)) else {
        // No flows stored (a realm being created): Keycloak's defaults.
        return Ok(Plan {
            cookie: true,
            otp: OtpRule::When(vec![Condition::UserConfigured]),
            unsupported: None,
        });
    };
    let cookie = top
        .executions
        .iter()
        .any(|e| e.authenticator.as_deref() == Some("auth-cookie") && active(e));
    let mut otp = flows
        .otp_rule(top, otp_authenticator, 0)
        .unwrap_or(OtpRule::Never);
    if super::otp::required_by(realm) {
        // The realm attribute `otpRequired`: every user, whatever the flow.
        otp = OtpRule::Always;
    }
    Ok(Plan {
        cookie,
        otp,
        unsupported: flows.unsupported(top, 0),
    })
}

impl Plan {
    /// The OTP step for a user (their roles are read only when a role condition needs
    /// them).
    pub fn otp_step(
        &self,
        read: &impl super::roles::RoleGraph,
        realm_id: &str,
        user_id: &str,
        has_otp: bool,
    ) -> Result<OtpStep, StoreError> {
        let needs_roles = matches!(&self.otp, OtpRule::When(c)
            if c.iter().any(|c| matches!(c, Condition::UserRole { .. })));
        let roles = if needs_roles {
            super::roles::effective_roles(read, realm_id, user_id)?
        } else {
            EffectiveRoles::default()
        };
        Ok(self.otp.step(has_otp, &roles))
    }
}

/// The keys of a client's `authenticationFlowBindingOverrides`.
pub const OVERRIDE_BROWSER: &str = "browser";
pub const OVERRIDE_DIRECT_GRANT: &str = "direct_grant";

/// What the browser flow (the client's override, else the realm's) asks of a login.
pub fn browser_plan<T: Txn>(
    read: &View<T>,
    realm: &RealmRecord,
    client: Option<&ClientRecord>,
) -> Result<Plan, StoreError> {
    let over = client.and_then(|c| c.flow_overrides.get(OVERRIDE_BROWSER));
    plan_of(
        read,
        realm,
        "browserFlow",
        over.map(String::as_str),
        "auth-otp-form",
    )
}

/// What the direct grant flow (the client's override, else the realm's) asks of a
/// password grant.
pub fn direct_grant_plan<T: Txn>(
    read: &View<T>,
    realm: &RealmRecord,
    client: Option<&ClientRecord>,
) -> Result<Plan, StoreError> {
    let over = client.and_then(|c| c.flow_overrides.get(OVERRIDE_DIRECT_GRANT));
    plan_of(
        read,
        realm,
        "directGrantFlow",
        over.map(String::as_str),
        "direct-grant-validate-otp",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows_of(list: Vec<AuthFlowRecord>, configs: Vec<AuthenticatorConfigRecord>) -> Flows {
        Flows {
            by_id: list.into_iter().map(|f| (f.id.clone(), f)).collect(),
            configs: configs.into_iter().map(|c| (c.id.clone(), c)).collect(),
        }
    }

    fn set(flows: &mut Flows, authenticator: &str, requirement: &str) {
        for f in flows.by_id.values_mut() {
            for e in &mut f.executions {
                if e.authenticator.as_deref() == Some(authenticator) {
                    e.requirement = requirement.into();
                }
            }
        }
    }

    fn set_flow(flows: &mut Flows, alias: &str, requirement: &str) {
        let id = flows
            .by_id
            .values()
            .find(|f| f.alias == alias)
            .unwrap()
            .id
            .clone();
        for f in flows.by_id.values_mut() {
            for e in &mut f.executions {
                if e.flow_id.as_deref() == Some(id.as_str()) {
                    e.requirement = requirement.into();
                }
            }
        }
    }

    fn browser(flows: &Flows) -> OtpRule {
        let top = flows.by_id.values().find(|f| f.alias == "browser").unwrap();
        flows
            .otp_rule(top, "auth-otp-form", 0)
            .unwrap_or(OtpRule::Never)
    }

    #[test]
    fn the_builtin_browser_flow_asks_for_a_code_when_configured() {
        let (list, configs) = builtin();
        let mut flows = flows_of(list, configs);
        let roles = EffectiveRoles::default();
        let rule = browser(&flows);
        assert_eq!(rule, OtpRule::When(vec![Condition::UserConfigured]));
        assert_eq!(rule.step(true, &roles), OtpStep::Ask);
        assert_eq!(rule.step(false, &roles), OtpStep::Skip);
        // The seed's 2FA guide: OTP Form REQUIRED in a REQUIRED sub-flow → everybody.
        set_flow(&mut flows, "Browser - Conditional OTP", REQUIRED);
        assert_eq!(browser(&flows), OtpRule::Always);
        assert_eq!(browser(&flows).step(false, &roles), OtpStep::Configure);
        set(&mut flows, "auth-otp-form", DISABLED);
        assert_eq!(browser(&flows), OtpRule::Never);
        assert_eq!(browser(&flows).step(true, &roles), OtpStep::Skip);
        let top = flows.by_id.values().find(|f| f.alias == "browser").unwrap();
        assert_eq!(flows.unsupported(top, 0), None);
    }

    #[test]
    fn a_role_condition_and_unsupported_steps() {
        let (list, configs) = builtin();
        let mut flows = flows_of(list, configs);
        let sub = flows
            .by_id
            .values_mut()
            .find(|f| f.alias == "Browser - Conditional OTP")
            .unwrap();
        sub.executions[0].authenticator = Some("conditional-user-role".into());
        sub.executions[0].config_id = Some("c".into());
        flows.configs.insert(
            "c".into(),
            AuthenticatorConfigRecord {
                id: "c".into(),
                alias: "admins".into(),
                config: [("condUserRole".to_string(), "admin".to_string())].into(),
            },
        );
        let rule = browser(&flows);
        let mut admin = EffectiveRoles::default();
        admin.realm.insert("admin".into());
        assert_eq!(rule.step(false, &admin), OtpStep::Configure);
        assert_eq!(rule.step(false, &EffectiveRoles::default()), OtpStep::Skip);
        // WebAuthn REQUIRED where the login goes: refused, not skipped.
        let forms = flows
            .by_id
            .values_mut()
            .find(|f| f.alias == "forms")
            .unwrap();
        forms.executions.push(ExecutionRecord {
            id: "w".into(),
            authenticator: Some("webauthn-authenticator".into()),
            requirement: REQUIRED.into(),
            priority: 99,
            ..Default::default()
        });
        let top = flows.by_id.values().find(|f| f.alias == "browser").unwrap();
        assert_eq!(
            flows.unsupported(top, 0).as_deref(),
            Some("WebAuthn Authenticator")
        );
    }
}
