//! The TOML file as written: serde structs that reject unknown keys and keep the source
//! span of every value that is validated later, so an error can name its line.
//! Nothing here is interpreted; `config::validate` turns it into a typed `Config`.

use serde::Deserialize;
use serde_spanned::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub bootstrap: RawBootstrap,
    #[serde(default)]
    pub themes: RawThemes,
    #[serde(default)]
    pub realms: RawRealms,
    #[serde(default)]
    pub proxy: RawProxy,
    #[serde(default, rename = "route")]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
    #[serde(default)]
    pub allow: Vec<S<String>>,
    #[serde(default)]
    pub deny: Vec<S<String>>,
    /// How long a session or bearer check is trusted before the store is asked again.
    pub session_check_interval: Option<S<RawDuration>>,
    /// Which headers forward-auth callers describe the original request with.
    pub forward_auth_headers: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub name: Option<String>,
    pub host: Option<S<String>>,
    pub path: Option<S<String>>,
    /// Absent for routes that only answer forward-auth calls of another proxy.
    pub upstream: Option<S<OneOrMany>>,
    pub auth: Option<S<String>>,
    /// PEM file of the CAs that sign the https upstreams' certificates (default: system).
    pub upstream_ca: Option<S<String>>,
    /// `false` skips certificate verification of https upstreams (testing only).
    pub upstream_tls_verify: Option<bool>,
    /// Server name sent to https upstreams (default: the upstream URL's host).
    pub upstream_sni: Option<S<String>>,
    /// Largest request body forwarded upstream, in bytes (0: no limit).
    pub max_body_size: Option<S<i64>>,
    /// `"/healthz"`: GET it on every upstream; failing upstreams get no traffic.
    pub health_check: Option<S<String>>,
    pub health_interval: Option<S<RawDuration>>,
    pub realm: Option<S<String>>,
    pub client: Option<S<String>>,
    #[serde(default)]
    pub public_paths: Vec<S<String>>,
    #[serde(default)]
    pub methods: Vec<S<String>>,
    #[serde(default)]
    pub realm_roles: Vec<String>,
    /// `"client:role"`, or `"role"` for a role of the route's client.
    #[serde(default)]
    pub client_roles: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `"any"` (default) or `"all"` of the listed roles and groups.
    pub policy: Option<S<String>>,
    #[serde(default)]
    pub pass_access_token: bool,
    #[serde(default)]
    pub pass_authorization_header: bool,
    pub jwt_assertion: Option<bool>,
    pub signout_path: Option<S<String>>,
    #[serde(default)]
    pub identity_headers: RawIdentityHeaders,
    #[serde(default)]
    pub allow: Vec<S<String>>,
    #[serde(default)]
    pub deny: Vec<S<String>>,
    pub preserve_host: Option<bool>,
    pub timeout: Option<S<RawDuration>>,
    pub connect_timeout: Option<S<RawDuration>>,
    #[serde(default)]
    pub https_redirect: bool,
    pub hsts: Option<bool>,
    #[serde(default)]
    pub set_request_headers: std::collections::BTreeMap<String, S<String>>,
    #[serde(default)]
    pub remove_request_headers: Vec<S<String>>,
    #[serde(default)]
    pub set_response_headers: std::collections::BTreeMap<String, S<String>>,
    #[serde(default)]
    pub remove_response_headers: Vec<S<String>>,
}

/// Names of the identity headers a route injects (each optional; defaults in `config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityHeaders {
    pub user: Option<S<String>>,
    pub email: Option<S<String>>,
    pub preferred_username: Option<S<String>>,
    pub groups: Option<S<String>>,
    pub roles: Option<S<String>>,
    pub access_token: Option<S<String>>,
    pub jwt_assertion: Option<S<String>>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealms {
    pub dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThemes {
    pub dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub http: Option<S<String>>,
    pub https: Option<S<String>>,
    pub threads: Option<S<i64>>,
    pub shutdown_grace: Option<S<RawDuration>>,
    pub shutdown_timeout: Option<S<RawDuration>>,
    pub public_url: Option<S<String>>,
    pub max_body_size: Option<S<i64>>,
    #[serde(default)]
    pub hostnames: Vec<S<String>>,
    pub max_concurrent_hashes: Option<S<i64>>,
    pub hash_queue_timeout: Option<S<RawDuration>>,
    pub header_read_timeout: Option<S<RawDuration>>,
    pub keepalive_timeout: Option<S<RawDuration>>,
    pub max_header_size: Option<S<i64>>,
    pub max_headers: Option<S<i64>>,
    pub max_connections_per_ip: Option<S<i64>>,
    pub metrics_allow: Option<Vec<S<String>>>,
    pub admin_allow: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub data_dir: Option<S<String>>,
    pub min_free_space_mb: Option<S<i64>>,
    pub backend: Option<S<String>>,
    pub url: Option<S<RawSecret>>,
    pub pool_size: Option<S<i64>>,
    pub ca_file: Option<S<String>>,
    pub query_timeout: Option<S<RawDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub certs_dir: Option<S<String>>,
    #[serde(default)]
    pub certificate: Vec<RawCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificate {
    pub cert: S<String>,
    pub key: S<String>,
    pub names: Option<S<Vec<String>>>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub format: Option<S<String>>,
    pub level: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBootstrap {
    pub admin_username: Option<S<RawSecret>>,
    pub admin_password: Option<S<RawSecret>>,
}

/// A value that may be written inline or read from the environment or a file, so secrets
/// need not live in the config file: `"text"`, `{ env = "NAME" }` or `{ file = "PATH" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSecret {
    Inline(String),
    Env { env: String },
    File { file: String },
}

/// A duration: a number of seconds or a text such as `"500ms"` or `"2m"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(u64),
    Text(String),
}
