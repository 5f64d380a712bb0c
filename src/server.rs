//! Wiring: store, bootstrap, certificates, listeners and the pingora server. Everything
//! that can fail (store in use, port in use, bad certificate) fails here, before pingora
//! starts, with a one-line error; pingora itself only ever sees addresses that were just
//! proven bindable.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};

use crate::bootstrap;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::crypto::password::Argon2Params;
use crate::http::hosts::KnownHosts;
use crate::idp::login::theme::Themes;
use crate::idp::App;
use crate::metrics::Metrics;
use crate::proxy::Gateway;
use crate::store::{Store, StoreError};
use crate::tls::{self, CertResolver, TlsError};

/// Environment variables naming the first administrator (Keycloak: `KEYCLOAK_ADMIN`).
pub const ADMIN_ENV: &str = "PORTCULLIS_ADMIN";
pub const ADMIN_PASSWORD_ENV: &str = "PORTCULLIS_ADMIN_PASSWORD";
/// Keycloak's names for the same, read when ours are unset: `KC_BOOTSTRAP_ADMIN_*` (26) and
/// the older `KEYCLOAK_ADMIN*`.
const KEYCLOAK_ADMIN_ENV: [&str; 2] = ["KC_BOOTSTRAP_ADMIN_USERNAME", "KEYCLOAK_ADMIN"];
const KEYCLOAK_ADMIN_PASSWORD_ENV: [&str; 2] =
    ["KC_BOOTSTRAP_ADMIN_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD"];
/// Keycloak's legacy variable naming realm files to import at start.
pub const IMPORT_ENV: &str = "KEYCLOAK_IMPORT";

fn env_first(ours: &str, theirs: &[&str]) -> Option<String> {
    std::iter::once(ours)
        .chain(theirs.iter().copied())
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr} ({key}): {reason}")]
    Listen {
        key: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error("{0}")]
    Themes(String),
    #[error("import failed: {0}")]
    Import(String),
    #[error("bootstrap failed: {0}")]
    Bootstrap(#[from] bootstrap::BootstrapError),
}

/// The addresses actually bound (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
}

/// How to start.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// Import `DATA_DIR/import/*.json` before serving (existing realms are kept).
    pub import_realm: bool,
}

/// Run the server until SIGTERM (graceful) or SIGINT (immediate).
pub fn run(mut config: Config, options: Options) -> Result<(), ServerError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open_config(&config.store)?;
    store.set_min_free_space(config.store.min_free_space_mb * 1024 * 1024);
    first_start(&store, &config, clock.as_ref())?;
    let realm_files = crate::apply::read_dir(&config.realms_dir)
        .map_err(|e| ServerError::Import(e.to_string()))?;
    if !realm_files.is_empty() {
        for change in crate::apply::apply(&store, clock.as_ref(), &realm_files, false)
            .map_err(|e| ServerError::Import(e.to_string()))?
        {
            tracing::info!("declarative realms: {change}");
        }
    }
    // Keycloak's legacy KEYCLOAK_IMPORT: realm files (comma-separated) imported at start,
    // existing realms kept.
    if let Ok(files) = std::env::var(IMPORT_ENV) {
        for file in files.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let result = crate::import_export::import_file(
                &store,
                clock.as_ref(),
                std::path::Path::new(file),
                false,
            )
            .map_err(|e| ServerError::Import(format!("{IMPORT_ENV}: {e}")))?;
            tracing::info!(?result, "import at start ({IMPORT_ENV})");
        }
    }
    if options.import_realm {
        let dir = config.store.data_dir.join("import");
        if dir.is_dir() {
            for result in crate::import_export::import_dir(&store, clock.as_ref(), &dir, false)
                .map_err(|e| ServerError::Import(e.to_string()))?
            {
                tracing::info!(?result, "import at start");
            }
        } else {
            tracing::warn!(dir = %dir.display(), "--import-realm: no import directory");
        }
    }

    let (table, generated) = tls::load_table(&config.tls)?;
    if generated {
        tracing::warn!(
            dir = %config.tls.certs_dir.display(),
            "no certificate configured: generated a self-signed development certificate for localhost \
             ({}/{}); configure [[tls.certificate]] for production",
            config.tls.certs_dir.display(),
            tls::DEV_CERT
        );
    }
    let cert_names = table.names();
    let resolver = CertResolver::new(table);
    let listeners = Listeners {
        http: config
            .server
            .http
            .map(|a| probe_bind("server.http", a))
            .transpose()?,
        https: config
            .server
            .https
            .map(|a| probe_bind("server.https", a))
            .transpose()?,
    };

    // The rest of the program sees the bound addresses (port 0 resolved).
    config.server.http = listeners.http;
    config.server.https = listeners.https;
    let mut conf = ServerConf {
        threads: config.server.threads,
        // pingora's default work-stealing runtime. Its per-thread runtimes
        // (`work_stealing: false`) measured no cheaper per request here, spawn pooled
        // upstream connections' idle watchers on a random thread, and at shutdown spin in
        // the accept loop ("A Tokio 1.x context was found, but it is being shutdown"),
        // logging without end, instead of exiting.
        work_stealing: true,
        grace_period_seconds: Some(whole_seconds(config.server.shutdown_grace)),
        graceful_shutdown_timeout_seconds: Some(whole_seconds(config.server.shutdown_timeout)),
        ..ServerConf::default()
    };
    let data_dir = config.store.data_dir.display().to_string();
    conf.pid_file = format!("{data_dir}/portcullis.pid");
    conf.upgrade_sock = format!("{data_dir}/portcullis-upgrade.sock");
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let themes =
        Themes::load(Some(&config.themes_dir)).map_err(|e| ServerError::Themes(e.to_string()))?;
    let config = Arc::new(config);
    let app = App::new(
        config.clone(),
        store,
        clock,
        Arc::new(Metrics::new()),
        Arc::new(themes),
    );
    app.set_known_hosts(
        KnownHosts::from_config(&config).with_names(cert_names.iter().map(String::as_str)),
    );
    let keys = app.keys.clone();
    match crate::control::listen(
        &config.store.data_dir,
        app.store.clone(),
        app.clock.clone(),
        Arc::new(move || keys.invalidate_all()),
    ) {
        Ok(path) => tracing::debug!(path = %path.display(), "control socket"),
        // Export and import then need the server stopped, as before; serving goes on.
        Err(e) => tracing::warn!(error = %e, "cannot open the control socket"),
    }
    let gateway = Gateway::new(app.clone());
    let reload = Reload {
        app: app.clone(),
        source: config.source.clone(),
        overrides: config.overrides.clone(),
        routes: gateway.reload_handle(),
        certs: resolver.clone(),
    };
    let filter = gateway.connection_filter();
    let health = gateway.health_checker();
    let routes = gateway.routes();
    let edge = crate::proxy::edge::Edge::new(
        pingora_proxy::http_proxy(&server.configuration, gateway),
        crate::proxy::edge::Limits::of(&config.server),
        routes,
    );
    let mut proxy = pingora_core::services::listening::Service::new("portcullis".into(), edge);
    if let Some(addr) = listeners.http {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(l4_buffer()));
    }
    if let Some(addr) = listeners.https {
        // Paths stay empty: certificates come from the resolver, chosen per handshake by SNI.
        let mut settings = TlsSettings::intermediate("", "").map_err(|e| ServerError::Listen {
            key: "server.https",
            addr,
            reason: e.to_string(),
        })?;
        settings.set_cert_resolver(Arc::new(resolver.clone()));
        settings.enable_h2();
        proxy.add_listener(
            ListenerConfig::tcp(addr.to_string())
                .tls(settings)
                .l4_buffer(l4_buffer()),
        );
    }
    proxy.set_connection_filter(Arc::new(filter));
    server.add_service(proxy);
    server.add_service(background_service("reload", reload));
    server.add_service(background_service("health checks", health));
    server.add_service(background_service(
        "readiness",
        Readiness {
            app: app.clone(),
            listeners,
        },
    ));
    server.add_service(background_service("housekeeping", Housekeeping { app }));
    server.run(RunArgs::default());
    tracing::info!("portcullis stopped");
    Ok(())
}

/// Master realm and first admin; says in the log how to create an admin when none exists.
fn first_start(
    store: &Store,
    config: &Config,
    clock: &dyn crate::clock::Clock,
) -> Result<(), ServerError> {
    if bootstrap::ensure_master_realm(store, clock)? {
        tracing::info!("created the master realm with the admin-cli client");
    }
    if bootstrap::master_has_users(store)? {
        return Ok(());
    }
    let username = config
        .bootstrap
        .admin_username
        .clone()
        .or_else(|| env_first(ADMIN_ENV, &KEYCLOAK_ADMIN_ENV));
    let password = config
        .bootstrap
        .admin_password
        .clone()
        .or_else(|| env_first(ADMIN_PASSWORD_ENV, &KEYCLOAK_ADMIN_PASSWORD_ENV));
    match (username, password) {
        (Some(username), Some(password)) => {
            bootstrap::create_admin(store, clock, &username, &password, &Argon2Params::default())?;
            tracing::info!(%username, "created the first administrator in the master realm");
        }
        _ => tracing::warn!(
            "the master realm has no administrator: set {ADMIN_ENV} and {ADMIN_PASSWORD_ENV} and restart, \
             or stop the server and run `portcullis bootstrap-admin --username NAME` (password from stdin \
             or {ADMIN_PASSWORD_ENV})"
        ),
    }
    Ok(())
}

/// Bind once to prove the address is free (and to resolve port 0), then release it for
/// pingora. The window between the two binds is microseconds; SO_REUSEADDR makes the
/// second bind immediate.
fn probe_bind(key: &'static str, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    match TcpListener::bind(addr) {
        Ok(listener) => listener.local_addr().map_err(|e| ServerError::Listen {
            key,
            addr,
            reason: e.to_string(),
        }),
        Err(e) => Err(ServerError::Listen {
            key,
            addr,
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "address already in use (is another server running?)".into()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (ports below 1024 need privileges)".into()
                }
                _ => e.to_string(),
            },
        }),
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Flips `/health/ready` once every listener accepts connections, and logs the bound
/// addresses in one stable line (`portcullis ready http=... https=...`).
struct Readiness {
    app: App,
    listeners: Listeners,
}

#[async_trait]
impl BackgroundService for Readiness {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if let Some(addr) = self.listeners.http {
            for _ in 0..1000 {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if let Some(addr) = self.listeners.https {
            for _ in 0..1000 {
                if tls::handshake(addr, "localhost").await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.app.set_ready(true);
        let show = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "off".into());
        tracing::info!(
            "portcullis ready http={} https={}",
            show(self.listeners.http),
            show(self.listeners.https)
        );
        let _ = shutdown.changed().await;
        self.app.set_ready(false);
    }
}

/// The buffers pingora puts under every client connection. Its default read buffer is
/// 64 KiB, held for the connection's life: 10,000 idle keep-alive connections cost ~790 MB.
/// Request heads are read by `Edge` into its own buffer, and bodies and TLS records are read
/// in chunks larger than this, which a `BufReader` passes straight through; so a small read
/// buffer costs no syscalls on the paths that matter and keeps an idle connection cheap.
fn l4_buffer() -> L4BufferSettings {
    L4BufferSettings::default().read(4 * 1024)
}

/// SIGHUP re-reads the configuration file and swaps in its routes, IP rules and
/// certificates; connections and requests in flight are not disturbed. A file that does
/// not validate (or certificates that do not load) is refused with an error in the log, and
/// the running configuration stays. Listeners, store, threads and other settings need a
/// restart (or pingora's graceful upgrade).
#[derive(Clone)]
struct Reload {
    source: std::path::PathBuf,
    /// The command line's values win over the file at every reload as at start.
    overrides: crate::config::Overrides,
    routes: crate::proxy::ReloadHandle,
    certs: CertResolver,
    app: App,
}

impl Reload {
    fn reload(&self) -> Result<usize, String> {
        let config = Config::load(&self.source, &self.overrides).map_err(|e| e.to_string())?;
        let (table, _) = tls::load_table(&config.tls).map_err(|e| e.to_string())?;
        let names = table.names();
        self.certs.replace(table);
        self.app.set_known_hosts(
            KnownHosts::from_config(&config).with_names(names.iter().map(String::as_str)),
        );
        self.routes.swap(&config.proxy);
        Ok(config.proxy.routes.len())
    }
}

#[async_trait]
impl BackgroundService for Reload {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload disabled");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                }
            }
            // Reading files, resolving upstream names and loading certificates block.
            let me = self.clone();
            let outcome = tokio::task::spawn_blocking(move || me.reload())
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match outcome {
                Ok(n) => tracing::info!(
                    routes = n,
                    "reloaded {}: routes, IP rules and certificates",
                    self.source.display()
                ),
                Err(e) => {
                    tracing::error!("reload refused, still serving the previous configuration: {e}")
                }
            }
        }
    }
}

/// Periodic store work: make volatile commits durable and send the queued mails that are
/// due every second, drop expired codes, login flows and revocations every minute; every
/// ten seconds, start the LDAP syncs due.
struct Housekeeping {
    app: App,
}

#[async_trait]
impl BackgroundService for Housekeeping {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            tick += 1;
            {
                // Queued mails that are due (claimed by one node each).
                let app = self.app.clone();
                tokio::spawn(async move { crate::idp::email::send_due(&app).await });
            }
            if tick.is_multiple_of(10) {
                // LDAP syncs that are due (each sweep skips while the last one runs).
                let app = self.app.clone();
                tokio::spawn(async move { crate::idp::federation::sync::periodic(&app).await });
            }
            let store = self.app.store.clone();
            let now = self.app.clock.now_millis();
            let purge = tick.is_multiple_of(60);
            let result = tokio::task::spawn_blocking(move || {
                store.flush()?;
                // One node at a time purges (the lease outlives a round; its holder renews
                // it each round, and another node takes over when it stops doing so).
                if purge && store.try_lease("housekeeping", store.node_id(), now, 150_000)? {
                    // Events past their realm's eventsExpiration go too.
                    let realms = store.read()?.realms()?;
                    for realm in realms {
                        crate::idp::login::email_actions::purge_expired(&store, &realm.id, now)?;
                        if let Some(expiration) = realm.events_expiration {
                            store.write(|w| w.expire_events(&realm.id, now - expiration * 1000))?;
                        }
                        // Sessions past their idle or maximum lifetime are refused already;
                        // this frees their space and keeps the sessions gauge honest.
                        store.write(|w| {
                            w.purge_sessions(&realm.id, |s| {
                                !crate::idp::sessions::is_valid(&realm, s, now)
                            })
                        })?;
                    }
                    store
                        .write(|w| w.purge_console_sessions(now - crate::idp::console::IDLE_MS))?;
                    let n = store.write(|w| w.purge_expired(now))?;
                    if n > 0 {
                        tracing::debug!(
                            removed = n,
                            "purged expired codes, login flows and revocations"
                        );
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await;
            if let Ok(Err(e)) = result {
                tracing::error!(error = %e, "store housekeeping failed");
            }
        }
        if let Err(e) = self.app.store.flush() {
            tracing::error!(error = %e, "could not flush the store at shutdown");
        }
    }
}
