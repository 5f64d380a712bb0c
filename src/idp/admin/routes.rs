//! The admin API's route table: every path under `/admin/realms` with the handler of each
//! of its methods. A method a path does not list is `405` with `Allow` from this table, and
//! a pre-flight names the same methods; handlers never look at the method.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use http::Method;

use crate::http::router::{MethodRouter, RouteError};
use crate::http::Response;
use crate::idp::admin::error::AdminError;

use super::client_scopes::Kind;
use super::holders::Holder;
use super::roles::{Composites, Container};
use super::{
    client_policies, client_scopes, clients, flows, groups, impersonation, initial_access,
    localization, mail, permissions, protocol_mappers, providers, realms, required_actions, roles,
    scope_mappings, sessions, user_profile, user_storage, users, Cx,
};
use super::{Permission, View};

/// What an async handler returns: its future, boxed so the table holds plain fn pointers.
pub(crate) type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response, AdminError>> + Send + 'a>>;

/// A handler of one method of one path.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    Now(fn(&Cx) -> Result<Response, AdminError>),
    Later(for<'a, 'b> fn(&'a Cx<'b>) -> Reply<'a>),
}

impl Handler {
    pub(crate) async fn call(self, cx: &Cx<'_>) -> Result<Response, AdminError> {
        match self {
            Handler::Now(f) => f(cx),
            Handler::Later(f) => f(cx).await,
        }
    }
}

use Handler::{Later, Now};

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
            (GET, Now(realms::list)),
            (POST, Later(|cx| Box::pin(realms::create(cx)))),
        ],
    )?
    .route(
        "/{realm}",
        vec![
            (GET, Now(realms::get)),
            (PUT, Now(realms::update)),
            (DELETE, Now(realms::delete)),
        ],
    )?
    .route("/{realm}/logout-all", vec![(POST, Now(realms::logout_all))])?
    .route(
        "/{realm}/partialImport",
        vec![(POST, Later(|cx| Box::pin(realms::partial_import(cx))))],
    )?
    .route(
        "/{realm}/partial-export",
        vec![(POST, Now(realms::partial_export))],
    )?
    .route(
        "/{realm}/keys",
        vec![(GET, Now(realms::keys)), (POST, Now(realms::rotate_keys))],
    )?
    .route(
        "/{realm}/events",
        vec![
            (GET, Now(|cx| realms::list_events(cx, false))),
            (DELETE, Now(|cx| realms::clear_events(cx, false))),
        ],
    )?
    .route(
        "/{realm}/admin-events",
        vec![
            (GET, Now(|cx| realms::list_events(cx, true))),
            (DELETE, Now(|cx| realms::clear_events(cx, true))),
        ],
    )?
    .route(
        "/{realm}/events/config",
        vec![
            (GET, Now(realms::events_config)),
            (PUT, Now(realms::update_events_config)),
        ],
    )?
    .route(
        "/{realm}/testSMTPConnection",
        vec![(POST, Later(|cx| Box::pin(mail::test_smtp_connection(cx))))],
    )?
    .route(
        "/{realm}/attack-detection/brute-force/users",
        vec![(DELETE, Now(|cx| users::clear_brute_force(cx, false)))],
    )?
    .route(
        "/{realm}/attack-detection/brute-force/users/{id}",
        vec![
            (GET, Now(users::brute_force_status)),
            (DELETE, Now(|cx| users::clear_brute_force(cx, true))),
        ],
    )?;

    // Users.
    r.route(
        "/{realm}/users",
        vec![
            (GET, Later(|cx| Box::pin(users::list(cx)))),
            (POST, Later(|cx| Box::pin(users::create(cx)))),
        ],
    )?
    .route("/{realm}/users/count", vec![(GET, Now(users::count))])?
    .route(
        u,
        vec![
            (GET, Now(users::get)),
            (PUT, Later(|cx| Box::pin(users::update(cx)))),
            (DELETE, Later(|cx| Box::pin(users::delete(cx)))),
        ],
    )?
    .route(
        &format!("{u}/reset-password"),
        vec![(PUT, Later(|cx| Box::pin(users::reset_password(cx))))],
    )?
    .route(
        &format!("{u}/role-mappings"),
        vec![(GET, Now(users::role_mappings))],
    )?
    .route(
        &format!("{u}/role-mappings/realm"),
        vec![
            (GET, Now(|cx| users::mapped_roles(cx, false, View::Direct))),
            (POST, Now(|cx| users::map_roles(cx, false, true))),
            (DELETE, Now(|cx| users::map_roles(cx, false, false))),
        ],
    )?
    .route(
        &format!("{u}/role-mappings/realm/available"),
        vec![(
            GET,
            Now(|cx| users::mapped_roles(cx, false, View::Available)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/realm/composite"),
        vec![(
            GET,
            Now(|cx| users::mapped_roles(cx, false, View::Composite)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}"),
        vec![
            (GET, Now(|cx| users::mapped_roles(cx, true, View::Direct))),
            (POST, Now(|cx| users::map_roles(cx, true, true))),
            (DELETE, Now(|cx| users::map_roles(cx, true, false))),
        ],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}/available"),
        vec![(
            GET,
            Now(|cx| users::mapped_roles(cx, true, View::Available)),
        )],
    )?
    .route(
        &format!("{u}/role-mappings/clients/{{client}}/composite"),
        vec![(
            GET,
            Now(|cx| users::mapped_roles(cx, true, View::Composite)),
        )],
    )?
    .route(&format!("{u}/groups"), vec![(GET, Now(users::groups))])?
    .route(
        &format!("{u}/groups/{{group}}"),
        vec![
            (PUT, Now(users::join_group)),
            (DELETE, Now(users::leave_group)),
        ],
    )?
    .route(
        &format!("{u}/credentials"),
        vec![(GET, Now(users::credentials))],
    )?
    .route(
        &format!("{u}/configured-user-storage-credential-types"),
        vec![(GET, Now(users::storage_credential_types))],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}"),
        vec![(DELETE, Now(users::credential))],
    )?
    .route(
        &format!("{u}/federated-identity"),
        vec![(GET, Now(users::federated_identities))],
    )?
    .route(
        &format!("{u}/federated-identity/{{provider}}"),
        vec![
            (POST, Now(users::link_identity)),
            (DELETE, Now(users::unlink_identity)),
        ],
    )?
    .route(&format!("{u}/sessions"), vec![(GET, Now(users::sessions))])?
    .route(&format!("{u}/logout"), vec![(POST, Now(users::logout))])?
    .route(
        &format!("{u}/execute-actions-email"),
        vec![(PUT, Later(|cx| Box::pin(mail::execute_actions_email(cx))))],
    )?
    .route(
        &format!("{u}/send-verify-email"),
        vec![(PUT, Later(|cx| Box::pin(mail::send_verify_email(cx))))],
    )?;

    // Clients.
    r.route(
        "/{realm}/clients",
        vec![(GET, Now(clients::list)), (POST, Now(clients::create))],
    )?
    .route(
        c,
        vec![
            (GET, Now(clients::get)),
            (PUT, Now(clients::update)),
            (DELETE, Now(clients::delete)),
        ],
    )?
    .route(
        &format!("{c}/client-secret"),
        vec![
            (GET, Now(clients::secret)),
            (POST, Now(clients::regenerate_secret)),
        ],
    )?
    .route(
        &format!("{c}/nodes"),
        vec![(POST, Now(clients::register_node))],
    )?
    .route(
        &format!("{c}/nodes/{{key}}"),
        vec![(DELETE, Now(clients::unregister_node))],
    )?
    .route(
        &format!("{c}/test-nodes-available"),
        vec![(GET, Later(|cx| Box::pin(clients::test_nodes(cx))))],
    )?
    .route(
        &format!("{c}/client-secret/rotated"),
        vec![
            (GET, Now(clients::rotated_secret)),
            (DELETE, Now(clients::invalidate_rotated_secret)),
        ],
    )?
    .route(
        &format!("{c}/roles"),
        vec![
            (GET, Now(|cx| roles::list(cx, Container::Client))),
            (POST, Now(|cx| roles::create(cx, Container::Client))),
        ],
    )?
    .route(
        &format!("{c}/roles/{{role}}"),
        vec![
            (GET, Now(|cx| roles::get(cx, Container::Client))),
            (PUT, Now(|cx| roles::update(cx, Container::Client))),
            (DELETE, Now(|cx| roles::delete(cx, Container::Client))),
        ],
    )?
    .route(
        &format!("{c}/service-account-user"),
        vec![(GET, Now(clients::service_account))],
    )?;
    mapper_routes(&mut r, c, Holder::Client)?;
    scope_mapping_routes(&mut r, c, Holder::Client)?;

    // Realm roles.
    r.route(
        "/{realm}/roles",
        vec![
            (GET, Now(|cx| roles::list(cx, Container::Realm))),
            (POST, Now(|cx| roles::create(cx, Container::Realm))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}",
        vec![
            (GET, Now(|cx| roles::get(cx, Container::Realm))),
            (PUT, Now(|cx| roles::update(cx, Container::Realm))),
            (DELETE, Now(|cx| roles::delete(cx, Container::Realm))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/composites",
        vec![
            (GET, Now(|cx| roles::composites(cx, Composites::All))),
            (POST, Now(|cx| roles::change_composites(cx, true))),
            (DELETE, Now(|cx| roles::change_composites(cx, false))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/users",
        vec![(GET, Now(|cx| roles::users(cx, Container::Realm)))],
    )?
    .route(
        "/{realm}/clients/{id}/roles/{role}/users",
        vec![(GET, Now(|cx| roles::users(cx, Container::Client)))],
    )?
    .route(
        "/{realm}/roles-by-id/{id}",
        vec![
            (GET, Now(roles::get_by_id)),
            (PUT, Now(roles::update_by_id)),
            (DELETE, Now(roles::delete_by_id)),
        ],
    )?;

    // Groups.
    r.route(
        "/{realm}/groups",
        vec![(GET, Now(groups::list)), (POST, Now(groups::create))],
    )?
    .route(
        g,
        vec![
            (GET, Now(groups::get)),
            (PUT, Now(groups::update)),
            (DELETE, Now(groups::delete)),
        ],
    )?
    .route(
        &format!("{g}/children"),
        vec![(GET, Now(groups::children)), (POST, Now(groups::add_child))],
    )?
    .route(&format!("{g}/members"), vec![(GET, Now(groups::members))])?
    .route(
        &format!("{g}/role-mappings/realm"),
        vec![
            (GET, Now(|cx| groups::mappings(cx, false, View::Direct))),
            (POST, Now(|cx| groups::map_roles(cx, false, true))),
            (DELETE, Now(|cx| groups::map_roles(cx, false, false))),
        ],
    )?
    .route(
        &format!("{g}/role-mappings/realm/available"),
        vec![(GET, Now(|cx| groups::mappings(cx, false, View::Available)))],
    )?
    .route(
        &format!("{g}/role-mappings/realm/composite"),
        vec![(GET, Now(|cx| groups::mappings(cx, false, View::Composite)))],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}"),
        vec![
            (GET, Now(|cx| groups::mappings(cx, true, View::Direct))),
            (POST, Now(|cx| groups::map_roles(cx, true, true))),
            (DELETE, Now(|cx| groups::map_roles(cx, true, false))),
        ],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}/available"),
        vec![(GET, Now(|cx| groups::mappings(cx, true, View::Available)))],
    )?
    .route(
        &format!("{g}/role-mappings/clients/{{client}}/composite"),
        vec![(GET, Now(|cx| groups::mappings(cx, true, View::Composite)))],
    )?
    .route(
        "/{realm}/group-by-path/{*path}",
        vec![(GET, Now(groups::by_path))],
    )?;

    // Identity providers and components.
    r.route(
        "/{realm}/identity-provider/instances",
        vec![
            (GET, Now(providers::idps)),
            (POST, Now(providers::create_idp)),
        ],
    )?
    .route(
        idp,
        vec![
            (GET, Now(providers::idp)),
            (PUT, Now(providers::update_idp)),
            (DELETE, Now(providers::delete_idp)),
        ],
    )?
    .route(
        &format!("{idp}/mappers"),
        vec![
            (GET, Now(providers::idp_mappers)),
            (POST, Now(providers::create_idp_mapper)),
        ],
    )?
    .route(
        &format!("{idp}/mappers/{{mapper}}"),
        vec![
            (GET, Now(providers::idp_mapper)),
            (PUT, Now(providers::update_idp_mapper)),
            (DELETE, Now(providers::delete_idp_mapper)),
        ],
    )?
    .route(
        &format!("{idp}/reload-keys"),
        vec![(GET, Now(providers::reload_idp_keys))],
    )?
    .route(
        &format!("{idp}/mapper-types"),
        vec![(GET, Now(providers::idp_mapper_types))],
    )?
    .route(
        "/{realm}/identity-provider/providers/{id}",
        vec![(GET, Now(providers::idp_provider_type))],
    )?
    .route(
        "/{realm}/identity-provider/import-config",
        vec![(POST, Later(|cx| Box::pin(providers::import_config(cx))))],
    )?
    .route(
        "/{realm}/testLDAPConnection",
        vec![(
            POST,
            Later(|cx| Box::pin(user_storage::test_connection(cx))),
        )],
    )?
    .route(
        "/{realm}/user-storage/{id}/sync",
        vec![(POST, Later(|cx| Box::pin(user_storage::sync(cx))))],
    )?
    .route(
        "/{realm}/ldap-server-capabilities",
        vec![(POST, Later(|cx| Box::pin(user_storage::capabilities(cx))))],
    )?
    .route(
        "/{realm}/user-storage/{id}/mappers/{mapper}/sync",
        vec![(POST, Later(|cx| Box::pin(user_storage::mapper_sync(cx))))],
    )?
    .route(
        "/{realm}/user-storage/{id}/name",
        vec![(GET, Now(user_storage::name))],
    )?
    .route(
        "/{realm}/user-storage/{id}/remove-imported-users",
        vec![(POST, Now(user_storage::remove_imported))],
    )?
    .route(
        "/{realm}/user-storage/{id}/unlink-users",
        vec![(POST, Now(user_storage::unlink))],
    )?
    .route(
        "/{realm}/components",
        vec![
            (GET, Now(providers::components)),
            (POST, Now(providers::create_component)),
        ],
    )?
    .route(
        "/{realm}/components/{id}",
        vec![
            (GET, Now(providers::component)),
            (PUT, Now(providers::update_component)),
            (DELETE, Now(providers::delete_component)),
        ],
    )?
    .route(
        "/{realm}/components/{id}/sub-component-types",
        vec![(GET, Now(providers::sub_component_types))],
    )?;
    // Sessions, default groups, composites by id, caches.
    r.route(
        "/{realm}/client-session-stats",
        vec![(GET, Now(sessions::stats))],
    )?
    .route(
        "/{realm}/sessions/{id}",
        vec![(DELETE, Now(sessions::end_one))],
    )?
    .route(
        &format!("{c}/user-sessions"),
        vec![(GET, Now(|cx| sessions::of_client(cx, false)))],
    )?
    .route(
        &format!("{c}/offline-sessions"),
        vec![(GET, Now(|cx| sessions::of_client(cx, true)))],
    )?
    .route(
        &format!("{c}/session-count"),
        vec![(GET, Now(|cx| sessions::count_of_client(cx, false)))],
    )?
    .route(
        &format!("{c}/offline-session-count"),
        vec![(GET, Now(|cx| sessions::count_of_client(cx, true)))],
    )?
    .route(
        &format!("{u}/groups/count"),
        vec![(GET, Now(users::groups_count))],
    )?
    .route(
        &format!("{u}/consents"),
        vec![(GET, Now(sessions::consents))],
    )?
    .route(
        &format!("{u}/consents/{{client}}"),
        vec![(DELETE, Now(sessions::revoke_consent))],
    )?
    .route(
        &format!("{u}/offline-sessions/{{client}}"),
        vec![(GET, Now(sessions::offline_of_user))],
    )?
    .route(
        "/{realm}/default-groups",
        vec![(GET, Now(groups::default_groups))],
    )?
    .route(
        "/{realm}/default-groups/{id}",
        vec![
            (PUT, Now(|cx| groups::change_default_group(cx, true))),
            (DELETE, Now(|cx| groups::change_default_group(cx, false))),
        ],
    )?
    .route(
        "/{realm}/roles/{role}/composites/realm",
        vec![(GET, Now(|cx| roles::composites(cx, Composites::Realm)))],
    )?
    .route(
        "/{realm}/roles/{role}/composites/clients/{client}",
        vec![(GET, Now(|cx| roles::composites(cx, Composites::Client)))],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites",
        vec![
            (GET, Now(|cx| roles::composites(cx, Composites::All))),
            (POST, Now(|cx| roles::change_composites(cx, true))),
            (DELETE, Now(|cx| roles::change_composites(cx, false))),
        ],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites/realm",
        vec![(GET, Now(|cx| roles::composites(cx, Composites::Realm)))],
    )?
    .route(
        "/{realm}/roles-by-id/{id}/composites/clients/{client}",
        vec![(GET, Now(|cx| roles::composites(cx, Composites::Client)))],
    )?
    .route("/{realm}/groups/count", vec![(GET, Now(groups::count))])?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-access-token"),
        vec![(GET, Now(|cx| clients::example_token(cx, false)))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-userinfo"),
        vec![(GET, Now(clients::example_userinfo))],
    )?
    .route(
        &format!("{c}/certificates/{{key}}"),
        vec![(GET, Now(clients::certificate))],
    )?
    .route(
        &format!("{c}/certificates/{{key}}/generate"),
        vec![(POST, Now(clients::generate_certificate))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/protocol-mappers"),
        vec![(GET, Now(clients::evaluate_mappers))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/scope-mappings/{{client}}/{{key}}"),
        vec![(GET, Now(clients::evaluate_role_scope))],
    )?
    .route(
        &format!("{c}/evaluate-scopes/generate-example-id-token"),
        vec![(GET, Now(|cx| clients::example_token(cx, true)))],
    )?
    .route(
        &format!("{c}/installation/providers/{{key}}"),
        vec![(GET, Now(clients::installation))],
    )?
    .route(
        &format!("{u}/remove-totp"),
        vec![(PUT, Now(users::remove_totp))],
    )?
    .route(
        &format!("{u}/unmanagedAttributes"),
        vec![(GET, Now(users::unmanaged_attributes))],
    )?
    .route(
        &format!("{g}/role-mappings"),
        vec![(GET, Now(groups::role_mappings))],
    )?
    .route(
        "/{realm}/push-revocation",
        vec![(POST, Now(|cx| realms::push_revocation(cx, false)))],
    )?
    .route(
        &format!("{c}/push-revocation"),
        vec![(POST, Now(|cx| realms::push_revocation(cx, true)))],
    )?
    .route(
        "/{realm}/clear-crl-cache",
        vec![(POST, Now(|cx| realms::clear_cache(cx, false)))],
    )?
    .route(
        "/{realm}/authentication/required-actions",
        vec![(GET, Now(required_actions::list))],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}",
        vec![
            (GET, Now(required_actions::get)),
            (PUT, Now(required_actions::update)),
            (DELETE, Now(required_actions::delete)),
        ],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/config",
        vec![
            (GET, Now(required_actions::config)),
            (PUT, Now(required_actions::update_config)),
            (DELETE, Now(required_actions::delete_config)),
        ],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/config-description",
        vec![(GET, Now(required_actions::config_description))],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/raise-priority",
        vec![(POST, Now(|cx| required_actions::move_priority(cx, true)))],
    )?
    .route(
        "/{realm}/authentication/required-actions/{id}/lower-priority",
        vec![(POST, Now(|cx| required_actions::move_priority(cx, false)))],
    )?
    .route(
        "/{realm}/authentication/unregistered-required-actions",
        vec![(GET, Now(required_actions::unregistered))],
    )?
    .route(
        "/{realm}/authentication/register-required-action",
        vec![(POST, Now(required_actions::register))],
    )?
    .route(
        "/{realm}/localization",
        vec![(GET, Now(localization::locales))],
    )?
    .route(
        "/{realm}/localization/{id}",
        vec![
            (GET, Now(localization::texts)),
            (POST, Now(localization::add_texts)),
            (DELETE, Now(localization::delete_locale)),
        ],
    )?
    .route(
        "/{realm}/localization/{id}/{key}",
        vec![
            (GET, Now(localization::text)),
            (PUT, Now(localization::set_text)),
            (DELETE, Now(localization::delete_text)),
        ],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/userLabel"),
        vec![(PUT, Now(users::set_label))],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/moveToFirst"),
        vec![(POST, Now(|cx| users::move_credential(cx, false)))],
    )?
    .route(
        &format!("{u}/credentials/{{cred}}/moveAfter/{{after}}"),
        vec![(POST, Now(|cx| users::move_credential(cx, true)))],
    )?
    .route(
        "/{realm}/roles/{role}/groups",
        vec![(GET, Now(|cx| roles::groups(cx, Container::Realm)))],
    )?
    .route(
        &format!("{c}/roles/{{role}}/groups"),
        vec![(GET, Now(|cx| roles::groups(cx, Container::Client)))],
    )?
    .route(
        "/{realm}/clear-realm-cache",
        vec![(POST, Now(|cx| realms::clear_cache(cx, false)))],
    )?
    .route(
        "/{realm}/clear-user-cache",
        vec![(POST, Now(|cx| realms::clear_cache(cx, false)))],
    )?
    .route(
        "/{realm}/clear-keys-cache",
        vec![(POST, Now(|cx| realms::clear_cache(cx, true)))],
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
        vec![(POST, Now(impersonation::impersonate))],
    )?;
    r.route(
        "/{realm}/client-policies/profiles",
        vec![
            (GET, Now(client_policies::profiles)),
            (PUT, Now(client_policies::update_profiles)),
        ],
    )?
    .route(
        "/{realm}/client-policies/policies",
        vec![
            (GET, Now(client_policies::policies)),
            (PUT, Now(client_policies::update_policies)),
        ],
    )?
    .route(
        "/{realm}/clients-initial-access",
        vec![
            (GET, Now(initial_access::list)),
            (POST, Now(initial_access::create)),
        ],
    )?
    .route(
        "/{realm}/clients-initial-access/{id}",
        vec![(DELETE, Now(initial_access::delete))],
    )?
    .route(
        "/{realm}/clients/{id}/registration-access-token",
        vec![(POST, Now(initial_access::regenerate))],
    )?
    .route(
        "/{realm}/users/profile",
        vec![
            (GET, Now(user_profile::get)),
            (PUT, Now(user_profile::update)),
        ],
    )?
    .route(
        "/{realm}/users/profile/metadata",
        vec![(GET, Now(user_profile::metadata))],
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
                Holder::Client => Now(|cx| $f(cx, Holder::Client)),
                Holder::ClientScope => Now(|cx| $f(cx, Holder::ClientScope)),
            }
        };
    }
    r.route(
        &format!("{base}/protocol-mappers/models"),
        vec![
            (GET, h!(protocol_mappers::list)),
            (POST, h!(protocol_mappers::add)),
        ],
    )?
    .route(
        &format!("{base}/protocol-mappers/models/{{mapper}}"),
        vec![
            (GET, h!(protocol_mappers::get)),
            (PUT, h!(protocol_mappers::update)),
            (DELETE, h!(protocol_mappers::delete)),
        ],
    )?
    .route(
        &format!("{base}/protocol-mappers/add-models"),
        vec![(POST, h!(protocol_mappers::add_many))],
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
                Holder::Client => Now(|$cx| {
                    let $holder = Holder::Client;
                    $body
                }),
                Holder::ClientScope => Now(|$cx| {
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
                (POST, h!(|cx, k| scope_mappings::change(cx, k, true, true))),
                (
                    DELETE,
                    h!(|cx, k| scope_mappings::change(cx, k, true, false)),
                ),
            ]
        } else {
            vec![
                (
                    GET,
                    h!(|cx, k| scope_mappings::list(cx, k, false, View::Direct)),
                ),
                (POST, h!(|cx, k| scope_mappings::change(cx, k, false, true))),
                (
                    DELETE,
                    h!(|cx, k| scope_mappings::change(cx, k, false, false)),
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
            (GET, Now(client_scopes::list)),
            (POST, Now(client_scopes::create)),
        ],
    )?
    .route(
        s,
        vec![
            (GET, Now(client_scopes::get)),
            (PUT, Now(client_scopes::update)),
            (DELETE, Now(client_scopes::delete)),
        ],
    )?
    .route(
        "/{realm}/default-default-client-scopes",
        vec![(GET, Now(|cx| client_scopes::realm_list(cx, Kind::Default)))],
    )?
    .route(
        "/{realm}/default-default-client-scopes/{scope}",
        vec![
            (
                PUT,
                Now(|cx| client_scopes::realm_change(cx, Kind::Default, true)),
            ),
            (
                DELETE,
                Now(|cx| client_scopes::realm_change(cx, Kind::Default, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/default-optional-client-scopes",
        vec![(GET, Now(|cx| client_scopes::realm_list(cx, Kind::Optional)))],
    )?
    .route(
        "/{realm}/default-optional-client-scopes/{scope}",
        vec![
            (
                PUT,
                Now(|cx| client_scopes::realm_change(cx, Kind::Optional, true)),
            ),
            (
                DELETE,
                Now(|cx| client_scopes::realm_change(cx, Kind::Optional, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/clients/{id}/default-client-scopes",
        vec![(GET, Now(|cx| client_scopes::client_list(cx, Kind::Default)))],
    )?
    .route(
        "/{realm}/clients/{id}/default-client-scopes/{scope}",
        vec![
            (
                PUT,
                Now(|cx| client_scopes::client_change(cx, Kind::Default, true)),
            ),
            (
                DELETE,
                Now(|cx| client_scopes::client_change(cx, Kind::Default, false)),
            ),
        ],
    )?
    .route(
        "/{realm}/clients/{id}/optional-client-scopes",
        vec![(
            GET,
            Now(|cx| client_scopes::client_list(cx, Kind::Optional)),
        )],
    )?
    .route(
        "/{realm}/clients/{id}/optional-client-scopes/{scope}",
        vec![
            (
                PUT,
                Now(|cx| client_scopes::client_change(cx, Kind::Optional, true)),
            ),
            (
                DELETE,
                Now(|cx| client_scopes::client_change(cx, Kind::Optional, false)),
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
        vec![(GET, Now(flows::list)), (POST, Now(flows::create))],
    )?
    .route(
        &format!("{a}/flows/{{id}}"),
        vec![
            (GET, Now(flows::get)),
            (PUT, Now(flows::update)),
            (DELETE, Now(flows::delete)),
        ],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/copy"),
        vec![(POST, Now(flows::copy))],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions"),
        vec![
            (GET, Now(flows::executions)),
            (PUT, Now(flows::update_execution)),
            (POST, Now(flows::add_execution_model)),
        ],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions/execution"),
        vec![(POST, Now(flows::add_execution))],
    )?
    .route(
        &format!("{a}/flows/{{flow}}/executions/flow"),
        vec![(POST, Now(flows::add_subflow))],
    )?
    .route(
        &format!("{a}/executions"),
        vec![(POST, Now(flows::add_execution_model))],
    )?
    .route(
        &format!("{a}/executions/{{id}}"),
        vec![
            (GET, Now(flows::get_execution)),
            (DELETE, Now(flows::delete_execution)),
        ],
    )?
    .route(
        &format!("{a}/executions/{{id}}/raise-priority"),
        vec![(POST, Now(|cx| flows::move_execution(cx, true)))],
    )?
    .route(
        &format!("{a}/executions/{{id}}/lower-priority"),
        vec![(POST, Now(|cx| flows::move_execution(cx, false)))],
    )?
    .route(
        &format!("{a}/executions/{{id}}/config"),
        vec![(POST, Now(flows::create_config))],
    )?
    .route(
        &format!("{a}/executions/{{id}}/config/{{key}}"),
        vec![(GET, Now(flows::get_config))],
    )?
    .route(
        &format!("{a}/config/{{id}}"),
        vec![
            (GET, Now(flows::get_config)),
            (PUT, Now(flows::update_config)),
            (DELETE, Now(flows::delete_config)),
        ],
    )?
    .route(
        &format!("{a}/config-description/{{key}}"),
        vec![(GET, Now(flows::config_description))],
    )?
    .route(
        &format!("{a}/authenticator-providers"),
        vec![(
            GET,
            Now(|cx| flows::providers(cx, crate::idp::flows::BASIC_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/client-authenticator-providers"),
        vec![(
            GET,
            Now(|cx| flows::providers(cx, crate::idp::flows::CLIENT_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/form-action-providers"),
        vec![(
            GET,
            Now(|cx| flows::providers(cx, crate::idp::flows::FORM_FLOW)),
        )],
    )?
    .route(
        &format!("{a}/form-providers"),
        vec![(GET, Now(|cx| flows::providers(cx, "form")))],
    )?;
    Ok(())
}

/// `GET` and `PUT` of a `management/permissions` path (its view and manage permissions).
fn permission_handlers(view: Permission, manage: Permission) -> Vec<(Method, Handler)> {
    macro_rules! pair {
        ($($v:ident / $m:ident),*) => {
            match (view, manage) {
                $((Permission::$v, Permission::$m) => vec![
                    (GET, Now(|cx| permissions::get(cx, Permission::$v))),
                    (PUT, Now(|cx| permissions::update(cx, Permission::$m))),
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
