//! First start: the `master` realm, its public `admin-cli` client, the `admin` realm role,
//! and the first administrator (from `PORTCULLIS_ADMIN` / `PORTCULLIS_ADMIN_PASSWORD`, as
//! Keycloak does with `KEYCLOAK_ADMIN`). Each step is one store transaction and is safe to
//! repeat: nothing is created twice.

use crate::clock::Clock;
use crate::crypto::password::{hash_password, Argon2Params, PasswordError};
use crate::crypto::random_id;
use crate::idp::realm::{self, RealmError};
use crate::store::{Conflict, RealmRecord, Store, StoreError, UserRecord};

pub const MASTER_REALM: &str = "master";
pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("the master realm does not exist")]
    NoMasterRealm,
    #[error("a user named \"{0}\" already exists in the master realm")]
    UserExists(String),
    #[error("an administrator already exists")]
    AdminExists,
    #[error("the username must not be empty")]
    EmptyUsername,
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Realm(#[from] RealmError),
}

/// Create the master realm with `admin-cli` and the `admin` role if it does not exist.
/// Returns whether it was created.
/// Also brings realms stored by an older version up to date (their client scopes and
/// authentication flows).
pub fn ensure_master_realm(store: &Store, clock: &dyn Clock) -> Result<bool, BootstrapError> {
    let stale = store
        .read()?
        .realms()?
        .iter()
        .any(|r| r.default_client_scope_ids.is_none());
    if stale {
        let n = store.write(crate::idp::client_scopes::upgrade)?;
        tracing::info!(
            realms = n,
            "created the built-in client scopes of older realms"
        );
    }
    let read = store.read()?;
    let mut flowless = false;
    for r in read.realms()? {
        flowless |= read.auth_flows(&r.id)?.is_empty();
    }
    drop(read);
    if flowless {
        let n = store.write(crate::idp::flows::upgrade)?;
        tracing::info!(
            realms = n,
            "created the built-in authentication flows of older realms"
        );
    }
    let read = store.read()?;
    let mut consoleless = Vec::new();
    for r in read.realms()? {
        if read
            .client_by_client_id(&r.id, crate::idp::console::session::CONSOLE_CLIENT)?
            .is_none()
        {
            consoleless.push(r);
        }
    }
    drop(read);
    if !consoleless.is_empty() {
        store.write(|w| {
            for r in &consoleless {
                realm::ensure_console_client(w, r)?;
            }
            Ok::<_, StoreError>(())
        })?;
        tracing::info!(
            realms = consoleless.len(),
            "created the admin console client of older realms"
        );
    }
    if store.read()?.realm_by_name(MASTER_REALM)?.is_some() {
        return Ok(false);
    }
    let now = clock.now_millis();
    store.write(|w| {
        realm::create_realm(
            w,
            RealmRecord {
                name: MASTER_REALM.into(),
                display_name: Some("Portcullis".into()),
                ..Default::default()
            },
            now,
        )
    })?;
    Ok(true)
}

/// Create an administrator in the master realm holding the `admin` role.
/// Hashing runs here, so call it off any async request path.
pub fn create_admin(
    store: &Store,
    clock: &dyn Clock,
    username: &str,
    password: &str,
    params: &Argon2Params,
) -> Result<String, BootstrapError> {
    create_admin_if(store, clock, username, password, params, false)
}

/// Like [`create_admin`], but only while the master realm has no user (checked inside the
/// write transaction, so two at once create one): the welcome page's first administrator.
pub fn create_first_admin(
    store: &Store,
    clock: &dyn Clock,
    username: &str,
    password: &str,
    params: &Argon2Params,
) -> Result<String, BootstrapError> {
    create_admin_if(store, clock, username, password, params, true)
}

fn create_admin_if(
    store: &Store,
    clock: &dyn Clock,
    username: &str,
    password: &str,
    params: &Argon2Params,
    only_first: bool,
) -> Result<String, BootstrapError> {
    let username = username.trim().to_lowercase();
    if username.is_empty() {
        return Err(BootstrapError::EmptyUsername);
    }
    if password.is_empty() {
        return Err(BootstrapError::EmptyPassword);
    }
    let hashed = hash_password(password, params)?;
    let now = clock.now_millis();
    store.write(|w| {
        let realm = w
            .realm_by_name(MASTER_REALM)?
            .ok_or(BootstrapError::NoMasterRealm)?;
        if only_first && w.user_count(&realm.id)? > 0 {
            return Err(BootstrapError::AdminExists);
        }
        let role = w
            .role_by_name(&realm.id, &realm.id, ADMIN_ROLE)?
            .ok_or(StoreError::Missing("admin role"))?;
        let user_id = random_id();
        let user = UserRecord {
            id: user_id.clone(),
            username: username.clone(),
            enabled: true,
            created_timestamp: now,
            ..Default::default()
        };
        realm::create_user(w, &realm, &user).map_err(|e| match e {
            StoreError::Conflict(Conflict::Username) => {
                BootstrapError::UserExists(username.clone())
            }
            other => other.into(),
        })?;
        w.put_credential(
            &realm.id,
            &user_id,
            &crate::idp::password_policy::password_credential(&hashed, now),
        )?;
        w.grant_user_role(&realm.id, &user_id, &role.id)?;
        Ok(user_id)
    })
}

/// Whether the master realm has any user yet.
pub fn master_has_users(store: &Store) -> Result<bool, BootstrapError> {
    let read = store.read()?;
    let realm = read
        .realm_by_name(MASTER_REALM)?
        .ok_or(BootstrapError::NoMasterRealm)?;
    Ok(read.user_count(&realm.id)? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::password::{verify_password, HashedPassword};

    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            ..Default::default()
        }
    }

    #[test]
    fn first_start_creates_master_once_with_admin_cli_and_admin_role() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let clock = ManualClock::at(1_700_000_000_000);
        assert!(ensure_master_realm(&store, &clock).unwrap());
        assert!(!ensure_master_realm(&store, &clock).unwrap());
        let read = store.read().unwrap();
        let master = read.realm_by_name("master").unwrap().unwrap();
        let cli = read
            .client_by_client_id(&master.id, "admin-cli")
            .unwrap()
            .unwrap();
        assert!(cli.public_client && cli.direct_access_grants_enabled);
        assert!(read
            .role_by_name(&master.id, &master.id, "admin")
            .unwrap()
            .is_some());
        assert_eq!(read.realms().unwrap().len(), 1);
    }

    #[test]
    fn admin_gets_password_and_role_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let clock = ManualClock::at(0);
        ensure_master_realm(&store, &clock).unwrap();
        assert!(!master_has_users(&store).unwrap());
        let id = create_admin(&store, &clock, "Admin", "pw", &cheap()).unwrap();
        let read = store.read().unwrap();
        let master = read.realm_by_name("master").unwrap().unwrap();
        let user = read.user_by_username(&master.id, "admin").unwrap().unwrap();
        assert_eq!(user.id, id);
        let cred = &read.credentials(&master.id, &id).unwrap()[0];
        let stored = HashedPassword {
            secret_data: cred.secret_data.clone(),
            credential_data: cred.credential_data.clone(),
        };
        assert!(verify_password("pw", &stored).unwrap());
        let admin_role = read
            .role_by_name(&master.id, &master.id, "admin")
            .unwrap()
            .unwrap();
        assert!(read
            .user_role_ids(&master.id, &id)
            .unwrap()
            .contains(&admin_role.id));
        drop(read);
        assert!(matches!(
            create_admin(&store, &clock, "admin", "pw2", &cheap()),
            Err(BootstrapError::UserExists(_))
        ));
        assert!(matches!(
            create_admin(&store, &clock, "  ", "pw", &cheap()),
            Err(BootstrapError::EmptyUsername)
        ));
        assert!(master_has_users(&store).unwrap());
    }
}
