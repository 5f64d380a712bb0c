//! Validation of `[tls]`: the certificates directory and each `[[tls.certificate]]` (files
//! that exist, server names, at most one default).

use std::path::PathBuf;

use super::values::valid_server_name;
use super::Validator;
use crate::config::raw::{RawTls, S};
use crate::config::{CertificateConfig, ConfigError, TlsConfig};

impl Validator<'_> {
    pub(super) fn tls(&self, raw: RawTls) -> Result<TlsConfig, ConfigError> {
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
}
