//! Validation of a route's upstream TLS and health-check settings.

use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::{parse_duration, Validator};
use crate::config::raw::{RawDuration, RawRoute};
use crate::config::{ConfigError, HealthCheck, UpstreamTls};

impl Validator<'_> {
    pub(super) fn upstream_options(
        &self,
        key: &str,
        r: &mut RawRoute,
    ) -> Result<(UpstreamTls, Option<HealthCheck>), ConfigError> {
        let mut tls = UpstreamTls {
            verify: r.upstream_tls_verify.unwrap_or(true),
            ..Default::default()
        };
        if let Some(path) = r.upstream_ca.take() {
            let certs: Result<Vec<_>, _> =
                CertificateDer::pem_file_iter(path.get_ref()).and_then(|i| i.collect());
            match certs {
                Ok(certs) if !certs.is_empty() => {
                    tls.ca = certs.into_iter().map(|c| c.to_vec()).collect()
                }
                Ok(_) => {
                    return self.invalid(
                        &format!("{key}.upstream_ca"),
                        path.span(),
                        format!("no certificate in \"{}\"", path.get_ref()),
                    )
                }
                Err(e) => {
                    return self.invalid(
                        &format!("{key}.upstream_ca"),
                        path.span(),
                        format!("cannot read \"{}\": {e}", path.get_ref()),
                    )
                }
            }
        }
        if let Some(sni) = r.upstream_sni.take() {
            let name = sni.get_ref().trim().to_ascii_lowercase();
            if !super::valid_server_name(&name) || name.starts_with("*.") {
                return self.invalid(
                    &format!("{key}.upstream_sni"),
                    sni.span(),
                    format!("\"{}\" is not a host name", sni.get_ref()),
                );
            }
            tls.sni = Some(name);
        }
        let health = match r.health_check.take() {
            None => {
                if let Some(i) = &r.health_interval {
                    return self.invalid(
                        &format!("{key}.health_interval"),
                        i.span(),
                        "only applies with health_check".into(),
                    );
                }
                None
            }
            Some(path) => {
                let p = path.get_ref();
                if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return self.invalid(
                        &format!("{key}.health_check"),
                        path.span(),
                        "must be a path starting with / without spaces or control characters"
                            .into(),
                    );
                }
                let interval = match r.health_interval.take() {
                    None => Duration::from_secs(5),
                    Some(v) => {
                        let d = match v.get_ref() {
                            RawDuration::Seconds(s) => Duration::from_secs(*s),
                            RawDuration::Text(t) => parse_duration(t).or_else(|m| {
                                self.invalid(&format!("{key}.health_interval"), v.span(), m)
                            })?,
                        };
                        if d < Duration::from_millis(100) {
                            return self.invalid(
                                &format!("{key}.health_interval"),
                                v.span(),
                                "must be at least 100ms".into(),
                            );
                        }
                        d
                    }
                };
                Some(HealthCheck {
                    path: path.into_inner(),
                    interval,
                })
            }
        };
        Ok((tls, health))
    }
}
