//! `/admin/realms/{realm}/users/...`: users, their passwords and credentials, role
//! mappings, group membership and sessions.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::crypto::password::{hash_password, Argon2Params};
use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::realm;
use crate::idp::roles::{expand, group_conferred_role_ids, group_ids_with_ancestors};
use crate::store::{CredentialRecord, RealmRecord, RoleRecord, UserRecord, Write};

use super::groups::group_path;
use super::repr::{credential_repr, group_repr, role_repr, user_repr, CredentialInput, UserInput};
use super::{no_content, ok, Cx, Permission};

/// Hash a plain password (or keep Keycloak's pre-hashed form) into a credential record.
fn credential_from_input(
    input: &CredentialInput,
    now: i64,
) -> Result<CredentialRecord, AdminError> {
    credential_with_params(input, now, &Argon2Params::default())
}

/// The same, hashing with the realm policy's parameters.
fn credential_with_params(
    input: &CredentialInput,
    now: i64,
    params: &Argon2Params,
) -> Result<CredentialRecord, AdminError> {
    let kind = input.kind.clone().unwrap_or_else(|| "password".into());
    let (secret_data, credential_data) =
        match (&input.value, &input.secret_data, &input.credential_data) {
            (Some(value), _, _) if kind == "password" => {
                if value.is_empty() {
                    return Err(AdminError::BadRequest("Password must not be empty".into()));
                }
                let h = hash_password(value, params)
                    .map_err(|e| AdminError::Internal(e.to_string()))?;
                (h.secret_data, h.credential_data)
            }
            (_, Some(secret), Some(data)) => (secret.clone(), data.clone()),
            _ => {
                return Err(AdminError::BadRequest(
                    "Credential needs a value (or secretData and credentialData)".into(),
                ))
            }
        };
    Ok(CredentialRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        kind,
        user_label: input.user_label.clone(),
        created_date: input.created_date.unwrap_or(now),
        secret_data,
        credential_data,
        priority: input.priority.unwrap_or(10),
        temporary: input.temporary.unwrap_or(false),
    })
}

/// Create a user from its representation (credentials, realm/client roles and groups
/// included) inside the caller's transaction. `hashed` carries credentials hashed
/// beforehand off the transaction; when `None`, any plain passwords are hashed here.
pub fn create_in(
    w: &mut Write,
    realm: &RealmRecord,
    input: &UserInput,
    now: i64,
) -> Result<String, AdminError> {
    create_with(w, realm, input, now, None)
}

fn create_with(
    w: &mut Write,
    realm: &RealmRecord,
    input: &UserInput,
    now: i64,
    hashed: Option<Vec<CredentialRecord>>,
) -> Result<String, AdminError> {
    if input
        .username
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        return Err(AdminError::BadRequest("User name is missing".into()));
    }
    let mut user = UserRecord {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id),
        enabled: false,
        created_timestamp: input.created_timestamp.unwrap_or(now),
        ..Default::default()
    };
    input
        .apply(&mut user, true)
        .map_err(AdminError::BadRequest)?;
    if input.enabled.is_none() {
        user.enabled = false;
    }
    if let Some(client_id) = &input.service_account_client_id {
        let client = w
            .client_by_client_id(&realm.id, client_id)?
            .ok_or_else(|| {
                AdminError::BadRequest(format!("Unknown service account client {client_id}"))
            })?;
        user.service_account_client_id = Some(client.id);
    }
    realm::create_user(w, realm, &user).map_err(AdminError::from)?;
    let credentials = match hashed {
        Some(c) => c,
        None => input
            .credentials
            .iter()
            .flatten()
            .map(|c| credential_from_input(c, now))
            .collect::<Result<Vec<_>, _>>()?,
    };
    for c in &credentials {
        w.put_credential(&realm.id, &user.id, c)
            .map_err(AdminError::from)?;
    }
    let roles = super::roles::named_role_ids(
        w,
        &realm.id,
        input.realm_roles.as_deref(),
        input.client_roles.as_ref(),
    )?;
    for role_id in &roles {
        w.grant_user_role(&realm.id, &user.id, role_id)
            .map_err(AdminError::from)?;
    }
    for path in input.groups.iter().flatten() {
        let group = super::groups::find_by_path(w, &realm.id, path)?
            .ok_or_else(|| AdminError::NotFound(format!("Group {path} not found")))?;
        w.add_member(&realm.id, &group.id, &user.id)
            .map_err(AdminError::from)?;
    }
    Ok(user.id)
}

/// Bring an existing user in line with `input` (declarative apply): fields, a password that
/// no longer matches, realm/client roles and groups added. Returns whether anything changed.
pub fn update_in(
    w: &mut Write,
    realm: &RealmRecord,
    existing: &UserRecord,
    input: &UserInput,
    now: i64,
) -> Result<bool, AdminError> {
    let mut user = existing.clone();
    input
        .apply(&mut user, false)
        .map_err(AdminError::BadRequest)?;
    let mut changed = user != *existing;
    if changed {
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)
            .map_err(AdminError::from)?;
    }
    for cred in input.credentials.iter().flatten() {
        let Some(value) = &cred.value else { continue };
        let current = w
            .credentials(&realm.id, &user.id)?
            .into_iter()
            .find(|c| c.kind == "password");
        let matches = current.as_ref().is_some_and(|c| {
            crate::crypto::password::verify_password(
                value,
                &crate::crypto::password::HashedPassword {
                    secret_data: c.secret_data.clone(),
                    credential_data: c.credential_data.clone(),
                },
            )
            .unwrap_or(false)
        });
        if !matches {
            if let Some(old) = current {
                w.delete_credential(&realm.id, &user.id, &old.id)?;
            }
            w.put_credential(&realm.id, &user.id, &credential_from_input(cred, now)?)
                .map_err(AdminError::from)?;
            changed = true;
        }
    }
    let held = w.user_role_ids(&realm.id, &user.id)?;
    let mut wanted = Vec::new();
    for name in input.realm_roles.iter().flatten() {
        wanted.push(
            w.role_by_name(&realm.id, &realm.id, name)?
                .ok_or_else(|| AdminError::NotFound(format!("Role not found: {name}")))?,
        );
    }
    for (client_id, names) in input.client_roles.iter().flatten() {
        let client = w
            .client_by_client_id(&realm.id, client_id)?
            .ok_or_else(|| AdminError::NotFound(format!("Client not found: {client_id}")))?;
        for name in names {
            wanted.push(
                w.role_by_name(&realm.id, &client.id, name)?
                    .ok_or_else(|| AdminError::NotFound(format!("Role not found: {name}")))?,
            );
        }
    }
    for role in wanted {
        if !held.contains(&role.id) {
            w.grant_user_role(&realm.id, &user.id, &role.id)
                .map_err(AdminError::from)?;
            changed = true;
        }
    }
    let member_of = w.user_group_ids(&realm.id, &user.id)?;
    for path in input.groups.iter().flatten() {
        let group = super::groups::find_by_path(&*w, &realm.id, path)?
            .ok_or_else(|| AdminError::NotFound(format!("Group {path} not found")))?;
        if !member_of.contains(&group.id) {
            w.add_member(&realm.id, &group.id, &user.id)
                .map_err(AdminError::from)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// How the `search` parameter matches.
enum Search {
    Exact(String),
    Prefix(String),
    Infix(String),
}

/// Case-insensitive "contains" (or equality when `exact`).
fn matches(value: Option<&str>, wanted: &str, exact: bool) -> bool {
    let Some(value) = value else { return false };
    let value = value.to_lowercase();
    let wanted = wanted.to_lowercase();
    if exact {
        value == wanted
    } else {
        let wanted = wanted.trim_matches('*');
        value.contains(wanted)
    }
}

/// `GET /users`: Keycloak's search and paging.
pub async fn list(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryUsers)?;
    let exact = cx.flag("exact") == Some(true);
    let brief = cx.flag("briefRepresentation") == Some(true);
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    // Keycloak's `search`: `foo` or `foo*` is a prefix, `*foo*` a substring and
    // `"foo"` an exact match, on username, e-mail, first or last name.
    let search = cx
        .query("search")
        .filter(|s| !s.is_empty() && s != "*")
        .map(|s| {
            if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
                Search::Exact(s[1..s.len() - 1].to_lowercase())
            } else if s.starts_with('*') {
                Search::Infix(s.trim_matches('*').to_lowercase())
            } else {
                Search::Prefix(s.trim_end_matches('*').to_lowercase())
            }
        });
    let username = cx.query("username");
    let email = cx.query("email");
    let first_name = cx.query("firstName");
    let last_name = cx.query("lastName");
    let enabled = cx.flag("enabled");
    let read = cx.app.store.read()?;
    let filter = |u: &UserRecord| -> bool {
        if u.service_account_client_id.is_some() {
            return false;
        }
        if let Some(s) = &search {
            let fields = [
                Some(u.username.as_str()),
                u.email.as_deref(),
                u.first_name.as_deref(),
                u.last_name.as_deref(),
            ];
            let hit = fields.iter().flatten().any(|f| {
                let f = f.to_lowercase();
                match s {
                    Search::Exact(w) => &f == w,
                    Search::Prefix(w) => f.starts_with(w.as_str()),
                    Search::Infix(w) => f.contains(w.as_str()),
                }
            });
            if !hit {
                return false;
            }
        }
        username
            .as_ref()
            .is_none_or(|w| matches(Some(&u.username), w, exact))
            && email
                .as_ref()
                .is_none_or(|w| matches(u.email.as_deref(), w, exact))
            && first_name
                .as_ref()
                .is_none_or(|w| matches(u.first_name.as_deref(), w, exact))
            && last_name
                .as_ref()
                .is_none_or(|w| matches(u.last_name.as_deref(), w, exact))
            && enabled.is_none_or(|e| u.enabled == e)
    };
    let unfiltered = search.is_none()
        && username.is_none()
        && email.is_none()
        && first_name.is_none()
        && last_name.is_none()
        && enabled.is_none();
    let page_of = |candidates: Vec<UserRecord>| -> Vec<UserRecord> {
        candidates
            .into_iter()
            .filter(|u| filter(u))
            .skip(first)
            .take(max)
            .collect()
    };
    let out: Vec<UserRecord> = if let (true, Some(name)) = (exact, &username) {
        // Exact username: one index lookup.
        page_of(
            read.user_by_username(&realm.id, name)?
                .into_iter()
                .collect(),
        )
    } else if let Some(Search::Prefix(p) | Search::Exact(p)) = &search {
        // Prefix and exact searches walk the username, e-mail and name indexes.
        page_of(read.users_with_prefix(&realm.id, p, first + max + 1000)?)
    } else if unfiltered {
        // A plain page: skip over index keys, decode only what is returned. Service
        // accounts are not listed: move the offset past those that sort before it.
        let sa_names = service_account_usernames(&read, &realm.id)?;
        let mut offset = first;
        for _ in 0..=sa_names.len() {
            let Some(probe) = read.users_page(&realm.id, offset, 1)?.pop() else {
                break;
            };
            let before = sa_names.iter().filter(|n| **n <= probe.username).count();
            if first + before == offset {
                break;
            }
            offset = first + before;
        }
        read.users_page(&realm.id, offset, max + sa_names.len())?
            .into_iter()
            .filter(|u| u.service_account_client_id.is_none())
            .take(max)
            .collect()
    } else {
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut offset = 0;
        'pages: loop {
            let page = read.users_page(&realm.id, offset, 1000)?;
            if page.is_empty() {
                break;
            }
            offset += page.len();
            for u in page {
                if filter(&u) {
                    if skipped < first {
                        skipped += 1;
                    } else if out.len() < max {
                        out.push(u);
                    } else {
                        break 'pages;
                    }
                }
            }
        }
        out
    };
    Ok(ok(&Value::Array(
        out.iter().map(|u| user_repr(u, brief)).collect(),
    )))
}

/// `POST /users`: create a user.
pub async fn create(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let mut input: UserInput = cx.json()?;
    input.ignore_server_owned();
    // Hash off the async runtime, before the write transaction.
    let now = cx.now_ms;
    let creds = input.credentials.clone().unwrap_or_default();
    let policy = crate::idp::password_policy::Policy::parse(realm.password_policy.as_deref())
        .map_err(AdminError::BadRequest)?;
    let subject = UserRecord {
        username: input.username.clone().unwrap_or_default().to_lowercase(),
        email: input.email.clone(),
        ..Default::default()
    };
    let hashed = cx
        .app
        .hashes
        .run(move || {
            for c in &creds {
                if let Some(v) = &c.value {
                    policy
                        .check(v, &subject, &[])
                        .map_err(|v| AdminError::BadRequest(v.message))?;
                }
            }
            creds
                .iter()
                .map(|c| credential_from_input(c, now))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| AdminError::Busy)??;
    let id = cx.app.store.write(|w| {
        let granted = super::grants::of_user(w, &realm, &input)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        create_with(w, &realm, &input, now, Some(hashed))
    })?;
    Ok(cx.created(&id))
}

/// `GET /users/count`
pub fn count(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryUsers)?;
    let read = cx.app.store.read()?;
    // Service-account users are not counted, as in Keycloak.
    let n = read
        .user_count(&realm.id)?
        .saturating_sub(service_account_usernames(&read, &realm.id)?.len() as u64);
    Ok(ok(&json!(n)))
}

/// The usernames of the realm's service-account users that exist (one lookup per client,
/// not a scan of the users), sorted: a client whose service accounts were switched off may
/// keep its user, and a deleted one is gone.
fn service_account_usernames(
    read: &crate::store::Read,
    realm_id: &str,
) -> Result<Vec<String>, AdminError> {
    let mut names = Vec::new();
    for client in read.clients(realm_id)? {
        let name = format!("service-account-{}", client.client_id.to_lowercase());
        if read
            .user_by_username(realm_id, &name)?
            .is_some_and(|u| u.service_account_client_id.is_some())
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

pub(super) fn load_user(cx: &Cx, realm: &RealmRecord) -> Result<UserRecord, AdminError> {
    cx.app
        .store
        .read()?
        .user(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("User not found".into()))
}

/// `GET /users/{id}`
pub fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    let mut repr = user_repr(&user, false);
    let creds = cx.app.store.read()?.credentials(&realm.id, &user.id)?;
    repr["totp"] = creds.iter().any(|c| c.kind == "otp").into();
    Ok(ok(&repr))
}

/// `PUT /users/{id}`
pub fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let input: UserInput = cx.json()?;
    cx.app.store.write(|w| {
        let mut user = w
            .user(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("User not found".into()))?;
        let was_enabled = user.enabled;
        input
            .apply(&mut user, true)
            .map_err(AdminError::BadRequest)?;
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)
            .map_err(AdminError::from)?;
        if was_enabled && !user.enabled {
            // A disabled user's sessions end at once.
            for s in w.user_sessions(&realm.id, &user.id)? {
                w.delete_session(&realm.id, &s.id)?;
            }
        }
        if !was_enabled && user.enabled {
            // Enabling a user lifts a permanent brute-force lockout, as in Keycloak.
            w.clear_login_failures(&realm.id, Some(&user.id))?;
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `DELETE /users/{id}`
pub fn delete(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let existed = cx
        .app
        .store
        .write(|w| w.delete_user(&realm.id, &cx.path.id))
        .map_err(AdminError::from)?;
    if existed {
        Ok(no_content())
    } else {
        Err(AdminError::NotFound("User not found".into()))
    }
}

/// `PUT /users/{id}/reset-password` with `{type, value, temporary}`.
pub async fn reset_password(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let input: CredentialInput = cx.json()?;
    if input.kind.as_deref().is_some_and(|k| k != "password") {
        return Err(AdminError::BadRequest(
            "Only password credentials can be reset".into(),
        ));
    }
    let value = input
        .value
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AdminError::BadRequest("Password must not be empty".into()))?;
    let user = load_user(cx, &realm)?;
    // Keycloak's default: a reset password is temporary unless told otherwise.
    let temporary = input.temporary.unwrap_or(true);
    let now = cx.now_ms;
    let policy = crate::idp::password_policy::Policy::parse(realm.password_policy.as_deref())
        .map_err(AdminError::BadRequest)?;
    let previous =
        crate::idp::password_policy::previous_hashes(&cx.app.store.read()?, &realm.id, &user.id)?;
    let history = policy.history();
    // Policy check (history compares hashes) and hashing, off the async runtime.
    let credential = cx
        .app
        .hashes
        .run(move || {
            policy
                .check(&value, &user, &previous)
                .map_err(|v| AdminError::BadRequest(v.message))?;
            credential_with_params(
                &CredentialInput {
                    kind: Some("password".into()),
                    value: Some(value),
                    temporary: Some(temporary),
                    ..Default::default()
                },
                now,
                &policy.argon2_params(),
            )
        })
        .await
        .map_err(|_| AdminError::Busy)??;
    cx.app.store.write(|w| {
        let mut user = w
            .user(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("User not found".into()))?;
        crate::idp::password_policy::replace_password(w, &realm.id, &user.id, &credential, history)
            .map_err(AdminError::from)?;
        let has_action = user.required_actions.iter().any(|a| a == "UPDATE_PASSWORD");
        if temporary && !has_action {
            user.required_actions.push("UPDATE_PASSWORD".into());
        } else if !temporary && has_action {
            user.required_actions.retain(|a| a != "UPDATE_PASSWORD");
        }
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)
            .map_err(AdminError::from)?;
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// Which roles a role-mapping view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Granted directly.
    Direct,
    /// Not held (directly or through composites and groups): grantable.
    Available,
    /// Held in any way.
    Composite,
}

/// Role ids a user holds in any way (direct, groups, composites).
fn effective_ids(
    read: &crate::store::Read,
    realm: &str,
    user: &str,
) -> Result<HashSet<String>, AdminError> {
    let mut start = read.user_role_ids(realm, user)?;
    for g in group_ids_with_ancestors(read, realm, user)? {
        start.extend(read.group_role_ids(realm, &g)?);
    }
    Ok(expand(read, realm, start)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

fn role_list(
    cx: &Cx,
    realm: &RealmRecord,
    container: &str,
    view: View,
) -> Result<Vec<RoleRecord>, AdminError> {
    let read = cx.app.store.read()?;
    let all = read.roles(&realm.id, container)?;
    let ids: HashSet<String> = match view {
        View::Direct => read
            .user_role_ids(&realm.id, &cx.path.id)?
            .into_iter()
            .collect(),
        View::Composite | View::Available => effective_ids(&read, &realm.id, &cx.path.id)?,
    };
    Ok(all
        .into_iter()
        .filter(|r| match view {
            View::Available => !ids.contains(&r.id),
            _ => ids.contains(&r.id),
        })
        .collect())
}

/// The roles named in a role-mapping body (`[{id?, name?}]`), resolved in `container`.
#[derive(Deserialize)]
struct RoleRef {
    id: Option<String>,
    name: Option<String>,
}

fn resolve_roles(
    cx: &Cx,
    realm: &RealmRecord,
    container: &str,
) -> Result<Vec<RoleRecord>, AdminError> {
    let refs: Vec<RoleRef> = cx.json()?;
    let read = cx.app.store.read()?;
    let mut out = Vec::new();
    for r in refs {
        let found = match (&r.id, &r.name) {
            (Some(id), _) => read
                .role(&realm.id, id)?
                .filter(|role| role.container_id == container),
            (None, Some(name)) => read.role_by_name(&realm.id, container, name)?,
            (None, None) => None,
        };
        out.push(found.ok_or_else(|| {
            AdminError::NotFound(format!(
                "Could not find role: {}",
                r.name.or(r.id).unwrap_or_default()
            ))
        })?);
    }
    Ok(out)
}

/// The role container a user's mapping path names: the realm, or the client of
/// `/role-mappings/clients/{client}` (`client` true).
fn mapping_container(cx: &Cx, realm: &RealmRecord, client: bool) -> Result<String, AdminError> {
    if !client {
        return Ok(realm.id.clone());
    }
    Ok(cx
        .app
        .store
        .read()?
        .client(&realm.id, &cx.path.client)?
        .ok_or_else(|| AdminError::NotFound("Client not found".into()))?
        .id)
}

/// `GET /users/{id}/role-mappings/realm[/available|/composite]` (`client` false) and
/// `GET /users/{id}/role-mappings/clients/{client}[/available|/composite]` (`client` true).
pub fn mapped_roles(cx: &Cx, client: bool, view: View) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let container = mapping_container(cx, &realm, client)?;
    load_user(cx, &realm)?;
    let roles = role_list(cx, &realm, &container, view)?;
    Ok(ok(&Value::Array(roles.iter().map(role_repr).collect())))
}

/// `POST` (`grant`) and `DELETE` `/users/{id}/role-mappings/realm` and
/// `/users/{id}/role-mappings/clients/{client}` (`client` true), with a list of roles by id
/// or name. A grant is refused for roles the caller may not hand out.
pub fn map_roles(cx: &Cx, client: bool, grant: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let container = mapping_container(cx, &realm, client)?;
    cx.caller.require(&realm.name, Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    let roles = resolve_roles(cx, &realm, &container)?;
    cx.app.store.write(|w| {
        if grant {
            let ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
            cx.caller.may_grant(w, &realm, &ids)?;
        }
        for role in &roles {
            if grant {
                w.grant_user_role(&realm.id, &cx.path.id, &role.id)
                    .map_err(AdminError::from)?;
            } else {
                w.revoke_user_role(&realm.id, &cx.path.id, &role.id)?;
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /users/{id}/role-mappings`: direct realm and client mappings.
pub fn role_mappings(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let read = cx.app.store.read()?;
    let mut realm_mappings = Vec::new();
    let mut client_mappings: BTreeMap<String, Value> = BTreeMap::new();
    for id in read.user_role_ids(&realm.id, &cx.path.id)? {
        let Some(role) = read.role(&realm.id, &id)? else {
            continue;
        };
        if role.client_role {
            if let Some(client) = read.client(&realm.id, &role.container_id)? {
                let entry = client_mappings
                    .entry(client.client_id.clone())
                    .or_insert_with(
                        || json!({"id": client.id, "client": client.client_id, "mappings": []}),
                    );
                if let Some(list) = entry["mappings"].as_array_mut() {
                    list.push(role_repr(&role));
                }
            }
        } else {
            realm_mappings.push(role_repr(&role));
        }
    }
    let mut body = json!({});
    if !realm_mappings.is_empty() {
        body["realmMappings"] = Value::Array(realm_mappings);
    }
    if !client_mappings.is_empty() {
        body["clientMappings"] = json!(client_mappings);
    }
    Ok(ok(&body))
}

/// `GET /users/{id}/groups`
pub fn groups(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    let read = cx.app.store.read()?;
    let mut out = Vec::new();
    for id in read.user_group_ids(&realm.id, &cx.path.id)? {
        if let Some(g) = read.group(&realm.id, &id)? {
            let path = group_path(&read, &realm.id, &g)?;
            out.push(group_repr(
                &g,
                &path,
                read.group_children(&realm.id, Some(&g.id))?.len(),
            ));
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(ok(&Value::Array(out)))
}

/// `PUT /users/{id}/groups/{group}`
pub fn join_group(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    // Joining a group is being granted its roles (and its ancestors').
    cx.app.store.write(|w| {
        let granted = group_conferred_role_ids(w, &realm.id, &cx.path.group)?;
        cx.caller.may_grant(w, &realm, &granted)?;
        w.add_member(&realm.id, &cx.path.group, &cx.path.id)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /users/{id}/groups/{group}`
pub fn leave_group(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app
        .store
        .write(|w| w.remove_member(&realm.id, &cx.path.group, &cx.path.id))
        .map_err(AdminError::from)?;
    Ok(no_content())
}

/// `GET /users/{id}/credentials`
pub fn credentials(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    load_user(cx, &realm)?;
    // Remembered old passwords (passwordHistory) are not credentials of the user.
    let creds: Vec<CredentialRecord> = cx
        .app
        .store
        .read()?
        .credentials(&realm.id, &cx.path.id)?
        .into_iter()
        .filter(|c| c.kind != crate::idp::password_policy::HISTORY_KIND)
        .collect();
    Ok(ok(&Value::Array(
        creds.iter().map(credential_repr).collect(),
    )))
}

/// `DELETE /users/{id}/credentials/{cred}`
pub fn credential(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let existed = cx
        .app
        .store
        .write(|w| {
            // Remembered old passwords are not credentials of the user (they are not
            // listed): deleting one by id would wipe the password history.
            let is_history = w.credentials(&realm.id, &cx.path.id)?.iter().any(|c| {
                c.id == cx.path.cred && c.kind == crate::idp::password_policy::HISTORY_KIND
            });
            if is_history {
                return Ok(false);
            }
            w.delete_credential(&realm.id, &cx.path.id, &cx.path.cred)
        })
        .map_err(AdminError::from)?;
    if existed {
        Ok(no_content())
    } else {
        Err(AdminError::NotFound("Credential not found".into()))
    }
}

/// `GET /users/{id}/sessions`
pub fn sessions(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    let list = cx.app.store.read()?.user_sessions(&realm.id, &user.id)?;
    let out: Vec<Value> = list
        .iter()
        .filter(|s| !s.offline)
        .map(|s| {
            let clients: BTreeMap<String, String> =
                s.clients.keys().map(|c| (c.clone(), c.clone())).collect();
            json!({
                "id": s.id, "username": user.username, "userId": user.id,
                "ipAddress": s.ip_address, "start": s.created_at, "lastAccess": s.last_access,
                "rememberMe": s.remember_me, "clients": clients,
            })
        })
        .collect();
    Ok(ok(&Value::Array(out)))
}

/// `POST /users/{id}/logout`: end every session of the user.
pub fn logout(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    load_user(cx, &realm)?;
    cx.app.store.write(|w| {
        // Offline sessions are consents, not logins: they survive a logout (as in Keycloak).
        for s in w
            .user_sessions(&realm.id, &cx.path.id)?
            .into_iter()
            .filter(|s| !s.offline)
        {
            w.delete_session(&realm.id, &s.id)?;
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// `GET /attack-detection/brute-force/users/{id}`: the user's failures and lock.
pub fn brute_force_status(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let read = cx.app.store.read()?;
    let failure = read
        .login_failure(&realm.id, &cx.path.id)?
        .unwrap_or_default();
    let locked = crate::idp::brute_force::is_locked(&read, &realm, &cx.path.id, None, cx.now_ms)?;
    Ok(ok(&json!({
        "numFailures": failure.num_failures,
        "disabled": locked,
        "lastIPFailure": failure.last_ip_failure.unwrap_or_else(|| "n/a".into()),
        "lastFailure": failure.last_failure,
    })))
}

/// `DELETE /attack-detection/brute-force/users/{id}` (`one`), and
/// `DELETE /attack-detection/brute-force/users` (every user of the realm).
pub fn clear_brute_force(cx: &Cx, one: bool) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let user = one.then_some(cx.path.id.as_str());
    cx.app
        .store
        .write(|w| w.clear_login_failures(&realm.id, user))
        .map_err(AdminError::from)?;
    Ok(no_content())
}
