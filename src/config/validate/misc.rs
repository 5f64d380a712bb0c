//! Validation of the small sections: `[store]`, `[log]` and `[bootstrap]`.

use super::Validator;
use crate::config::raw::{RawBootstrap, RawLog, RawStore};
use crate::config::{BootstrapConfig, ConfigError, LogConfig, LogFormat, StoreConfig};

impl Validator<'_> {
    pub(super) fn store(&self, raw: RawStore) -> Result<StoreConfig, ConfigError> {
        Ok(StoreConfig {
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
