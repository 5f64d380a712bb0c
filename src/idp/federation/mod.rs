//! LDAP user federation, the local side. Password logins of a user that comes from an LDAP
//! provider (imported before, `federationLink` set) or that the realm does not know yet but
//! a provider does are checked by a bind against the directory; the user is imported on its
//! first login (its entry's UUID and DN kept as `LDAP_ID` / `LDAP_ENTRY_DN`) and refreshed
//! from the directory at every login, groups and roles of the membership mappers included.
//! Brute-force protection counts these attempts as any other. A local user without a
//! federation link is never looked up in a directory.
//!
//! `writes` carries the edit modes (changes refused, written to the directory, or kept
//! locally), `sync` the full, changed-users and periodic syncs, `memberships` the group
//! and role mappers.

pub mod memberships;
pub mod sync;
pub mod writes;

use crate::idp::authn::outcome::{find_user, Authenticated, AuthnFailure};
use crate::idp::brute_force::{self, Outcome};
use crate::idp::ldap::{self, EditMode, Entry, PasswordCheck, Provider, LDAP_ENTRY_DN, LDAP_ID};
use crate::idp::App;
use crate::store::{RealmRecord, StoreError, UserRecord, Write};

pub use sync::{sync, SyncResult};

/// How a password login goes on after the directories had their say.
pub enum Route {
    /// Not a directory's user: the local password decides.
    Local,
    /// A directory's user whose provider keeps changes locally (`UNSYNCED`) and who has a
    /// local password: that password decides.
    LocalLinked,
    /// Decided here.
    Decided(Box<Result<Authenticated, AuthnFailure>>),
}

/// The provider `user` is linked to (enabled or not), if any.
pub fn provider_of<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    user: &UserRecord,
) -> Result<Option<Provider>, StoreError> {
    match &user.federation_link {
        Some(link) => ldap::provider(read, &realm.id, link),
        None => Ok(None),
    }
}

fn unavailable(realm: &RealmRecord, provider: &Provider, e: &ldap::LdapError) {
    tracing::warn!(realm = %realm.name, provider = %provider.name, error = %e, "LDAP unavailable");
}

pub async fn authenticate(
    app: &App,
    realm: &RealmRecord,
    login: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<Route, StoreError> {
    let login = login.trim();
    // A read snapshot: every password login passes here, with or without LDAP.
    let read = app.store.read()?;
    let providers = ldap::providers(&read, &realm.id)?;
    if providers.is_empty() || login.is_empty() {
        return Ok(Route::Local);
    }
    let local = find_user(&read, realm, login)?;
    let local_password = match &local {
        Some(u) => read
            .credentials(&realm.id, &u.id)?
            .iter()
            .any(|c| c.kind == "password"),
        None => false,
    };
    drop(read);
    let decided = |r| Ok(Route::Decided(Box::new(r)));
    let (provider, entry) = match &local {
        Some(user) => {
            let Some(link) = &user.federation_link else {
                return Ok(Route::Local);
            };
            let Some(provider) = providers.iter().find(|p| &p.id == link) else {
                // Its provider is gone or disabled: the user cannot sign in (as Keycloak).
                return decided(Err(AuthnFailure::Invalid));
            };
            match provider.find(&user.username).await {
                // The entry must be the one imported: a username given to someone else
                // after its first owner left the directory is not that account.
                Ok(Some(entry)) if same_entry(user, &entry) => {
                    // UNSYNCED with a local password: that password decides, for an entry
                    // the directory still has and has not disabled.
                    if provider.edit_mode == EditMode::Unsynced && local_password {
                        if entry.disabled == Some(true) {
                            return decided(Err(AuthnFailure::Disabled));
                        }
                        return Ok(Route::LocalLinked);
                    }
                    (provider.clone(), entry)
                }
                Ok(Some(_)) => {
                    tracing::warn!(realm = %realm.name, provider = %provider.name, user = %user.username, "the directory entry of this username is not the one imported (LDAP_ID differs)");
                    return decided(Err(AuthnFailure::Invalid));
                }
                // Gone from the directory: it stops signing in at once.
                Ok(None) => return decided(Err(AuthnFailure::Invalid)),
                Err(e) => {
                    unavailable(realm, provider, &e);
                    return decided(Err(AuthnFailure::Invalid));
                }
            }
        }
        None => {
            let mut found = None;
            for p in &providers {
                match p.find(login).await {
                    Ok(Some(entry)) => {
                        found = Some((p.clone(), entry));
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => unavailable(realm, p, &e),
                }
            }
            match found {
                Some(f) => f,
                // Nobody anywhere: the local check answers (with its equal-cost refusal).
                None => return Ok(Route::Local),
            }
        }
    };
    let now = app.clock.now_millis();
    // A user not imported yet is counted by its directory entry, so guessing its password
    // from many addresses still locks it.
    let user_key = local
        .as_ref()
        .map(|u| u.id.clone())
        .unwrap_or_else(|| format!("ldap:{}:{}", provider.id, entry.uuid));
    let attempt = app
        .store
        .write_volatile(|w| brute_force::begin(w, realm, Some(&user_key), ip, now))?;
    if attempt.locked {
        app.store
            .write(|w| attempt.conclude(w, realm, Outcome::Failed))?;
        return decided(Err(AuthnFailure::Locked));
    }
    let checked = match provider.check_password(&entry, password).await {
        Ok(v) => v,
        Err(e) => {
            unavailable(realm, &provider, &e);
            app.store
                .write(|w| attempt.conclude(w, realm, Outcome::Pending))?;
            return decided(Err(AuthnFailure::Invalid));
        }
    };
    if checked == PasswordCheck::Invalid {
        app.store
            .write(|w| attempt.conclude(w, realm, Outcome::Failed))?;
        return decided(Err(AuthnFailure::Invalid));
    }
    let plan = memberships::plan(
        app,
        realm,
        &provider,
        &entry,
        local.as_ref().map(|u| u.id.as_str()),
    )
    .await;
    let stored = app.store.write(|w| {
        let mut user = import(w, realm, &provider, &entry, local.clone(), now)?;
        memberships::apply(w, realm, &provider, &user.id, &plan)?;
        // Active Directory wants the password changed: right, so in, to change it.
        if (checked == PasswordCheck::MustChange || entry.must_change_password)
            && !user.required_actions.iter().any(|a| a == "UPDATE_PASSWORD")
        {
            user.required_actions.push("UPDATE_PASSWORD".into());
            w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
        }
        let otp: Vec<_> = w
            .credentials(&realm.id, &user.id)?
            .into_iter()
            .filter(|c| c.kind == "otp")
            .collect();
        let outcome = if otp.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Pending
        };
        attempt.conclude(w, realm, outcome)?;
        Ok::<_, StoreError>((user, otp))
    });
    let (user, otp_credentials) = match stored {
        Ok(s) => s,
        Err(StoreError::Conflict(c)) => {
            tracing::warn!(realm = %realm.name, provider = %provider.name, conflict = ?c, "an LDAP user cannot be imported: the name or address is taken");
            return decided(Err(AuthnFailure::Invalid));
        }
        Err(e) => return Err(e),
    };
    if !user.enabled {
        return decided(Err(AuthnFailure::Disabled));
    }
    decided(Ok(Authenticated {
        user,
        temporary_password: false,
        otp_credentials,
    }))
}

/// Whether a directory of the realm has a user named `username` that the realm does not
/// have yet: such a name is taken (a local user created with it would shadow the directory's
/// user). With `import`, that user is imported now (without a login), so the caller finds it
/// as an existing account. A directory that cannot be reached takes no name.
pub async fn claim_directory_name(
    app: &App,
    realm: &RealmRecord,
    username: &str,
    import_it: bool,
) -> Result<bool, StoreError> {
    let username = username.trim().to_lowercase();
    let providers = {
        let read = app.store.read()?;
        let providers = ldap::providers(&read, &realm.id)?;
        if providers.is_empty()
            || username.is_empty()
            || read.user_by_username(&realm.id, &username)?.is_some()
        {
            return Ok(false);
        }
        providers
    };
    for p in &providers {
        match p.find(&username).await {
            Ok(Some(entry)) => {
                if import_it {
                    let now = app.clock.now_millis();
                    let imported = app.store.write(|w| {
                        match w.user_by_username(&realm.id, &entry.username)? {
                            Some(_) => Ok(()),
                            None => import(w, realm, p, &entry, None, now).map(|_| ()),
                        }
                    });
                    if let Err(e) = imported {
                        tracing::warn!(realm = %realm.name, provider = %p.name, error = %e, "a directory user could not be imported");
                    }
                }
                return Ok(true);
            }
            Ok(None) => {}
            Err(e) => unavailable(realm, p, &e),
        }
    }
    Ok(false)
}

/// Create the local copy of an entry, or bring an existing one up to date (an `UNSYNCED`
/// provider's user keeps its local profile once imported).
pub fn import(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    entry: &Entry,
    existing: Option<UserRecord>,
    now: i64,
) -> Result<UserRecord, StoreError> {
    let new = existing.is_none();
    let mut user = match existing {
        Some(u) => u,
        None => UserRecord {
            id: crate::crypto::random_id(),
            username: entry.username.clone(),
            enabled: true,
            created_timestamp: now,
            federation_link: Some(provider.id.clone()),
            ..Default::default()
        },
    };
    let before = user.clone();
    if new || provider.edit_mode != EditMode::Unsynced {
        if entry.email.is_some() && entry.email != user.email {
            user.email_verified = provider.trust_email;
        }
        user.email = entry.email.clone().or(user.email);
        user.first_name = entry.first_name.clone().or(user.first_name);
        user.last_name = entry.last_name.clone().or(user.last_name);
        for (k, v) in &entry.attributes {
            user.attributes.insert(k.clone(), v.clone());
        }
    }
    // Disabled in the directory (Active Directory's account controls): disabled here. The
    // directory never enables a user an administrator disabled here.
    if entry.disabled == Some(true) {
        user.enabled = false;
    }
    user.attributes
        .insert(LDAP_ID.into(), vec![entry.uuid.clone()]);
    user.attributes
        .insert(LDAP_ENTRY_DN.into(), vec![entry.dn.clone()]);
    if new {
        crate::idp::realm::create_user(w, realm, &user)?;
        for group in &realm.default_group_ids {
            if w.group(&realm.id, group)?.is_some() {
                w.add_member(&realm.id, group, &user.id)?;
            }
        }
    } else if user != before {
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
        if before.enabled && !user.enabled {
            // Disabled in the directory: the user's sessions end with it.
            for s in w.user_sessions(&realm.id, &user.id)? {
                crate::idp::sessions::end_in(w, &realm.id, &s.id)?;
            }
        }
    }
    Ok(user)
}

/// Whether a directory entry is the one a user was imported from (same `LDAP_ID`).
pub(crate) fn same_entry(user: &UserRecord, entry: &Entry) -> bool {
    user.attributes
        .get(LDAP_ID)
        .and_then(|v| v.first())
        .is_some_and(|id| id == &entry.uuid)
}
