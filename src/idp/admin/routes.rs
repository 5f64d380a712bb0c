//! The admin API's route table: every path under `/admin/realms` with the handler of each
//! of its methods. A method a path does not list is `405` with `Allow` from this table, and
//! a pre-flight names the same methods; handlers never look at the method.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use http::Method;
use serde_json::{Map, Value};

use crate::http::router::{MethodRouter, RouteError};
use crate::http::Response;
use crate::idp::admin::error::AdminError;

use super::client_scopes::Kind;
use super::holders::Holder;
use super::repr::{
    ClientInput, ClientScopeInput, CredentialInput, FederatedIdentityInput, GroupInput, RealmInput,
    RoleInput, UserInput,
};
use super::role_refs::RoleRef;
use super::roles::{Composites, Container};
use super::{
    client_policies, client_scopes, clients, flows, groups, impersonation, initial_access,
    localization, mail, permissions, protocol_mappers, providers, realms, required_actions, roles,
    scope_mappings, sessions, user_profile, user_storage, users, Cx,
};
use super::{Permission, View};

/// What an async handler returns: its future, boxed so the table holds plain fn pointers.
pub(crate) type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response, AdminError>> + Send + 'a>>;

/// A handler of one method of one path, with what it reads and answers for the generated
/// OpenAPI document: `POST` and `PUT` handlers declare their body (`takes`, or `no_body`),
/// which the table's own test demands, so the document cannot miss one.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    run: Run,
    pub(crate) body: Body,
    pub(crate) returns: Option<SchemaFn>,
}

#[derive(Clone, Copy)]
enum Run {
    Now(fn(&Cx) -> Result<Response, AdminError>),
    Later(for<'a, 'b> fn(&'a Cx<'b>) -> Reply<'a>),
}

/// The JSON Schema of a type, as a reference into the document's components.
pub(crate) type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The request body a handler reads.
#[derive(Clone, Copy)]
pub(crate) enum Body {
    /// Not said: right for `GET` and `DELETE`; a `POST` or `PUT` must say.
    Unsaid,
    /// The handler reads no body.
    Empty,
    /// A JSON body of this schema.
    Json(SchemaFn),
    /// A `text/plain` body (a localization text).
    Text,
}

fn schema_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// A handler that answers at once.
fn now(f: fn(&Cx) -> Result<Response, AdminError>) -> Handler {
    Handler::new(Run::Now(f))
}

/// A handler that awaits (mail, LDAP, password hashing off the worker).
fn later(f: for<'a, 'b> fn(&'a Cx<'b>) -> Reply<'a>) -> Handler {
    Handler::new(Run::Later(f))
}

impl Handler {
    fn new(run: Run) -> Handler {
        Handler {
            run,
            body: Body::Unsaid,
            returns: None,
        }
    }

    /// The handler reads a JSON `T`.
    fn takes<T: schemars::JsonSchema>(mut self) -> Handler {
        self.body = Body::Json(schema_of::<T>);
        self
    }

    /// The handler reads no body.
    fn no_body(mut self) -> Handler {
        self.body = Body::Empty;
        self
    }

    /// The handler reads a plain-text body.
    fn takes_text(mut self) -> Handler {
        self.body = Body::Text;
        self
    }

    /// The handler answers `200` with a JSON `T`.
    fn returns<T: schemars::JsonSchema>(mut self) -> Handler {
        self.returns = Some(schema_of::<T>);
        self
    }

    pub(crate) async fn call(self, cx: &Cx<'_>) -> Result<Response, AdminError> {
        match self.run {
            Run::Now(f) => f(cx),
            Run::Later(f) => f(cx).await,
        }
    }
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

/// The table, built once.
pub(crate) fn table() -> &'static MethodRouter<Handler> {
    static TABLE: OnceLock<MethodRouter<Handler>> = OnceLock::new();
    TABLE.get_or_init(|| match build() {
        Ok(table) => table,
        Err(e) => {
            // A static table that does not build is caught by `the_table_builds`; a
            // release binary with one answers 404 rather than abort.
            tracing::error!(error = %e, "admin route table");
            MethodRouter::new()
        }
    })
}

fn build() -> Result<MethodRouter<Handler>, RouteError> {
    let mut r = MethodRouter::new();
    let u = "/{realm}/users/{id}";
    let g = "/{realm}/groups/{id}";
    let c = "/{realm}/clients/{id}";
    let idp = "/{realm}/identity-provider/instances/{id}";
    r.route(
        "/",
        vec![
            (GET, now(realms::list).returns::<Vec<RealmInput>>()),
            (
                POST,
                later(|cx| Box::pin(realms::create(cx))).takes::<RealmInput>(),
            ),
        ],
    )?
    .route(
        "/{realm}",
        vec![
            (GET, now(realms::get).returns::<RealmInput>()),
            (PUT, now(realms::update).takes::<RealmInput>()),
            (DELETE, now(realms::delete)),
        ],
    )?
    .route(
        "/{realm}/logout-all",
        vec![(POST, now(realms::logout_all).no_body())],
    )?
    .route(
        "/{realm}/partialImport",
        vec![(
            POST,
            later(|cx| Box::pin(realms::partial_import(cx))).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        "/{realm}/partial-export",
        vec![(POST, now(realms::partial_export).no_body())],
    )?
    .route(
        "/{realm}/keys",
        vec![
            (GET, now(realms::keys)),
            (POST, now(realms::rotate_keys).takes::<Map<String, Value>>()),
        ],
    )?
    .route(
        "/{realm}/events",
        vec![
            (GET, now(|cx| realms::list_events(cx, false))),
            (DELETE, now(|cx| realms::clear_events(cx, false))),
        ],
    )?
    .route(
        "/{realm}/admin-events",
        vec![
            (GET, now(|cx| realms::list_events(cx, true))),
            (DELETE, now(|cx| realms::clear_events(cx, true))),
        ],
    )?
    .route(
        "/{realm}/events/config",
        vec![
            (GET, now(realms::events_config)),
            (
                PUT,
                now(realms::update_events_config).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/testSMTPConnection",
        vec![(
            POST,
            later(|cx| Box::pin(mail::test_smtp_connection(cx))).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        "/{realm}/attack-detection/brute-force/users",
        vec![(DELETE, now(|cx| users::clear_brute_force(cx, false)))],
    )?
    .route(
        "/{realm}/attack-detection/brute-force/users/{id}",
        vec![
            (GET, now(users::brute_force_status)),
            (DELETE, now(|cx| users::clear_brute_force(cx, true))),
        ],
    )?;

    // Users.
    r.route(
        "/{realm}/users",
        vec![
            (
                GET,
                later(|cx| Box::pin(users::list(cx))).returns::<Vec<UserInput>>(),
            ),
            (
                POST,
                later(|cx| Box::pin(users::create(cx))).takes::<UserInput>(),
            ),
        ],
    )?
    .route("/{realm}/users/count", vec![(GET, now(users::count))])?
    .route(
        u,
        vec![
            (GET, now(users::get).returns::<UserInput>()),
            (
                PUT,
                later(|cx| Box::pin(users::update(cx))).takes::<UserInput>(),
            ),
            (DELETE, later(|cx| Box::pin(users::delete(cx)))),
        ],
    )?
    .route(
        &format!("{u}/reset-password"),
        vec![(
            PUT,
            later(|cx| Box::pin(users::reset_password(cx))).takes::<CredentialInput>(),
        )],
    )?
    .route(
        &format!("{u}/role-mappings"),
        vec![(GET, now(users::role_mappings))],
    )?
    .route(
        &format!("{u}/role-mappings/realm"),
        vec![
            (GET, now(|cx| users::mapped_roles(cx, false, View::Direct))),
            (
                POST,
                now(|cx| users::map_roles(cx, false, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| users::map_roles(cx, false, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        &format!("{u}/role-mappings/realm/available"),
        vec![(
            GET,
            now(|cx| users::mapped_roles(cx, false, View::Available)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/realm/composite"),
        vec![(
            GET,
            now(|cx| users::mapped_roles(cx, false, View::Composite)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}"),
        vec![
            (GET, now(|cx| users::mapped_roles(cx, true, View::Direct))),
            (
                POST,
                now(|cx| users::map_roles(cx, true, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| users::map_roles(cx, true, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}/available"),
        vec![(
            GET,
            now(|cx| users::mapped_roles(cx, true, View::Available)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}/composite"),
        vec![(
            GET,
            now(|cx| users::mapped_roles(cx, true, View::Composite)),
        )],
    )?
    .route(
        &format!("{u}/groups"),
        vec![(GET, now(users::groups).returns::<Vec<GroupInput>>())],
    )?
    .route(
        &format!("{u}/groups/{{group}}"),
        vec![
            (PUT, now(users::join_group).no_body()),
            (DELETE, now(users::leave_group)),
        ],
    )?
    .route(
        &format!("{u}/credentials"),
        vec![(GET, now(users::credentials))],
    )?
    .route(
        &format!("{u}/configured-user-storage-credential-types"),
        vec![(GET, now(users::storage_credential_types))],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}"),
        vec![(DELETE, now(users::credential))],
    )?
    .route(
        &format!("{u}/federated-identity"),
        vec![(GET, now(users::federated_identities))],
    )?
    .route(
        &format!("{u}/federated-identity/{{provider}}"),
        vec![
            (
                POST,
                now(users::link_identity).takes::<FederatedIdentityInput>(),
            ),
            (DELETE, now(users::unlink_identity)),
        ],
    )?
    .route(&format!("{u}/sessions"), vec![(GET, now(users::sessions))])?
    .route(
        &format!("{u}/logout"),
        vec![(POST, now(users::logout).no_body())],
    )?
    .route(
        &format!("{u}/execute-actions-email"),
        vec![(
            PUT,
            later(|cx| Box::pin(mail::execute_actions_email(cx))).takes::<Vec<String>>(),
        )],
    )?
    .route(
        &format!("{u}/send-verify-email"),
        vec![(
            PUT,
            later(|cx| Box::pin(mail::send_verify_email(cx))).no_body(),
        )],
    )?;

    // Clients.
    r.route(
        "/{realm}/clients",
        vec![
            (GET, now(clients::list).returns::<Vec<ClientInput>>()),
            (POST, now(clients::create).takes::<ClientInput>()),
        ],
    )?
    .route(
        c,
        vec![
            (GET, now(clients::get).returns::<ClientInput>()),
            (PUT, now(clients::update).takes::<ClientInput>()),
            (DELETE, now(clients::delete)),
        ],
    )?
    .route(
        &format!("{c}/client-secret"),
        vec![
            (GET, now(clients::secret)),
            (POST, now(clients::regenerate_secret).no_body()),
        ],
    )?
    .route(
        &format!("{c}/nodes"),
        vec![(
            POST,
            now(clients::register_node).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        &format!("{c}/nodes/{{key}}"),
        vec![(DELETE, now(clients::unregister_node))],
    )?
    .route(
        &format!("{c}/test-nodes-available"),
        vec![(GET, later(|cx| Box::pin(clients::test_nodes(cx))))],
    )?
    .route(
        &format!("{c}/client-secret/rotated"),
        vec![
            (GET, now(clients::rotated_secret)),
            (DELETE, now(clients::invalidate_rotated_secret)),
        ],
    )?
    .route(
        &format!("{c}/roles"),
        vec![
            (
                GET,
                now(|cx| roles::list(cx, Container::Client)).returns::<Vec<RoleInput>>(),
            ),
            (
                POST,
                now(|cx| roles::create(cx, Container::Client)).takes::<RoleInput>(),
            ),
        ],
    )?
    .route(
        &format!("{c}/roles/{{role}}"),
        vec![
            (
                GET,
                now(|cx| roles::get(cx, Container::Client)).returns::<RoleInput>(),
            ),
            (
                PUT,
                now(|cx| roles::update(cx, Container::Client)).takes::<RoleInput>(),
            ),
            (DELETE, now(|cx| roles::delete(cx, Container::Client))),
        ],
    )?
    .route(
        &format!("{c}/service-account-user"),
        vec![(GET, now(clients::service_account))],
    )?;
    mapper_routes(&mut r, c, Holder::Client)?;
    scope_mapping_routes(&mut r, c, Holder::Client)?;

    // Realm roles.
    r.route(
        "/{realm}/roles",
        vec![
            (
                GET,
                now(|cx| roles::list(cx, Container::Realm)).returns::<Vec<RoleInput>>(),
            ),
            (
                POST,
                now(|cx| roles::create(cx, Container::Realm)).takes::<RoleInput>(),
            ),
        ],
    )?
    .route(
        "/{realm}/roles/{role}",
        vec![
            (
                GET,
                now(|cx| roles::get(cx, Container::Realm)).returns::<RoleInput>(),
            ),
            (
                PUT,
                now(|cx| roles::update(cx, Container::Realm)).takes::<RoleInput>(),
            ),
            (DELETE, now(|cx| roles::delete(cx, Container::Realm))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/composites",
        vec![
            (GET, now(|cx| roles::composites(cx, Composites::All))),
            (
                POST,
                now(|cx| roles::change_composites(cx, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| roles::change_composites(cx, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/users",
        vec![(
            GET,
            now(|cx| roles::users(cx, Container::Realm)).returns::<Vec<UserInput>>(),
        )],
    )?
    .route(
        "/{realm}/clients/{id}/roles/{role}/users",
        vec![(
            GET,
            now(|cx| roles::users(cx, Container::Client)).returns::<Vec<UserInput>>(),
        )],
    )?
    .route(
        "/{realm}/roles-by-id/{id}",
        vec![
            (GET, now(roles::get_by_id).returns::<RoleInput>()),
            (PUT, now(roles::update_by_id).takes::<RoleInput>()),
            (DELETE, now(roles::delete_by_id)),
        ],
    )?;

    // Groups.
    r.route(
        "/{realm}/groups",
        vec![
            (GET, now(groups::list).returns::<Vec<GroupInput>>()),
            (POST, now(groups::create).takes::<GroupInput>()),
        ],
    )?
    .route(
        g,
        vec![
            (GET, now(groups::get).returns::<GroupInput>()),
            (PUT, now(groups::update).takes::<GroupInput>()),
            (DELETE, now(groups::delete)),
        ],
    )?
    .route(
        &format!("{g}/children"),
        vec![
            (GET, now(groups::children).returns::<Vec<GroupInput>>()),
            (POST, now(groups::add_child).takes::<GroupInput>()),
        ],
    )?
    .route(
        &format!("{g}/members"),
        vec![(GET, now(groups::members).returns::<Vec<UserInput>>())],
    )?
    .route(
        &format!("{g}/role-mappings/realm"),
        vec![
            (GET, now(|cx| groups::mappings(cx, false, View::Direct))),
            (
                POST,
                now(|cx| groups::map_roles(cx, false, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| groups::map_roles(cx, false, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        &format!("{g}/role-mappings/realm/available"),
        vec![(GET, now(|cx| groups::mappings(cx, false, View::Available)))],
    )?
    .route(
        &format!("{g}/role-mappings/realm/composite"),
        vec![(GET, now(|cx| groups::mappings(cx, false, View::Composite)))],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}"),
        vec![
            (GET, now(|cx| groups::mappings(cx, true, View::Direct))),
            (
                POST,
                now(|cx| groups::map_roles(cx, true, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| groups::map_roles(cx, true, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}/available"),
        vec![(GET, now(|cx| groups::mappings(cx, true, View::Available)))],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}/composite"),
        vec![(GET, now(|cx| groups::mappings(cx, true, View::Composite)))],
    )?
    .route(
        "/{realm}/group-by-path/{*path}",
        vec![(GET, now(groups::by_path))],
    )?;

    // Identity providers and components.
    r.route(
        "/{realm}/identity-provider/instances",
        vec![
            (GET, now(providers::idps)),
            (
                POST,
                now(providers::create_idp).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        idp,
        vec![
            (GET, now(providers::idp)),
            (
                PUT,
                now(providers::update_idp).takes::<Map<String, Value>>(),
            ),
            (DELETE, now(providers::delete_idp)),
        ],
    )?
    .route(
        &format!("{idp}/mappers"),
        vec![
            (GET, now(providers::idp_mappers)),
            (
                POST,
                now(providers::create_idp_mapper).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        &format!("{idp}/mappers/{{mapper}}"),
        vec![
            (GET, now(providers::idp_mapper)),
            (
                PUT,
                now(providers::update_idp_mapper).takes::<Map<String, Value>>(),
            ),
            (DELETE, now(providers::delete_idp_mapper)),
        ],
    )?
    .route(
        &format!("{idp}/reload-keys"),
        vec![(GET, now(providers::reload_idp_keys))],
    )?
    .route(
        &format!("{idp}/mapper-types"),
        vec![(GET, now(providers::idp_mapper_types))],
    )?
    .route(
        "/{realm}/identity-provider/providers/{id}",
        vec![(GET, now(providers::idp_provider_type))],
    )?
    .route(
        "/{realm}/identity-provider/import-config",
        vec![(
            POST,
            later(|cx| Box::pin(providers::import_config(cx))).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        "/{realm}/testLDAPConnection",
        vec![(
            POST,
            later(|cx| Box::pin(user_storage::test_connection(cx))).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        "/{realm}/user-storage/{id}/sync",
        vec![(POST, later(|cx| Box::pin(user_storage::sync(cx))).no_body())],
    )?
    .route(
        "/{realm}/ldap-server-capabilities",
        vec![(
            POST,
            later(|cx| Box::pin(user_storage::capabilities(cx))).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        "/{realm}/user-storage/{id}/mappers/{mapper}/sync",
        vec![(
            POST,
            later(|cx| Box::pin(user_storage::mapper_sync(cx))).no_body(),
        )],
    )?
    .route(
        "/{realm}/user-storage/{id}/name",
        vec![(GET, now(user_storage::name))],
    )?
    .route(
        "/{realm}/user-storage/{id}/remove-imported-users",
        vec![(POST, now(user_storage::remove_imported).no_body())],
    )?
    .route(
        "/{realm}/user-storage/{id}/unlink-users",
        vec![(POST, now(user_storage::unlink).no_body())],
    )?
    .route(
        "/{realm}/components",
        vec![
            (GET, now(providers::components)),
            (
                POST,
                now(providers::create_component).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/components/{id}",
        vec![
            (GET, now(providers::component)),
            (
                PUT,
                now(providers::update_component).takes::<Map<String, Value>>(),
            ),
            (DELETE, now(providers::delete_component)),
        ],
    )?
    .route(
        "/{realm}/components/{id}/sub-component-types",
        vec![(GET, now(providers::sub_component_types))],
    )?;
    // Sessions, default groups, composites by id, caches.
    r.route(
        "/{realm}/client-session-stats",
        vec![(GET, now(sessions::stats))],
    )?
    .route(
        "/{realm}/sessions/{id}",
        vec![(DELETE, now(sessions::end_one))],
    )?
    .route(
        &format!("{c}/user-sessions"),
        vec![(GET, now(|cx| sessions::of_client(cx, false)))],
    )?
    .route(
        &format!("{c}/offline-sessions"),
        vec![(GET, now(|cx| sessions::of_client(cx, true)))],
    )?
    .route(
        &format!("{c}/session-count"),
        vec![(GET, now(|cx| sessions::count_of_client(cx, false)))],
    )?
    .route(
        &format!("{c}/offline-session-count"),
        vec![(GET, now(|cx| sessions::count_of_client(cx, true)))],
    )?
    .route(
        &format!("{u}/groups/count"),
        vec![(GET, now(users::groups_count))],
    )?
    .route(
        &format!("{u}/consents"),
        vec![(GET, now(sessions::consents))],
    )?
    .route(
        &format!("{u}/consents/{{client}}"),
        vec![(DELETE, now(sessions::revoke_consent))],
    )?
    .route(
        &format!("{u}/offline-sessions/{{client}}"),
        vec![(GET, now(sessions::offline_of_user))],
    )?
    .route(
        "/{realm}/default-groups",
        vec![(GET, now(groups::default_groups))],
    )?
    .route(
        "/{realm}/default-groups/{id}",
        vec![
            (
                PUT,
                now(|cx| groups::change_default_group(cx, true)).no_body(),
            ),
            (DELETE, now(|cx| groups::change_default_group(cx, false))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/composites/realm",
        vec![(GET, now(|cx| roles::composites(cx, Composites::Realm)))],
    )?
    .route(
        "/{realm}/roles/{role}/composites/clients/{client}",
        vec![(GET, now(|cx| roles::composites(cx, Composites::Client)))],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites",
        vec![
            (GET, now(|cx| roles::composites(cx, Composites::All))),
            (
                POST,
                now(|cx| roles::change_composites(cx, true)).takes::<Vec<RoleRef>>(),
            ),
            (
                DELETE,
                now(|cx| roles::change_composites(cx, false)).takes::<Vec<RoleRef>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites/realm",
        vec![(GET, now(|cx| roles::composites(cx, Composites::Realm)))],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites/clients/{client}",
        vec![(GET, now(|cx| roles::composites(cx, Composites::Client)))],
    )?
    .route("/{realm}/groups/count", vec![(GET, now(groups::count))])?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-access-token"),
        vec![(GET, now(|cx| clients::example_token(cx, false)))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-userinfo"),
        vec![(GET, now(clients::example_userinfo))],
    )?
    .route(
        &format!("{c}/certificates/{{key}}"),
        vec![(GET, now(clients::certificate))],
    )?
    .route(
        &format!("{c}/certificates/{{key}}/generate"),
        vec![(POST, now(clients::generate_certificate).no_body())],
    )?
    .route(
        &format!("{c}/evaluate-scopes/protocol-mappers"),
        vec![(GET, now(clients::evaluate_mappers))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/scope-mappings/{{client}}/{{key}}"),
        vec![(GET, now(clients::evaluate_role_scope))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-id-token"),
        vec![(GET, now(|cx| clients::example_token(cx, true)))],
    )?
    .route(
        &format!("{c}/installation/providers/{{key}}"),
        vec![(GET, now(clients::installation))],
    )?
    .route(
        &format!("{u}/remove-totp"),
        vec![(PUT, now(users::remove_totp).no_body())],
    )?
    .route(
        &format!("{u}/unmanagedAttributes"),
        vec![(GET, now(users::unmanaged_attributes))],
    )?
    .route(
        &format!("{g}/role-mappings"),
        vec![(GET, now(groups::role_mappings))],
    )?
    .route(
        "/{realm}/push-revocation",
        vec![(POST, now(|cx| realms::push_revocation(cx, false)).no_body())],
    )?
    .route(
        &format!("{c}/push-revocation"),
        vec![(POST, now(|cx| realms::push_revocation(cx, true)).no_body())],
    )?
    .route(
        "/{realm}/clear-crl-cache",
        vec![(POST, now(|cx| realms::clear_cache(cx, false)).no_body())],
    )?
    .route(
        "/{realm}/authentication/required-actions",
        vec![(GET, now(required_actions::list))],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}",
        vec![
            (GET, now(required_actions::get)),
            (
                PUT,
                now(required_actions::update).takes::<required_actions::Update>(),
            ),
            (DELETE, now(required_actions::delete)),
        ],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/config",
        vec![
            (GET, now(required_actions::config)),
            (
                PUT,
                now(required_actions::update_config).takes::<Map<String, Value>>(),
            ),
            (DELETE, now(required_actions::delete_config)),
        ],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/config-description",
        vec![(GET, now(required_actions::config_description))],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/raise-priority",
        vec![(
            POST,
            now(|cx| required_actions::move_priority(cx, true)).no_body(),
        )],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/lower-priority",
        vec![(
            POST,
            now(|cx| required_actions::move_priority(cx, false)).no_body(),
        )],
    )?
    .route(
        "/{realm}/authentication/unregistered-required-actions",
        vec![(GET, now(required_actions::unregistered))],
    )?
    .route(
        "/{realm}/authentication/register-required-action",
        vec![(
            POST,
            now(required_actions::register).takes::<required_actions::Register>(),
        )],
    )?
    .route(
        "/{realm}/localization",
        vec![(GET, now(localization::locales))],
    )?
    .route(
        "/{realm}/localization/{id}",
        vec![
            (GET, now(localization::texts)),
            (
                POST,
                now(localization::add_texts).takes::<BTreeMap<String, String>>(),
            ),
            (DELETE, now(localization::delete_locale)),
        ],
    )?
    .route(
        "/{realm}/localization/{id}/{key}",
        vec![
            (GET, now(localization::text)),
            (PUT, now(localization::set_text).takes_text()),
            (DELETE, now(localization::delete_text)),
        ],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/userLabel"),
        vec![(PUT, now(users::set_label).takes_text())],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/moveToFirst"),
        vec![(POST, now(|cx| users::move_credential(cx, false)).no_body())],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/moveAfter/{{after}}"),
        vec![(POST, now(|cx| users::move_credential(cx, true)).no_body())],
    )?
    .route(
        "/{realm}/roles/{role}/groups",
        vec![(GET, now(|cx| roles::groups(cx, Container::Realm)))],
    )?
    .route(
        &format!("{c}/roles/{{role}}/groups"),
        vec![(GET, now(|cx| roles::groups(cx, Container::Client)))],
    )?
    .route(
        "/{realm}/clear-realm-cache",
        vec![(POST, now(|cx| realms::clear_cache(cx, false)).no_body())],
    )?
    .route(
        "/{realm}/clear-user-cache",
        vec![(POST, now(|cx| realms::clear_cache(cx, false)).no_body())],
    )?
    .route(
        "/{realm}/clear-keys-cache",
        vec![(POST, now(|cx| realms::clear_cache(cx, true)).no_body())],
    )?;
    client_scope_routes(&mut r)?;
    flow_routes(&mut r)?;
    for (path, view, manage) in [
        (
            "/{realm}/users-management-permissions",
            Permission::ViewUsers,
            Permission::ManageUsers,
        ),
        (
            "/{realm}/groups/{id}/management/permissions",
            Permission::ViewUsers,
            Permission::ManageUsers,
        ),
        (
            "/{realm}/roles-by-id/{id}/management/permissions",
            Permission::ViewRealm,
            Permission::ManageRealm,
        ),
        (
            "/{realm}/clients/{id}/management/permissions",
            Permission::ViewClients,
            Permission::ManageClients,
        ),
        (
            "/{realm}/identity-provider/instances/{id}/management/permissions",
            Permission::ViewIdentityProviders,
            Permission::ManageIdentityProviders,
        ),
    ] {
        r.route(path, permission_handlers(view, manage))?;
    }
    r.route(
        "/{realm}/users/{id}/impersonation",
        vec![(POST, now(impersonation::impersonate).no_body())],
    )?;
    r.route(
        "/{realm}/client-policies/profiles",
        vec![
            (GET, now(client_policies::profiles)),
            (
                PUT,
                now(client_policies::update_profiles).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/client-policies/policies",
        vec![
            (GET, now(client_policies::policies)),
            (
                PUT,
                now(client_policies::update_policies).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        "/{realm}/clients-initial-access",
        vec![
            (GET, now(initial_access::list)),
            (
                POST,
                now(initial_access::create).takes::<initial_access::Input>(),
            ),
        ],
    )?
    .route(
        "/{realm}/clients-initial-access/{id}",
        vec![(DELETE, now(initial_access::delete))],
    )?
    .route(
        "/{realm}/clients/{id}/registration-access-token",
        vec![(POST, now(initial_access::regenerate).no_body())],
    )?
    .route(
        "/{realm}/users/profile",
        vec![
            (GET, now(user_profile::get)),
            (PUT, now(user_profile::update).takes::<Map<String, Value>>()),
        ],
    )?
    .route(
        "/{realm}/users/profile/metadata",
        vec![(GET, now(user_profile::metadata))],
    )?;
    Ok(r)
}

/// `{base}/protocol-mappers/...` of a client or a client scope.
fn mapper_routes(
    r: &mut MethodRouter<Handler>,
    base: &str,
    holder: Holder,
) -> Result<(), RouteError> {
    macro_rules! h {
        ($f:path) => {
            match holder {
                Holder::Client => now(|cx| $f(cx, Holder::Client)),
                Holder::ClientScope => now(|cx| $f(cx, Holder::ClientScope)),
            }
        };
    }
    r.route(
        &format!("{base}/protocol-mappers/models"),
        vec![
            (GET, h!(protocol_mappers::list)),
            (
                POST,
                h!(protocol_mappers::add).takes::<Map<String, Value>>(),
            ),
        ],
    )?
    .route(
        &format!("{base}/protocol-mappers/models/{{mapper}}"),
        vec![
            (GET, h!(protocol_mappers::get)),
            (
                PUT,
                h!(protocol_mappers::update).takes::<Map<String, Value>>(),
            ),
            (DELETE, h!(protocol_mappers::delete)),
        ],
    )?
    .route(
        &format!("{base}/protocol-mappers/add-models"),
        vec![(
            POST,
            h!(protocol_mappers::add_many).takes::<Vec<Map<String, Value>>>(),
        )],
    )?
    .route(
        &format!("{base}/protocol-mappers/protocol/{{key}}"),
        vec![(GET, h!(protocol_mappers::by_protocol))],
    )?;
    Ok(())
}

/// `{base}/scope-mappings/...` of a client or a client scope.
fn scope_mapping_routes(
    r: &mut MethodRouter<Handler>,
    base: &str,
    holder: Holder,
) -> Result<(), RouteError> {
    macro_rules! h {
        (|$cx:ident, $holder:ident| $body:expr) => {
            match holder {
                Holder::Client => now(|$cx| {
                    let $holder = Holder::Client;
                    $body
                }),
                Holder::ClientScope => now(|$cx| {
                    let $holder = Holder::ClientScope;
                    $body
                }),
            }
        };
    }
    r.route(
        &format!("{base}/scope-mappings"),
        vec![(GET, h!(|cx, k| scope_mappings::all(cx, k)))],
    )?;
    for (path, client_roles) in [
        ("realm".to_string(), false),
        ("clients/{client}".to_string(), true),
    ] {
        let direct = if client_roles {
            vec![
                (
                    GET,
                    h!(|cx, k| scope_mappings::list(cx, k, true, View::Direct)),
                ),
                (
                    POST,
                    h!(|cx, k| scope_mappings::change(cx, k, true, true)).takes::<Vec<RoleRef>>(),
                ),
                (
                    DELETE,
                    h!(|cx, k| scope_mappings::change(cx, k, true, false)).takes::<Vec<RoleRef>>(),
                ),
            ]
        } else {
            vec![
                (
                    GET,
                    h!(|cx, k| scope_mappings::list(cx, k, false, View::Direct)),
                ),
                (
                    POST,
                    h!(|cx, k| scope_mappings::change(cx, k, false, true)).takes::<Vec<RoleRef>>(),
                ),
                (
                    DELETE,
                    h!(|cx, k| scope_mappings::change(cx, k, false, false)).takes::<Vec<RoleRef>>(),
                ),
            ]
        };
        let (available, composite) = if client_roles {
            (
                h!(|cx, k| scope_mappings::list(cx, k, true, View::Available)),
                h!(|cx, k| scope_mappings::list(cx, k, true, View::Composite)),
            )
        } else {
            (
                h!(|cx, k| scope_mappings::list(cx, k, false, View::Available)),
                h!(|cx, k| scope_mappings::list(cx, k, false, View::Composite)),
            )
        };
        r.route(&format!("{base}/scope-mappings/{path}"), direct)?
            .route(
                &format!("{base}/scope-mappings/{path}/available"),
                vec![(GET, available)],
            )?
            .route(
                &format!("{base}/scope-mappings/{path}/composite"),
                vec![(GET, composite)],
            )?;
    }
    Ok(())
}

/// Client scopes and the realm's and clients' default scope lists.
fn client_scope_routes(r: &mut MethodRouter<Handler>) -> Result<(), RouteError> {
    let s = "/{realm}/client-scopes/{id}";
    r.route(
        "/{realm}/client-scopes",
        vec![
            (
                GET,
                now(client_scopes::list).returns::<Vec<ClientScopeInput>>(),
            ),
            (POST, now(client_scopes::create).takes::<ClientScopeInput>()),
        ],
    )?
    .route(
        s,
        vec![
            (GET, now(client_scopes::get).returns::<ClientScopeInput>()),
            (PUT, now(client_scopes::update).takes::<ClientScopeInput>()),
            (DELETE, now(client_scopes::delete)),
        ],
    )?
    .route(
        "/{realm}/default-default-client-scopes",
        vec![(GET, now(|cx| client_scopes::realm_list(cx, Kind::Default)))],
    )?
    .route(
        "/{realm}/default-default-client-scopes/{scope}",
        vec![
            (
                PUT,
                now(|cx| client_scopes::realm_change(cx, Kind::Default, true)).no_body(),
            ),
            (
                DELETE,
                now(|cx| client_scopes::realm_change(cx, Kind::Default, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/default-optional-client-scopes",
        vec![(GET, now(|cx| client_scopes::realm_list(cx, Kind::Optional)))],
    )?
    .route(
        "/{realm}/default-optional-client-scopes/{scope}",
        vec![
            (
                PUT,
                now(|cx| client_scopes::realm_change(cx, Kind::Optional, true)).no_body(),
            ),
            (
                DELETE,
                now(|cx| client_scopes::realm_change(cx, Kind::Optional, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/clients/{id}/default-client-scopes",
        vec![(GET, now(|cx| client_scopes::client_list(cx, Kind::Default)))],
    )?
    .route(
        "/{realm}/clients/{id}/default-client-scopes/{scope}",
        vec![
            (
                PUT,
                now(|cx| client_scopes::client_change(cx, Kind::Default, true)).no_body(),
            ),
            (
                DELETE,
                now(|cx| client_scopes::client_change(cx, Kind::Default, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/clients/{id}/optional-client-scopes",
        vec![(
            GET,
            now(|cx| client_scopes::client_list(cx, Kind::Optional)),
        )],
    )?
    .route(
        "/{realm}/clients/{id}/optional-client-scopes/{scope}",
        vec![
            (
                PUT,
                now(|cx| client_scopes::client_change(cx, Kind::Optional, true)).no_body(),
            ),
            (
                DELETE,
                now(|cx| client_scopes::client_change(cx, Kind::Optional, false)),
            ),
        ],
    )?;
    mapper_routes(r, s, Holder::ClientScope)?;
    scope_mapping_routes(r, s, Holder::ClientScope)
}

/// Authentication flows, executions and authenticator configurations.
fn flow_routes(r: &mut MethodRouter<Handler>) -> Result<(), RouteError> {
    let a = "/{realm}/authentication";
    r.route(
        &format!("{a}/flows"),
        vec![
            (GET, now(flows::list)),
            (POST, now(flows::create).takes::<flows::FlowInput>()),
        ],
    )?
    .route(
        &format!("{a}/flows/{{id}}"),
        vec![
            (GET, now(flows::get)),
            (PUT, now(flows::update).takes::<flows::FlowInput>()),
            (DELETE, now(flows::delete)),
        ],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/copy"),
        vec![(POST, now(flows::copy).takes::<Map<String, Value>>())],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions"),
        vec![
            (GET, now(flows::executions)),
            (
                PUT,
                now(flows::update_execution).takes::<flows::ExecutionInfoInput>(),
            ),
            (
                POST,
                now(flows::add_execution_model).takes::<flows::ExecutionInput>(),
            ),
        ],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions/execution"),
        vec![(
            POST,
            now(flows::add_execution).takes::<Map<String, Value>>(),
        )],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions/flow"),
        vec![(POST, now(flows::add_subflow).takes::<Map<String, Value>>())],
    )?
    .route(
        &format!("{a}/executions"),
        vec![(
            POST,
            now(flows::add_execution_model).takes::<flows::ExecutionInput>(),
        )],
    )?
    .route(
        &format!("{a}/executions/{{id}}"),
        vec![
            (GET, now(flows::get_execution)),
            (DELETE, now(flows::delete_execution)),
        ],
    )?
    .route(
        &format!("{a}/executions/{{id}}/raise-priority"),
        vec![(POST, now(|cx| flows::move_execution(cx, true)).no_body())],
    )?
    .route(
        &format!("{a}/executions/{{id}}/lower-priority"),
        vec![(POST, now(|cx| flows::move_execution(cx, false)).no_body())],
    )?
    .route(
        &format!("{a}/executions/{{id}}/config"),
        vec![(
            POST,
            now(flows::create_config).takes::<flows::ConfigInput>(),
        )],
    )?
    .route(
        &format!("{a}/executions/{{id}}/config/{{key}}"),
        vec![(GET, now(flows::get_config))],
    )?
    .route(
        &format!("{a}/config/{{id}}"),
        vec![
            (GET, now(flows::get_config)),
            (PUT, now(flows::update_config).takes::<flows::ConfigInput>()),
            (DELETE, now(flows::delete_config)),
        ],
    )?
    .route(
        &format!("{a}/config-description/{{key}}"),
        vec![(GET, now(flows::config_description))],
    )?
    .route(
        &format!("{a}/authenticator-providers"),
        vec![(
            GET,
            now(|cx| flows::providers(cx, crate::idp::flows::BASIC_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/client-authenticator-providers"),
        vec![(
            GET,
            now(|cx| flows::providers(cx, crate::idp::flows::CLIENT_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/form-action-providers"),
        vec![(
            GET,
            now(|cx| flows::providers(cx, crate::idp::flows::FORM_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/form-providers"),
        vec![(GET, now(|cx| flows::providers(cx, "form")))],
    )?;
    Ok(())
}

/// `GET` and `PUT` of a `management/permissions` path (its view and manage permissions).
fn permission_handlers(view: Permission, manage: Permission) -> Vec<(Method, Handler)> {
    macro_rules! pair {
        ($($v:ident / $m:ident),*) => {
            match (view, manage) {
                $((Permission::$v, Permission::$m) => vec![
                    (GET, now(|cx| permissions::get(cx, Permission::$v))),
                    (PUT, now(|cx| permissions::update(cx, Permission::$m)).takes::<permissions::Input>()),
                ],)*
                _ => vec![],
            }
        };
    }
    pair!(
        ViewUsers / ManageUsers,
        ViewRealm / ManageRealm,
        ViewClients / ManageClients,
        ViewIdentityProviders / ManageIdentityProviders
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_builds() {
        let table = build().unwrap();
        let found = table
            .at("/demo/users/42/role-mappings/realm", &POST)
            .unwrap();
        assert!(found.handler.is_ok());
        assert_eq!(found.params.get("id"), Some("42"));
        let refused = table
            .at("/demo/users/42/role-mappings/realm/available", &POST)
            .unwrap();
        assert_eq!(refused.handler.err(), Some(&[GET][..]));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every path of the table, its parameters filled with any values that are not one
        /// of the table's fixed segments, reaches that path: each of its methods finds its
        /// handler, with the parameters as given. No path shadows another.
        #[test]
        fn every_path_is_reached_with_any_parameters(
            values in proptest::collection::vec("[A-Za-z0-9._~-]{1,12}", 8),
        ) {
            let table = table();
            let fixed: std::collections::BTreeSet<&str> = table
                .routes()
                .flat_map(|(p, _)| p.split('/'))
                .filter(|s| !s.starts_with('{'))
                .collect();
            for (template, handlers) in table.routes() {
                let mut path = String::new();
                let mut given = Vec::new();
                for (i, segment) in template.split('/').filter(|s| !s.is_empty()).enumerate() {
                    path.push('/');
                    match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => {
                            let mut v = values[i % values.len()].clone();
                            if fixed.contains(v.as_str()) {
                                v.push_str("-x");
                            }
                            path.push_str(&v);
                            given.push((name.trim_start_matches('*').to_string(), v));
                        }
                        None => path.push_str(segment),
                    }
                }
                if path.is_empty() {
                    path.push('/');
                }
                for (method, _) in handlers {
                    let found = table.at(&path, method);
                    prop_assert!(found.is_some(), "{method} {path} ({template})");
                    let found = found.unwrap();
                    prop_assert!(found.handler.is_ok(), "{method} {path} ({template})");
                    for (name, value) in &given {
                        prop_assert_eq!(found.params.get(name), Some(value.as_str()),
                            "{} {} ({})", method, path, template);
                    }
                }
            }
        }
    }
}
