//! Configuration: the TOML file is parsed once into a typed, validated [`Config`] that the
//! rest of the program receives as `Arc<Config>`. Every error names the file, the line and
//! the dotted key (`portcullis.toml:4: server.http: ...`). This module does no I/O beyond
//! reading the file (and secret files) and checking that referenced files exist; it never
//! starts anything.
//!
//! - `raw`: the file as written (serde, unknown keys refused, spans kept);
//! - `load`: reading, TOML parsing, secrets, command-line overrides, span → line errors;
//! - `validate`: raw → [`Config`], one file per section, one set of value parsers;
//! - `database`: Keycloak's `--db*` options (`KC_DB*`) on `[store]`;
//! - `model`: the validated types.
//!
//! Config imports no domain module: not the IdP (`idp`), not the gateway (`proxy`), and
//! of `http` only the leaf `http::path` (path normalisation, which imports nothing). The
//! domain depends on config, never the other way round.

mod database;
mod error;
mod load;
mod model;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use database::DatabaseOverride;
pub use error::ConfigError;
pub use load::DEFAULT_CONFIG_PATH;
pub use model::{
    BootstrapConfig, CertificateConfig, Config, ForwardAuthHeaders, HealthCheck, HostMatch,
    IdentityHeaderNames, LogConfig, LogFormat, Overrides, Policy, ProxyConfig, RouteAccess,
    RouteAuth, RouteConfig, ServerConfig, StoreConfig, TlsConfig, Upstream, UpstreamTls,
};
