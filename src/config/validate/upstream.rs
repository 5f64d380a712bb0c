//! Validation of a route's upstreams: their URLs (resolved once), how https upstreams are
//! verified, and active health checking.

use std::net::ToSocketAddrs;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::values::{http_url, valid_server_name};
use super::Validator;
use crate::config::raw::{OneOrMany, RawRoute, S};
use crate::config::{ConfigError, HealthCheck, Upstream, UpstreamTls};

impl Validator<'_> {
    /// `upstream`: one URL or a list; each http(s) URL is resolved to an address now.
    pub(super) fn upstreams(
        &self,
        key: &str,
        raw: S<OneOrMany>,
    ) -> Result<Vec<Upstream>, ConfigError> {
        let span = raw.span();
        let urls = match raw.into_inner() {
            OneOrMany::One(u) => vec![u],
            OneOrMany::Many(v) => v,
        };
        if urls.is_empty() {
            return self.invalid(
                &format!("{key}.upstream"),
                span,
                "at least one upstream is required".into(),
            );
        }
        let mut upstreams = Vec::new();
        for (j, u) in urls.iter().enumerate() {
            let bad = |m: String| {
                self.invalid::<Vec<Upstream>>(&format!("{key}.upstream[{j}]"), span.clone(), m)
            };
            let Some(parsed) = http_url(u) else {
                return bad(format!("\"{u}\" is not an http(s) URL"));
            };
            let tls = parsed.scheme() == "https";
            let host = parsed
                .host_str()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            let port = parsed
                .port_or_known_default()
                .unwrap_or(if tls { 443 } else { 80 });
            let addr = match (host.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
            {
                Some(a) => a,
                None => return bad(format!("cannot resolve \"{host}\"")),
            };
            upstreams.push(Upstream { addr, tls, host });
        }
        Ok(upstreams)
    }

    /// `upstream_ca`, `upstream_tls_verify`, `upstream_sni`, `health_check` and
    /// `health_interval`.
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
            if !valid_server_name(&name) || name.starts_with("*.") {
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
                        let d = self.duration(&v, &format!("{key}.health_interval"))?;
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
