//! The validated configuration model: the typed values the rest of the program receives
//! (as `Arc<Config>`), with their meaning documented. Only types, their defaults and small
//! accessors live here; how they are read and checked is in `load` and `validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages and reloads).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub bootstrap: BootstrapConfig,
    /// Where login and e-mail themes are looked for (the default theme is built in).
    pub themes_dir: PathBuf,
    /// Declarative realm files (`*.toml`), applied at start and by `portcullis apply`.
    pub realms_dir: PathBuf,
    pub proxy: ProxyConfig,
    /// The command-line values applied over the file (kept for reloads).
    pub overrides: Overrides,
}

/// Proxy-wide settings and the routes to upstream apps.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Peers whose `X-Forwarded-For` is believed (the right-most untrusted entry is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// When non-empty, only these clients are served at all.
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
    pub routes: Vec<RouteConfig>,
    /// How long a checked session or bearer token is trusted before the store is asked
    /// again (how late a revocation takes effect at most).
    pub session_check_interval: Duration,
    /// Which headers describe the original request in forward-auth calls.
    pub forward_auth_headers: ForwardAuthHeaders,
}

/// The header set a forward-auth caller uses. The two sets are never mixed: a client can
/// add headers of the set its proxy does not send, and they must not be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAuthHeaders {
    /// By which set is present; a request carrying both is refused (400).
    Auto,
    /// nginx `auth_request`: `X-Original-URL`, `X-Original-Method`.
    Original,
    /// Traefik, Caddy: `X-Forwarded-Proto`, `-Host`, `-Uri`, `-Method`.
    Forwarded,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            trusted_proxies: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            routes: Vec::new(),
            session_check_interval: Duration::from_secs(5),
            forward_auth_headers: ForwardAuthHeaders::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: the parent, `example.com`; matches exactly one more label.
    Wildcard(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAuth {
    None,
    /// A login session (browsers are sent to the realm's login).
    Session,
    /// An access token of the realm in `Authorization: Bearer`.
    Bearer,
    SessionOrBearer,
}

impl RouteAuth {
    pub fn accepts_session(self) -> bool {
        matches!(self, RouteAuth::Session | RouteAuth::SessionOrBearer)
    }

    pub fn accepts_bearer(self) -> bool {
        matches!(self, RouteAuth::Bearer | RouteAuth::SessionOrBearer)
    }
}

/// Who may use a route that requires authentication, and what the upstream is told.
#[derive(Debug, Clone)]
pub struct RouteAccess {
    pub realm: String,
    /// The client the gateway logs in as (its redirect URIs must allow
    /// `https://HOST/_portcullis/callback`).
    pub client: String,
    /// Path prefixes (normalised) served without authentication.
    pub public_paths: Vec<String>,
    pub policy: Policy,
    pub pass_access_token: bool,
    pub pass_authorization_header: bool,
    pub jwt_assertion: bool,
    /// A path of this route that signs the user out (besides `/_portcullis/sign_out`).
    pub signout_path: Option<String>,
    pub headers: IdentityHeaderNames,
}

/// Required roles and groups; empty means any authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub realm_roles: Vec<String>,
    /// (clientId, role).
    pub client_roles: Vec<(String, String)>,
    /// Group paths (`/staff`); members of subgroups count as members.
    pub groups: Vec<String>,
    /// Every listed role and group (`all`) instead of at least one (`any`).
    pub require_all: bool,
}

/// The header names identity is injected under.
#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    pub user: http::HeaderName,
    pub email: http::HeaderName,
    pub preferred_username: http::HeaderName,
    pub groups: http::HeaderName,
    pub roles: http::HeaderName,
    pub access_token: http::HeaderName,
    pub jwt_assertion: http::HeaderName,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        let n = http::HeaderName::from_static;
        IdentityHeaderNames {
            user: n("x-forwarded-user"),
            email: n("x-forwarded-email"),
            preferred_username: n("x-forwarded-preferred-username"),
            groups: n("x-forwarded-groups"),
            roles: n("x-forwarded-roles"),
            access_token: n("x-forwarded-access-token"),
            jwt_assertion: n("x-portcullis-jwt-assertion"),
        }
    }
}

impl IdentityHeaderNames {
    pub fn all(&self) -> [&http::HeaderName; 7] {
        [
            &self.user,
            &self.email,
            &self.preferred_username,
            &self.groups,
            &self.roles,
            &self.access_token,
            &self.jwt_assertion,
        ]
    }
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub tls: bool,
    /// The host name of the upstream URL (SNI and, without `preserve_host`, Host).
    pub host: String,
}

impl Upstream {
    /// `host:port` for a `Host` header (IPv6 literals in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.addr.port())
        } else {
            format!("{}:{}", self.host, self.addr.port())
        }
    }
}

/// How https upstreams are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// DER certificates of the trusted CAs; empty means the system's.
    pub ca: Vec<Vec<u8>>,
    pub verify: bool,
    pub sni: Option<String>,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls {
            ca: Vec::new(),
            verify: true,
            sni: None,
        }
    }
}

/// Active health checking of a route's upstreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path to GET on http upstreams (https upstreams get a TCP connect).
    pub path: String,
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub host: HostMatch,
    pub path_prefix: String,
    /// Empty for a route that only answers forward-auth calls.
    pub upstreams: Vec<Upstream>,
    pub upstream_tls: UpstreamTls,
    pub health_check: Option<HealthCheck>,
    /// Largest request body forwarded (413 beyond); `None`: no limit.
    pub max_body_size: Option<u64>,
    pub auth: RouteAuth,
    /// `Some` exactly when `auth` is not `None`.
    pub access: Option<RouteAccess>,
    /// Allowed methods; empty allows all.
    pub methods: Vec<http::Method>,
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
    pub preserve_host: bool,
    /// Upstream read/write timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Plain-HTTP requests are redirected to HTTPS (308).
    pub https_redirect: bool,
    /// `Strict-Transport-Security` on responses over TLS.
    pub hsts: bool,
    pub set_request_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub remove_request_headers: Vec<http::HeaderName>,
    pub set_response_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub remove_response_headers: Vec<http::HeaderName>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Plain HTTP listener; `None` disables it.
    pub http: Option<SocketAddr>,
    /// TLS listener; `None` disables it.
    pub https: Option<SocketAddr>,
    /// Worker threads of the proxy runtime.
    pub threads: usize,
    /// How long in-flight requests may finish after SIGTERM before the runtime stops.
    pub shutdown_grace: Duration,
    /// How long the runtime gets to stop after the grace period.
    pub shutdown_timeout: Duration,
    /// Public base URL (Keycloak's `hostname`); when absent it is taken from each request.
    pub public_url: Option<url::Url>,
    /// Largest request body the IdP endpoints accept.
    pub max_body_size: usize,
    /// Host names (with optional port) the IdP answers for when `public_url` is unset,
    /// beside loopback, the listeners, route hosts and certificate names: the Host of
    /// other requests is not echoed into issuers or mailed links (400 instead).
    pub hostnames: Vec<String>,
    /// Password hashes computed at once (argon2id: 19 MiB each).
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a hashing place before 503.
    pub hash_queue_timeout: Duration,
    /// A request's headers must arrive within this (slow-header clients are cut: 408).
    pub header_read_timeout: Duration,
    /// An idle kept-alive connection is closed after this.
    pub keepalive_timeout: Duration,
    /// Largest request head (request line and headers) in bytes (431 beyond).
    pub max_header_size: usize,
    /// Most request headers (431 beyond).
    pub max_headers: usize,
    /// Concurrent connections from one client address (0: no limit; trusted proxies are
    /// not limited).
    pub max_connections_per_ip: usize,
    /// Who may read `/metrics` (default: loopback; trusted proxies always may).
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// Who may call the admin API (default: everyone).
    pub admin_allow: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// Writes are refused (503) while the data directory's file system has less free
    /// space than this, in MiB (0: never).
    pub min_free_space_mb: u64,
    /// `backend = "postgres"`: the database every node shares (`None`: redb in
    /// `data_dir`).
    pub postgres: Option<crate::store::postgres::PgOptions>,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Where certificates are looked for (and the development certificate is written).
    pub certs_dir: PathBuf,
    pub certificates: Vec<CertificateConfig>,
}

#[derive(Debug, Clone)]
pub struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Server names this certificate answers for; empty means "the names in the certificate".
    pub names: Vec<String>,
    pub default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `portcullis=debug,warn`.
    pub level: String,
}

/// Who the first administrator is, when the store is empty.
#[derive(Clone, Default)]
pub struct BootstrapConfig {
    pub admin_username: Option<String>,
    pub admin_password: Option<String>,
}

impl std::fmt::Debug for BootstrapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, even in debug output.
        f.debug_struct("BootstrapConfig")
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Values from the command line (or their environment variables) that win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub http: Option<String>,
    pub https: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Keycloak's `--hostname`: a URL becomes `server.public_url`, a bare name (with an
    /// optional port) is added to `server.hostnames`.
    pub hostname: Option<String>,
    /// Keycloak's `--db*` options: which database the store is on.
    pub database: super::DatabaseOverride,
}
