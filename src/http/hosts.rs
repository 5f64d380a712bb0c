//! Which `Host` values the provider answers for when no public URL is configured. The
//! issuer, redirects and links in mails are built from the request's host; believing any
//! Host would let `Host: evil.example` on "Forgot password" mail a reset link to
//! evil.example (host-header poisoning). So only hosts the server is configured for pass:
//! loopback names and addresses, the listeners' addresses, the system's host name, route
//! hosts, certificate names and `server.hostnames`.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::config::{Config, HostMatch};

/// The host names and addresses this server is reachable as.
#[derive(Debug, Default)]
pub struct KnownHosts {
    names: HashSet<String>,
    /// `*.example.com` routes: one more label below `example.com`.
    wildcard_parents: Vec<String>,
    addresses: HashSet<IpAddr>,
}

impl KnownHosts {
    /// Everything the configuration names.
    pub fn from_config(config: &Config) -> KnownHosts {
        let mut hosts = KnownHosts::default();
        hosts.names.insert("localhost".into());
        if let Some(name) = system_host_name() {
            hosts.names.insert(name);
        }
        for listener in [config.server.http, config.server.https]
            .into_iter()
            .flatten()
        {
            if !listener.ip().is_unspecified() {
                hosts.addresses.insert(listener.ip());
            }
        }
        for text in &config.server.hostnames {
            hosts.add(text);
        }
        for cert in &config.tls.certificates {
            for name in &cert.names {
                hosts.add(name);
            }
        }
        for route in &config.proxy.routes {
            match &route.host {
                HostMatch::Exact(name) => hosts.add(name),
                HostMatch::Wildcard(parent) => hosts.wildcard_parents.push(parent.clone()),
                HostMatch::Any => {}
            }
        }
        hosts
    }

    /// Also answer for these names (e.g. the SANs of certificates found on disk).
    pub fn with_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> KnownHosts {
        for name in names {
            self.add(name);
        }
        self
    }

    fn add(&mut self, text: &str) {
        let host = host_part(text);
        if let Some(parent) = host.strip_prefix("*.") {
            self.wildcard_parents.push(parent.to_string());
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            self.addresses.insert(ip);
        } else if !host.is_empty() {
            self.names.insert(host);
        }
    }

    /// Whether a `Host` header value (`name[:port]`, `[v6]:port`) names this server.
    pub fn allows(&self, host_header: &str) -> bool {
        let host = host_part(host_header);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return ip.is_loopback() || self.addresses.contains(&ip);
        }
        self.names.contains(&host)
            || host.ends_with(".localhost")
            || self.wildcard_parents.iter().any(|parent| {
                host.strip_suffix(parent.as_str())
                    .and_then(|label| label.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
            })
    }
}

/// `scheme://host[:port]` for URLs back to this server: the public URL when configured,
/// else the request's host when it is a plausible one (see [`KnownHosts`] for which the
/// IdP believes), else `localhost`.
pub fn base_url(public_url: Option<&url::Url>, tls: bool, host: Option<&str>) -> String {
    if let Some(url) = public_url {
        return url.as_str().trim_end_matches('/').to_string();
    }
    let scheme = if tls { "https" } else { "http" };
    let host = host.filter(|h| plausible_host(h)).unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// A Host value we are willing to echo into URLs: a name or address and optional port.
pub fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// The host of `name[:port]` / `[v6][:port]`, lower case, without a trailing dot.
pub fn host_part(text: &str) -> String {
    let text = text.trim();
    let host = if let Some(rest) = text.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match text.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => text,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn system_host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(extra: &str) -> KnownHosts {
        let config = Config::parse(
            &format!("[server]\nhttp = \"192.0.2.10:8080\"\nhostnames = [\"auth.example.com\", \"10.1.2.3\"]\n{extra}"),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        KnownHosts::from_config(&config)
    }

    /// Host-header poisoning: only configured names and local addresses are believed.
    #[test]
    fn only_configured_hosts_pass() {
        let h = hosts("[[route]]\nhost = \"*.apps.test\"\nupstream = \"http://127.0.0.1:1\"\n[[route]]\nhost = \"app.test\"\nupstream = \"http://127.0.0.1:1\"\n");
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:8443",
            "192.0.2.10:8080",
            "auth.example.com",
            "AUTH.example.com.:443",
            "10.1.2.3",
            "app.test",
            "x.apps.test",
            "foo.localhost",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "auth.example.com.evil.example",
            "a.b.apps.test",
            "apps.test",
            "203.0.113.5",
            "[2001:db8::1]",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }
}
