//! Validation: turns the raw structs into the typed model, section by section. Every
//! error names the dotted key and points at the value's line through its span.

mod access;
mod upstream;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::line_of;
use super::raw::{self, RawConfig, RawDuration, S};
use crate::config::{
    BootstrapConfig, CertificateConfig, Config, ConfigError, ForwardAuthHeaders, HostMatch,
    LogConfig, LogFormat, Overrides, ProxyConfig, RouteConfig, ServerConfig, StoreConfig,
    TlsConfig,
};

/// `""` disables a listener; otherwise `host:port` (names are resolved once, at start).
pub(in crate::config) fn parse_listen(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    if !value.contains(':') {
        return Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        ));
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(Some)
            .ok_or_else(|| format!("\"{value}\" resolves to no address")),
        Err(_) => Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        )),
    }
}

/// Parse `"30s"`, `"500ms"`, `"2m"`; a bare number is seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|_| format!("invalid duration \"{value}\" (examples: \"5s\", \"500ms\", \"2m\")"))
}

/// Checks raw values against the text they came from, so errors can name their line.
pub(in crate::config) struct Validator<'a> {
    pub(in crate::config) file: &'a str,
    pub(in crate::config) text: &'a str,
    /// Looks up environment variables (replaced in tests).
    pub(in crate::config) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Validator<'_> {
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

    pub(in crate::config) fn config(
        &self,
        raw: RawConfig,
        path: &Path,
    ) -> Result<Config, ConfigError> {
        let server = self.server(raw.server)?;
        let store = StoreConfig {
            data_dir: self.path_or(raw.store.data_dir, "store.data_dir", "data")?,
        };
        let tls = self.tls(raw.tls)?;
        let log = self.log(raw.log)?;
        let bootstrap = BootstrapConfig {
            admin_username: self
                .secret(raw.bootstrap.admin_username, "bootstrap.admin_username")?,
            admin_password: self
                .secret(raw.bootstrap.admin_password, "bootstrap.admin_password")?,
        };
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

    fn server(&self, raw: raw::RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = |value: Option<S<String>>, key: &str, default: &str| match value {
            None => Ok(parse_listen(default).ok().flatten()),
            Some(v) => parse_listen(v.get_ref()).or_else(|m| self.invalid(key, v.span(), m)),
        };
        let http = listen(raw.http, "server.http", "0.0.0.0:8080")?;
        let https = listen(raw.https, "server.https", "0.0.0.0:8443")?;
        let threads = match raw.threads {
            None => 0,
            Some(t) if (0..=1024).contains(t.get_ref()) => *t.get_ref() as usize,
            Some(t) => {
                return self.invalid(
                    "server.threads",
                    t.span(),
                    format!(
                        "must be between 0 (one per core) and 1024, got {}",
                        t.get_ref()
                    ),
                )
            }
        };
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let duration = |value: Option<S<RawDuration>>, key: &str, default: Duration| match value {
            None => Ok(default),
            Some(v) => match v.get_ref() {
                RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
                RawDuration::Text(t) => {
                    parse_duration(t).or_else(|m| self.invalid(key, v.span(), m))
                }
            },
        };
        let shutdown_grace = duration(
            raw.shutdown_grace,
            "server.shutdown_grace",
            Duration::from_secs(1),
        )?;
        let shutdown_timeout = duration(
            raw.shutdown_timeout,
            "server.shutdown_timeout",
            Duration::from_secs(3),
        )?;
        let public_url = match raw.public_url {
            None => None,
            Some(v) => match url::Url::parse(v.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
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
            Some(v) if *v.get_ref() >= 1024 && *v.get_ref() <= 1 << 30 => *v.get_ref() as usize,
            Some(v) => {
                return self.invalid(
                    "server.max_body_size",
                    v.span(),
                    "must be between 1024 and 1073741824 bytes".into(),
                )
            }
        };
        let int = |value: Option<S<i64>>,
                   key: &str,
                   default: usize,
                   range: std::ops::RangeInclusive<i64>|
         -> Result<usize, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref() as usize),
                Some(v) => self.invalid(
                    key,
                    v.span(),
                    format!(
                        "must be between {} and {}, got {}",
                        range.start(),
                        range.end(),
                        v.get_ref()
                    ),
                ),
            }
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let max_concurrent_hashes = match int(
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
            hash_queue_timeout: duration(
                raw.hash_queue_timeout,
                "server.hash_queue_timeout",
                Duration::from_secs(5),
            )?,
            header_read_timeout: duration(
                raw.header_read_timeout,
                "server.header_read_timeout",
                Duration::from_secs(10),
            )?
            .max(Duration::from_millis(1)),
            keepalive_timeout: duration(
                raw.keepalive_timeout,
                "server.keepalive_timeout",
                Duration::from_secs(60),
            )?
            .max(Duration::from_millis(1)),
            max_header_size: int(
                raw.max_header_size,
                "server.max_header_size",
                64 * 1024,
                1024..=1024 * 1024 - 1,
            )?,
            max_headers: int(raw.max_headers, "server.max_headers", 100, 8..=256)?,
            max_connections_per_ip: int(
                raw.max_connections_per_ip,
                "server.max_connections_per_ip",
                512,
                0..=1_000_000,
            )?,
            metrics_allow,
            admin_allow,
        })
    }

    fn path_or(
        &self,
        value: Option<S<String>>,
        key: &str,
        default: &str,
    ) -> Result<PathBuf, ConfigError> {
        match value {
            None => Ok(PathBuf::from(default)),
            Some(v) if v.get_ref().trim().is_empty() => {
                self.invalid(key, v.span(), "must not be empty".into())
            }
            Some(v) => Ok(PathBuf::from(v.into_inner())),
        }
    }

    fn tls(&self, raw: raw::RawTls) -> Result<TlsConfig, ConfigError> {
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

    fn cidrs(&self, list: Vec<S<String>>, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let mut out = Vec::new();
        for (i, v) in list.into_iter().enumerate() {
            let text = v.get_ref().trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => out.push(n),
                Err(_) => {
                    return self.invalid(
                        &format!("{key}[{i}]"),
                        v.span(),
                        format!("invalid CIDR \"{text}\""),
                    );
                }
            }
        }
        Ok(out)
    }

    fn proxy(
        &self,
        raw: raw::RawProxy,
        routes: Vec<raw::RawRoute>,
    ) -> Result<ProxyConfig, ConfigError> {
        let mut config = ProxyConfig {
            trusted_proxies: self.cidrs(raw.trusted_proxies, "proxy.trusted_proxies")?,
            allow: self.cidrs(raw.allow, "proxy.allow")?,
            deny: self.cidrs(raw.deny, "proxy.deny")?,
            ..Default::default()
        };
        if let Some(v) = raw.forward_auth_headers {
            config.forward_auth_headers = match v.get_ref().as_str() {
                "auto" => ForwardAuthHeaders::Auto,
                "original" | "nginx" => ForwardAuthHeaders::Original,
                "forwarded" | "traefik" | "caddy" => ForwardAuthHeaders::Forwarded,
                other => {
                    return self.invalid(
                        "proxy.forward_auth_headers",
                        v.span(),
                        format!("must be \"auto\", \"original\" (nginx) or \"forwarded\" (Traefik, Caddy), got \"{other}\""),
                    )
                }
            };
        }
        if let Some(v) = raw.session_check_interval {
            config.session_check_interval = match v.get_ref() {
                RawDuration::Seconds(s) => Duration::from_secs(*s),
                RawDuration::Text(t) => parse_duration(t)
                    .or_else(|m| self.invalid("proxy.session_check_interval", v.span(), m))?,
            };
            // A cached check carries a 5-minute assertion and minted tokens: it must not
            // outlive them, and a revocation must not wait long.
            if config.session_check_interval > Duration::from_secs(60) {
                return self.invalid(
                    "proxy.session_check_interval",
                    v.span(),
                    "must be at most 60s".into(),
                );
            }
        }
        for (i, mut r) in routes.into_iter().enumerate() {
            let key = format!("route[{i}]");
            let host = match &r.host {
                None => HostMatch::Any,
                Some(h) => {
                    let text = h.get_ref().trim().to_ascii_lowercase();
                    if !valid_server_name(&text) {
                        return self.invalid(
                            &format!("{key}.host"),
                            h.span(),
                            format!("\"{text}\" is not a host name"),
                        );
                    }
                    match text.strip_prefix("*.") {
                        Some(parent) => HostMatch::Wildcard(parent.to_string()),
                        None => HostMatch::Exact(text),
                    }
                }
            };
            let path_prefix = match &r.path {
                None => "/".to_string(),
                Some(p) => {
                    let text = p.get_ref().clone();
                    match crate::http::path::normalise(&text) {
                        Ok(n) => n.into_owned(),
                        Err(e) => {
                            return self.invalid(
                                &format!("{key}.path"),
                                p.span(),
                                format!("\"{text}\": {e}"),
                            )
                        }
                    }
                }
            };
            let anchor = access::anchor(&r);
            let upstreams = match r.upstream.take() {
                Some(u) => self.upstreams(&key, u)?,
                None => Vec::new(),
            };
            let (auth, access) = self.route_access(&key, &mut r)?;
            let (upstream_tls, health_check) = self.upstream_options(&key, &mut r)?;
            let methods = self.methods(&key, std::mem::take(&mut r.methods))?;
            if upstreams.is_empty() && access.is_none() {
                return self.invalid(
                    &format!("{key}.upstream"),
                    anchor,
                    "a route needs an upstream (only routes with auth may omit it, for forward-auth)"
                        .into(),
                );
            }
            let duration =
                |value: Option<S<RawDuration>>, field: &str, default: Duration| match value {
                    None => Ok(default),
                    Some(v) => match v.get_ref() {
                        RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
                        RawDuration::Text(t) => parse_duration(t)
                            .or_else(|m| self.invalid(&format!("{key}.{field}"), v.span(), m)),
                    },
                };
            let timeout = duration(r.timeout, "timeout", Duration::from_secs(60))?;
            let max_body_size = match &r.max_body_size {
                None => Some(100 << 20),
                Some(v) if *v.get_ref() == 0 => None,
                Some(v) if *v.get_ref() > 0 => Some(*v.get_ref() as u64),
                Some(v) => {
                    return self.invalid(
                        &format!("{key}.max_body_size"),
                        v.span(),
                        "must be a number of bytes (0: no limit)".into(),
                    )
                }
            };
            let connect_timeout =
                duration(r.connect_timeout, "connect_timeout", Duration::from_secs(5))?;
            let header_map = |map: std::collections::BTreeMap<String, S<String>>,
                              field: &str|
             -> Result<
                Vec<(http::HeaderName, http::HeaderValue)>,
                ConfigError,
            > {
                let mut out = Vec::new();
                for (name, value) in map {
                    let span = value.span();
                    let n = http::HeaderName::from_bytes(name.as_bytes()).or_else(|_| {
                        self.invalid(
                            &format!("{key}.{field}"),
                            span.clone(),
                            format!("invalid header name \"{name}\""),
                        )
                    })?;
                    let v = http::HeaderValue::from_str(value.get_ref()).or_else(|_| {
                        self.invalid(
                            &format!("{key}.{field}.{name}"),
                            span,
                            "invalid header value".into(),
                        )
                    })?;
                    out.push((n, v));
                }
                Ok(out)
            };
            let header_names =
                |list: Vec<S<String>>, field: &str| -> Result<Vec<http::HeaderName>, ConfigError> {
                    let mut out = Vec::new();
                    for (j, name) in list.into_iter().enumerate() {
                        match http::HeaderName::from_bytes(name.get_ref().as_bytes()) {
                            Ok(n) => out.push(n),
                            Err(_) => {
                                return self.invalid(
                                    &format!("{key}.{field}[{j}]"),
                                    name.span(),
                                    format!("invalid header name \"{}\"", name.get_ref()),
                                )
                            }
                        }
                    }
                    Ok(out)
                };
            let set_request_headers = header_map(r.set_request_headers, "set_request_headers")?;
            let remove_request_headers =
                header_names(r.remove_request_headers, "remove_request_headers")?;
            let set_response_headers = header_map(r.set_response_headers, "set_response_headers")?;
            let remove_response_headers =
                header_names(r.remove_response_headers, "remove_response_headers")?;
            config.routes.push(RouteConfig {
                max_body_size,
                timeout,
                connect_timeout,
                https_redirect: r.https_redirect,
                hsts: r.hsts.unwrap_or(r.https_redirect),
                set_request_headers,
                remove_request_headers,
                set_response_headers,
                remove_response_headers,
                name: r.name.unwrap_or_else(|| key.clone()),
                host,
                path_prefix,
                upstreams,
                upstream_tls,
                health_check,
                auth,
                access,
                methods,
                allow: self.cidrs(r.allow, &format!("{key}.allow"))?,
                deny: self.cidrs(r.deny, &format!("{key}.deny"))?,
                preserve_host: r.preserve_host.unwrap_or(true),
            });
        }
        Ok(config)
    }

    fn log(&self, raw: raw::RawLog) -> Result<LogConfig, ConfigError> {
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
}

/// A DNS name or a `*.` wildcard over one.
/// `name`, `name:port`, `[v6]` or `[v6]:port`, or an IPv4 address with optional port.
fn valid_host_and_port(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => {
                return tail.is_empty()
                    || tail
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok());
            }
            _ => return false,
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    port.is_none_or(|p| p.parse::<u16>().is_ok())
        && (host.parse::<std::net::Ipv4Addr>().is_ok() || valid_server_name(host))
}

pub(in crate::config) fn valid_server_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
