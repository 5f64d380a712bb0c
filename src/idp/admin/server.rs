//! The admin API outside any realm: `GET /admin/serverinfo` (what this server supports, in
//! Keycloak's `ServerInfoRepresentation` where a field applies) and the console's
//! `GET /admin/{realm}/console/whoami` (who the caller is and what it may administer).

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::http::{json_response, IntoResponse, Request, RequestInfo, Response};
use crate::idp::admin::error::AdminError;
use crate::idp::App;

/// The Keycloak release whose admin API this server follows: tools that read
/// `systemInfo.version` to choose request shapes (terraform's provider, the admin console)
/// get the shapes we answer.
pub const KEYCLOAK_API_VERSION: &str = "26.0.0";

/// The event types this server records.
const EVENT_TYPES: &[&str] = &[
    "LOGIN",
    "LOGIN_ERROR",
    "LOGOUT",
    "CODE_TO_TOKEN",
    "REFRESH_TOKEN",
    "CLIENT_LOGIN",
    "UPDATE_PASSWORD",
    "UPDATE_TOTP",
    "REMOVE_TOTP",
    "SEND_RESET_PASSWORD",
    "SEND_VERIFY_EMAIL",
    "VERIFY_EMAIL",
];

/// Password policy rules (`passwordPolicy` string), with Keycloak's ids and defaults.
const PASSWORD_POLICIES: &[(&str, &str, &str, &str)] = &[
    ("length", "Minimum length", "int", "8"),
    ("maxLength", "Maximum length", "int", "64"),
    ("digits", "Digits", "int", "1"),
    ("lowerCase", "Lowercase characters", "int", "1"),
    ("upperCase", "Uppercase characters", "int", "1"),
    ("specialChars", "Special characters", "int", "1"),
    ("notUsername", "Not username", "boolean", ""),
    ("notEmail", "Not email", "boolean", ""),
    (
        "notContainsUsername",
        "Not contains username",
        "boolean",
        "",
    ),
    ("passwordHistory", "Not recently used", "int", "3"),
    ("regexPattern", "Regular expression", "String", ""),
    ("hashAlgorithm", "Hashing algorithm", "String", "argon2"),
    ("hashIterations", "Hashing iterations", "int", "2"),
    (
        "forceExpiredPasswordChange",
        "Expire password",
        "int",
        "365",
    ),
];

fn answer(result: Result<Value, AdminError>) -> Response {
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// `GET /admin/serverinfo`: for any authenticated administrator.
pub async fn server_info(app: &App, request: &Request, info: &RequestInfo) -> Response {
    answer(
        super::auth::authenticate(app, request, info, app.clock.now_millis())
            .map(|_| server_info_body(app)),
    )
}

fn server_info_body(app: &App) -> Value {
    let mapper_types: Vec<Value> = crate::idp::mappers::SUPPORTED
        .iter()
        .map(|id| json!({"id": id, "name": id, "category": "Token mapper", "properties": []}))
        .collect();
    let policies: Vec<Value> = PASSWORD_POLICIES
        .iter()
        .map(|(id, name, kind, default)| {
            json!({"id": id, "displayName": name, "configType": kind,
                   "defaultValue": default, "multipleSupported": *id == "regexPattern"})
        })
        .collect();
    let themes: Vec<Value> = app
        .themes
        .names()
        .into_iter()
        .map(|name| json!({"name": name, "locales": ["en"]}))
        .collect();
    let mut theme_kinds = Map::new();
    for kind in ["login", "email", "account"] {
        theme_kinds.insert(kind.into(), Value::from(themes.clone()));
    }
    let started = app.started_at_ms();
    let now = app.clock.now_millis();
    json!({
        "systemInfo": {
            "version": KEYCLOAK_API_VERSION,
            "serverTime": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            "uptime": format!("{} seconds", (now - started).max(0) / 1000),
            "uptimeMillis": (now - started).max(0),
            "osName": std::env::consts::OS,
            "osArchitecture": std::env::consts::ARCH,
            "fileEncoding": "UTF-8",
            "server": format!("portcullis {}", env!("CARGO_PKG_VERSION")),
        },
        "memoryInfo": memory_info(),
        "profileInfo": {"name": "community", "disabledFeatures": [], "previewFeatures": [],
                        "experimentalFeatures": []},
        "cryptoInfo": {"cryptoProvider": "ring (rustls)", "supportedKeystoreTypes": [],
                       "clientSignatureSymmetricAlgorithms": [],
                       "clientSignatureAsymmetricAlgorithms": ["RS256", "ES256"]},
        "themes": theme_kinds,
        "passwordPolicies": policies,
        "protocolMapperTypes": {"openid-connect": mapper_types},
        "builtinProtocolMappers": {"openid-connect": []},
        // The provider types that can sign users in (the console's "Add provider" menu).
        "identityProviders": [
            {"id": "oidc", "name": "OpenID Connect v1.0", "groupName": "User-defined"},
            {"id": "keycloak-oidc", "name": "Keycloak OpenID Connect", "groupName": "User-defined"},
            {"id": "google", "name": "Google", "groupName": "Social"},
            {"id": "github", "name": "GitHub", "groupName": "Social"},
        ],
        "clientImporters": [],
        "enums": {
            "sslRequired": ["all", "external", "none"],
            "eventType": EVENT_TYPES,
            "operationType": ["CREATE", "UPDATE", "DELETE", "ACTION"],
            "resourceType": ["REALM", "USER", "CLIENT", "REALM_ROLE", "GROUP",
                             "IDENTITY_PROVIDER", "COMPONENT"],
        },
    })
}

/// Resident memory from `/proc/self/statm` (Linux); zeros elsewhere.
fn memory_info() -> Value {
    let page = 4096u64;
    let resident = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page)
        .unwrap_or(0);
    json!({"used": resident, "usedFormated": format!("{} MB", resident / 1_048_576)})
}

/// `GET /admin/{realm}/console/whoami[?currentRealm=r]`: the caller, from a token of
/// `realm`; `realm_access` lists the administrative roles per realm it administers (only
/// `currentRealm` when given).
pub async fn whoami(app: &App, request: &Request, info: &RequestInfo, realm: &str) -> Response {
    answer(whoami_body(app, request, info, realm))
}

fn whoami_body(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &str,
) -> Result<Value, AdminError> {
    let caller = super::auth::authenticate(app, request, info, app.clock.now_millis())?;
    if caller.realm != realm {
        return Err(AdminError::Forbidden);
    }
    let read = app.store.read()?;
    let user = read
        .user(&caller.realm_id, &caller.user_id)?
        .ok_or(AdminError::Unauthorized)?;
    let current = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "currentRealm")
            .map(|(_, v)| v.into_owned())
    });
    let mut access = Map::new();
    for r in read.realms()? {
        if current.as_ref().is_some_and(|c| c != &r.name) || !caller.administers(&r.name) {
            continue;
        }
        access.insert(r.name.clone(), json!(caller.admin_roles_on(&r.name)));
    }
    let display = match (&user.first_name, &user.last_name) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(f), None) => f.clone(),
        _ => user.username.clone(),
    };
    Ok(json!({
        "userId": user.id, "realm": caller.realm, "displayName": display, "locale": "en",
        "createRealm": caller.can_create_realm(), "realm_access": access,
    }))
}
