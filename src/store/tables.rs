//! Every redb table, declared in one place. Keys start with the realm id so that a realm's
//! data is one contiguous range (cheap to export, cheap to delete). Values are JSON
//! records (see `records.rs`), which lets fields be added with serde defaults without a
//! migration.

use redb::{MultimapTableDefinition, TableDefinition};

/// `schema_version` and other store-wide facts.
pub(super) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// realm id → RealmRecord
pub(super) const REALMS: TableDefinition<&str, &[u8]> = TableDefinition::new("realms");
/// realm name → realm id
pub(super) const REALM_NAMES: TableDefinition<&str, &str> = TableDefinition::new("realm_names");

/// (realm id, user id) → UserRecord
pub(super) const USERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("users");
/// (realm id, lower-case username) → user id
pub(super) const USERS_BY_NAME: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("users_by_name");
/// (realm id, lower-case e-mail) → user ids (several only when the realm allows duplicates)
pub(super) const USERS_BY_EMAIL: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("users_by_email");

/// (realm id, lower-case first name) → user ids; prefix search.
pub(super) const USERS_BY_FIRST_NAME: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("users_by_first_name");
/// (realm id, lower-case last name) → user ids; prefix search.
pub(super) const USERS_BY_LAST_NAME: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("users_by_last_name");
/// realm id → number of users (kept with every insert and delete).
pub(super) const USER_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("user_counts");

/// (realm id, user id, credential id) → CredentialRecord
pub(super) const CREDENTIALS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("credentials");

/// (realm id, client uuid) → ClientRecord
pub(super) const CLIENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("clients");
/// (realm id, clientId) → client uuid
pub(super) const CLIENTS_BY_CLIENT_ID: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("clients_by_client_id");

/// (realm id, client scope id) → ClientScopeRecord
pub(super) const CLIENT_SCOPES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("client_scopes");
/// (realm id, client scope name) → client scope id
pub(super) const CLIENT_SCOPES_BY_NAME: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("client_scopes_by_name");

/// (realm id, role id) → RoleRecord
pub(super) const ROLES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("roles");
/// (realm id, container id, role name) → role id; the container is the realm id for realm
/// roles and the client uuid for client roles.
pub(super) const ROLES_BY_NAME: TableDefinition<(&str, &str, &str), &str> =
    TableDefinition::new("roles_by_name");

/// (realm id, group id) → GroupRecord
pub(super) const GROUPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("groups");
/// (realm id, parent group id or "" for top level) → child group ids
pub(super) const GROUP_CHILDREN: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("group_children");

/// (realm id, user id) → role ids granted directly
pub(super) const USER_ROLES: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("user_roles");
/// (realm id, role id) → user ids holding it directly
pub(super) const ROLE_USERS: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("role_users");
/// (realm id, group id) → role ids granted to the group
pub(super) const GROUP_ROLES: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("group_roles");
/// (realm id, role id) → group ids holding it
pub(super) const ROLE_GROUPS: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("role_groups");
/// (realm id, user id) → group ids the user is a member of
pub(super) const USER_GROUPS: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("user_groups");
/// (realm id, group id) → member user ids
pub(super) const GROUP_MEMBERS: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("group_members");

/// (realm id, key id) → SigningKeyRecord
pub(super) const SIGNING_KEYS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("signing_keys");

/// (realm id, session id) → SessionRecord
pub(super) const SESSIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("sessions");
/// (realm id, user id) → session ids
pub(super) const USER_SESSIONS: MultimapTableDefinition<(&str, &str), &str> =
    MultimapTableDefinition::new("user_sessions");

/// (realm id, time in ms, event id) → EventRecord; ordered by time for paging and expiry.
pub(super) const EVENTS: TableDefinition<(&str, i64, &str), &[u8]> = TableDefinition::new("events");

/// (realm id, hex SHA-256 of the code) → AuthCodeRecord
pub(super) const AUTH_CODES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("auth_codes");
/// (realm id, flow id) → LoginFlowRecord
pub(super) const LOGIN_FLOWS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("login_flows");
/// (realm id, token jti) → expiry (s): revoked access tokens, kept until they expire.
pub(super) const REVOKED_TOKENS: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("revoked_tokens");
/// (realm id, hex SHA-256 of the device code) → DeviceCodeRecord
pub(super) const DEVICE_CODES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("device_codes");
/// (realm id, user code) → hex SHA-256 of the device code
pub(super) const USER_CODES: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("user_codes");
/// (realm id, kind, id) → JSON: realm configuration objects kept in Keycloak's own
/// representation (identity providers, their mappers, components).
pub(super) const REALM_OBJECTS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("realm_objects");
/// (realm id, user id) → LoginFailureRecord
pub(super) const LOGIN_FAILURES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("login_failures");
