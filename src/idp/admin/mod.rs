//! Keycloak's admin REST API under `/admin/realms`. Every handler reads the same way:
//! authorise the caller → parse and validate the body → call the store in one transaction
//! → map to Keycloak's representation. Wire types live in `repr.rs`, separate from the
//! stored records.

mod auth;
mod clients;
pub mod error;
mod grants;
mod groups;
mod mail;
mod providers;
mod realms;
pub mod repr;
mod roles;
#[cfg(test)]
mod tests;
pub mod transfer;
mod users;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::IntoResponse;
use crate::http::{json_response, Request, RequestInfo, Response};
use crate::idp::admin::error::AdminError;
use crate::idp::App;
use crate::store::RealmRecord;

pub use auth::{Caller, Permission};

/// Where a request under `/admin/realms/` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Realms,
    Realm,
    Users,
    UsersCount,
    User,
    UserResetPassword,
    UserRoleMappings,
    UserRealmRoles,
    UserRealmRolesAvailable,
    UserRealmRolesComposite,
    UserClientRoles,
    UserClientRolesAvailable,
    UserClientRolesComposite,
    UserGroups,
    UserGroup,
    UserCredentials,
    UserCredential,
    UserSessions,
    UserLogout,
    UserExecuteActionsEmail,
    UserSendVerifyEmail,
    TestSmtpConnection,
    Clients,
    Client,
    ClientSecret,
    ClientRoles,
    ClientRole,
    ClientServiceAccount,
    ClientMappers,
    ClientMapper,
    ClientAddMappers,
    Roles,
    Role,
    RoleComposites,
    RoleUsers,
    RoleById,
    Groups,
    Group,
    GroupChildren,
    GroupMembers,
    GroupRealmRoles,
    GroupRealmRolesAvailable,
    GroupRealmRolesComposite,
    GroupClientRoles,
    GroupClientRolesAvailable,
    GroupClientRolesComposite,
    GroupByPath,
    LogoutAll,
    PartialImport,
    PartialExport,
    Keys,
    IdentityProviders,
    IdentityProvider,
    IdentityProviderMappers,
    Components,
    Component,
    Events,
    EventsConfig,
    AdminEvents,
    BruteForceUser,
    BruteForceUsers,
}

struct AdminRouter(matchit::Router<Route>);

impl AdminRouter {
    fn new() -> AdminRouter {
        let mut r = matchit::Router::new();
        let u = "/{realm}/users/{id}";
        let routes: Vec<(String, Route)> = vec![
            ("/".into(), Route::Realms),
            ("/{realm}".into(), Route::Realm),
            ("/{realm}/users".into(), Route::Users),
            ("/{realm}/users/count".into(), Route::UsersCount),
            (u.into(), Route::User),
            (format!("{u}/reset-password"), Route::UserResetPassword),
            (format!("{u}/role-mappings"), Route::UserRoleMappings),
            (format!("{u}/role-mappings/realm"), Route::UserRealmRoles),
            (
                format!("{u}/role-mappings/realm/available"),
                Route::UserRealmRolesAvailable,
            ),
            (
                format!("{u}/role-mappings/realm/composite"),
                Route::UserRealmRolesComposite,
            ),
            (
                format!("{u}/role-mappings/clients/{{client}}"),
                Route::UserClientRoles,
            ),
            (
                format!("{u}/role-mappings/clients/{{client}}/available"),
                Route::UserClientRolesAvailable,
            ),
            (
                format!("{u}/role-mappings/clients/{{client}}/composite"),
                Route::UserClientRolesComposite,
            ),
            (format!("{u}/groups"), Route::UserGroups),
            (format!("{u}/groups/{{group}}"), Route::UserGroup),
            (format!("{u}/credentials"), Route::UserCredentials),
            (format!("{u}/credentials/{{cred}}"), Route::UserCredential),
            (format!("{u}/sessions"), Route::UserSessions),
            (format!("{u}/logout"), Route::UserLogout),
            (
                format!("{u}/execute-actions-email"),
                Route::UserExecuteActionsEmail,
            ),
            (format!("{u}/send-verify-email"), Route::UserSendVerifyEmail),
            (
                "/{realm}/testSMTPConnection".into(),
                Route::TestSmtpConnection,
            ),
            ("/{realm}/clients".into(), Route::Clients),
            ("/{realm}/clients/{id}".into(), Route::Client),
            (
                "/{realm}/clients/{id}/client-secret".into(),
                Route::ClientSecret,
            ),
            ("/{realm}/clients/{id}/roles".into(), Route::ClientRoles),
            (
                "/{realm}/clients/{id}/roles/{role}".into(),
                Route::ClientRole,
            ),
            (
                "/{realm}/clients/{id}/service-account-user".into(),
                Route::ClientServiceAccount,
            ),
            (
                "/{realm}/clients/{id}/protocol-mappers/models".into(),
                Route::ClientMappers,
            ),
            (
                "/{realm}/clients/{id}/protocol-mappers/models/{mapper}".into(),
                Route::ClientMapper,
            ),
            (
                "/{realm}/clients/{id}/protocol-mappers/add-models".into(),
                Route::ClientAddMappers,
            ),
            ("/{realm}/roles".into(), Route::Roles),
            ("/{realm}/roles/{role}".into(), Route::Role),
            (
                "/{realm}/roles/{role}/composites".into(),
                Route::RoleComposites,
            ),
            ("/{realm}/roles/{role}/users".into(), Route::RoleUsers),
            ("/{realm}/roles-by-id/{id}".into(), Route::RoleById),
            ("/{realm}/groups".into(), Route::Groups),
            ("/{realm}/groups/{id}".into(), Route::Group),
            ("/{realm}/groups/{id}/children".into(), Route::GroupChildren),
            ("/{realm}/groups/{id}/members".into(), Route::GroupMembers),
            (
                "/{realm}/groups/{id}/role-mappings/realm".into(),
                Route::GroupRealmRoles,
            ),
            ("/{realm}/group-by-path/{*path}".into(), Route::GroupByPath),
            ("/{realm}/logout-all".into(), Route::LogoutAll),
            ("/{realm}/partialImport".into(), Route::PartialImport),
            ("/{realm}/partial-export".into(), Route::PartialExport),
            ("/{realm}/keys".into(), Route::Keys),
            (
                "/{realm}/identity-provider/instances".into(),
                Route::IdentityProviders,
            ),
            (
                "/{realm}/identity-provider/instances/{id}".into(),
                Route::IdentityProvider,
            ),
            (
                "/{realm}/identity-provider/instances/{id}/mappers".into(),
                Route::IdentityProviderMappers,
            ),
            (
                "/{realm}/identity-provider/instances/{id}/mappers/{mapper}".into(),
                Route::IdentityProviderMappers,
            ),
            ("/{realm}/components".into(), Route::Components),
            (
                "/{realm}/groups/{id}/role-mappings/realm/available".into(),
                Route::GroupRealmRolesAvailable,
            ),
            (
                "/{realm}/groups/{id}/role-mappings/realm/composite".into(),
                Route::GroupRealmRolesComposite,
            ),
            (
                "/{realm}/groups/{id}/role-mappings/clients/{client}".into(),
                Route::GroupClientRoles,
            ),
            (
                "/{realm}/groups/{id}/role-mappings/clients/{client}/available".into(),
                Route::GroupClientRolesAvailable,
            ),
            (
                "/{realm}/groups/{id}/role-mappings/clients/{client}/composite".into(),
                Route::GroupClientRolesComposite,
            ),
            ("/{realm}/events".into(), Route::Events),
            ("/{realm}/events/config".into(), Route::EventsConfig),
            ("/{realm}/admin-events".into(), Route::AdminEvents),
            (
                "/{realm}/attack-detection/brute-force/users".into(),
                Route::BruteForceUsers,
            ),
            (
                "/{realm}/attack-detection/brute-force/users/{id}".into(),
                Route::BruteForceUser,
            ),
            ("/{realm}/components/{id}".into(), Route::Component),
        ];
        for (path, route) in routes {
            if let Err(e) = r.insert(path.as_str(), route) {
                tracing::error!(%path, error = %e, "admin route table conflict");
            }
        }
        AdminRouter(r)
    }
}

/// Path values of an admin route, percent-decoded.
#[derive(Debug, Default)]
pub(crate) struct Path {
    pub realm: String,
    pub id: String,
    pub client: String,
    pub group: String,
    pub role: String,
    pub cred: String,
    pub path: String,
    pub mapper: String,
}

/// What every admin handler gets.
pub(crate) struct Cx<'a> {
    pub app: &'a App,
    pub request: &'a Request,
    pub info: &'a RequestInfo,
    pub caller: Caller,
    pub path: Path,
    pub now_ms: i64,
}

impl Cx<'_> {
    /// The target realm, if the caller may act on it with `permission` (404 when the realm
    /// does not exist, 403 when the caller may not).
    pub fn realm(&self, permission: Permission) -> Result<RealmRecord, AdminError> {
        let realm = self
            .app
            .store
            .read()?
            .realm_by_name(&self.path.realm)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        self.caller.require(&realm.name, permission)?;
        Ok(realm)
    }

    pub fn method(&self) -> &Method {
        self.request.method()
    }

    /// The JSON body as `T`; a bad body is 400 with serde's explanation.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        if self.request.body().is_empty() {
            return Err(AdminError::BadRequest("Request body is required".into()));
        }
        serde_json::from_slice(self.request.body())
            .map_err(|e| AdminError::BadRequest(format!("Invalid JSON: {e}")))
    }

    /// A boolean query parameter (`true`/`True`/`TRUE`, as Python clients send them).
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.query(name).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        self.request.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    }

    /// `201 Created` with `Location: <this URL>/<id>`.
    pub fn created(&self, id: &str) -> Response {
        let base = crate::idp::oidc::base_url(self.app, self.request, self.info);
        let path = self.request.uri().path().trim_end_matches('/');
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::CREATED;
        if let Ok(v) = HeaderValue::from_str(&format!("{base}{path}/{id}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// `200` with a JSON body.
pub(crate) fn ok(body: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, body)
}

pub(crate) fn method_not_allowed(allowed: &[Method]) -> AdminError {
    AdminError::MethodNotAllowed(allowed.to_vec())
}

/// `/admin/realms/...`: authenticate, route, handle.
pub async fn handle(app: &App, request: &Request, info: &RequestInfo, rest: &str) -> Response {
    if request.method() == Method::OPTIONS {
        return crate::idp::oidc::preflight(request, "GET, POST, PUT, DELETE, OPTIONS");
    }
    match dispatch(app, request, info, rest).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    rest: &str,
) -> Result<Response, AdminError> {
    let now_ms = app.clock.now_millis();
    let caller = auth::authenticate(app, request, info, now_ms)?;
    let who = (
        caller.realm.clone(),
        caller.client_id.clone(),
        caller.user_id.clone(),
    );
    let response = route_request(app, request, info, rest, caller, now_ms).await?;
    record_admin_event(app, request, info, rest, &response, &who);
    Ok(response)
}

/// An admin event for every successful change, in the realm it changed.
fn record_admin_event(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    rest: &str,
    response: &Response,
    (auth_realm, auth_client, auth_user): &(String, String, String),
) {
    let operation = match *request.method() {
        Method::POST => "CREATE",
        Method::PUT => "UPDATE",
        Method::DELETE => "DELETE",
        _ => return,
    };
    if !response.status().is_success() {
        return;
    }
    let rest = rest.trim_matches('/');
    let Some((realm_name, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(Some(realm)) = app.store.read().and_then(|r| r.realm_by_name(realm_name)) else {
        return;
    };
    if !realm.admin_events_enabled {
        return;
    }
    let resource_type = match path.split('/').next().unwrap_or("") {
        "users" => "USER",
        "clients" => "CLIENT",
        "roles" | "roles-by-id" => "REALM_ROLE",
        "groups" => "GROUP",
        "identity-provider" => "IDENTITY_PROVIDER",
        "components" => "COMPONENT",
        _ => "REALM",
    };
    let is_action = path.contains("role-mappings")
        || path.ends_with("reset-password")
        || path.ends_with("logout");
    let operation = if is_action && operation != "DELETE" {
        "ACTION"
    } else {
        operation
    };
    // Secrets (passwords, client secrets, bind credentials, ...) never go into events.
    let body = crate::idp::events::redacted_body(request.body());
    crate::idp::events::record_admin(
        app,
        &realm,
        operation,
        resource_type,
        path,
        body.as_deref(),
        (auth_realm, auth_client, auth_user),
        info.peer.map(|p| p.ip().to_string()).as_deref(),
    );
}

async fn route_request(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    rest: &str,
    caller: Caller,
    now_ms: i64,
) -> Result<Response, AdminError> {
    use std::sync::OnceLock;
    static ROUTER: OnceLock<AdminRouter> = OnceLock::new();
    let router = ROUTER.get_or_init(AdminRouter::new);
    // Clients such as the JS admin client add a trailing slash (`POST /admin/realms/`).
    let lookup = format!("/{}", rest.trim_end_matches('/'));
    let matched = router
        .0
        .at(&lookup)
        .map_err(|_| AdminError::NotFound("Not Found".into()))?;
    let param = |name: &str| -> Result<String, AdminError> {
        let raw = matched.params.get(name).unwrap_or("");
        crate::http::path::percent_decode(raw)
            .map(|c| c.into_owned())
            .ok_or_else(|| AdminError::BadRequest("invalid path encoding".into()))
    };
    let route = *matched.value;
    let cx = Cx {
        app,
        request,
        info,
        caller,
        path: Path {
            realm: param("realm")?,
            id: param("id")?,
            client: param("client")?,
            group: param("group")?,
            role: param("role")?,
            cred: param("cred")?,
            path: param("path")?,
            mapper: param("mapper")?,
        },
        now_ms,
    };
    match route {
        Route::Realms => realms::collection(&cx),
        Route::Realm => realms::one(&cx),
        Route::LogoutAll => realms::logout_all(&cx),
        Route::PartialImport => realms::partial_import(&cx),
        Route::PartialExport => realms::partial_export(&cx),
        Route::Keys => realms::keys(&cx),
        Route::IdentityProviders => providers::idps(&cx),
        Route::IdentityProvider => providers::idp(&cx),
        Route::IdentityProviderMappers => providers::idp_mappers(&cx),
        Route::Components => providers::components(&cx),
        Route::Events => realms::events(&cx),
        Route::EventsConfig => realms::events_config(&cx),
        Route::AdminEvents => realms::admin_events(&cx),
        Route::BruteForceUser => users::brute_force(&cx, true),
        Route::BruteForceUsers => users::brute_force(&cx, false),
        Route::Component => providers::component(&cx),
        Route::Users => users::collection(&cx).await,
        Route::UsersCount => users::count(&cx),
        Route::User => users::one(&cx),
        Route::UserResetPassword => users::reset_password(&cx).await,
        Route::UserRoleMappings => users::role_mappings(&cx),
        Route::UserRealmRoles => users::realm_roles(&cx, users::View::Direct),
        Route::UserRealmRolesAvailable => users::realm_roles(&cx, users::View::Available),
        Route::UserRealmRolesComposite => users::realm_roles(&cx, users::View::Composite),
        Route::UserClientRoles => users::client_roles(&cx, users::View::Direct),
        Route::UserClientRolesAvailable => users::client_roles(&cx, users::View::Available),
        Route::UserClientRolesComposite => users::client_roles(&cx, users::View::Composite),
        Route::UserGroups => users::groups(&cx),
        Route::UserGroup => users::group_membership(&cx),
        Route::UserCredentials => users::credentials(&cx),
        Route::UserCredential => users::credential(&cx),
        Route::UserSessions => users::sessions(&cx),
        Route::UserLogout => users::logout(&cx),
        Route::UserExecuteActionsEmail => mail::execute_actions_email(&cx).await,
        Route::UserSendVerifyEmail => mail::send_verify_email(&cx).await,
        Route::TestSmtpConnection => mail::test_smtp_connection(&cx).await,
        Route::Clients => clients::collection(&cx),
        Route::Client => clients::one(&cx),
        Route::ClientSecret => clients::secret(&cx),
        Route::ClientRoles => roles::collection(&cx, roles::Container::Client),
        Route::ClientRole => roles::one(&cx, roles::Container::Client),
        Route::ClientServiceAccount => clients::service_account(&cx),
        Route::ClientMappers => clients::mappers(&cx),
        Route::ClientMapper => clients::mapper(&cx),
        Route::ClientAddMappers => clients::add_mappers(&cx),
        Route::Roles => roles::collection(&cx, roles::Container::Realm),
        Route::Role => roles::one(&cx, roles::Container::Realm),
        Route::RoleComposites => roles::composites(&cx),
        Route::RoleUsers => roles::users(&cx),
        Route::RoleById => roles::by_id(&cx),
        Route::Groups => groups::collection(&cx),
        Route::Group => groups::one(&cx),
        Route::GroupChildren => groups::children(&cx),
        Route::GroupMembers => groups::members(&cx),
        Route::GroupRealmRoles => groups::mappings(&cx, false, users::View::Direct),
        Route::GroupRealmRolesAvailable => groups::mappings(&cx, false, users::View::Available),
        Route::GroupRealmRolesComposite => groups::mappings(&cx, false, users::View::Composite),
        Route::GroupClientRoles => groups::mappings(&cx, true, users::View::Direct),
        Route::GroupClientRolesAvailable => groups::mappings(&cx, true, users::View::Available),
        Route::GroupClientRolesComposite => groups::mappings(&cx, true, users::View::Composite),
        Route::GroupByPath => groups::by_path(&cx),
    }
}
