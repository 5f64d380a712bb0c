//! Configuration: the TOML file is parsed once into a typed, validated [`Config`] that the
//! rest of the program receives as `Arc<Config>`. Every error names the file, the line and
//! the dotted key (`server.http: ...`). This module does no I/O beyond reading the file and
//! checking that referenced files exist; it never starts anything.

mod access;
mod raw;
mod upstream;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use raw::{RawConfig, RawDuration, RawSecret, S};

/// The default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "config/portcullis.toml";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the configuration file: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{flag}: {message}")]
    Override { flag: String, message: String },
}

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
}

impl Config {
    /// Read, parse and validate the file at `path`, then apply `overrides`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.apply(overrides)?;
        Ok(config)
    }

    /// Parse and validate configuration text; `path` is used in messages and is the
    /// `source` of the result. Relative paths in the file are relative to the working
    /// directory, as with every other server that takes paths on its command line.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw = parse_raw(text, &file)?;
        Validator {
            file: &file,
            text,
            env: &|name| std::env::var(name).ok(),
        }
        .config(raw, path)
    }

    fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        if let Some(value) = &overrides.http {
            self.server.http = parse_listen(value).map_err(|message| ConfigError::Override {
                flag: "--http".into(),
                message,
            })?;
        }
        if let Some(value) = &overrides.https {
            self.server.https = parse_listen(value).map_err(|message| ConfigError::Override {
                flag: "--https".into(),
                message,
            })?;
        }
        if let Some(dir) = &overrides.data_dir {
            self.store.data_dir = dir.clone();
        }
        if self.server.http.is_none() && self.server.https.is_none() {
            return Err(ConfigError::Override {
                flag: "--http/--https".into(),
                message: "at least one listener must be enabled".into(),
            });
        }
        self.overrides = overrides.clone();
        Ok(())
    }
}

/// Deserialize into the raw structs; a serde error names the dotted path it happened at.
fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| toml_error(file, text, "", e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // Spanned<T> adds private segments to the path; they mean nothing to a user.
        let key = e
            .path()
            .to_string()
            .split('.')
            .filter(|segment| !segment.is_empty() && !segment.starts_with("$__serde_spanned"))
            .collect::<Vec<_>>()
            .join(".");
        toml_error(file, text, &key, e.into_inner())
    })
}

fn toml_error(file: &str, text: &str, key: &str, error: toml::de::Error) -> ConfigError {
    let line = error.span().map(|s| line_of(text, s.start)).unwrap_or(1);
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        key: if key.is_empty() {
            "(document)".into()
        } else {
            key.into()
        },
        message: error.message().trim().to_string(),
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `""` disables a listener; otherwise `host:port` (names are resolved once, at start).
fn parse_listen(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    if !value.contains(':') {
        return Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        ));
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(Some)
            .ok_or_else(|| format!("\"{value}\" resolves to no address")),
        Err(_) => Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        )),
    }
}

/// Parse `"30s"`, `"500ms"`, `"2m"`; a bare number is seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|_| format!("invalid duration \"{value}\" (examples: \"5s\", \"500ms\", \"2m\")"))
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Validator<'_> {
    fn invalid<T>(
        &self,
        key: &str,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::Invalid {
            file: self.file.to_string(),
            line: line_of(self.text, span.start),
            key: key.to_string(),
            message,
        })
    }

    fn config(&self, raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let server = self.server(raw.server)?;
        let store = StoreConfig {
            data_dir: self.path_or(raw.store.data_dir, "store.data_dir", "data")?,
        };
        let tls = self.tls(raw.tls)?;
        let log = self.log(raw.log)?;
        let bootstrap = BootstrapConfig {
            admin_username: self
                .secret(raw.bootstrap.admin_username, "bootstrap.admin_username")?,
            admin_password: self
                .secret(raw.bootstrap.admin_password, "bootstrap.admin_password")?,
        };
        let themes_dir = self.path_or(raw.themes.dir, "themes.dir", "themes")?;
        let realms_dir = self.path_or(raw.realms.dir, "realms.dir", "config/realms")?;
        let proxy = self.proxy(raw.proxy, raw.routes)?;
        Ok(Config {
            source: path.to_path_buf(),
            server,
            store,
            tls,
            log,
            bootstrap,
            themes_dir,
            realms_dir,
            proxy,
            overrides: Overrides::default(),
        })
    }

    fn server(&self, raw: raw::RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = |value: Option<S<String>>, key: &str, default: &str| match value {
            None => Ok(parse_listen(default).ok().flatten()),
            Some(v) => parse_listen(v.get_ref()).or_else(|m| self.invalid(key, v.span(), m)),
        };
        let http = listen(raw.http, "server.http", "0.0.0.0:8080")?;
        let https = listen(raw.https, "server.https", "0.0.0.0:8443")?;
        let threads = match raw.threads {
            None => 0,
            Some(t) if (0..=1024).contains(t.get_ref()) => *t.get_ref() as usize,
            Some(t) => {
                return self.invalid(
                    "server.threads",
                    t.span(),
                    format!(
                        "must be between 0 (one per core) and 1024, got {}",
                        t.get_ref()
                    ),
                )
            }
        };
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let duration = |value: Option<S<RawDuration>>, key: &str, default: Duration| match value {
            None => Ok(default),
            Some(v) => match v.get_ref() {
                RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
                RawDuration::Text(t) => {
                    parse_duration(t).or_else(|m| self.invalid(key, v.span(), m))
                }
            },
        };
        let shutdown_grace = duration(
            raw.shutdown_grace,
            "server.shutdown_grace",
            Duration::from_secs(1),
        )?;
        let shutdown_timeout = duration(
            raw.shutdown_timeout,
            "server.shutdown_timeout",
            Duration::from_secs(3),
        )?;
        let public_url = match raw.public_url {
            None => None,
            Some(v) => match url::Url::parse(v.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
                    return self.invalid(
                        "server.public_url",
                        v.span(),
                        format!("\"{}\" is not an http(s) URL", v.get_ref()),
                    )
                }
            },
        };
        let max_body_size = match raw.max_body_size {
            None => 1 << 20,
            Some(v) if *v.get_ref() >= 1024 && *v.get_ref() <= 1 << 30 => *v.get_ref() as usize,
            Some(v) => {
                return self.invalid(
                    "server.max_body_size",
                    v.span(),
                    "must be between 1024 and 1073741824 bytes".into(),
                )
            }
        };
        let int = |value: Option<S<i64>>,
                   key: &str,
                   default: usize,
                   range: std::ops::RangeInclusive<i64>|
         -> Result<usize, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref() as usize),
                Some(v) => self.invalid(
                    key,
                    v.span(),
                    format!(
                        "must be between {} and {}, got {}",
                        range.start(),
                        range.end(),
                        v.get_ref()
                    ),
                ),
            }
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let max_concurrent_hashes = match int(
            raw.max_concurrent_hashes,
            "server.max_concurrent_hashes",
            0,
            0..=1024,
        )? {
            0 => cores,
            n => n,
        };
        let mut hostnames = Vec::new();
        for (i, h) in raw.hostnames.into_iter().enumerate() {
            let text = h.get_ref().trim().to_ascii_lowercase();
            if !valid_host_and_port(&text) {
                return self.invalid(
                    &format!("server.hostnames[{i}]"),
                    h.span(),
                    format!("\"{text}\" is not a host name (with an optional :port)"),
                );
            }
            hostnames.push(text);
        }
        let metrics_allow = match raw.metrics_allow {
            Some(list) => self.cidrs(list, "server.metrics_allow")?,
            None => ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        };
        let admin_allow = match raw.admin_allow {
            Some(list) => self.cidrs(list, "server.admin_allow")?,
            None => Vec::new(),
        };
        Ok(ServerConfig {
            http,
            https,
            threads,
            shutdown_grace,
            shutdown_timeout,
            public_url,
            max_body_size,
            hostnames,
            max_concurrent_hashes,
            hash_queue_timeout: duration(
                raw.hash_queue_timeout,
                "server.hash_queue_timeout",
                Duration::from_secs(5),
            )?,
            header_read_timeout: duration(
                raw.header_read_timeout,
                "server.header_read_timeout",
                Duration::from_secs(10),
            )?
            .max(Duration::from_millis(1)),
            keepalive_timeout: duration(
                raw.keepalive_timeout,
                "server.keepalive_timeout",
                Duration::from_secs(60),
            )?
            .max(Duration::from_millis(1)),
            max_header_size: int(
                raw.max_header_size,
                "server.max_header_size",
                64 * 1024,
                1024..=1024 * 1024 - 1,
            )?,
            max_headers: int(raw.max_headers, "server.max_headers", 100, 8..=256)?,
            max_connections_per_ip: int(
                raw.max_connections_per_ip,
                "server.max_connections_per_ip",
                512,
                0..=1_000_000,
            )?,
            metrics_allow,
            admin_allow,
        })
    }

    fn path_or(
        &self,
        value: Option<S<String>>,
        key: &str,
        default: &str,
    ) -> Result<PathBuf, ConfigError> {
        match value {
            None => Ok(PathBuf::from(default)),
            Some(v) if v.get_ref().trim().is_empty() => {
                self.invalid(key, v.span(), "must not be empty".into())
            }
            Some(v) => Ok(PathBuf::from(v.into_inner())),
        }
    }

    fn tls(&self, raw: raw::RawTls) -> Result<TlsConfig, ConfigError> {
        let certs_dir = self.path_or(raw.certs_dir, "tls.certs_dir", "certs")?;
        let mut certificates = Vec::new();
        let mut defaults = 0;
        for (i, c) in raw.certificate.into_iter().enumerate() {
            let prefix = format!("tls.certificate[{i}]");
            let file = |v: S<String>, field: &str| -> Result<PathBuf, ConfigError> {
                let path = PathBuf::from(v.get_ref());
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => Ok(path),
                    Ok(_) => self.invalid(
                        &format!("{prefix}.{field}"),
                        v.span(),
                        format!("\"{}\" is not a file", v.get_ref()),
                    ),
                    Err(e) => self.invalid(
                        &format!("{prefix}.{field}"),
                        v.span(),
                        format!("cannot read \"{}\": {e}", v.get_ref()),
                    ),
                }
            };
            let cert = file(c.cert, "cert")?;
            let key = file(c.key, "key")?;
            let names = match c.names {
                None => Vec::new(),
                Some(n) => {
                    for name in n.get_ref() {
                        if !valid_server_name(name) {
                            return self.invalid(
                                &format!("{prefix}.names"),
                                n.span(),
                                format!("\"{name}\" is not a host name (wildcards only as \"*.example.com\")"),
                            );
                        }
                    }
                    n.into_inner()
                        .into_iter()
                        .map(|s| s.to_ascii_lowercase())
                        .collect()
                }
            };
            if c.default {
                defaults += 1;
                if defaults > 1 {
                    return self.invalid(
                        &format!("{prefix}.default"),
                        0..0,
                        "only one certificate can be the default".into(),
                    );
                }
            }
            certificates.push(CertificateConfig {
                cert,
                key,
                names,
                default: c.default,
            });
        }
        Ok(TlsConfig {
            certs_dir,
            certificates,
        })
    }

    fn cidrs(&self, list: Vec<S<String>>, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let mut out = Vec::new();
        for (i, v) in list.into_iter().enumerate() {
            let text = v.get_ref().trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => out.push(n),
                Err(_) => {
                    return self.invalid(
                        &format!("{key}[{i}]"),
                        v.span(),
                        format!("invalid CIDR \"{text}\""),
                    );
                }
            }
        }
        Ok(out)
    }

    fn proxy(
        &self,
        raw: raw::RawProxy,
        routes: Vec<raw::RawRoute>,
    ) -> Result<ProxyConfig, ConfigError> {
        let mut config = ProxyConfig {
            trusted_proxies: self.cidrs(raw.trusted_proxies, "proxy.trusted_proxies")?,
            allow: self.cidrs(raw.allow, "proxy.allow")?,
            deny: self.cidrs(raw.deny, "proxy.deny")?,
            ..Default::default()
        };
        if let Some(v) = raw.forward_auth_headers {
            config.forward_auth_headers = match v.get_ref().as_str() {
                "auto" => ForwardAuthHeaders::Auto,
                "original" | "nginx" => ForwardAuthHeaders::Original,
                "forwarded" | "traefik" | "caddy" => ForwardAuthHeaders::Forwarded,
                other => {
                    return self.invalid(
                        "proxy.forward_auth_headers",
                        v.span(),
                        format!("must be \"auto\", \"original\" (nginx) or \"forwarded\" (Traefik, Caddy), got \"{other}\""),
                    )
                }
            };
        }
        if let Some(v) = raw.session_check_interval {
            config.session_check_interval = match v.get_ref() {
                RawDuration::Seconds(s) => Duration::from_secs(*s),
                RawDuration::Text(t) => parse_duration(t)
                    .or_else(|m| self.invalid("proxy.session_check_interval", v.span(), m))?,
            };
            // A cached check carries a 5-minute assertion and minted tokens: it must not
            // outlive them, and a revocation must not wait long.
            if config.session_check_interval > Duration::from_secs(60) {
                return self.invalid(
                    "proxy.session_check_interval",
                    v.span(),
                    "must be at most 60s".into(),
                );
            }
        }
        for (i, mut r) in routes.into_iter().enumerate() {
            let key = format!("route[{i}]");
            let host = match &r.host {
                None => HostMatch::Any,
                Some(h) => {
                    let text = h.get_ref().trim().to_ascii_lowercase();
                    if !valid_server_name(&text) {
                        return self.invalid(
                            &format!("{key}.host"),
                            h.span(),
                            format!("\"{text}\" is not a host name"),
                        );
                    }
                    match text.strip_prefix("*.") {
                        Some(parent) => HostMatch::Wildcard(parent.to_string()),
                        None => HostMatch::Exact(text),
                    }
                }
            };
            let path_prefix = match &r.path {
                None => "/".to_string(),
                Some(p) => {
                    let text = p.get_ref().clone();
                    match crate::http::path::normalise(&text) {
                        Ok(n) => n.into_owned(),
                        Err(e) => {
                            return self.invalid(
                                &format!("{key}.path"),
                                p.span(),
                                format!("\"{text}\": {e}"),
                            )
                        }
                    }
                }
            };
            let anchor = access::anchor(&r);
            let upstreams = match r.upstream.take() {
                Some(u) => self.upstreams(&key, u)?,
                None => Vec::new(),
            };
            let (auth, access) = self.route_access(&key, &mut r)?;
            let (upstream_tls, health_check) = self.upstream_options(&key, &mut r)?;
            let methods = self.methods(&key, std::mem::take(&mut r.methods))?;
            if upstreams.is_empty() && access.is_none() {
                return self.invalid(
                    &format!("{key}.upstream"),
                    anchor,
                    "a route needs an upstream (only routes with auth may omit it, for forward-auth)"
                        .into(),
                );
            }
            let duration =
                |value: Option<S<RawDuration>>, field: &str, default: Duration| match value {
                    None => Ok(default),
                    Some(v) => match v.get_ref() {
                        RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
                        RawDuration::Text(t) => parse_duration(t)
                            .or_else(|m| self.invalid(&format!("{key}.{field}"), v.span(), m)),
                    },
                };
            let timeout = duration(r.timeout, "timeout", Duration::from_secs(60))?;
            let max_body_size = match &r.max_body_size {
                None => Some(100 << 20),
                Some(v) if *v.get_ref() == 0 => None,
                Some(v) if *v.get_ref() > 0 => Some(*v.get_ref() as u64),
                Some(v) => {
                    return self.invalid(
                        &format!("{key}.max_body_size"),
                        v.span(),
                        "must be a number of bytes (0: no limit)".into(),
                    )
                }
            };
            let connect_timeout =
                duration(r.connect_timeout, "connect_timeout", Duration::from_secs(5))?;
            let header_map = |map: std::collections::BTreeMap<String, S<String>>,
                              field: &str|
             -> Result<
                Vec<(http::HeaderName, http::HeaderValue)>,
                ConfigError,
            > {
                let mut out = Vec::new();
                for (name, value) in map {
                    let span = value.span();
                    let n = http::HeaderName::from_bytes(name.as_bytes()).or_else(|_| {
                        self.invalid(
                            &format!("{key}.{field}"),
                            span.clone(),
                            format!("invalid header name \"{name}\""),
                        )
                    })?;
                    let v = http::HeaderValue::from_str(value.get_ref()).or_else(|_| {
                        self.invalid(
                            &format!("{key}.{field}.{name}"),
                            span,
                            "invalid header value".into(),
                        )
                    })?;
                    out.push((n, v));
                }
                Ok(out)
            };
            let header_names =
                |list: Vec<S<String>>, field: &str| -> Result<Vec<http::HeaderName>, ConfigError> {
                    let mut out = Vec::new();
                    for (j, name) in list.into_iter().enumerate() {
                        match http::HeaderName::from_bytes(name.get_ref().as_bytes()) {
                            Ok(n) => out.push(n),
                            Err(_) => {
                                return self.invalid(
                                    &format!("{key}.{field}[{j}]"),
                                    name.span(),
                                    format!("invalid header name \"{}\"", name.get_ref()),
                                )
                            }
                        }
                    }
                    Ok(out)
                };
            let set_request_headers = header_map(r.set_request_headers, "set_request_headers")?;
            let remove_request_headers =
                header_names(r.remove_request_headers, "remove_request_headers")?;
            let set_response_headers = header_map(r.set_response_headers, "set_response_headers")?;
            let remove_response_headers =
                header_names(r.remove_response_headers, "remove_response_headers")?;
            config.routes.push(RouteConfig {
                max_body_size,
                timeout,
                connect_timeout,
                https_redirect: r.https_redirect,
                hsts: r.hsts.unwrap_or(r.https_redirect),
                set_request_headers,
                remove_request_headers,
                set_response_headers,
                remove_response_headers,
                name: r.name.unwrap_or_else(|| key.clone()),
                host,
                path_prefix,
                upstreams,
                upstream_tls,
                health_check,
                auth,
                access,
                methods,
                allow: self.cidrs(r.allow, &format!("{key}.allow"))?,
                deny: self.cidrs(r.deny, &format!("{key}.deny"))?,
                preserve_host: r.preserve_host.unwrap_or(true),
            });
        }
        Ok(config)
    }

    fn log(&self, raw: raw::RawLog) -> Result<LogConfig, ConfigError> {
        let format = match raw.format {
            None => LogFormat::Text,
            Some(v) => match v.get_ref().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return self.invalid(
                        "log.format",
                        v.span(),
                        format!("must be \"text\" or \"json\", got \"{other}\""),
                    )
                }
            },
        };
        let level = match raw.level {
            None => "info".to_string(),
            Some(v) => {
                if tracing_subscriber::EnvFilter::try_new(v.get_ref()).is_err() {
                    return self.invalid(
                        "log.level",
                        v.span(),
                        format!("invalid log filter \"{}\"", v.get_ref()),
                    );
                }
                v.into_inner()
            }
        };
        Ok(LogConfig { format, level })
    }

    fn secret(
        &self,
        value: Option<S<RawSecret>>,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        let span = v.span();
        match v.into_inner() {
            RawSecret::Inline(s) => Ok(Some(s)),
            RawSecret::Env { env } => match (self.env)(&env) {
                Some(s) => Ok(Some(s)),
                None => self.invalid(key, span, format!("environment variable {env} is not set")),
            },
            RawSecret::File { file } => match std::fs::read_to_string(&file) {
                Ok(s) => Ok(Some(s.trim_end_matches(['\r', '\n']).to_string())),
                Err(e) => self.invalid(key, span, format!("cannot read \"{file}\": {e}")),
            },
        }
    }
}

/// A DNS name or a `*.` wildcard over one.
/// `name`, `name:port`, `[v6]` or `[v6]:port`, or an IPv4 address with optional port.
fn valid_host_and_port(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => {
                return tail.is_empty()
                    || tail
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok());
            }
            _ => return false,
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    port.is_none_or(|p| p.parse::<u16>().is_ok())
        && (host.parse::<std::net::Ipv4Addr>().is_ok() || valid_server_name(host))
}

fn valid_server_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn error(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn empty_file_takes_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.server.http, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(c.server.https, Some("0.0.0.0:8443".parse().unwrap()));
        assert!(c.server.threads >= 1);
        assert_eq!(c.store.data_dir, PathBuf::from("data"));
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = error("[server]\nhttp = \"127.0.0.1:1\"\nhtps = \"x\"\n");
        assert!(e.starts_with("test.toml:3: server"), "{e}");
        assert!(e.contains("unknown field `htps`"), "{e}");
    }

    #[test]
    fn bad_address_names_key_and_line() {
        let e = error("\n\n[server]\nhttp = \"not an address\"\n");
        assert_eq!(
            e,
            "test.toml:4: server.http: invalid listen address \"not an address\" (expected host:port, e.g. 0.0.0.0:8080)"
        );
    }

    #[test]
    fn wrong_type_names_key() {
        let e = error("[server]\nthreads = \"four\"\n");
        assert!(e.starts_with("test.toml:2: server.threads:"), "{e}");
    }

    #[test]
    fn malformed_toml_names_line() {
        let e = error("[server\nhttp = 1\n");
        assert!(e.starts_with("test.toml:1:"), "{e}");
    }

    #[test]
    fn missing_certificate_file_is_named() {
        let e = error(
            "[[tls.certificate]]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
        );
        assert!(
            e.starts_with(
                "test.toml:2: tls.certificate[0].cert: cannot read \"/nonexistent/c.pem\""
            ),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let text = "[bootstrap]\nadmin_password = { env = \"PORTCULLIS_TEST_SECRET_A\" }\n";
        let v = Validator {
            file: "t",
            text,
            env: &|name| (name == "PORTCULLIS_TEST_SECRET_A").then(|| "s3cret".to_string()),
        };
        let c = v
            .config(parse_raw(text, "t").unwrap(), Path::new("t"))
            .unwrap();
        assert_eq!(c.bootstrap.admin_password.as_deref(), Some("s3cret"));
        assert!(!format!("{:?}", c.bootstrap).contains("s3cret"));
        let v = Validator {
            file: "t",
            text,
            env: &|_| None,
        };
        let e = v
            .config(parse_raw(text, "t").unwrap(), Path::new("t"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t:2: bootstrap.admin_password: environment variable PORTCULLIS_TEST_SECRET_A is not set"
        );
    }

    #[test]
    fn durations_and_disabled_listeners() {
        let c = parse("[server]\nhttps = \"\"\nshutdown_grace = \"250ms\"\nshutdown_timeout = 2\n")
            .unwrap();
        assert_eq!(c.server.https, None);
        assert_eq!(c.server.shutdown_grace, Duration::from_millis(250));
        assert_eq!(c.server.shutdown_timeout, Duration::from_secs(2));
        let e = error("[server]\nshutdown_grace = \"soon\"\n");
        assert!(
            e.starts_with("test.toml:2: server.shutdown_grace: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let mut c = parse("").unwrap();
        c.apply(&Overrides {
            http: Some("127.0.0.1:0".into()),
            https: Some("".into()),
            data_dir: Some("/tmp/x".into()),
        })
        .unwrap();
        assert_eq!(c.server.http, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.server.https, None);
        assert_eq!(
            c.overrides.http.as_deref(),
            Some("127.0.0.1:0"),
            "kept for reloads"
        );
        let e = c
            .apply(&Overrides {
                http: Some("nope".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("--http: invalid listen address"));
    }

    #[test]
    fn routes_and_cidrs_are_checked() {
        let c = parse("[proxy]\nallow = [\"10.0.0.0/8\", \"::1\"]\n[[route]]\nhost = \"*.apps.test\"\npath = \"/api//v1/\"\nupstream = \"http://127.0.0.1:9000\"\n").unwrap();
        assert_eq!(c.proxy.allow.len(), 2);
        let r = &c.proxy.routes[0];
        assert_eq!(r.host, HostMatch::Wildcard("apps.test".into()));
        assert_eq!(r.path_prefix, "/api/v1/");
        assert_eq!(r.name, "route[0]");
        let e = error("[[route]]\nupstream = \"http://127.0.0.1:9000\"\nallow = [\"10.0.0/8\"]\n");
        assert_eq!(
            e,
            "test.toml:3: route[0].allow[0]: invalid CIDR \"10.0.0/8\""
        );
        let e = error("[[route]]\nupstream = \"ftp://x\"\n");
        assert!(e.starts_with("test.toml:2: route[0].upstream[0]:"), "{e}");
        let e = error("[[route]]\nupstream = \"http://127.0.0.1:1\"\nauth = \"session\"\n");
        assert_eq!(
            e,
            "test.toml:3: route[0].realm: is required when auth is \"session\""
        );
    }

    #[test]
    fn route_access_is_checked() {
        let base = "[[route]]\nupstream = \"http://127.0.0.1:1\"\n";
        let ok = parse(&format!(
            "{base}auth = \"session_or_bearer\"\nrealm = \"demo\"\nclient = \"gw\"\npublic_paths = [\"/static//x\"]\n\
             client_roles = [\"viewer\", \"other:editor\"]\ngroups = [\"staff\"]\npolicy = \"all\"\n\
             methods = [\"get\"]\nidentity_headers = {{ user = \"X-Remote-User\" }}\n"
        ))
        .unwrap();
        let r = &ok.proxy.routes[0];
        assert_eq!(r.auth, RouteAuth::SessionOrBearer);
        assert_eq!(r.methods, vec![http::Method::GET]);
        let a = r.access.as_ref().unwrap();
        assert_eq!(a.public_paths, vec!["/static/x".to_string()]);
        assert_eq!(
            a.policy.client_roles,
            vec![
                ("gw".to_string(), "viewer".to_string()),
                ("other".to_string(), "editor".to_string())
            ]
        );
        assert_eq!(a.policy.groups, vec!["/staff".to_string()]);
        assert!(a.policy.require_all && a.jwt_assertion);
        assert_eq!(a.headers.user.as_str(), "x-remote-user");

        for (extra, expected) in [
            ("auth = \"basic\"\n", "test.toml:3: route[0].auth: \"basic\" is not one of"),
            ("realm = \"demo\"\n", "test.toml:1: route[0].realm: only applies to routes with auth"),
            (
                "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\npolicy = \"most\"\n",
                "test.toml:6: route[0].policy: \"most\" is not \"any\" or \"all\"",
            ),
            (
                "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\nidentity_headers = { user = \"bad header\" }\n",
                "test.toml:6: route[0].identity_headers.user:",
            ),
            ("methods = [\"G T\"]\n", "test.toml:3: route[0].methods[0]: \"G T\" is not an HTTP method"),
            ("jwt_assertion = false\n", "test.toml:1: route[0].jwt_assertion: only applies"),
            ("identity_headers = { user = \"X-U\" }\n", "test.toml:1: route[0].identity_headers: only applies"),
            ("health_check = \"/h x\"\n", "test.toml:3: route[0].health_check: must be a path"),
            (
                "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\nidentity_headers = { user = \"Transfer-Encoding\" }\n",
                "test.toml:6: route[0].identity_headers.user:",
            ),
            (
                "health_check = \"/h\"\nhealth_interval = \"1ms\"\n",
                "test.toml:4: route[0].health_interval: must be at least 100ms",
            ),
            ("upstream_ca = \"/nonexistent.pem\"\n", "test.toml:3: route[0].upstream_ca: cannot read"),
        ] {
            let e = error(&format!("{base}{extra}"));
            assert!(e.starts_with(expected), "{extra}: {e}");
        }
        let e = error("[proxy]\nsession_check_interval = \"10m\"\n");
        assert_eq!(
            e,
            "test.toml:2: proxy.session_check_interval: must be at most 60s"
        );
        let e = error("[[route]]\nhost = \"a.test\"\n");
        assert_eq!(
            e,
            "test.toml:2: route[0].upstream: a route needs an upstream (only routes with auth may omit it, for forward-auth)"
        );
        // A forward-auth-only route needs no upstream.
        let fa = parse(
            "[[route]]\nhost = \"a.test\"\nauth = \"session\"\nrealm = \"r\"\nclient = \"c\"\n",
        )
        .unwrap();
        assert!(fa.proxy.routes[0].upstreams.is_empty());
    }

    #[test]
    fn server_names_are_checked() {
        assert!(valid_server_name("example.com"));
        assert!(valid_server_name("*.example.com"));
        assert!(!valid_server_name("exa mple.com"));
        assert!(!valid_server_name("*"));
        assert!(!valid_server_name("a..b"));
    }
}
