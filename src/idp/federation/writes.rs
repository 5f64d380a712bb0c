//! Changes to a directory's user, by its provider's edit mode: `READ_ONLY` refuses changes
//! to what the directory owns (the fields its mappers read, the password); `WRITABLE` writes
//! them to the directory first (profile attributes, the password by the password modify
//! extended operation, `unicodePwd` or `userPassword`, new users with `syncRegistrations`,
//! deletions), and only then to the store; `UNSYNCED` keeps them locally.

use crate::idp::ldap::{self, EditMode, LdapError, Provider, LDAP_ENTRY_DN, LDAP_ID};
use crate::idp::App;
use crate::store::{RealmRecord, StoreError, UserRecord};

/// Why a change of a directory's user was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The directory owns `field` and the provider does not write to it.
    ReadOnly(String),
    /// The directory has a user of that name already.
    Exists,
    /// The realm's password policy refused the password (`validatePasswordPolicy`).
    Policy(String),
    /// The directory refused the change or could not be reached.
    Directory(String),
    Store(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e.to_string())
    }
}

impl From<LdapError> for Refusal {
    fn from(e: LdapError) -> Self {
        Refusal::Directory(e.to_string())
    }
}

/// The provider of a linked user, read from the store.
fn provider(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
) -> Result<Option<Provider>, Refusal> {
    Ok(super::provider_of(&app.store.read()?, realm, user)?)
}

/// The DN of `user`'s entry, checked against the directory before anything is written to
/// it: the entry there must be one of the provider's users and the one imported (its UUID is
/// the user's `LDAP_ID`). `None`: no such entry.
async fn checked_dn(p: &Provider, user: &UserRecord) -> Result<Option<String>, Refusal> {
    let Some(dn) = user.attributes.get(LDAP_ENTRY_DN).and_then(|v| v.first()) else {
        return Ok(None);
    };
    Ok(match p.read(dn).await? {
        Some(entry) if super::same_entry(user, &entry) => Some(entry.dn),
        _ => None,
    })
}

/// [`checked_dn`], which must be there.
async fn dn(p: &Provider, user: &UserRecord) -> Result<String, Refusal> {
    checked_dn(p, user).await?.ok_or_else(|| {
        Refusal::Directory("the user's directory entry is gone or not the one imported".into())
    })
}

/// The fields of `user` no one may change here (for a form to show read-only): what its
/// provider's mappers read from the directory, unless the provider writes them.
pub fn read_only_fields(provider: Option<&Provider>) -> Vec<String> {
    let Some(p) = provider else {
        return Vec::new();
    };
    let mut fields: Vec<String> = match p.edit_mode {
        EditMode::Unsynced => Vec::new(),
        EditMode::ReadOnly => p
            .mappers
            .mapped_fields()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        // The username names the entry: it is not renamed.
        EditMode::Writable => p
            .mappers
            .read_only_fields()
            .iter()
            .map(|s| s.to_string())
            .chain(["username".to_string()])
            .collect(),
    };
    if p.edit_mode != EditMode::Unsynced && !fields.iter().any(|f| f == "username") {
        fields.push("username".into());
    }
    fields
}

/// [`read_only_fields`] of `user`'s provider, read from the store (none for a local user).
pub fn read_only_fields_of(app: &App, realm: &RealmRecord, user: &UserRecord) -> Vec<String> {
    if user.federation_link.is_none() {
        return Vec::new();
    }
    let provider = app
        .store
        .read()
        .ok()
        .and_then(|r| super::provider_of(&r, realm, user).ok().flatten());
    read_only_fields(provider.as_ref())
}

/// The value of `field` on `user`, to compare.
fn field(user: &UserRecord, field: &str) -> Vec<String> {
    crate::idp::user_profile::values(user, field)
}

/// The first field of `fields` that differs between `before` and `after`.
fn changed<'a>(fields: &'a [String], before: &UserRecord, after: &UserRecord) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| field(before, f) != field(after, f))
        .map(String::as_str)
}

/// Check a profile change of `before` into `after` against the user's provider and, for a
/// WRITABLE one, write it to the directory. Call before the store write.
pub async fn update_profile(
    app: &App,
    realm: &RealmRecord,
    before: &UserRecord,
    after: &UserRecord,
) -> Result<(), Refusal> {
    let Some(p) = provider(app, realm, before)? else {
        return Ok(());
    };
    if let Some(f) = changed(&read_only_fields(Some(&p)), before, after) {
        return Err(Refusal::ReadOnly(f.to_string()));
    }
    if p.edit_mode != EditMode::Writable {
        return Ok(());
    }
    let dn = dn(&p, before).await?;
    let dn = dn.as_str();
    let old = p.values_of(before);
    let changes: Vec<(String, Option<String>)> = p
        .values_of(after)
        .into_iter()
        .filter(|(a, v)| old.iter().find(|(b, _)| b == a).map(|(_, w)| w) != Some(v))
        .collect();
    p.modify(dn, &changes).await?;
    if before.enabled != after.enabled {
        p.set_enabled(dn, after.enabled).await?;
    }
    Ok(())
}

/// Where a new password goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordTarget {
    /// Stored locally (a local user, or an `UNSYNCED` provider's).
    Local,
    /// Written to the directory already; nothing to store.
    Directory,
}

/// Set `user`'s password where it lives: for a WRITABLE provider's user in the directory
/// (after the realm's policy when `validatePasswordPolicy`), refused for a READ_ONLY one.
pub async fn set_password(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
    password: &str,
) -> Result<PasswordTarget, Refusal> {
    let Some(p) = provider(app, realm, user)? else {
        // A link to a provider that is gone: the password cannot be set anywhere useful.
        return if user.federation_link.is_some() {
            Err(Refusal::ReadOnly("password".into()))
        } else {
            Ok(PasswordTarget::Local)
        };
    };
    match p.edit_mode {
        EditMode::Unsynced => Ok(PasswordTarget::Local),
        EditMode::ReadOnly => Err(Refusal::ReadOnly("password".into())),
        EditMode::Writable => {
            if p.validate_password_policy {
                let policy =
                    crate::idp::password_policy::Policy::parse(realm.password_policy.as_deref())
                        .map_err(Refusal::Directory)?;
                policy
                    .check(password, user, &[])
                    .map_err(|v| Refusal::Policy(v.message))?;
            }
            p.set_password(&dn(&p, user).await?, password).await?;
            Ok(PasswordTarget::Directory)
        }
    }
}

/// For a new local user: the entry a WRITABLE provider with `syncRegistrations` created for
/// it (the first such provider by priority), with the user linked to it; `None` when no
/// provider takes registrations. Call before the store write; if that fails, undo with
/// [`delete`].
pub async fn register(
    app: &App,
    realm: &RealmRecord,
    user: &mut UserRecord,
) -> Result<Option<Provider>, Refusal> {
    let providers = ldap::providers(&app.store.read()?, &realm.id)?;
    let Some(p) = providers
        .into_iter()
        .find(|p| p.edit_mode == EditMode::Writable && p.sync_registrations)
    else {
        return Ok(None);
    };
    // A name the directory has already is taken.
    if p.find(&user.username).await?.is_some() {
        return Err(Refusal::Exists);
    }
    let entry = p.create(user).await?;
    user.federation_link = Some(p.id.clone());
    user.attributes.insert(LDAP_ID.into(), vec![entry.uuid]);
    user.attributes.insert(LDAP_ENTRY_DN.into(), vec![entry.dn]);
    Ok(Some(p))
}

/// Before a user is deleted: a WRITABLE provider's entry is deleted too (other modes leave
/// the directory alone; the user comes back at its next login or sync).
pub async fn delete(app: &App, realm: &RealmRecord, user: &UserRecord) -> Result<(), Refusal> {
    let Some(p) = provider(app, realm, user)? else {
        return Ok(());
    };
    if p.edit_mode == EditMode::Writable {
        match checked_dn(&p, user).await? {
            Some(dn) => p.delete(&dn).await?,
            // Gone from the directory already, or not this user's: nothing to delete there.
            None => {
                tracing::warn!(realm = %realm.name, provider = %p.name, user = %user.username, "deleting a directory user whose entry is not there");
            }
        }
    }
    Ok(())
}
