//! Password authentication shared by the password grant and the login form. Hashing runs
//! on the blocking pool, and an unknown user costs the same hash as a known one, so the
//! answer time does not tell whether a username exists.

use std::sync::OnceLock;

use crate::crypto::password::{
    hash_password, needs_rehash, verify_password, Argon2Params, HashedPassword,
};
use crate::idp::brute_force;
use crate::idp::App;
use crate::store::{CredentialRecord, RealmRecord, StoreError};

pub mod outcome;
pub use outcome::{find_user, Authenticated, AuthnFailure};

/// Check the one-time code of a user whose password was right (`credentials`: their OTP
/// credentials). A locked user's code is refused. A wrong code counts towards brute-force
/// protection like a wrong password, checked and counted in one transaction (so codes sent
/// at once cannot all be tried before the lock); a right one completes the login, which
/// clears the count.
pub fn verify_second_factor(
    app: &App,
    realm: &RealmRecord,
    user_id: &str,
    credentials: &[CredentialRecord],
    code: &str,
    ip: Option<&str>,
) -> Result<bool, StoreError> {
    let now = app.clock.now_millis();
    let policy = crate::idp::otp::OtpPolicy::of(realm);
    app.store.write(|w| {
        let attempt = brute_force::begin(w, realm, Some(user_id), ip, now)?;
        let accepted = !attempt.locked
            && crate::idp::otp::check(
                w,
                &realm.id,
                credentials,
                &policy,
                code,
                (now / 1000) as u64,
            )?;
        let outcome = if accepted {
            brute_force::Outcome::Succeeded
        } else {
            brute_force::Outcome::Failed
        };
        attempt.conclude(w, realm, outcome)?;
        Ok(accepted)
    })
}

/// A hash of nothing in particular, verified when the user does not exist.
fn dummy_hash() -> &'static HashedPassword {
    static DUMMY: OnceLock<HashedPassword> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password("portcullis-timing-equaliser", &Argon2Params::default()).unwrap_or(
            HashedPassword {
                secret_data: String::new(),
                credential_data: String::new(),
            },
        )
    })
}

/// Check `password` for `login` in `realm`. The attempt is counted (and the lock checked)
/// in one transaction before the hash is compared, then settled: a burst of guesses
/// cannot all be checked before the first failure is recorded.
pub async fn authenticate_password(
    app: &App,
    realm: &RealmRecord,
    login: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<Result<Authenticated, AuthnFailure>, StoreError> {
    // Users of an LDAP provider (imported, or not yet known here) are checked against it.
    use crate::idp::federation::Route;
    let linked = match crate::idp::federation::authenticate(app, realm, login, password, ip).await?
    {
        Route::Decided(result) => return Ok(*result),
        Route::Local => false,
        Route::LocalLinked => true,
    };
    let now = app.clock.now_millis();
    // Volatile: losing a count to a crash is harmless; an fsync per attempt is not.
    let (user, stored_record, otp_credentials, attempt) = app.store.write_volatile(|w| {
        // A directory's user signs in with a local password only when its provider keeps
        // changes locally (UNSYNCED) and said so above; never when the provider is gone or
        // disabled.
        let user = find_user(&**w, realm, login)?.filter(|u| linked || u.federation_link.is_none());
        let attempt = brute_force::begin(w, realm, user.as_ref().map(|u| u.id.as_str()), ip, now)?;
        let (passwords, otp): (Vec<_>, Vec<_>) = match &user {
            Some(u) => w
                .credentials(&realm.id, &u.id)?
                .into_iter()
                .filter(|c| c.kind == "password" || c.kind == "otp")
                .partition(|c| c.kind == "password"),
            None => Default::default(),
        };
        let stored = passwords.into_iter().max_by_key(|c| c.created_date);
        Ok::<_, StoreError>((user, stored, otp, attempt))
    })?;
    let temporary = stored_record.as_ref().is_some_and(|c| c.temporary);
    let hashed = stored_record.as_ref().map(|c| HashedPassword {
        secret_data: c.secret_data.clone(),
        credential_data: c.credential_data.clone(),
    });
    let password = password.to_string();
    let known = hashed.is_some();
    let params = Argon2Params::default();
    // Verify, and re-hash an imported (pbkdf2, bcrypt, weaker argon2) hash on success.
    let checked = app
        .hashes
        .run(move || {
            let target = hashed.as_ref().unwrap_or_else(|| dummy_hash());
            let ok = verify_password(&password, target).unwrap_or(false) && known;
            let rehashed = match (&hashed, ok) {
                (Some(h), true) if needs_rehash(h, &params) => {
                    hash_password(&password, &params).ok()
                }
                _ => None,
            };
            (ok, rehashed)
        })
        .await;
    let (verified, rehashed) = match checked {
        Ok(v) => v,
        Err(crate::idp::hashing::Busy) => {
            // Not checked: take the counted attempt back, it was neither right nor wrong.
            app.store
                .write(|w| attempt.conclude(w, realm, brute_force::Outcome::Pending))?;
            return Ok(Err(AuthnFailure::Busy));
        }
    };
    let verified = verified && !attempt.locked;
    let outcome = match &user {
        Some(_) if verified && otp_credentials.is_empty() => brute_force::Outcome::Succeeded,
        // The second factor is still due: the failures so far stay until it is given.
        Some(_) if verified => brute_force::Outcome::Pending,
        _ => brute_force::Outcome::Failed,
    };
    let result = app.store.write(|w| {
        attempt.conclude(w, realm, outcome)?;
        if let (Some(new), Some(old), Some(u), true) = (&rehashed, &stored_record, &user, verified)
        {
            let mut updated = old.clone();
            updated.secret_data = new.secret_data.clone();
            updated.credential_data = new.credential_data.clone();
            w.put_credential(&realm.id, &u.id, &updated)?;
        }
        Ok::<_, StoreError>(())
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record a login attempt");
    }
    // The hash was computed either way, so a lockout does not show in the timing.
    if attempt.locked {
        return Ok(Err(AuthnFailure::Locked));
    }
    match user {
        Some(user) if verified => {
            if !user.enabled {
                return Ok(Err(AuthnFailure::Disabled));
            }
            Ok(Ok(Authenticated {
                user,
                temporary_password: temporary,
                otp_credentials,
            }))
        }
        _ => Ok(Err(AuthnFailure::Invalid)),
    }
}
