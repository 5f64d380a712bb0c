//! Keycloak's admin REST API under `/admin/realms`. Every handler reads the same way:
//! authorise the caller → parse and validate the body → call the store in one transaction
//! → map to Keycloak's representation. Wire types live in `repr.rs`, separate from the
//! stored records.

mod auth;
mod client_policies;
mod client_scopes;
mod clients;
pub mod error;
mod flows;
mod grants;
mod groups;
mod holders;
mod impersonation;
mod initial_access;
mod localization;
mod mail;
pub(crate) mod openapi;
mod permissions;
mod protocol_mappers;
mod providers;
mod realms;
pub mod repr;
mod required_actions;
mod role_refs;
mod roles;
mod routes;
mod scope_mappings;
pub mod server;
mod sessions;
#[cfg(test)]
mod tests;
pub mod transfer;
mod user_profile;
mod user_storage;
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

/// Keycloak's `default` client-registration provider speaks the admin API's client
/// representation: create a client from one (inside the caller's transaction).
pub fn register_client(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    body: &serde_json::Value,
    now_ms: i64,
) -> Result<crate::store::ClientRecord, AdminError> {
    let input: repr::ClientInput = serde_json::from_value(body.clone())
        .map_err(|e| AdminError::BadRequest(format!("Invalid JSON: {e}")))?;
    let mut input = input;
    if input
        .client_id
        .as_deref()
        .is_none_or(|c| c.trim().is_empty())
    {
        input.client_id = Some(crate::crypto::random_id());
    }
    input.id = None;
    clients::create_in(w, realm, &input, now_ms)
}

/// Update a registered client from the admin API's client representation.
pub fn update_registered_client(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    client: &mut crate::store::ClientRecord,
    body: &serde_json::Value,
) -> Result<(), AdminError> {
    let mut input: repr::ClientInput = serde_json::from_value(body.clone())
        .map_err(|e| AdminError::BadRequest(format!("Invalid JSON: {e}")))?;
    // The registration names the client by its clientId, which stays.
    input.client_id = None;
    clients::apply_input(w, &realm.id, &input, client, false)?;
    w.put_client(&realm.id, client)?;
    Ok(())
}

/// The admin API's representation of a client.
pub fn client_representation<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm_id: &str,
    client: &crate::store::ClientRecord,
) -> Result<serde_json::Value, AdminError> {
    Ok(repr::client_repr(
        client,
        &client_scopes::names(read, realm_id)?,
    ))
}

/// The admin caller behind a request's bearer token (its roles read from the store), for
/// endpoints outside the admin API that accept administrators (client registration).
pub fn caller_of(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    now_ms: i64,
) -> Result<Caller, AdminError> {
    auth::authenticate(app, request, info, now_ms)
}

/// Which roles a role-mapping view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Granted directly.
    Direct,
    /// Not held (directly or through composites and groups): grantable.
    Available,
    /// Held in any way.
    Composite,
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
    /// `moveAfter/{after}`: the credential to come after.
    pub after: String,
    pub path: String,
    pub mapper: String,
    /// `/localization/{locale}/{key}`: a message key.
    pub key: String,
    /// `.../default-client-scopes/{scope}`: a client scope id.
    pub scope: String,
    /// `/authentication/flows/{flow}/...`: a flow alias.
    pub flow: String,
    /// `/users/{id}/federated-identity/{provider}`: an identity provider's alias.
    pub provider: String,
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
    pub(crate) fn realm(&self, permission: Permission) -> Result<RealmRecord, AdminError> {
        let realm = self
            .app
            .store
            .read()?
            .realm_by_name(&self.path.realm)?
            .ok_or_else(|| AdminError::NotFound("Realm not found.".into()))?;
        self.caller.require(&realm.name, permission)?;
        Ok(realm)
    }

    /// The JSON body as `T`; a bad body is 400 with serde's explanation.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        if self.request.body().is_empty() {
            return Err(AdminError::BadRequest("Request body is required".into()));
        }
        serde_json::from_slice(self.request.body())
            .map_err(|e| AdminError::BadRequest(format!("Invalid JSON: {e}")))
    }

    /// The JSON body, which must be an object (a representation): anything else is a 400
    /// here rather than a panic where a handler sets a field on it.
    pub(crate) fn json_object(&self) -> Result<serde_json::Value, AdminError> {
        self.json::<serde_json::Map<String, serde_json::Value>>()
            .map(serde_json::Value::Object)
    }

    /// A boolean query parameter (`true`/`True`/`TRUE`, as Python clients send them).
    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        self.query(name).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A query parameter.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        self.request.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    }

    /// `201 Created` with `Location: <this URL>/<id>`.
    pub(crate) fn created(&self, id: &str) -> Response {
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

/// `204` when a delete found its target, else `404` with Keycloak's message.
pub(crate) fn deleted(existed: bool, missing: &str) -> Result<Response, AdminError> {
    if existed {
        Ok(no_content())
    } else {
        Err(AdminError::NotFound(missing.into()))
    }
}

/// `200` with a JSON body.
pub(crate) fn ok(body: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// The path the route table is asked for: clients such as the JS admin client add a
/// trailing slash (`POST /admin/realms/`).
fn lookup_path(rest: &str) -> String {
    format!("/{}", rest.trim_end_matches('/'))
}

/// `/admin/realms/...`: authenticate, route, handle.
pub async fn handle(app: &App, request: &Request, info: &RequestInfo, rest: &str) -> Response {
    if request.method() == Method::OPTIONS {
        // The path's own methods; any path may be asked (the answer names no data).
        let methods = match routes::table().allowed(&lookup_path(rest)) {
            Some(m) => format!("{}, OPTIONS", crate::http::router::method_list(m)),
            None => "GET, POST, PUT, DELETE, OPTIONS".into(),
        };
        return crate::idp::oidc::preflight(request, &methods);
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
    let lookup = lookup_path(rest);
    let matched = routes::table()
        .at(&lookup, request.method())
        .ok_or_else(|| AdminError::NotFound("Not Found".into()))?;
    let handler = *matched
        .handler
        .map_err(|allow| AdminError::MethodNotAllowed(allow.to_vec()))?;
    let param = |name: &str| -> Result<String, AdminError> {
        let raw = matched.params.get(name).unwrap_or("");
        crate::http::path::percent_decode(raw)
            .map(|c| c.into_owned())
            .ok_or_else(|| AdminError::BadRequest("invalid path encoding".into()))
    };
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
            after: param("after")?,
            path: param("path")?,
            mapper: param("mapper")?,
            key: param("key")?,
            scope: param("scope")?,
            flow: param("flow")?,
            provider: param("provider")?,
        },
        now_ms,
    };
    handler.call(&cx).await
}
