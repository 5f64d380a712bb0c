//! Password logins of federated users: a user that comes from an LDAP provider (imported
//! before, `federationLink` set) or that the realm does not know yet but a provider does is
//! checked by a bind against the directory, imported on its first login (its entry's UUID and
//! DN kept as `LDAP_ID` / `LDAP_ENTRY_DN`), and refreshed from the directory at every login.
//! Brute-force protection counts these attempts as any other. A local user without a
//! federation link is never looked up in a directory.

use crate::idp::authn::{find_user, Authenticated, AuthnFailure};
use crate::idp::brute_force::{self, Outcome};
use crate::idp::ldap::{self, Entry, Provider, LDAP_ENTRY_DN, LDAP_ID};
use crate::idp::App;
use crate::store::{RealmRecord, StoreError, UserRecord, Write};

/// `None` when the login is not a federated one (the local password check decides).
pub async fn authenticate(
    app: &App,
    realm: &RealmRecord,
    login: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<Option<Result<Authenticated, AuthnFailure>>, StoreError> {
    let login = login.trim();
    // A read snapshot: every password login passes here, with or without LDAP.
    let read = app.store.read()?;
    let providers = ldap::providers(&read, &realm.id)?;
    if providers.is_empty() || login.is_empty() {
        return Ok(None);
    }
    let local = find_user(&read, realm, login)?;
    drop(read);
    let (provider, entry) = match &local {
        Some(user) => {
            let Some(link) = &user.federation_link else {
                return Ok(None);
            };
            let Some(provider) = providers.iter().find(|p| &p.id == link) else {
                // Its provider is gone or disabled: the user cannot sign in (as Keycloak).
                return Ok(Some(Err(AuthnFailure::Invalid)));
            };
            match provider.find(&user.username).await {
                // The entry must be the one imported: a username given to someone else
                // after its first owner left the directory is not that account.
                Ok(Some(entry)) if same_entry(user, &entry) => (provider.clone(), entry),
                Ok(Some(_)) => {
                    tracing::warn!(realm = %realm.name, provider = %provider.name, user = %user.username, "the directory entry of this username is not the one imported (LDAP_ID differs)");
                    return Ok(Some(Err(AuthnFailure::Invalid)));
                }
                Ok(None) => return Ok(Some(Err(AuthnFailure::Invalid))),
                Err(e) => {
                    tracing::warn!(realm = %realm.name, provider = %provider.name, error = %e, "LDAP unavailable");
                    return Ok(Some(Err(AuthnFailure::Invalid)));
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
                    Err(e) => {
                        tracing::warn!(realm = %realm.name, provider = %p.name, error = %e, "LDAP unavailable")
                    }
                }
            }
            match found {
                Some(f) => f,
                // Nobody anywhere: the local check answers (with its equal-cost refusal).
                None => return Ok(None),
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
        return Ok(Some(Err(AuthnFailure::Locked)));
    }
    let verified = match provider.check_password(&entry, password).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(realm = %realm.name, provider = %provider.name, error = %e, "LDAP unavailable");
            app.store
                .write(|w| attempt.conclude(w, realm, Outcome::Pending))?;
            return Ok(Some(Err(AuthnFailure::Invalid)));
        }
    };
    if !verified {
        app.store
            .write(|w| attempt.conclude(w, realm, Outcome::Failed))?;
        return Ok(Some(Err(AuthnFailure::Invalid)));
    }
    let stored = app.store.write(|w| {
        let user = import(w, realm, &provider, &entry, local.clone(), now)?;
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
            return Ok(Some(Err(AuthnFailure::Invalid)));
        }
        Err(e) => return Err(e),
    };
    if !user.enabled {
        return Ok(Some(Err(AuthnFailure::Disabled)));
    }
    Ok(Some(Ok(Authenticated {
        user,
        temporary_password: false,
        otp_credentials,
    })))
}

/// Create the local copy of an entry, or bring an existing one up to date.
pub fn import(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    entry: &Entry,
    existing: Option<UserRecord>,
    now: i64,
) -> Result<UserRecord, StoreError> {
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
    if entry.email.is_some() && entry.email != user.email {
        user.email_verified = false;
    }
    user.email = entry.email.clone().or(user.email);
    user.first_name = entry.first_name.clone().or(user.first_name);
    user.last_name = entry.last_name.clone().or(user.last_name);
    user.attributes
        .insert(LDAP_ID.into(), vec![entry.uuid.clone()]);
    user.attributes
        .insert(LDAP_ENTRY_DN.into(), vec![entry.dn.clone()]);
    if w.user(&realm.id, &user.id)?.is_none() {
        crate::idp::realm::create_user(w, realm, &user)?;
        for group in &realm.default_group_ids {
            if w.group(&realm.id, group)?.is_some() {
                w.add_member(&realm.id, group, &user.id)?;
            }
        }
    } else if user != before {
        w.put_user(&realm.id, &user, realm.duplicate_emails_allowed)?;
    }
    Ok(user)
}

/// Whether a directory entry is the one a user was imported from (same `LDAP_ID`).
fn same_entry(user: &UserRecord, entry: &Entry) -> bool {
    user.attributes
        .get(LDAP_ID)
        .and_then(|v| v.first())
        .is_none_or(|id| id == &entry.uuid)
}

/// Keycloak's `SynchronizationResult` of a sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncResult {
    pub added: usize,
    pub updated: usize,
    pub failed: usize,
}

/// Import every user of the provider (new ones added, known ones refreshed).
pub async fn sync(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
) -> Result<SyncResult, String> {
    let entries = provider.all().await.map_err(|e| e.to_string())?;
    let now = app.clock.now_millis();
    let mut result = SyncResult::default();
    // One transaction per user: a user that cannot be imported (a taken address) leaves
    // nothing behind and does not hold up the others.
    for entry in &entries {
        let outcome = app.store.write(|w| {
            let existing = w.user_by_username(&realm.id, &entry.username)?;
            if let Some(u) = &existing {
                // A local account of that name, or another entry's: left alone.
                if u.federation_link.as_deref() != Some(provider.id.as_str())
                    || !same_entry(u, entry)
                {
                    return Ok(None);
                }
            }
            let known = existing.is_some();
            let before = existing.clone();
            let user = import(w, realm, provider, entry, existing, now)?;
            Ok::<_, StoreError>(Some((known, Some(&user) != before.as_ref())))
        });
        match outcome {
            Ok(Some((false, _))) => result.added += 1,
            Ok(Some((true, true))) => result.updated += 1,
            Ok(Some((true, false))) => {}
            Ok(None) | Err(StoreError::Conflict(_)) => result.failed += 1,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(result)
}
