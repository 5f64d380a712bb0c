//! Validation of `[server]`: listeners, threads, shutdown timing, the public URL and host
//! names, body, header and connection limits, password-hashing limits, and who may read
//! `/metrics` and call the admin API.

use std::time::Duration;

use super::values::{http_url, parse_listen, valid_host_and_port};
use super::Validator;
use crate::config::raw::{RawServer, S};
use crate::config::{ConfigError, ServerConfig};

impl Validator<'_> {
    pub(super) fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = |value: Option<S<String>>, key: &str, default: &str| match value {
            None => Ok(parse_listen(default).ok().flatten()),
            Some(v) => parse_listen(v.get_ref()).or_else(|m| self.invalid(key, v.span(), m)),
        };
        let http = listen(raw.http, "server.http", "0.0.0.0:8080")?;
        let https = listen(raw.https, "server.https", "0.0.0.0:8443")?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let threads = match raw.threads {
            None => 0,
            Some(t) => self.int_in(&t, "server.threads", 0..=1024, |n| {
                format!("must be between 0 (one per core) and 1024, got {n}")
            })? as usize,
        };
        let threads = if threads == 0 { cores } else { threads };
        let shutdown_grace = self.duration_or(
            raw.shutdown_grace,
            "server.shutdown_grace",
            Duration::from_secs(1),
        )?;
        let shutdown_timeout = self.duration_or(
            raw.shutdown_timeout,
            "server.shutdown_timeout",
            Duration::from_secs(3),
        )?;
        let public_url = match raw.public_url {
            None => None,
            Some(v) => match http_url(v.get_ref()) {
                Some(u) => Some(u),
                None => {
                    return self.invalid(
                        "server.public_url",
                        v.span(),
                        format!("\"{}\" is not an http(s) URL", v.get_ref()),
                    )
                }
            },
        };
        let max_body_size = match raw.max_body_size {
            None => 1 << 20,
            Some(v) => self.int_in(&v, "server.max_body_size", 1024..=1 << 30, |_| {
                "must be between 1024 and 1073741824 bytes".into()
            })? as usize,
        };
        let max_concurrent_hashes = match self.count_or(
            raw.max_concurrent_hashes,
            "server.max_concurrent_hashes",
            0,
            0..=1024,
        )? {
            0 => cores,
            n => n,
        };
        let mut hostnames = Vec::new();
        for (i, h) in raw.hostnames.into_iter().enumerate() {
            let text = h.get_ref().trim().to_ascii_lowercase();
            if !valid_host_and_port(&text) {
                return self.invalid(
                    &format!("server.hostnames[{i}]"),
                    h.span(),
                    format!("\"{text}\" is not a host name (with an optional :port)"),
                );
            }
            hostnames.push(text);
        }
        let metrics_allow = match raw.metrics_allow {
            Some(list) => self.cidrs(list, "server.metrics_allow")?,
            None => ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        };
        let admin_allow = match raw.admin_allow {
            Some(list) => self.cidrs(list, "server.admin_allow")?,
            None => Vec::new(),
        };
        Ok(ServerConfig {
            http,
            https,
            threads,
            shutdown_grace,
            shutdown_timeout,
            public_url,
            max_body_size,
            hostnames,
            max_concurrent_hashes,
            hash_queue_timeout: self.duration_or(
                raw.hash_queue_timeout,
                "server.hash_queue_timeout",
                Duration::from_secs(5),
            )?,
            header_read_timeout: self
                .duration_or(
                    raw.header_read_timeout,
                    "server.header_read_timeout",
                    Duration::from_secs(10),
                )?
                .max(Duration::from_millis(1)),
            keepalive_timeout: self
                .duration_or(
                    raw.keepalive_timeout,
                    "server.keepalive_timeout",
                    Duration::from_secs(60),
                )?
                .max(Duration::from_millis(1)),
            max_header_size: self.count_or(
                raw.max_header_size,
                "server.max_header_size",
                64 * 1024,
                1024..=1024 * 1024 - 1,
            )?,
            max_headers: self.count_or(raw.max_headers, "server.max_headers", 100, 8..=256)?,
            max_connections_per_ip: self.count_or(
                raw.max_connections_per_ip,
                "server.max_connections_per_ip",
                512,
                0..=1_000_000,
            )?,
            metrics_allow,
            admin_allow,
        })
    }
}
