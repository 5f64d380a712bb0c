//! Loading: reading the file, parsing the TOML into the raw structs, resolving secrets
//! (`"text"`, `{ env = .. }`, `{ file = .. }`), applying command-line overrides, and
//! turning TOML errors into `file:line: key: message` errors ([`ConfigError`]).

use std::path::Path;

use super::error::line_of;
use super::raw::{RawConfig, RawSecret, S};
use super::validate::values::{http_url, parse_listen, valid_host_and_port};
use super::validate::Validator;
use super::{Config, ConfigError, Overrides};

/// The default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "config/portcullis.toml";

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

    pub(super) fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
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
        if let Some(hostname) = &overrides.hostname {
            let bad = |message: String| ConfigError::Override {
                flag: "--hostname".into(),
                message,
            };
            if hostname.contains("://") {
                self.server.public_url = Some(
                    http_url(hostname)
                        .ok_or_else(|| bad(format!("\"{hostname}\" is not an http(s) URL")))?,
                );
            } else if valid_host_and_port(hostname) {
                self.server.hostnames.push(hostname.to_ascii_lowercase());
            } else {
                return Err(bad(format!("\"{hostname}\" is not a host name or URL")));
            }
        }
        if let Some(dir) = &overrides.data_dir {
            self.store.data_dir = dir.clone();
        }
        overrides.database.apply(&mut self.store)?;
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
pub(super) fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
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

impl Validator<'_> {
    /// A secret written inline, or read from the environment or a file.
    pub(super) fn secret(
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Lines a configuration is made of, right and wrong.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[server]".to_string()),
            Just("[[route]]".to_string()),
            Just("[[tls.certificate]]".to_string()),
            Just("http = \"127.0.0.1:0\"".to_string()),
            Just("https = 443".to_string()),
            Just("hostnames = [\"a.test\", 7]".to_string()),
            Just("host = \"app.test\"".to_string()),
            Just("upstream = \"http://127.0.0.1:1\"".to_string()),
            Just("auth = \"session\"".to_string()),
            Just("allow = [\"10.0.0.0/33\"]".to_string()),
            Just("path = \"/../x\"".to_string()),
            Just("unknown_key = true".to_string()),
            Just("x = {".to_string()),
            "[a-z_]{1,10} = \"[ -~]{0,10}\"".prop_map(|s| s),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        /// Any configuration text gets a configuration or an error naming the file (and,
        /// for a bad key, the line within the text), never a panic.
        #[test]
        fn config_errors_name_file_and_line(lines in proptest::collection::vec(line(), 0..10)) {
            let text = lines.join("\n");
            match Config::parse(&text, Path::new("fuzz.toml")) {
                Ok(_) => {}
                Err(ConfigError::Invalid { file, line, .. }) => {
                    prop_assert_eq!(file, "fuzz.toml");
                    prop_assert!(line >= 1 && line <= text.lines().count().max(1), "{} in\n{}", line, text);
                }
                Err(e) => prop_assert!(e.to_string().starts_with("fuzz.toml"), "{}", e),
            }
        }
    }
}
