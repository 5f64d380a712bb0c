//! What can go wrong in the store: [`StoreError`], and [`Conflict`] for the unique index a
//! write would have broken. redb's own errors all become [`StoreError::Backend`].

use std::path::PathBuf;

/// Which unique index a write would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    RealmName,
    Username,
    Email,
    ClientId,
    ClientScopeName,
    RoleName,
    GroupName,
    /// The identity (or the user's link to that provider) is already linked.
    FederatedIdentity,
    /// A new record named the id of an existing one.
    Id,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another portcullis process (stop it first)")]
    InUse(PathBuf),
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the store at {path} has schema version {found}, newer than this binary supports ({supported})")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("unique constraint violated: {0:?}")]
    Conflict(Conflict),
    #[error("referenced record does not exist: {0}")]
    Missing(&'static str),
    #[error("a stored record cannot be decoded: {0}")]
    Corrupt(String),
    #[error("store failure: {0}")]
    Backend(String),
}

macro_rules! backend_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(e.to_string())
            }
        }
    )*};
}
backend_errors!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
