//! What can go wrong in the store: [`StoreError`], and [`Conflict`] for the unique index a
//! write would have broken. redb's own errors become [`StoreError::Backend`], but for the
//! disk refusing a write, which is [`StoreError::Unavailable`] (503, not 500).

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
    /// The store cannot take writes now (the disk is full, or refused a write): reads still
    /// work; the caller answers 503.
    #[error("the store cannot take writes: {0}")]
    Unavailable(String),
}

/// redb's storage errors: the disk full (no space, over quota, file too large), or an
/// earlier I/O failure redb now remembers, is [`StoreError::Unavailable`] (503); any other
/// I/O failure, a damaged disk, and the rest are backend failures (500, logged).
fn storage(e: redb::StorageError) -> StoreError {
    match e {
        redb::StorageError::Io(io) if disk_full(&io) => StoreError::Unavailable(format!(
            "the disk is full ({io}); free space on the data directory's file system"
        )),
        redb::StorageError::PreviousIo => StoreError::Unavailable(
            "an earlier write failed on the disk; free space and restart the server to recover"
                .into(),
        ),
        other => StoreError::Backend(other.to_string()),
    }
}

/// No space, over quota, or a file over its size limit.
fn disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    const ENOSPC: i32 = 28;
    const EFBIG: i32 = 27;
    const EDQUOT: i32 = 122;
    matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    ) || matches!(e.raw_os_error(), Some(ENOSPC | EFBIG | EDQUOT))
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        storage(e)
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => storage(redb::StorageError::Io(io)),
            redb::Error::PreviousIo => storage(redb::StorageError::PreviousIo),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
