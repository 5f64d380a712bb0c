//! The store: redb embedded (the default) or PostgreSQL shared by several nodes, behind
//! one ordered key-value layer (`kv.rs`, backends in `backend.rs` and `postgres.rs`). This
//! module is the only code that touches tables; the rest of the program calls typed
//! functions on [`Read`] and [`Write`]. A logical operation is one
//! write transaction ([`Store::write`]): if the closure fails, nothing it wrote is kept.
//! It knows nothing of HTTP, Keycloak's JSON or policy: uniqueness and referential
//! cleanup are enforced here because they must hold whatever calls it.
//!
//! This file opens the database and runs transactions; `tables.rs` names every table,
//! `kv.rs` lays out keys, `legacy.rs` migrates the schema-1 redb file,
//! `view.rs` holds the typed helpers every reader is built from, and each entity has its
//! own file with its readers (on [`View`]) and writers (on [`Write`]): `realms`, `users`,
//! `clients`, `client_scopes`, `roles` (and role mappings), `groups` (and membership), `keys`, `sessions`
//! (and the rest of login state), `events`, `objects`.

mod backend;
mod backup;
mod client_scopes;
mod clients;
mod cluster;
mod error;
mod events;
mod flows;
mod groups;
mod keys;
mod kv;
mod legacy;
mod mail_queue;
mod objects;
pub mod postgres;
mod realms;
pub mod records;
mod roles;
mod sessions;
mod tables;
mod users;
mod view;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableDatabase};

use backend::{ReadTxn, WriteTxn};
use postgres::{Pg, PgOptions};

pub use backup::Copied;
pub use cluster::ConsoleSessionRecord;
pub use error::{Conflict, Result, StoreError};
pub use mail_queue::QueuedMailRecord;
pub use objects::BROKER_TOKEN;
pub use records::*;
use tables::*;
pub use view::{Read, Txn, View, Write};

/// The schema this binary writes. Bump it with a migration in [`Store::open`].
/// 1: typed redb tables; 2: the byte tables of `kv.rs` (both backends).
pub const SCHEMA_VERSION: u32 = 2;

/// The store file inside the data directory.
pub const STORE_FILE: &str = "portcullis.redb";

/// A handle on the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The redb file (for PostgreSQL, where the file would be: its directory is the data
    /// directory, which holds the control socket).
    path: PathBuf,
    /// Set by a volatile commit, cleared by [`Store::flush`].
    unflushed: Arc<std::sync::atomic::AtomicBool>,
    /// Writes are refused while the data directory's file system has less free space than
    /// this (bytes; 0: never), so a full disk costs writes, never reads or the file.
    min_free: Arc<AtomicU64>,
    /// When the last refusal was logged (seconds since the epoch), to log one a minute.
    refusal_logged: Arc<AtomicU64>,
    /// A write failed on the disk: redb refuses every later one until the file is
    /// reopened, so the server reports itself not ready (`/health/ready`) until restarted.
    io_failed: Arc<std::sync::atomic::AtomicBool>,
    /// Counts committed writes: a value cached with the generation read before its read
    /// transaction began is current while the generation is unchanged.
    generation: Arc<AtomicU64>,
    /// This process among the nodes sharing the store (random; the holder of leases).
    node_id: Arc<str>,
}

#[derive(Clone)]
enum Backend {
    Redb(Arc<Database>),
    Postgres(Pg),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The store's own page cache.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Store {
    /// Open (or create) the store in `data_dir`. Fails with [`StoreError::InUse`] when
    /// another process holds it: redb takes an exclusive file lock.
    ///
    /// A data directory it creates is `0700` and a store file it creates `0600` (keys and
    /// password hashes are inside); existing ones keep their modes.
    pub fn open(data_dir: &Path) -> Result<Store> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let failed = |e: std::io::Error| StoreError::Open {
            path: data_dir.to_path_buf(),
            reason: e.to_string(),
        };
        if !data_dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(failed)?;
        }
        let path = data_dir.join(STORE_FILE);
        // redb's page cache defaults to 1 GiB; the file is in the OS page cache anyway, so a
        // small cache of our own keeps resident memory low without costing much speed.
        // Created `0600` from the first byte (keys and password hashes are inside), not
        // chmod-ed after: a reader in between would keep its handle.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        let db = redb::backends::FileBackend::new(file)
            .and_then(|backend| {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create_with_backend(backend)
            })
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::InUse(data_dir.to_path_buf())
                }
                other => StoreError::Open {
                    path: path.clone(),
                    reason: other.to_string(),
                },
            })?;
        let store = Store::with_backend(Backend::Redb(Arc::new(db)), path, Default::default());
        store.init_redb()?;
        store.stamp_schema()?;
        Ok(store)
    }

    /// Open the PostgreSQL store `options` names, applying its migrations (once, however
    /// many nodes start together). `data_dir` still holds the control socket and the pid
    /// file.
    pub fn open_postgres(data_dir: &Path, options: &PgOptions) -> Result<Store> {
        let generation = Arc::new(AtomicU64::new(0));
        let pg = Pg::open(options, generation.clone())?;
        let store =
            Store::with_backend(Backend::Postgres(pg), data_dir.join(STORE_FILE), generation);
        store.stamp_schema()?;
        Ok(store)
    }

    /// Open the store the configuration names.
    pub fn open_config(config: &crate::config::StoreConfig) -> Result<Store> {
        match &config.postgres {
            None => Store::open(&config.data_dir),
            Some(options) => Store::open_postgres(&config.data_dir, options),
        }
    }

    fn with_backend(backend: Backend, path: PathBuf, generation: Arc<AtomicU64>) -> Store {
        Store {
            backend,
            path,
            unflushed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            min_free: Arc::new(AtomicU64::new(0)),
            refusal_logged: Arc::new(AtomicU64::new(0)),
            io_failed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            generation,
            node_id: crate::crypto::random_token(12).into(),
        }
    }

    /// This process among the nodes sharing the store.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Which backend holds the data: `"redb"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Redb(_) => "redb",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The PostgreSQL backend, for its metrics.
    pub fn postgres(&self) -> Option<&Pg> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Redb(_) => None,
        }
    }

    /// Whether the store can serve: redb's file took every write so far; PostgreSQL
    /// answers.
    pub fn healthy(&self) -> bool {
        match &self.backend {
            Backend::Redb(_) => !self.needs_restart(),
            Backend::Postgres(pg) => pg.ping(),
        }
    }

    /// Refuse writes while the data directory's file system has under `bytes` free
    /// (`store.min_free_space_mb`); 0 turns the check off.
    pub fn set_min_free_space(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// `Err(Unavailable)` when the disk is too full to write safely: redb treats a failed
    /// write as fatal until the file is reopened, so a full disk must be met before it.
    fn check_space(&self) -> Result<()> {
        let min_free = self.min_free.load(Ordering::Relaxed);
        if min_free == 0 || matches!(self.backend, Backend::Postgres(_)) {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let Ok(stat) = rustix::fs::statvfs(dir) else {
            // Not knowing is not a reason to refuse; redb's own error still is.
            return Ok(());
        };
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if free >= min_free {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.refusal_logged.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .refusal_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                dir = %dir.display(),
                free_bytes = free,
                min_free_bytes = min_free,
                "the data directory's disk is almost full: writes are refused (503) until space is freed; reads go on"
            );
        }
        Err(StoreError::Unavailable(format!(
            "{free} bytes free on {}, under store.min_free_space_mb",
            dir.display()
        )))
    }

    /// Whether a write failed on the disk, after which redb takes no more until the server
    /// restarts (with the disk freed or mended).
    pub fn needs_restart(&self) -> bool {
        self.io_failed.load(Ordering::Acquire)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create redb's tables, moving a schema-1 file into them first.
    fn init_redb(&self) -> Result<()> {
        let Backend::Redb(db) = &self.backend else {
            return Ok(());
        };
        let legacy = backend::has_legacy_tables(db)?;
        let txn = db.begin_write()?;
        if legacy {
            let found = {
                use redb::ReadableTable;
                let meta = txn.open_table(redb::TableDefinition::<&str, &str>::new("meta"))?;
                let v = meta.get("schema_version")?;
                v.map(|v| v.value().parse::<u32>().unwrap_or(u32::MAX))
            };
            if found.is_some_and(|v| v > 1) {
                return Err(StoreError::SchemaTooNew {
                    path: self.path.clone(),
                    found: found.unwrap_or_default(),
                    supported: SCHEMA_VERSION,
                });
            }
            let moved = legacy::migrate(&txn)?;
            tracing::info!(
                entries = moved,
                path = %self.path.display(),
                "moved the store from schema 1 to schema {SCHEMA_VERSION}"
            );
            backend::create_redb_tables(&txn)?;
            let mut w = Write {
                view: View {
                    txn: WriteTxn::Redb(Box::new(txn)),
                },
            };
            w.insert(META, "schema_version", &SCHEMA_VERSION.to_string())?;
            let WriteTxn::Redb(txn) = w.view.txn else {
                unreachable!("built above")
            };
            txn.commit()?;
            return Ok(());
        }
        backend::create_redb_tables(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Stamp the schema version on a new store; refuse a newer one.
    fn stamp_schema(&self) -> Result<()> {
        self.write(|w| {
            let found = w
                .get(META, "schema_version")?
                .map(|v| v.parse::<u32>().unwrap_or(u32::MAX));
            match found {
                Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
                    path: self.path.clone(),
                    found: v,
                    supported: SCHEMA_VERSION,
                }),
                Some(_) => Ok(()),
                None => w.insert(META, "schema_version", &SCHEMA_VERSION.to_string()),
            }
        })
    }

    /// How many writes this process has committed. Read it *before* a read transaction
    /// to cache something derived from that transaction: while the generation stays the
    /// same, no write has happened since, and the cached value is current.
    ///
    /// On PostgreSQL it also counts other nodes' commits (heard by `LISTEN`); while this
    /// node cannot hear them, every call returns a new generation, so nothing cached is
    /// trusted.
    pub fn generation(&self) -> u64 {
        if let Backend::Postgres(pg) = &self.backend {
            if !pg.listening() {
                return self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            }
        }
        self.generation.load(Ordering::Acquire)
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Read> {
        let txn = match &self.backend {
            Backend::Redb(db) => ReadTxn::Redb(db.begin_read()?),
            Backend::Postgres(pg) => ReadTxn::Postgres(pg.begin_read()?),
        };
        Ok(View { txn })
    }

    /// Run `f` in one write transaction: committed if it returns `Ok`, rolled back (nothing
    /// kept) if it returns `Err`.
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.write_with(redb::Durability::Immediate, f)
    }

    /// Like [`Store::write`], just as atomic, but the commit reaches the disk at the next
    /// [`Store::flush`] (at most a second later: the server flushes in the background, and
    /// the last handle flushes when dropped). For hot, replaceable state such as
    /// refresh-token rotation, where a crash costs at most a new login.
    pub fn write_volatile<T, E>(
        &self,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let result = self.write_with(redb::Durability::None, f);
        if result.is_ok() {
            self.unflushed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        result
    }

    /// Make every volatile commit durable.
    pub fn flush(&self) -> Result<()> {
        let Backend::Redb(db) = &self.backend else {
            return Ok(());
        };
        if self
            .unflushed
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            let made_durable = db
                .begin_write()
                .map_err(StoreError::from)
                .and_then(|txn| txn.commit().map_err(StoreError::from));
            if let Err(e) = made_durable {
                // Still not durable: the next flush tries again.
                self.unflushed
                    .store(true, std::sync::atomic::Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_with<T, E>(
        &self,
        durability: redb::Durability,
        f: impl FnOnce(&mut Write) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.check_space()?;
        let db = match &self.backend {
            Backend::Redb(db) => db,
            Backend::Postgres(pg) => {
                let mut write = Write {
                    view: View {
                        txn: WriteTxn::Postgres(pg.begin_write()?),
                    },
                };
                let value = f(&mut write)?;
                let WriteTxn::Postgres(txn) = write.view.txn else {
                    unreachable!("begun as PostgreSQL above")
                };
                txn.commit(matches!(durability, redb::Durability::None))?;
                self.generation.fetch_add(1, Ordering::AcqRel);
                return Ok(value);
            }
        };
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                if matches!(e, redb::TransactionError::Storage(ref s) if io_failure(s)) {
                    self.io_failed.store(true, Ordering::Release);
                }
                return Err(StoreError::from(e).into());
            }
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut write = Write {
            view: View {
                txn: WriteTxn::Redb(Box::new(txn)),
            },
        };
        let outcome = f(&mut write);
        let WriteTxn::Redb(txn) = write.view.txn else {
            unreachable!("begun as redb above")
        };
        match outcome {
            Ok(value) => {
                if let Err(e) = txn.commit() {
                    if matches!(e, redb::CommitError::Storage(ref s) if io_failure(s)) {
                        self.io_failed.store(true, Ordering::Release);
                        tracing::error!(
                            error = %e,
                            "a write to the store failed on the disk; the store takes no more writes until the server restarts"
                        );
                    }
                    return Err(StoreError::from(e).into());
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                Ok(value)
            }
            Err(e) => {
                txn.abort().map_err(StoreError::from)?;
                Err(e)
            }
        }
    }
}

/// A failure of the disk itself (or redb remembering one).
fn io_failure(e: &redb::StorageError) -> bool {
    matches!(
        e,
        redb::StorageError::Io(_) | redb::StorageError::PreviousIo
    )
}

impl Drop for Store {
    fn drop(&mut self) {
        // The last handle makes volatile commits durable before the database closes.
        if matches!(&self.backend, Backend::Redb(db) if Arc::strong_count(db) == 1) {
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "could not flush the store at shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// For tests: the store the test run asks for.
#[doc(hidden)]
pub mod testing {
    use std::path::Path;

    use super::Store;

    /// Whether the tests run on PostgreSQL (`PORTCULLIS_TEST_STORE=postgres`; the server
    /// comes from `scripts/with-postgres.sh`) rather than redb.
    pub fn on_postgres() -> bool {
        std::env::var("PORTCULLIS_TEST_STORE").is_ok_and(|v| v == "postgres")
    }

    /// A new, empty store in `dir` (on PostgreSQL: a database of its own).
    #[allow(clippy::expect_used)]
    pub fn open(dir: &Path) -> Store {
        if on_postgres() {
            let options = super::postgres::testing::fresh_database();
            Store::open_postgres(dir, &options).expect("open the test database")
        } else {
            Store::open(dir).expect("open the test store")
        }
    }
}
