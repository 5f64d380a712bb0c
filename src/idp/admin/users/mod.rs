//! `/admin/realms/{realm}/users/...`: users, their passwords and credentials, role
//! mappings, group membership and sessions. This file builds user records from Keycloak's
//! representation (also for imports) and serves one user's create, read, update, delete and
//! password reset; `search.rs` the list and count, `mappings.rs` role mappings and groups,
//! `security.rs` credentials, sessions and brute-force state.

mod mappings;
mod search;
mod security;

use serde_json::{json, Value};

use crate::crypto::password::{hash_password, Argon2Params};
use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::admin::repr::{user_repr, CredentialInput, UserInput};
use crate::idp::admin::{deleted, no_content, ok, Cx, Permission};
use crate::idp::realm;
use crate::store::{CredentialRecord, RealmRecord, UserRecord, Write};

pub(super) use mappings::{groups, groups_count, mappings_repr};
pub(super) use mappings::{join_group, leave_group, map_roles, mapped_roles, role_mappings};
pub(super) use search::{count, list};
pub(super) use security::{
    brute_force_status, clear_brute_force, credential, credentials, federated_identities,
    link_identity, logout, move_credential, remove_totp, sessions, set_label,
    storage_credential_types, unlink_identity, unmanaged_attributes,
};

/// Hash a plain password (or keep Keycloak's pre-hashed form) into a credential record.
fn credential_from_input(
    input: &CredentialInput,
    now: i64,
) -> Result<CredentialRecord, AdminError> {
    credential_with_params(input, now, &Argon2Params::default())
}

/// Replace the plain passwords of `users` with their hashes in Keycloak's stored form
/// (`secretData`/`credentialData`), so that importing them hashes nothing: run it on the
/// hash pool, before a write transaction.
pub(crate) fn prehash_credentials(mut users: Vec<UserInput>) -> Result<Vec<UserInput>, AdminError> {
    for user in &mut users {
        for c in user.credentials.iter_mut().flatten() {
            if c.value.is_some() && c.kind.as_deref().unwrap_or("password") == "password" {
                let record = credential_from_input(c, 0)?;
                c.value = None;
                c.secret_data = Some(record.secret_data);
                c.credential_data = Some(record.credential_data);
            }
        }
    }
    Ok(users)
}

/// [`prehash_credentials`] on a realm representation as JSON (`users[].credentials[]`),
/// keeping every other field as sent.
pub(crate) fn prehash_realm_body(mut body: Value) -> Result<Value, AdminError> {
    let Some(users) = body.get_mut("users").and_then(Value::as_array_mut) else {
        return Ok(body);
    };
    for user in users {
        let Some(creds) = user.get_mut("credentials").and_then(Value::as_array_mut) else {
            continue;
        };
        for c in creds {
            let plain = c.get("value").is_some_and(Value::is_string)
                && c.get("type").and_then(Value::as_str).unwrap_or("password") == "password";
            if !plain {
                continue;
            }
            let input: CredentialInput = serde_json::from_value(c.clone())
                .map_err(|e| AdminError::BadRequest(format!("Invalid credential: {e}")))?;
            let record = credential_from_input(&input, 0)?;
            if let Some(obj) = c.as_object_mut() {
                obj.remove("value");
                obj.insert("secretData".into(), record.secret_data.into());
                obj.insert("credentialData".into(), record.credential_data.into());
            }
        }
    }
    Ok(body)
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

/// Check a user written through the admin API against the realm's user profile: on create
/// every attribute, on update the ones the representation names (realm imports are taken
/// as they are, as in Keycloak).
fn check_profile<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    user: &UserRecord,
    input: &UserInput,
    creating: bool,
) -> Result<(), AdminError> {
    use crate::idp::user_profile::{config, errors_repr, validate, Context};
    if user.service_account_client_id.is_some() {
        return Ok(());
    }
    let named: Option<Vec<String>> = (!creating).then(|| {
        let mut names: Vec<String> = [
            ("username", input.username.is_some()),
            ("email", input.email.is_some()),
            ("firstName", input.first_name.is_some()),
            ("lastName", input.last_name.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(n, _)| n.to_string())
        .collect();
        names.extend(input.attributes.iter().flatten().map(|(k, _)| k.clone()));
        names
    });
    let violations = validate(
        &config(read, &realm.id)?,
        user,
        Context::Admin,
        named.as_deref(),
    );
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AdminError::Profile(errors_repr(&violations)))
    }
}

/// Create a user from its representation (credentials, realm/client roles and groups
/// included) inside the caller's transaction. `hashed` carries credentials hashed
/// beforehand off the transaction; when `None`, any plain passwords are hashed here.
pub(super) fn create_in(
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
    // A realm import's federated user, with its entry's attributes (`POST /users` forgets
    // the link).
    user.federation_link = input.federation_link.clone().filter(|l| !l.is_empty());
    if user.federation_link.is_some() {
        for key in crate::idp::admin::repr::DIRECTORY_ATTRIBUTES {
            if let Some(v) = input.attributes.as_ref().and_then(|a| a.get(key)) {
                user.attributes.insert(key.into(), v.clone().into_vec());
            }
        }
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
    for link in input.federated_identities.iter().flatten() {
        let (Some(alias), Some(id)) = (&link.identity_provider, &link.user_id) else {
            return Err(AdminError::BadRequest(
                "federatedIdentities need identityProvider and userId".into(),
            ));
        };
        if w.object(&realm.id, crate::idp::broker::IDP_KIND, alias)?
            .is_none()
        {
            return Err(AdminError::BadRequest(format!(
                "Identity Provider {alias} does not exist"
            )));
        }
        let name = link.user_name.clone().unwrap_or_else(|| id.clone());
        w.link_federated_identity(&realm.id, &user.id, alias, id, &name)?;
    }
    Ok(user.id)
}

/// Bring an existing user in line with `input` (declarative apply): fields, a password that
/// no longer matches, realm/client roles and groups added. Returns whether anything changed.
pub(super) fn update_in(
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

/// `POST /users`: create a user.
pub(super) async fn create(cx: &Cx<'_>) -> Result<Response, AdminError> {
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
    // A WRITABLE provider that takes registrations gets the user first (and its password);
    // the local copy is linked to the new entry.
    let mut linked = UserRecord::default();
    input
        .apply(&mut linked, true)
        .map_err(AdminError::BadRequest)?;
    let directory = crate::idp::federation::writes::register(cx.app, &realm, &mut linked).await?;
    // Without a directory taking it, a name a directory of the realm has is taken, as a
    // local one is (the new user would shadow the directory's).
    if directory.is_none()
        && crate::idp::federation::claim_directory_name(cx.app, &realm, &linked.username, false)
            .await?
    {
        return Err(AdminError::Conflict(
            "User exists with same username".into(),
        ));
    }
    let hashed = match &directory {
        Some(provider) => {
            let dn = linked.attributes[crate::idp::ldap::LDAP_ENTRY_DN][0].clone();
            for value in input
                .credentials
                .iter()
                .flatten()
                .filter_map(|c| c.value.as_ref())
            {
                if let Err(e) = provider.set_password(&dn, value).await {
                    let _ = provider.delete(&dn).await;
                    return Err(crate::idp::federation::writes::Refusal::from(e).into());
                }
            }
            Vec::new()
        }
        None => hashed,
    };
    let created = cx.app.store.write(|w| {
        let mut granted = super::grants::of_user(w, &realm, &input)?;
        // A new user joins the realm's default groups (as in Keycloak); what they confer
        // counts as granted by this caller.
        for group in &realm.default_group_ids {
            granted.extend(crate::idp::roles::group_conferred_role_ids(
                &*w, &realm.id, group,
            )?);
        }
        cx.caller.may_grant(w, &realm, &granted)?;
        // The realm's default required actions (Keycloak's "Default action").
        let mut input = input.clone();
        let mut actions = input.required_actions.clone().unwrap_or_default();
        for action in crate::idp::required_actions::defaults(&realm) {
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        input.required_actions = Some(actions).filter(|a| !a.is_empty());
        let id = create_with(w, &realm, &input, now, Some(hashed))?;
        if let Some(mut user) = w.user(&realm.id, &id)? {
            check_profile(&**w, &realm, &user, &input, true)?;
            if linked.federation_link.is_some() {
                user.federation_link = linked.federation_link.clone();
                for key in [crate::idp::ldap::LDAP_ID, crate::idp::ldap::LDAP_ENTRY_DN] {
                    user.attributes
                        .insert(key.into(), linked.attributes[key].clone());
                }
                w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
            }
        }
        for group in &realm.default_group_ids {
            if w.group(&realm.id, group)?.is_some() {
                w.add_member(&realm.id, group, &id)
                    .map_err(AdminError::from)?;
            }
        }
        Ok::<_, AdminError>(id)
    });
    match created {
        Ok(id) => Ok(cx.created(&id)),
        Err(e) => {
            // Nothing half-made: the directory's new entry goes with the failed write.
            if let Some(provider) = &directory {
                let _ = provider
                    .delete(&linked.attributes[crate::idp::ldap::LDAP_ENTRY_DN][0])
                    .await;
            }
            Err(e)
        }
    }
}

pub(super) fn load_user(cx: &Cx, realm: &RealmRecord) -> Result<UserRecord, AdminError> {
    cx.app
        .store
        .read()?
        .user(&realm.id, &cx.path.id)?
        .ok_or_else(|| AdminError::NotFound("User not found".into()))
}

/// `GET /users/{id}`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let user = load_user(cx, &realm)?;
    let mut repr = user_repr(&user, false);
    credential_flags(
        &mut repr,
        &cx.app.store.read()?.credentials(&realm.id, &user.id)?,
    );
    Ok(ok(&repr))
}

/// Keycloak's `totp` (the user has an authenticator) and `disableableCredentialTypes`
/// (what an administrator may remove: `otp`) on a full user representation.
pub(super) fn credential_flags(repr: &mut Value, credentials: &[CredentialRecord]) {
    let otp = credentials.iter().any(|c| c.kind == "otp");
    repr["totp"] = otp.into();
    repr["disableableCredentialTypes"] = if otp { json!(["otp"]) } else { json!([]) };
}

/// `PUT /users/{id}`. A directory's user: what its provider owns is refused (READ_ONLY)
/// or written to the directory first (WRITABLE).
pub(super) async fn update(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let input: UserInput = cx.json()?;
    let before = load_user(cx, &realm)?;
    // A directory's user: the change is checked here first (profile, a taken address), then
    // written to a WRITABLE directory, then stored; a store write that fails after all puts
    // the directory's entry back.
    let mut directory_written = None;
    if before.federation_link.is_some() {
        let mut after = before.clone();
        input
            .apply(&mut after, true)
            .map_err(AdminError::BadRequest)?;
        {
            let read = cx.app.store.read()?;
            check_profile(&read, &realm, &after, &input, false)?;
            if let Some(email) = after
                .email
                .as_ref()
                .filter(|_| !realm.duplicate_emails_allowed)
            {
                if after.email != before.email
                    && read
                        .users_by_email(&realm.id, email)?
                        .iter()
                        .any(|u| u.id != before.id)
                {
                    return Err(AdminError::Conflict("User exists with same email".into()));
                }
            }
        }
        crate::idp::federation::writes::update_profile(cx.app, &realm, &before, &after).await?;
        directory_written = Some(after);
    }
    let stored = cx.app.store.write(|w| {
        let mut user = w
            .user(&realm.id, &cx.path.id)?
            .ok_or_else(|| AdminError::NotFound("User not found".into()))?;
        let was_enabled = user.enabled;
        input
            .apply(&mut user, true)
            .map_err(AdminError::BadRequest)?;
        check_profile(&**w, &realm, &user, &input, false)?;
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)
            .map_err(AdminError::from)?;
        if was_enabled && !user.enabled {
            // A disabled user's sessions end at once.
            for s in w.user_sessions(&realm.id, &user.id)? {
                crate::idp::sessions::end_in(w, &realm.id, &s.id)?;
            }
        }
        if !was_enabled && user.enabled {
            // Enabling a user lifts a permanent brute-force lockout, as in Keycloak.
            w.clear_login_failures(&realm.id, Some(&user.id))?;
        }
        Ok::<_, AdminError>(())
    });
    if let (Err(_), Some(after)) = (&stored, &directory_written) {
        let _ =
            crate::idp::federation::writes::update_profile(cx.app, &realm, after, &before).await;
    }
    stored?;
    Ok(no_content())
}

/// `DELETE /users/{id}` (a WRITABLE provider's user is deleted from the directory too).
pub(super) async fn delete(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageUsers)?;
    let user = load_user(cx, &realm)?;
    crate::idp::federation::writes::delete(cx.app, &realm, &user).await?;
    let existed = cx
        .app
        .store
        .write(|w| w.delete_user(&realm.id, &cx.path.id))
        .map_err(AdminError::from)?;
    deleted(existed, "User not found")
}

/// `PUT /users/{id}/reset-password` with `{type, value, temporary}`.
pub(super) async fn reset_password(cx: &Cx<'_>) -> Result<Response, AdminError> {
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
    // A directory's user: refused (READ_ONLY), or set in the directory (WRITABLE); an
    // UNSYNCED provider's user gets a local one, as a local user does.
    use crate::idp::federation::writes::{set_password, PasswordTarget};
    if set_password(cx.app, &realm, &user, &value).await? == PasswordTarget::Directory {
        if temporary {
            cx.app.store.write(|w| {
                if let Some(mut u) = w.user(&realm.id, &user.id)? {
                    if !u.required_actions.iter().any(|a| a == "UPDATE_PASSWORD") {
                        u.required_actions.push("UPDATE_PASSWORD".into());
                        w.put_user(&realm.id, &u, realm.duplicate_emails_allowed)?;
                    }
                }
                Ok::<_, AdminError>(())
            })?;
        }
        return Ok(no_content());
    }
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
