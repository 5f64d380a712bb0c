//! Every table, declared in one place (see `kv.rs` for how keys are laid out). Keys start with the realm id so that a realm's
//! data is one contiguous range (cheap to export, cheap to delete). Values are JSON
//! records (see `records.rs`), which lets fields be added with serde defaults without a
//! migration.

use super::kv::{Bytes, Multimap, Table, I, S, U};

/// `schema_version` and other store-wide facts.
pub(super) const META: Table<S, S> = Table::new("meta");

/// realm id → RealmRecord
pub(super) const REALMS: Table<S, Bytes> = Table::new("realms");
/// realm name → realm id
pub(super) const REALM_NAMES: Table<S, S> = Table::new("realm_names");

/// (realm id, user id) → UserRecord
pub(super) const USERS: Table<(S, S), Bytes> = Table::new("users");
/// (realm id, lower-case username) → user id
pub(super) const USERS_BY_NAME: Table<(S, S), S> = Table::new("users_by_name");
/// (realm id, lower-case e-mail) → user ids (several only when the realm allows duplicates)
pub(super) const USERS_BY_EMAIL: Multimap<(S, S), S> = Multimap::new("users_by_email");

/// (realm id, lower-case first name) → user ids; prefix search.
pub(super) const USERS_BY_FIRST_NAME: Multimap<(S, S), S> = Multimap::new("users_by_first_name");
/// (realm id, lower-case last name) → user ids; prefix search.
pub(super) const USERS_BY_LAST_NAME: Multimap<(S, S), S> = Multimap::new("users_by_last_name");
/// realm id → number of users (kept with every insert and delete).
pub(super) const USER_COUNTS: Table<S, U> = Table::new("user_counts");

/// (realm id, user id, credential id) → CredentialRecord
pub(super) const CREDENTIALS: Table<(S, S, S), Bytes> = Table::new("credentials");

/// (realm id, client uuid) → ClientRecord
pub(super) const CLIENTS: Table<(S, S), Bytes> = Table::new("clients");
/// (realm id, clientId) → client uuid
pub(super) const CLIENTS_BY_CLIENT_ID: Table<(S, S), S> = Table::new("clients_by_client_id");

/// (realm id, client scope id) → ClientScopeRecord
pub(super) const CLIENT_SCOPES: Table<(S, S), Bytes> = Table::new("client_scopes");
/// (realm id, client scope name) → client scope id
pub(super) const CLIENT_SCOPES_BY_NAME: Table<(S, S), S> = Table::new("client_scopes_by_name");

/// (realm id, role id) → RoleRecord
pub(super) const ROLES: Table<(S, S), Bytes> = Table::new("roles");
/// (realm id, container id, role name) → role id; the container is the realm id for realm
/// roles and the client uuid for client roles.
pub(super) const ROLES_BY_NAME: Table<(S, S, S), S> = Table::new("roles_by_name");

/// (realm id, group id) → GroupRecord
pub(super) const GROUPS: Table<(S, S), Bytes> = Table::new("groups");
/// (realm id, parent group id or "" for top level) → child group ids
pub(super) const GROUP_CHILDREN: Multimap<(S, S), S> = Multimap::new("group_children");

/// (realm id, user id) → role ids granted directly
pub(super) const USER_ROLES: Multimap<(S, S), S> = Multimap::new("user_roles");
/// (realm id, role id) → user ids holding it directly
pub(super) const ROLE_USERS: Multimap<(S, S), S> = Multimap::new("role_users");
/// (realm id, group id) → role ids granted to the group
pub(super) const GROUP_ROLES: Multimap<(S, S), S> = Multimap::new("group_roles");
/// (realm id, role id) → group ids holding it
pub(super) const ROLE_GROUPS: Multimap<(S, S), S> = Multimap::new("role_groups");
/// (realm id, user id) → group ids the user is a member of
pub(super) const USER_GROUPS: Multimap<(S, S), S> = Multimap::new("user_groups");
/// (realm id, group id) → member user ids
pub(super) const GROUP_MEMBERS: Multimap<(S, S), S> = Multimap::new("group_members");

/// (realm id, key id) → SigningKeyRecord
pub(super) const SIGNING_KEYS: Table<(S, S), Bytes> = Table::new("signing_keys");

/// (realm id, session id) → SessionRecord
pub(super) const SESSIONS: Table<(S, S), Bytes> = Table::new("sessions");
/// (realm id, user id) → session ids
pub(super) const USER_SESSIONS: Multimap<(S, S), S> = Multimap::new("user_sessions");

/// (realm id, time in ms, event id) → EventRecord; ordered by time for paging and expiry.
pub(super) const EVENTS: Table<(S, I, S), Bytes> = Table::new("events");

/// (realm id, hex SHA-256 of the code) → AuthCodeRecord
pub(super) const AUTH_CODES: Table<(S, S), Bytes> = Table::new("auth_codes");
/// (realm id, flow id) → LoginFlowRecord
pub(super) const LOGIN_FLOWS: Table<(S, S), Bytes> = Table::new("login_flows");
/// (realm id, token jti) → expiry (s): revoked access tokens, kept until they expire.
pub(super) const REVOKED_TOKENS: Table<(S, S), I> = Table::new("revoked_tokens");
/// (realm id, hex SHA-256 of the device code) → DeviceCodeRecord
pub(super) const DEVICE_CODES: Table<(S, S), Bytes> = Table::new("device_codes");
/// (realm id, user code) → hex SHA-256 of the device code
pub(super) const USER_CODES: Table<(S, S), S> = Table::new("user_codes");
/// (realm id, kind, id) → JSON: realm configuration objects kept in Keycloak's own
/// representation (identity providers, their mappers, components).
pub(super) const REALM_OBJECTS: Table<(S, S, S), Bytes> = Table::new("realm_objects");
/// (realm id, user id) → LoginFailureRecord
pub(super) const LOGIN_FAILURES: Table<(S, S), Bytes> = Table::new("login_failures");

/// (realm id, key) → expiry (s): values used once (a one-time code's time step, a client
/// assertion's `jti`), kept until they could no longer be used anyway.
pub(super) const USED_ONCE: Table<(S, S), I> = Table::new("used_once");
/// realm id → the revision of its signing keys (changes with every key change).
pub(super) const KEY_REVISIONS: Table<S, U> = Table::new("key_revisions");
/// lease name → `{holder, until}`: which node does a piece of housekeeping.
pub(super) const LEASES: Table<S, Bytes> = Table::new("leases");
/// SHA-256 of a console session cookie → ConsoleSessionRecord
pub(super) const CONSOLE_SESSIONS: Table<S, Bytes> = Table::new("console_sessions");
/// SSO session id → the console session (cookie hash) made from it
pub(super) const CONSOLE_BY_SSO: Table<S, S> = Table::new("console_by_sso");
/// mail id → QueuedMailRecord: mails not sent yet (tried again by any node).
pub(super) const MAIL_QUEUE: Table<S, Bytes> = Table::new("mail_queue");

/// Every table's name, for creating them, backing them up and copying them between backends.
pub(super) const ALL: &[&str] = &[
    "meta",
    "realms",
    "realm_names",
    "users",
    "users_by_name",
    "users_by_email",
    "users_by_first_name",
    "users_by_last_name",
    "user_counts",
    "credentials",
    "clients",
    "clients_by_client_id",
    "client_scopes",
    "client_scopes_by_name",
    "roles",
    "roles_by_name",
    "groups",
    "group_children",
    "user_roles",
    "role_users",
    "group_roles",
    "role_groups",
    "user_groups",
    "group_members",
    "signing_keys",
    "sessions",
    "user_sessions",
    "events",
    "auth_codes",
    "login_flows",
    "revoked_tokens",
    "device_codes",
    "user_codes",
    "realm_objects",
    "login_failures",
    "used_once",
    "key_revisions",
    "leases",
    "console_sessions",
    "console_by_sso",
    "mail_queue",
];
