//! What a password login comes to, and how its user is found: shared by the local check
//! (`authn`) and the directories' (`federation`), which sits below it.

use crate::store::{CredentialRecord, RealmRecord, StoreError, UserRecord};

/// Why a password login failed. Callers show one message for `Invalid` whatever the cause.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthnFailure {
    /// Unknown user, no password credential, or wrong password.
    Invalid,
    /// Right password, disabled account.
    Disabled,
    /// Locked by brute-force protection (shown to the user exactly like `Invalid`).
    Locked,
    /// Too many password checks at once: not checked, try again (503).
    Busy,
}

/// The result of a password check.
#[derive(Debug)]
pub struct Authenticated {
    pub user: UserRecord,
    /// The password was set as temporary: UPDATE_PASSWORD is due.
    pub temporary_password: bool,
    /// The user's authenticators: when there are any, the login is not complete until one
    /// of their codes is verified (and brute-force failures are kept until then).
    pub otp_credentials: Vec<CredentialRecord>,
}

/// Find a user by username, or by e-mail when the realm allows it.
pub fn find_user<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    login: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let login = login.trim();
    if login.is_empty() {
        return Ok(None);
    }
    if let Some(user) = read.user_by_username(&realm.id, login)? {
        return Ok(Some(user));
    }
    if realm.login_with_email_allowed && login.contains('@') {
        let mut found = read.users_by_email(&realm.id, login)?;
        if found.len() == 1 {
            return Ok(found.pop());
        }
    }
    Ok(None)
}
