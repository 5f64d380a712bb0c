//! The TOML file as written: serde structs that reject unknown keys and keep the source
//! span of every value that is validated later, so an error can name its line.
//! Nothing here is interpreted; `config::validate` turns it into a typed `Config`.

use serde::Deserialize;
use serde_spanned::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
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
pub struct RawProxy {
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
    #[serde(default)]
    pub allow: Vec<S<String>>,
    #[serde(default)]
    pub deny: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub host: Option<S<String>>,
    pub path: Option<S<String>>,
    pub upstream: S<OneOrMany>,
    pub auth: Option<S<String>>,
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

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealms {
    pub dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThemes {
    pub dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub http: Option<S<String>>,
    pub https: Option<S<String>>,
    pub threads: Option<S<i64>>,
    pub shutdown_grace: Option<S<RawDuration>>,
    pub shutdown_timeout: Option<S<RawDuration>>,
    pub public_url: Option<S<String>>,
    pub max_body_size: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub data_dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub certs_dir: Option<S<String>>,
    #[serde(default)]
    pub certificate: Vec<RawCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub cert: S<String>,
    pub key: S<String>,
    pub names: Option<S<Vec<String>>>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<S<String>>,
    pub level: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBootstrap {
    pub admin_username: Option<S<RawSecret>>,
    pub admin_password: Option<S<RawSecret>>,
}

/// A value that may be written inline or read from the environment or a file, so secrets
/// need not live in the config file: `"text"`, `{ env = "NAME" }` or `{ file = "PATH" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSecret {
    Inline(String),
    Env { env: String },
    File { file: String },
}

/// A duration: a number of seconds or a text such as `"500ms"` or `"2m"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(u64),
    Text(String),
}
