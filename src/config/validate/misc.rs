//! Validation of the small sections: `[store]`, `[log]` and `[bootstrap]`.

use super::Validator;
use crate::config::raw::{RawBootstrap, RawLog, RawStore};
use crate::config::{BootstrapConfig, ConfigError, LogConfig, LogFormat, StoreConfig};

impl Validator<'_> {
    pub(super) fn store(&self, raw: RawStore) -> Result<StoreConfig, ConfigError> {
        let backend = match &raw.backend {
            None => "redb".to_string(),
            Some(v) => match v.get_ref().as_str() {
                b @ ("redb" | "postgres") => b.to_string(),
                other => {
                    return self.invalid(
                        "store.backend",
                        v.span(),
                        format!("must be \"redb\" or \"postgres\", got \"{other}\""),
                    )
                }
            },
        };
        let postgres = if backend == "postgres" {
            let span = raw.url.as_ref().map(|u| u.span());
            let Some(url) = self.secret(raw.url, "store.url")? else {
                return self.invalid(
                    "store.url",
                    raw.backend.as_ref().map(|b| b.span()).unwrap_or_default(),
                    "backend = \"postgres\" needs url (e.g. url = { env = \"PORTCULLIS_DATABASE_URL\" })"
                        .to_string(),
                );
            };
            if let Err(e) = crate::store::postgres::check_url(&url) {
                return self.invalid("store.url", span.unwrap_or_default(), e);
            }
            Some(crate::store::postgres::PgOptions {
                url,
                pool_size: self.count_or(raw.pool_size, "store.pool_size", 16, 1..=1024)?,
                ca_file: raw
                    .ca_file
                    .map(|f| std::path::PathBuf::from(f.into_inner())),
                query_timeout: self.duration_or(
                    raw.query_timeout,
                    "store.query_timeout",
                    std::time::Duration::from_secs(5),
                )?,
            })
        } else {
            for (set, key) in [
                (raw.url.as_ref().map(|v| v.span()), "store.url"),
                (raw.pool_size.as_ref().map(|v| v.span()), "store.pool_size"),
                (raw.ca_file.as_ref().map(|v| v.span()), "store.ca_file"),
                (
                    raw.query_timeout.as_ref().map(|v| v.span()),
                    "store.query_timeout",
                ),
            ] {
                if let Some(span) = set {
                    return self.invalid(
                        key,
                        span,
                        "only used with backend = \"postgres\"".to_string(),
                    );
                }
            }
            None
        };
        Ok(StoreConfig {
            postgres,
            data_dir: self.path_or(raw.data_dir, "store.data_dir", "data")?,
            min_free_space_mb: self.count_or(
                raw.min_free_space_mb,
                "store.min_free_space_mb",
                64,
                0..=1024 * 1024,
            )? as u64,
        })
    }

    pub(super) fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
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

    /// The first administrator; both values are secrets (see `load`).
    pub(super) fn bootstrap(&self, raw: RawBootstrap) -> Result<BootstrapConfig, ConfigError> {
        Ok(BootstrapConfig {
            admin_username: self.secret(raw.admin_username, "bootstrap.admin_username")?,
            admin_password: self.secret(raw.admin_password, "bootstrap.admin_password")?,
        })
    }
}
