//! The PostgreSQL backend: each logical table is a table `kv_<name> (k bytea primary key,
//! v bytea)`; keys keep the byte order of `kv.rs`, so a key range is an index range.
//!
//! Semantics are redb's: a read is a `REPEATABLE READ, READ ONLY` snapshot; a write is
//! one transaction holding a cluster-wide advisory lock from its first statement, so
//! writes are serialised across every node exactly as redb serialises them in one process
//! (each sees all writes committed before it, and all-or-nothing holds). Every write
//! commit notifies `portcullis_store`; each node listens and advances its store
//! generation, which is what its caches are keyed on.
//!
//! The store's API is synchronous (it was redb's). Queries run on a small runtime of
//! their own that drives the connections; a caller on one of the server's worker threads
//! waits through `block_in_place`, so the worker's other tasks move on meanwhile.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;

use super::kv::{Range, Visit};
use super::{Result, StoreError};

/// The advisory lock every write transaction holds (an arbitrary constant: "pcul").
const WRITE_LOCK: i64 = 0x7063_756c;
/// The advisory lock migrations hold, so nodes starting together apply them once.
const MIGRATION_LOCK: i64 = 0x7063_756d;
/// The channel write commits notify.
const CHANNEL: &str = "portcullis_store";
/// Rows fetched per round trip of a scan.
const SCAN_BATCH: i64 = 512;

/// One step of the database's schema. A migration that has shipped never changes: a new
/// table or index is a new entry at the end, with the next version.
struct Migration {
    version: i32,
    name: &'static str,
    /// Key-value tables it creates (`kv_<name>`).
    kv_tables: &'static [&'static str],
}

impl Migration {
    fn sql(&self) -> String {
        self.kv_tables
            .iter()
            .map(|t| {
                format!(
                    "CREATE TABLE IF NOT EXISTS kv_{t} (k bytea PRIMARY KEY, v bytea NOT NULL);\n"
                )
            })
            .collect()
    }
}

/// The database's schema, version by version (recorded in `portcullis_migrations`). The
/// layout of the values inside the tables is the store's own `schema_version`, the same on
/// both backends.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "key-value tables of store schema 2",
        kv_tables: &[
            "meta",
            "realms",
            "realm_names",
            "users",
            "users_by_name",
            "users_by_email",
            "users_by_first_name",
            "users_by_last_name",
            "user_counts",
            "credentials",
            "clients",
            "clients_by_client_id",
            "client_scopes",
            "client_scopes_by_name",
            "roles",
            "roles_by_name",
            "groups",
            "group_children",
            "user_roles",
            "role_users",
            "group_roles",
            "role_groups",
            "user_groups",
            "group_members",
            "signing_keys",
            "sessions",
            "user_sessions",
            "events",
            "auth_codes",
            "login_flows",
            "revoked_tokens",
            "device_codes",
            "user_codes",
            "realm_objects",
            "login_failures",
            "used_once",
            "key_revisions",
            "leases",
            "console_sessions",
            "console_by_sso",
        ],
    },
    Migration {
        version: 2,
        name: "the mail queue",
        kv_tables: &["mail_queue"],
    },
];

fn latest_migration() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// How the PostgreSQL store is reached.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgres://` URL or a libpq key-value string.
    pub url: String,
    /// Connections per node.
    pub pool_size: usize,
    /// Extra CA certificates (PEM) trusted for `sslmode=require`, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long one query may take before the database counts as unreachable.
    pub query_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold the password.
        f.debug_struct("PgOptions")
            .field("pool_size", &self.pool_size)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Parse a database URL (for the configuration's error message).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    url.parse::<tokio_postgres::Config>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Pool and query figures for `/metrics`.
#[derive(Default)]
pub struct PgStats {
    pub queries: AtomicU64,
    pub query_micros: AtomicU64,
    pub failures: AtomicU64,
}

struct Shared {
    pool: Pool,
    rt: Runtime,
    timeout: Duration,
    /// Whether the last attempt to reach the database worked.
    reachable: AtomicBool,
    /// Whether this node hears other nodes' commits (else caches must not be trusted).
    listening: Arc<AtomicBool>,
    stats: PgStats,
}

/// The store's own runtime, shut down without waiting when the last handle goes (which
/// may happen inside another runtime, where waiting is not allowed).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    /// The runtime (`None` only while the store is being dropped).
    fn get(&self) -> Result<&tokio::runtime::Runtime> {
        self.0
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is shutting down".into()))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The open PostgreSQL backend; cheap to clone.
#[derive(Clone)]
pub struct Pg {
    shared: Arc<Shared>,
}

/// Wait for the future `f` makes from synchronous code, wherever that is called from. The connections'
/// I/O runs on the store's runtime; `f` (a driver call: it only talks to a connection's
/// task through channels) is polled right here, inside that runtime's context (for its
/// timers and for deadpool's spawns) and outside any co-operative budget (a budget spent
/// by the caller's task would defer wake-ups that never come while it is blocked here).
/// On a worker of a multi-threaded runtime the wait is `block_in_place`, so the worker's
/// other tasks move on meanwhile.
fn wait<F: Future>(rt: &tokio::runtime::Runtime, f: impl FnOnce() -> F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let run = || {
        let _entered = rt.enter();
        futures_executor::block_on(tokio::task::unconstrained(f()))
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

fn unreachable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the database is unreachable: {e}"))
}

/// An error and its causes, `outer: inner: ...` (a refused TLS certificate is two or
/// three levels down a pool error). kcadm has its own copy: it may name nothing of the
/// crate (`layering::kcadm_is_only_an_http_client`).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// A driver error: a lost or refused connection is `Unavailable` (503, retried by the
/// caller), anything else a backend failure.
fn db_error(e: tokio_postgres::Error) -> StoreError {
    let db = match e.as_db_error() {
        Some(db) if !e.is_closed() => db,
        _ => return unreachable(with_causes(&e)),
    };
    // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 08*: connection.
    let code = db.code().code();
    if code.starts_with("57P") || code.starts_with("08") {
        return unreachable(db.message());
    }
    StoreError::Backend(format!("database: {}", db.message()))
}

fn tls_config(options: &PgOptions) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| StoreError::Backend(format!("store.ca_file {}: {e}", path.display())))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| StoreError::Backend(format!("store.ca_file: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Pg {
    /// Connect, apply migrations under the migration lock, and start listening for other
    /// nodes' commits (which advance `generation`).
    pub fn open(options: &PgOptions, generation: Arc<AtomicU64>) -> Result<Pg> {
        let config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("store.url: {e}")))?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(options)?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("store-db")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = options.query_timeout;
        let pool = {
            let _enter = rt.enter();
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(timeout))
                .create_timeout(Some(timeout))
                .recycle_timeout(Some(timeout))
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?
        };
        let pg = Pg {
            shared: Arc::new(Shared {
                pool,
                rt: Runtime(Some(rt)),
                timeout,
                reachable: AtomicBool::new(true),
                listening: Arc::new(AtomicBool::new(false)),
                stats: PgStats::default(),
            }),
        };
        pg.migrate()?;
        pg.shared
            .rt
            .get()?
            .spawn(listen(config, tls, generation, pg.shared.listening.clone()));
        Ok(pg)
    }

    /// Whether this node hears every commit of the others (while it does not, nothing it
    /// caches may be trusted past one read).
    pub fn listening(&self) -> bool {
        self.shared.listening.load(Ordering::Acquire)
    }

    /// Whether the database answered the last time it was asked.
    pub fn reachable(&self) -> bool {
        self.shared.reachable.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> &PgStats {
        &self.shared.stats
    }

    /// `(connections open, connections idle, max)` of the pool.
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let s = self.shared.pool.status();
        (s.size, s.available, s.max_size)
    }

    /// Ask the database whether it is there (for `/health/ready`).
    pub fn ping(&self) -> bool {
        let ok = self
            .connection()
            .and_then(|c| c.run(|c| async move { c.simple_query("SELECT 1").await.map(|_| ()) }))
            .is_ok();
        self.shared.reachable.store(ok, Ordering::Release);
        ok
    }

    /// A pooled connection.
    fn connection(&self) -> Result<Conn> {
        let got = wait(self.shared.rt.get()?, || self.shared.pool.get());
        match got {
            Ok(client) => Ok(Conn {
                client: Some(Arc::new(client)),
                shared: self.shared.clone(),
                open_txn: false,
                begin_read: AtomicBool::new(false),
            }),
            Err(e) => {
                self.shared.reachable.store(false, Ordering::Release);
                self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                Err(unreachable(with_causes(&e)))
            }
        }
    }

    /// Bring the database's schema up to [`MIGRATIONS`]: the missing versions are applied
    /// in order, all in one transaction with their rows in `portcullis_migrations`, under
    /// a transaction-level advisory lock — nodes starting together wait for each other and
    /// apply each version once, and a failed start leaves nothing half-applied. A database
    /// migrated by a newer binary is refused.
    fn migrate(&self) -> Result<()> {
        let mut conn = self.connection()?;
        conn.open_txn = true;
        let latest = latest_migration();
        let found = conn.run(move |c| async move {
            c.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
                 CREATE TABLE IF NOT EXISTS portcullis_migrations (
                     version integer PRIMARY KEY,
                     name text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await?;
            let found: i32 = c
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM portcullis_migrations",
                    &[],
                )
                .await?
                .get(0);
            if found > latest {
                c.batch_execute("ROLLBACK").await?;
                return Ok(found);
            }
            for m in MIGRATIONS.iter().filter(|m| m.version > found) {
                c.batch_execute(&m.sql()).await?;
                c.execute(
                    "INSERT INTO portcullis_migrations (version, name) VALUES ($1, $2)",
                    &[&m.version, &m.name],
                )
                .await?;
            }
            c.batch_execute("COMMIT").await?;
            Ok(found)
        })?;
        conn.open_txn = false;
        if found > latest {
            return Err(StoreError::SchemaTooNew {
                path: "PostgreSQL (portcullis_migrations)".into(),
                found: found as u32,
                supported: latest as u32,
            });
        }
        if found < latest {
            tracing::info!(from = found, to = latest, "migrated the PostgreSQL schema");
        }
        Ok(())
    }

    /// Begin a read snapshot. The `BEGIN` goes out with the first query (pipelined: one
    /// round trip for both).
    pub fn begin_read(&self) -> Result<PgTxn> {
        let mut conn = self.connection()?;
        conn.open_txn = true;
        conn.begin_read.store(true, Ordering::Release);
        Ok(PgTxn { conn })
    }

    /// Begin a write transaction: it waits for the write lock, so it sees every write
    /// committed before it on any node.
    pub fn begin_write(&self) -> Result<PgTxn> {
        let mut conn = self.connection()?;
        conn.run(|c| async move {
            c.batch_execute(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            ))
            .await
        })?;
        conn.open_txn = true;
        Ok(PgTxn { conn })
    }
}

/// Hear other nodes' commits for as long as the store is open; reconnect when the
/// connection drops. While not listening, `listening` is false and the store treats every
/// cached value as stale.
async fn listen(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    generation: Arc<AtomicU64>,
    listening: Arc<AtomicBool>,
) {
    loop {
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let driver = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                            if tx.send(()).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                // Whatever happened while not listening is unknown: move on once.
                generation.fetch_add(1, Ordering::AcqRel);
                listening.store(true, Ordering::Release);
                while rx.recv().await.is_some() {
                    generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            listening.store(false, Ordering::Release);
            driver.abort();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `WHERE` clause of a key range and its parameters (`$1`, `$2`).
fn key_filter(range: &Range) -> (String, Vec<Vec<u8>>) {
    use std::ops::Bound;
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (bound, incl, excl) in [(&range.0, ">=", ">"), (&range.1, "<=", "<")] {
        let (k, op) = match bound {
            Bound::Included(k) => (k, incl),
            Bound::Excluded(k) => (k, excl),
            Bound::Unbounded => continue,
        };
        params.push(k.clone());
        conditions.push(format!("k {op} ${}", params.len()));
    }
    if conditions.is_empty() {
        (String::new(), params)
    } else {
        (format!("WHERE {}", conditions.join(" AND ")), params)
    }
}

/// A pooled connection, maybe inside a transaction; the transaction is ended (rolled
/// back, or committed for a read-only one) when it is dropped, without waiting for it.
struct Conn {
    client: Option<Arc<Object>>,
    shared: Arc<Shared>,
    open_txn: bool,
    /// A read snapshot's `BEGIN`, not sent yet: it goes with the first query.
    begin_read: AtomicBool,
}

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl Conn {
    /// Run one database call on the store runtime, within the query timeout.
    fn run<T, F, Fut>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Object>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let Some(client) = self.client.clone() else {
            return Err(StoreError::Backend("the connection was given back".into()));
        };
        let timeout = self.shared.timeout;
        let started = Instant::now();
        let begin = self.begin_read.swap(false, Ordering::AcqRel);
        let fut = call(client.clone());
        let work = async move {
            if begin {
                // Sent in this order on the connection, answered in this order.
                let (begun, result) = tokio::join!(client.batch_execute(BEGIN_READ), fut);
                begun?;
                result
            } else {
                fut.await
            }
        };
        let joined = wait(self.shared.rt.get()?, || {
            tokio::time::timeout(timeout, work)
        });
        let stats = &self.shared.stats;
        stats.queries.fetch_add(1, Ordering::Relaxed);
        stats
            .query_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let outcome = match joined {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(db_error(e)),
            Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
        };
        match &outcome {
            Err(StoreError::Unavailable(_)) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                self.shared.reachable.store(false, Ordering::Release);
            }
            _ => self.shared.reachable.store(true, Ordering::Release),
        }
        outcome
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let sql = format!("SELECT v FROM kv_{table} WHERE k = $1");
        let key = key.to_vec();
        self.run(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            let row = c.query_opt(&stmt, &[&key]).await?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    /// One round trip for all of `keys`.
    fn get_many(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        match keys {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.get(table, one)?]),
            _ => {}
        }
        let sql = format!("SELECT k, v FROM kv_{table} WHERE k = ANY($1)");
        let wanted = keys.to_vec();
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = self.run(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            let rows = c.query(&stmt, &[&wanted]).await?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        // A key asked for twice gets its value twice.
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        use std::ops::Bound;
        let (mut lo, mut hi) = range.clone();
        loop {
            let (filter, params) = key_filter(&(lo.clone(), hi.clone()));
            let order = if reverse { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT k, v FROM kv_{table} {filter} ORDER BY k {order} LIMIT {SCAN_BATCH}"
            );
            let rows: Vec<(Vec<u8>, Vec<u8>)> = self.run(move |c| async move {
                let stmt = c.prepare_cached(&sql).await?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                let rows = c.query(&stmt, &refs).await?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = rows.len() as i64 == SCAN_BATCH;
            let mut last = None;
            for (k, v) in rows {
                if !visit(&k, &v)? {
                    return Ok(());
                }
                last = Some(k);
            }
            match (full, last) {
                (true, Some(k)) if reverse => hi = Bound::Excluded(k),
                (true, Some(k)) => lo = Bound::Excluded(k),
                _ => return Ok(()),
            }
        }
    }

    fn count(&self, table: &'static str) -> Result<u64> {
        let sql = format!("SELECT count(*) FROM kv_{table}");
        self.run(move |c| async move {
            let row = c.query_one(&sql, &[]).await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // A read that never queried never began.
        if self.open_txn && !self.begin_read.load(Ordering::Acquire) {
            // Ends the transaction before the connection goes back to the pool; a read
            // has nothing to keep and a write reaching here failed or was abandoned.
            // A connection whose transaction cannot be ended stays out of the pool.
            let discard = |client: Arc<Object>| {
                if let Ok(object) = Arc::try_unwrap(client) {
                    let _ = Object::take(object);
                }
            };
            match self.shared.rt.get() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if client.batch_execute("ROLLBACK").await.is_err() {
                            discard(client);
                        }
                    });
                }
                Err(_) => discard(client),
            }
        }
    }
}

/// A transaction on PostgreSQL: a read snapshot, or a write holding the write lock (only
/// a write is committed; see [`Pg::begin_read`], [`Pg::begin_write`]).
pub struct PgTxn {
    conn: Conn,
}

impl PgTxn {
    pub(super) fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.conn.get(table, key)
    }
    pub(super) fn get_many(
        &self,
        table: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.conn.get_many(table, keys)
    }
    pub(super) fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        self.conn.scan(table, range, reverse, visit)
    }
    pub(super) fn count(&self, table: &'static str) -> Result<u64> {
        self.conn.count(table)
    }

    pub(super) fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        let sql = format!(
            "INSERT INTO kv_{table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        );
        let (key, value) = (key.to_vec(), value.to_vec());
        self.conn.run(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            c.execute(&stmt, &[&key, &value]).await.map(|_| ())
        })
    }

    pub(super) fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<bool> {
        let sql = format!("DELETE FROM kv_{table} WHERE k = $1");
        let key = key.to_vec();
        self.conn.run(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            Ok(c.execute(&stmt, &[&key]).await? > 0)
        })
    }

    pub(super) fn delete_range(&mut self, table: &'static str, range: &Range) -> Result<u64> {
        let (filter, params) = key_filter(range);
        let sql = format!("DELETE FROM kv_{table} {filter}");
        self.conn.run(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            c.execute(&stmt, &refs).await
        })
    }

    /// Commit (and tell every node); `volatile` commits do not wait for the disk, like
    /// redb's volatile commits.
    pub(super) fn commit(mut self, volatile: bool) -> Result<()> {
        let sql = format!(
            "{}NOTIFY {CHANNEL}; COMMIT",
            if volatile {
                "SET LOCAL synchronous_commit TO OFF; "
            } else {
                ""
            }
        );
        let result = self
            .conn
            .run(move |c| async move { c.batch_execute(&sql).await });
        if result.is_ok() {
            self.conn.open_txn = false;
        }
        result
    }
}

/// For tests: databases of their own in the test server `scripts/with-postgres.sh` starts.
#[doc(hidden)]
#[allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]
pub mod testing {
    use super::PgOptions;
    use std::time::Duration;

    /// The test server's URL (`PORTCULLIS_TEST_POSTGRES`).
    pub fn server_url() -> String {
        std::env::var("PORTCULLIS_TEST_POSTGRES").unwrap_or_else(|_| {
            panic!(
                "PORTCULLIS_TEST_POSTGRES is not set: run the tests through \
                 scripts/with-postgres.sh (make test does)"
            )
        })
    }

    /// Run `sql` on the database at `url` outside any store: the rows' values as text.
    pub fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
        let (url, sql) = (url.to_owned(), sql.to_owned());
        // A thread of its own: the caller may be inside a runtime already.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("the test PostgreSQL server answers");
                tokio::spawn(connection);
                let messages = client.simple_query(&sql).await.unwrap();
                messages
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).unwrap_or_default().to_owned())
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            })
        })
        .join()
        .expect("the query ran")
    }

    /// Create an empty database and give options naming it.
    pub fn fresh_database() -> PgOptions {
        let server = server_url();
        let name = format!("pc_{}", uuid::Uuid::new_v4().simple());
        query(&server, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        PgOptions {
            url: url.to_string(),
            pool_size: 4,
            ca_file: None,
            query_timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_create_every_table_once_in_version_order() {
        let mut created: Vec<&str> = MIGRATIONS
            .iter()
            .flat_map(|m| m.kv_tables.iter().copied())
            .collect();
        let count = created.len();
        created.sort_unstable();
        created.dedup();
        assert_eq!(created.len(), count, "a table is created by two migrations");
        let mut all = super::super::tables::ALL.to_vec();
        all.sort_unstable();
        assert_eq!(
            created, all,
            "every store table needs a migration that creates it"
        );
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.version,
                i as i32 + 1,
                "versions count up from 1 without gaps"
            );
        }
    }

    #[test]
    fn nodes_starting_together_apply_each_migration_once() {
        let options = testing::fresh_database();
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let options = options.clone();
                std::thread::spawn(move || Pg::open(&options, Default::default()))
            })
            .collect();
        for node in opened {
            node.join().unwrap().expect("every node opens the store");
        }
        let applied = testing::query(
            &options.url,
            "SELECT version, name FROM portcullis_migrations ORDER BY version",
        );
        let expected: Vec<Vec<String>> = MIGRATIONS
            .iter()
            .map(|m| vec![m.version.to_string(), m.name.to_owned()])
            .collect();
        assert_eq!(applied, expected);
        let tables = testing::query(
            &options.url,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'kv\\_%'",
        );
        assert_eq!(tables, [[super::super::tables::ALL.len().to_string()]]);
    }

    #[test]
    fn a_database_migrated_by_a_newer_binary_is_refused() {
        let options = testing::fresh_database();
        drop(Pg::open(&options, Default::default()).unwrap());
        testing::query(
            &options.url,
            "INSERT INTO portcullis_migrations (version, name) VALUES (999, 'from the future')",
        );
        match Pg::open(&options, Default::default()) {
            Err(StoreError::SchemaTooNew {
                found, supported, ..
            }) => {
                assert_eq!((found, supported), (999, latest_migration() as u32));
            }
            Err(e) => panic!("refused for the wrong reason: {e}"),
            Ok(_) => panic!("a database from a newer binary was opened"),
        }
    }
}
