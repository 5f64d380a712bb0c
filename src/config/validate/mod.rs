//! Validation: turns the raw structs into the typed model, one file per section. Every
//! error names the dotted key and points at the value's line through its span. Values of
//! one kind (durations, bounded integers, CIDR lists, header names and values, host names,
//! paths, URLs) are read by the shared parsers in `values`, nowhere else.

mod access;
mod misc;
mod proxy;
mod route;
mod server;
mod tls;
mod upstream;
pub(in crate::config) mod values;

use std::path::Path;

use super::error::line_of;
use super::raw::RawConfig;
use crate::config::{Config, ConfigError, Overrides};

/// Checks raw values against the text they came from, so errors can name their line.
pub(in crate::config) struct Validator<'a> {
    pub(in crate::config) file: &'a str,
    pub(in crate::config) text: &'a str,
    /// Looks up environment variables (replaced in tests).
    pub(in crate::config) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Validator<'_> {
    /// The error for `key`, at the line where `span` starts.
    pub(in crate::config) fn invalid<T>(
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

    /// The whole file, section by section (the first error found is the one reported).
    pub(in crate::config) fn config(
        &self,
        raw: RawConfig,
        path: &Path,
    ) -> Result<Config, ConfigError> {
        let server = self.server(raw.server)?;
        let store = self.store(raw.store)?;
        let tls = self.tls(raw.tls)?;
        let log = self.log(raw.log)?;
        let bootstrap = self.bootstrap(raw.bootstrap)?;
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
}
